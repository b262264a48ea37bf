/// The statements of the hot paths — every push's and pull's — as named prepared statements (`PreparedSQL`):
/// PostgreSQL parses and plans each once per pooled connection instead of on every run. Measured on the
/// manifest GET by tag (docs/s3.md): the parse and plan were most of the server's work per request.
/// Statements run for their effect end in `RETURNING 1`: `PGConnection.execute` counts the rows.
enum HotSQL {
    enum RepositoryID: PreparedSQL {
        static let sql = "SELECT id FROM repositories WHERE registry_id = $1 AND name = $2"
    }

    // recordBlob
    enum DigestLock: PreparedSQL {
        static let sql = "SELECT pg_advisory_xact_lock(hashtext($1))"
    }
    enum BlobState: PreparedSQL {
        static let sql = "SELECT doomed <> 0, candidate_since IS NOT NULL FROM blobs WHERE digest = $1"
    }
    enum TombstoneExists: PreparedSQL {
        static let sql = "SELECT 1 FROM blob_tombstones WHERE digest = $1"
    }
    enum InsertBlob: PreparedSQL {
        static let sql = "INSERT INTO blobs(digest, size, created_at) VALUES($1, $2, $3) RETURNING 1"
    }
    enum LinkBlob: PreparedSQL {
        static let sql = "INSERT INTO repository_blobs(repo_id, digest, linked_at) VALUES($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1"
    }

    // uploads
    enum CreateUpload: PreparedSQL {
        static let sql = """
            INSERT INTO uploads(id, repo_id, committed, started_at, updated_at)
            SELECT $1, id, $2, $3, $4 FROM repositories WHERE registry_id = $5 AND name = $6 RETURNING 1
            """
    }
    enum Upload: PreparedSQL {
        static let sql = "SELECT \(PostgresMetadataStore.uploadColumns) FROM uploads u JOIN repositories r ON r.id = u.repo_id WHERE u.id = $1"
    }
    enum ClaimUpload: PreparedSQL {
        static let sql = """
            UPDATE uploads SET writer = $1, writing_since = $2
            WHERE id = $3 AND committed = $4 AND (writer IS NULL OR writer = $5 OR writing_since < $6) RETURNING 1
            """
    }
    enum AdvanceUpload: PreparedSQL {
        static let sql = """
            UPDATE uploads SET committed = $1, updated_at = $2, last_chunk = $3,
                smallest_inner_chunk = CASE WHEN last_chunk IS NULL THEN smallest_inner_chunk
                                            ELSE LEAST(smallest_inner_chunk, last_chunk) END,
                writer = NULL, writing_since = NULL
            WHERE id = $4 AND committed = $5 AND writer IS NOT DISTINCT FROM $6 RETURNING 1
            """
    }
    enum DeleteUpload: PreparedSQL {
        static let sql = "DELETE FROM uploads WHERE id = $1 RETURNING 1"
    }

    // putManifest
    enum InsertTag: PreparedSQL {
        static let sql = "INSERT INTO tags(repo_id, tag, digest, updated_at) VALUES($1, $2, $3, $4) ON CONFLICT(repo_id, tag) DO NOTHING RETURNING 1"
    }
    enum TagDigest: PreparedSQL {
        static let sql = "SELECT digest FROM tags WHERE repo_id = $1 AND tag = $2"
    }
    enum MoveTag: PreparedSQL {
        static let sql = """
            INSERT INTO tags(repo_id, tag, digest, updated_at) VALUES($1, $2, $3, $4)
            ON CONFLICT(repo_id, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at RETURNING 1
            """
    }
    enum UnlinkedBlobs: PreparedSQL {
        static let sql = """
            SELECT d FROM unnest($1::text[]) WITH ORDINALITY AS x(d, n) WHERE \(PostgresMetadataStore.unlinked) ORDER BY n
            """
    }
    enum AbsentManifests: PreparedSQL {
        static let sql = """
            SELECT d FROM unnest($1::text[]) WITH ORDINALITY AS x(d, n) WHERE \(PostgresMetadataStore.absentManifest) ORDER BY n
            """
    }
    enum InsertManifest: PreparedSQL {
        static let sql = """
            INSERT INTO manifests(repo_id, digest, media_type, artifact_type, body, subject, annotations, pushed_at, image_size)
            VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING 1
            """
    }
    enum InsertReferences: PreparedSQL {
        static let sql = """
            INSERT INTO manifest_references(repo_id, parent, child, is_manifest)
            SELECT DISTINCT $1::bigint, $2::text, child, $4::int FROM unnest($3::text[]) AS child ON CONFLICT DO NOTHING RETURNING 1
            """
    }

    // reads
    enum TaggedManifestState: PreparedSQL {
        static let sql = """
            SELECT m.digest, m.image_status, m.pushed_at FROM repositories r
            JOIN tags t ON t.repo_id = r.id AND t.tag = $1 JOIN manifests m ON m.repo_id = r.id AND m.digest = t.digest
            WHERE r.registry_id = $2 AND r.name = $3
            """
    }
    enum ManifestStateByDigest: PreparedSQL {
        static let sql = """
            SELECT m.image_status, m.pushed_at FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.digest = $1
            WHERE r.registry_id = $2 AND r.name = $3
            """
    }
    enum AccountSetting: PreparedSQL {
        static let sql = "SELECT value FROM account_settings WHERE account_id = $1 AND name = $2"
    }
    enum TryLease: PreparedSQL {
        static let sql = "SELECT pg_try_advisory_lock(\(PostgresMetadataStore.leaseClass), hashtext(current_schema() || ' ' || $1))"
    }
    enum EndLease: PreparedSQL {
        static let sql = "SELECT pg_advisory_unlock(\(PostgresMetadataStore.leaseClass), hashtext(current_schema() || ' ' || $1))"
    }
}
