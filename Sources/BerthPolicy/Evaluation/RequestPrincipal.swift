import BerthSupport

/// Who makes a request, as policy evaluation sees it.
public struct RequestPrincipal: Sendable, Hashable {
    /// The type of principal; it decides the `aws:PrincipalType` value and how `Principal` matches.
    public enum Kind: Sendable, Hashable {
        /// The account root user, `arn:aws:iam::<account>:root`.
        case rootUser
        /// An IAM user, `arn:aws:iam::<account>:user/<path/name>`.
        case user
        /// A role session, `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
        case assumedRole
        /// A `GetFederationToken` session, `arn:aws:sts::<account>:federated-user/<name>`.
        case federatedUser
        /// An AWS service principal such as `codebuild.amazonaws.com`.
        case service
        /// An unauthenticated caller.
        case anonymous
    }

    /// What sort of principal this is.
    public let kind: Kind
    /// The principal's ARN; `nil` for services and anonymous callers.
    public let arn: String?
    /// `aws:PrincipalAccount`; `nil` for services and anonymous callers.
    public let accountID: String?
    /// For role sessions, the role's ARN (`aws:PrincipalArn`), with its path when known.
    public let roleARN: String?
    /// For service principals, the service name.
    public let serviceName: String?
    /// Principal tags (`aws:PrincipalTag/<key>`); keys compare case-insensitively.
    public var tags: [String: String]
    /// `aws:userid`, e.g. `AIDAJQABLZS4A3QDU576Q` or `AROA…:session`; the account ID for the root user.
    public var userID: String?
    /// For web-identity or SAML sessions, the provider a `Federated` principal names.
    public var federatedProvider: String?

    private init(
        kind: Kind, arn: String?, accountID: String?, roleARN: String? = nil, serviceName: String? = nil,
        tags: [String: String] = [:], userID: String? = nil
    ) {
        self.kind = kind
        self.arn = arn
        self.accountID = accountID
        self.roleARN = roleARN
        self.serviceName = serviceName
        self.tags = tags
        self.userID = userID
    }

    /// Reads a principal from its ARN (root, user, assumed-role session or federated user); `nil` if it is none of those.
    public init?(arn: String, tags: [String: String] = [:], userID: String? = nil) {
        guard let parsed = ARN(arn), parsed.region.isEmpty, parsed.account.utf8.count == 12,
              parsed.account.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let account = parsed.account
        let resource = parsed.resource
        switch (parsed.service, resource) {
        case ("iam", "root"):
            self.init(kind: .rootUser, arn: arn, accountID: account, tags: tags, userID: userID ?? account)
        case ("iam", _) where resource.hasPrefix("user/") && resource.count > 5:
            self.init(kind: .user, arn: arn, accountID: account, tags: tags, userID: userID)
        case ("sts", _) where resource.hasPrefix("assumed-role/"):
            let pieces = resource.split(separator: "/", omittingEmptySubsequences: false)
            guard pieces.count == 3, !pieces[1].isEmpty, !pieces[2].isEmpty else { return nil }
            self.init(
                kind: .assumedRole, arn: arn, accountID: account,
                roleARN: ARN(partition: parsed.partition, service: "iam", account: account, resource: "role/\(pieces[1])").description,
                tags: tags, userID: userID)
        case ("sts", _) where resource.hasPrefix("federated-user/") && resource.count > 15:
            self.init(kind: .federatedUser, arn: arn, accountID: account, tags: tags, userID: userID)
        default:
            return nil
        }
    }

    /// The root user of `account`.
    public static func root(account: String) -> RequestPrincipal {
        RequestPrincipal(kind: .rootUser, arn: ARN.root(account: account).description, accountID: account, userID: account)
    }

    /// The IAM user `name` (with an optional `/path/`) in `account`.
    public static func user(account: String, name: String, path: String = "/", tags: [String: String] = [:]) -> RequestPrincipal {
        RequestPrincipal(kind: .user, arn: ARN.iam(account: account, type: "user", path: path, name: name).description,
                         accountID: account, tags: tags)
    }

    /// A session `sessionName` of the role `roleName` (with an optional `/path/`) in `account`.
    public static func assumedRole(
        account: String, roleName: String, sessionName: String, path: String = "/", tags: [String: String] = [:]
    ) -> RequestPrincipal {
        RequestPrincipal(
            kind: .assumedRole, arn: ARN.assumedRole(account: account, role: roleName, session: sessionName).description,
            accountID: account, roleARN: ARN.iam(account: account, type: "role", path: path, name: roleName).description, tags: tags)
    }

    /// An AWS service acting as itself, e.g. `replication.ecr.amazonaws.com`.
    public static func service(_ name: String) -> RequestPrincipal {
        RequestPrincipal(kind: .service, arn: nil, accountID: nil, serviceName: name)
    }

    /// An unauthenticated caller.
    public static let anonymous = RequestPrincipal(kind: .anonymous, arn: nil, accountID: nil)

    /// Whether this is an account's root user.
    public var isRoot: Bool { kind == .rootUser }

    /// `aws:PrincipalArn`: "For IAM roles, the request context returns the ARN of the role".
    public var principalARN: String? { kind == .assumedRole ? roleARN : arn }

    /// `aws:username`: present only for IAM users.
    public var username: String? {
        guard kind == .user, let arn else { return nil }
        return arn.split(separator: "/").last.map(String.init)
    }

    /// `aws:PrincipalType`.
    public var principalType: String {
        switch kind {
        case .rootUser: "Account"
        case .user: "User"
        case .assumedRole: "AssumedRole"
        case .federatedUser: "FederatedUser"
        case .service: "Service"
        case .anonymous: "Anonymous"
        }
    }

    /// How the caller is named in access-denied messages.
    public var displayName: String { arn ?? serviceName ?? "anonymous" }

    /// The identities a `NotPrincipal` must all name to exempt this caller: account, role, session / user.
    var identityChain: [ChainLink] {
        switch kind {
        case .rootUser: [.account(accountID ?? "")]
        case .user, .federatedUser: [.account(accountID ?? ""), .arn(arn ?? "")]
        case .assumedRole: [.account(accountID ?? ""), .arn(roleARN ?? ""), .arn(arn ?? "")]
        case .service: [.service(serviceName ?? "")]
        case .anonymous: [.anonymous]
        }
    }

    enum ChainLink: Equatable {
        case account(String)
        case arn(String)
        case service(String)
        case anonymous
    }
}
