import BerthCore
@testable import BerthS3
import BerthStorage
import Foundation
import NIOCore
import Testing

/// What only the S3 store has: segments of uploads across "nodes" (store instances sharing nothing but the
/// bucket), S3's minimum part size, multipart uploads, the collector's inventory and `verify-config`'s probe.
@Suite(.seaweedFS) struct S3BlobStoreTests {
    static let mib = 1 << 20

    func bytes(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: ($0 &+ seed) &* 2654435761 >> 13) }
    }

    func server() throws -> SeaweedFS {
        guard let s = SeaweedFS.current else { throw SeaweedFS.Unavailable(description: "no SeaweedFS in scope") }
        return s
    }

    /// Writes `data` as one chunk at `offset`, in pieces of `piece` bytes.
    func writeChunk(_ store: S3BlobStore, _ id: String, at offset: Int, _ data: ArraySlice<UInt8>, piece: Int = 1 << 20) async throws {
        let w = try await store.openUpload(id: id, at: Int64(offset))
        var at = data.startIndex
        while at < data.endIndex {
            let end = min(data.endIndex, at + piece)
            try await w.write(ByteBuffer(bytes: data[at..<end]))
            at = end
        }
        try await w.close()
    }

    func read(_ store: S3BlobStore, _ digest: Digest, _ range: ByteRange? = nil) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await store.read(digest, range: range) { out += Array($0.readableBytesView) }
        return out
    }

    @Test func chunksOfAnySizeAlternatingNodesMakeOneBlob() async throws {
        let config = try server().configuration()
        let nodes = [try S3BlobStore(config, partSize: 5 * Self.mib), try S3BlobStore(config, partSize: 5 * Self.mib)]
        let sizes = [1024, 3 * Self.mib, 7 * Self.mib + 3, 100, 6 * Self.mib, 1, 5 * Self.mib]
        let data = bytes(sizes.reduce(0, +), seed: 1)
        var offset = 0
        for (i, size) in sizes.enumerated() {
            try await writeChunk(nodes[i % 2], "chunks", at: offset, data[offset..<(offset + size)], piece: 700_000)
            offset += size
            #expect(try await nodes[(i + 1) % 2].uploadedSize(id: "chunks") == Int64(offset))
        }
        // Every segment but the last is long enough to be a part of a multipart upload.
        let segments = try await nodes[0].segments("chunks")
        #expect(segments.dropLast().allSatisfy { $0.size >= 5 * Int64(Self.mib) }, "\(segments.map(\.size))")
        #expect(segments.count > 1)
        var staged: [UInt8] = []
        try await nodes[1].readUpload(id: "chunks", length: Int64(data.count)) { staged += Array($0.readableBytesView) }
        #expect(staged == data)
        let digest = Digest.sha256(of: data)
        try await nodes[1].commitUpload(id: "chunks", as: digest)
        #expect(try await nodes[0].uploadedSize(id: "chunks") == nil)
        #expect(try await nodes[0].size(of: digest) == Int64(data.count))
        #expect(try await read(nodes[0], digest) == data)
        for (start, end) in [(0, 0), (1023, 1024 + 3 * Self.mib), (5 * Self.mib - 1, 12 * Self.mib), (data.count - 10, data.count - 1)] {
            #expect(try await read(nodes[0], digest, ByteRange(start: Int64(start), end: Int64(end))) == Array(data[start...end]))
        }
    }

    @Test func reopeningInsideASegmentCutsItBack() async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 5 * Self.mib)
        let data = bytes(12 * Self.mib, seed: 2)
        // A first chunk of 8 MiB (a multipart segment), then garbage a failed request left after it.
        try await writeChunk(store, "cut", at: 0, data[0..<(8 * Self.mib)])
        try await writeChunk(store, "cut", at: 8 * Self.mib, ArraySlice(repeating: 0xEE, count: 3 * Self.mib))
        // The registry only counted 6 MiB of the first chunk: reopen there, inside the first segment.
        try await writeChunk(store, "cut", at: 6 * Self.mib, data[(6 * Self.mib)...])
        #expect(try await store.uploadedSize(id: "cut") == Int64(data.count))
        // The first segment was not rewritten: a new one starts inside it and cuts it back.
        let segments = try await store.segments("cut")
        #expect(segments.map(\.start) == [0, 6 * Int64(Self.mib)])
        #expect(segments[0].size == 6 * Int64(Self.mib) && segments[0].objectSize == 8 * Int64(Self.mib))
        var staged: [UInt8] = []
        try await store.readUpload(id: "cut", length: Int64(data.count)) { staged += Array($0.readableBytesView) }
        #expect(staged == data)
        let digest = Digest.sha256(of: data)
        try await store.commitUpload(id: "cut", as: digest)
        #expect(try await read(store, digest) == data)
    }

    /// What sealing does at every chunk and at completion: rewrite the last few KiB of one long segment.
    @Test func rewritingTheEndOfALongSegmentCopiesNothingBeforeIt() async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 5 * Self.mib)
        let data = bytes(9 * Self.mib, seed: 3)
        try await writeChunk(store, "tail", at: 0, ArraySlice(repeating: 0x11, count: 9 * Self.mib))
        let cut = 9 * Self.mib - 70_000
        try await writeChunk(store, "tail", at: 0, data[..<cut])   // the whole chunk again: rewritten from 0
        try await writeChunk(store, "tail", at: cut, data[cut...])
        var segments = try await store.segments("tail")
        #expect(segments.map(\.start) == [0, Int64(cut)] && segments[0].objectSize == Int64(cut))
        // Reopened inside the last segment with nothing written: the new (empty) segment still cuts it.
        try await writeChunk(store, "tail", at: 8 * Self.mib, [])
        segments = try await store.segments("tail")
        #expect(try await store.uploadedSize(id: "tail") == 8 * Int64(Self.mib))
        #expect(segments.map(\.size) == [8 * Int64(Self.mib), 0])
        // A single segment cut back commits as its kept bytes only.
        let digest = Digest.sha256(of: Array(data[..<(8 * Self.mib)]))
        try await store.commitUpload(id: "tail", as: digest)
        #expect(try await read(store, digest) == Array(data[..<(8 * Self.mib)]))
        // A short kept prefix (under the minimum part size) is still carried into a rewrite.
        try await writeChunk(store, "short", at: 0, data[..<(7 * Self.mib)])
        try await writeChunk(store, "short", at: 3 * Self.mib, data[(3 * Self.mib)..<(4 * Self.mib)])
        segments = try await store.segments("short")
        #expect(segments.map(\.start) == [0] && segments[0].objectSize == 4 * Int64(Self.mib))
    }

    /// A commit longer than `copyPieceSize` is copied server-side in pieces, several at once, and the pieces
    /// make the blob in order: one segment (monolithic) and two segments (chunked), each cut evenly so that
    /// no piece is under the minimum part size.
    @Test func largeCommitsAreCopiedInPiecesAtOnce() async throws {
        let config = try server().configuration()
        let store = try S3BlobStore(config, partSize: 5 * Self.mib, copyPieceSize: Int64(10 * Self.mib), copyConcurrency: 3)
        let mib = Int64(Self.mib)
        let layout = store.copyPieces([("a", 23 * mib), ("b", 13 * mib + 7)])
        #expect(layout.map(\.key) == ["a", "a", "a", "b", "b"])
        #expect(layout.map { $0.range.count } == [Int(23 * mib / 3 + 1), Int(23 * mib / 3 + 1), Int(23 * mib - 2 * (23 * mib / 3 + 1)),
                                                  Int((13 * mib + 7 + 1) / 2), Int((13 * mib + 7) / 2)])
        #expect(layout.allSatisfy { $0.range.count >= 5 * Self.mib && $0.range.count <= 10 * Self.mib })
        #expect(layout[0].range.lowerBound == 0 && layout[2].range.upperBound == 23 * mib - 1 && layout[3].range.lowerBound == 0)

        let one = bytes(23 * Self.mib + 3, seed: 5)
        try await writeChunk(store, "one", at: 0, one[...])
        try await store.commitUpload(id: "one", as: Digest.sha256(of: one))
        #expect(try await read(store, Digest.sha256(of: one)) == one)
        let two = bytes(33 * Self.mib + 7, seed: 6)
        try await writeChunk(store, "two", at: 0, two[..<(20 * Self.mib)])
        try await writeChunk(store, "two", at: 20 * Self.mib, two[(20 * Self.mib)...])
        #expect(try await store.segments("two").count == 2)
        try await store.commitUpload(id: "two", as: Digest.sha256(of: two))
        #expect(try await read(store, Digest.sha256(of: two)) == two)
        #expect(try await store.client.multipartUploads(prefix: config.keyPrefix).isEmpty)
        #expect(try await store.uploadedSize(id: "two") == nil)
    }

    /// A chunk a little longer than a part (a sealed chunk of exactly one part of content) is written with one
    /// `PUT`; a longer one as a multipart upload whose first part takes the slack. A completed multipart
    /// upload's ETag ends in `-<parts>`; a `PUT`'s is the content's MD5.
    @Test func aChunkAQuarterOfAPartLongerThanOneIsOnePut() async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 8 * Self.mib)
        func etag(_ id: String) async throws -> String {
            let segment = try #require(try await store.segments(id).first)
            let response = try await store.client.send(.HEAD, key: segment.key)
            return try #require(response.headers.first(name: "etag"))
        }
        let sealedChunk = bytes(8 * Self.mib + 128 * 28, seed: 7)
        try await writeChunk(store, "sealed", at: 0, sealedChunk[...])
        #expect(!(try await etag("sealed")).contains("-"))
        let atTheLimit = bytes(10 * Self.mib, seed: 8)
        try await writeChunk(store, "limit", at: 0, atTheLimit[...])
        #expect(try await etag("limit").contains("-1"))
        let longer = bytes(18 * Self.mib, seed: 9)
        try await writeChunk(store, "longer", at: 0, longer[...])
        #expect(try await etag("longer").hasSuffix("-2\""))
        for (id, data) in [("sealed", sealedChunk), ("limit", atTheLimit), ("longer", longer)] {
            try await store.commitUpload(id: id, as: Digest.sha256(of: data))
            #expect(try await read(store, Digest.sha256(of: data)) == data)
        }
    }

    @Test func emptyUploadsCommitToEmptyBlobs() async throws {
        let store = try S3BlobStore(try server().configuration())
        try await store.openUpload(id: "empty", at: 0).close()
        #expect(try await store.uploadedSize(id: "empty") == 0)
        let digest = Digest.sha256(of: [UInt8]())
        try await store.commitUpload(id: "empty", as: digest)
        #expect(try await store.size(of: digest) == 0)
        #expect(try await read(store, digest).isEmpty)
        await #expect(throws: (any Error).self) { try await store.commitUpload(id: "never", as: digest) }
    }

    @Test func inventoryListsCommittedBlobsAndStagedUploads() async throws {
        let store = try S3BlobStore(try server().configuration())
        let a = try await stage(store, "inv-a", ["alpha"])
        try await store.commitUpload(id: "inv-a", as: a)
        _ = try await stage(store, "inv-b", ["beta", "!"])
        let blobs = try await store.storedBlobs()
        #expect(blobs.map(\.name) == [a])
        #expect(blobs.first?.size == 5)
        #expect(abs((blobs.first?.changedAt ?? 0) - Date().timeIntervalSince1970) < 300)
        let uploads = try await store.stagedUploads()
        #expect(uploads.map(\.name) == ["inv-b"])
        #expect(uploads.first?.size == 5)
        #expect(try await store.isStored(a))
        try await store.delete(a)
        #expect(try await !store.isStored(a))
    }

    @Test func deletingAnUploadAbortsItsUnfinishedMultipartUpload() async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 5 * Self.mib)
        let w = try await store.openUpload(id: "dying", at: 0)
        try await w.write(ByteBuffer(bytes: bytes(11 * Self.mib, seed: 3)))  // two parts sent, never completed
        let prefix = try store.uploadPrefix("dying")
        #expect(try await store.client.multipartUploads(prefix: prefix).count == 1)
        try await store.deleteUpload(id: "dying")
        #expect(try await store.client.multipartUploads(prefix: prefix).isEmpty)
        #expect(try await store.uploadedSize(id: "dying") == nil)
    }

    /// A blob written under its own key (a monolithic push): nothing under the key until `publish`, one `PUT` up
    /// to a part and a quarter, a multipart upload above it; `discard` leaves no object and no multipart upload.
    @Test(arguments: [3 * mib, 17 * mib + 5]) func directBlobWritesAppearOnlyWhenPublished(size: Int) async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 5 * Self.mib)
        let data = bytes(size, seed: size)
        let digest = Digest.sha256(of: data)
        let blobs = "\(store.prefix)blobs/"
        let w = try await store.openBlob(digest)
        for at in stride(from: 0, to: data.count, by: 1 << 20) {
            try await w.write(ByteBuffer(bytes: data[at..<min(data.count, at + (1 << 20))]))
        }
        try await w.close()
        #expect(try await store.size(of: digest) == nil)
        #expect(try await store.client.multipartUploads(prefix: blobs).count == (size > 6 * Self.mib ? 1 : 0))
        try await w.publish()
        #expect(try await store.size(of: digest) == Int64(size))
        #expect(try await read(store, digest) == data)
        #expect(try await store.client.multipartUploads(prefix: blobs).isEmpty)
        #expect(try await store.stagedUploads().isEmpty)
        // A second write of the same digest, given up: the published copy is untouched, nothing is left.
        let again = try await store.openBlob(digest)
        try await again.write(ByteBuffer(bytes: bytes(size, seed: size + 1)))
        try await again.close()
        await again.discard()
        #expect(try await read(store, digest) == data)
        #expect(try await store.client.multipartUploads(prefix: blobs).isEmpty)
    }

    /// What a process that died mid-write leaves (an unfinished multipart upload under `blobs/`) is aborted by
    /// `abandonBlobWrites`, once older than the cutoff; uploads' own multipart uploads are not touched.
    @Test func abandonedDirectWritesAreAborted() async throws {
        let store = try S3BlobStore(try server().configuration(), partSize: 5 * Self.mib)
        let digest = Digest.sha256(of: Array("dead".utf8))
        let w = try await store.openBlob(digest)
        try await w.write(ByteBuffer(bytes: bytes(11 * Self.mib, seed: 4)))  // parts sent; never published
        let staged = try await store.openUpload(id: "living", at: 0)
        try await staged.write(ByteBuffer(bytes: bytes(11 * Self.mib, seed: 5)))
        let blobs = "\(store.prefix)blobs/"
        #expect(try await store.client.multipartUploads(prefix: blobs).count == 1)
        #expect(try await store.abandonBlobWrites(before: Date().timeIntervalSince1970 - 3600) == 0)
        #expect(try await store.abandonBlobWrites(before: Date().timeIntervalSince1970 + 60) == 1)
        #expect(try await store.client.multipartUploads(prefix: blobs).isEmpty)
        #expect(try await store.client.multipartUploads(prefix: try store.uploadPrefix("living")).count == 1)
        #expect(try await store.size(of: digest) == nil)
        try await staged.close()
        try await store.deleteUpload(id: "living")
    }

    @Test func probeNamesWhatIsWrong() async throws {
        let good = try server().configuration()
        let goodStore = try S3BlobStore(good)
        #expect(await goodStore.probe() == [])
        var wrongSecret = good
        wrongSecret.secretAccessKey = "not-the-secret"
        let secretProblems = try await S3BlobStore(wrongSecret).probe()
        #expect(secretProblems.count == 1 && secretProblems[0].contains("secret access key is wrong"), "\(secretProblems)")
        var wrongKey = good
        wrongKey.accessKeyID = "NOSUCHKEY"
        let keyProblems = try await S3BlobStore(wrongKey).probe()
        #expect(keyProblems.count == 1 && keyProblems[0].contains("access key id is not known"), "\(keyProblems)")
        var noBucket = good
        noBucket.bucket = "no-such-bucket-here"
        noBucket.accessKeyID = SeaweedFS.accessKey
        let bucketProblems = try await S3BlobStore(noBucket).probe()
        #expect(bucketProblems.count == 1 && bucketProblems[0].contains("does not exist"), "\(bucketProblems)")
        var closed = good
        closed.endpoint = "http://127.0.0.1:1"
        let connectProblems = try await S3BlobStore(closed).probe()
        #expect(connectProblems.count == 1 && connectProblems[0].contains("cannot reach"), "\(connectProblems)")
    }

    /// The archive tier's objects are written in `storageClass` and come back in the bucket's default;
    /// a blob larger than one `CopyObject` moves with a multipart `UploadPartCopy` (here above 8 MiB).
    /// SeaweedFS records the class it is given and reports it on HEAD and in listings (it accepts any
    /// value and reads GLACIER objects at once: Berth validates the class itself).
    @Test func archivedObjectsTakeTheStorageClassAndLargeOnesMoveInParts() async throws {
        var config = try server().configuration()
        config.archive = S3ArchiveLocation(keyPrefix: config.keyPrefix + "cold/", storageClass: "STANDARD_IA")
        let store = try S3BlobStore(config, partSize: 5 * Self.mib, maximumCopySize: Int64(8 * Self.mib))
        let data = bytes(17 * Self.mib + 5, seed: 4)
        try await writeChunk(store, "big", at: 0, data[...])
        let digest = Digest.sha256(of: data)
        try await store.commitUpload(id: "big", as: digest)
        try await store.moveToArchive(digest)
        let archive = try #require(store.archive)
        let archived = try #require(try await archive.headObject(store.archiveKey(digest, in: archive)))
        #expect(archived.size == Int64(data.count) && archived.storageClass == "STANDARD_IA")
        #expect(try await store.client.head(store.blobKey(digest)) == nil)
        #expect(try await read(store, digest) == data)
        #expect(try await store.client.multipartUploads(prefix: config.keyPrefix).isEmpty)
        try await store.moveFromArchive(digest)
        let back = try #require(try await store.client.headObject(store.blobKey(digest)))
        #expect(back.size == Int64(data.count) && (back.storageClass ?? "STANDARD") == "STANDARD")
        #expect(try await archive.head(store.archiveKey(digest, in: archive)) == nil)
        #expect(try await read(store, digest, ByteRange(start: 8 * Int64(Self.mib) - 3, end: 8 * Int64(Self.mib) + 3))
                == Array(data[(8 * Self.mib - 3)...(8 * Self.mib + 3)]))
    }

    @Test func archiveLocationsAreValidated() throws {
        let good = S3Configuration(endpoint: "http://127.0.0.1:9000", bucket: "b", accessKeyID: "k", secretAccessKey: "s", keyPrefix: "reg/")
        let refused: [(S3ArchiveLocation, String)] = [
            (S3ArchiveLocation(), "needs s3ArchiveBucket or s3ArchivePrefix"),
            (S3ArchiveLocation(storageClass: "STANDARD_IA"), "needs s3ArchiveBucket or s3ArchivePrefix"),
            (S3ArchiveLocation(keyPrefix: "reg/"), "overlaps"),
            (S3ArchiveLocation(bucket: "b"), "overlaps"),
            (S3ArchiveLocation(keyPrefix: "reg/blobs/old/"), "overlaps"),
            (S3ArchiveLocation(keyPrefix: "reg/uploads/x"), "overlaps"),
            (S3ArchiveLocation(keyPrefix: "archive/", storageClass: "GLACIER"), "RestoreObject"),
            (S3ArchiveLocation(keyPrefix: "archive/", storageClass: "DEEP_ARCHIVE"), "RestoreObject"),
            (S3ArchiveLocation(keyPrefix: "archive/", storageClass: "COLD"), "must be one of"),
            (S3ArchiveLocation(bucket: "a/b"), "not a valid bucket name"),
        ]
        for (location, message) in refused {
            var c = good
            c.archive = location
            do {
                _ = try S3BlobStore(c)
                Issue.record("\(location) was accepted")
            } catch {
                #expect("\(error)".contains(message), "\(location): \(error)")
            }
        }
        for location in [S3ArchiveLocation(keyPrefix: "archive/"), S3ArchiveLocation(keyPrefix: ""),
                         S3ArchiveLocation(keyPrefix: "reg/archive/", storageClass: "GLACIER_IR"),
                         S3ArchiveLocation(bucket: "cold"), S3ArchiveLocation(bucket: "cold", keyPrefix: "reg/", storageClass: "ONEZONE_IA")] {
            var c = good
            c.archive = location
            #expect(try S3BlobStore(c).hasArchiveTier, "\(location)")
        }
        #expect(try !S3BlobStore(good).hasArchiveTier)
    }

    @Test func probeTriesTheArchiveTier() async throws {
        var config = try server().configuration()
        config.archive = S3ArchiveLocation(keyPrefix: config.keyPrefix + "cold/", storageClass: "STANDARD_IA")
        let store = try S3BlobStore(config)
        #expect(await store.probe() == [])
        #expect(try await store.client.list(prefix: config.keyPrefix).isEmpty, "the probe objects are removed")
        config.archive = S3ArchiveLocation(bucket: "no-such-archive-bucket")
        let problems = await (try S3BlobStore(config)).probe()
        #expect(problems.count == 1 && problems[0].contains("archive tier") && problems[0].contains("does not exist"), "\(problems)")
    }

    @Test func badEndpointsAndBucketsAreRefused() {
        let good = S3Configuration(endpoint: "http://127.0.0.1:9000", bucket: "b", accessKeyID: "k", secretAccessKey: "s")
        for endpoint in ["127.0.0.1:9000", "ftp://x", "http://host/path", "http://"] {
            var c = good
            c.endpoint = endpoint
            #expect(throws: StorageError.self) { try S3BlobStore(c) }
        }
        var c = good
        c.bucket = "a/b"
        #expect(throws: StorageError.self) { try S3BlobStore(c) }
    }
}
