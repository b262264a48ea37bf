import BerthCore
import BerthStorage
import Synchronization

/// A bounded in-process cache of manifests by repository and digest (content never changes;
/// entries are dropped when the manifest is deleted through this process).
final class ManifestCache: Sendable {
    struct Key: Hashable { let repository: RepositoryKey; let digest: Digest }
    private struct State {
        var entries: [Key: ManifestRecord] = [:]
        var bytes = 0
    }
    private let state = Mutex(State())
    private let maxBytes: Int

    init(maxBytes: Int = 64 << 20) { self.maxBytes = maxBytes }

    func get(_ repository: RepositoryKey, _ digest: Digest) -> ManifestRecord? {
        state.withLock { $0.entries[Key(repository: repository, digest: digest)] }
    }

    func put(_ repository: RepositoryKey, _ record: ManifestRecord) {
        let size = record.bytes.count + 256
        guard size < maxBytes / 16 else { return }
        state.withLock { s in
            let key = Key(repository: repository, digest: record.digest)
            if s.entries[key] != nil { return }
            while s.bytes + size > maxBytes, let victim = s.entries.keys.randomElement() {
                s.bytes -= (s.entries.removeValue(forKey: victim)?.bytes.count ?? 0) + 256
            }
            s.entries[key] = record
            s.bytes += size
        }
    }

    func remove(_ repository: RepositoryKey, _ digest: Digest) {
        state.withLock { s in
            if let r = s.entries.removeValue(forKey: Key(repository: repository, digest: digest)) {
                s.bytes -= r.bytes.count + 256
            }
        }
    }

    func removeRepository(_ repository: RepositoryKey) {
        state.withLock { s in
            for k in s.entries.keys where k.repository == repository {
                s.bytes -= (s.entries.removeValue(forKey: k)?.bytes.count ?? 0) + 256
            }
        }
    }
}

/// Sizes of blobs known to be linked to a repository, so `HEAD /blobs/<digest>` (asked for every layer
/// of every push and pull) needs no database read. Entries are dropped when this process unlinks the
/// blob or deletes the repository; a lookup that raced with such a removal is not cached (generation).
final class BlobLinkCache: Sendable {
    struct Key: Hashable { let repository: RepositoryKey; let digest: Digest }
    private struct State {
        var sizes: [Key: Int64] = [:]
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    private let maxEntries: Int

    init(maxEntries: Int = 200_000) { self.maxEntries = maxEntries }

    var generation: UInt64 { state.withLock { $0.generation } }

    func get(_ repository: RepositoryKey, _ digest: Digest) -> Int64? {
        state.withLock { $0.sizes[Key(repository: repository, digest: digest)] }
    }

    func put(_ repository: RepositoryKey, _ digest: Digest, size: Int64, ifGeneration generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            if s.sizes.count >= maxEntries { s.sizes.removeAll(keepingCapacity: true) }
            s.sizes[Key(repository: repository, digest: digest)] = size
        }
    }

    func remove(_ repository: RepositoryKey, _ digest: Digest) {
        state.withLock { s in
            s.generation &+= 1
            s.sizes[Key(repository: repository, digest: digest)] = nil
        }
    }

    func removeRepository(_ repository: RepositoryKey) {
        state.withLock { s in
            s.generation &+= 1
            s.sizes = s.sizes.filter { $0.key.repository != repository }
        }
    }
}
