import AsyncHTTPClient
import BerthCore
import BerthStorage
import Foundation
import NIOCore

/// Content-addressed blobs in an S3-compatible bucket (docs/s3.md).
///
/// ```
/// <prefix>blobs/<algorithm>/<first two hex>/<hex>      committed blob, immutable
/// <prefix>uploads/<upload id>/<start offset, 16 digits> one segment of a staged upload
/// ```
/// An upload is a run of contiguous segment objects, one per `openUpload`…`close` (an OCI chunk). Every
/// segment but the last is at least `minimumPartSize` long: a writer that opens after a shorter segment
/// takes its bytes over (re-reads them, rewrites the segment under the same key, longer), so a commit can
/// always assemble the blob server-side from `UploadPartCopy` pieces of its segments (`copyPieces`). Nothing lives in the process:
/// any node can append to, read or commit an upload another node started.
///
/// With `S3Configuration.archive`, blobs only archived images use can move to an archive tier
/// (`BlobTiering`): `<archive prefix>blobs/…` in the archive bucket (the same one by default), optionally in
/// another storage class. Moves are server-side copies, then a delete of the source; every read looks in
/// both tiers (primary, archive, primary again), so a blob is readable at every moment of a move.
public final class S3BlobStore: BlobStore, BlobTiering, BlobInventory, DirectBlobWriting {
    let client: S3Client
    /// The archive tier's bucket and key prefix, when one is configured.
    let archive: S3Client?
    /// Bytes buffered per part while streaming a segment (S3's minimum is 5 MiB).
    let partSize: Int
    /// The size below which a segment is taken over by the next writer (S3's minimum part size).
    let minimumPartSize: Int64
    /// The largest object a single `CopyObject` copies.
    let maximumCopySize: Int64
    /// Server-side copies longer than this are made of pieces of about this size, `copyConcurrency` at a time
    /// (Distribution's `s3` driver copies in 32 MiB pieces too): one `CopyObject` or one `UploadPartCopy` of a
    /// whole large blob is copied by one stream of the store's, on one core.
    let copyPieceSize: Int64
    let copyConcurrency: Int

    public init(_ config: S3Configuration, partSize: Int = 8 << 20, minimumPartSize: Int64 = 5 << 20,
                maximumCopySize: Int64 = 5 << 30, copyPieceSize: Int64 = 32 << 20, copyConcurrency: Int = 4,
                httpClient: HTTPClient? = nil) throws {
        client = try S3Client(config, http: httpClient ?? S3Client.sharedHTTPClient)
        if let location = config.archive, let archiveConfig = config.archiveConfiguration {
            let problems = location.problems(primary: config)
            guard problems.isEmpty else { throw StorageError(problems.joined(separator: "; ")) }
            archive = try S3Client(archiveConfig, http: client.http)
        } else {
            archive = nil
        }
        self.partSize = max(partSize, Int(minimumPartSize))
        self.minimumPartSize = minimumPartSize
        self.maximumCopySize = maximumCopySize
        // At least twice the minimum part size, so that pieces cut evenly are never shorter than it.
        self.copyPieceSize = min(max(copyPieceSize, 2 * minimumPartSize), maximumCopySize)
        self.copyConcurrency = max(1, copyConcurrency)
    }

    public var configuration: S3Configuration { client.config }

    // MARK: Keys

    var prefix: String { client.config.keyPrefix }

    func blobKey(_ digest: Digest) -> String {
        Self.blobKey(digest, prefix: prefix)
    }

    static func blobKey(_ digest: Digest, prefix: String) -> String {
        "\(prefix)blobs/\(digest.algorithm.rawValue)/\(digest.encoded.prefix(2))/\(digest.encoded)"
    }

    /// The key of a blob's object in the archive tier (in `archive`'s bucket).
    func archiveKey(_ digest: Digest, in archive: S3Client) -> String {
        Self.blobKey(digest, prefix: archive.config.keyPrefix)
    }

    /// Where to look for a blob, in order: primary, archive, primary again (a blob moving between the tiers is
    /// in one of them at every moment); only the primary tier without an archive tier.
    func tierObjects(_ digest: Digest) -> [(client: S3Client, key: String)] {
        let primary = (client, blobKey(digest))
        guard let archive else { return [primary] }
        return [primary, (archive, archiveKey(digest, in: archive)), primary]
    }

