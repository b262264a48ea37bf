import BerthCore

extension SQLiteMetadataStore {
    /// One query: the catalog fields are read out of the settings JSON (so no logo is loaded), the figures
    /// by correlated subqueries on the `(repo_id, …)` primary keys, the display name by a join.
    public func publicRepositorySummaries(includingTexts: Bool) async throws -> [PublicRepositorySummary] {
        let texts = includingTexts
            ? "json_extract(r.settings, '$.catalog.aboutText'), json_extract(r.settings, '$.catalog.usageText')"
            : "NULL, NULL"
        let sql = """
            SELECT r.registry_id, r.name, r.created_at,
                json_extract(r.settings, '$.catalog.description'),
                json_extract(r.settings, '$.catalog.architectures'),
                json_extract(r.settings, '$.catalog.operatingSystems'),
                json_extract(r.settings, '$.catalog.logoBase64') IS NOT NULL,
                \(texts),
                (SELECT count(*) FROM tags t WHERE t.repo_id = r.id),
                (SELECT max(m.pushed_at) FROM manifests m WHERE m.repo_id = r.id),
                (SELECT max(m.last_pulled_at) FROM manifests m WHERE m.repo_id = r.id),
                s.value,
                (SELECT coalesce(sum(m.download_count), 0) FROM manifests m WHERE m.repo_id = r.id)
            FROM repositories r
            LEFT JOIN account_settings s ON s.account_id = substr(r.registry_id, 8) AND s.name = ?
            WHERE r.registry_id >= 'public:' AND r.registry_id < 'public;'
            ORDER BY r.registry_id, r.name
            """
        return try await db.read { c in
            try c.query(sql, [.text(PublicRegistry.displayNameSetting)]) { row in
                let key = RepositoryKey(storedRegistryID: row.text(0), name: row.text(1))
                let catalog = PublicCatalogData(
                    description: row.optionalText(3),
                    architectures: try row.optionalText(4).map { try StoredValues.decodeList($0, "architectures of \(key)") },
                    operatingSystems: try row.optionalText(5).map { try StoredValues.decodeList($0, "operating systems of \(key)") },
                    aboutText: row.optionalText(7), usageText: row.optionalText(8))
                return PublicRepositorySummary(
                    key: key, createdAt: row.double(2), catalog: catalog, hasLogo: row.int(6) != 0, tagCount: Int(row.int(9)),
                    lastPushedAt: row.isNull(10) ? nil : row.double(10), lastPulledAt: row.isNull(11) ? nil : row.double(11),
                    downloadCount: row.int(13),
                    registryDisplayName: row.optionalText(12))
            }
        }
    }
}
