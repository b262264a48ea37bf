import BerthStorage
import Foundation

/// The PostgreSQL metadata schema: the same versions as the SQLite schema (`SQLiteMetadataStore.migrations`),
/// same numbers, same names, each written in PostgreSQL's dialect. A schema change adds the next version to
/// both lists (docs/architecture.md, "Storage schema and migrations"); a test checks that they stay in step.
///
/// Dialect notes: text that is compared or ordered uses the domain `btext` (`TEXT COLLATE "C"`), so orders
/// and pagination are byte-wise as in SQLite whatever the database's locale; SQLite's `INTEGER`/`REAL`/`BLOB`
/// are `BIGINT`/`DOUBLE PRECISION`/`BYTEA`; triggers are PL/pgSQL functions; `ON CONFLICT … DO UPDATE`
/// qualifies the target's columns (PostgreSQL finds them ambiguous with `excluded`).
public struct PostgresSchemaMigration: Sendable {
    public let version: Int
    public let name: String
    public let sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }
}

extension PostgresMetadataStore {
    /// Every schema version, in order.
    public static let migrations: [PostgresSchemaMigration] = [
        PostgresSchemaMigration(version: 1, name: "baseline", sql: baselineSchema),
        PostgresSchemaMigration(version: 2, name: "kms keys, key material and aliases", sql: kmsSchema),
        PostgresSchemaMigration(version: 3, name: "image storage class and pull time update exclusions", sql: """
            ALTER TABLE manifests ADD COLUMN image_status btext NOT NULL DEFAULT 'ACTIVE';
            ALTER TABLE manifests ADD COLUMN last_archived_at DOUBLE PRECISION;
            ALTER TABLE manifests ADD COLUMN last_activated_at DOUBLE PRECISION;
            CREATE TABLE pull_time_exclusions(
                account_id btext NOT NULL, principal_arn btext NOT NULL, created_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY(account_id, principal_arn));
            """),
        PostgresSchemaMigration(version: 4, name: "garbage collection and storage accounting", sql: garbageCollectionSchema),
        // SQLite's version 5 rebuilds the two tables digest first to drop a B-tree per table; here the
        // primary key is a separate index anyway, so the digest-first key replaces the digest index.
        PostgresSchemaMigration(version: 5, name: "blob usage keyed by digest first", sql: """
            ALTER TABLE blob_usage DROP CONSTRAINT blob_usage_pkey, ADD PRIMARY KEY (digest, repo_id);
            DROP INDEX blob_usage_digest;
            ALTER TABLE account_blob_usage DROP CONSTRAINT account_blob_usage_pkey, ADD PRIMARY KEY (digest, account);
            DROP INDEX account_blob_usage_digest;
            """),
        // `blobs.doomed` holds a collection's claim token (a 64-bit random number) from this version on:
        // SQLite's INTEGER is 64-bit already, PostgreSQL's is widened.
        PostgresSchemaMigration(version: 6, name: "blob tombstones and lifecycle policy previews", sql: """
            ALTER TABLE blobs ALTER COLUMN doomed TYPE BIGINT;
            CREATE TABLE blob_tombstones(digest btext PRIMARY KEY, removed_at DOUBLE PRECISION NOT NULL);
            CREATE INDEX blob_tombstones_removed ON blob_tombstones(removed_at);
            """ + lifecyclePreviewsSchema),
        PostgresSchemaMigration(version: 7, name: "event outbox and deliveries", sql: eventOutboxSchema),
        PostgresSchemaMigration(version: 8, name: "pull through cache rules and secrets", sql: """
            CREATE TABLE pull_through_cache_rules(
                registry_id btext NOT NULL, prefix btext NOT NULL, document TEXT NOT NULL, PRIMARY KEY(registry_id, prefix));
            CREATE TABLE secrets(
                account_id btext NOT NULL, name btext NOT NULL, document TEXT NOT NULL, PRIMARY KEY(account_id, name));
            """),
        PostgresSchemaMigration(version: 9, name: "repository creation templates", sql: """
            CREATE TABLE repository_creation_templates(
                registry_id btext NOT NULL, prefix btext NOT NULL, document TEXT NOT NULL, PRIMARY KEY(registry_id, prefix));
            """),
        // The replication queue: its number is `ReplicationQueueSchema.version` (kept apart so a merge can renumber it).
        PostgresSchemaMigration(version: ReplicationQueueSchema.version, name: ReplicationQueueSchema.name, sql: replicationSchema),
        // Download counts: `DownloadCountSchema.version`, kept apart for the same reason.
        PostgresSchemaMigration(version: DownloadCountSchema.version, name: DownloadCountSchema.name, sql: downloadCountSchema),
        PostgresSchemaMigration(version: UploadChunkSchema.version, name: UploadChunkSchema.name, sql: UploadChunkSchema.postgres),
        PostgresSchemaMigration(version: UploadWriterSchema.version, name: UploadWriterSchema.name, sql: UploadWriterSchema.postgres),
        PostgresSchemaMigration(version: ChangedImagesIndexSchema.version, name: ChangedImagesIndexSchema.name, sql: ChangedImagesIndexSchema.sql),
        PostgresSchemaMigration(version: EventOutboxIndexSchema.version, name: EventOutboxIndexSchema.name, sql: EventOutboxIndexSchema.postgres),
        PostgresSchemaMigration(version: UsageSlotsSchema.version, name: UsageSlotsSchema.name, sql: usageSlotsSchema),
    ]