    func uploadPrefix(_ id: String) throws -> String {
        guard FileSystemLayout.isValidUploadID(id) else { throw StorageError("invalid upload id") }
        return "\(prefix)uploads/\(id)/"
    }

    static func segmentName(_ start: Int64) -> String {
        let digits = String(start)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// One staged piece of an upload: bytes `start..<start+size` of the upload, the first `size` bytes of
    /// object `key` (which may hold more: see `segments`).
    struct Segment: Sendable {
        var key: String
        var start: Int64
        var size: Int64
        var lastModified: Double
        /// The object's length: `size`, or more when a later segment starts inside it.
        var objectSize: Int64
        var end: Int64 { start + size }
        init(key: String, start: Int64, size: Int64, lastModified: Double) {
            self.key = key
            self.start = start
            self.size = size
            self.lastModified = lastModified
            objectSize = size
        }
    }

    /// The segments of an upload in order, checked to be contiguous from 0. A segment that starts inside
    /// the one before it (`openUpload` at an offset inside a long segment starts a new one there rather
    /// than rewriting it) cuts that one short: its bytes past the new start are dead, and its `size` is
    /// what is kept (at least the minimum part size, so it can still be a part of the assembled blob).
    func segments(_ id: String) async throws -> [Segment] {
        let prefix = try uploadPrefix(id)
        var segments = try await client.list(prefix: prefix).compactMap { object -> Segment? in
            guard let start = Int64(object.key.dropFirst(prefix.count)) else { return nil }
            return Segment(key: object.key, start: start, size: object.size, lastModified: object.lastModified)
        }.sorted { $0.start < $1.start }
        var end: Int64 = 0
        for (i, s) in segments.enumerated() {
            // A gap is damage. (A zero-length segment at the end is the marker of an empty upload, or what
            // was kept of one cut back to nothing.)
            guard s.start <= end else {
                throw StorageError("upload \(id) is not contiguous at offset \(end) (segment at \(s.start))")
            }
            if s.start < end {
                // Cut the previous non-empty segment back to where this one starts.
                guard let p = segments[..<i].lastIndex(where: { $0.size > 0 }), s.start > segments[p].start else {
                    throw StorageError("upload \(id) has overlapping segments at offset \(s.start)")
                }
                segments[p].size = s.start - segments[p].start
            }
            end = s.end
        }
        return segments
    }

    // MARK: BlobReading

    public func size(of digest: Digest) async throws -> Int64? {
        for (client, key) in tierObjects(digest) {
            if let size = try await client.head(key) { return size }
        }
        return nil
    }

    public func isStored(_ digest: Digest) async throws -> Bool {
        try await size(of: digest) != nil
    }

    public func presignedDownloadURL(of digest: Digest, expiresIn seconds: Int, now: Double) throws -> String? {
        try client.presignedGet(blobKey(digest), expires: seconds, date: Date(timeIntervalSince1970: now))
    }

    public func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        if let range, range.count <= 0 { return }
        for (client, key) in tierObjects(digest) {
            if try await client.get(key, range: range.map { $0.start...$0.end }, into: consumer) { return }
        }
        throw StorageError("blob \(digest) is not in the bucket")
    }

    /// One GET: the object's total size comes with the response (no HEAD before it).
    public func read(_ digest: Digest, range: ByteRange?, storedSize: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        if let range, range.count <= 0 {
            guard try await size(of: digest) == storedSize else { throw BlobSizeChanged(digest: digest) }
            return
        }
        for (client, key) in tierObjects(digest) {
            let found = try await client.get(key, range: range.map { $0.start...$0.end }, into: consumer) { total in
                guard total == storedSize else { throw BlobSizeChanged(digest: digest) }
            }
            if found { return }
        }
        throw StorageError("blob \(digest) is not in the bucket")
    }

    // MARK: BlobUploading

