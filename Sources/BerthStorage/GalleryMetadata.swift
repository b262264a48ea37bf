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

/// Download counts and the gallery's summary index (issue #17). A migration of its own, like the
/// replication queue's, so that its number can change when branches merge: `version` is the only place
/// it is written.
public enum DownloadCountSchema {
    /// The schema version that adds the counter (SQLite and PostgreSQL alike).
    public static let version = 11
    public static let name = "image download counts and gallery summary index"

    /// SQLite's statements. `manifests` is a `WITHOUT ROWID` table keyed `(repo_id, digest)` that holds the
    /// body before the figures: the gallery's per-repository latest push, latest pull and download sum
    /// would read every body's pages (and overflow chains) to reach them. The covering index answers
    /// the three from a few index pages per repository.
    public static let sqlite = """
        ALTER TABLE manifests ADD COLUMN download_count INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX manifests_figures ON manifests(repo_id, pushed_at, last_pulled_at, download_count);
        """
}