    /// Download counts (SQLite's `DownloadCountSchema.sqlite`), without SQLite's covering index: here the
    /// body lives out of line past 2 kB (TOAST) and the gallery's query reads a repository's figures in one
    /// scan of `manifests_pkey`; a covering index would serve index-only scans only until pulls dirty the
    /// pages (measured: 4,100 buffers for 1,000 repositories × 10 images right after VACUUM, 17,200 again
    /// once a third of the images were pulled, as without it) and would make every flush's UPDATE a non-HOT one.
    static let downloadCountSchema = """
        ALTER TABLE manifests ADD COLUMN download_count BIGINT NOT NULL DEFAULT 0;
        """

    /// The replication queue (SQLite's `ReplicationQueueSchema.sqlite`, in PostgreSQL's types).
    static let replicationSchema = """
        CREATE TABLE replication_jobs(
            id BIGSERIAL PRIMARY KEY, source_registry btext NOT NULL, repository btext NOT NULL, digest btext NOT NULL,
            destination_region btext NOT NULL, destination_registry btext NOT NULL, state btext NOT NULL,
            attempts BIGINT NOT NULL, generation BIGINT NOT NULL, enqueued_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL, failure_reason TEXT,
            UNIQUE(source_registry, repository, digest, destination_region, destination_registry));
        CREATE INDEX replication_jobs_due ON replication_jobs(next_attempt_at) WHERE state = 'IN_PROGRESS';
        """

    /// The transactional outbox of events (SQLite's `eventOutboxSchema`, in PostgreSQL's types).
    static let eventOutboxSchema = """
        CREATE TABLE event_outbox(
            seq BIGSERIAL PRIMARY KEY, event_id btext NOT NULL UNIQUE, created_at DOUBLE PRECISION NOT NULL,
            detail_type TEXT NOT NULL, account_id btext NOT NULL, body TEXT NOT NULL, routed INTEGER NOT NULL DEFAULT 0);
        CREATE INDEX event_outbox_unrouted ON event_outbox(seq) WHERE routed = 0;
        CREATE INDEX event_outbox_created ON event_outbox(created_at);
        CREATE TABLE event_deliveries(
            event_seq BIGINT NOT NULL REFERENCES event_outbox(seq) ON DELETE CASCADE, target btext NOT NULL,
            state btext NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at DOUBLE PRECISION NOT NULL,
            claimed_until DOUBLE PRECISION, last_attempt_at DOUBLE PRECISION, last_error TEXT, delivered_at DOUBLE PRECISION,
            PRIMARY KEY(event_seq, target));
        CREATE INDEX event_deliveries_due ON event_deliveries(next_attempt_at) WHERE state = 'pending';
        CREATE INDEX event_deliveries_state ON event_deliveries(state, event_seq);
        """