    public func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter {
        let segments = try await segments(id)
        let stagedEnd = segments.last?.end ?? 0
        guard stagedEnd >= offset else {
            throw StorageError("upload \(id) has \(stagedEnd) bytes, expected at least \(offset)")
        }
        // Bytes at and beyond `offset` were written by a request that did not complete.
        for s in segments where s.start >= offset && !(s.start == 0 && s.size == 0) {
            try await client.delete(s.key)
        }
        let kept = segments.filter { $0.start < offset }
        // A new segment at `offset`: after a segment that ends there and is long enough to be a part, or
        // inside one whose bytes up to `offset` are (its tail past `offset` is then dead: `segments`).
        // Sealing rewrites an upload's last 64 KiB segment at every chunk and at completion; without this,
        // each rewrite would copy the whole S3 segment before it again.
        guard let last = kept.last, offset - last.start < minimumPartSize else {
            let existing = segments.first { $0.start == offset && $0.size == 0 }
            // Inside a segment, the new one must exist even with no byte: it is what cuts that one back.
            return S3UploadWriter(store: self, key: try uploadPrefix(id) + Self.segmentName(offset), existingSize: existing?.size,
                                  cutsBack: kept.last.map { $0.start + $0.objectSize > offset } ?? false)
        }
        // Take over the last segment's bytes up to `offset`: it is too short to be a part of its own, or it
        // holds bytes past `offset` that must go.
        let writer = S3UploadWriter(store: self, key: last.key, existingSize: last.objectSize)
        if offset > last.start {
            _ = try await client.get(last.key, range: 0...(offset - last.start - 1)) { try await writer.carry($0) }
        }
        return writer
    }

    public func uploadedSize(id: String) async throws -> Int64? {
        let segments = try await segments(id)
        return segments.isEmpty ? nil : segments.last!.end
    }

