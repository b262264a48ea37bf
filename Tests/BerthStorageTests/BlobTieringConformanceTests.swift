import BerthCore
@testable import BerthS3
@testable import BerthStorage
import Foundation
import NIOCore
import Testing

/// The blob stores with an archive tier (`BlobTiering`): what the registry relies on when it archives and
/// restores images, the same cases on every store — memory, the filesystem (`archiveDirectory`), S3 with the
/// archive under another key prefix of the bucket, and S3 with it in another bucket in another storage class.
enum TieredBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case filesystem
    case s3Prefix
    case s3Bucket

    var testDescription: String { rawValue }

    static let archiveBucket = "berth-test-archive"

    func make() async throws -> any BlobStore & BlobTiering & BlobInventory {
        switch self {
        case .memory: return InMemoryBlobStore(chunkSize: 7, archiveTier: true)
        case .filesystem:
            let base = try Backend.temporaryDirectory()
            return try FileSystemBlobStore(root: base + "/data", readChunkSize: 7, archiveRoot: base + "/archive")
        case .s3Prefix, .s3Bucket:
            guard let server = SeaweedFS.current else { throw SeaweedFS.Unavailable(description: "no SeaweedFS in scope") }
            var config = server.configuration()
            if self == .s3Prefix {
                config.archive = S3ArchiveLocation(keyPrefix: config.keyPrefix + "archive/")
            } else {
                config.archive = S3ArchiveLocation(bucket: Self.archiveBucket, storageClass: "STANDARD_IA")
                var archiveBucket = config
                archiveBucket.bucket = Self.archiveBucket
                try await S3Client(archiveBucket).createBucket()
            }
            return try S3BlobStore(config)
        }
    }
}