    static let baselineSchema = """
        CREATE DOMAIN btext AS TEXT COLLATE "C";
        CREATE TABLE repositories(
            id BIGSERIAL PRIMARY KEY, registry_id btext NOT NULL, name btext NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}', UNIQUE(registry_id, name));
        CREATE TABLE blobs(
            digest btext PRIMARY KEY, size BIGINT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        CREATE TABLE repository_blobs(
            repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest btext NOT NULL, linked_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY(repo_id, digest));
        CREATE INDEX repository_blobs_digest ON repository_blobs(digest);
        CREATE TABLE manifests(
            repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest btext NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT, body BYTEA NOT NULL,
            subject btext, annotations TEXT, pushed_at DOUBLE PRECISION NOT NULL, image_size BIGINT NOT NULL DEFAULT 0,
            last_pulled_at DOUBLE PRECISION,
            PRIMARY KEY(repo_id, digest));
        CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
        CREATE TABLE manifest_references(
            repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            parent btext NOT NULL, child btext NOT NULL, is_manifest INTEGER NOT NULL,
            PRIMARY KEY(repo_id, parent, child));
        CREATE INDEX manifest_references_child ON manifest_references(child);
        CREATE TABLE tags(
            repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            tag btext NOT NULL, digest btext NOT NULL, updated_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY(repo_id, tag));
        CREATE INDEX tags_digest ON tags(repo_id, digest);
        CREATE TABLE uploads(
            id btext PRIMARY KEY, repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            committed BIGINT NOT NULL, started_at DOUBLE PRECISION NOT NULL, updated_at DOUBLE PRECISION NOT NULL);
        CREATE INDEX uploads_updated ON uploads(updated_at);
        CREATE TABLE accounts(id btext PRIMARY KEY, created_at DOUBLE PRECISION NOT NULL);
        CREATE TABLE access_keys(
            id btext PRIMARY KEY, account_id btext NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            principal_arn btext NOT NULL, sealed_secret TEXT NOT NULL, status TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        CREATE INDEX access_keys_account ON access_keys(account_id);
        CREATE TABLE account_settings(
            account_id btext NOT NULL, name btext NOT NULL, value TEXT NOT NULL, PRIMARY KEY(account_id, name));
        CREATE TABLE image_scans(
            repo_id BIGINT NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest btext NOT NULL, state TEXT NOT NULL, description TEXT, trigger TEXT NOT NULL,
            requested_at DOUBLE PRECISION NOT NULL, started_at DOUBLE PRECISION, completed_at DOUBLE PRECISION,
            manual_requested_at DOUBLE PRECISION, source_updated_at DOUBLE PRECISION, findings BYTEA,
            PRIMARY KEY(repo_id, digest));
        CREATE INDEX image_scans_unfinished ON image_scans(requested_at)
            WHERE state IN ('PENDING', 'IN_PROGRESS');
        CREATE TABLE iam_entities(
            kind btext NOT NULL, account_id btext NOT NULL, name btext NOT NULL, path TEXT NOT NULL, id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL, assume_role_policy TEXT, max_session_duration BIGINT, description TEXT,
            PRIMARY KEY(kind, account_id, name));
        CREATE TABLE iam_inline_policies(
            kind btext NOT NULL, account_id btext NOT NULL, entity btext NOT NULL, name btext NOT NULL, document TEXT NOT NULL,
            PRIMARY KEY(kind, account_id, entity, name));
        CREATE TABLE iam_managed_policies(
            arn btext PRIMARY KEY, account_id btext NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, id TEXT NOT NULL,
            document TEXT NOT NULL, description TEXT, created_at DOUBLE PRECISION NOT NULL);
        CREATE INDEX iam_managed_policies_account ON iam_managed_policies(account_id, arn);
        CREATE TABLE iam_attachments(
            kind btext NOT NULL, account_id btext NOT NULL, entity btext NOT NULL, arn btext NOT NULL,
            PRIMARY KEY(kind, account_id, entity, arn));
        CREATE INDEX iam_attachments_arn ON iam_attachments(arn);
        CREATE TABLE iam_group_members(
            account_id btext NOT NULL, group_name btext NOT NULL, user_name btext NOT NULL,
            PRIMARY KEY(account_id, group_name, user_name));
        CREATE INDEX iam_group_members_user ON iam_group_members(account_id, user_name);
        CREATE TABLE iam_oidc_providers(
            arn btext PRIMARY KEY, account_id btext NOT NULL, url TEXT NOT NULL, client_ids TEXT NOT NULL,
            thumbprints TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        """

