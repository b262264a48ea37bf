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
    public var size: Int64 { Int64(bytes.count) }

    public init(digest: Digest, mediaType: String, artifactType: String?, bytes: [UInt8], subject: Digest?,
                annotationsJSON: String?, pushedAt: Double) {
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

    public init(key: RepositoryKey, createdAt: Double) {
        self.key = key
        self.createdAt = createdAt
    }
}

/// Repositories.
public protocol RepositoryMetadata: Sendable {
    /// Creates the repository if it does not exist; returns true when it was created.
    @discardableResult
    func createRepository(_ key: RepositoryKey, at: Double) async throws -> Bool
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
    /// Links an existing blob to another repository; false when the blob is unknown.
    func linkBlob(_ digest: Digest, to repository: RepositoryKey, at: Double) async throws -> Bool
    /// Removes the link; false when it was not linked.
    func unlinkBlob(_ digest: Digest, from repository: RepositoryKey) async throws -> Bool
}

/// Manifests, tags and referrers.
public protocol ManifestMetadata: Sendable {
    /// Stores a manifest, its references and (optionally) a tag, atomically, after checking that
    /// every referenced blob and manifest exists in the repository (`BerthError.manifestBlobUnknown`).
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

public typealias MetadataStore = RepositoryMetadata & BlobMetadata & ManifestMetadata & UploadMetadata
