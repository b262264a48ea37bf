import BerthCore

/// A blob as the collector sees it.
public struct CollectableBlob: Sendable, Equatable, Hashable {
    public var digest: Digest
    public var size: Int64
    public init(digest: Digest, size: Int64) {
        self.digest = digest
        self.size = size
    }
}

/// A blob linked to a repository: its size, and whether the collector has marked it (no manifest
/// references it; see docs/gc.md).
public struct LinkedBlob: Sendable, Equatable {
    public var size: Int64
    public var isCandidate: Bool
    public init(size: Int64, isCandidate: Bool) {
        self.size = size
        self.isCandidate = isCandidate
    }
}

/// Reference tracking for online garbage collection (docs/gc.md). Every store keeps, in the transaction
/// that changes references, how many repositories reference each blob; the collector marks unreferenced
/// blobs, and deletes one only after it stayed unreferenced and untouched for a grace period, deciding
/// in a write transaction that re-checks it.
public protocol GarbageCollectionMetadata: Sendable {
    /// Like `linkedBlobSize`, with whether the blob is a marked collection candidate.
    func linkedBlob(_ digest: Digest, in repository: RepositoryKey) async throws -> LinkedBlob?
    /// Clears a blob's candidate mark (it is being used: a HEAD before a manifest put). False when the
    /// blob is gone or doomed (being deleted): the caller must treat it as absent.
    func touchBlob(_ digest: Digest) async throws -> Bool
    /// Marks, as candidates since `now`, the blobs that no manifest references and that are not marked
    /// yet; returns how many were marked.
    func markUnreferencedBlobs(at now: Double) async throws -> Int
    /// Candidates marked at or before `cutoff` (and blobs already doomed by an interrupted collection),
    /// by digest after `after`, at most `limit`.
    func collectableBlobs(markedBefore cutoff: Double, after: Digest?, limit: Int) async throws -> [CollectableBlob]
    /// Unreferenced blobs not yet collectable (marked after `cutoff`, or unmarked): count and bytes.
    func pendingCandidates(markedBefore cutoff: Double) async throws -> (count: Int64, bytes: Int64)
    /// Step one of deleting blobs: in one write transaction, those of `digests` that are still
    /// unreferenced and marked at or before `cutoff` (or already doomed) lose their links and are
    /// marked doomed, so nothing can link or reference them again. Returns them.
    func doomBlobs(_ digests: [Digest], markedBefore cutoff: Double) async throws -> [CollectableBlob]
    /// Step two: in one write transaction, those of `digests` still doomed are passed to `removeFiles`
    /// (which deletes their bytes, inside the transaction), then their rows are deleted. An upload of the
    /// same blob that committed in between revived the row (no longer doomed), and is left alone.
    /// A throw from `removeFiles` rolls the rows back (they stay doomed, for the next run).
    func removeDoomedBlobs(_ digests: [Digest], removeFiles: @escaping @Sendable ([CollectableBlob]) throws -> Void)
        async throws -> [CollectableBlob]
    /// Those of `digests` that have no row at all (read only; `removeOrphanBlobFiles` decides).
    func unknownBlobs(_ digests: [Digest]) async throws -> [Digest]
    /// Orphaned blob files (no row): in one write transaction, those of `digests` that have no row are
    /// passed to `removeFiles`, inside the transaction. Returns them.
    func removeOrphanBlobFiles(_ digests: [Digest], removeFiles: @escaping @Sendable ([Digest]) throws -> Void)
        async throws -> [Digest]
    /// Which of `ids` have an upload session.
    func existingUploads(_ ids: [String]) async throws -> Set<String>
    /// Storage usage, for all accounts or one; repositories included when `repositories`.
    func storageUsage(account: String?, repositories: Bool) async throws -> StorageUsage
}
