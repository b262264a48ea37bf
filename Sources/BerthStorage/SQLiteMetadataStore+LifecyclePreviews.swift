import BerthCore

extension SQLiteMetadataStore {
    /// One row per repository (`ON DELETE CASCADE` removes it with the repository).
    static let lifecyclePreviewsSchema = """
        CREATE TABLE lifecycle_previews(
            repo_id INTEGER PRIMARY KEY REFERENCES repositories(id) ON DELETE CASCADE,
            policy_text TEXT NOT NULL, results BLOB NOT NULL, created_at REAL NOT NULL);
        CREATE INDEX lifecycle_previews_created ON lifecycle_previews(created_at);
        """

    public func putLifecyclePreview(_ preview: StoredLifecyclePreview, for repository: RepositoryKey,
                                    expiredBefore: Double) async throws {
        try await db.write { c in
            try c.transaction {
                guard let id = try Self.repoID(c, repository) else { throw BerthError.nameUnknown(repository.name) }
                try c.execute("DELETE FROM lifecycle_previews WHERE created_at < ?", [.real(expiredBefore)])
                try c.execute("""
                    INSERT OR REPLACE INTO lifecycle_previews(repo_id, policy_text, results, created_at) VALUES(?, ?, ?, ?)
                    """, [.integer(id), .text(preview.policyText), .blob(preview.results), .real(preview.createdAt)])
            }
        }
    }

    public func lifecyclePreview(_ repository: RepositoryKey, notBefore: Double) async throws -> StoredLifecyclePreview? {
        try await db.read { c in
            try c.query("""
                SELECT p.policy_text, p.results, p.created_at FROM lifecycle_previews p JOIN repositories r ON r.id = p.repo_id
                WHERE r.registry_id = ? AND r.name = ? AND p.created_at >= ?
                """, [.text(repository.registryID), .text(repository.name), .real(notBefore)]) {
                StoredLifecyclePreview(policyText: $0.text(0), results: $0.blob(1), createdAt: $0.double(2))
            }.first
        }
    }
}
