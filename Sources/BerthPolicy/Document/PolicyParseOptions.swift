/// Whether a policy is attached to an identity or to a resource.
public enum PolicyKind: Sendable, Hashable {
    /// Attached to a user, group or role: no `Principal`, `Resource` required.
    case identity
    /// Attached to a repository or registry: `Principal` required, `Resource` optional.
    case resource
}

/// The rules a policy document is validated against; the presets match the documented quotas.
public struct PolicyParseOptions: Sendable, Hashable {
    /// How a document's size is measured against ``maximumSize``.
    public enum SizeCounting: Sendable, Hashable {
        /// IAM: "IAM does not count white space when calculating the size of a policy".
        case nonWhitespaceCharacters
        /// API length constraints such as ECR's `policyText` (maximum length 10240).
        case allCharacters
    }

    /// Identity or resource policy.
    public var kind: PolicyKind
    /// The size quota, or `nil` for none.
    public var maximumSize: Int?
    /// How ``maximumSize`` is measured.
    public var sizeCounting: SizeCounting
    /// IAM managed policies refuse documents older than `2012-10-17`.
    public var requiresCurrentVersion: Bool
    /// IAM: documents may hold only tab, LF, CR and U+0020–U+00FF.
    public var restrictsCharacters: Bool
    /// IAM: `Sid` must match `[0-9A-Za-z]*`; resource policies such as ECR's allow spaces.
    public var requiresAlphanumericSid: Bool
    /// IAM: "Statement IDs (SID) in a single policy must be unique."
    public var requiresUniqueSid: Bool
    /// Deepest JSON nesting accepted; the grammar itself never needs more than six levels.
    public var maximumNestingDepth: Int
    /// Hard cap on the raw text, whitespace included, checked before parsing.
    public var maximumDocumentLength: Int

    public init(
        kind: PolicyKind,
        maximumSize: Int? = nil,
        sizeCounting: SizeCounting = .nonWhitespaceCharacters,
        requiresCurrentVersion: Bool = false,
        restrictsCharacters: Bool = false,
        requiresAlphanumericSid: Bool = false,
        requiresUniqueSid: Bool = false,
        maximumNestingDepth: Int = 16,
        maximumDocumentLength: Int = 131_072
    ) {
        self.kind = kind
        self.maximumSize = maximumSize
        self.sizeCounting = sizeCounting
        self.requiresCurrentVersion = requiresCurrentVersion
        self.restrictsCharacters = restrictsCharacters
        self.requiresAlphanumericSid = requiresAlphanumericSid
        self.requiresUniqueSid = requiresUniqueSid
        self.maximumNestingDepth = maximumNestingDepth
        self.maximumDocumentLength = maximumDocumentLength
    }

    private static func iam(_ size: Int, currentVersion: Bool = false) -> PolicyParseOptions {
        PolicyParseOptions(
            kind: .identity, maximumSize: size, sizeCounting: .nonWhitespaceCharacters,
            requiresCurrentVersion: currentVersion, restrictsCharacters: true,
            requiresAlphanumericSid: true, requiresUniqueSid: true)
    }

    /// Customer managed policy: 6,144 characters, whitespace not counted, version 2012-10-17.
    public static let iamManagedPolicy = iam(6_144, currentVersion: true)
    /// Inline policies of a user: 2,048 characters in total, whitespace not counted.
    public static let iamInlineUserPolicy = iam(2_048)
    /// Inline policies of a role: 10,240 characters in total, whitespace not counted.
    public static let iamInlineRolePolicy = iam(10_240)
    /// Inline policies of a group: 5,120 characters in total, whitespace not counted.
    public static let iamInlineGroupPolicy = iam(5_120)
    /// Any identity policy, no size quota.
    public static let identity = PolicyParseOptions(kind: .identity)
    /// Any resource policy, no size quota.
    public static let resource = PolicyParseOptions(kind: .resource)
    /// ECR `SetRepositoryPolicy`: `policyText` of at most 10,240 characters.
    public static let ecrRepositoryPolicy = PolicyParseOptions(
        kind: .resource, maximumSize: 10_240, sizeCounting: .allCharacters)
    /// ECR `PutRegistryPolicy`: same format and, as far as documented, the same length.
    public static let ecrRegistryPolicy = PolicyParseOptions(
        kind: .resource, maximumSize: 10_240, sizeCounting: .allCharacters)
}
