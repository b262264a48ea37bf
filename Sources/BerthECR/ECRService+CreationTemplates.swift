import BerthCore
import BerthLifecycle
import BerthPolicy
import BerthRegistry
import BerthSupport
import Foundation

/// Repository creation templates: Create/Describe/Update/DeleteRepositoryCreationTemplate(s), authorized as
/// `ecr:<Action>` on the caller's registry and stored by ``Registry`` per registry (docs/creation-templates.md).
///
/// Members that break a constraint of botocore's model (length, pattern, enum) get `ValidationException`
/// in the model validators' wording; settings that the shared repository parsers refuse (tag mutability and
/// exclusions, encryption, resource tags, policies) get the errors those give on the repository operations.
extension ECRService {
    static func templateError(_ e: CreationTemplateError) -> ECRError {
        switch e {
        case .alreadyExists(let prefix, let registry):
            return ECRError("TemplateAlreadyExistsException",
                            "A repository creation template with prefix '\(prefix)' already exists in the registry with id '\(RegistryID(storedValue: registry).account)'")
        case .notFound(let prefix, let registry):
            return ECRError("TemplateNotFoundException",
                            "The repository creation template with prefix '\(prefix)' does not exist in the registry with id '\(RegistryID(storedValue: registry).account)'")
        case .limitExceeded(let n):
            return ECRError("LimitExceededException", "The maximum number of repository creation templates (\(n)) for this registry has been reached")
        }
    }

    /// The members a Create or Update gives; nil: not given.
    struct TemplateFields {
        var description: String?
        var encryption: (type: String, kmsKey: String?)?
        var resourceTags: [ResourceTag]?
        var mutability: (TagMutability, [String])?
        var repositoryPolicy: String?
        var lifecyclePolicy: String?
        var appliedFor: [RepositoryCreationPurpose]?
        var customRoleARN: String?

        /// Writes the given members into `t` (an empty policy text or role ARN removes it).
        func apply(to t: inout RepositoryCreationTemplateRecord) {
            if let description { t.description = description }
            if let encryption {
                t.encryptionType = encryption.type
                t.kmsKey = encryption.kmsKey
            }
            if let resourceTags { t.resourceTags = resourceTags }
            if let (m, filters) = mutability {
                t.imageTagMutability = m
                t.exclusionFilters = filters
            }
            if let repositoryPolicy { t.repositoryPolicy = repositoryPolicy.isEmpty ? nil : repositoryPolicy }
            if let lifecyclePolicy { t.lifecyclePolicy = lifecyclePolicy.isEmpty ? nil : lifecyclePolicy }
            if let appliedFor { t.appliedFor = appliedFor }
            if let customRoleARN { t.customRoleARN = customRoleARN.isEmpty ? nil : customRoleARN }
        }
    }

    /// `Prefix`: 1–256 characters of the pattern, or `ROOT`; returned without a trailing `/`.
    func templatePrefix(_ value: String, member: String = "prefix") throws -> String {
        guard (1...256).contains(value.count) else {
            throw ECRError.validation(ValidationMessage(.text(value), at: member, .lengthBetween(1, 256)))
        }
        guard let prefix = RepositoryPrefix.normalized(value) else {
            throw ECRError.validation(ValidationMessage(.text(value), at: member, .pattern(RepositoryPrefix.pattern)))
        }
        return prefix
    }

    /// A required string member; missing: `ValidationException`, as the other constraints of these operations.
    func requiredMember(_ p: Params, _ name: String) throws -> String {
        guard let v = try p.string(name) else { throw ECRError.validation(ValidationMessage.missing(name)) }
        return v
    }