    public func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        var remaining = length
        for s in try await segments(id) where remaining > 0 && s.size > 0 {
            let count = min(s.size, remaining)
            guard try await client.get(s.key, range: 0...(count - 1), into: consumer) else {
                throw StorageError("segment \(s.key) of upload \(id) vanished")
            }
            remaining -= count
        }
        if remaining > 0 { throw StorageError("upload \(id) has fewer than \(length) bytes") }
    }

    public func readUpload(id: String, range: ByteRange, into consumer: (ByteBuffer) async throws -> Void) async throws {
        var at = range.start  // the next byte wanted
        for s in try await segments(id) where s.size > 0 && at <= range.end && s.start + s.size > at {
            guard s.start <= at else { break }  // a gap: reported below
            let end = min(range.end, s.start + s.size - 1)
            guard try await client.get(s.key, range: (at - s.start)...(end - s.start), into: consumer) else {
                throw StorageError("segment \(s.key) of upload \(id) vanished")
            }
            at = end + 1
        }
        if at <= range.end { throw StorageError("upload \(id) has fewer than \(range.end + 1) bytes") }
    }

    public func commitUpload(id: String, as digest: Digest) async throws {
        let all = try await segments(id)
        let segments = all.filter { $0.size > 0 || $0.start == 0 }
        guard !segments.isEmpty else { throw StorageError("upload \(id) does not exist") }
        let target = blobKey(digest)
        let nonEmpty = segments.filter { $0.size > 0 }
        if nonEmpty.count <= 1, (nonEmpty.first?.size ?? 0) <= copyPieceSize,
           nonEmpty.first.map({ $0.size == $0.objectSize }) ?? true {
            try await client.copy(from: (nonEmpty.first ?? segments[0]).key, to: target)
        } else {
            try await assemble(nonEmpty.map { ($0.key, $0.size) }, into: target)
        }
        try await deleteSegments(all)
    }

    /// The `UploadPartCopy` pieces that build an object from `sources`, in part order: each source cut evenly
    /// into pieces of at most `copyPieceSize` (so none falls under the minimum part size).
    func copyPieces(_ sources: [(key: String, size: Int64)]) -> [(key: String, range: ClosedRange<Int64>)] {
        var pieces: [(key: String, range: ClosedRange<Int64>)] = []
        for s in sources {
            let count = Int64(max(1, (s.size + copyPieceSize - 1) / copyPieceSize))
            let pieceSize = (s.size + count - 1) / count
            var at: Int64 = 0
            while at < s.size {
                let end = min(s.size, at + pieceSize)
                pieces.append((s.key, at...(end - 1)))
                at = end
            }
        }
        return pieces
    }

    /// Builds `target` (through `destination`, default the primary tier) from `sources` of `sourceBucket`
    /// server-side: `UploadPartCopy` of each of `copyPieces`, `copyConcurrency` at a time, written in
    /// `storageClass` when given.
    func assemble(_ sources: [(key: String, size: Int64)], sourceBucket: String? = nil, into target: String,
                  through destination: S3Client? = nil, storageClass: String? = nil) async throws {
        let client = destination ?? self.client
        let uploadID = try await client.createMultipartUpload(target, storageClass: storageClass)
        do {
            let pieces = copyPieces(sources)
            var etags = [String](repeating: "", count: pieces.count)
            try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (i, piece) in pieces.enumerated() {
                    if i >= copyConcurrency, let (done, etag) = try await group.next() { etags[done] = etag }
                    group.addTask {
                        (i, try await client.uploadPartCopy(target, uploadID: uploadID, number: i + 1, source: piece.key,
                                                            sourceBucket: sourceBucket, range: piece.range))
                    }
                }
                for try await (done, etag) in group { etags[done] = etag }
            }
            try await client.completeMultipartUpload(target, uploadID: uploadID, etags: etags)
        } catch {
            try? await client.abortMultipartUpload(target, uploadID: uploadID)
            throw error
        }
    }

    func deleteSegments(_ segments: [Segment]) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, s) in segments.enumerated() {
                if i >= 8 { _ = try await group.next() }
                group.addTask { try await self.client.delete(s.key) }
            }
            try await group.waitForAll()
        }
    }

    public func deleteUpload(id: String) async throws {
        let prefix = try uploadPrefix(id)
        // A writer that died mid-segment leaves a multipart upload behind: abort it too.
        for pending in try await client.multipartUploads(prefix: prefix) where pending.key.hasPrefix(prefix) {
            try await client.abortMultipartUpload(pending.key, uploadID: pending.uploadID)
        }
        try await deleteSegments(try await client.list(prefix: prefix).map {
            Segment(key: $0.key, start: 0, size: $0.size, lastModified: $0.lastModified)
        })
    }

    // MARK: DirectBlobWriting

    public func openBlob(_ digest: Digest) async throws -> any DirectBlobWriter {
        S3BlobWriter(store: self, key: blobKey(digest))
    }

    public func abandonBlobWrites(before cutoff: Double) async throws -> Int {
        var count = 0
        for pending in try await client.multipartUploads(prefix: "\(prefix)blobs/") where pending.initiated < cutoff {
            try await client.abortMultipartUpload(pending.key, uploadID: pending.uploadID)
            count += 1
        }
        return count
    }

    // MARK: BlobDeleting and the collector's inventory

    /// Removes the blob from both tiers.
    public func delete(_ digest: Digest) async throws {
        try await client.delete(blobKey(digest))
        if let archive { try await archive.delete(archiveKey(digest, in: archive)) }
    }

    /// Every committed blob of both tiers (for the garbage collector's inventory; a blob moving between
    /// them may be listed twice, with one digest).
    public func storedBlobs() async throws -> [StoredFile<Digest>] {
        var found: [StoredFile<Digest>] = []
        for tier in [client] + (archive.map { [$0] } ?? []) {
            let root = "\(tier.config.keyPrefix)blobs/"
            found += try await tier.list(prefix: root).compactMap { object in
                let parts = object.key.dropFirst(root.count).split(separator: "/")
                guard parts.count == 3, let digest = Digest.parse("\(parts[0]):\(parts[2])") else { return nil }
                return StoredFile(name: digest, size: object.size, changedAt: object.lastModified)
            }
        }
        return found
    }

    /// Every staged upload: its size and when it last changed (its newest segment). A request still writing
    /// a segment is not in it: a segment's object appears only when its writer closes (the multipart upload
    /// completes), so the collector never deletes bytes a request is writing.
    public func stagedUploads() async throws -> [StoredFile<String>] {
        let root = "\(prefix)uploads/"
        var uploads: [String: StoredFile<String>] = [:]
        for object in try await client.list(prefix: root) {
            guard let id = object.key.dropFirst(root.count).split(separator: "/").first.map(String.init) else { continue }
            var file = uploads[id] ?? StoredFile(name: id, size: 0, changedAt: 0)
            file.size += object.size
            file.changedAt = max(file.changedAt, object.lastModified)
            uploads[id] = file
        }
        return uploads.values.sorted { $0.name < $1.name }
    }
}

// MARK: the archive tier

extension S3BlobStore {
    public var hasArchiveTier: Bool { archive != nil }

    /// Copies the blob's object to the archive tier (in the archive's storage class; over a stale copy left
    /// there), checks the copy's size, then deletes the primary object.
    public func moveToArchive(_ digest: Digest) async throws {
        guard let archive else { return }
        try await move(from: (client, blobKey(digest)), to: (archive, archiveKey(digest, in: archive)),
                       storageClass: client.config.archive?.storageClass, overwrite: true)
    }

