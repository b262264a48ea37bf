import BerthCore
import BerthSupport

/// IAM users, groups, roles, their inline policies, managed policies and attachments, group memberships.
/// Entity names are unique per account and kind. The plain writes (`deleteEntity`, `putInlinePolicy`,
/// `attachPolicy`, `addUser`, `deleteManagedPolicy`) check nothing; the guarded ones (those returning an
/// ``IdentityWriteResult``) check IAM's rules — existence, quotas, DeleteConflict — and write in one
/// transaction, so two concurrent requests cannot both pass the check. Every write advances
/// `authorizationGeneration`.
public protocol IdentityMetadata: AuthorizationChangeTracking {
    /// Creates the entity; false when one of that kind and name exists in the account.
    func createEntity(_ entity: IAMEntityRecord) async throws -> Bool
    func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord?
    /// The account's entities of a kind, by name.
    func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord]
    /// Deletes the entity with its inline policies, attachments and memberships; false when unknown.
    @discardableResult
    func deleteEntity(_ key: IAMEntityKey) async throws -> Bool
    /// Deletes the entity only when nothing refers to it any more: no inline or attached policies and,
    /// for a user, no access keys (of its ARN) and no group memberships; for a group, no members.
    /// `.done`, `.notFound` or `.inUse`.
    func deleteEntityIfUnreferenced(_ key: IAMEntityKey) async throws -> IdentityWriteResult

    /// Inserts or replaces an inline policy.
    func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws
    /// Inserts or replaces an inline policy of an existing entity when the entity's inline policies
    /// together (this one replacing any of the same name) stay within `totalSizeLimit`, counted with
    /// ``InlinePolicyQuota/chargedSize(_:)``. `.done`, `.notFound` or `.limitReached`.
    func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String, totalSizeLimit: Int?) async throws -> IdentityWriteResult
    func inlinePolicy(_ key: IAMEntityKey, name: String) async throws -> String?
    /// Inline policies by name.
    func inlinePolicies(_ key: IAMEntityKey) async throws -> [(name: String, document: String)]
    @discardableResult
    func deleteInlinePolicy(_ key: IAMEntityKey, name: String) async throws -> Bool

    /// False when a policy with that ARN exists.
    func createManagedPolicy(_ policy: ManagedPolicyRecord) async throws -> Bool
    func managedPolicy(arn: String) async throws -> ManagedPolicyRecord?
    func managedPolicies(account: String) async throws -> [ManagedPolicyRecord]
    /// Deletes the policy; false when unknown.
    @discardableResult
    func deleteManagedPolicy(arn: String) async throws -> Bool
    /// Deletes the policy only when it is attached to nothing. `.done`, `.notFound` or `.inUse`.
    func deleteManagedPolicyIfUnattached(arn: String) async throws -> IdentityWriteResult

    /// Attaches a managed policy (customer or AWS managed) by ARN; idempotent.
    func attachPolicy(_ key: IAMEntityKey, arn: String) async throws
    /// Attaches a policy to an existing entity (idempotent). With `policyMustExist` the ARN must be a stored
    /// customer managed policy; with `limit`, the entity may have at most that many attached afterwards.
    /// `.done`, `.notFound` or `.limitReached`.
    func attachPolicy(_ key: IAMEntityKey, arn: String, policyMustExist: Bool, limit: Int?) async throws -> IdentityWriteResult
    @discardableResult
    func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool
    /// ARNs attached to an entity, sorted.
    func attachedPolicies(_ key: IAMEntityKey) async throws -> [String]
    /// How many entities a policy is attached to.
    func attachmentCount(arn: String) async throws -> Int

    /// Idempotent.
    func addUser(_ user: String, toGroup group: String, account: String) async throws
    /// Adds an existing user to an existing group (idempotent). With `limit`, the user may be in at most
    /// that many groups afterwards. `.done`, `.notFound` or `.limitReached`.
    func addMember(_ user: String, toGroup group: String, account: String, limit: Int?) async throws -> IdentityWriteResult
    @discardableResult
    func removeUser(_ user: String, fromGroup group: String, account: String) async throws -> Bool
    /// Group names of a user, sorted.
    func groups(ofUser user: String, account: String) async throws -> [String]
    /// User names of a group, sorted.
    func users(inGroup group: String, account: String) async throws -> [String]

    /// False when a provider with that ARN exists.
    func createOIDCProvider(_ provider: OIDCProviderRecord) async throws -> Bool
    func oidcProvider(arn: String) async throws -> OIDCProviderRecord?
    /// The account's providers, by ARN.
    func oidcProviders(account: String) async throws -> [OIDCProviderRecord]
    @discardableResult
    func deleteOIDCProvider(arn: String) async throws -> Bool
}

/// Where an account's ECR registry policy is kept (an account setting).
public enum RegistryPolicy {
    public static let settingName = "berth:REGISTRY_POLICY"
}
