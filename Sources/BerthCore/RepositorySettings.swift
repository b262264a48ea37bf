import BerthSupport

/// Per-repository settings that ECR exposes (tag mutability, scanning, encryption, resource tags).
public struct RepositorySettings: Sendable, Equatable, Codable {
    public var imageTagMutability: TagMutability
    /// Wildcard filters (`*` matches any run of characters) that flip the mutability of matching tags.
    public var exclusionFilters: [String]
    public var scanOnPush: Bool
    /// `AES256`, `KMS` or `KMS_DSSE`.
    public var encryptionType: String
    public var kmsKey: String?
    public var tags: [ResourceTag]
    /// ECR Public catalog data (gallery description, about and usage text, platforms, logo).
    public var catalog: PublicCatalogData? = nil
    /// The repository policy (ECR `SetRepositoryPolicy`), as the JSON text it was set with.
    public var policy: String? = nil
    /// The lifecycle policy (ECR `PutLifecyclePolicy`), as the JSON text it was set with.
    public var lifecyclePolicy: String? = nil
    /// When the lifecycle policy was last applied (ECR's `lastEvaluatedAt`), seconds since 1970.
    public var lifecycleEvaluatedAt: Double? = nil

    public init(imageTagMutability: TagMutability = .mutable, exclusionFilters: [String] = [], scanOnPush: Bool = false,
                encryptionType: String = "AES256", kmsKey: String? = nil, tags: [ResourceTag] = []) {
        self.imageTagMutability = imageTagMutability
        self.exclusionFilters = exclusionFilters
        self.scanOnPush = scanOnPush
        self.encryptionType = encryptionType
        self.kmsKey = kmsKey
        self.tags = tags
    }

    /// Whether an existing `tag` may not be moved to another image.
    public func isImmutable(tag: String) -> Bool {
        switch imageTagMutability {
        case .immutable: return true
        case .immutableWithExclusion: return !exclusionFilters.contains { WildcardPattern.glob($0, questionMark: false).matches(tag) }
        case .mutableWithExclusion: return exclusionFilters.contains { WildcardPattern.glob($0, questionMark: false).matches(tag) }
        case .mutable: return false
        }
    }
}

/// ECR's image tag mutability. Stored in the settings JSON as its raw value (the same text ECR uses).
public enum TagMutability: String, Sendable, Equatable, Codable, CaseIterable {
    case mutable = "MUTABLE"
    case immutable = "IMMUTABLE"
    case immutableWithExclusion = "IMMUTABLE_WITH_EXCLUSION"
    case mutableWithExclusion = "MUTABLE_WITH_EXCLUSION"

    /// Whether the setting needs exclusion filters (and only then allows them).
    public var hasExclusions: Bool { self == .immutableWithExclusion || self == .mutableWithExclusion }
}

/// A resource tag (`Key`/`Value`), as on AWS resources.
public struct ResourceTag: Sendable, Equatable, Codable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// What ECR Public shows about a public repository in its gallery (`RepositoryCatalogData`).
public struct PublicCatalogData: Sendable, Equatable, Codable {
    public var description: String?
    public var architectures: [String]?
    public var operatingSystems: [String]?
    public var aboutText: String?
    public var usageText: String?
    /// The logo, base64 (at most 512,000 bytes decoded), served at `logoUrl`.
    public var logoBase64: String?

    public init(description: String? = nil, architectures: [String]? = nil, operatingSystems: [String]? = nil,
                aboutText: String? = nil, usageText: String? = nil, logoBase64: String? = nil) {
        self.description = description
        self.architectures = architectures
        self.operatingSystems = operatingSystems
        self.aboutText = aboutText
        self.usageText = usageText
        self.logoBase64 = logoBase64
    }
}

/// ECR Public registries: one per account, addressed by an alias as `public.ecr.aws/<alias>` is.
public enum PublicRegistry {
    /// The account setting that keeps a public registry's display name (`PutRegistryCatalogData`).
    public static let displayNameSetting = "PUBLIC_REGISTRY_DISPLAY_NAME"

    /// An account's registry alias: `r` + the account id (the alias grammar needs a leading letter).
    public static func alias(of account: String) -> String { "r" + account }

    /// The account an alias names.
    public static func account(ofAlias alias: String) -> String? {
        guard alias.hasPrefix("r") else { return nil }
        let id = String(alias.dropFirst())
        return AccountID.isValid(id) ? id : nil
    }

    /// Parses `arn:aws:ecr-public::<account>:repository/<name>`.
    public static func parseRepositoryARN(_ arn: String) -> (account: String, name: String)? {
        guard let parsed = ARN(arn), parsed.service == "ecr-public" else { return nil }
        return parsed.repository
    }
}

/// The ECR account settings (`PutAccountSetting`/`GetAccountSetting`), with their allowed values and
/// defaults. The values are kept as ECR's text, which is what the API reads and writes.
public enum AccountSetting: String, Sendable, Equatable, CaseIterable {
    case basicScanTypeVersion = "BASIC_SCAN_TYPE_VERSION"
    case registryPolicyScope = "REGISTRY_POLICY_SCOPE"
    case blobMounting = "BLOB_MOUNTING"

    public var values: [String] {
        switch self {
        case .basicScanTypeVersion: return ["AWS_NATIVE", "CLAIR"]
        case .registryPolicyScope: return ["V1", "V2"]
        case .blobMounting: return BlobMounting.values
        }
    }

    public var defaultValue: String {
        switch self {
        case .basicScanTypeVersion: return "AWS_NATIVE"
        case .registryPolicyScope: return "V2"
        case .blobMounting: return BlobMounting.defaultValue
        }
    }
}

/// The ECR account setting `BLOB_MOUNTING`: whether a cross-repository mount may link a blob that
/// another repository of the same registry holds. `DISABLED` turns every mount into a normal upload.
public enum BlobMounting {
    public static let settingName = "BLOB_MOUNTING"
    public static let enabled = "ENABLED"
    public static let disabled = "DISABLED"
    public static let values = [enabled, disabled]
    /// Berth mounts unless the account turns it off.
    public static let defaultValue = enabled

}
