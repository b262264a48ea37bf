import BerthCore
import BerthRegistry
import BerthStorage
import NIOCore
import Synchronization
import Testing

/// A blob store that counts the staged bytes read back (the re-hashing a node without hash state does).
final class ReadCountingBlobStore: BlobStore {
    let inner = InMemoryBlobStore()
    let readBack = Atomic<Int64>(0)

    func size(of digest: Digest) async throws -> Int64? { try await inner.size(of: digest) }
    func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        try await inner.read(digest, range: range, into: consumer)
    }
    func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter { try await inner.openUpload(id: id, at: offset) }
    func uploadedSize(id: String) async throws -> Int64? { try await inner.uploadedSize(id: id) }
    func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        readBack.add(length, ordering: .relaxed)
        try await inner.readUpload(id: id, length: length, into: consumer)
    }
    func commitUpload(id: String, as digest: Digest) async throws { try await inner.commitUpload(id: id, as: digest) }
    func deleteUpload(id: String) async throws { try await inner.deleteUpload(id: id) }
    func delete(_ digest: Digest) async throws { try await inner.delete(digest) }
}

@Suite struct CrossNodeUploadTests {
    let repo = key("library/nodes")

    /// Chunks alternating between two nodes (registries sharing only the stores): the node that lacks the
    /// hash of the bytes before a chunk does not read them back then; the completion reads the upload back
    /// once, so the cost stays linear in the blob's size whatever the number of chunks.
    @Test func alternatingChunksAreReadBackOnceAtCompletion() async throws {
        let blobs = ReadCountingBlobStore()
        let meta = InMemoryMetadataStore()
        let nodes = [makeRegistry(blobs: blobs, metadata: meta), makeRegistry(blobs: blobs, metadata: meta)]
        let chunks = ["abcd", "efgh", "ijkl", "mnop", "qrst", "uvwx"]
        let s = try await nodes[0].startUpload(repo)
        var offset: Int64 = 0
        for (i, chunk) in chunks.enumerated() {
            offset = try await nodes[i % 2].appendChunk(repo, upload: s.id, range: nil, contentLength: 4, body: Body(chunk))
        }
        #expect(offset == 24)
        #expect(blobs.readBack.load(ordering: .relaxed) == 0, "no chunk re-reads what came before it")
        let d = try await nodes[1].completeUpload(repo, upload: s.id, digest: sha(chunks.joined()), range: nil,
                                                  contentLength: 0, body: Body())
        #expect(blobs.readBack.load(ordering: .relaxed) == 24)
        #expect(try await read(nodes[0], d) == chunks.joined())
    }

    /// Chunks that all reach the node holding the hash state are never read back.
    @Test func chunksOnOneNodeAreHashedOnce() async throws {
        let blobs = ReadCountingBlobStore()
        let r = makeRegistry(blobs: blobs, metadata: InMemoryMetadataStore())
        let s = try await r.startUpload(repo)
        for chunk in ["abc", "def", "ghi"] {
            _ = try await r.appendChunk(repo, upload: s.id, range: nil, contentLength: 3, body: Body(chunk))
        }
        _ = try await r.completeUpload(repo, upload: s.id, digest: sha("abcdefghi"), range: nil, contentLength: 0, body: Body())
        #expect(blobs.readBack.load(ordering: .relaxed) == 0)
    }

    /// A wrong digest is still refused when the hash is only computed at completion.
    @Test func aWrongDigestIsRefusedAfterCrossNodeChunks() async throws {
        let blobs = ReadCountingBlobStore()
        let meta = InMemoryMetadataStore()
        let nodes = [makeRegistry(blobs: blobs, metadata: meta), makeRegistry(blobs: blobs, metadata: meta)]
        let s = try await nodes[0].startUpload(repo)
        _ = try await nodes[0].appendChunk(repo, upload: s.id, range: nil, contentLength: 3, body: Body("abc"))
        _ = try await nodes[1].appendChunk(repo, upload: s.id, range: nil, contentLength: 3, body: Body("def"))
        await #expect(throws: BerthError.self) {
            _ = try await nodes[0].completeUpload(self.repo, upload: s.id, digest: sha("abcdeX"), range: nil,
                                                  contentLength: 0, body: Body())
        }
    }
}