@Suite(.seaweedFS) struct BlobTieringConformance {
    /// Bytes of every value (a sealed blob is as opaque to a move as these).
    static let payload: [UInt8] = (0..<70_001).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 7) }

    func commit(_ s: some BlobStore, _ bytes: [UInt8], id: String = "u-\(UUID().uuidString.lowercased())") async throws -> Digest {
        let w = try await s.openUpload(id: id, at: 0)
        try await w.write(ByteBuffer(bytes: bytes))
        try await w.close()
        let d = Digest.sha256(of: bytes)
        try await s.commitUpload(id: id, as: d)
        return d
    }

    func bytes(_ s: some BlobStore, _ d: Digest, _ range: ByteRange? = nil) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await s.read(d, range: range) { out += Array($0.readableBytesView) }
        return out
    }

    @Test(arguments: TieredBackend.allCases)
    func movesKeepEveryReadWorking(_ backend: TieredBackend) async throws {
        let s = try await backend.make()
        #expect(s.hasArchiveTier)
        let data = Self.payload
        let d = try await commit(s, data)
        #expect(try await !s.isInArchive(d))
        try await s.moveToArchive(d)
        #expect(try await s.isInArchive(d))
        #expect(try await s.size(of: d) == Int64(data.count))
        #expect(try await s.isStored(d))
        #expect(try await bytes(s, d) == data)
        #expect(try await bytes(s, d, ByteRange(start: 1000, end: 65_999)) == Array(data[1000...65_999]))
        var got: [UInt8] = []
        try await s.read(d, range: nil, storedSize: Int64(data.count)) { got += Array($0.readableBytesView) }
        #expect(got == data)
        await #expect(throws: BlobSizeChanged(digest: d)) {
            try await s.read(d, range: ByteRange(start: 0, end: 9), storedSize: 12) { _ in }
        }
        try await s.moveToArchive(d)  // already there: nothing
        #expect(try await s.isInArchive(d))
        try await s.moveFromArchive(d)
        #expect(try await !s.isInArchive(d))
        #expect(try await bytes(s, d) == data)
        try await s.moveFromArchive(d)  // already back: nothing
        #expect(try await !s.isInArchive(d))
        #expect(try await s.size(of: d) == Int64(data.count))
    }

    @Test(arguments: TieredBackend.allCases)
    func deleteRemovesBothTiers(_ backend: TieredBackend) async throws {
        let s = try await backend.make()
        let d = try await commit(s, Array("in both tiers".utf8))
        try await s.moveToArchive(d)
        _ = try await commit(s, Array("in both tiers".utf8))  // pushed again: in the primary tier too
        #expect(try await !s.isInArchive(d))
        #expect(try await s.storedBlobs().contains { $0.name == d })
        try await s.delete(d)
        #expect(try await s.size(of: d) == nil)
        #expect(try await !s.isStored(d))
        #expect(try await !s.isInArchive(d))
        #expect(try await !s.storedBlobs().contains { $0.name == d })
        await #expect(throws: (any Error).self) { _ = try await self.bytes(s, d) }
        // An archived blob alone goes too.
        let e = try await commit(s, Array("archived only".utf8))
        try await s.moveToArchive(e)
        try await s.delete(e)
        #expect(try await s.size(of: e) == nil)
    }

    @Test(arguments: TieredBackend.allCases)
    func aMoveOntoACopyAlreadyThereLeavesOneReadableCopy(_ backend: TieredBackend) async throws {
        let s = try await backend.make()
        let d = try await commit(s, Array("twice".utf8))
        try await s.moveToArchive(d)
        _ = try await commit(s, Array("twice".utf8))
        try await s.moveToArchive(d)
        #expect(try await s.isInArchive(d))
        #expect(try await bytes(s, d) == Array("twice".utf8))
        _ = try await commit(s, Array("twice".utf8))
        try await s.moveFromArchive(d)  // the primary copy is there: the archived one goes
        #expect(try await !s.isInArchive(d))
        #expect(try await bytes(s, d) == Array("twice".utf8))
    }

    @Test(arguments: TieredBackend.allCases)
    func archivedBlobsAreInTheInventoryAndMissingOnesDoNotMove(_ backend: TieredBackend) async throws {
        let s = try await backend.make()
        let d = try await commit(s, Array("inventory".utf8))
        try await s.moveToArchive(d)
        #expect(try await s.storedBlobs().filter { $0.name == d }.map(\.size) == [9])
        let missing = Digest.sha256(of: Array("never stored".utf8))
        try await s.moveToArchive(missing)
        try await s.moveFromArchive(missing)
        #expect(try await !s.isInArchive(missing))
        #expect(try await s.size(of: missing) == nil)
    }

    /// A move never leaves a moment without a complete copy: readers running through a series of moves
    /// always read the whole blob.
    @Test(arguments: TieredBackend.allCases)
    func readersDuringMovesAlwaysFindTheBlob(_ backend: TieredBackend) async throws {
        let s = try await backend.make()
        let data = Array(Self.payload.prefix(20_000))
        let d = try await commit(s, data)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                // One move at a time under a read (the guarantee is per move: primary, archive, primary again).
                for _ in 0..<6 {
                    try await s.moveToArchive(d)
                    try await Task.sleep(for: .milliseconds(20))
                    try await s.moveFromArchive(d)
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            group.addTask {
                for _ in 0..<20 {
                    let size = try await s.size(of: d)
                    let read = try await self.bytes(s, d)
                    #expect(size == Int64(data.count))
                    #expect(read == data)
                }
            }
            try await group.waitForAll()
        }
    }

    @Test(arguments: BlobBackend.allCases)
    func withoutATierNothingMoves(_ backend: BlobBackend) async throws {
        let s = try await backend.make()
        let tier = try #require(s as? any BlobTiering)
        #expect(!tier.hasArchiveTier)
        let d = try await commit(s, Array("stay".utf8))
        try await tier.moveToArchive(d)
        #expect(try await !tier.isInArchive(d))
        #expect(try await bytes(s, d) == Array("stay".utf8))
    }
}
