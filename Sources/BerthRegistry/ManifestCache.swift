import BerthCore
import BerthStorage
import BerthSupport

/// A bounded in-process cache of manifests by repository and digest (content never changes;
/// entries are dropped when the manifest is deleted or its storage class changes through this process).
/// Bounded by their bytes; the least recently used go first. An entry lives `timeToLive` seconds, which
/// bounds how long a change made by another process (an archive or a delete by `berth` commands on the
/// same data directory) goes unseen.
final class ManifestCache: Sendable {
    struct Key: Hashable { let repository: RepositoryKey; let digest: Digest }
    private let entries: BoundedCache<Key, ManifestRecord>
    private let maxBytes: Int

    init(maxBytes: Int = 64 << 20, timeToLive: Double = 5, clock: any WallClock = SystemWallClock()) {
        self.maxBytes = maxBytes
        entries = BoundedCache(capacity: .max, maximumCost: maxBytes, timeToLive: timeToLive, clock: clock)
    }

    func get(_ repository: RepositoryKey, _ digest: Digest) -> ManifestRecord? {
        entries.value(forKey: Key(repository: repository, digest: digest))
    }

    /// Read before a store lookup and given to `put`: a removal since (an archive, a delete) makes `put` do
    /// nothing, so a record read before its status changed is never cached after the change.
    var generation: UInt64 { entries.removals }

    func put(_ repository: RepositoryKey, _ record: ManifestRecord, ifGeneration generation: UInt64? = nil) {
        let size = record.bytes.count + 256
        guard size < maxBytes / 16 else { return }
        entries.set(record, forKey: Key(repository: repository, digest: record.digest), cost: size, ifRemovals: generation)
    }

    func remove(_ repository: RepositoryKey, _ digest: Digest) {
        entries.removeValue(forKey: Key(repository: repository, digest: digest))
    }

    func removeRepository(_ repository: RepositoryKey) {
        entries.removeAll { $0.repository == repository }
    }

    func removeAll() { entries.removeAll() }
}

/// Sizes of blobs known to be linked to a repository, so `HEAD /blobs/<digest>` (asked for every layer
/// of every push and pull) needs no database read. Entries are dropped when this process unlinks the
/// blob or deletes the repository; a lookup that raced with such a removal is not cached (generation).
final class BlobLinkCache: Sendable {
    struct Key: Hashable { let repository: RepositoryKey; let digest: Digest }
    private let sizes: BoundedCache<Key, Int64>

    init(maxEntries: Int = 200_000, timeToLive: Double = .infinity, clock: any WallClock = SystemWallClock()) {
        sizes = BoundedCache(capacity: maxEntries, timeToLive: timeToLive, clock: clock)
    }

    /// Read before a lookup and given to `put`: removals since then make `put` do nothing.
    var generation: UInt64 { sizes.removals }

    func get(_ repository: RepositoryKey, _ digest: Digest) -> Int64? {
        sizes.value(forKey: Key(repository: repository, digest: digest))
    }

    func put(_ repository: RepositoryKey, _ digest: Digest, size: Int64, ifGeneration generation: UInt64) {
        sizes.set(size, forKey: Key(repository: repository, digest: digest), ifRemovals: generation)
    }

    func remove(_ repository: RepositoryKey, _ digest: Digest) {
        sizes.removeValue(forKey: Key(repository: repository, digest: digest))
    }

    func removeRepository(_ repository: RepositoryKey) {
        sizes.removeAll { $0.repository == repository }
    }

    func removeAll() { sizes.removeAll() }

    /// Forgets blobs in every repository (the collector is deleting them).
    func removeDigests(_ digests: Set<Digest>) {
        guard !digests.isEmpty else { return }
        sizes.removeAll { digests.contains($0.digest) }
    }
}
