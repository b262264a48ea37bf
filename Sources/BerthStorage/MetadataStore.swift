import BerthCore

/// A stored manifest: its exact bytes plus what the registry derived from them.
public struct ManifestRecord: Sendable, Equatable {
    public var digest: Digest
    public var mediaType: String
    public var artifactType: String?
    public var bytes: [UInt8]
    public var subject: Digest?
    /// The manifest's annotations, as JSON text (for referrers responses).
    public var annotationsJSON: String?
    /// Seconds since 1970.
    public var pushedAt: Double
    /// ECR's `imageSizeInBytes`: the sum of the layer sizes; for an index, the largest child's.
    public var imageSize: Int64
    public var size: Int64 { Int64(bytes.count) }

    public init(digest: Digest, mediaType: String, artifactType: String?, bytes: [UInt8], subject: Digest?,
                annotationsJSON: String?, pushedAt: Double, imageSize: Int64 = 0) {
        self.imageSize = imageSize
        self.digest = digest
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.bytes = bytes
        self.subject = subject
        self.annotationsJSON = annotationsJSON
        self.pushedAt = pushedAt
    }
}

/// A manifest without its bytes, as listed by referrers queries.
public struct ManifestSummary: Sendable, Equatable {
    public var digest: Digest
    public var mediaType: String
    public var artifactType: String?
    public var size: Int64
    public var annotationsJSON: String?
}

/// What a manifest PUT needs to be true, checked in the same transaction that stores it.
public struct ManifestPut: Sendable {
    public var record: ManifestRecord
    /// Blobs that must be linked to the repository.
    public var blobs: [Digest]
    /// Manifests that must already be in the repository (for an index).
    public var manifests: [Digest]
    /// The tag to point at the manifest, if pushed by tag.
    public var tag: String?

    public init(record: ManifestRecord, blobs: [Digest], manifests: [Digest], tag: String?) {
        self.record = record
        self.blobs = blobs
        self.manifests = manifests
        self.tag = tag
    }
}

public struct ManifestPutResult: Sendable, Equatable {
    /// True when the manifest was not in the repository before.
    public var created: Bool
    /// The digest the tag pointed to before, when it moved.
    public var previousTagDigest: Digest?

    public init(created: Bool, previousTagDigest: Digest?) {
        self.created = created
        self.previousTagDigest = previousTagDigest
    }
}

/// A chunked upload in progress.
public struct UploadSession: Sendable, Equatable {
    public var id: String
    public var repository: RepositoryKey
    /// Bytes committed so far (the next chunk must start here).
    public var offset: Int64
    public var startedAt: Double
    public var updatedAt: Double

    public init(id: String, repository: RepositoryKey, offset: Int64, startedAt: Double, updatedAt: Double) {
        self.id = id
        self.repository = repository
        self.offset = offset
        self.startedAt = startedAt
        self.updatedAt = updatedAt
    }
}

public struct RepositoryRecord: Sendable, Equatable {
    public var key: RepositoryKey
    public var createdAt: Double
    public var settings: RepositorySettings

    public init(key: RepositoryKey, createdAt: Double, settings: RepositorySettings = .init()) {
        self.key = key
        self.createdAt = createdAt
        self.settings = settings
    }
}

/// An image (manifest) in a repository with its tags, as ECR's ListImages/DescribeImages see it.
public struct ImageSummary: Sendable, Equatable {
    public var digest: Digest
    public var mediaType: String
    public var artifactType: String?
    public var manifestSize: Int64
    public var imageSize: Int64
    public var pushedAt: Double
    public var lastPulledAt: Double?
    public var subject: Digest?
    /// Tags pointing at this image, sorted.
    public var tags: [String]
}

