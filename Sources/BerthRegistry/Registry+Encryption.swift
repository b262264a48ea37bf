import BerthCore
import BerthStorage

/// `berth admin encrypt-existing`: sealing blobs stored in plaintext (docs/encryption.md).
extension Registry {
    public struct EncryptionProgress: Sendable, Equatable {
        /// Stored blobs in all.
        public var total = 0
        public var examined = 0
        /// Sealed by this run.
        public var sealed = 0
        public var sealedBytes: Int64 = 0
        /// Already sealed, not linked to any repository, or only in repositories that do not seal.
        public var skipped = 0
        public init() {}
    }

    /// Seals, in place, every stored blob that is still plaintext and that a repository whose key domain
    /// seals links, with a key slot for every key domain of the repositories (of `registries`) linking it.
    /// Resumable: blobs already sealed are skipped. `progress` is called after each blob.
    public func encryptExisting(registries: [String],
                                progress: @Sendable (EncryptionProgress, Digest) -> Void) async throws -> EncryptionProgress {
        guard let sealer else { throw BerthError.unsupported("this registry has no keyring: blobs are not encrypted") }
        guard let inventory = blobs as? any BlobInventory else {
            throw BerthError.unsupported("the blob store cannot list its blobs")
        }
        let stored = try await inventory.storedBlobs().sorted { $0.name.description < $1.name.description }
        var p = EncryptionProgress()
        p.total = stored.count
        for file in stored {
            p.examined += 1
            defer { progress(p, file.name) }
            // A stored size other than the recorded one is a sealed blob (or one the collector is removing).
            guard let size = try await metadata.blobSize(file.name), size == file.size else { p.skipped += 1; continue }
            // Under the blob's commit lease: a push committing the same digest meanwhile (perhaps for a
            // repository of another key domain) waits, and the domains are read with that in mind.
            let sealed = try await withBlobCommitLease(file.name) { [self] in
                var configured: [BlobKeyDomain] = []
                for registry in registries {
                    for repo in try await metadata.repositoriesLinking(file.name, in: registry, limit: 100_000) {
                        guard let record = try await storedRepository(repo) else { continue }
                        let d = keyDomain(of: record)
                        if !configured.contains(d) { configured.append(d) }
                    }
                }
                guard configured.contains(where: { sealer.seals($0) }),
                      try await blobs.size(of: file.name) == size else { return false }
                var domains: [String] = []
                for d in configured {
                    let resolved = try await sealer.domain(d)
                    if !domains.contains(resolved) { domains.append(resolved) }
                }
                try await sealing { try await sealer.sealExisting(file.name, size: size, domains: domains) }
                return true
            }
            guard sealed else { p.skipped += 1; continue }
            p.sealed += 1
            p.sealedBytes += size
        }
        return p
    }
}
