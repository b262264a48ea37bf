import BerthCore

/// What a manifest PUT needs to be true, checked in the same transaction that stores it.
public struct ManifestPut: Sendable {
    public var record: ManifestRecord
    /// Blobs that must be linked to the repository.
    public var blobs: [Digest]
    /// Manifests that must already be in the repository (for an index).
    public var manifests: [Digest]
    /// The tag to point at the manifest, if pushed by tag.
    public var tag: String?
    /// ECR PutImage's own checks, made in the same transaction before anything else is checked:
    /// `ImagePutRefusal.imageAlreadyExists` when the image exists and no tag was given or the tag already
    /// names it, `.referencedImagesNotFound` for the first missing child manifest, `.layersNotFound` for
    /// every blob not linked to the repository.
    public var imageChecks: Bool
    /// Events written to the outbox in the put's transaction when it succeeds (`EventOutboxMetadata`).
    public var events: [OutboxEvent]
    /// Replication jobs enqueued in the put's transaction when it succeeds (`ReplicationMetadata`).
    public var replication: [ReplicationJobKey] = []

    public init(record: ManifestRecord, blobs: [Digest], manifests: [Digest], tag: String?, imageChecks: Bool = false,
                events: [OutboxEvent] = []) {
        self.record = record
        self.blobs = blobs
        self.manifests = manifests
        self.tag = tag
        self.imageChecks = imageChecks
        self.events = events
    }
}

public struct ManifestPutResult: Sendable, Equatable {
    /// True when the manifest was not in the repository before.
    public var created: Bool
    /// The digest the tag pointed to before, when it moved.
    public var previousTagDigest: Digest?
    /// True when the manifest was archived (or being restored) and the push made it ACTIVE again
    /// (ECR: pushing an archived image restores it at once).
    public var restored: Bool

    public init(created: Bool, previousTagDigest: Digest?, restored: Bool = false) {
        self.created = created
        self.previousTagDigest = previousTagDigest
        self.restored = restored
    }
}

/// Repositories. Creating, deleting and changing the settings of one advances `authorizationGeneration`
/// (its policy and tags take part in authorization).
public protocol RepositoryMetadata: AuthorizationChangeTracking {
    /// Creates the repository if it does not exist; returns true when it was created.
    @discardableResult
    func createRepository(_ key: RepositoryKey, at: Double, settings: RepositorySettings) async throws -> Bool
    /// Reads a repository's settings, applies `update` and writes the result, in one transaction (so
    /// two concurrent updates of different fields both land). Returns the new settings, or nil when the
    /// repository does not exist; an error thrown by `update` leaves the settings as they were.
    /// `update` is `@escaping @Sendable` so that a store may run it on a thread of its own (inside the transaction).
    func updateRepositorySettings(
        _ key: RepositoryKey, _ update: @escaping @Sendable (inout RepositorySettings) throws -> Void
    ) async throws -> RepositorySettings?
    func repository(_ key: RepositoryKey) async throws -> RepositoryRecord?
    /// Names of a registry's repositories in lexical order after `last`, up to `limit + 1` rows
    /// (so callers can tell a next page).
    func listRepositories(in registryID: String, after last: String?, limit: Int) async throws -> [String]
    /// Every registry id that holds a repository (`RegistryID.storedValue`s), sorted.
    func registryIDs() async throws -> [String]
    /// The same page as `listRepositories`, with each repository's record (one query where the store can:
    /// DescribeRepositories must not cost a round trip per repository).
    func repositoryRecords(in registryID: String, after last: String?, limit: Int) async throws -> [RepositoryRecord]
    /// Deletes a repository with everything in it. Returns false when it did not exist.
    @discardableResult
    func deleteRepository(_ key: RepositoryKey) async throws -> Bool
}

