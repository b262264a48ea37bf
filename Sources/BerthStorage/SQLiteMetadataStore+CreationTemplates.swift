import BerthCore

/// Repository creation templates in SQLite: one JSON document per row (`PullThroughDocument`'s envelope).
extension SQLiteMetadataStore {
    public func createCreationTemplate(_ template: RepositoryCreationTemplateRecord, limit: Int) async throws -> CreationTemplateInsert {
        let document = try PullThroughDocument.encode(template)
        return try await db.write { c in
            try c.transaction {
                let exists = try c.query("SELECT 1 FROM repository_creation_templates WHERE registry_id = ? AND prefix = ?",
                                         [.text(template.registryID), .text(template.prefix)]) { _ in true }
                if !exists.isEmpty { return .alreadyExists }
                let count = try c.query("SELECT count(*) FROM repository_creation_templates WHERE registry_id = ?",
                                        [.text(template.registryID)]) { $0.int(0) }.first ?? 0
                if count >= Int64(limit) { return .limitExceeded }
                try c.execute("INSERT INTO repository_creation_templates(registry_id, prefix, document) VALUES(?, ?, ?)",
                              [.text(template.registryID), .text(template.prefix), .text(document)])
                return .created
            }
        }
    }

    public func creationTemplates(of registryID: String) async throws -> [RepositoryCreationTemplateRecord] {
        let rows = try await db.read { c in
            try c.query("SELECT document FROM repository_creation_templates WHERE registry_id = ? ORDER BY prefix",
                        [.text(registryID)]) { $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: RepositoryCreationTemplateRecord.self) }
    }

    public func updateCreationTemplate(registryID: String, prefix: String,
                                       _ update: @escaping @Sendable (inout RepositoryCreationTemplateRecord) throws -> Void) async throws -> RepositoryCreationTemplateRecord? {
        try await db.write { c in
            try c.transaction {
                guard let text = try c.query("SELECT document FROM repository_creation_templates WHERE registry_id = ? AND prefix = ?",
                                             [.text(registryID), .text(prefix)], row: { $0.text(0) }).first else { return nil }
                var template = try PullThroughDocument.decode(text, as: RepositoryCreationTemplateRecord.self)
                try update(&template)
                template.registryID = registryID
                template.prefix = prefix
                try c.execute("UPDATE repository_creation_templates SET document = ? WHERE registry_id = ? AND prefix = ?",
                              [.text(try PullThroughDocument.encode(template)), .text(registryID), .text(prefix)])
                return template
            }
        }
    }

    public func deleteCreationTemplate(registryID: String, prefix: String) async throws -> RepositoryCreationTemplateRecord? {
        try await db.write { c in
            try c.transaction {
                guard let text = try c.query("SELECT document FROM repository_creation_templates WHERE registry_id = ? AND prefix = ?",
                                             [.text(registryID), .text(prefix)], row: { $0.text(0) }).first else { return nil }
                try c.execute("DELETE FROM repository_creation_templates WHERE registry_id = ? AND prefix = ?",
                              [.text(registryID), .text(prefix)])
                return try PullThroughDocument.decode(text, as: RepositoryCreationTemplateRecord.self)
            }
        }
    }
}
