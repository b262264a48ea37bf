import BerthCore

/// A repository's last lifecycle policy preview as stored, so that `GetLifecyclePolicyPreview` answers
/// after a restart (and from any server on the same data).
public struct StoredLifecyclePreview: Sendable, Equatable {
    /// The policy the preview evaluated.
    public var policyText: String
    /// The preview's results, encoded by the caller (the ECR door keeps their wire form, JSON).
    public var results: [UInt8]
    /// When the preview was made, seconds since 1970.
    public var createdAt: Double

    public init(policyText: String, results: [UInt8], createdAt: Double) {
        self.policyText = policyText
        self.results = results
        self.createdAt = createdAt
    }
}

/// Lifecycle policy previews: one per repository, deleted with it, expiring after a while.
public protocol LifecyclePreviewMetadata: Sendable {
    /// Replaces the repository's preview (`nameUnknown` when it does not exist), and drops every
    /// repository's preview made before `expiredBefore`, in one write.
    func putLifecyclePreview(_ preview: StoredLifecyclePreview, for repository: RepositoryKey, expiredBefore: Double) async throws
    /// The repository's preview, if there is one made at or after `notBefore`.
    func lifecyclePreview(_ repository: RepositoryKey, notBefore: Double) async throws -> StoredLifecyclePreview?
}
