/// The SQLite metadata schema: every table and index the store uses, defined here and nowhere else.
///
/// Versions are append-only. Never edit a migration that a released Berth has applied: add the next
/// one (see docs/architecture.md, "Storage schema and migrations"), test it on the fixtures under
/// Tests/BerthStorageTests/Fixtures, and make the next fixture with the release being replaced.
extension SQLiteMetadataStore {
    /// Version 1, the baseline: the schema as the unversioned releases created it (registry, scans,
    /// IAM). Its text must stay exactly as they wrote it, since unversioned databases are adopted
    /// by comparing their `sqlite_master` with it.
    static let baselineSchema = """
        CREATE TABLE repositories(
            id INTEGER PRIMARY KEY, registry_id TEXT NOT NULL, name TEXT NOT NULL, created_at REAL NOT NULL,
            settings TEXT NOT NULL DEFAULT '{}', UNIQUE(registry_id, name));
        CREATE TABLE blobs(
            digest TEXT PRIMARY KEY, size INTEGER NOT NULL, created_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE repository_blobs(
            repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest TEXT NOT NULL, linked_at REAL NOT NULL,
            PRIMARY KEY(repo_id, digest)) WITHOUT ROWID;
        CREATE INDEX repository_blobs_digest ON repository_blobs(digest);
        CREATE TABLE manifests(
            repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest TEXT NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT, body BLOB NOT NULL,
            subject TEXT, annotations TEXT, pushed_at REAL NOT NULL, image_size INTEGER NOT NULL DEFAULT 0,
            last_pulled_at REAL,
            PRIMARY KEY(repo_id, digest)) WITHOUT ROWID;
        CREATE INDEX manifests_subject ON manifests(repo_id, subject) WHERE subject IS NOT NULL;
        CREATE TABLE manifest_references(
            repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            parent TEXT NOT NULL, child TEXT NOT NULL, is_manifest INTEGER NOT NULL,
            PRIMARY KEY(repo_id, parent, child)) WITHOUT ROWID;
        CREATE INDEX manifest_references_child ON manifest_references(child);
        CREATE TABLE tags(
            repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            tag TEXT NOT NULL, digest TEXT NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY(repo_id, tag)) WITHOUT ROWID;
        CREATE INDEX tags_digest ON tags(repo_id, digest);
        CREATE TABLE uploads(
            id TEXT PRIMARY KEY, repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            committed INTEGER NOT NULL, started_at REAL NOT NULL, updated_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE accounts(id TEXT PRIMARY KEY, created_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE access_keys(
            id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
            principal_arn TEXT NOT NULL, sealed_secret TEXT NOT NULL, status TEXT NOT NULL, created_at REAL NOT NULL) WITHOUT ROWID;
        CREATE INDEX access_keys_account ON access_keys(account_id);
        CREATE TABLE account_settings(
            account_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY(account_id, name)) WITHOUT ROWID;
        CREATE TABLE image_scans(
            repo_id INTEGER NOT NULL REFERENCES repositories(id) ON DELETE CASCADE,
            digest TEXT NOT NULL, state TEXT NOT NULL, description TEXT, trigger TEXT NOT NULL,
            requested_at REAL NOT NULL, started_at REAL, completed_at REAL, manual_requested_at REAL,
            source_updated_at REAL, findings BLOB,
            PRIMARY KEY(repo_id, digest)) WITHOUT ROWID;
        CREATE INDEX image_scans_unfinished ON image_scans(requested_at)
            WHERE state IN ('PENDING', 'IN_PROGRESS');
        CREATE TABLE iam_entities(
            kind TEXT NOT NULL, account_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, id TEXT NOT NULL,
            created_at REAL NOT NULL, assume_role_policy TEXT, max_session_duration INTEGER, description TEXT,
            PRIMARY KEY(kind, account_id, name)) WITHOUT ROWID;
        CREATE TABLE iam_inline_policies(
            kind TEXT NOT NULL, account_id TEXT NOT NULL, entity TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL,
            PRIMARY KEY(kind, account_id, entity, name)) WITHOUT ROWID;
        CREATE TABLE iam_managed_policies(
            arn TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, path TEXT NOT NULL, id TEXT NOT NULL,
            document TEXT NOT NULL, description TEXT, created_at REAL NOT NULL) WITHOUT ROWID;
        CREATE TABLE iam_attachments(
            kind TEXT NOT NULL, account_id TEXT NOT NULL, entity TEXT NOT NULL, arn TEXT NOT NULL,
            PRIMARY KEY(kind, account_id, entity, arn)) WITHOUT ROWID;
        CREATE INDEX iam_attachments_arn ON iam_attachments(arn);
        CREATE TABLE iam_group_members(
            account_id TEXT NOT NULL, group_name TEXT NOT NULL, user_name TEXT NOT NULL,
            PRIMARY KEY(account_id, group_name, user_name)) WITHOUT ROWID;
        CREATE INDEX iam_group_members_user ON iam_group_members(account_id, user_name);
        CREATE TABLE iam_oidc_providers(
            arn TEXT PRIMARY KEY, account_id TEXT NOT NULL, url TEXT NOT NULL, client_ids TEXT NOT NULL,
            thumbprints TEXT NOT NULL, created_at REAL NOT NULL) WITHOUT ROWID;
        """

