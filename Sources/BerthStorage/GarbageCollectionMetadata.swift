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

/// One collection's claim on the blobs it deletes (docs/gc.md): its token (stored in `blobs.doomed`), when
/// it claims them, and the time up to which another collection's claim counts as abandoned (that
/// collection was killed between claiming and removing). A collection holds the collector's lease
/// (`WorkLeases`) while it runs, so every claim older than its start was abandoned.
public struct BlobClaim: Sendable, Equatable {
    public var token: Int64
    public var at: Double
    public var staleBefore: Double
    public init(token: Int64 = Int64.random(in: 1 ... Int64.max), at: Double, staleBefore: Double) {
        self.token = token
        self.at = at
        self.staleBefore = staleBefore
    }
}

/// A blob linked to a repository: its size, whether the collector has marked it (no manifest
/// references it; see docs/gc.md), and whether only archived images of the repository use it (at least
/// one references it, none of them ACTIVE: it cannot be pulled until one is restored).
public struct LinkedBlob: Sendable, Equatable {
    public var size: Int64
    public var isCandidate: Bool
    public var archivedOnly: Bool
    public init(size: Int64, isCandidate: Bool, archivedOnly: Bool = false) {
        self.size = size
        self.isCandidate = isCandidate
        self.archivedOnly = archivedOnly
    }

    /// `archivedOnly` as an SQL expression (SQLite and PostgreSQL alike) over `r` (the repository's row)
    /// and `l` (its `repository_blobs` row).
    public static let archivedOnlySQL = """
        EXISTS(SELECT 1 FROM manifest_references x JOIN manifests m ON m.repo_id = x.repo_id AND m.digest = x.parent
               WHERE x.repo_id = r.id AND x.child = l.digest AND m.image_status != 'ACTIVE')
        AND NOT EXISTS(SELECT 1 FROM manifest_references x JOIN manifests m ON m.repo_id = x.repo_id AND m.digest = x.parent
                       WHERE x.repo_id = r.id AND x.child = l.digest AND m.image_status = 'ACTIVE')
        """
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
    /// Candidates marked at or before `cutoff`, and blobs another collection claimed before
    /// `claim.staleBefore` (interrupted), by digest after `after`, at most `limit`.
    func collectableBlobs(markedBefore cutoff: Double, claim: BlobClaim, after: Digest?, limit: Int) async throws
        -> [CollectableBlob]
    /// Unreferenced blobs not yet collectable (marked after `cutoff`, or unmarked): count and bytes.
    func pendingCandidates(markedBefore cutoff: Double) async throws -> (count: Int64, bytes: Int64)
    /// Step one of deleting blobs (a short write transaction): those of `digests` that are still
    /// unreferenced and marked at or before `cutoff` (or claimed before `claim.staleBefore` by a collection
    /// that never finished) lose their links and are claimed: doomed by `claim.token` since `claim.at`.
    /// From then on nothing can link or reference them, and an upload of the same digest waits for the
    /// row to go (`BlobRecording.beingCollected`). Returns them; the caller deletes their bytes next,
    /// outside any transaction.
    func doomBlobs(_ digests: [Digest], markedBefore cutoff: Double, claim: BlobClaim) async throws -> [CollectableBlob]
    /// Step three, once the bytes are deleted (a short write transaction): those of `digests` still
    /// claimed by `claim.token` lose their rows and leave a tombstone dated `claim.at`, which makes an
    /// upload of the same digest check that its bytes are in place before it records them.
    func removeDoomedBlobs(_ digests: [Digest], claim: BlobClaim) async throws -> [CollectableBlob]
    /// Those of `digests` that have no row at all (read only; `claimOrphanBlobs` decides).
    func unknownBlobs(_ digests: [Digest]) async throws -> [Digest]
    /// Orphaned blob files (no row): in one write transaction, those of `files` that still have no row get
    /// a row claimed by `claim` (unlinked, doomed), so they go through the same delete and
    /// `removeDoomedBlobs` as unreferenced blobs. Returns them.
    func claimOrphanBlobs(_ files: [CollectableBlob], claim: BlobClaim) async throws -> [CollectableBlob]
    /// Drops the tombstones of blobs removed before `cutoff`; returns how many.
    func purgeBlobTombstones(removedBefore cutoff: Double) async throws -> Int
    /// Which of `ids` have an upload session.
    func existingUploads(_ ids: [String]) async throws -> Set<String>
    /// Storage usage, for all accounts or one; repositories included when `repositories`.
    func storageUsage(account: String?, repositories: Bool) async throws -> StorageUsage
    /// The blobs linked to any of `repositories`, each counted once: how many, and their bytes (the bytes
    /// an encryption key protects, `Registry.storageUsageByKey`).
    func distinctBlobUsage(of repositories: [RepositoryKey]) async throws -> (blobs: Int64, bytes: Int64)
}