    static let kmsSchema = """
        CREATE TABLE kms_keys(
            key_id btext PRIMARY KEY, account_id btext NOT NULL, description TEXT NOT NULL, key_manager TEXT NOT NULL,
            state TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, deletion_date DOUBLE PRECISION, pending_window_days BIGINT,
            policy TEXT NOT NULL, tags TEXT NOT NULL, rotation_enabled INTEGER NOT NULL, rotation_period_days BIGINT,
            next_rotation_at DOUBLE PRECISION, current_version BIGINT NOT NULL, on_demand_rotations BIGINT NOT NULL);
        CREATE INDEX kms_keys_account ON kms_keys(account_id, key_id);
        CREATE TABLE kms_key_material(
            key_id btext NOT NULL, version BIGINT NOT NULL, material BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            rotation_type TEXT, PRIMARY KEY(key_id, version));
        CREATE TABLE kms_aliases(
            account_id btext NOT NULL, name btext NOT NULL, key_id btext NOT NULL, created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL, PRIMARY KEY(account_id, name));
        CREATE INDEX kms_aliases_key ON kms_aliases(key_id);
        """

    static let accountOf = "CASE WHEN registry_id LIKE 'public:%' THEN substr(registry_id, 8) ELSE registry_id END"
    static let accountOfRepository = "(SELECT \(accountOf) FROM repositories WHERE id = NEW.repo_id)"

    /// A row trigger running `body` (PL/pgSQL statements) after `event`.
    static func trigger(_ name: String, _ event: String, when: String? = nil, _ body: String) -> String {
        """
        CREATE FUNCTION \(name)() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
        \(body)
        RETURN NULL;
        END $$;
        CREATE TRIGGER \(name) AFTER \(event) FOR EACH ROW\(when.map { " WHEN (\($0))" } ?? "") EXECUTE FUNCTION \(name)();
        """
    }

    /// The unique/shared bytes triggers of one sharing level (the same rules as SQLite's `sharingTriggers`).
    static func sharingTriggers(name: String, usage: String, key: String, counter: String, totals: String,
                                extra: [(column: String, value: String)], onAddBlob: String, afterAdd: String,
                                afterDrop: String) -> String {
        let columns = ([key] + extra.map(\.column) + ["unique_bytes", "shared_bytes"]).joined(separator: ", ")
        let values = (["NEW.\(key)"] + extra.map(\.value)).joined(separator: ", ")
        return trigger("gc_\(name)_uses_blob", "INSERT ON \(usage)", """
            UPDATE \(totals) SET
                unique_bytes = unique_bytes - (SELECT size FROM blobs WHERE digest = NEW.digest),
                shared_bytes = shared_bytes + (SELECT size FROM blobs WHERE digest = NEW.digest)
            WHERE (SELECT \(counter) FROM blobs WHERE digest = NEW.digest) = 1
              AND \(key) = (SELECT u.\(key) FROM \(usage) u WHERE u.digest = NEW.digest AND u.\(key) <> NEW.\(key) LIMIT 1);
            INSERT INTO \(totals)(\(columns))
                SELECT \(values), CASE WHEN b.\(counter) = 0 THEN b.size ELSE 0 END,
                       CASE WHEN b.\(counter) > 0 THEN b.size ELSE 0 END
                FROM blobs b WHERE b.digest = NEW.digest
                ON CONFLICT(\(key)) DO UPDATE SET unique_bytes = \(totals).unique_bytes + excluded.unique_bytes,
                                                  shared_bytes = \(totals).shared_bytes + excluded.shared_bytes;
            UPDATE blobs SET \(counter) = \(counter) + 1\(onAddBlob) WHERE digest = NEW.digest;
            \(afterAdd)
            """) + "\n" + trigger("gc_\(name)_drops_blob", "DELETE ON \(usage)", """
            UPDATE \(totals) SET
                unique_bytes = unique_bytes - CASE WHEN b.\(counter) = 1 THEN b.size ELSE 0 END,
                shared_bytes = shared_bytes - CASE WHEN b.\(counter) > 1 THEN b.size ELSE 0 END
            FROM (SELECT \(counter), size FROM blobs WHERE digest = OLD.digest) AS b
            WHERE \(totals).\(key) = OLD.\(key);
            UPDATE \(totals) SET unique_bytes = unique_bytes + b.size, shared_bytes = shared_bytes - b.size
            FROM (SELECT \(counter), size FROM blobs WHERE digest = OLD.digest) AS b
            WHERE b.\(counter) = 2 AND \(totals).\(key) = (SELECT u.\(key) FROM \(usage) u WHERE u.digest = OLD.digest LIMIT 1);
            UPDATE blobs SET \(counter) = \(counter) - 1 WHERE digest = OLD.digest;
            \(afterDrop)
            """)
    }

