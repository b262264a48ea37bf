import BerthCore
import BerthSupport
import NIOCore
import Synchronization

/// Blobs in memory, for tests and ephemeral registries. With `archiveTier`, blobs can be marked as moved
/// to an archive tier (`BlobTiering`); their bytes stay readable, as with any tiered store.
public final class InMemoryBlobStore: BlobStore, BlobTiering, BlobInventory, DirectBlobWriting {
    private struct State {
        var blobs: [Digest: ByteBuffer] = [:]
        var uploads: [String: ByteBuffer] = [:]
        var archived: Set<Digest> = []
        /// When each blob and upload last changed, by `clock`.
        var changed: [String: Double] = [:]
        /// Writers open on each upload (the collector leaves those uploads alone).
        var writers: [String: Int] = [:]
        /// Direct writes not yet published or discarded, and when each began.
        var direct: [UInt64: Double] = [:]
        var nextDirect: UInt64 = 0
        var published = 0
    }
    private let state = Mutex(State())
    private let chunkSize: Int
    private let clock: any WallClock
    public let hasArchiveTier: Bool
    /// Whether monolithic pushes are written straight under their digest (as on S3), or staged like chunks.
    public let writesBlobsDirectly: Bool

    public init(chunkSize: Int = 1 << 20, archiveTier: Bool = false, directWrites: Bool = false,
                clock: any WallClock = SystemWallClock()) {
        self.chunkSize = chunkSize
        hasArchiveTier = archiveTier
        writesBlobsDirectly = directWrites
        self.clock = clock
    }

    /// Direct writes begun and neither published nor discarded (a test's view of what a crash would leave).
    public var unfinishedBlobWrites: Int { state.withLock { $0.direct.count } }
    /// Direct writes published so far.
    public var publishedBlobWrites: Int { state.withLock { $0.published } }

    public func openBlob(_ digest: Digest) async throws -> any DirectBlobWriter {
        let number = state.withLock { s in
            s.nextDirect += 1
            s.direct[s.nextDirect] = clock.now()
            return s.nextDirect
        }
        return DirectWriter(store: self, digest: digest, number: number)
    }

    public func abandonBlobWrites(before cutoff: Double) async throws -> Int {
        state.withLock { s in
            let old = s.direct.filter { $0.value < cutoff }.map(\.key)
            for n in old { s.direct[n] = nil }
            return old.count
        }
    }

    /// Ends direct write `number`: with its bytes stored as `digest`, or (nil) dropped. False when the write
    /// was abandoned meanwhile.
    fileprivate func endDirect(_ number: UInt64, storing bytes: ByteBuffer?, as digest: Digest) -> Bool {
        state.withLock { s in
            guard s.direct.removeValue(forKey: number) != nil else { return false }
            if let bytes {
                s.published += 1
                s.blobs[digest] = bytes
                s.archived.remove(digest)
                s.changed[digest.description] = clock.now()
            }
            return true
        }
    }

    private final class DirectWriter: DirectBlobWriter, @unchecked Sendable {
        let store: InMemoryBlobStore
        let digest: Digest
        let number: UInt64
        private var bytes = ByteBuffer()
        init(store: InMemoryBlobStore, digest: Digest, number: UInt64) {
            self.store = store
            self.digest = digest
            self.number = number
        }
        func write(_ buffer: ByteBuffer) async throws { bytes.writeImmutableBuffer(buffer) }
        func close() async throws {}
        func publish() async throws {
            guard store.endDirect(number, storing: bytes, as: digest) else {
                throw StorageError("the write of blob \(digest) was abandoned")
            }
        }
        func discard() async { _ = store.endDirect(number, storing: nil, as: digest) }
    }

    public func moveToArchive(_ digest: Digest) async throws {
        guard hasArchiveTier else { return }
        state.withLock { s in if s.blobs[digest] != nil { s.archived.insert(digest) } }
    }

    public func moveFromArchive(_ digest: Digest) async throws {
        _ = state.withLock { $0.archived.remove(digest) }
    }

    public func isInArchive(_ digest: Digest) async throws -> Bool {
        state.withLock { $0.archived.contains(digest) }
    }

    public func delete(_ digest: Digest) async throws {
        state.withLock { s in
            s.blobs[digest] = nil
            s.archived.remove(digest)
            s.changed[digest.description] = nil
        }
    }

