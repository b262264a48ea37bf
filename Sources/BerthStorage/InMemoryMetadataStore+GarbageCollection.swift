import BerthCore

/// The collector's state of one blob in the in-memory store.
struct BlobMark: Sendable {
    /// When the collector first saw it unreferenced; while claimed, when it was claimed.
    var candidateSince: Double?
    /// The claiming collection's token (docs/gc.md).
    var claim: Int64? = nil
    var doomed: Bool { claim != nil }
}

/// Garbage collection and storage accounting in memory: the same semantics as SQLite's triggers,
/// computed by walking the state under the lock (the in-memory store is for tests and small registries).
extension InMemoryMetadataStore {
    /// Repositories referencing each blob, by the manifests' blob references.
    static func referencingRepositories(_ s: State) -> [Digest: Set<RepositoryKey>] {
        var users: [Digest: Set<RepositoryKey>] = [:]
        for (key, repo) in s.repos {
            for children in repo.blobReferences.values {
                for b in children where s.blobs[b] != nil { users[b, default: []].insert(key) }
            }
        }
        return users
    }

    static func isCollectable(_ s: State, _ d: Digest, _ users: [Digest: Set<RepositoryKey>], cutoff: Double,
                              claim: BlobClaim) -> Bool {
        guard s.blobs[d] != nil, users[d]?.isEmpty ?? true, let mark = s.blobMarks[d], let since = mark.candidateSince else {
            return false
        }
        return since <= (mark.doomed ? claim.staleBefore : cutoff)
    }

    public func linkedBlob(_ digest: Digest, in repository: RepositoryKey) async throws -> LinkedBlob? {
        state.withLock { s in
            guard let repo = s.repos[repository], repo.blobs.contains(digest), let size = s.blobs[digest] else { return nil }
            let users = repo.blobReferences.filter { $0.value.contains(digest) }.compactMap { repo.manifests[$0.key]?.status }
            return LinkedBlob(size: size, isCandidate: s.blobMarks[digest]?.candidateSince != nil,
                              archivedOnly: !users.isEmpty && !users.contains(.active))
        }
    }

    public func touchBlob(_ digest: Digest) async throws -> Bool {
        state.withLock { s in
            guard s.blobs[digest] != nil, s.blobMarks[digest]?.doomed != true else { return false }
            s.blobMarks[digest] = nil
            return true
        }
    }

    public func unknownBlobs(_ digests: [Digest]) async throws -> [Digest] {
        state.withLock { s in digests.filter { s.blobs[$0] == nil } }
    }

    public func markUnreferencedBlobs(at now: Double) async throws -> Int {
        state.withLock { s in
            let users = Self.referencingRepositories(s)
            var n = 0
            for d in s.blobs.keys where users[d] == nil && s.blobMarks[d]?.candidateSince == nil && s.blobMarks[d]?.doomed != true {
                s.blobMarks[d] = BlobMark(candidateSince: now)
                n += 1
            }
            return n
        }
    }

    public func collectableBlobs(markedBefore cutoff: Double, claim: BlobClaim, after: Digest?, limit: Int) async throws
        -> [CollectableBlob] {
        state.withLock { s in
            let users = Self.referencingRepositories(s)
            let found = s.blobs.filter { d, _ in
                (after == nil || d.description > after!.description) && Self.isCollectable(s, d, users, cutoff: cutoff, claim: claim)
            }
            return found.map { CollectableBlob(digest: $0.key, size: $0.value) }
                .sorted { $0.digest.description < $1.digest.description }.prefix(limit).map { $0 }
        }
    }

    public func pendingCandidates(markedBefore cutoff: Double) async throws -> (count: Int64, bytes: Int64) {
        state.withLock { s in
            let users = Self.referencingRepositories(s)
            var count: Int64 = 0, bytes: Int64 = 0
            for (d, size) in s.blobs where users[d] == nil && s.blobMarks[d]?.doomed != true
                && (s.blobMarks[d]?.candidateSince.map { $0 > cutoff } ?? true) {
                count += 1
                bytes += size
            }
            return (count, bytes)
        }
    }

    public func doomBlobs(_ digests: [Digest], markedBefore cutoff: Double, claim: BlobClaim) async throws -> [CollectableBlob] {
        state.withLock { s in
            let users = Self.referencingRepositories(s)
            var doomed: [CollectableBlob] = []
            for d in digests where Self.isCollectable(s, d, users, cutoff: cutoff, claim: claim) {
                for key in s.repos.keys { s.repos[key]!.blobs.remove(d) }
                s.blobMarks[d] = BlobMark(candidateSince: claim.at, claim: claim.token)
                doomed.append(CollectableBlob(digest: d, size: s.blobs[d]!))
            }
            return doomed
        }
    }

