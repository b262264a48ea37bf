import BerthCore
import Synchronization

/// Repository creation templates, in memory (`CreationTemplateMetadata`).
extension InMemoryMetadataStore {
    public func createCreationTemplate(_ template: RepositoryCreationTemplateRecord, limit: Int) async throws -> CreationTemplateInsert {
        creationTemplateState.withLock { s in
            let current = s[template.registryID] ?? [:]
            if current[template.prefix] != nil { return .alreadyExists }
            if current.count >= limit { return .limitExceeded }
            s[template.registryID, default: [:]][template.prefix] = template
            return .created
        }
    }

    public func creationTemplates(of registryID: String) async throws -> [RepositoryCreationTemplateRecord] {
        creationTemplateState.withLock { s in
            (s[registryID] ?? [:]).values.sorted { Array($0.prefix.utf8).lexicographicallyPrecedes(Array($1.prefix.utf8)) }
        }
    }

    public func updateCreationTemplate(registryID: String, prefix: String,
                                       _ update: @escaping @Sendable (inout RepositoryCreationTemplateRecord) throws -> Void) async throws -> RepositoryCreationTemplateRecord? {
        try creationTemplateState.withLock { s in
            guard var template = s[registryID]?[prefix] else { return nil }
            try update(&template)
            template.registryID = registryID
            template.prefix = prefix
            s[registryID]?[prefix] = template
            return template
        }
    }

    public func deleteCreationTemplate(registryID: String, prefix: String) async throws -> RepositoryCreationTemplateRecord? {
        creationTemplateState.withLock { s in s[registryID]?.removeValue(forKey: prefix) }
    }
}
