import BerthCore

/// Repository creation templates, per registry (its stored id, `RegistryID.storedValue`), keyed by prefix;
/// one versioned JSON document per row (`PullThroughDocument`). Writes that check something (the count
/// limit, the row's presence) check and write in one transaction.
public protocol CreationTemplateMetadata: Sendable {
    /// Stores a new template unless one with that prefix exists or the registry already has `limit` templates.
    func createCreationTemplate(_ template: RepositoryCreationTemplateRecord, limit: Int) async throws -> CreationTemplateInsert
    /// A registry's templates in prefix order.
    func creationTemplates(of registryID: String) async throws -> [RepositoryCreationTemplateRecord]
    /// Reads a template, applies `update` and writes it back in one transaction; nil when it does not exist.
    /// The key (registry and prefix) is not changed by an update.
    func updateCreationTemplate(registryID: String, prefix: String,
                                _ update: @escaping @Sendable (inout RepositoryCreationTemplateRecord) throws -> Void) async throws -> RepositoryCreationTemplateRecord?
    /// Removes a template and returns it; nil when it does not exist.
    func deleteCreationTemplate(registryID: String, prefix: String) async throws -> RepositoryCreationTemplateRecord?
}