    /// Copies the blob's object back to the primary tier (the bucket's default storage class) unless one is
    /// there already (the one reads find first), then deletes the archived object.
    public func moveFromArchive(_ digest: Digest) async throws {
        guard let archive else { return }
        try await move(from: (archive, archiveKey(digest, in: archive)), to: (client, blobKey(digest)), storageClass: nil, overwrite: false)
    }

    public func isInArchive(_ digest: Digest) async throws -> Bool {
        guard let archive else { return false }
        guard try await client.head(blobKey(digest)) == nil else { return false }
        return try await archive.head(archiveKey(digest, in: archive)) != nil
    }

    /// One move between tiers, complete in one of them at every moment: a server-side copy (`CopyObject`, or
    /// `UploadPartCopy` of pieces above `copyPieceSize`), its size checked, and only then
    /// the delete of the source. Bytes move as stored (a sealed blob stays sealed). Nothing when the source
    /// is gone (moved or collected meanwhile).
    func move(from source: (client: S3Client, key: String), to target: (client: S3Client, key: String),
              storageClass: String?, overwrite: Bool) async throws {
        guard let size = try await source.client.head(source.key) else { return }
        let copyNeeded = overwrite ? true : try await target.client.head(target.key) == nil
        if copyNeeded {
            do {
                if size <= copyPieceSize {
                    try await target.client.copy(from: source.key, sourceBucket: source.client.config.bucket, to: target.key,
                                                 storageClass: storageClass)
                } else {
                    try await assemble([(source.key, size)], sourceBucket: source.client.config.bucket, into: target.key,
                                       through: target.client, storageClass: storageClass)
                }
            } catch let e as S3Error where e.status == 404 && e.code != "NoSuchBucket" {
                return  // the source went meanwhile: nothing to move
            }
            let copied = try await target.client.head(target.key)
            guard copied == size else {
                throw StorageError("copying \(source.key) to \(target.key) left \(copied.map(String.init) ?? "no object") instead of \(size) bytes")
            }
        }
        try await source.client.delete(source.key)
    }
}

/// Streams one segment: in memory up to `singlePutSize`, then as a multipart upload, one part per `partSize`
/// (one part uploading while the next fills), so memory stays at two parts whatever the length. A segment
/// that fits in `singlePutSize` is one `PUT`; a quarter of a part more than `partSize` lets a chunk of exactly
/// `partSize` bytes of content — sealed, a little longer — be one request rather than four (create, a full
/// part, a part of a few KiB, complete).
final class S3UploadWriter: BlobUploadWriter, @unchecked Sendable {
    private let store: S3BlobStore
    private let key: String
    /// The size of the object already at `key` (nil when there is none).
    private let existingSize: Int64?
    private var buffer = ByteBuffer()
    private var carried: Int64 = 0
    private var written: Int64 = 0
    private var uploadID: String?
    private var etags: [String] = []
    private var inFlight: Task<String, any Error>?
    private var closed = false
    /// The segment starts inside the one before it (`S3BlobStore.openUpload`).
    private let cutsBack: Bool

    init(store: S3BlobStore, key: String, existingSize: Int64?, cutsBack: Bool = false) {
        self.store = store
        self.key = key
        self.existingSize = existingSize
        self.cutsBack = cutsBack
    }

    /// Bytes of the segment being replaced, taken over before any new byte.
    func carry(_ bytes: ByteBuffer) async throws {
        carried += Int64(bytes.readableBytes)
        try await append(bytes)
    }

    func write(_ bytes: ByteBuffer) async throws {
        written += Int64(bytes.readableBytes)
        try await append(bytes)
    }

    /// Parts grow after every 1000 so that a segment never needs more than S3's 10,000.
    private var currentPartSize: Int { store.partSize << min(etags.count / 1000, 8) }

    /// The longest segment written with one `PUT` (the first part's size, when it does not fit).
    private var singlePutSize: Int { store.partSize + store.partSize / 4 }

    /// What the buffer holds before it goes out as a part: the first part may be the longer `singlePutSize`.
    private var bufferLimit: Int { uploadID == nil ? singlePutSize : currentPartSize }

    private func append(_ bytes: ByteBuffer) async throws {
        var bytes = bytes
        while bytes.readableBytes > 0 {
            let limit = bufferLimit
            if buffer.capacity == 0 { buffer = ByteBufferAllocator().buffer(capacity: limit) }
            var piece = bytes.readSlice(length: min(bytes.readableBytes, limit - buffer.readableBytes))!
            buffer.writeBuffer(&piece)
            if buffer.readableBytes >= limit { try await flushPart() }
        }
    }

