import BerthSupport

/// The records of accounts and identities: what the directory (`BerthDirectory`) keeps and the stores
/// persist. Values only; the rules that write them live in `Directory`.

/// An account (registry id) known to this deployment.
public struct AccountRecord: Sendable, Equatable {
    public var id: String
    public var createdAt: Double
    public init(id: String, createdAt: Double) {
        self.id = id
        self.createdAt = createdAt
    }
}

/// An access key: the secret is stored sealed (encrypted with a key kept outside the database).
public struct AccessKeyRecord: Sendable, Equatable {
    public var accessKeyID: String
    public var accountID: String
    /// The principal the key belongs to, e.g. `arn:aws:iam::123456789012:root`.
    public var principalARN: String
    public var sealedSecret: String
    /// `Active` or `Inactive`.
    public var status: String
    public var createdAt: Double

    public init(accessKeyID: String, accountID: String, principalARN: String, sealedSecret: String,
                status: String = "Active", createdAt: Double) {
        self.accessKeyID = accessKeyID
        self.accountID = accountID
        self.principalARN = principalARN
        self.sealedSecret = sealedSecret
        self.status = status
        self.createdAt = createdAt
    }
}

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

/// Whether an access key may be used.
public enum AccessKeyStatus: String, Sendable, CaseIterable {
    case active = "Active"
    case inactive = "Inactive"
}

/// How many access keys an insert may find already there (checked in the same transaction as the insert).
public enum AccessKeyLimit: Sendable, Equatable {
    case unlimited
    /// At most this many keys for the new key's principal, the new one included.
    case perPrincipal(Int)
    /// At most this many keys in the new key's account, the new one included.
    case perAccount(Int)
}

/// IAM's inline-policy size quota counts every character of the documents but whitespace.
public enum InlinePolicyQuota {
    public static func chargedSize(_ document: String) -> Int {
        document.unicodeScalars.reduce(0) { $0 + ($1.properties.isWhitespace ? 0 : 1) }
    }
}

/// What a guarded identity write (check and write in one transaction) did.
public enum IdentityWriteResult: Sendable, Equatable {
    case done
    /// The entity (or a group member, or a customer managed policy) it needs does not exist.
    case notFound
    /// Still referenced (DeleteConflict): keys, policies, memberships or attachments remain.
    case inUse
    /// A quota would be exceeded.
    case limitReached
}
