/// An Amazon Resource Name, `arn:<partition>:<service>:<region>:<account>:<resource>`.
///
/// Parsed and formatted here so that no code builds or splits ARNs by hand. The resource part may itself
/// contain colons and slashes (`repository/team/app`, `assumed-role/Role/session`); parsing splits at the
/// first five colons only.
public struct ARN: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    public var partition: String
    public var service: String
    /// Empty for global services (IAM, STS, ECR Public).
    public var region: String
    /// A 12-digit account id, `aws` for AWS managed policies, or empty.
    public var account: String
    public var resource: String

    public init(partition: String = "aws", service: String, region: String = "", account: String, resource: String) {
        self.partition = partition
        self.service = service
        self.region = region
        self.account = account
        self.resource = resource
    }

    /// Parses `arn:…` with its six colon-separated parts (the last may contain colons); nil otherwise.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn" else { return nil }
        self.init(partition: String(parts[1]), service: String(parts[2]), region: String(parts[3]),
                  account: String(parts[4]), resource: String(parts[5]))
    }

    public var description: String { "arn:\(partition):\(service):\(region):\(account):\(resource)" }

    /// The resource part after `type/` (e.g. the repository name of `repository/team/app`), or nil when
    /// the resource is not of that type.
    public func resource(ofType type: String) -> Substring? {
        guard resource.utf8.count > type.utf8.count, resource.hasPrefix(type),
              resource.utf8[resource.utf8.index(resource.utf8.startIndex, offsetBy: type.utf8.count)] == UInt8(ascii: "/")
        else { return nil }
        return resource.dropFirst(type.count + 1)
    }
}

/// The ARNs Berth issues and authorizes on (IAM, STS, ECR and ECR Public, all in the `aws` partition).
/// Each is spelled here once; callers that need the text use `description`.
extension ARN {
    /// `arn:aws:iam::<account>:root`.
    public static func root(account: String) -> ARN {
        ARN(service: "iam", account: account, resource: "root")
    }

    /// An IAM entity or policy: `arn:aws:iam::<account>:<type><path><name>`, `type` being `user`, `group`,
    /// `role` or `policy` and `path` beginning and ending with `/`.
    public static func iam(account: String, type: String, path: String = "/", name: String) -> ARN {
        ARN(service: "iam", account: account, resource: "\(type)\(path)\(name)")
    }

    /// `arn:aws:iam::<account>:oidc-provider/<url>`.
    public static func oidcProvider(account: String, url: String) -> ARN {
        ARN(service: "iam", account: account, resource: "oidc-provider/\(url)")
    }

    /// A role session: `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    public static func assumedRole(account: String, role: String, session: String) -> ARN {
        ARN(service: "sts", account: account, resource: "assumed-role/\(role)/\(session)")
    }

    /// `arn:aws:ecr:<region>:<account>:repository/<name>` (`name` may be a pattern such as `*`).
    public static func ecrRepository(region: String, account: String, name: String) -> ARN {
        ARN(service: "ecr", region: region, account: account, resource: "repository/\(name)")
    }

    /// `arn:aws:ecr-public::<account>:repository/<name>`.
    public static func ecrPublicRepository(account: String, name: String) -> ARN {
        ARN(service: "ecr-public", account: account, resource: "repository/\(name)")
    }

    /// A private registry: `arn:aws:ecr:<region>:<account>:registry`.
    public static func ecrRegistry(region: String, account: String) -> ARN {
        ARN(service: "ecr", region: region, account: account, resource: "registry")
    }

    /// A public registry: `arn:aws:ecr-public::<account>:registry/<account>`.
    public static func ecrPublicRegistry(account: String) -> ARN {
        ARN(service: "ecr-public", account: account, resource: "registry/\(account)")
    }
}
