import BerthCore
import Synchronization

/// Metadata in memory, for tests and ephemeral registries. Same semantics as the SQLite store.
public final class InMemoryMetadataStore: MetadataStore {
    struct Repo {
        var createdAt: Double
        var settings: RepositorySettings
        var pulls: [Digest: Double] = [:]
        /// Download counts (`ImagePulls`); absent: 0.
        var downloads: [Digest: Int64] = [:]
        /// When images last went to ARCHIVE and came back to STANDARD (the status is on the manifest record).
        var archivedAt: [Digest: Double] = [:]
        var activatedAt: [Digest: Double] = [:]
        var blobs: Set<Digest> = []
        var manifests: [Digest: ManifestRecord] = [:]
        /// The last lifecycle policy preview.
        var lifecyclePreview: StoredLifecyclePreview? = nil
        /// Parent manifest → the blobs and manifests it references.
        var references: [Digest: [Digest]] = [:]
        /// Parent manifest → the blobs (config, layers) it references: what garbage collection counts.
        var blobReferences: [Digest: [Digest]] = [:]
        var tags: [String: Digest] = [:]
        /// When each tag was last set to the image it points at (the SQL stores' `tags.updated_at`).
        var tagTimes: [String: Double] = [:]
        var scans: [Digest: ImageScanRecord] = [:]
    }
    struct State {
        var repos: [RepositoryKey: Repo] = [:]
        var blobs: [Digest: Int64] = [:]
        /// The collector's marks (see `GarbageCollectionMetadata`); absent: unmarked, live.
        var blobMarks: [Digest: BlobMark] = [:]
        /// Blobs the collector removed, and when (docs/gc.md).
        var blobTombstones: [Digest: Double] = [:]
        var uploads: [String: UploadSession] = [:]
        var accounts: [String: AccountRecord] = [:]
        var keys: [String: AccessKeyRecord] = [:]
        var accountSettings: [String: String] = [:]
        /// Pull time update exclusions by account, then principal ARN.
        var pullTimeExclusions: [String: [String: PullTimeExclusion]] = [:]
        /// The event outbox (InMemoryMetadataStore+Events.swift), under the same lock as the changes it reports.
        var outbox = OutboxState()
        /// The replication queue (InMemoryMetadataStore+Replication.swift), written with the pushes that enqueue jobs.
        var replication = ReplicationQueueState()
    }
    let state = Mutex(State())
    /// IAM entities (InMemoryMetadataStore+IAM.swift).
    let iam = Mutex(IAMState())
    /// KMS keys, material and aliases (InMemoryMetadataStore+KMS.swift).
    let kms = Mutex(KMSState())
    /// Pull through cache rules and secrets (InMemoryMetadataStore+PullThrough.swift).
    let pullThrough = Mutex(PullThroughState())
    /// Repository creation templates by registry, then prefix (InMemoryMetadataStore+CreationTemplates.swift).
    let creationTemplateState = Mutex<[String: [String: RepositoryCreationTemplateRecord]]>([:])
    public let authorizationGeneration = AuthorizationGeneration()

    private let leases = ProcessLeaseTable()

    public init() {}