/// Repositories. Creating, deleting and changing the settings of one advances `authorizationGeneration`
/// (its policy and tags take part in authorization).
public protocol RepositoryMetadata: AuthorizationChangeTracking {
    /// Creates the repository if it does not exist; returns true when it was created.
    @discardableResult
    func createRepository(_ key: RepositoryKey, at: Double, settings: RepositorySettings) async throws -> Bool
    /// Replaces a repository's settings; false when it does not exist.
    @discardableResult
    func updateRepositorySettings(_ key: RepositoryKey, _ settings: RepositorySettings) async throws -> Bool
    func repository(_ key: RepositoryKey) async throws -> RepositoryRecord?
    /// Names of a registry's repositories in lexical order after `last`, up to `limit + 1` rows
    /// (so callers can tell a next page).
    func listRepositories(in registryID: String, after last: String?, limit: Int) async throws -> [String]
    /// Deletes a repository with everything in it. Returns false when it did not exist.
    @discardableResult
    func deleteRepository(_ key: RepositoryKey) async throws -> Bool
}

/// Blobs known to the registry and their links into repositories.
public protocol BlobMetadata: Sendable {
    /// Records a committed blob and links it to `repository` in one transaction.
    func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double) async throws
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

/// Manifests, tags and referrers.
public protocol ManifestMetadata: Sendable {
    /// Stores a manifest, its references and (optionally) a tag, atomically, after checking that
    /// every referenced blob and manifest exists in the repository (`BerthError.manifestBlobUnknown`)
    /// and that the tag may move (`BerthError.tagImmutable`, per the repository's settings).
    func putManifest(_ put: ManifestPut, in repository: RepositoryKey) async throws -> ManifestPutResult
    func manifest(_ digest: Digest, in repository: RepositoryKey) async throws -> ManifestRecord?
    func resolveTag(_ tag: String, in repository: RepositoryKey) async throws -> Digest?
    /// Tags in lexical order after `last`, up to `limit + 1` rows.
    func listTags(in repository: RepositoryKey, after last: String?, limit: Int) async throws -> [String]
    /// Deletes a manifest and every tag that points to it; false when it did not exist.
    func deleteManifest(_ digest: Digest, in repository: RepositoryKey) async throws -> Bool
    /// Deletes one tag; false when it did not exist.
    func deleteTag(_ tag: String, in repository: RepositoryKey) async throws -> Bool
    /// Manifests whose `subject` is `digest`, ordered by digest.
    func referrers(of digest: Digest, in repository: RepositoryKey) async throws -> [ManifestSummary]
}

/// Upload sessions, persisted so that chunked uploads survive restarts.
public protocol UploadMetadata: Sendable {
    func createUpload(_ session: UploadSession) async throws
    func upload(_ id: String) async throws -> UploadSession?
    /// Moves the committed offset from `expected` to `offset`; false if the offset had moved (a race).
    func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double) async throws -> Bool
    func deleteUpload(_ id: String) async throws
    /// Uploads not touched since `before`, for purging.
    func staleUploads(before: Double) async throws -> [UploadSession]
}

/// Images with their tags, for ECR's listing operations, and pull times.
public protocol ImageMetadata: Sendable {
    /// Images ordered by digest after `after`, up to `limit + 1` rows.
    func images(in repository: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary]
    func image(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageSummary?
    /// Records when images were last pulled.
    func recordPulls(_ pulls: [(RepositoryKey, Digest, Double)]) async throws
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
    @discardableResult
    func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?) async throws -> Bool
    func scan(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageScanRecord?
    /// Scans not yet finished (`PENDING`, `IN_PROGRESS`), oldest request first, without findings.
    func unfinishedScans(limit: Int) async throws -> [ImageScanRecord]
}

public typealias MetadataStore = RepositoryMetadata & BlobMetadata & ManifestMetadata & UploadMetadata & ImageMetadata
    & AccountMetadata & IdentityMetadata & ScanMetadata

extension RepositoryMetadata {
    @discardableResult
    public func createRepository(_ key: RepositoryKey, at: Double) async throws -> Bool {
        try await createRepository(key, at: at, settings: RepositorySettings())
    }
}