    /// `KmsKeyForRepositoryCreationTemplate`: empty, or a full key ARN.
    static func isTemplateKMSKey(_ key: String) -> Bool {
        if key.isEmpty { return true }
        guard let arn = ARN(key), arn.partition.hasPrefix("aws"), arn.service == "kms", !arn.region.isEmpty,
              AccountID.isValid(arn.account), arn.resource.hasPrefix("key/") else { return false }
        let id = arn.resource.dropFirst("key/".count)
        return !id.isEmpty && id.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }
    }

    func templateFields(_ p: Params, account: String) throws -> TemplateFields {
        var f = TemplateFields()
        if let d = try p.string("description") {
            guard d.count <= 256 else { throw ECRError.validation(ValidationMessage(.text(d), at: "description", .lengthAtMost(256))) }
            f.description = d
        }
        if let enc = try p.object("encryptionConfiguration") {
            let type = try requiredMember(enc, "encryptionType")
            guard ["AES256", "KMS", "KMS_DSSE"].contains(type) else {
                throw ECRError.validation(ValidationMessage(.text(type), at: "encryptionConfiguration.encryptionType", .oneOf(["AES256", "KMS", "KMS_DSSE"])))
            }
            let key = try enc.string("kmsKey")
            if let key {
                guard key.utf8.count <= 2048 else {
                    throw ECRError.validation(ValidationMessage(.omitted, at: "encryptionConfiguration.kmsKey", .lengthAtMost(2048)))
                }
                guard Self.isTemplateKMSKey(key) else {
                    throw ECRError.validation(ValidationMessage(.text(key), at: "encryptionConfiguration.kmsKey",
                                                                .pattern("^$|arn:aws[a-z0-9-]*:kms:[a-z0-9-]+:[0-9]{12}:key\\/[a-z0-9-]+")))
                }
            }
            if type == "AES256", let key, !key.isEmpty {
                throw ECRError.invalidParameter("Invalid parameter at 'encryptionConfiguration': kmsKey can only be specified when encryptionType is KMS or KMS_DSSE")
            }
            f.encryption = (type, type == "AES256" || key?.isEmpty == true ? nil : key)
        }
        if try p.list("resourceTags") != nil {
            let tags = try parseTags(p, "resourceTags")
            guard tags.count <= Self.maxTags else { throw ECRError.tooManyTags(limit: Self.maxTags) }
            f.resourceTags = tags
        }
        f.mutability = try parseMutability(p)
        if let text = try p.string("repositoryPolicy") {
            if !text.isEmpty { _ = try checkPolicy(text, options: .ecrRepositoryPolicy, kind: "repository", member: "repositoryPolicy") }
            f.repositoryPolicy = text
        }
        if let text = try p.string("lifecyclePolicy") {
            guard text.count <= LifecyclePolicy.maximumLength else {
                throw ECRError.validation(ValidationMessage(.omitted, at: "lifecyclePolicy", .lengthAtMost(LifecyclePolicy.maximumLength)))
            }
            if !text.isEmpty { _ = try checkLifecyclePolicy(text) }
            f.lifecyclePolicy = text
        }
        if let list = try p.stringList("appliedFor") {
            var purposes: [RepositoryCreationPurpose] = []
            for v in list {
                guard let purpose = RepositoryCreationPurpose(rawValue: v) else {
                    throw ECRError.validation(ValidationMessage(.text("[\(list.joined(separator: ", "))]"), at: "appliedFor",
                                                                .other("Member must satisfy constraint: [Member must satisfy enum value set: [\(RepositoryCreationPurpose.modelValues.joined(separator: ", "))]]")))
                }
                if !purposes.contains(purpose) { purposes.append(purpose) }
            }
            guard !purposes.isEmpty else {
                throw ECRError.invalidParameter("Invalid parameter at 'appliedFor': at least one of \(RepositoryCreationPurpose.modelValues.joined(separator: ", ")) must be given")
            }
            f.appliedFor = purposes
        }
        if let role = try p.string("customRoleArn") {
            guard role.utf8.count <= 2048 else {
                throw ECRError.validation(ValidationMessage(.omitted, at: "customRoleArn", .lengthAtMost(2048)))
            }
            if !role.isEmpty {
                // ECR: "This role must be in the same account as the registry that you are configuring."
                guard let arn = ARN(role), arn.service == "iam", arn.region.isEmpty, arn.account == account,
                      Self.isRoleResource(arn.resource) else {
                    throw ECRError.invalidParameter("Invalid parameter at 'customRoleArn': '\(role)' is not the ARN of an IAM role in the account \(account)")
                }
            }
            f.customRoleARN = role
        }
        return f
    }

    /// Checks a template's KMS key as repository creation checks it (`KmsException` when it is not usable).
    func checkTemplateKey(_ t: RepositoryCreationTemplateRecord) async throws {
        _ = try await registry.checkedKMSKey(encryptionType: t.encryptionType, kmsKey: t.kmsKey, registryID: t.registryID)
    }

    func templateJSON(_ t: RepositoryCreationTemplateRecord) -> JSONValue {
        var enc: [String: JSONValue] = ["encryptionType": .string(t.encryptionType)]
        if let k = t.kmsKey { enc["kmsKey"] = .string(k) }
        var o: [String: JSONValue] = [
            "prefix": .string(t.prefix),
            "encryptionConfiguration": .object(enc),
            "resourceTags": .array(t.resourceTags.map { ["Key": .string($0.key), "Value": .string($0.value)] }),
            "imageTagMutability": .string(t.imageTagMutability.rawValue),
            "appliedFor": .array(t.appliedFor.map { .string($0.rawValue) }),
            "createdAt": .double(t.createdAt),
            "updatedAt": .double(t.updatedAt),
        ]
        if let d = t.description { o["description"] = .string(d) }
        if !t.exclusionFilters.isEmpty {
            o["imageTagMutabilityExclusionFilters"] = .array(t.exclusionFilters.map { ["filterType": "WILDCARD", "filter": .string($0)] })
        }
        if let r = t.repositoryPolicy { o["repositoryPolicy"] = .string(r) }
        if let l = t.lifecyclePolicy { o["lifecyclePolicy"] = .string(l) }
        if let c = t.customRoleARN { o["customRoleArn"] = .string(c) }
        return .object(o)
    }

    func authorizeTemplate(_ principal: Principal, _ action: String) async throws {
        try await authorizer.authorize(principal, action: "ecr:\(action)", resource: registryResource(principal.accountID))
    }

    /// `role/[path/]name` of an IAM role ARN: a path of `/`-separated segments and a name of 1–64 of
    /// IAM's characters (`[\w+=,.@-]`).
    static func isRoleResource(_ resource: String) -> Bool {
        guard resource.hasPrefix("role/") else { return false }
        let rest = resource.dropFirst("role/".count)
        guard let name = rest.split(separator: "/", omittingEmptySubsequences: false).last, (1...64).contains(name.utf8.count),
              rest.utf8.count <= 512 + 64 else { return false }
        return rest.split(separator: "/", omittingEmptySubsequences: false).allSatisfy { part in
            !part.isEmpty && part.unicodeScalars.allSatisfy { c in
                c.isASCII && (CharacterSet.alphanumerics.contains(c) || "_+=,.@-".unicodeScalars.contains(c))
            }
        }
    }

    /// What writing a template needs besides the operation's own action, as ECR's guide lists it
    /// ("IAM permissions for creating repository creation templates"): `ecr:CreateRepository` on the
    /// repositories the template covers (`repository/<prefix>/*`, `repository/*` for ROOT), and — only for
    /// what the request sets — `ecr:PutLifecyclePolicy` (a lifecycle policy), `ecr:SetRepositoryPolicy` (a
    /// repository policy), `ecr:TagResource` (resource tags, as CreateRepository with tags needs it) and
    /// `iam:PassRole` on the `customRoleArn`. Each refusal is `AccessDeniedException`.
    func authorizeTemplateGrants(_ principal: Principal, prefix: String, _ f: TemplateFields) async throws {
        let covered = repositoryARNPrefix(principal.accountID) + (prefix == CreationTemplates.root ? "*" : "\(prefix)/*")
        try await authorizer.authorize(principal, action: "ecr:CreateRepository", resource: covered)
        if let l = f.lifecyclePolicy, !l.isEmpty { try await authorizer.authorize(principal, action: "ecr:PutLifecyclePolicy", resource: covered) }
        if let r = f.repositoryPolicy, !r.isEmpty { try await authorizer.authorize(principal, action: "ecr:SetRepositoryPolicy", resource: covered) }
        if let t = f.resourceTags, !t.isEmpty { try await authorizer.authorize(principal, action: "ecr:TagResource", resource: covered) }
        if let role = f.customRoleARN, !role.isEmpty { try await authorizer.authorize(principal, action: "iam:PassRole", resource: role) }
    }

    func createRepositoryCreationTemplate(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        let prefix = try templatePrefix(try requiredMember(p, "prefix"))
        guard try p.list("appliedFor") != nil else {
            throw ECRError.validation(ValidationMessage.missing("appliedFor"))
        }
        let fields = try templateFields(p, account: account)
        try await authorizeTemplate(principal, "CreateRepositoryCreationTemplate")
        try await authorizeTemplateGrants(principal, prefix: prefix, fields)
        let now = clock.now()
        var template = RepositoryCreationTemplateRecord(registryID: storeID(account), prefix: prefix, appliedFor: [],
                                                        createdAt: now, updatedAt: now)
        fields.apply(to: &template)
        try await checkTemplateKey(template)
        let created = try await registry.createCreationTemplate(template)
        return ["registryId": .string(account), "repositoryCreationTemplate": templateJSON(created)]
    }

    func describeRepositoryCreationTemplates(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        let wanted = try p.stringList("prefixes").map { list in try list.map { try templatePrefix($0, member: "prefixes.member") } }
        var limit = Self.defaultPageSize
        if let n = try p.int("maxResults") {
            guard (1...1000).contains(n) else {
                throw ECRError.validation(ValidationMessage(.text("\(n)"), at: "maxResults", n < 1 ? .valueAtLeast(1) : .valueAtMost(1000)))
            }
            limit = Int(n)
        }
        let after = try Self.decodeToken(try p.string("nextToken"))
        try await authorizeTemplate(principal, "DescribeRepositoryCreationTemplates")
        var templates = try await registry.creationTemplates(of: storeID(account))
        // Prefixes without a template are left out (the operation has no TemplateNotFoundException).
        if let wanted { templates = templates.filter { wanted.contains($0.prefix) } }
        // Pages follow the stores' order (bytewise by prefix): the token is the last prefix returned.
        if let after { templates = templates.filter { Array(after.utf8).lexicographicallyPrecedes(Array($0.prefix.utf8)) } }
        let page = templates.prefix(limit)
        var out: [String: JSONValue] = ["registryId": .string(account), "repositoryCreationTemplates": .array(page.map(templateJSON))]
        if templates.count > limit, let last = page.last { out["nextToken"] = .string(Self.encodeToken(last.prefix)) }
        return .object(out)
    }

    func updateRepositoryCreationTemplate(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        let prefix = try templatePrefix(try requiredMember(p, "prefix"))
        let fields = try templateFields(p, account: account)
        try await authorizeTemplate(principal, "UpdateRepositoryCreationTemplate")
        try await authorizeTemplateGrants(principal, prefix: prefix, fields)
        if fields.encryption != nil {
            guard var next = try await registry.creationTemplates(of: storeID(account)).first(where: { $0.prefix == prefix }) else {
                throw CreationTemplateError.notFound(prefix: prefix, registry: storeID(account))
            }
            fields.apply(to: &next)
            try await checkTemplateKey(next)
        }
        let now = clock.now()
        let updated = try await registry.updateCreationTemplate(registryID: storeID(account), prefix: prefix) { t in
            fields.apply(to: &t)
            t.updatedAt = now
        }
        return ["registryId": .string(account), "repositoryCreationTemplate": templateJSON(updated)]
    }

    func deleteRepositoryCreationTemplate(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        let prefix = try templatePrefix(try requiredMember(p, "prefix"))
        try await authorizeTemplate(principal, "DeleteRepositoryCreationTemplate")
        let deleted = try await registry.deleteCreationTemplate(registryID: storeID(account), prefix: prefix)
        return ["registryId": .string(account), "repositoryCreationTemplate": templateJSON(deleted)]
    }
}
