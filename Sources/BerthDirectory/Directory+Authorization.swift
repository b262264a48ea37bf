import BerthCore
import BerthStorage
import BerthSupport

/// The identity side of an authorization: the policy documents that apply to a caller.
public struct IdentityPolicyDocuments: Sendable, Equatable {
    /// `aws:userid`: a user's `AIDA…` id, `<role id>:<session>` for a role session, the account for the
    /// root; the principal's own when its user or role is not found.
    public var userID: String?
    /// Inline and attached (customer or AWS managed) policy documents: the entity's, then its groups'.
    public var documents: [String]

    public init(userID: String?, documents: [String]) {
        self.userID = userID
        self.documents = documents
    }
}

/// The resource side of an authorization: resource policies and the resource's tags.
public struct ResourcePolicyDocuments: Sendable, Equatable {
    /// The repository policy, then the registry policy of the repository's account (private ECR only).
    public var documents: [String]
    public var tags: [String: String]

    public init(documents: [String] = [], tags: [String: String] = [:]) {
        self.documents = documents
        self.tags = tags
    }
}

extension Directory {
    /// The identity policies of a caller: a user's inline and attached policies and its groups', a role
    /// session's role policies; none for the root (it is allowed by the account) or an unknown principal.
    /// A role session only gets its role's policies while the role is the one it was issued for (a role
    /// deleted and created again under the same name has a new id).
    public func identityPolicies(of principal: Principal) async throws -> IdentityPolicyDocuments {
        let account = principal.accountID
        var documents: [String] = []
        func gather(_ key: IAMEntityKey) async throws {
            documents += try await store.inlinePolicies(key).map(\.document)
            for arn in try await store.attachedPolicies(key) {
                if let m = Self.awsManagedPolicy(arn: arn) {
                    documents.append(m.document)
                } else if let p = try await store.managedPolicy(arn: arn) {
                    documents.append(p.document)
                }
            }
        }
        let none = IdentityPolicyDocuments(userID: principal.userID, documents: [])
        switch principal.kind {
        case .root:
            return IdentityPolicyDocuments(userID: account, documents: [])
        case .user(let name):
            let key = IAMEntityKey(.user, account, name)
            guard let user = try await store.entity(key), user.arn == principal.arn else { return none }
            try await gather(key)
            for g in try await store.groups(ofUser: name, account: account) {
                try await gather(IAMEntityKey(.group, account, g))
            }
            return IdentityPolicyDocuments(userID: user.id, documents: documents)
        case .assumedRole(let role, let session):
            let key = IAMEntityKey(.role, account, role)
            guard let r = try await store.entity(key) else { return none }
            if let id = principal.userID, id.split(separator: ":").first.map(String.init) != r.id { return none }
            try await gather(key)
            return IdentityPolicyDocuments(userID: "\(r.id):\(session)", documents: documents)
        case .unknown:
            return none
        }
    }

    /// The resource policies and tags of a resource ARN: for an ECR repository its repository policy and
    /// tags and its account's registry policy; for an ECR Public repository its policy and tags (ECR
    /// Public has no registry policy); nothing for any other resource.
    public func resourcePolicies(of resource: String) async throws -> ResourcePolicyDocuments {
        guard let arn = ARN(resource), arn.service == "ecr" || arn.service == "ecr-public",
              AccountID.isValid(arn.account) else { return ResourcePolicyDocuments() }
        let account = arn.account
        // Each account × region is its own registry (`RegionSet`); a registry ARN or an ECR repository
        // ARN names its region.
        let registry = RegistryID.private(account, region: arn.region.isEmpty || homeRegion == nil || arn.region == homeRegion ? nil : arn.region)
        var out = ResourcePolicyDocuments()
        // ECR Public repositories are stored in their account's public namespace.
        let key: RepositoryKey?
        if arn.service == "ecr-public" {
            key = PublicRegistry.parseRepositoryARN(resource).map { RepositoryKey(storedRegistryID: RegistryID.public($0.account).storedValue, name: $0.name) }
        } else {
            key = ResourceARN.parseRepository(resource).map { RepositoryKey(storedRegistryID: registry.storedValue, name: $0.name) }
        }
        if let key, let repo = try await store.repository(key) {
            if let p = repo.settings.policy { out.documents.append(p) }
            for t in repo.settings.tags { out.tags[t.key] = t.value }
        }
        if arn.service == "ecr", let p = try await store.accountSetting(registry.storedValue, RegistryPolicy.settingName), !p.isEmpty {
            out.documents.append(p)
        }
        return out
    }
}