    static let garbageCollectionSchema = """
        ALTER TABLE blobs ADD COLUMN repos BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE blobs ADD COLUMN accounts BIGINT NOT NULL DEFAULT 0;
        ALTER TABLE blobs ADD COLUMN candidate_since DOUBLE PRECISION;
        ALTER TABLE blobs ADD COLUMN doomed INTEGER NOT NULL DEFAULT 0;
        CREATE INDEX blobs_unreferenced ON blobs(candidate_since) WHERE repos = 0;
        CREATE TABLE blob_usage(
            repo_id BIGINT NOT NULL, digest btext NOT NULL, account btext NOT NULL, refs BIGINT NOT NULL,
            PRIMARY KEY(repo_id, digest));
        CREATE INDEX blob_usage_digest ON blob_usage(digest);
        CREATE TABLE account_blob_usage(
            account btext NOT NULL, digest btext NOT NULL, repos BIGINT NOT NULL,
            PRIMARY KEY(account, digest));
        CREATE INDEX account_blob_usage_digest ON account_blob_usage(digest);
        CREATE TABLE repository_usage(
            repo_id BIGINT PRIMARY KEY, account btext NOT NULL, images BIGINT NOT NULL DEFAULT 0,
            stored_bytes BIGINT NOT NULL DEFAULT 0, unique_bytes BIGINT NOT NULL DEFAULT 0,
            shared_bytes BIGINT NOT NULL DEFAULT 0);
        CREATE TABLE account_usage(
            account btext PRIMARY KEY, images BIGINT NOT NULL DEFAULT 0, stored_bytes BIGINT NOT NULL DEFAULT 0,
            unique_bytes BIGINT NOT NULL DEFAULT 0, shared_bytes BIGINT NOT NULL DEFAULT 0);
        CREATE TABLE storage_totals(
            id INTEGER PRIMARY KEY CHECK(id = 1), blobs BIGINT NOT NULL, bytes BIGINT NOT NULL,
            unreferenced_blobs BIGINT NOT NULL, unreferenced_bytes BIGINT NOT NULL);

        \(trigger("gc_reference_added", "INSERT ON manifest_references", when: "NEW.is_manifest = 0", """
            INSERT INTO blob_usage(repo_id, digest, account, refs)
                VALUES(NEW.repo_id, NEW.child, \(accountOfRepository), 1)
                ON CONFLICT(repo_id, digest) DO UPDATE SET refs = blob_usage.refs + 1;
            """))
        \(trigger("gc_reference_removed", "DELETE ON manifest_references", when: "OLD.is_manifest = 0", """
            UPDATE blob_usage SET refs = refs - 1 WHERE repo_id = OLD.repo_id AND digest = OLD.child;
            DELETE FROM blob_usage WHERE repo_id = OLD.repo_id AND digest = OLD.child AND refs <= 0;
            """))

        \(sharingTriggers(name: "repository", usage: "blob_usage", key: "repo_id", counter: "repos", totals: "repository_usage",
                          extra: [("account", "NEW.account")], onAddBlob: ", candidate_since = NULL",
                          afterAdd: """
                              INSERT INTO account_blob_usage(account, digest, repos) VALUES(NEW.account, NEW.digest, 1)
                                  ON CONFLICT(account, digest) DO UPDATE SET repos = account_blob_usage.repos + 1;
                              """,
                          afterDrop: """
                              DELETE FROM repository_usage WHERE repo_id = OLD.repo_id
                                  AND images = 0 AND stored_bytes = 0 AND unique_bytes = 0 AND shared_bytes = 0;
                              UPDATE account_blob_usage SET repos = repos - 1 WHERE account = OLD.account AND digest = OLD.digest;
                              DELETE FROM account_blob_usage WHERE account = OLD.account AND digest = OLD.digest AND repos <= 0;
                              """))
        \(sharingTriggers(name: "account", usage: "account_blob_usage", key: "account", counter: "accounts", totals: "account_usage",
                          extra: [], onAddBlob: "", afterAdd: "", afterDrop: ""))

        \(trigger("gc_image_added", "INSERT ON manifests", """
            INSERT INTO repository_usage(repo_id, account, images, stored_bytes)
                VALUES(NEW.repo_id, \(accountOfRepository), 1, NEW.image_size)
                ON CONFLICT(repo_id) DO UPDATE SET images = repository_usage.images + 1,
                    stored_bytes = repository_usage.stored_bytes + excluded.stored_bytes;
            INSERT INTO account_usage(account, images, stored_bytes)
                VALUES(\(accountOfRepository), 1, NEW.image_size)
                ON CONFLICT(account) DO UPDATE SET images = account_usage.images + 1,
                    stored_bytes = account_usage.stored_bytes + excluded.stored_bytes;
            """))
        \(trigger("gc_image_removed", "DELETE ON manifests", """
            UPDATE account_usage SET images = images - 1, stored_bytes = stored_bytes - OLD.image_size
            WHERE account = (SELECT u.account FROM repository_usage u WHERE u.repo_id = OLD.repo_id);
            UPDATE repository_usage SET images = images - 1, stored_bytes = stored_bytes - OLD.image_size
            WHERE repo_id = OLD.repo_id;
            DELETE FROM repository_usage WHERE repo_id = OLD.repo_id
                AND images = 0 AND stored_bytes = 0 AND unique_bytes = 0 AND shared_bytes = 0;
            """))

        \(trigger("gc_blob_added", "INSERT ON blobs", """
            UPDATE storage_totals SET blobs = blobs + 1, bytes = bytes + NEW.size,
                unreferenced_blobs = unreferenced_blobs + (NEW.repos = 0)::int,
                unreferenced_bytes = unreferenced_bytes + CASE WHEN NEW.repos = 0 THEN NEW.size ELSE 0 END;
            """))
        \(trigger("gc_blob_removed", "DELETE ON blobs", """
            UPDATE storage_totals SET blobs = blobs - 1, bytes = bytes - OLD.size,
                unreferenced_blobs = unreferenced_blobs - (OLD.repos = 0)::int,
                unreferenced_bytes = unreferenced_bytes - CASE WHEN OLD.repos = 0 THEN OLD.size ELSE 0 END;
            """))
        \(trigger("gc_blob_referenced", "UPDATE OF repos ON blobs", when: "(OLD.repos = 0) <> (NEW.repos = 0)", """
            UPDATE storage_totals SET
                unreferenced_blobs = unreferenced_blobs + CASE WHEN NEW.repos = 0 THEN 1 ELSE -1 END,
                unreferenced_bytes = unreferenced_bytes + CASE WHEN NEW.repos = 0 THEN NEW.size ELSE -NEW.size END;
            """))

        INSERT INTO storage_totals(id, blobs, bytes, unreferenced_blobs, unreferenced_bytes)
            SELECT 1, count(*), coalesce(sum(size), 0), count(*), coalesce(sum(size), 0) FROM blobs;
        INSERT INTO repository_usage(repo_id, account, images, stored_bytes)
            SELECT m.repo_id, min(\(accountOf)), count(*), sum(m.image_size)
            FROM manifests m JOIN repositories r ON r.id = m.repo_id GROUP BY m.repo_id;
        INSERT INTO account_usage(account, images, stored_bytes)
            SELECT account, sum(images), sum(stored_bytes) FROM repository_usage GROUP BY account;
        INSERT INTO blob_usage(repo_id, digest, account, refs)
            SELECT x.repo_id, x.child, min(\(accountOf)), count(*)
            FROM manifest_references x JOIN repositories r ON r.id = x.repo_id JOIN blobs b ON b.digest = x.child
            WHERE x.is_manifest = 0 GROUP BY x.repo_id, x.child;
        """
}

