import BerthCore

/// What the public gallery reads: every public repository with its catalog data and image figures, in one
/// query (its list and search pages must not cost a round trip per repository).
public protocol GalleryMetadata: Sendable {
    /// Every ECR Public repository of every account, in (registry, name) order, with the account's public
    /// registry display name. `aboutText` and `usageText` are filled in only when `includingTexts` is true
    /// (search reads the about text; the front page does not need up to 50 KB per repository). The logo is
    /// never read: `hasLogo` says whether there is one.
    func publicRepositorySummaries(includingTexts: Bool) async throws -> [PublicRepositorySummary]
}
