import BerthCore
import BerthSupport

/// The IAM entities policies attach to.
public enum IAMEntityKind: String, Sendable, CaseIterable {
    case user, group, role
}

/// An IAM user, group or role of an account.
public struct IAMEntityRecord: Sendable, Equatable {
    public var kind: IAMEntityKind
    public var accountID: String
    public var name: String
    /// `/` or `/division/`.
    public var path: String
    /// `AIDA…` (user), `AGPA…` (group) or `AROA…` (role).
    public var id: String
    public var createdAt: Double
    /// Roles only: the trust policy.
    public var assumeRolePolicy: String?
    /// Roles only: the longest session, in seconds (3600…43200).
    public var maxSessionDuration: Int?
    public var description: String?

    public init(kind: IAMEntityKind, accountID: String, name: String, path: String = "/", id: String, createdAt: Double,
                assumeRolePolicy: String? = nil, maxSessionDuration: Int? = nil, description: String? = nil) {
        self.kind = kind
        self.accountID = accountID
        self.name = name
        self.path = path
        self.id = id
        self.createdAt = createdAt
        self.assumeRolePolicy = assumeRolePolicy
        self.maxSessionDuration = maxSessionDuration
        self.description = description
    }

    /// `arn:aws:iam::<account>:<kind>/<path><name>`.
    public var arn: String { ARN.iam(account: accountID, type: kind.rawValue, path: path, name: name).description }
}

/// A customer managed policy (one version, `v1`).
public struct ManagedPolicyRecord: Sendable, Equatable {
    public var accountID: String
    public var name: String
    public var path: String
    /// `ANPA…`.
    public var id: String
    public var document: String
    public var description: String?
    public var createdAt: Double

    public init(accountID: String, name: String, path: String = "/", id: String, document: String,
                description: String? = nil, createdAt: Double) {
        self.accountID = accountID
        self.name = name
        self.path = path
        self.id = id
        self.document = document
        self.description = description
        self.createdAt = createdAt
    }

    /// `arn:aws:iam::<account>:policy/<path><name>`.
    public var arn: String { ARN.iam(account: accountID, type: "policy", path: path, name: name).description }
}

/// An IAM OpenID Connect identity provider: the issuer whose tokens `AssumeRoleWithWebIdentity` accepts.
public struct OIDCProviderRecord: Sendable, Equatable {
    public var accountID: String
    /// The issuer URL without `https://`, e.g. `token.actions.githubusercontent.com`.
    public var url: String
    /// The accepted audiences (`aud`).
    public var clientIDs: [String]
    /// Stored and returned; Berth verifies signatures with the configured JWKS instead.
    public var thumbprints: [String]
    public var createdAt: Double

    public init(accountID: String, url: String, clientIDs: [String] = [], thumbprints: [String] = [], createdAt: Double) {
        self.accountID = accountID
        self.url = url
        self.clientIDs = clientIDs
        self.thumbprints = thumbprints
        self.createdAt = createdAt
    }

    /// `arn:aws:iam::<account>:oidc-provider/<url>`.
    public var arn: String { Self.arn(account: accountID, url: url) }

    public static func arn(account: String, url: String) -> String { ARN.oidcProvider(account: account, url: url).description }
}

/// Names one user, group or role.
public struct IAMEntityKey: Sendable, Hashable {
    public var kind: IAMEntityKind
    public var accountID: String
    public var name: String
    public init(_ kind: IAMEntityKind, _ accountID: String, _ name: String) {
        self.kind = kind
        self.accountID = accountID
        self.name = name
    }
}

/// IAM users, groups, roles, their inline policies, managed policies and attachments, group memberships.
/// Entity names are unique per account and kind; callers check references (DeleteConflict) before deleting.
/// Every write advances `authorizationGeneration`.
public protocol IdentityMetadata: AuthorizationChangeTracking {
    /// Creates the entity; false when one of that kind and name exists in the account.
    func createEntity(_ entity: IAMEntityRecord) async throws -> Bool
    func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord?
    /// The account's entities of a kind, by name.
    func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord]
    /// Deletes the entity with its inline policies, attachments and memberships; false when unknown.
    @discardableResult
    func deleteEntity(_ key: IAMEntityKey) async throws -> Bool

    /// Inserts or replaces an inline policy.
    func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws
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

    /// Attaches a managed policy (customer or AWS managed) by ARN; idempotent.
    func attachPolicy(_ key: IAMEntityKey, arn: String) async throws
    @discardableResult
    func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool
    /// ARNs attached to an entity, sorted.
    func attachedPolicies(_ key: IAMEntityKey) async throws -> [String]
    /// How many entities a policy is attached to.
    func attachmentCount(arn: String) async throws -> Int

    /// Idempotent.
    func addUser(_ user: String, toGroup group: String, account: String) async throws
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
