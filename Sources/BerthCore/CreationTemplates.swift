/// Why Berth creates a repository by itself: ECR's `RCTAppliedFor` values, which a repository creation
/// template lists in `appliedFor`.
public enum RepositoryCreationPurpose: String, Sendable, Equatable, Hashable, Codable, CaseIterable {
    /// A repository that replication copies an image into.
    case replication = "REPLICATION"
    /// A repository a pull through the cache fills from its upstream.
    case pullThroughCache = "PULL_THROUGH_CACHE"
    /// A repository a push names before it exists.
    case createOnPush = "CREATE_ON_PUSH"

    /// The enum values in the order botocore's model lists them.
    public static let modelValues = ["REPLICATION", "PULL_THROUGH_CACHE", "CREATE_ON_PUSH"]
}

/// A repository creation template as stored (ECR `RepositoryCreationTemplate`): the settings a repository
/// Berth creates by itself gets when its name is under `prefix` (or any name, for `ROOT`).
public struct RepositoryCreationTemplateRecord: Sendable, Equatable, Codable {
    /// The registry's stored id (`RegistryID.storedValue`), as repositories are keyed.
    public var registryID: String
    /// The prefix without a trailing `/`, or `ROOT`.
    public var prefix: String
    public var description: String?
    /// `AES256`, `KMS` or `KMS_DSSE`.
    public var encryptionType: String
    /// The key ARN as given; nil (or empty) with `KMS`: the account's `alias/aws/ecr` key.
    public var kmsKey: String?
    public var resourceTags: [ResourceTag]
    public var imageTagMutability: TagMutability
    /// Wildcard filters, with `IMMUTABLE_WITH_EXCLUSION` and `MUTABLE_WITH_EXCLUSION` only.
    public var exclusionFilters: [String]
    /// The repository policy text; nil: none.
    public var repositoryPolicy: String?
    /// The lifecycle policy text; nil: none.
    public var lifecyclePolicy: String?
    public var appliedFor: [RepositoryCreationPurpose]
    public var customRoleARN: String?
    public var createdAt: Double
    public var updatedAt: Double

    public init(registryID: String, prefix: String, description: String? = nil, encryptionType: String = "AES256",
                kmsKey: String? = nil, resourceTags: [ResourceTag] = [], imageTagMutability: TagMutability = .mutable,
                exclusionFilters: [String] = [], repositoryPolicy: String? = nil, lifecyclePolicy: String? = nil,
                appliedFor: [RepositoryCreationPurpose], customRoleARN: String? = nil, createdAt: Double, updatedAt: Double) {
        self.registryID = registryID
        self.prefix = prefix
        self.description = description
        self.encryptionType = encryptionType
        self.kmsKey = kmsKey
        self.resourceTags = resourceTags
        self.imageTagMutability = imageTagMutability
        self.exclusionFilters = exclusionFilters
        self.repositoryPolicy = repositoryPolicy
        self.lifecyclePolicy = lifecyclePolicy
        self.appliedFor = appliedFor
        self.customRoleARN = customRoleARN
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// Whether the template covers a repository name: `ROOT` covers every name, any other prefix the names
    /// under `<prefix>/` (ECR: "there is always an assumed `/` applied to the end of the prefix").
    public func covers(_ name: String) -> Bool {
        prefix == CreationTemplates.root || (name.count > prefix.count + 1 && name.hasPrefix(prefix + "/"))
    }

    /// The settings a repository created through this template starts with.
    public var repositorySettings: RepositorySettings {
        var s = RepositorySettings(imageTagMutability: imageTagMutability, exclusionFilters: exclusionFilters,
                                   encryptionType: encryptionType, kmsKey: kmsKey.flatMap { $0.isEmpty ? nil : $0 },
                                   tags: resourceTags)
        s.policy = repositoryPolicy
        s.lifecyclePolicy = lifecyclePolicy
        return s
    }
}

/// The outcome of storing a new repository creation template.
public enum CreationTemplateInsert: Sendable, Equatable {
    case created
    case alreadyExists
    case limitExceeded
}

/// Why a repository creation template operation was refused (the ECR door maps each case to its `__type`).
public enum CreationTemplateError: Error, Sendable, Equatable {
    case alreadyExists(prefix: String, registry: String)
    case notFound(prefix: String, registry: String)
    case limitExceeded(Int)
}

/// Repository creation templates: prefixes and the choice of a template (pure).
public enum CreationTemplates {
    /// The prefix of the template that covers every repository no other template covers.
    public static let root = "ROOT"
    /// The most templates a registry keeps. ECR documents no quota for templates; this bound is Berth's.
    public static let maxTemplates = 1_000

    /// The template that gives a repository Berth creates for `purpose` its settings: among the templates
    /// listing `purpose` in `appliedFor`, the one with the longest prefix covering `name`, else `ROOT`;
    /// nil when none applies.
    public static func template(for name: String, purpose: RepositoryCreationPurpose,
                                among templates: [RepositoryCreationTemplateRecord]) -> RepositoryCreationTemplateRecord? {
        let eligible = templates.filter { $0.appliedFor.contains(purpose) && $0.covers(name) }
        if let longest = eligible.filter({ $0.prefix != root }).max(by: { $0.prefix.count < $1.prefix.count }) { return longest }
        return eligible.first { $0.prefix == root }
    }
}

/// Repository namespace prefixes as ECR's models write them (`Prefix`, `PullThroughCacheRuleRepositoryPrefix`):
/// `^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*\/?|ROOT)$`.
public enum RepositoryPrefix {
    /// The pattern as the models spell it, for error messages.
    public static let pattern = "^([a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(\\/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*\\/?|ROOT)$"

    /// `value` without its trailing `/` when it matches the pattern (`ROOT` as is); nil otherwise.
    public static func normalized(_ value: String) -> String? {
        if value == CreationTemplates.root { return value }
        var text = Substring(value)
        if text.hasSuffix("/") { text = text.dropLast() }
        let components = text.split(separator: "/", omittingEmptySubsequences: false)
        guard !components.isEmpty, components.allSatisfy(isComponent) else { return nil }
        return String(text)
    }

    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
    public static func isComponent(_ s: Substring) -> Bool {
        let bytes = Array(s.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var i = 0
        while i < bytes.count {
            if isAlnum(bytes[i]) { i += 1; continue }
            // A separator: `.`, `_`, `__` or a run of `-`, between alphanumerics.
            let start = i
            if bytes[i] == UInt8(ascii: "-") {
                while i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            } else if bytes[i] == UInt8(ascii: "_") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "_") { i += 1 }
            } else if bytes[i] == UInt8(ascii: ".") {
                i += 1
            } else {
                return false
            }
            guard i > start, i < bytes.count, isAlnum(bytes[i]) else { return false }
        }
        return true
    }

    static func isAlnum(_ b: UInt8) -> Bool { RepositoryName.isAlnum(b) }
}
