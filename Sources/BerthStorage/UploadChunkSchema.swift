/// Upload sessions remember their chunk sizes (`UploadSession.lastChunkSize`, `smallestInnerChunk`), so that
/// a rule about parts holds when the parts of one upload reach different nodes (issue #14). A migration of
/// its own, kept apart like `ReplicationQueueSchema` so that its number can change when branches merge:
/// `version` is the only place it is written.
public enum UploadChunkSchema {
    /// The schema version that adds the columns (SQLite and PostgreSQL alike).
    public static let version = 12
    public static let name = "upload chunk sizes"

    /// SQLite's statements.
    public static let sqlite = """
        ALTER TABLE uploads ADD COLUMN last_chunk INTEGER;
        ALTER TABLE uploads ADD COLUMN smallest_inner_chunk INTEGER;
        """

    /// PostgreSQL's statements.
    public static let postgres = """
        ALTER TABLE uploads ADD COLUMN last_chunk BIGINT, ADD COLUMN smallest_inner_chunk BIGINT;
        """
}
