import BerthCore
import BerthPolicy
import BerthStorage

/// The domain service for accounts and identities: accounts, access keys, IAM users, groups and roles,
/// their inline and managed policies and attachments, group membership, OIDC providers, and the
/// read-only lookups authentication and authorization need. The IAM and STS doors, the authorizer,
/// `IdentityService`, the bootstrap and `berth admin` call it; none of them reaches the store.
///
/// A rule that checks and then writes — the access-key quota, the attached-policy quota, the inline
/// policy size quota, DeleteConflict, "the entity must exist" — is one guarded store operation, checked
/// and written in one transaction, so concurrent requests cannot both pass the check. Every
/// authorization-relevant write advances the store's authorization generation (the stores do it).
public final class Directory: Sendable {
    let store: any MetadataStore
    /// The region stored under the bare account id (`RegionSet.home`): resource ARNs of other regions
    /// address `<account>@<region>` registries.
    public let homeRegion: String?

    /// AccessKeysPerUser (the account root has no such quota).
    public static let accessKeysPerUser = 2
    /// Managed policies attached to one user, group or role.
    public static let attachedPoliciesPerEntity = 10
    /// GroupsPerUser: the groups one IAM user may be a member of.
    public static let groupsPerUser = 10

    public init(store: any MetadataStore, homeRegion: String? = nil) {
        self.store = store
        self.homeRegion = homeRegion
    }

    /// The number of authorization-relevant writes so far: caches of keys and policies filled at another
    /// value are stale.
    public var authorizationGeneration: UInt64 { store.authorizationGeneration.current }

    // MARK: accounts

    /// Creates an account; false when it exists.
    @discardableResult
    public func createAccount(_ id: String, at: Double) async throws -> Bool {
        try await store.createAccount(id, at: at)
    }

    public func account(_ id: String) async throws -> AccountRecord? {
        try await store.account(id)
    }

    /// All accounts, by id.
    public func accounts() async throws -> [AccountRecord] {
        try await store.listAccounts()
    }

    // MARK: access keys

    public func accessKey(_ id: String) async throws -> AccessKeyRecord? {
        try await store.accessKey(id)
    }

    /// Every key of an account (root's and its users'), by id.
    public func accessKeys(account: String) async throws -> [AccessKeyRecord] {
        try await store.accessKeys(ofAccount: account)
    }

    /// The keys of one principal (`arn:aws:iam::<account>:root` or a user's ARN), by id.
    public func accessKeys(account: String, principalARN: String) async throws -> [AccessKeyRecord] {
        try await store.accessKeys(ofAccount: account).filter { $0.principalARN == principalARN }
    }

    /// The account root's own keys, by id.
    public func rootAccessKeys(account: String) async throws -> [AccessKeyRecord] {
        try await accessKeys(account: account, principalARN: Principal.rootARN(account))
    }

    /// Adds a new access key; an IAM user's keys are limited to ``accessKeysPerUser`` (checked with the insert).
    public func addAccessKey(_ key: AccessKeyRecord) async throws {
        let isRoot = key.principalARN == Principal.rootARN(key.accountID)
        guard try await store.insertAccessKey(key, limit: isRoot ? .unlimited : .perPrincipal(Self.accessKeysPerUser)) else {
            throw DirectoryError.accessKeyQuota(limit: Self.accessKeysPerUser)
        }
    }

    /// Adds the account's first key; false (and nothing written) when the account has a key already.
    public func addFirstAccessKey(_ key: AccessKeyRecord) async throws -> Bool {
        try await store.insertAccessKey(key, limit: .perAccount(1))
    }

    /// Installs a configured root key (the `rootAccessKeyId` setting): creates it, or replaces its secret,
    /// keeping its status and creation time. Refused when the id belongs to another account.
    public func putConfiguredRootKey(id: String, account: String, sealedSecret: String, at: Double) async throws {
        let existing = try await store.accessKey(id)
        if let existing, existing.accountID != account {
            throw DirectoryError.accessKeyOfAnotherAccount(id: id, account: existing.accountID)
        }
        try await store.putAccessKey(AccessKeyRecord(
            accessKeyID: id, accountID: account, principalARN: Principal.rootARN(account), sealedSecret: sealedSecret,
            status: existing?.status ?? AccessKeyStatus.active.rawValue, createdAt: existing?.createdAt ?? at))
    }

