import BerthCore
import NIOCore

/// Reads committed, content-addressed blobs.
public protocol BlobReading: Sendable {
    /// The size of a committed blob, or nil when it is not stored.
    func size(of digest: Digest) async throws -> Int64?
    /// Streams a committed blob (or one inclusive range of it) to `consumer` in chunks.
    func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws
    /// The path of a committed blob's immutable file on the local filesystem, for stores that keep one
    /// (lets the HTTP layer send it with `sendfile`); nil otherwise.
    func localFilePath(of digest: Digest) -> String?
    /// A URL that serves a committed blob's stored bytes for `seconds` without other credentials, for
    /// stores that can make one (a presigned object-store URL); nil otherwise.
    func presignedDownloadURL(of digest: Digest, expiresIn seconds: Int, now: Double) throws -> String?
    /// `read`, but only while the blob's stored size is `storedSize`: `BlobSizeChanged` otherwise, before
    /// any byte reaches `consumer` (a reader that opened a blob as plaintext learns it was sealed since).
    func read(_ digest: Digest, range: ByteRange?, storedSize: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws
}

/// A blob's stored size is not the one its reader expected: it was rewritten since it was opened.
public struct BlobSizeChanged: Error, Equatable {
    public let digest: Digest
    public init(digest: Digest) { self.digest = digest }
}

extension BlobReading {
    /// Checks the size first (a `stat` on the filesystem); stores that learn it from the read itself override this.
    public func read(_ digest: Digest, range: ByteRange?, storedSize: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard try await size(of: digest) == storedSize else { throw BlobSizeChanged(digest: digest) }
        try await read(digest, range: range, into: consumer)
    }
    public func localFilePath(of digest: Digest) -> String? { nil }
    public func presignedDownloadURL(of digest: Digest, expiresIn seconds: Int, now: Double) throws -> String? { nil }
}

extension BlobUploading {
    /// Reads the first `range.end + 1` bytes and drops those before the range: for stores (and wrappers)
    /// that cannot seek; the stores Berth ships read only the range.
    public func readUpload(id: String, range: ByteRange, into consumer: (ByteBuffer) async throws -> Void) async throws {
        var seen: Int64 = 0
        try await readUpload(id: id, length: range.end + 1) { buf in
            var b = buf
            let skip = Int(max(0, min(Int64(b.readableBytes), range.start - seen)))
            seen += Int64(b.readableBytes)
            b.moveReaderIndex(forwardBy: skip)
            if b.readableBytes > 0 { try await consumer(b) }
        }
    }
}

/// The staging area of uploads: bytes are appended to an upload, then committed under their digest.
public protocol BlobUploading: Sendable {
    /// Opens an upload for appending at `offset`, creating it when absent and truncating anything
    /// beyond `offset` (bytes written by a request that did not complete).
    func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter
    /// The number of bytes staged for an upload, or nil when it does not exist.
    func uploadedSize(id: String) async throws -> Int64?
    /// Streams the first `length` staged bytes of an upload (used to rebuild a hash after a restart).
    func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws
    /// Streams the staged bytes of an upload in `range` (a sealed upload's last segment, which a node that
    /// did not write it reads to go on): without reading what comes before it, so that chunks alternating
    /// between nodes cost each node the end of the upload, not all of it again.
    func readUpload(id: String, range: ByteRange, into consumer: (ByteBuffer) async throws -> Void) async throws
    /// Makes the staged bytes durable and atomically visible as blob `digest`; the upload is gone afterwards.
    func commitUpload(id: String, as digest: Digest) async throws
    /// Discards an upload; no error when it does not exist.
    func deleteUpload(id: String) async throws
}

/// Removes committed blobs (garbage collection).
public protocol BlobDeleting: Sendable {
    func delete(_ digest: Digest) async throws
}

public typealias BlobStore = BlobReading & BlobUploading & BlobDeleting

/// Appends bytes to one upload. Writes happen in call order.
public protocol BlobUploadWriter: Sendable {
    /// A buffer of at least `capacity` bytes that this writer writes most efficiently
    /// (e.g. page-aligned memory for direct I/O).
    func makeBuffer(capacity: Int) -> ByteBuffer
    func write(_ buffer: ByteBuffer) async throws
    /// Releases the handle; staged bytes stay for a later `openUpload` or `commitUpload`.
    func close() async throws
    /// `close`, calling `fence` just before the written bytes become visible to other nodes (an object
    /// store's final `PUT` or `CompleteMultipartUpload`), after everything else that may take long: a `fence`
    /// that throws (the writer lost its claim on the upload) leaves them unwritten, and the error is thrown.
    func close(fence: () async throws -> Void) async throws
}

/// Storage failures that are not domain errors.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension BlobUploadWriter {
    public func makeBuffer(capacity: Int) -> ByteBuffer { ByteBufferAllocator().buffer(capacity: capacity) }