    /// Whether the segment must be (re)written without new bytes: it was cut back to what was carried, or
    /// it is the zero-length marker that makes an empty upload exist.
    private var needsRewrite: Bool {
        if cutsBack { return true }
        if let existingSize { return existingSize != carried }
        return key.hasSuffix("/" + S3BlobStore.segmentName(0))
    }

    private func flushPart() async throws {
        let part = buffer
        buffer = ByteBuffer()
        if uploadID == nil { uploadID = try await store.client.createMultipartUpload(key) }
        if let previous = inFlight {
            inFlight = nil
            etags.append(try await previous.value)
        }
        let (client, key, id, number) = (store.client, key, uploadID!, etags.count + 1)
        inFlight = Task { try await client.uploadPart(key, uploadID: id, number: number, part) }
    }

    func close() async throws {
        try await close(fence: {})
    }

    /// The segment's object appears only with the last request (`PUT`, or `CompleteMultipartUpload` after every
    /// part): `fence` runs just before it.
    func close(fence: () async throws -> Void) async throws {
        guard !closed else { return }
        closed = true
        do {
            try await sendParts()
            try await fence()
            if uploadID != nil || written > 0 || needsRewrite { try await makeVisible() }
        } catch {
            await abandon()
            throw error
        }
    }

    /// Sends every buffered part of a multipart upload (a single `PUT`'s bytes stay buffered for `makeVisible`).
    func sendParts() async throws {
        guard let id = uploadID else { return }
        if let previous = inFlight {
            inFlight = nil
            etags.append(try await previous.value)
        }
        if buffer.readableBytes > 0 {
            etags.append(try await store.client.uploadPart(key, uploadID: id, number: etags.count + 1, buffer))
            buffer = ByteBuffer()
        }
    }

    /// Makes the object appear: completes the multipart upload, or `PUT`s the buffered bytes.
    func makeVisible() async throws {
        if let id = uploadID {
            try await store.client.completeMultipartUpload(key, uploadID: id, etags: etags)
        } else {
            try await store.client.put(key, buffer)
        }
        buffer = ByteBuffer()
    }

    /// Drops what was sent: waits for the part in flight and aborts the multipart upload.
    func abandon() async {
        if let task = inFlight {
            inFlight = nil
            _ = try? await task.value
        }
        if let id = uploadID { try? await store.client.abortMultipartUpload(key, uploadID: id) }
        buffer = ByteBuffer()
    }
}

/// A blob written under its own key (`S3BlobStore.openBlob`): a single `PUT` of up to 10 MiB sent at
/// `publish`, or a multipart upload whose parts go out as they fill and which `publish` completes, so the
/// key shows nothing until then. A process that dies first leaves an unfinished multipart upload that
/// `abandonBlobWrites` aborts.
final class S3BlobWriter: DirectBlobWriter, @unchecked Sendable {
    private let segment: S3UploadWriter
    private var ended = false

    init(store: S3BlobStore, key: String) {
        segment = S3UploadWriter(store: store, key: key, existingSize: nil)
    }

    func write(_ buffer: ByteBuffer) async throws { try await segment.write(buffer) }

    func close() async throws {
        do {
            try await segment.sendParts()
        } catch {
            await discard()
            throw error
        }
    }

    func publish() async throws {
        precondition(!ended, "a direct blob writer is ended once")
        do {
            try await segment.sendParts()
            try await segment.makeVisible()
            ended = true
        } catch {
            await discard()
            throw error
        }
    }

    func discard() async {
        guard !ended else { return }
        ended = true
        await segment.abandon()
    }
}

