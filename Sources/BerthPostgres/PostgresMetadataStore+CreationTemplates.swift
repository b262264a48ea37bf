import BerthCore
import BerthStorage

/// Repository creation templates in PostgreSQL: one JSON document per row (`PullThroughDocument`'s envelope).
extension PostgresMetadataStore {
    public func createCreationTemplate(_ template: RepositoryCreationTemplateRecord, limit: Int) async throws -> CreationTemplateInsert {
        let document = try PullThroughDocument.encode(template)
        return try await transaction { c in
            if try await c.exists("SELECT 1 FROM repository_creation_templates WHERE registry_id = ? AND prefix = ?",
                                  [.text(template.registryID), .text(template.prefix)]) { return .alreadyExists }
            if try await c.count("SELECT count(*) FROM repository_creation_templates WHERE registry_id = ?", [.text(template.registryID)]) >= limit {
                return .limitExceeded
            }
            // A concurrent creation of the same prefix that committed first makes this one `alreadyExists`.
            let inserted = try await c.execute(
                "INSERT INTO repository_creation_templates(registry_id, prefix, document) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
                [.text(template.registryID), .text(template.prefix), .text(document)])
            return inserted == 1 ? .created : .alreadyExists
        }
    }

    public func creationTemplates(of registryID: String) async throws -> [RepositoryCreationTemplateRecord] {
        let rows = try await read { c in
            try await c.query("SELECT document FROM repository_creation_templates WHERE registry_id = ? ORDER BY prefix",
                              [.text(registryID)]) { try $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: RepositoryCreationTemplateRecord.self) }
    }

    public func updateCreationTemplate(registryID: String, prefix: String,
                                       _ update: @escaping @Sendable (inout RepositoryCreationTemplateRecord) throws -> Void) async throws -> RepositoryCreationTemplateRecord? {
        try await transaction { c in
            guard let text = try await c.query("SELECT document FROM repository_creation_templates WHERE registry_id = ? AND prefix = ? FOR UPDATE",
                                               [.text(registryID), .text(prefix)], row: { try $0.text(0) }).first else { return nil }
            var template = try PullThroughDocument.decode(text, as: RepositoryCreationTemplateRecord.self)
            try update(&template)
            template.registryID = registryID
            template.prefix = prefix
            try await c.execute("UPDATE repository_creation_templates SET document = ? WHERE registry_id = ? AND prefix = ?",
                                [.text(try PullThroughDocument.encode(template)), .text(registryID), .text(prefix)])
            return template
        }
    }

    public func deleteCreationTemplate(registryID: String, prefix: String) async throws -> RepositoryCreationTemplateRecord? {
        try await transaction { c in
            guard let text = try await c.query("DELETE FROM repository_creation_templates WHERE registry_id = ? AND prefix = ? RETURNING document",
                                               [.text(registryID), .text(prefix)], row: { try $0.text(0) }).first else { return nil }
            return try PullThroughDocument.decode(text, as: RepositoryCreationTemplateRecord.self)
        }
    }
}