    /// For stores whose bytes are in place as they are written (one node's files, where the in-process guard
    /// admits one writer per upload): there is no moment to fence, so `fence` is not called (the claim's
    /// holder is still checked by `advanceUpload`).
    public func close(fence: () async throws -> Void) async throws {
        try await close()
    }
}

/// A second, cheaper place for the bytes of blobs that only archived images use (the archive storage
/// class): another directory or disk now, another bucket or storage class later. A blob is in one tier or
/// the other (for a moment in both while it moves); reads, sizes and `delete` look in both, so where a
/// blob's bytes are never decides whether it can be read.
public protocol BlobTiering: Sendable {
    /// Whether this store has an archive tier (one is configured).
    var hasArchiveTier: Bool { get }
    /// Moves a blob's bytes to the archive tier; nothing when they are not in the primary tier.
    func moveToArchive(_ digest: Digest) async throws
    /// Moves a blob's bytes back to the primary tier; nothing when they are not in the archive tier.
    func moveFromArchive(_ digest: Digest) async throws
    /// Whether the blob's bytes are in the archive tier (and not in the primary one).
    func isInArchive(_ digest: Digest) async throws -> Bool
}

/// A file the collector found in a blob store: a committed blob (`Digest`) or a staged upload (`String`).
public struct StoredFile<Name: Sendable & Hashable>: Sendable, Hashable {
    public var name: Name
    public var size: Int64
    /// Seconds since the epoch of the file's last change (the later of its data and inode changes:
    /// the rename that commits an upload counts).
    public var changedAt: Double
    public init(name: Name, size: Int64, changedAt: Double) {
        self.name = name
        self.size = size
        self.changedAt = changedAt
    }
}

/// What online garbage collection needs of a blob store (docs/gc.md): its async `delete`, `isStored`,
/// and listings of its files for the orphan scan. Every call may take the network (an object store):
/// the collector never makes one inside a metadata transaction.
public protocol BlobInventory: BlobDeleting {
    /// Whether a committed blob's bytes are in place (in any tier). Asked by an upload that finds the
    /// collector removed a blob of the same digest recently, before it records the blob again.
    func isStored(_ digest: Digest) async throws -> Bool
    /// Every committed blob.
    func storedBlobs() async throws -> [StoredFile<Digest>]
    /// Every staged upload that no writer has open: a request still writing one (even one stalled far
    /// longer than the grace period) keeps it out of the list, so the collector never deletes it.
    func stagedUploads() async throws -> [StoredFile<String>]
}

/// Stores that can write a blob straight under its digest when the digest is known before its bytes (a
/// monolithic push: OCI `PUT ?digest=` or `POST ?digest=` with the whole blob), instead of staging it and
/// copying it into place at the commit — on an object store that copy is a second write of every byte
/// (docs/s3.md, "Monolithic pushes"). Nothing written becomes visible before `publish`.
public protocol DirectBlobWriting: Sendable {
    /// A writer of blob `digest`'s stored bytes. The caller checks the digest before it publishes.
    func openBlob(_ digest: Digest) async throws -> any DirectBlobWriter
    /// Gives up writes that a process which died left unpublished, begun before `cutoff` (seconds since the
    /// epoch): an object store keeps an unfinished multipart upload, and bills it, until it is aborted.
    /// Returns how many.
    func abandonBlobWrites(before cutoff: Double) async throws -> Int
    /// Whether monolithic pushes are written this way (true unless the store says otherwise).
    var writesBlobsDirectly: Bool { get }
}

extension DirectBlobWriting {
    public var writesBlobsDirectly: Bool { true }
}

/// Writes one blob's stored bytes without making them visible: `close` sends what is buffered, `publish`
/// makes the bytes the blob's (replacing a copy stored meanwhile), `discard` drops them. Exactly one of
/// `publish` and `discard` ends a writer; `discard` never throws, and may follow a failed `publish`.
public protocol DirectBlobWriter: BlobUploadWriter {
    func publish() async throws
    func discard() async
}
