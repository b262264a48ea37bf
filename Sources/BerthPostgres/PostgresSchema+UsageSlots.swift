import BerthStorage

/// `UsageSlotsSchema` in PostgreSQL's dialect: each key's storage counts in up to `UsageSlotsSchema.slots`
/// rows, the trigger functions of the GC schema rewritten to add their changes to the row of the running
/// transaction's slot (an upsert; a row whose counts all come back to zero is removed, as the single row
/// was), and the readers summing a key's rows (`PostgresMetadataStore.storageUsage`).
///
/// The rules are the GC schema's (`garbageCollectionSchema`), unchanged: only where each change is written
/// moves. Two further changes keep concurrent pushes from failing each other's transactions:
/// - the sharing trigger reads a blob's other user (an index scan of `blob_usage` by digest) only when the
///   blob has exactly one, where the old one scanned for every new blob; a scan that finds nothing locks
///   the index page where the key would be, and every new blob of other pushes landing on that page then
///   counts as a conflict;
/// - slot rows are written with `INSERT … ON CONFLICT DO UPDATE`, which takes no such read lock.
extension PostgresMetadataStore {
    static let usageSlotsSchema: String = {
        let slot = "(txid_current() % \(UsageSlotsSchema.slots))::integer"
        /// A trigger function (replacing the GC schema's) with `s`, the transaction's slot, and the variables it names.
        func function(_ name: String, variables: String = "", _ body: String) -> String {
            """
            CREATE OR REPLACE FUNCTION \(name)() RETURNS trigger LANGUAGE plpgsql AS $$
            DECLARE s integer := \(slot);\(variables)
            BEGIN
            \(body)
            RETURN NULL;
            END $$;
            """
        }
        /// Adds to the storage totals of slot `s` (row id `s + 1`; id 1 holds the totals from before).
        func totals(blobs: String, bytes: String, unreferencedBlobs: String, unreferencedBytes: String) -> String {
            """
            INSERT INTO storage_totals(id, blobs, bytes, unreferenced_blobs, unreferenced_bytes)
                VALUES(s + 1, \(blobs), \(bytes), \(unreferencedBlobs), \(unreferencedBytes))
                ON CONFLICT(id) DO UPDATE SET blobs = storage_totals.blobs + excluded.blobs,
                    bytes = storage_totals.bytes + excluded.bytes,
                    unreferenced_blobs = storage_totals.unreferenced_blobs + excluded.unreferenced_blobs,
                    unreferenced_bytes = storage_totals.unreferenced_bytes + excluded.unreferenced_bytes;
            """
        }
        /// Adds `columns` (name, value) to the slot-`s` row of a usage table keyed by `key` (plus `extra`, set on insert).
        func usage(_ table: String, key: (column: String, value: String), extra: [(column: String, value: String)] = [],
                   _ columns: [(column: String, value: String)], from source: String? = nil) -> String {
            let names = ([key.column, "slot"] + extra.map(\.column) + columns.map(\.column)).joined(separator: ", ")
            let values = ([key.value, "s"] + extra.map(\.value) + columns.map(\.value)).joined(separator: ", ")
            let adds = columns.map { "\($0.column) = \(table).\($0.column) + excluded.\($0.column)" }.joined(separator: ", ")
            let rows = source.map { "SELECT \(values) FROM \($0)" } ?? "VALUES(\(values))"
            return "INSERT INTO \(table)(\(names)) \(rows) ON CONFLICT(\(key.column), slot) DO UPDATE SET \(adds);"
        }
        let allZero = "images = 0 AND stored_bytes = 0 AND unique_bytes = 0 AND shared_bytes = 0"

        func usageRow(_ totals: String, key: String, extra: [String], prefix: String, unique: String, shared: String,
                      from source: String? = nil) -> String {
            usage(totals, key: (key, "\(prefix).\(key)"), extra: extra.map { ($0, "\(prefix).\($0)") },
                  [("unique_bytes", unique), ("shared_bytes", shared)], from: source)
        }
        /// The sharing triggers of one level (as `sharingTriggers`): `key` names the level's key column in both
        /// the usage table and the totals table; `extra` the totals' other columns, copied from the usage row.
        func sharing(name: String, usage: String, key: String, counter: String, totals: String, extra: [String],
                     onAddBlob: String, afterAdd: String, afterDrop: String) -> String {
            let variables = "\nb_size bigint; b_count bigint;"
            let uses = function("gc_\(name)_uses_blob", variables: variables, """
                SELECT size, \(counter) INTO b_size, b_count FROM blobs WHERE digest = NEW.digest;
                IF b_size IS NOT NULL THEN
                    -- The one other user's bytes were unique to it: now they are shared.
                    IF b_count = 1 THEN
                        \(usageRow(totals, key: key, extra: extra, prefix: "u", unique: "-b_size", shared: "b_size",
                                   from: "\(usage) u WHERE u.digest = NEW.digest AND u.\(key) <> NEW.\(key) LIMIT 1"))
                    END IF;
                    \(usageRow(totals, key: key, extra: extra, prefix: "NEW",
                               unique: "CASE WHEN b_count = 0 THEN b_size ELSE 0 END",
                               shared: "CASE WHEN b_count > 0 THEN b_size ELSE 0 END"))
                END IF;
                UPDATE blobs SET \(counter) = \(counter) + 1\(onAddBlob) WHERE digest = NEW.digest;
                \(afterAdd)
                """)
            let drops = function("gc_\(name)_drops_blob", variables: variables, """
                SELECT size, \(counter) INTO b_size, b_count FROM blobs WHERE digest = OLD.digest;
                IF b_size IS NOT NULL THEN
                    \(usageRow(totals, key: key, extra: extra, prefix: "OLD",
                               unique: "-CASE WHEN b_count = 1 THEN b_size ELSE 0 END",
                               shared: "-CASE WHEN b_count > 1 THEN b_size ELSE 0 END"))
                    -- One user is left: the bytes are unique to it again.
                    IF b_count = 2 THEN
                        \(usageRow(totals, key: key, extra: extra, prefix: "u", unique: "b_size", shared: "-b_size",
                                   from: "\(usage) u WHERE u.digest = OLD.digest LIMIT 1"))
                    END IF;
                END IF;
                UPDATE blobs SET \(counter) = \(counter) - 1 WHERE digest = OLD.digest;
                \(afterDrop)
                """)
            return uses + "\n" + drops
        }
        let account = "(SELECT \(accountOf) FROM repositories WHERE id = NEW.repo_id)"
        let images = { (n: String, size: String) in [("images", n), ("stored_bytes", size)] }
        return """
            ALTER TABLE storage_totals DROP CONSTRAINT storage_totals_id_check;
            ALTER TABLE repository_usage ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE repository_usage DROP CONSTRAINT repository_usage_pkey, ADD PRIMARY KEY (repo_id, slot);
            ALTER TABLE account_usage ADD COLUMN slot INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE account_usage DROP CONSTRAINT account_usage_pkey, ADD PRIMARY KEY (account, slot);

            \(sharing(name: "repository", usage: "blob_usage", key: "repo_id", counter: "repos", totals: "repository_usage",
                      extra: ["account"], onAddBlob: ", candidate_since = NULL",
                      afterAdd: """
                          INSERT INTO account_blob_usage(account, digest, repos) VALUES(NEW.account, NEW.digest, 1)
                              ON CONFLICT(account, digest) DO UPDATE SET repos = account_blob_usage.repos + 1;
                          """,
                      afterDrop: """
                          DELETE FROM repository_usage WHERE repo_id = OLD.repo_id AND slot = s AND \(allZero);
                          UPDATE account_blob_usage SET repos = repos - 1 WHERE account = OLD.account AND digest = OLD.digest;
                          DELETE FROM account_blob_usage WHERE account = OLD.account AND digest = OLD.digest AND repos <= 0;
                          """))
            \(sharing(name: "account", usage: "account_blob_usage", key: "account", counter: "accounts", totals: "account_usage",
                      extra: [], onAddBlob: "", afterAdd: "", afterDrop: ""))

            \(function("gc_image_added", """
                \(usage("repository_usage", key: ("repo_id", "NEW.repo_id"), extra: [("account", account)], images("1", "NEW.image_size")))
                \(usage("account_usage", key: ("account", account), images("1", "NEW.image_size")))
                """))
            \(function("gc_image_removed", variables: "\na btext;", """
                SELECT u.account INTO a FROM repository_usage u WHERE u.repo_id = OLD.repo_id LIMIT 1;
                IF a IS NOT NULL THEN
                    \(usage("account_usage", key: ("account", "a"), images("-1", "-OLD.image_size")))
                    \(usage("repository_usage", key: ("repo_id", "OLD.repo_id"), extra: [("account", "a")], images("-1", "-OLD.image_size")))
                    DELETE FROM repository_usage WHERE repo_id = OLD.repo_id AND slot = s AND \(allZero);
                END IF;
                """))

            \(function("gc_blob_added", totals(blobs: "1", bytes: "NEW.size", unreferencedBlobs: "(NEW.repos = 0)::int",
                                               unreferencedBytes: "CASE WHEN NEW.repos = 0 THEN NEW.size ELSE 0 END")))
            \(function("gc_blob_removed", totals(blobs: "-1", bytes: "-OLD.size", unreferencedBlobs: "-(OLD.repos = 0)::int",
                                                 unreferencedBytes: "-CASE WHEN OLD.repos = 0 THEN OLD.size ELSE 0 END")))
            \(function("gc_blob_referenced", totals(blobs: "0", bytes: "0",
                                                    unreferencedBlobs: "CASE WHEN NEW.repos = 0 THEN 1 ELSE -1 END",
                                                    unreferencedBytes: "CASE WHEN NEW.repos = 0 THEN NEW.size ELSE -NEW.size END")))
            """
    }()
}