/// Blobs known to the registry and their links into repositories.
public protocol BlobMetadata: Sendable {
    /// Records a committed blob and links it to `repository` in one transaction.
    /// With `finishingUpload`, also deletes that upload session once the blob is recorded: in the same
    /// transaction on SQLite (one write instead of two), by a statement of its own right after it on
    /// PostgreSQL (docs/gc.md, "Upload sessions outside the serializable transactions").
    /// Garbage collection (docs/gc.md) may be removing a blob of the same digest: when the row is claimed
    /// by a collection, nothing is written and the answer is `.beingCollected` (wait, then ask again);
    /// when there is no row but a tombstone (the collector deleted the bytes recently) and
    /// `bytesVerified` is false, nothing is written and the answer is `.collected`: the caller checks that
    /// its bytes are in place (`BlobInventory.isStored`) and asks again with `bytesVerified`.
    @discardableResult
    func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                    finishingUpload upload: String?, bytesVerified: Bool) async throws -> BlobRecording
    /// The size of a blob if the registry has it, linked anywhere.
    func blobSize(_ digest: Digest) async throws -> Int64?
    /// The size of a blob if it is linked to `repository`.
    func linkedBlobSize(_ digest: Digest, in repository: RepositoryKey) async throws -> Int64?
    /// Up to `limit` repositories of one registry that have the blob linked, in name order
    /// (the candidate sources of an automatic cross-repository mount).
    func repositoriesLinking(_ digest: Digest, in registryID: String, limit: Int) async throws -> [RepositoryKey]
    /// Links an existing blob to another repository; false when the blob is unknown.
    func linkBlob(_ digest: Digest, to repository: RepositoryKey, at: Double) async throws -> Bool
    /// Removes the link; false when it was not linked.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryKey) async throws -> Bool
}

/// A manifest to look up in `ManifestMetadata.manifestState`.
public enum ManifestStateQuery: Sendable, Equatable {
    case tag(String)
    case digest(Digest)
}

/// The parts of a stored manifest that change after its push (its status), with what tells a re-push
/// apart from the copy a cache holds (a deleted manifest pushed again has a later `pushedAt`).
public struct ManifestState: Sendable, Equatable {
    public var digest: Digest
    public var status: ImageStatus
    public var pushedAt: Double
    public init(digest: Digest, status: ImageStatus, pushedAt: Double) {
        self.digest = digest
        self.status = status
        self.pushedAt = pushedAt
    }
}

extension ManifestMetadata {
    public func manifestState(_ reference: ManifestStateQuery, in repository: RepositoryKey) async throws -> ManifestState? {
        let digest: Digest
        switch reference {
        case .tag(let tag):
            guard let d = try await resolveTag(tag, in: repository) else { return nil }
            digest = d
        case .digest(let d):
            digest = d
        }
        return try await manifest(digest, in: repository).map { ManifestState(digest: digest, status: $0.status, pushedAt: $0.pushedAt) }
    }
}

/// Manifests, tags and referrers.
public protocol ManifestMetadata: Sendable {
    /// Stores a manifest, its references and (optionally) a tag, atomically, after checking that
    /// every referenced blob and manifest exists in the repository (`BerthError.manifestBlobUnknown`)
    /// and that the tag may move (`BerthError.tagImmutable`, per the repository's settings).
    func putManifest(_ put: ManifestPut, in repository: RepositoryKey) async throws -> ManifestPutResult
    func manifest(_ digest: Digest, in repository: RepositoryKey) async throws -> ManifestRecord?
    func resolveTag(_ tag: String, in repository: RepositoryKey) async throws -> Digest?
    /// What a cached `ManifestRecord` is checked against where several nodes share the metadata: the manifest
    /// a tag (or a digest) names now, its status and push time; nil when there is none. One round trip on
    /// stores that can (the default asks `resolveTag`, then `manifest`).
    func manifestState(_ reference: ManifestStateQuery, in repository: RepositoryKey) async throws -> ManifestState?
    /// Tags in lexical order after `last`, up to `limit + 1` rows.
    func listTags(in repository: RepositoryKey, after last: String?, limit: Int) async throws -> [String]
    /// Deletes one tag; false when it did not exist. `events`, given the digest the tag named, are written
    /// to the outbox in the same transaction.
    func deleteTag(_ tag: String, in repository: RepositoryKey, events: TagDeletionEvents?) async throws -> Bool
    /// Deletes an image in one transaction, by the rules both doors share (see `ImageDeletion`):
    /// `.digest`: the manifest with all its tags, unless a manifest of the repository references it
    /// (`.referenced`); `.tag(t, of: d)`: the tag if it still names `d`, and the image too when that
    /// was its last tag.
    /// `events`, given a `.deleted` outcome, are written to the outbox in the same transaction.
    func deleteImage(_ target: ImageDeletionTarget, in repository: RepositoryKey,
                     events: ImageDeletionEvents?) async throws -> ImageDeletion
    /// Manifests whose `subject` is `digest`, ordered by digest.
    func referrers(of digest: Digest, in repository: RepositoryKey) async throws -> [ManifestSummary]
}

