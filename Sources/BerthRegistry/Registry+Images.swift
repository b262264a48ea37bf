import BerthCore
import BerthStorage

/// Reads of images, tags and repositories for the listing operations of the doors (ECR's ListImages,
/// DescribeImages, DescribeImageTags, DescribeRepositories, …) and for the scanner.
extension Registry {
    /// The digest a tag names, or nil.
    public func resolveTag(_ tag: String, in name: RepositoryKey) async throws -> Digest? {
        try await metadata.resolveTag(tag, in: name)
    }

    /// An image (a manifest with its tags), or nil.
    public func image(_ digest: Digest, in name: RepositoryKey) async throws -> ImageSummary? {
        try await metadata.image(digest, in: name)
    }

    /// Images in digest order after `after`, up to `limit + 1` rows (so callers can tell a next page).
    public func images(in name: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary] {
        try await metadata.images(in: name, after: after, limit: limit)
    }

    /// A stored manifest, or nil: through the manifest cache where this process is the only writer of the
    /// metadata; from the store where several nodes share it (`RegistrySettings.sharedMetadata`).
    public func storedManifest(_ digest: Digest, in name: RepositoryKey) async throws -> ManifestRecord? {
        if settings.sharedMetadata { return try await metadata.manifest(digest, in: name) }
        if let cached = manifestCache.get(name, digest) { return cached }
        let generation = manifestCache.generation
        guard let record = try await metadata.manifest(digest, in: name) else { return nil }
        manifestCache.put(name, record, ifGeneration: generation)
        return record
    }

    /// The manifests of the repository that reference `digest` (as config, layer or index entry).
    public func referencingManifests(of digest: Digest, in name: RepositoryKey) async throws -> [Digest] {
        try await metadata.manifestsReferencing(digest, in: name)
    }

    /// The ids of the accounts this deployment serves (each is a private registry).
    public func accountIDs() async throws -> [String] {
        try await metadata.listAccounts().map(\.id)
    }

    /// Every registry (account × region, and public registries) that holds a repository, as stored ids.
    public func registryIDs() async throws -> [String] {
        try await metadata.registryIDs()
    }
}