    /// Every schema version, in order.
    public static let migrations: [SchemaMigration] = [
        SchemaMigration(version: 1, name: "baseline", sql: baselineSchema),
        SchemaMigration(version: 2, name: "kms keys, key material and aliases", sql: kmsSchema),
        SchemaMigration(version: 3, name: "image storage class and pull time update exclusions", sql: """
            ALTER TABLE manifests ADD COLUMN image_status TEXT NOT NULL DEFAULT 'ACTIVE';
            ALTER TABLE manifests ADD COLUMN last_archived_at REAL;
            ALTER TABLE manifests ADD COLUMN last_activated_at REAL;
            CREATE TABLE pull_time_exclusions(
                account_id TEXT NOT NULL, principal_arn TEXT NOT NULL, created_at REAL NOT NULL,
                PRIMARY KEY(account_id, principal_arn)) WITHOUT ROWID;
            """),
        SchemaMigration(version: 4, name: "garbage collection and storage accounting", sql: garbageCollectionSchema),
        SchemaMigration(version: 5, name: "blob usage keyed by digest first", sql: usageByDigestSchema),
        SchemaMigration(version: 6, name: "blob tombstones and lifecycle policy previews",
                        sql: blobTombstonesSchema + lifecyclePreviewsSchema),
        SchemaMigration(version: 7, name: "event outbox and deliveries", sql: eventOutboxSchema),
        SchemaMigration(version: 8, name: "pull through cache rules and secrets", sql: PullThroughDocument.schema),
        SchemaMigration(version: 9, name: "repository creation templates", sql: """
            CREATE TABLE repository_creation_templates(
                registry_id TEXT NOT NULL, prefix TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY(registry_id, prefix));
            """),
        // The replication queue: its number is `ReplicationQueueSchema.version` (kept apart so a merge can renumber it).
        SchemaMigration(version: ReplicationQueueSchema.version, name: ReplicationQueueSchema.name, sql: ReplicationQueueSchema.sqlite),
        // Download counts: `DownloadCountSchema.version`, kept apart for the same reason.
        SchemaMigration(version: DownloadCountSchema.version, name: DownloadCountSchema.name, sql: DownloadCountSchema.sqlite),
        SchemaMigration(version: UploadChunkSchema.version, name: UploadChunkSchema.name, sql: UploadChunkSchema.sqlite),
        SchemaMigration(version: UploadWriterSchema.version, name: UploadWriterSchema.name, sql: UploadWriterSchema.sqlite),
        SchemaMigration(version: ChangedImagesIndexSchema.version, name: ChangedImagesIndexSchema.name, sql: ChangedImagesIndexSchema.sql),
        SchemaMigration(version: EventOutboxIndexSchema.version, name: EventOutboxIndexSchema.name, sql: EventOutboxIndexSchema.sqlite),
        SchemaMigration(version: UsageSlotsSchema.version, name: UsageSlotsSchema.name, sql: UsageSlotsSchema.sqlite),
    ]

    /// KMS keys (issue #13): metadata, material versions (sealed under the master key) and aliases.
    static let kmsSchema = """
        CREATE TABLE kms_keys(
            key_id TEXT PRIMARY KEY, account_id TEXT NOT NULL, description TEXT NOT NULL, key_manager TEXT NOT NULL,
            state TEXT NOT NULL, created_at REAL NOT NULL, deletion_date REAL, pending_window_days INTEGER,
            policy TEXT NOT NULL, tags TEXT NOT NULL, rotation_enabled INTEGER NOT NULL, rotation_period_days INTEGER,
            next_rotation_at REAL, current_version INTEGER NOT NULL, on_demand_rotations INTEGER NOT NULL) WITHOUT ROWID;
        CREATE INDEX kms_keys_account ON kms_keys(account_id, key_id);
        CREATE TABLE kms_key_material(
            key_id TEXT NOT NULL, version INTEGER NOT NULL, material BLOB NOT NULL, created_at REAL NOT NULL,
            rotation_type TEXT, PRIMARY KEY(key_id, version)) WITHOUT ROWID;
        CREATE TABLE kms_aliases(
            account_id TEXT NOT NULL, name TEXT NOT NULL, key_id TEXT NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, PRIMARY KEY(account_id, name)) WITHOUT ROWID;
        CREATE INDEX kms_aliases_key ON kms_aliases(key_id);
        """
}
