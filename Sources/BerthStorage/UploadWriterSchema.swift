/// Upload sessions record the request writing their next bytes (`UploadSession.writer`, `writingSince`), a
/// claim taken by compare-and-set on the committed offset before any byte is written, so that two requests
/// writing one upload at once on two nodes cannot both write it (docs/s3.md, "Concurrent writes of one
/// upload"). A migration of its own, like `UploadChunkSchema`, so that its number can change when branches
/// merge: `version` is the only place it is written.
public enum UploadWriterSchema {
    /// The schema version that adds the columns (SQLite and PostgreSQL alike).
    public static let version = 13
    public static let name = "upload writer claims"

    /// SQLite's statements.
    public static let sqlite = """
        ALTER TABLE uploads ADD COLUMN writer TEXT;
        ALTER TABLE uploads ADD COLUMN writing_since REAL;
        """

    /// PostgreSQL's statements.
    public static let postgres = """
        ALTER TABLE uploads ADD COLUMN writer TEXT, ADD COLUMN writing_since DOUBLE PRECISION;
        """
}