/// The database was written by a newer Berth: this binary refuses it rather than write to a schema it does not know.
public struct PostgresSchemaTooNewError: Error, CustomStringConvertible, Sendable {
    public let found: Int
    public let supported: Int

    public var description: String {
        "the PostgreSQL database has metadata schema version \(found), but this berth knows versions up to \(supported): "
            + "it was written by a newer Berth; run that release or a later one (the database was not changed)"
    }
}

/// Applies `PostgresSchemaMigration`s in order and records each in `schema_migrations` (version, name,
/// applied_at), as `SchemaMigrator` does for SQLite: one transaction per version, so a failing one leaves
/// the database at the previous version. Nodes starting together take a transaction-scoped advisory lock
/// (per schema) before reading the version, so each version is applied once: the others wait, then see it recorded.
public enum PostgresSchemaMigrator {
    static let bookkeeping = """
        CREATE TABLE IF NOT EXISTS schema_migrations(
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)
        """

    /// The lock every migrating transaction takes first (one key per schema, so databases and schemas do not wait on each other).
    static let lock = "SELECT pg_advisory_xact_lock(hashtext('berth schema migrations ' || current_schema()))"

    static func recordedVersion(_ c: PGConnection) async throws -> Int {
        // A scan of pg_class, not `to_regclass`: the catalog cache of a transaction that waited for the lock
        // may still say "no such table" after another node created it.
        guard try await c.exists("""
            SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_migrations'
            """, []) else { return 0 }
        return try await c.count("SELECT coalesce(max(version), 0)::bigint FROM schema_migrations", [])
    }

