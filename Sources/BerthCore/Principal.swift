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

    public init(accountID: String, arn: String, accessKeyID: String) {
        self.accountID = accountID
        self.arn = arn
        self.accessKeyID = accessKeyID
    }

    public static func rootARN(_ account: String) -> String { "arn:aws:iam::\(account):root" }

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
        "arn:aws:ecr:\(region):\(account):repository/\(name)"
    }

    /// Parses `arn:aws:ecr:<region>:<account>:repository/<name>`.
    public static func parseRepository(_ arn: String) -> (region: String, account: String, name: String)? {
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", parts[1] == "aws", parts[2] == "ecr",
              parts[5].hasPrefix("repository/") else { return nil }
        let name = String(parts[5].dropFirst("repository/".count))
        guard AccountID.isValid(String(parts[4])), RepositoryName.isValid(name) else { return nil }
        return (String(parts[3]), String(parts[4]), name)
    }
}

/// The single point where every operation is authorized: `ecr:<Action>` on a resource ARN.
public protocol Authorizer: Sendable {
    /// Throws `BerthError.denied` when `principal` may not perform `action` on `resource`.
    func authorize(_ principal: Principal, action: String, resource: String) async throws
}

/// Until IAM users and policies exist: an account's root may do everything in its own account
/// and nothing in another's.
public struct AccountRootAuthorizer: Authorizer {
    public init() {}

    public func authorize(_ principal: Principal, action: String, resource: String) async throws {
        if resource == "*" { return }
        let account = resource.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard account.count >= 5, account[4] == principal.accountID, principal.arn == Principal.rootARN(principal.accountID) else {
            throw BerthError.denied(
                "User: \(principal.arn) is not authorized to perform: \(action) on resource: \(resource) because no resource-based policy allows the \(action) action")
        }
    }
}
