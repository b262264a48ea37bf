/// The registry's stored records, as the domain service hands them to the doors and the scanner
/// (and as the stores keep them). Values only: no store is reachable through them.

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
    /// ACTIVE unless the image is archived (or being restored): only an ACTIVE image can be pulled.
    public var status: ImageStatus
    public var size: Int64 { Int64(bytes.count) }

    public init(digest: Digest, mediaType: String, artifactType: String?, bytes: [UInt8], subject: Digest?,
                annotationsJSON: String?, pushedAt: Double, imageSize: Int64 = 0, status: ImageStatus = .active) {
        self.imageSize = imageSize
        self.status = status
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

    public init(digest: Digest, mediaType: String, artifactType: String?, size: Int64, annotationsJSON: String?) {
        self.digest = digest
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.size = size
        self.annotationsJSON = annotationsJSON
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
    /// Bytes of the last chunk committed (`advanceUpload`); nil before the first.
    public var lastChunkSize: Int64?
    /// The smallest chunk another chunk followed; nil while there were fewer than two. Stored with the
    /// session, so that ECR's "every part but the last is at least 5 MiB" (`LayerPartTooSmallException`)
    /// holds whichever node each part reached.
    public var smallestInnerChunk: Int64?
    /// The request writing the upload's next bytes (`UploadMetadata.claimUpload`), across nodes; nil when none.
    public var writer: String?
    /// When `writer` claimed (or renewed) the upload; a claim older than the stalled-writer timeout lapses.
    public var writingSince: Double?

    public init(id: String, repository: RepositoryKey, offset: Int64, startedAt: Double, updatedAt: Double,
                lastChunkSize: Int64? = nil, smallestInnerChunk: Int64? = nil, writer: String? = nil,
                writingSince: Double? = nil) {
        self.id = id
        self.repository = repository
        self.offset = offset
        self.startedAt = startedAt
        self.updatedAt = updatedAt
        self.lastChunkSize = lastChunkSize
        self.smallestInnerChunk = smallestInnerChunk
        self.writer = writer
        self.writingSince = writingSince
    }

    /// Whether `writer` may claim the session at `offset`: the offset is the committed one and no other
    /// writer holds a claim taken (or renewed) at or after `staleBefore` (`UploadMetadata.claimUpload`).
    public func claimable(at offset: Int64, by writer: String, staleBefore: Double) -> Bool {
        guard self.offset == offset else { return false }
        guard let holder = self.writer, holder != writer else { return true }
        return (writingSince ?? -Double.infinity) < staleBefore
    }

    /// The session after a chunk of `size` bytes is committed (what `advanceUpload` stores); the claim is released.
    public func advanced(by size: Int64, to offset: Int64, at: Double) -> UploadSession {
        var next = self
        next.offset = offset
        next.updatedAt = at
        if let last = lastChunkSize { next.smallestInnerChunk = min(smallestInnerChunk ?? last, last) }
        next.lastChunkSize = size
        next.writer = nil
        next.writingSince = nil
        return next
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
    /// ECR's `imageStatus`; `lastArchivedAt` and `lastActivatedAt` are when it last went to the ARCHIVE
    /// storage class and last came back to STANDARD (nil when it never did).
    public var status: ImageStatus
    public var lastArchivedAt: Double?
    public var lastActivatedAt: Double?
    /// How many times it was downloaded (pulled as a top-level image; see `ImagePulls`), as of the last flush.
    public var downloadCount: Int64

    public init(digest: Digest, mediaType: String, artifactType: String?, manifestSize: Int64, imageSize: Int64,
                pushedAt: Double, lastPulledAt: Double?, subject: Digest?, tags: [String],
                status: ImageStatus = .active, lastArchivedAt: Double? = nil, lastActivatedAt: Double? = nil,
                downloadCount: Int64 = 0) {
        self.downloadCount = downloadCount
        self.status = status
        self.lastArchivedAt = lastArchivedAt
        self.lastActivatedAt = lastActivatedAt
        self.digest = digest
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.manifestSize = manifestSize
        self.imageSize = imageSize
        self.pushedAt = pushedAt
        self.lastPulledAt = lastPulledAt
        self.subject = subject
        self.tags = tags
    }
}

/// ECR's storage classes of an image (`TargetStorageClass`): STANDARD (pullable) or ARCHIVE (kept, not pullable).
public enum ImageStorageClass: String, Sendable, Equatable, CaseIterable {
    case standard = "STANDARD"
    case archive = "ARCHIVE"
}

/// ECR's `ImageStatus`: ACTIVE (STANDARD, pullable), ARCHIVED (ARCHIVE, not pullable), ACTIVATING (on its
/// way back to STANDARD, not pullable yet).
public enum ImageStatus: String, Sendable, Equatable, CaseIterable {
    case active = "ACTIVE"
    case archived = "ARCHIVED"
    case activating = "ACTIVATING"

    /// The storage class the image is in (ACTIVATING is still in ARCHIVE until the restore completes).
    public var storageClass: ImageStorageClass { self == .active ? .standard : .archive }
    /// Whether the image can be pulled.
    public var isPullable: Bool { self == .active }
}

/// An image by repository and manifest digest.
public struct ImageRef: Sendable, Hashable {
    public var repository: RepositoryKey
    public var digest: Digest
    public init(repository: RepositoryKey, digest: Digest) {
        self.repository = repository
        self.digest = digest
    }
}

/// The outcome of a storage class change (`ImageMetadata.updateImageStorageClass`).
public enum ImageStorageClassChange: Sendable, Equatable {
    /// The image is now in `status`; `changed` is false when it already was in the target class.
    case updated(ImageStatus, changed: Bool)
    /// No such image in the repository.
    case notFound
    /// The image is listed by ACTIVE indexes of the repository: archiving it alone would break their pulls.
    case referenced(by: [Digest])
}

/// A principal whose pulls do not update `lastRecordedPullTime` (ECR's pull time update exclusions).
public struct PullTimeExclusion: Sendable, Equatable {
    public var principalARN: String
    public var createdAt: Double

    public init(principalARN: String, createdAt: Double) {
        self.principalARN = principalARN
        self.createdAt = createdAt
    }
}

/// The outcome of registering a pull time update exclusion.
public enum PullTimeExclusionInsert: Sendable, Equatable {
    case added(PullTimeExclusion)
    case alreadyExists
    case limitExceeded
}

/// A public (ECR Public) repository as the gallery lists it: its catalog data without the logo, and what
/// its images add up to, read for every public repository in one query.
public struct PublicRepositorySummary: Sendable, Equatable {
    public var key: RepositoryKey
    public var createdAt: Double
    /// The catalog data; `logoBase64` is never filled in (see `hasLogo`), `aboutText` and `usageText` only when asked for.
    public var catalog: PublicCatalogData
    public var hasLogo: Bool
    /// How many tags the repository has.
    public var tagCount: Int
    /// The latest push of an image, nil when it has none.
    public var lastPushedAt: Double?
    /// The latest recorded pull of any of its images (ECR's `lastRecordedPullTime`), nil when none is recorded.
    public var lastPulledAt: Double?
    /// Downloads of its images, summed (an image deleted takes its downloads with it).
    public var downloadCount: Int64
    /// The display name of the account's public registry (ECR Public's `PutRegistryCatalogData`), if one was put.
    public var registryDisplayName: String?

    public init(key: RepositoryKey, createdAt: Double, catalog: PublicCatalogData, hasLogo: Bool, tagCount: Int,
                lastPushedAt: Double?, lastPulledAt: Double?, downloadCount: Int64 = 0, registryDisplayName: String?) {
        self.downloadCount = downloadCount
        self.key = key
        self.createdAt = createdAt
        self.catalog = catalog
        self.hasLogo = hasLogo
        self.tagCount = tagCount
        self.lastPushedAt = lastPushedAt
        self.lastPulledAt = lastPulledAt
        self.registryDisplayName = registryDisplayName
    }
}