    /// The recorded migrations, oldest first.
    static func history(_ c: PGConnection) async throws -> [(version: Int, name: String, appliedAt: Double)] {
        guard try await recordedVersion(c) > 0 else { return [] }
        return try await c.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version") {
            (version: Int(try $0.int(0)), name: try $0.text(1), appliedAt: try $0.double(2))
        }
    }

    /// Brings the database to the last version of `migrations`; returns the versions applied (empty when it was current).
    @discardableResult
    static func migrate(_ c: PGConnection, migrations: [PostgresSchemaMigration],
                        now: () -> Double = { Date().timeIntervalSince1970 }) async throws -> [Int] {
        precondition(migrations.enumerated().allSatisfy { $0.offset + 1 == $0.element.version },
                     "schema migrations must be numbered 1, 2, 3, … in order")
        let latest = migrations.last?.version ?? 0
        // Quick path, no lock: already current (every start after the first).
        let seen = try await recordedVersion(c)
        if seen > latest { throw PostgresSchemaTooNewError(found: seen, supported: latest) }
        if seen == latest { return [] }
        var applied: [Int] = []
        for m in migrations where m.version > seen {
            try await c.script("BEGIN")
            do {
                try await c.script(lock)
                let current = try await recordedVersion(c)
                if current > latest { throw PostgresSchemaTooNewError(found: current, supported: latest) }
                if current < m.version {  // else another node applied it while we waited for the lock
                    try await c.script(m.sql)
                    try await c.script(bookkeeping)
                    try await c.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)",
                                        [.integer(Int64(m.version)), .text(m.name), .real(now())])
                    applied.append(m.version)
                }
                try await c.script("COMMIT")
            } catch {
                _ = try? await c.script("ROLLBACK")
                throw error
            }
        }
        return applied
    }
}

extension PostgresMetadataStore {
    /// The recorded schema versions, oldest first.
    public func schemaHistory() async throws -> [(version: Int, name: String, appliedAt: Double)] {
        try await read { c in try await PostgresSchemaMigrator.history(c) }
    }
}
