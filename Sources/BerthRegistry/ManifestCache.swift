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