    public func removeDoomedBlobs(_ digests: [Digest], claim: BlobClaim) async throws -> [CollectableBlob] {
        state.withLock { s in
            let gone = digests.compactMap { d in
                s.blobMarks[d]?.claim == claim.token ? s.blobs[d].map { CollectableBlob(digest: d, size: $0) } : nil
            }
            for b in gone {
                s.blobs[b.digest] = nil
                s.blobMarks[b.digest] = nil
                s.blobTombstones[b.digest] = claim.at
            }
            return gone
        }
    }

    public func claimOrphanBlobs(_ files: [CollectableBlob], claim: BlobClaim) async throws -> [CollectableBlob] {
        state.withLock { s in
            files.filter { f in
                guard s.blobs[f.digest] == nil else { return false }
                s.blobs[f.digest] = f.size
                s.blobMarks[f.digest] = BlobMark(candidateSince: claim.at, claim: claim.token)
                return true
            }
        }
    }

    public func purgeBlobTombstones(removedBefore cutoff: Double) async throws -> Int {
        state.withLock { s in
            let old = s.blobTombstones.filter { $0.value < cutoff }.keys
            for d in old { s.blobTombstones[d] = nil }
            return old.count
        }
    }

    public func existingUploads(_ ids: [String]) async throws -> Set<String> {
        state.withLock { s in Set(ids.filter { s.uploads[$0] != nil }) }
    }

    public func distinctBlobUsage(of repositories: [RepositoryKey]) async throws -> (blobs: Int64, bytes: Int64) {
        state.withLock { s in
            let digests = Set(repositories.flatMap { s.repos[$0]?.blobs ?? [] })
            return (Int64(digests.count), digests.reduce(0) { $0 + (s.blobs[$1] ?? 0) })
        }
    }

    public func storageUsage(account: String?, repositories: Bool) async throws -> StorageUsage {
        state.withLock { s in
            var usage = StorageUsage()
            let users = Self.referencingRepositories(s)
            for (d, size) in s.blobs {
                usage.blobs += 1
                usage.bytes += size
                if users[d] == nil {
                    usage.unreferencedBlobs += 1
                    usage.unreferencedBytes += size
                }
            }
            func owner(_ key: RepositoryKey) -> String { key.registry.account }
            func wanted(_ a: String) -> Bool { account == nil || account == a }
            for (key, repo) in s.repos where wanted(owner(key)) {
                let a = owner(key)
                var f = UsageFigures()
                f.images = Int64(repo.manifests.count)
                f.storedBytes = repo.manifests.values.reduce(0) { $0 + $1.imageSize }
                let referenced = Set(repo.blobReferences.values.joined()).filter { s.blobs[$0] != nil }
                for b in referenced {
                    if users[b]!.count == 1 { f.uniqueBytes += s.blobs[b]! } else { f.sharedBytes += s.blobs[b]! }
                }
                let reclaimable = repo.blobs.filter { users[$0] == nil && s.blobMarks[$0]?.doomed != true }
                f.reclaimableBytes = reclaimable.reduce(0) { $0 + (s.blobs[$1] ?? 0) }
                if repositories && (f.images > 0 || f.reclaimableBytes > 0 || !referenced.isEmpty) { usage.repositories[key] = f }
                var total = usage.accounts[a] ?? UsageFigures()
                total.images += f.images
                total.storedBytes += f.storedBytes
                usage.accounts[a] = total
            }
            // Unique and shared per account; reclaimable per account counts each blob once.
            var reclaimable: [String: Set<Digest>] = [:]
            for (key, repo) in s.repos where wanted(owner(key)) {
                for b in repo.blobs where users[b] == nil && s.blobMarks[b]?.doomed != true { reclaimable[owner(key), default: []].insert(b) }
            }
            for (d, repos) in users {
                let accounts = Set(repos.map(owner))
                for a in accounts where wanted(a) {
                    if accounts.count == 1 { usage.accounts[a, default: UsageFigures()].uniqueBytes += s.blobs[d]! }
                    else { usage.accounts[a, default: UsageFigures()].sharedBytes += s.blobs[d]! }
                }
            }
            for (a, blobs) in reclaimable {
                usage.accounts[a, default: UsageFigures()].reclaimableBytes = blobs.reduce(0) { $0 + s.blobs[$1]! }
            }
            return usage
        }
    }
}
