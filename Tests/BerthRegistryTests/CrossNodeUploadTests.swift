import BerthCore
import BerthRegistry
import BerthStorage
import BerthSupport
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

/// A blob store whose staged bytes appear only when their writer closes, as an object store's segment does
/// (its `PUT` at close, docs/s3.md): a writer buffers, then at `close(fence:)` runs the fence and writes
/// everything at its offset in one go (truncating what lay beyond, as `openUpload` does).
final class PublishAtCloseBlobStore: BlobStore {
    let inner = InMemoryBlobStore()
    /// Runs at the start of every commit (a test holds a commit there).
    let beforeCommit: @Sendable () async -> Void
    init(beforeCommit: @escaping @Sendable () async -> Void = {}) { self.beforeCommit = beforeCommit }

    final class Writer: BlobUploadWriter {
        let store: InMemoryBlobStore
        let id: String
        let offset: Int64
        let pending = Mutex(ByteBuffer())
        let closed = Atomic<Bool>(false)
        init(store: InMemoryBlobStore, id: String, offset: Int64) {
            (self.store, self.id, self.offset) = (store, id, offset)
        }
        func write(_ buffer: ByteBuffer) async throws {
            pending.withLock { var b = buffer; $0.writeBuffer(&b) }
        }
        func close() async throws { try await close(fence: {}) }
        func close(fence: () async throws -> Void) async throws {
            guard !closed.exchange(true, ordering: .relaxed) else { return }
            try await fence()
            let w = try await store.openUpload(id: id, at: offset)
            try await w.write(pending.withLock { $0 })
            try await w.close()
        }
    }

    func size(of digest: Digest) async throws -> Int64? { try await inner.size(of: digest) }
    func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        try await inner.read(digest, range: range, into: consumer)
    }
    func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter {
        if try await inner.uploadedSize(id: id) == nil { try await inner.openUpload(id: id, at: 0).close() }
        return Writer(store: inner, id: id, offset: offset)
    }
    func uploadedSize(id: String) async throws -> Int64? { try await inner.uploadedSize(id: id) }
    func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        try await inner.readUpload(id: id, length: length, into: consumer)
    }
    func commitUpload(id: String, as digest: Digest) async throws {
        await beforeCommit()
        try await inner.commitUpload(id: id, as: digest)
    }
    func deleteUpload(id: String) async throws { try await inner.deleteUpload(id: id) }
    func delete(_ digest: Digest) async throws { try await inner.delete(digest) }
}

/// Two requests writing one upload at one offset on two nodes (issue #14, docs/s3.md "Concurrent writes of
/// one upload"): the upload's claim in the shared metadata admits one writer; the other is refused as one
/// node refuses it, and the blob holds the bytes its digest was computed from.
@Suite struct ConcurrentWritersAcrossNodesTests {
    let repo = key("library/race")

    /// Two nodes sharing the stores and a clock the test moves.
    func nodes(_ blobs: any BlobStore, _ meta: any MetadataStore, _ clock: ManualWallClock) -> [Registry] {
        (0..<2).map { _ in
            Registry(blobs: blobs, metadata: meta, settings: RegistrySettings(writeBufferSize: 8, uploadWriterTimeout: 60), clock: clock)
        }
    }

