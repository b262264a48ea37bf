import BerthCore
@testable import BerthStorage
import Foundation
import NIOCore
import Testing

/// Moves between tiers on different filesystems (copy, fsync, rename, then remove the source).
@Suite struct BlobTierCopyTests {
    @Test func copyFileCopiesEveryByte() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-copy-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let bytes = (0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try Data(bytes).write(to: URL(fileURLWithPath: dir + "/src"))
        try FileSystemBlobStore.copyFile(dir + "/src", to: dir + "/dst")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/dst")) == Data(bytes))
        #expect(throws: StorageError.self) { try FileSystemBlobStore.copyFile(dir + "/missing", to: dir + "/dst2") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/dst2"))
    }

    /// /dev/shm is another filesystem than the temporary directory on Linux: `rename(2)` fails with EXDEV there.
    @Test func movesAcrossFilesystems() async throws {
        let shm = "/dev/shm"
        guard FileManager.default.isWritableFile(atPath: shm) else { return }
        let data = FileManager.default.temporaryDirectory.appendingPathComponent("berth-xdev-\(UUID().uuidString)").path
        let archive = shm + "/berth-xdev-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let s = try FileSystemBlobStore(root: data, archiveRoot: archive)
        let w = try await s.openUpload(id: "u1", at: 0)
        try await w.write(ByteBuffer(string: "across devices"))
        try await w.close()
        let d = Digest.sha256(of: Array("across devices".utf8))
        try await s.commitUpload(id: "u1", as: d)
        try await s.moveToArchive(d)
        #expect(try await s.isInArchive(d))
        #expect(!FileManager.default.fileExists(atPath: s.layout.blobPath(d)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: archive + "/uploads").isEmpty, "no staging file left")
        var out = ""
        try await s.read(d, range: nil) { out += String(buffer: $0) }
        #expect(out == "across devices")
        try await s.moveFromArchive(d)
        #expect(try await !s.isInArchive(d))
        #expect(FileManager.default.fileExists(atPath: s.layout.blobPath(d)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: data + "/uploads").isEmpty)
    }
}