    public func isStored(_ digest: Digest) async throws -> Bool { state.withLock { $0.blobs[digest] != nil } }

    public func storedBlobs() async throws -> [StoredFile<Digest>] {
        state.withLock { s in
            s.blobs.map { StoredFile(name: $0.key, size: Int64($0.value.readableBytes), changedAt: s.changed[$0.key.description] ?? 0) }
        }
    }

    public func stagedUploads() async throws -> [StoredFile<String>] {
        state.withLock { s in
            s.uploads.filter { s.writers[$0.key] == nil }
                .map { StoredFile(name: $0.key, size: Int64($0.value.readableBytes), changedAt: s.changed["upload:" + $0.key] ?? 0) }
        }
    }

    public func size(of digest: Digest) async throws -> Int64? {
        state.withLock { $0.blobs[digest].map { Int64($0.readableBytes) } }
    }

    public func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard var buf = state.withLock({ $0.blobs[digest] }) else { throw StorageError("blob \(digest) not found") }
        if let range {
            guard range.end < Int64(buf.readableBytes) else { throw StorageError("range beyond blob") }
            buf = buf.getSlice(at: buf.readerIndex + Int(range.start), length: Int(range.count))!
        }
        while buf.readableBytes > 0 {
            try await consumer(buf.readSlice(length: min(chunkSize, buf.readableBytes))!)
        }
    }

    public func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter {
        try state.withLock { s in
            var b = s.uploads[id] ?? ByteBuffer()
            guard Int64(b.readableBytes) >= offset else { throw StorageError("upload \(id) shorter than \(offset)") }
            b.moveWriterIndex(to: b.readerIndex + Int(offset))
            s.uploads[id] = b
            s.changed["upload:" + id] = clock.now()
            s.writers[id, default: 0] += 1
        }
        return Writer(store: self, id: id)
    }

    public func uploadedSize(id: String) async throws -> Int64? {
        state.withLock { $0.uploads[id].map { Int64($0.readableBytes) } }
    }

    public func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard let b = state.withLock({ $0.uploads[id] }) else { throw StorageError("upload \(id) not found") }
        try await consumer(b.getSlice(at: b.readerIndex, length: Int(length))!)
    }

    public func readUpload(id: String, range: ByteRange, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard let b = state.withLock({ $0.uploads[id] }) else { throw StorageError("upload \(id) not found") }
        guard range.end < Int64(b.readableBytes) else { throw StorageError("upload \(id) has fewer than \(range.end + 1) bytes") }
        try await consumer(b.getSlice(at: b.readerIndex + Int(range.start), length: Int(range.count))!)
    }

    public func commitUpload(id: String, as digest: Digest) async throws {
        try state.withLock { s in
            guard let b = s.uploads.removeValue(forKey: id) else { throw StorageError("upload \(id) not found") }
            s.blobs[digest] = b
            s.archived.remove(digest)  // committed anew in the primary tier
            s.changed["upload:" + id] = nil
            s.changed[digest.description] = clock.now()
        }
    }

    public func deleteUpload(id: String) async throws {
        state.withLock { s in
            s.uploads[id] = nil
            s.changed["upload:" + id] = nil
        }
    }

    fileprivate func append(_ id: String, _ buffer: ByteBuffer) throws {
        try state.withLock { s in
            guard var b = s.uploads[id] else { throw StorageError("upload \(id) not found") }
            s.uploads[id] = nil  // keep the buffer uniquely referenced while appending
            b.writeImmutableBuffer(buffer)
            s.uploads[id] = b
            s.changed["upload:" + id] = clock.now()
        }
    }

    fileprivate func closeWriter(_ id: String) {
        state.withLock { s in
            if let n = s.writers[id] { s.writers[id] = n > 1 ? n - 1 : nil }
        }
    }

    private final class Writer: BlobUploadWriter {
        let store: InMemoryBlobStore
        let id: String
        private let closed = Atomic<Bool>(false)
        init(store: InMemoryBlobStore, id: String) {
            self.store = store
            self.id = id
        }
        func write(_ buffer: ByteBuffer) async throws { try store.append(id, buffer) }
        func close() async throws {
            if !closed.exchange(true, ordering: .relaxed) { store.closeWriter(id) }
        }
        deinit { if !closed.load(ordering: .relaxed) { store.closeWriter(id) } }
    }
}