/// Upload sessions, persisted so that chunked uploads survive restarts.
public protocol UploadMetadata: Sendable {
    func createUpload(_ session: UploadSession) async throws
    func upload(_ id: String) async throws -> UploadSession?
    /// Claims the right to write the upload's bytes from its committed offset `offset` for `writer` (a token
    /// unique to one request), across every node sharing the store: true, recording `writer` and `now`, when
    /// the committed offset is `offset` and no other writer holds a claim taken (or renewed) at or after
    /// `staleBefore`; false otherwise (another request is writing it, or it moved). Claiming again with the
    /// same `writer` renews the claim. The claim ends with `advanceUpload` or `releaseUpload` (docs/s3.md).
    func claimUpload(_ id: String, at offset: Int64, writer: String, now: Double, staleBefore: Double) async throws -> Bool
    /// Moves the committed offset from `expected` to `offset` and releases the claim; false if the offset had
    /// moved (a race) or if the upload is not claimed by `writer` (nil: by nobody).
    func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double, writer: String?) async throws -> Bool
    /// Releases `writer`'s claim (a write that failed); nothing when it does not hold it.
    func releaseUpload(_ id: String, writer: String) async throws
    func deleteUpload(_ id: String) async throws
    /// Uploads not touched since `before`, for purging.
    func staleUploads(before: Double) async throws -> [UploadSession]
}

extension UploadMetadata {
    /// `advanceUpload` of an upload nobody claimed.
    public func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double) async throws -> Bool {
        try await advanceUpload(id, from: expected, to: offset, at: at, writer: nil)
    }
}

/// The pulls of one image noted since the last flush (see `ImageMetadata.recordPulls`).
public struct ImagePulls: Sendable, Equatable {
    public var repository: RepositoryKey
    public var digest: Digest
    /// The latest pull to record as `lastRecordedPullTime`; nil when only principals on the registry's
    /// pull time update exclusion list pulled it (their pulls still count as downloads).
    public var lastPulledAt: Double?
    /// Manifest GETs (and BatchGetImage entries) that named a tag: each is a download.
    public var byTag: Int64
    /// Manifest GETs that named the digest: downloads unless the image is a child of an index of the
    /// repository, whose GET by digest is the second request of a pull of that index, counted there.
    public var byDigest: Int64

    public init(repository: RepositoryKey, digest: Digest, lastPulledAt: Double?, byTag: Int64 = 0, byDigest: Int64 = 0) {
        self.repository = repository
        self.digest = digest
        self.lastPulledAt = lastPulledAt
        self.byTag = byTag
        self.byDigest = byDigest
    }
}

