import BerthCore
import BerthStorage

/// Repository creation templates (docs/creation-templates.md): their storage per registry, and the one way
/// Berth creates a repository by itself.
extension Registry {
    /// Stores a new template; `alreadyExists` when its registry has one with that prefix, `limitExceeded`
    /// past `CreationTemplates.maxTemplates`.
    public func createCreationTemplate(_ template: RepositoryCreationTemplateRecord) async throws -> RepositoryCreationTemplateRecord {
        switch try await metadata.createCreationTemplate(template, limit: CreationTemplates.maxTemplates) {
        case .created: return template
        case .alreadyExists: throw CreationTemplateError.alreadyExists(prefix: template.prefix, registry: template.registryID)
        case .limitExceeded: throw CreationTemplateError.limitExceeded(CreationTemplates.maxTemplates)
        }
    }

    /// A registry's templates (`registryID`: its stored id), in prefix order.
    public func creationTemplates(of registryID: String) async throws -> [RepositoryCreationTemplateRecord] {
        try await metadata.creationTemplates(of: registryID)
    }

    /// Changes a template in one store transaction; `notFound` when it does not exist.
    public func updateCreationTemplate(registryID: String, prefix: String,
                                       _ update: @escaping @Sendable (inout RepositoryCreationTemplateRecord) throws -> Void) async throws -> RepositoryCreationTemplateRecord {
        guard let t = try await metadata.updateCreationTemplate(registryID: registryID, prefix: prefix, update) else {
            throw CreationTemplateError.notFound(prefix: prefix, registry: registryID)
        }
        return t
    }

    /// Removes a template and returns it; `notFound` when it does not exist.
    public func deleteCreationTemplate(registryID: String, prefix: String) async throws -> RepositoryCreationTemplateRecord {
        guard let t = try await metadata.deleteCreationTemplate(registryID: registryID, prefix: prefix) else {
            throw CreationTemplateError.notFound(prefix: prefix, registry: registryID)
        }
        return t
    }

    /// The template that would give a repository created for `purpose` its settings, or nil.
    public func creationTemplate(for key: RepositoryKey, purpose: RepositoryCreationPurpose) async throws -> RepositoryCreationTemplateRecord? {
        let templates = try await metadata.creationTemplates(of: key.registryID)
        return CreationTemplates.template(for: key.name, purpose: purpose, among: templates)
    }

    /// Creates a repository that Berth needs and nobody created: a push to a missing repository
    /// (`.createOnPush`), a pull through the cache (`.pullThroughCache`) or a replicated image
    /// (`.replication`). This is the only road for such creations, so every one follows the templates:
    ///
    /// - The template of `key`'s registry with the longest prefix covering the name, else `ROOT`, among
    ///   those listing `purpose` in `appliedFor`, gives the repository its settings (tag mutability and
    ///   exclusions, encryption, resource tags, repository policy, lifecycle policy).
    /// - Without such a template the repository gets the defaults (`MUTABLE`, `AES256`, no tags, no policy)
    ///   — except a push when the `createOnPush` setting is off: then only a `CREATE_ON_PUSH` template lets
    ///   it create the repository (ECR's behaviour), and otherwise it fails with `nameUnknown`.
    ///
    /// The caller authorizes the creation (`ecr:CreateRepository` on the door that asks). Returns true when
    /// this call created the repository, false when it existed already (also when a concurrent caller
    /// created it first). A template whose KMS key is no longer usable fails the creation (`kms`).
    public func createRepositoryAutomatically(_ key: RepositoryKey, for purpose: RepositoryCreationPurpose) async throws -> Bool {
        if try await storedRepository(key) != nil { return false }
        let template = try await creationTemplate(for: key, purpose: purpose)
        if purpose == .createOnPush, !settings.createOnPush, template == nil { throw BerthError.nameUnknown(key.name) }
        let created = try await createRepository(key, settings: template?.repositorySettings ?? RepositorySettings())
        if created {
            logger.info("repository created automatically", metadata: [
                "repository": "\(key)", "purpose": "\(purpose.rawValue)", "template": "\(template?.prefix ?? "none")",
            ])
        }
        return created
    }

    /// A push through the ECR API (`InitiateLayerUpload`, `PutImage`) to a missing repository: created as
    /// ECR creates one on push — only when a `CREATE_ON_PUSH` template covers the name, whatever the
    /// `createOnPush` setting (docs/creation-templates.md). `nameUnknown` otherwise. The caller authorizes
    /// `ecr:CreateRepository` first (it asks `creationTemplate(for:purpose:)` whether one applies).
    public func repositoryForECRPush(_ name: RepositoryKey) async throws {
        if try await storedRepository(name) != nil { return }
        guard try await creationTemplate(for: name, purpose: .createOnPush) != nil else { throw BerthError.nameUnknown(name.name) }
        _ = try await createRepositoryAutomatically(name, for: .createOnPush)
    }
}