    public func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        try await leases.withLease(name, body)
    }

    public func createRepository(_ key: RepositoryKey, at: Double, settings: RepositorySettings) async throws -> Bool {
        authorizationGeneration.recording {
            state.withLock { s in
                if s.repos[key] != nil { return false }
                s.repos[key] = Repo(createdAt: at, settings: settings)
                return true
            }
        }
    }

    public func updateRepositorySettings(
        _ key: RepositoryKey, _ update: @escaping @Sendable (inout RepositorySettings) throws -> Void
    ) async throws -> RepositorySettings? {
        try authorizationGeneration.recording {
            try state.withLock { s in
                guard var settings = s.repos[key]?.settings else { return nil }
                try update(&settings)
                s.repos[key]!.settings = settings
                return settings
            }
        }
    }

    public func repository(_ key: RepositoryKey) async throws -> RepositoryRecord? {
        state.withLock { s in s.repos[key].map { RepositoryRecord(key: key, createdAt: $0.createdAt, settings: $0.settings) } }
    }

    public func listRepositories(in registryID: String, after last: String?, limit: Int) async throws -> [String] {
        state.withLock { s in
            let names = s.repos.keys.filter { $0.registryID == registryID }.map(\.name)
            return Array(names.filter { last == nil || $0 > last! }.sorted().prefix(limit + 1))
        }
    }

    public func registryIDs() async throws -> [String] {
        state.withLock { s in Set(s.repos.keys.map(\.registryID)).sorted() }
    }

    public func deleteRepository(_ key: RepositoryKey) async throws -> Bool {
        authorizationGeneration.recording {
            state.withLock { s in
                s.uploads = s.uploads.filter { $0.value.repository != key }
                return s.repos.removeValue(forKey: key) != nil
            }
        }
    }

    public func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                           finishingUpload upload: String?, bytesVerified: Bool) async throws -> BlobRecording {
        try state.withLock { s in
            guard s.repos[repository] != nil else { throw BerthError.nameUnknown(repository.name) }
            if s.blobMarks[digest]?.doomed == true { return .beingCollected }
            if s.blobs[digest] == nil {
                if !bytesVerified && s.blobTombstones[digest] != nil { return .collected }
                s.blobTombstones[digest] = nil
                s.blobs[digest] = size
            }
            if let upload { s.uploads[upload] = nil }
            s.blobMarks[digest] = nil
            s.repos[repository]!.blobs.insert(digest)
            return .recorded
        }
    }

    public func blobSize(_ digest: Digest) async throws -> Int64? {
        state.withLock { s in s.blobMarks[digest]?.doomed == true ? nil : s.blobs[digest] }
    }

    public func linkedBlobSize(_ digest: Digest, in repository: RepositoryKey) async throws -> Int64? {
        state.withLock { s in
            guard s.repos[repository]?.blobs.contains(digest) == true else { return nil }
            return s.blobs[digest]
        }
    }

    public func repositoriesLinking(_ digest: Digest, in registryID: String, limit: Int) async throws -> [RepositoryKey] {
        guard limit > 0 else { return [] }
        return state.withLock { s in
            Array(s.repos.filter { $0.key.registryID == registryID && $0.value.blobs.contains(digest) }.keys.sorted().prefix(limit))
        }
    }

    public func linkBlob(_ digest: Digest, to repository: RepositoryKey, at: Double) async throws -> Bool {
        try state.withLock { s in
            guard s.repos[repository] != nil else { throw BerthError.nameUnknown(repository.name) }
            guard s.blobs[digest] != nil, s.blobMarks[digest]?.doomed != true else { return false }
            s.blobMarks[digest] = nil
            s.repos[repository]!.blobs.insert(digest)
            return true
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: RepositoryKey) async throws -> Bool {
        state.withLock { s in s.repos[repository]?.blobs.remove(digest) != nil }
    }

    public func putManifest(_ put: ManifestPut, in repository: RepositoryKey) async throws -> ManifestPutResult {
        try state.withLock { s in
            guard var repo = s.repos[repository] else { throw BerthError.nameUnknown(repository.name) }
            if put.imageChecks { try Self.checkImagePut(repo, put) }
            // The same order of checks as the SQLite store: the tag's immutability first, then the references.
            if let tag = put.tag, let p = repo.tags[tag], p != put.record.digest, repo.settings.isImmutable(tag: tag) {
                throw BerthError.tagImmutable(tag)
            }
            for b in put.blobs where !repo.blobs.contains(b) {
                throw BerthError.manifestBlobUnknown(b.description)
            }
            for m in put.manifests where repo.manifests[m] == nil {
                throw BerthError.manifestBlobUnknown(m.description)
            }
            let d = put.record.digest
            let created = repo.manifests[d] == nil
            var restored = false
            if created {
                var record = put.record
                record.status = .active
                repo.manifests[d] = record
                repo.references[d] = put.blobs + put.manifests
                repo.blobReferences[d] = put.blobs
                for b in put.blobs { s.blobMarks[b]?.candidateSince = nil }
            } else if repo.manifests[d]?.status != .active {
                // Pushing an archived image again restores it (ECR).
                repo.manifests[d]?.status = .active
                repo.activatedAt[d] = put.record.pushedAt
                restored = true
            }
            var previous: Digest? = nil
            if let tag = put.tag {
                previous = repo.tags[tag]
                repo.tags[tag] = d
                if previous == d { previous = nil } else { repo.tagTimes[tag] = put.record.pushedAt }
            }
            s.repos[repository] = repo
            s.outbox.append(put.events)
            s.replication.enqueue(put.replication, at: put.record.pushedAt)
            return ManifestPutResult(created: created, previousTagDigest: previous, restored: restored)
        }
    }

    public func manifest(_ digest: Digest, in repository: RepositoryKey) async throws -> ManifestRecord? {
        state.withLock { $0.repos[repository]?.manifests[digest] }
    }

    public func resolveTag(_ tag: String, in repository: RepositoryKey) async throws -> Digest? {
        state.withLock { $0.repos[repository]?.tags[tag] }
    }

    public func listTags(in repository: RepositoryKey, after last: String?, limit: Int) async throws -> [String] {
        state.withLock { s in
            guard let r = s.repos[repository] else { return [] }
            return Array(r.tags.keys.filter { last == nil || $0 > last! }.sorted().prefix(limit + 1))
        }
    }

    /// Removes a manifest with its tags, references and scan; false when it was not there.
    static func removeManifest(_ r: inout Repo, _ digest: Digest) -> Bool {
        guard r.manifests.removeValue(forKey: digest) != nil else { return false }
        r.references[digest] = nil
        r.pulls[digest] = nil
        r.downloads[digest] = nil
        r.archivedAt[digest] = nil
        r.activatedAt[digest] = nil
        r.blobReferences[digest] = nil
        r.scans[digest] = nil
        r.tags = r.tags.filter { $0.value != digest }
        return true
    }

    static func referencing(_ r: Repo, _ digest: Digest) -> [Digest] {
        r.references.filter { $0.value.contains(digest) }.map(\.key).sorted()
    }

    /// ECR PutImage's checks (`ManifestPut.imageChecks`), under the same lock as the put.
    static func checkImagePut(_ repo: Repo, _ put: ManifestPut) throws {
        let digest = put.record.digest
        // An archived image pushed again is restored, not refused (ECR).
        if repo.manifests[digest]?.status == .active {
            guard let tag = put.tag else { throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: nil) }
            if repo.tags[tag] == digest { throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: tag) }
        }
        if let m = put.manifests.first(where: { repo.manifests[$0] == nil }) {
            throw ImagePutRefusal.referencedImagesNotFound([m])
        }
        let missing = put.blobs.filter { !repo.blobs.contains($0) }
        if !missing.isEmpty { throw ImagePutRefusal.layersNotFound(missing) }
    }

    public func deleteImage(_ target: ImageDeletionTarget, in repository: RepositoryKey,
                            events: ImageDeletionEvents?) async throws -> ImageDeletion {
        state.withLock { s in
            let outcome = Self.deleteImage(&s, target, in: repository)
            if case .deleted = outcome, let events { s.outbox.append(events(outcome)) }
            return outcome
        }
    }

    static func deleteImage(_ s: inout State, _ target: ImageDeletionTarget, in repository: RepositoryKey) -> ImageDeletion {
        guard var r = s.repos[repository] else { return .notFound }
        defer { s.repos[repository] = r }
        switch target {
        case .digest(let digest):
            guard r.manifests[digest] != nil else { return .notFound }
            let parents = Self.referencing(r, digest)
            guard parents.isEmpty else { return .referenced(by: parents) }
            let tags = r.tags.filter { $0.value == digest }.map(\.key).sorted()
            _ = Self.removeManifest(&r, digest)
            return .deleted(tags: tags, imageDeleted: true)
        case .tag(let tag, let digest):
            guard r.tags[tag] == digest else { return .notFound }
            r.tags[tag] = nil
            guard !r.tags.values.contains(digest), Self.referencing(r, digest).isEmpty else {
                return .deleted(tags: [tag], imageDeleted: false)
            }
            return .deleted(tags: [tag], imageDeleted: Self.removeManifest(&r, digest))
        }
    }

    public func deleteTag(_ tag: String, in repository: RepositoryKey, events: TagDeletionEvents?) async throws -> Bool {
        state.withLock { s in
            guard let digest = s.repos[repository]?.tags.removeValue(forKey: tag) else { return false }
            if let events { s.outbox.append(events(digest)) }
            return true
        }
    }

    public func referrers(of digest: Digest, in repository: RepositoryKey) async throws -> [ManifestSummary] {
        state.withLock { s in
            guard let r = s.repos[repository] else { return [] }
            return r.manifests.values.filter { $0.subject == digest }.sorted { $0.digest < $1.digest }.map {
                ManifestSummary(digest: $0.digest, mediaType: $0.mediaType, artifactType: $0.artifactType,
                                size: $0.size, annotationsJSON: $0.annotationsJSON)
            }
        }
    }

    public func createUpload(_ session: UploadSession) async throws {
        var session = session
        (session.writer, session.writingSince) = (nil, nil)  // as the SQL stores: a new upload is unclaimed
        state.withLock { [session] in $0.uploads[session.id] = session }
    }

    public func upload(_ id: String) async throws -> UploadSession? {
        state.withLock { $0.uploads[id] }
    }

    public func claimUpload(_ id: String, at offset: Int64, writer: String, now: Double, staleBefore: Double) async throws -> Bool {
        state.withLock { s in
            guard var u = s.uploads[id], u.claimable(at: offset, by: writer, staleBefore: staleBefore) else { return false }
            (u.writer, u.writingSince) = (writer, now)
            s.uploads[id] = u
            return true
        }
    }

    public func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double, writer: String?) async throws -> Bool {
        state.withLock { s in
            guard let u = s.uploads[id], u.offset == expected, u.writer == writer else { return false }
            s.uploads[id] = u.advanced(by: offset - expected, to: offset, at: at)
            return true
        }
    }

    public func releaseUpload(_ id: String, writer: String) async throws {
        state.withLock { s in
            guard var u = s.uploads[id], u.writer == writer else { return }
            (u.writer, u.writingSince) = (nil, nil)
            s.uploads[id] = u
        }
    }

    public func deleteUpload(_ id: String) async throws {
        _ = state.withLock { $0.uploads.removeValue(forKey: id) }
    }

    public func staleUploads(before: Double) async throws -> [UploadSession] {
        state.withLock { s in s.uploads.values.filter { $0.updatedAt < before }.sorted { $0.id < $1.id } }
    }

    // MARK: images

    func summary(_ r: Repo, _ m: ManifestRecord) -> ImageSummary {
        ImageSummary(digest: m.digest, mediaType: m.mediaType, artifactType: m.artifactType, manifestSize: m.size,
                     imageSize: m.imageSize, pushedAt: m.pushedAt, lastPulledAt: r.pulls[m.digest], subject: m.subject,
                     tags: r.tags.filter { $0.value == m.digest }.map(\.key).sorted(), status: m.status,
                     lastArchivedAt: r.archivedAt[m.digest], lastActivatedAt: r.activatedAt[m.digest],
                     downloadCount: r.downloads[m.digest] ?? 0)
    }

    public func images(in repository: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary] {
        state.withLock { s in
            guard let r = s.repos[repository] else { return [] }
            let ms = r.manifests.values.filter { after == nil || $0.digest.description > after! }.sorted { $0.digest < $1.digest }
            return ms.prefix(limit + 1).map { summary(r, $0) }
        }
    }

    public func image(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageSummary? {
        state.withLock { s in
            guard let r = s.repos[repository], let m = r.manifests[digest] else { return nil }
            return summary(r, m)
        }
    }

    public func recordPulls(_ pulls: [ImagePulls]) async throws {
        state.withLock { s in
            for p in pulls {
                guard var r = s.repos[p.repository], r.manifests[p.digest] != nil else { continue }
                if let t = p.lastPulledAt { r.pulls[p.digest] = max(t, r.pulls[p.digest] ?? 0) }
                let d = p.digest
                // A child of an index: listed by a manifest of the repository as a manifest, not as a blob.
                let child = r.references.contains { $0.value.contains(d) && !(r.blobReferences[$0.key] ?? []).contains(d) }
                let count = p.byTag + (child ? 0 : p.byDigest)
                if count != 0 { r.downloads[d, default: 0] += count }
                s.repos[p.repository] = r
            }
        }
    }

    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double, activating: Bool, events: [OutboxEvent]) async throws -> ImageStorageClassChange {
        state.withLock { s in
            guard var r = s.repos[repository], let m = r.manifests[digest] else { return .notFound }
            defer { s.repos[repository] = r }
            switch target {
            case .archive:
                if m.status == .archived { return .updated(.archived, changed: false) }
                // The manifests listing it (as an index does; a manifest is never another's blob).
                let parents = r.references.filter { parent, children in
                    children.contains(digest) && r.manifests[parent]?.status == .active
                }.map(\.key).sorted()
                if !parents.isEmpty { return .referenced(by: parents) }
                r.manifests[digest]?.status = .archived
                r.archivedAt[digest] = at
                r.scans[digest] = nil  // ECR: earlier scan results are not available after a restore
                s.outbox.append(events)
                return .updated(.archived, changed: true)
            case .standard:
                if m.status == .active { return .updated(.active, changed: false) }
                if activating {
                    if m.status == .activating { return .updated(.activating, changed: false) }
                    r.manifests[digest]?.status = .activating
                    return .updated(.activating, changed: true)
                }
                r.manifests[digest]?.status = .active
                r.activatedAt[digest] = at
                s.outbox.append(events)
                return .updated(.active, changed: true)
            }
        }
    }

    public func finishActivation(_ digest: Digest, in repository: RepositoryKey, at: Double,
                                 events: [OutboxEvent]) async throws -> Bool {
        state.withLock { s in
            guard s.repos[repository]?.manifests[digest]?.status == .activating else { return false }
            s.repos[repository]?.manifests[digest]?.status = .active
            s.repos[repository]?.activatedAt[digest] = at
            s.outbox.append(events)
            return true
        }
    }

    public func activatingImages(after: ImageRef?, limit: Int) async throws -> [ImageRef] {
        func key(_ i: ImageRef) -> [String] { [i.repository.registryID, i.repository.name, i.digest.description] }
        let floor = after.map(key)
        return state.withLock { s in
            s.repos.flatMap { repo, r in
                r.manifests.values.filter { $0.status == .activating }.map { ImageRef(repository: repo, digest: $0.digest) }
            }
            .filter { floor == nil || floor!.lexicographicallyPrecedes(key($0)) }
            .sorted { key($0).lexicographicallyPrecedes(key($1)) }
            .prefix(limit).map { $0 }
        }
    }

    public func blobsUsedOnlyByArchivedImages(_ digests: [Digest]) async throws -> [Digest] {
        state.withLock { s in
            digests.filter { d in
                var referenced = false
                for r in s.repos.values {
                    let parents = r.references.filter { $0.value.contains(d) }.map(\.key)
                    if parents.contains(where: { r.manifests[$0]?.status == .active }) { return false }
                    if parents.isEmpty && r.blobs.contains(d) { return false }  // a push in progress
                    referenced = referenced || !parents.isEmpty
                }
                return referenced
            }
        }
    }

    public func pullTimeExclusions(of account: String) async throws -> [PullTimeExclusion] {
        state.withLock { s in (s.pullTimeExclusions[account] ?? [:]).values.sorted { $0.principalARN < $1.principalARN } }
    }

    public func addPullTimeExclusion(_ exclusion: PullTimeExclusion, to account: String, limit: Int) async throws -> PullTimeExclusionInsert {
        state.withLock { s in
            let current = s.pullTimeExclusions[account] ?? [:]
            if current[exclusion.principalARN] != nil { return .alreadyExists }
            if current.count >= limit { return .limitExceeded }
            s.pullTimeExclusions[account, default: [:]][exclusion.principalARN] = exclusion
            return .added(exclusion)
        }
    }

    public func removePullTimeExclusion(_ principalARN: String, from account: String) async throws -> Bool {
        state.withLock { s in s.pullTimeExclusions[account]?.removeValue(forKey: principalARN) != nil }
    }

    public func manifestsReferencing(_ digest: Digest, in repository: RepositoryKey) async throws -> [Digest] {
        state.withLock { s in
            guard let r = s.repos[repository] else { return [] }
            return Self.referencing(r, digest)
        }
    }

    public func imageCount(in repository: RepositoryKey) async throws -> Int {
        state.withLock { $0.repos[repository]?.manifests.count ?? 0 }
    }

    // MARK: accounts

    public func createAccount(_ id: String, at: Double) async throws -> Bool {
        authorizationGeneration.recording {
            state.withLock { s in
                if s.accounts[id] != nil { return false }
                s.accounts[id] = AccountRecord(id: id, createdAt: at)
                return true
            }
        }
    }

    public func account(_ id: String) async throws -> AccountRecord? { state.withLock { $0.accounts[id] } }

    public func listAccounts() async throws -> [AccountRecord] {
        state.withLock { $0.accounts.values.sorted { $0.id < $1.id } }
    }

    public func putAccessKey(_ key: AccessKeyRecord) async throws {
        try authorizationGeneration.recording {
            try state.withLock { s in
                guard s.accounts[key.accountID] != nil else { throw StorageError("unknown account \(key.accountID)") }
                s.keys[key.accessKeyID] = key
            }
        }
    }

    public func accessKey(_ id: String) async throws -> AccessKeyRecord? { state.withLock { $0.keys[id] } }

    public func accessKeys(ofAccount id: String) async throws -> [AccessKeyRecord] {
        state.withLock { s in s.keys.values.filter { $0.accountID == id }.sorted { $0.accessKeyID < $1.accessKeyID } }
    }

    public func setAccessKeyStatus(_ id: String, _ status: String) async throws -> Bool {
        authorizationGeneration.recording {
            state.withLock { s in
                guard s.keys[id] != nil else { return false }
                s.keys[id]!.status = status
                return true
            }
        }
    }

    public func deleteAccessKey(_ id: String) async throws -> Bool {
        authorizationGeneration.recording {
            state.withLock { $0.keys.removeValue(forKey: id) != nil }
        }
    }

    public func accountSetting(_ account: String, _ name: String) async throws -> String? {
        state.withLock { $0.accountSettings["\(account)/\(name)"] }
    }

    public func putAccountSetting(_ account: String, _ name: String, _ value: String) async throws {
        authorizationGeneration.recording {
            state.withLock { $0.accountSettings["\(account)/\(name)"] = value }
        }
    }
}
