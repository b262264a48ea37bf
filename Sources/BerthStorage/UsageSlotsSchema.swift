/// Storage accounting spread over slots (docs/gc.md, "Accounting under concurrency"). The counts the GC
/// schema keeps by triggers — `storage_totals`, and `repository_usage` and `account_usage` per key — were
/// one row each, updated by every push: on PostgreSQL (SERIALIZABLE) two pushes at once updating the same
/// row make one of them fail with a serialization error and start again, so small pushes slowed down as
/// concurrency grew (measured: 65,000 failed transactions in one bench-s3-compare run). On PostgreSQL
/// each key's counts now live in up to `slots` rows; a transaction adds its changes to the slot its
/// transaction id picks (`txid_current() % slots`, so transactions running at the same time, whose ids are
/// close, use different rows), and readers sum a key's rows.
///
/// SQLite has one writer at a time and keeps one row per key (slot 0): it gets the `slot` column only,
/// so both schemas keep the same tables and columns (`berth admin migrate` copies them column by column).
/// A migration of its own, kept apart like `UploadChunkSchema` so that its number can change when branches
/// merge: `version` is the only place it is written.
public enum UsageSlotsSchema {
    public static let version = 16
    public static let name = "storage accounting spread over slots"

    /// Rows per key on PostgreSQL (and `storage_totals` ids 1 through `slots`).
    public static let slots = 64

    public static let sqlite = """
        ALTER TABLE repository_usage ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE account_usage ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
        """
}
