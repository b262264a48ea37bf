import BerthCore
import BerthStorage

/// Lifecycle policy previews on PostgreSQL (`SQLiteMetadataStore+LifecyclePreviews.swift`, same rows).
extension PostgresMetadataStore {
    /// One row per repository (`ON DELETE CASCADE` removes it with the repository).
    static let lifecyclePreviewsSchema = """
        CREATE TABLE lifecycle_previews(
            repo_id BIGINT PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
            policy_text TEXT NOT NULL, results BYTEA NOT NULL, created_at DOUBLE PRECISION NOT NULL);
        CREATE INDEX lifecycle_previews_created ON lifecycle_previews(created_at);
        """

    public func putLifecyclePreview(_ preview: StoredLifecyclePreview, for repository: RepositoryKey,
                                    expiredBefore: Double) async throws {
        try await transaction { c in
            let id = try await Self.requireRepo(c, repository)
            try await c.execute("DELETE FROM lifecycle_previews WHERE created_at < ?", [.real(expiredBefore)])
            try await c.execute("""
                INSERT INTO lifecycle_previews(repo_id, policy_text, results, created_at) VALUES(?, ?, ?, ?)
                ON CONFLICT (repo_id) DO UPDATE SET policy_text = excluded.policy_text, results = excluded.results,
                    created_at = excluded.created_at
                """, [.integer(id), .text(preview.policyText), .blob(preview.results), .real(preview.createdAt)])
        }
    }

    public func lifecyclePreview(_ repository: RepositoryKey, notBefore: Double) async throws -> StoredLifecyclePreview? {
        try await read { c in
            try await c.query("""
                SELECT p.policy_text, p.results, p.created_at FROM lifecycle_previews p JOIN repositories r ON r.id = p.repo_id
                WHERE r.registry_id = ? AND r.name = ? AND p.created_at >= ?
                """, Self.repoValues(repository) + [.real(notBefore)]) {
                StoredLifecyclePreview(policyText: try $0.text(0), results: try $0.blob(1), createdAt: try $0.double(2))
            }.first
        }
    }
}