    /// Waits until a request holds the upload's claim (it is past its claim and streaming).
    func waitForClaim(_ meta: any MetadataStore, _ id: String) async throws {
        for _ in 0..<2000 {
            if try await meta.upload(id)?.writer != nil { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("no request claimed upload \(id)")
    }

    @Test func aSecondWriterOfTheSameOffsetIsRefusedBeforeItWrites() async throws {
        let blobs = PublishAtCloseBlobStore()
        let meta = InMemoryMetadataStore()
        let nodes = nodes(blobs, meta, ManualWallClock())
        let s = try await nodes[0].startUpload(repo)
        let (body, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
        let first = Task { try await nodes[0].appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 7), contentLength: 8, body: body) }
        feed.yield(ByteBuffer(string: "aaaa"))
        try await waitForClaim(meta, s.id)
        do {
            _ = try await nodes[1].appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 7), contentLength: 8, body: Body("bbbbbbbb"))
            Issue.record("the second writer was admitted")
        } catch BerthError.rangeNotSatisfiable(let offset, let detail) {
            #expect(offset == 0 && detail == "another chunk of this upload is in progress")
        }
        feed.yield(ByteBuffer(string: "aaaa"))
        feed.finish()
        #expect(try await first.value == 8)
        #expect(try await meta.upload(s.id)?.writer == nil, "the advance released the claim")
        // The completion (on the other node, which lacks the hash) commits exactly the winner's bytes.
        let d = try await nodes[1].completeUpload(repo, upload: s.id, digest: sha("aaaaaaaa"), range: nil, contentLength: 0, body: Body())
        #expect(try await read(nodes[0], d) == "aaaaaaaa")
    }

    /// A writer whose process stalls (or dies) stops renewing its claim: none of its timers fire, which its
    /// own clock, never moved, stands for. Another node is refused within the timeout and takes the upload over
    /// after it; when the stalled writer resumes, its fence finds the claim gone and its bytes are never
    /// written, so they cannot replace the bytes of the request that advanced.
    @Test func aStalledWriterTakenOverWritesNothing() async throws {
        let blobs = PublishAtCloseBlobStore()
        let meta = InMemoryMetadataStore()
        let clock = ManualWallClock()
        let settings = RegistrySettings(writeBufferSize: 8, uploadWriterTimeout: 60)
        let stalledNode = Registry(blobs: blobs, metadata: meta, settings: settings, clock: ManualWallClock())
        let other = Registry(blobs: blobs, metadata: meta, settings: settings, clock: clock)
        let s = try await stalledNode.startUpload(repo)
        let (body, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
        let stalled = Task { try await stalledNode.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 3), contentLength: 4, body: body) }
        feed.yield(ByteBuffer(string: "aa"))
        try await waitForClaim(meta, s.id)
        clock.advance(by: 59)
        await #expect(throws: BerthError.self, "the claim holds within the timeout") {
            _ = try await other.appendChunk(self.repo, upload: s.id, range: ByteRange(start: 0, end: 3), contentLength: 4, body: Body("bbbb"))
        }
        clock.advance(by: 2)
        #expect(try await other.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 3), contentLength: 4, body: Body("bbbb")) == 4,
                "a retry at the same offset is admitted once the timeout passed")
        feed.yield(ByteBuffer(string: "aa"))
        feed.finish()
        do {
            _ = try await stalled.value
            Issue.record("the stalled writer's chunk was accepted")
        } catch BerthError.rangeNotSatisfiable(_, let detail) {
            #expect(detail == "another request took this upload over while this one stalled")
        }
        #expect(try await meta.upload(s.id)?.offset == 4)
        let d = try await stalledNode.completeUpload(repo, upload: s.id, digest: sha("bbbb"), range: nil, contentLength: 0, body: Body())
        #expect(try await read(other, d) == "bbbb")
    }

    /// A live writer renews its claim while it streams (`UploadClaimHeartbeat`): a chunk that takes many
    /// timeouts keeps the upload, and a second writer is refused all along.
    @Test func aLiveWriterKeepsItsClaimPastTheTimeout() async throws {
        let blobs = PublishAtCloseBlobStore()
        let meta = InMemoryMetadataStore()
        let clock = ManualWallClock()
        let nodes = nodes(blobs, meta, clock)
        let s = try await nodes[0].startUpload(repo)
        let (body, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
        let slow = Task { try await nodes[0].appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 5), contentLength: 6, body: body) }
        feed.yield(ByteBuffer(string: "aa"))
        try await waitForClaim(meta, s.id)
        for beat in 1...10 {  // 10 beats of 12 s: twice the timeout
            clock.advance(by: 12)
            try await waitUntil("renewal \(beat)") { try await meta.upload(s.id)?.writingSince == clock.now() }
            if beat == 5 { feed.yield(ByteBuffer(string: "aa")) }
        }
        do {
            _ = try await nodes[1].appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 5), contentLength: 6, body: Body("bbbbbb"))
            Issue.record("a second writer took over a live writer's upload")
        } catch BerthError.rangeNotSatisfiable(let offset, let detail) {
            #expect(offset == 0 && detail == "another chunk of this upload is in progress")
        }
        feed.yield(ByteBuffer(string: "aa"))
        feed.finish()
        #expect(try await slow.value == 6)
        #expect(try await meta.upload(s.id)?.writer == nil, "the advance released the claim")
        let d = try await nodes[1].completeUpload(repo, upload: s.id, digest: sha("aaaaaa"), range: nil, contentLength: 0, body: Body())
        #expect(try await read(nodes[0], d) == "aaaaaa")
    }

    /// A writer whose renewal finds its claim taken (its node's clock lagged, or it stalled and woke) fails its
    /// chunk at once, without waiting for the rest of its body, and writes nothing.
    @Test func aHeartbeatThatFindsTheClaimTakenFailsTheChunk() async throws {
        let blobs = PublishAtCloseBlobStore()
        let meta = InMemoryMetadataStore()
        let (laggingClock, clock) = (ManualWallClock(), ManualWallClock())
        let settings = RegistrySettings(writeBufferSize: 8, uploadWriterTimeout: 60)
        let lagging = Registry(blobs: blobs, metadata: meta, settings: settings, clock: laggingClock)
        let other = Registry(blobs: blobs, metadata: meta, settings: settings, clock: clock)
        let s = try await lagging.startUpload(repo)
        let (body, feed) = AsyncStream.makeStream(of: ByteBuffer.self)
        let finished = Atomic<Bool>(false)
        let loser = Task {
            defer { finished.store(true, ordering: .relaxed) }
            return try await lagging.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 3), contentLength: 4, body: body)
        }
        feed.yield(ByteBuffer(string: "aa"))
        try await waitForClaim(meta, s.id)
        clock.advance(by: 61)
        #expect(try await other.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 3), contentLength: 4, body: Body("bbbb")) == 4)
        laggingClock.advance(by: 12)  // its next beat
        try await waitUntil("the loser's chunk fails") { finished.load(ordering: .relaxed) }
        feed.finish()
        do {
            _ = try await loser.value
            Issue.record("the taken-over writer's chunk was accepted")
        } catch BerthError.rangeNotSatisfiable(_, let detail) {
            #expect(detail == "another request took this upload over while this one stalled")
        }
        let d = try await other.completeUpload(repo, upload: s.id, digest: sha("bbbb"), range: nil, contentLength: 0, body: Body())
        #expect(try await read(other, d) == "bbbb")
    }

    /// Waits (up to 5 s) until `condition` holds.
    func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<5000 {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(1))
        }
        Issue.record("timed out waiting for \(what)")
    }

    /// A chunk arriving while another request completes the upload (on another node, from its digest check
    /// to its commit) is refused: it would otherwise land in the committed blob under a digest computed without it.
    @Test func aCompletionHoldsTheUploadUntilItCommits() async throws {
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let committing = Atomic<Bool>(false)
        let blobs = PublishAtCloseBlobStore(beforeCommit: {
            committing.store(true, ordering: .relaxed)
            for await _ in gate { break }
        })
        let meta = InMemoryMetadataStore()
        let nodes = nodes(blobs, meta, ManualWallClock())
        let s = try await nodes[0].startUpload(repo)
        _ = try await nodes[0].appendChunk(repo, upload: s.id, range: nil, contentLength: 3, body: Body("abc"))
        let completing = Task {
            try await nodes[0].completeUpload(repo, upload: s.id, digest: sha("abc"), range: nil, contentLength: 0, body: Body())
        }
        while !committing.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(1)) }
        do {
            _ = try await nodes[1].appendChunk(repo, upload: s.id, range: ByteRange(start: 3, end: 5), contentLength: 3, body: Body("XYZ"))
            Issue.record("a chunk was appended to an upload being committed")
        } catch BerthError.rangeNotSatisfiable(let offset, let detail) {
            #expect(offset == 3 && detail == "another chunk of this upload is in progress")
        }
        open.yield()
        let d = try await completing.value
        #expect(try await read(nodes[1], d) == "abc")
    }
}