extension S3BlobStore {
    /// Checks that the bucket is reachable and that the credentials may write, read, list and delete objects,
    /// with a throwaway object under `<prefix>berth-probe/`. Returns one sentence per problem (empty when all
    /// is well), each naming the operation that failed and the likely cause.
    public func probe() async -> [String] {
        let key = "\(prefix)berth-probe/\(UInt64.random(in: 0...UInt64.max))"
        let payload = ByteBuffer(string: "berth verify-config probe")
        func explain(_ step: String, _ permission: String, _ error: any Error) -> String {
            Self.explain(step, permission, error, client)
        }
        do { try await client.put(key, payload) } catch { return [explain("writing a probe object", "s3:PutObject", error)] }
        var problems: [String] = []
        do {
            var got = ByteBuffer()
            let found = try await client.get(key, range: nil) { var b = $0; got.writeBuffer(&b) }
            if !found || got != payload {
                problems.append("reading the probe object back returned other bytes than were written")
            }
        } catch { problems.append(explain("reading the probe object", "s3:GetObject", error)) }
        do {
            let listed = try await client.list(prefix: key)
            if !listed.contains(where: { $0.key == key }) {
                problems.append("listing the bucket did not show the probe object just written")
            }
        } catch { problems.append(explain("listing the bucket", "s3:ListBucket", error)) }
        do {
            let uploadID = try await client.createMultipartUpload(key + "-multipart")
            try await client.abortMultipartUpload(key + "-multipart", uploadID: uploadID)
        } catch { problems.append(explain("starting a multipart upload", "s3:PutObject and s3:AbortMultipartUpload", error)) }
        do {
            try await client.delete(key)
            if try await client.head(key) != nil { problems.append("the probe object is still there after DeleteObject") }
        } catch { problems.append(explain("deleting the probe object", "s3:DeleteObject", error)) }
        if problems.isEmpty, let archive { problems += await probeArchive(archive) }
        return problems
    }

    /// The archive tier, tried: a listing of its location, then the moves on a probe object — a copy from
    /// the primary tier to the archive location in its storage class, read back, a copy back, and deletes.
    func probeArchive(_ archive: S3Client) async -> [String] {
        let name = "berth-probe/\(UInt64.random(in: 0...UInt64.max))"
        let key = prefix + name, archived = archive.config.keyPrefix + name
        let payload = ByteBuffer(string: "berth verify-config archive probe")
        let storageClass = client.config.archive?.storageClass
        let place = "the archive tier (bucket \(archive.config.bucket), prefix \"\(archive.config.keyPrefix)\")"
        do {
            // Listed first (the collector lists the archive too): a missing bucket is named as such, where
            // some stores answer a copy into it with a 500.
            _ = try await archive.list(prefix: archived)
        } catch {
            return [Self.explain("listing \(place)", "s3:ListBucket", error, archive)]
        }
        do { try await client.put(key, payload) } catch { return [Self.explain("writing a probe object", "s3:PutObject", error, client)] }
        var problems: [String] = []
        do {
            try await archive.copy(from: key, sourceBucket: client.config.bucket, to: archived, storageClass: storageClass)
            var got = ByteBuffer()
            let found = try await archive.get(archived, range: nil) { var b = $0; got.writeBuffer(&b) }
            if !found || got != payload { problems.append("reading the probe object back from \(place) returned other bytes than were copied") }
            try await client.delete(key)
            try await client.copy(from: archived, sourceBucket: archive.config.bucket, to: key)
            try await archive.delete(archived)
        } catch {
            problems.append(Self.explain("copying a probe object into and out of \(place)", "s3:GetObject, s3:PutObject and "
                                         + "s3:DeleteObject in both buckets" + (storageClass.map { " (storage class \($0))" } ?? ""),
                                         error, archive))
            try? await archive.delete(archived)
        }
        try? await client.delete(key)
        return problems
    }

    /// One probe step's failure as a sentence naming the likely cause.
    static func explain(_ step: String, _ permission: String, _ error: any Error, _ client: S3Client) -> String {
        guard let e = error as? S3Error else {
            return "\(step): cannot reach \(client.config.endpoint): \(error)"
        }
        let cause: String
        switch e.code {
        case "NoSuchBucket": cause = "the bucket \(client.config.bucket) does not exist"
        case "InvalidAccessKeyId": cause = "the access key id is not known to the store"
        case "SignatureDoesNotMatch": cause = "the secret access key is wrong (or s3Region does not match the store's)"
        case "AuthorizationHeaderMalformed": cause = "the store expects another region than s3Region \(client.config.region)"
        case "AccessDenied", "AllAccessDisabled":
            cause = "the credentials lack \(permission) on bucket \(client.config.bucket) at \(client.config.endpoint)"
        case "InvalidStorageClass": cause = "the store does not accept the storage class s3ArchiveStorageClass names"
        case "PermanentRedirect", "301": cause = "the bucket is in another region or needs another endpoint"
        default: cause = "the store answered HTTP \(e.status)\(e.code.map { " \($0)" } ?? "")"
        }
        return "\(step) failed: \(cause) (\(e))"
    }
}
