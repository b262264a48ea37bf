import BerthSupport

/// Who is making a request, once authenticated.
public struct Principal: Sendable, Hashable {
    /// The account the principal belongs to.
    public let accountID: String
    /// e.g. `arn:aws:iam::123456789012:root`.
    public let arn: String
    /// The access key the request (or the token it carries) was made with.
    public let accessKeyID: String
    /// When the registry token that authenticated this request expires, if one did.
    public var tokenExpiry: Double? = nil
    /// `aws:userid`: the user's `AIDA…` id, `AROA…:<session>` for a role session; nil for the root.
    public var userID: String? = nil
    /// The session token of temporary (`ASIA…`) credentials, when the request carried one.
    public var sessionToken: String? = nil
    /// When temporary credentials expire.
    public var sessionExpiry: Double? = nil
    /// Facts about the request this principal was authenticated on (`aws:SourceIp`, `aws:SecureTransport`).
    public var sourceIP: String? = nil
    public var secureTransport: Bool? = nil
    /// The region the request addressed: its SigV4 credential scope, or the region bound into the registry
    /// token it carried (nil: a token from before regions, or no region named — the default region).
    public var region: String? = nil

    public init(accountID: String, arn: String, accessKeyID: String) {
        self.accountID = accountID
        self.arn = arn
        self.accessKeyID = accessKeyID
    }

    public static func rootARN(_ account: String) -> String { ARN.root(account: account).description }

    /// What sort of identity this is, read from its ARN.
    public enum Kind: Sendable, Hashable {
        case root
        /// An IAM user (`arn:aws:iam::<account>:user/<path><name>`).
        case user(name: String)
        /// A role session (`arn:aws:sts::<account>:assumed-role/<role>/<session>`).
        case assumedRole(role: String, session: String)
        case unknown
    }

    public var kind: Kind {
        if arn == Self.rootARN(accountID) { return .root }
        guard let parsed = ARN(arn), parsed.account == accountID else { return .unknown }
        let resource = parsed.resource
        if parsed.service == "iam", resource.hasPrefix("user/"), let name = resource.split(separator: "/").last {
            return .user(name: String(name))
        }
        if parsed.service == "sts", resource.hasPrefix("assumed-role/") {
            let pieces = resource.split(separator: "/", omittingEmptySubsequences: false)
            if pieces.count == 3, !pieces[1].isEmpty, !pieces[2].isEmpty {
                return .assumedRole(role: String(pieces[1]), session: String(pieces[2]))
            }
        }
        return .unknown
    }

    public var isRoot: Bool { kind == .root }

    /// Principals are the same identity whatever token carried them.
    public static func == (a: Principal, b: Principal) -> Bool {
        a.accountID == b.accountID && a.arn == b.arn && a.accessKeyID == b.accessKeyID
    }

    public func hash(into h: inout Hasher) {
        h.combine(accountID)
        h.combine(arn)
        h.combine(accessKeyID)
    }
}

/// ARNs of the resources Berth authorizes on.
public enum ResourceARN {
    public static func repository(region: String, account: String, name: String) -> String {
        ARN.ecrRepository(region: region, account: account, name: name).description
    }

    /// Parses `arn:aws:ecr:<region>:<account>:repository/<name>`.
    public static func parseRepository(_ arn: String) -> (region: String, account: String, name: String)? {
        guard let parsed = ARN(arn), parsed.service == "ecr", let repository = parsed.repository else { return nil }
        return (parsed.region, repository.account, repository.name)
    }
}

/// Request facts an authorization may depend on beyond the principal (condition keys).
public struct AuthorizationContext: Sendable, Equatable {
    /// `aws:RequestTag/<key>` / `aws:TagKeys`; nil when the request carries no tags.
    public var requestTags: [String: String]?
    /// Service-specific condition keys with one value (`kms:CallerAccount`, `kms:EncryptionContext:<key>`).
    public var values: [String: String]
    /// Service-specific condition keys with a set of values (`kms:EncryptionContextKeys`).
    public var valueSets: [String: [String]]
    public init(requestTags: [String: String]? = nil, values: [String: String] = [:], valueSets: [String: [String]] = [:]) {
        self.requestTags = requestTags
        self.values = values
        self.valueSets = valueSets
    }
}

/// The single point where every operation is authorized: `ecr:<Action>` on a resource ARN.
public protocol Authorizer: Sendable {
    /// Throws `BerthError.denied` when `principal` may not perform `action` on `resource`.
    func authorize(_ principal: Principal, action: String, resource: String) async throws
    /// The same, with request facts for condition keys; by default they are ignored.
    func authorize(_ principal: Principal, action: String, resource: String, context: AuthorizationContext) async throws
    /// The same on a resource that carries its own policy (a KMS key policy).
    func authorize(_ principal: Principal, action: String, resource: String, keyPolicy: String,
                   context: AuthorizationContext) async throws
}

extension Authorizer {
    public func authorize(_ principal: Principal, action: String, resource: String, context: AuthorizationContext) async throws {
        try await authorize(principal, action: action, resource: resource)
    }

    /// Authorizes on a resource whose own policy is given (a KMS key policy): that policy decides, and
    /// identity policies count only where it delegates to the account (see `PolicyAuthorizer`). By
    /// default the key policy is ignored and the plain rule of the authorizer applies.
    public func authorize(_ principal: Principal, action: String, resource: String, keyPolicy: String,
                          context: AuthorizationContext) async throws {
        try await authorize(principal, action: action, resource: resource, context: context)
    }
}

/// Until IAM users and policies exist: an account's root may do everything in its own account
/// and nothing in another's.
public struct AccountRootAuthorizer: Authorizer {
    public init() {}

    public func authorize(_ principal: Principal, action: String, resource: String) async throws {
        if resource == "*" { return }
        guard ARN(resource)?.account == principal.accountID, principal.arn == Principal.rootARN(principal.accountID) else {
            throw BerthError.denied(
                "User: \(principal.arn) is not authorized to perform: \(action) on resource: \(resource) because no resource-based policy allows the \(action) action")
        }
    }
}