    /// False when there is no such key.
    @discardableResult
    public func setAccessKeyStatus(_ id: String, _ status: AccessKeyStatus) async throws -> Bool {
        try await store.setAccessKeyStatus(id, status.rawValue)
    }

    @discardableResult
    public func deleteAccessKey(_ id: String) async throws -> Bool {
        try await store.deleteAccessKey(id)
    }

    // MARK: users, groups, roles

    /// Creates the entity; false when one of that kind and name exists in the account.
    public func createEntity(_ entity: IAMEntityRecord) async throws -> Bool {
        try await store.createEntity(entity)
    }

    public func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord? {
        try await store.entity(key)
    }

    /// The entity, or ``DirectoryError/noSuchEntity(_:)``.
    public func requireEntity(_ key: IAMEntityKey) async throws -> IAMEntityRecord {
        guard let e = try await store.entity(key) else { throw DirectoryError.noSuchEntity(key) }
        return e
    }

    /// The account's entities of a kind, by name.
    public func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord] {
        try await store.entities(kind, account: account)
    }

    /// Deletes a user, group or role that nothing refers to any more (DeleteConflict otherwise: a user's
    /// access keys, policies and group memberships, a group's members and policies, a role's policies).
    public func deleteEntity(_ key: IAMEntityKey) async throws {
        switch try await store.deleteEntityIfUnreferenced(key) {
        case .done: return
        case .notFound: throw DirectoryError.noSuchEntity(key)
        case .inUse, .limitReached: throw DirectoryError.entityInUse(key)
        }
    }

    // MARK: inline policies

    /// The validation of a kind's inline policies, whose `maximumSize` is also the quota for all of an
    /// entity's inline policies together.
    public static func inlinePolicyOptions(_ kind: IAMEntityKind) -> PolicyParseOptions {
        switch kind {
        case .user: .iamInlineUserPolicy
        case .group: .iamInlineGroupPolicy
        case .role: .iamInlineRolePolicy
        }
    }

    /// Inserts or replaces an inline policy of an existing entity, within the size quota of its kind.
    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws {
        let limit = Self.inlinePolicyOptions(key.kind).maximumSize
        switch try await store.putInlinePolicy(key, name: name, document: document, totalSizeLimit: limit) {
        case .done: return
        case .notFound: throw DirectoryError.noSuchEntity(key)
        case .limitReached, .inUse: throw DirectoryError.inlinePolicySizeQuota(key, limit: limit ?? 0)
        }
    }

    public func inlinePolicy(_ key: IAMEntityKey, name: String) async throws -> String? {
        try await store.inlinePolicy(key, name: name)
    }

    /// Inline policies by name.
    public func inlinePolicies(_ key: IAMEntityKey) async throws -> [(name: String, document: String)] {
        try await store.inlinePolicies(key)
    }

    /// False when there is no such policy.
    public func deleteInlinePolicy(_ key: IAMEntityKey, name: String) async throws -> Bool {
        try await store.deleteInlinePolicy(key, name: name)
    }

    // MARK: managed policies

    /// False when a policy with that ARN exists.
    public func createManagedPolicy(_ policy: ManagedPolicyRecord) async throws -> Bool {
        try await store.createManagedPolicy(policy)
    }

    public func managedPolicy(arn: String) async throws -> ManagedPolicyRecord? {
        try await store.managedPolicy(arn: arn)
    }

    public func managedPolicies(account: String) async throws -> [ManagedPolicyRecord] {
        try await store.managedPolicies(account: account)
    }

    /// Deletes a customer managed policy attached to nothing (DeleteConflict otherwise).
    public func deleteManagedPolicy(arn: String) async throws {
        switch try await store.deleteManagedPolicyIfUnattached(arn: arn) {
        case .done: return
        case .notFound: throw DirectoryError.noSuchPolicy(arn: arn)
        case .inUse, .limitReached: throw DirectoryError.policyAttached(arn: arn)
        }
    }

    /// How many users, groups and roles a policy is attached to.
    public func attachmentCount(arn: String) async throws -> Int {
        try await store.attachmentCount(arn: arn)
    }

    /// The AWS managed policy with that ARN, if it is one (they are built in, never stored).
    public static func awsManagedPolicy(arn: String) -> ManagedPolicy? {
        ManagedPolicy.allCases.first { $0.arn == arn }
    }

    /// Attaches an AWS managed policy or an existing customer managed one to an existing entity,
    /// within ``attachedPoliciesPerEntity``. Idempotent.
    public func attachPolicy(_ key: IAMEntityKey, arn: String) async throws {
        let customer = Self.awsManagedPolicy(arn: arn) == nil
        switch try await store.attachPolicy(key, arn: arn, policyMustExist: customer, limit: Self.attachedPoliciesPerEntity) {
        case .done: return
        case .notFound:
            if try await store.entity(key) == nil { throw DirectoryError.noSuchEntity(key) }
            throw DirectoryError.noSuchPolicy(arn: arn)
        case .limitReached, .inUse: throw DirectoryError.attachedPolicyQuota(key.kind, limit: Self.attachedPoliciesPerEntity)
        }
    }

    /// False when the policy was not attached.
    public func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool {
        try await store.detachPolicy(key, arn: arn)
    }

    /// ARNs attached to an entity, sorted.
    public func attachedPolicies(_ key: IAMEntityKey) async throws -> [String] {
        try await store.attachedPolicies(key)
    }

    // MARK: group membership

    /// Adds an existing user to an existing group. Idempotent.
    public func addUser(_ user: String, toGroup group: String, account: String) async throws {
        switch try await store.addMember(user, toGroup: group, account: account, limit: Self.groupsPerUser) {
        case .done: return
        case .limitReached: throw DirectoryError.groupsPerUserQuota(limit: Self.groupsPerUser)
        case .notFound, .inUse:
            let groupKey = IAMEntityKey(.group, account, group)
            if try await store.entity(groupKey) == nil { throw DirectoryError.noSuchEntity(groupKey) }
            throw DirectoryError.noSuchEntity(IAMEntityKey(.user, account, user))
        }
    }

    /// False when the user was not a member.
    public func removeUser(_ user: String, fromGroup group: String, account: String) async throws -> Bool {
        try await store.removeUser(user, fromGroup: group, account: account)
    }

    /// The groups a user is in, by name.
    public func groups(ofUser user: String, account: String) async throws -> [IAMEntityRecord] {
        try await records(.group, account: account, names: try await store.groups(ofUser: user, account: account))
    }

    /// The members of a group, by name.
    public func users(inGroup group: String, account: String) async throws -> [IAMEntityRecord] {
        try await records(.user, account: account, names: try await store.users(inGroup: group, account: account))
    }

    private func records(_ kind: IAMEntityKind, account: String, names: [String]) async throws -> [IAMEntityRecord] {
        var out: [IAMEntityRecord] = []
        for n in names {
            if let r = try await store.entity(IAMEntityKey(kind, account, n)) { out.append(r) }
        }
        return out
    }

    // MARK: OpenID Connect providers

    /// False when a provider with that ARN exists.
    public func createOIDCProvider(_ provider: OIDCProviderRecord) async throws -> Bool {
        try await store.createOIDCProvider(provider)
    }

    public func oidcProvider(arn: String) async throws -> OIDCProviderRecord? {
        try await store.oidcProvider(arn: arn)
    }

    /// The account's providers, by ARN.
    public func oidcProviders(account: String) async throws -> [OIDCProviderRecord] {
        try await store.oidcProviders(account: account)
    }

    @discardableResult
    public func deleteOIDCProvider(arn: String) async throws -> Bool {
        try await store.deleteOIDCProvider(arn: arn)
    }
}
