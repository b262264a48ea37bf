/// Storage accounting (docs/gc.md): what `berth usage` prints and `/metrics` exports.

/// The storage figures of one repository or account.
public struct UsageFigures: Sendable, Equatable, Codable {
    /// Manifests stored.
    public var images: Int64 = 0
    /// The sum of the images' sizes, as clients see them (a layer shared by two images counts twice).
    public var storedBytes: Int64 = 0
    /// Blobs referenced by this repository (account) and by no other.
    public var uniqueBytes: Int64 = 0
    /// Blobs referenced by this repository (account) and by at least one other.
    public var sharedBytes: Int64 = 0
    /// Blobs linked here that no manifest anywhere references: what the next collections free.
    public var reclaimableBytes: Int64 = 0

    public init(images: Int64 = 0, storedBytes: Int64 = 0, uniqueBytes: Int64 = 0, sharedBytes: Int64 = 0,
                reclaimableBytes: Int64 = 0) {
        self.images = images
        self.storedBytes = storedBytes
        self.uniqueBytes = uniqueBytes
        self.sharedBytes = sharedBytes
        self.reclaimableBytes = reclaimableBytes
    }
}

/// Storage usage: the deduplicated totals and the figures per account and per repository.
public struct StorageUsage: Sendable, Equatable {
    public var blobs: Int64 = 0
    /// Bytes of all blobs, each counted once (what the blob files take on disk).
    public var bytes: Int64 = 0
    public var unreferencedBlobs: Int64 = 0
    /// Bytes of blobs no manifest references (linked or not): what collections will free.
    public var unreferencedBytes: Int64 = 0
    public var accounts: [String: UsageFigures] = [:]
    public var repositories: [RepositoryKey: UsageFigures] = [:]

    public init() {}
}

/// What one encryption key protects (issue #13: accounting by key): the repositories encrypted with it,
/// their images and stored bytes, and the blobs they link, each counted once.
public struct KeyUsage: Sendable, Equatable, Codable {
    /// `AES256` (the registry-managed key), or the repository's `kmsKey` (`alias/aws/ecr` when a KMS
    /// repository names none).
    public var key: String
    public var repositories: Int = 0
    public var images: Int64 = 0
    public var storedBytes: Int64 = 0
    public var blobs: Int64 = 0
    public var bytes: Int64 = 0

    public init(key: String) { self.key = key }
}
