/// A pull through cache rule as stored (ECR `PullThroughCacheRule`): repositories named
/// `<ecrRepositoryPrefix>/<name>` are filled from `<upstreamRegistryUrl>/<upstreamRepositoryPrefix>/<name>`.
public struct PullThroughCacheRuleRecord: Sendable, Equatable, Codable {
    /// The account whose registry holds the rule.
    public var registryID: String
    /// The prefix without a trailing `/`, or `ROOT`.
    public var ecrRepositoryPrefix: String
    /// As given (`registry-1.docker.io`, `https://ghcr.io`, `http://127.0.0.1:5000`).
    public var upstreamRegistryURL: String
    /// ECR's `UpstreamRegistry` enum value (`docker-hub`, `quay`, …), or nil for any other OCI registry.
    public var upstreamRegistry: String?
    /// The upstream prefix without a trailing `/`, or `ROOT`.
    public var upstreamRepositoryPrefix: String
    /// A Secrets Manager ARN (`…:secret:ecr-pullthroughcache/…`) holding `username` and `accessToken`.
    public var credentialARN: String?
    public var customRoleARN: String?
    public var createdAt: Double
    public var updatedAt: Double

    public init(registryID: String, ecrRepositoryPrefix: String, upstreamRegistryURL: String, upstreamRegistry: String?,
                upstreamRepositoryPrefix: String, credentialARN: String?, customRoleARN: String?, createdAt: Double, updatedAt: Double) {
        self.registryID = registryID
        self.ecrRepositoryPrefix = ecrRepositoryPrefix
        self.upstreamRegistryURL = upstreamRegistryURL
        self.upstreamRegistry = upstreamRegistry
        self.upstreamRepositoryPrefix = upstreamRepositoryPrefix
        self.credentialARN = credentialARN
        self.customRoleARN = customRoleARN
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The outcome of storing a new pull through cache rule.
public enum PullThroughCacheRuleInsert: Sendable, Equatable {
    case created
    case alreadyExists
    case limitExceeded
}

/// A Secrets Manager secret as stored; values are sealed (``StoredSecretVersion``).
public struct StoredSecret: Sendable, Equatable, Codable {
    public var account: String
    public var name: String
    public var arn: String
    public var description: String?
    public var kmsKeyID: String?
    public var createdAt: Double
    public var lastChangedAt: Double
    public var lastAccessedAt: Double?
    /// When DeleteSecret was called; the secret is then removed at `deletionDate`.
    public var deletedAt: Double?
    public var deletionDate: Double?
    public var tags: [ResourceTag]
    /// Every version still carrying a staging label, oldest first.
    public var versions: [StoredSecretVersion]

    public init(account: String, name: String, arn: String, description: String?, kmsKeyID: String?, createdAt: Double,
                lastChangedAt: Double, lastAccessedAt: Double? = nil, deletedAt: Double? = nil, deletionDate: Double? = nil,
                tags: [ResourceTag], versions: [StoredSecretVersion]) {
        self.account = account
        self.name = name
        self.arn = arn
        self.description = description
        self.kmsKeyID = kmsKeyID
        self.createdAt = createdAt
        self.lastChangedAt = lastChangedAt
        self.lastAccessedAt = lastAccessedAt
        self.deletedAt = deletedAt
        self.deletionDate = deletionDate
        self.tags = tags
        self.versions = versions
    }
}

/// One version of a secret: its value sealed at rest (a `SecretBox` string bound to the secret's ARN and
/// the version id), and its staging labels (`AWSCURRENT`, `AWSPREVIOUS`, …).
public struct StoredSecretVersion: Sendable, Equatable, Codable {
    public var id: String
    public var sealedString: String?
    /// The sealed base64 of a binary value.
    public var sealedBinary: String?
    public var stages: [String]
    public var createdAt: Double

    public init(id: String, sealedString: String?, sealedBinary: String?, stages: [String], createdAt: Double) {
        self.id = id
        self.sealedString = sealedString
        self.sealedBinary = sealedBinary
        self.stages = stages
        self.createdAt = createdAt
    }
}