/// Images with their tags, for ECR's listing operations, and pull times and download counts.
public protocol ImageMetadata: Sendable {
    /// Images ordered by digest after `after`, up to `limit + 1` rows.
    func images(in repository: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary]
    func image(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageSummary?
    /// Records pulls noted since the last flush, one entry per image, in one transaction: the latest pull
    /// time (never moved back) and the download count, added to the stored one (`download_count +
    /// n`, never read and written back, so nodes sharing a database add up). Pulls by tag all count;
    /// pulls by digest count unless the image is a manifest listed by an index of its repository (the
    /// second GET of an index's pull, see `ImagePulls`). Images no longer there are skipped.
    func recordPulls(_ pulls: [ImagePulls]) async throws
    /// Moves an image between storage classes in one transaction (ECR's UpdateImageStorageClass).
    /// To ARCHIVE (from ARCHIVED: unchanged; from ACTIVE or ACTIVATING): `.referenced` when ACTIVE indexes
    /// of the repository list it; otherwise ARCHIVED, with `lastArchivedAt` = `at`, and its scan (results)
    /// deleted. To STANDARD (from ACTIVE: unchanged): with `activating`, an ARCHIVED image becomes
    /// ACTIVATING (its bytes are coming back from an archive tier; `finishActivation` completes it, and an
    /// ACTIVATING one is unchanged); without, ARCHIVED or ACTIVATING becomes ACTIVE at once, with
    /// `lastActivatedAt` = `at`. Unchanged: `changed: false`.
    /// `events` are written to the outbox in the same transaction when the image became ARCHIVED or ACTIVE
    /// (not ACTIVATING: `finishActivation` writes the restore's).
    func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                 at: Double, activating: Bool, events: [OutboxEvent]) async throws -> ImageStorageClassChange
    /// ACTIVATING → ACTIVE, with `lastActivatedAt` = `at`, and `events` written in the same transaction;
    /// false when the image is not ACTIVATING (archived again, deleted, or already done).
    func finishActivation(_ digest: Digest, in repository: RepositoryKey, at: Double, events: [OutboxEvent]) async throws -> Bool
    /// Images in ACTIVATING (a restore to finish), at most `limit`, by repository and digest after `after`.
    func activatingImages(after: ImageRef?, limit: Int) async throws -> [ImageRef]
    /// Those of `digests` (blobs) whose bytes only archived images use, so they may move to an archive
    /// tier: some manifest references each, none of the manifests referencing it (in any repository) is
    /// ACTIVE, and no repository links it without a manifest referencing it (a push in progress).
    func blobsUsedOnlyByArchivedImages(_ digests: [Digest]) async throws -> [Digest]
    /// An account's pull time update exclusions, in ARN order.
    func pullTimeExclusions(of account: String) async throws -> [PullTimeExclusion]
    /// Adds an exclusion unless it exists or the account already has `limit` (count and insert in one transaction).
    func addPullTimeExclusion(_ exclusion: PullTimeExclusion, to account: String, limit: Int) async throws -> PullTimeExclusionInsert
    /// Removes an exclusion; false when there was none.
    func removePullTimeExclusion(_ principalARN: String, from account: String) async throws -> Bool
    /// Number of manifests in a repository.
    func imageCount(in repository: RepositoryKey) async throws -> Int
    /// Manifests of the repository that reference `digest` (as a config, a layer or an index entry).
    func manifestsReferencing(_ digest: Digest, in repository: RepositoryKey) async throws -> [Digest]
}

/// Accounts, their access keys and account settings. Every write advances `authorizationGeneration`.
public protocol AccountMetadata: AuthorizationChangeTracking {
    @discardableResult
    func createAccount(_ id: String, at: Double) async throws -> Bool
    func account(_ id: String) async throws -> AccountRecord?
    func listAccounts() async throws -> [AccountRecord]
    /// Inserts or replaces an access key.
    func putAccessKey(_ key: AccessKeyRecord) async throws
    /// Inserts a new access key if its account exists and `limit` allows one more; false when it does not.
    /// The count and the insert are one transaction.
    func insertAccessKey(_ key: AccessKeyRecord, limit: AccessKeyLimit) async throws -> Bool
    func accessKey(_ id: String) async throws -> AccessKeyRecord?
    func accessKeys(ofAccount id: String) async throws -> [AccessKeyRecord]
    @discardableResult
    func setAccessKeyStatus(_ id: String, _ status: String) async throws -> Bool
    @discardableResult
    func deleteAccessKey(_ id: String) async throws -> Bool
    func accountSetting(_ account: String, _ name: String) async throws -> String?
    func putAccountSetting(_ account: String, _ name: String, _ value: String) async throws
}

/// Image scans: status and findings per image, and the queue of scans to run.
public protocol ScanMetadata: Sendable {
    /// Stores a scan (replacing the image's previous one) if the image exists and, when `expected` is
    /// given, its current scan is in that state. Returns false otherwise.
    /// `events` are written to the outbox in the same transaction when the scan is stored.
    @discardableResult
    func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?, events: [OutboxEvent]) async throws -> Bool
    func scan(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageScanRecord?
    /// The scans (with findings) of those of `digests` that have one, by digest (one query where the
    /// store can: DescribeImages must not cost a round trip per image).
    func scans(of digests: [Digest], in repository: RepositoryKey) async throws -> [Digest: ImageScanRecord]
    /// Scans not yet finished (`PENDING`, `IN_PROGRESS`), oldest request first, without findings.
    func unfinishedScans(limit: Int) async throws -> [ImageScanRecord]
}

public typealias MetadataStore = RepositoryMetadata & BlobMetadata & ManifestMetadata & UploadMetadata & ImageMetadata
    & AccountMetadata & IdentityMetadata & ScanMetadata & KeyMetadata & GarbageCollectionMetadata & LifecyclePreviewMetadata
    & EventOutboxMetadata & WorkLeases & PullThroughMetadata & GalleryMetadata & ReplicationMetadata & CreationTemplateMetadata

