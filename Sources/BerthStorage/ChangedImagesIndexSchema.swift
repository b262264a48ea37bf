/// Indexes for replication's reconciliation (`imagesChanged(in:since:after:limit:)`): the manifests pushed
/// and the tags set since a time, found through `manifests(pushed_at)` and `tags(updated_at)` instead of a
/// scan of every manifest of the registry. A migration of its own, kept apart like `UploadChunkSchema` so
/// that its number can change when branches merge: `version` is the only place it is written.
public enum ChangedImagesIndexSchema {
    /// The schema version that adds the indexes (SQLite and PostgreSQL alike).
    public static let version = 14
    public static let name = "indexes of push and tag times"

    /// The same statements in both dialects.
    public static let sql = """
        CREATE INDEX manifests_pushed_at ON manifests(pushed_at);
        CREATE INDEX tags_updated_at ON tags(updated_at);
        """
}