extension ManifestMetadata {
    /// Deletes one tag, with no event.
    public func deleteTag(_ tag: String, in repository: RepositoryKey) async throws -> Bool {
        try await deleteTag(tag, in: repository, events: nil)
    }

    /// Deletes an image, with no event.
    public func deleteImage(_ target: ImageDeletionTarget, in repository: RepositoryKey) async throws -> ImageDeletion {
        try await deleteImage(target, in: repository, events: nil)
    }
}

extension ImageMetadata {
    /// `updateImageStorageClass` that completes a restore at once (no archive tier to bring bytes back from), with no event.
    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double) async throws -> ImageStorageClassChange {
        try await updateImageStorageClass(digest, in: repository, to: target, at: at, activating: false, events: [])
    }

    /// `updateImageStorageClass` with no event.
    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double, activating: Bool) async throws -> ImageStorageClassChange {
        try await updateImageStorageClass(digest, in: repository, to: target, at: at, activating: activating, events: [])
    }

    /// `finishActivation` with no event.
    public func finishActivation(_ digest: Digest, in repository: RepositoryKey, at: Double) async throws -> Bool {
        try await finishActivation(digest, in: repository, at: at, events: [])
    }
}

extension ScanMetadata {
    /// Stores a scan, with no event.
    @discardableResult
    public func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?) async throws -> Bool {
        try await putScan(scan, ifState: expected, events: [])
    }
}

extension RepositoryMetadata {
    /// Replaces a repository's settings; false when it does not exist.
    @discardableResult
    public func updateRepositorySettings(_ key: RepositoryKey, _ settings: RepositorySettings) async throws -> Bool {
        try await updateRepositorySettings(key) { $0 = settings } != nil
    }

    @discardableResult
    public func createRepository(_ key: RepositoryKey, at: Double) async throws -> Bool {
        try await createRepository(key, at: at, settings: RepositorySettings())
    }
}

extension RepositoryMetadata {
    /// Record by record, for the embedded stores (a read there costs no round trip).
    public func repositoryRecords(in registryID: String, after last: String?, limit: Int) async throws -> [RepositoryRecord] {
        var records: [RepositoryRecord] = []
        for name in try await listRepositories(in: registryID, after: last, limit: limit) {
            if let r = try await repository(RepositoryKey(storedRegistryID: registryID, name: name)) { records.append(r) }
        }
        return records
    }
}

extension ScanMetadata {
    /// Scan by scan, for the embedded stores (a read there costs no round trip).
    public func scans(of digests: [Digest], in repository: RepositoryKey) async throws -> [Digest: ImageScanRecord] {
        var found: [Digest: ImageScanRecord] = [:]
        for d in digests where found[d] == nil {
            if let s = try await scan(d, in: repository) { found[d] = s }
        }
        return found
    }
}

extension BlobMetadata {
    /// Records a committed blob and links it to `repository` (no upload session to finish), as if its
    /// bytes were verified (imports and tests).
    @discardableResult
    public func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double) async throws
        -> BlobRecording {
        try await recordBlob(digest, size: size, linkTo: repository, at: at, finishingUpload: nil, bytesVerified: true)
    }

    /// Records a committed blob, finishing an upload session, as if its bytes were verified.
    @discardableResult
    public func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                           finishingUpload upload: String?) async throws -> BlobRecording {
        try await recordBlob(digest, size: size, linkTo: repository, at: at, finishingUpload: upload, bytesVerified: true)
    }
}

/// What `recordBlob` did (docs/gc.md).
public enum BlobRecording: Sendable, Equatable {
    /// Recorded and linked.
    case recorded
    /// A garbage collection is deleting a blob of this digest; nothing written.
    case beingCollected
    /// The collector removed a blob of this digest recently; nothing written until the bytes are verified.
    case collected
}

/// The bytes of a blob being recorded were deleted by the garbage collector after the upload put them in
/// place (the upload must be repeated).
public struct BlobCollectedError: Error, CustomStringConvertible, Sendable {
    public let digest: Digest
    public init(digest: Digest) { self.digest = digest }
    public var description: String { "blob \(digest) was collected while its upload was committing; upload it again" }
}
