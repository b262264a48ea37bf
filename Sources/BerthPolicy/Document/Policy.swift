/// The policy language version; only `2012-10-17` substitutes policy variables.
public enum PolicyVersion: String, Sendable, Hashable {
    case v2008_10_17 = "2008-10-17"
    case v2012_10_17 = "2012-10-17"
}

/// A validated IAM policy document.
public struct Policy: Sendable, Hashable {
    /// `nil` when the document has no `Version`; it is then read as `2008-10-17`.
    public var version: PolicyVersion?
    /// The optional `Id` element.
    public var id: String?
    /// The statements, in document order.
    public var statements: [Statement]
    /// Whether this is an identity or a resource policy.
    public var kind: PolicyKind

    public init(version: PolicyVersion? = .v2012_10_17, id: String? = nil, statements: [Statement], kind: PolicyKind) {
        self.version = version
        self.id = id
        self.statements = statements
        self.kind = kind
    }

    /// Whether `${…}` policy variables are substituted ("Variables were introduced in version 2012-10-17").
    public var supportsPolicyVariables: Bool { version == .v2012_10_17 }
}

/// `Allow` or `Deny`.
public enum Effect: String, Sendable, Hashable {
    case allow = "Allow"
    case deny = "Deny"
}

/// One statement of a policy.
public struct Statement: Sendable, Hashable {
    /// Which actions a statement covers.
    public enum Actions: Sendable, Hashable {
        case actions([String])
        case notActions([String])
    }

    /// Which resources a statement covers.
    public enum Resources: Sendable, Hashable {
        /// A resource-policy statement without `Resource`: the resource the policy is attached to.
        case attachedResource
        case resources([String])
        case notResources([String])
    }

    /// Which principals a resource-policy statement covers.
    public enum Principals: Sendable, Hashable {
        case principal(PrincipalSet)
        case notPrincipal(PrincipalSet)
    }

    /// The optional statement ID.
    public var sid: String?
    /// `Allow` or `Deny`.
    public var effect: Effect
    /// `nil` in identity policies.
    public var principals: Principals?
    /// `Action` or `NotAction`.
    public var actions: Actions
    /// `Resource`, `NotResource`, or neither (resource policies).
    public var resources: Resources
    /// Every condition must hold (operators and keys are ANDed).
    public var conditions: [Condition]

    public init(
        sid: String? = nil, effect: Effect, principals: Principals? = nil, actions: Actions,
        resources: Resources, conditions: [Condition] = []
    ) {
        self.sid = sid
        self.effect = effect
        self.principals = principals
        self.actions = actions
        self.resources = resources
        self.conditions = conditions
    }
}

/// The principals named by a `Principal` or `NotPrincipal` element.
public struct PrincipalSet: Sendable, Hashable {
    /// One entry of the `AWS` list.
    public enum AWSPrincipal: Sendable, Hashable {
        /// `"*"`: everyone, anonymous included.
        case anyone
        /// `"123456789012"` or `arn:aws:iam::123456789012:root`: the account, and so every principal in it.
        case account(String)
        /// A user, role, assumed-role session or federated-user ARN.
        case arn(String)
    }

    /// `"Principal": "*"`.
    public var isWildcard: Bool
    /// The `AWS` entries.
    public var aws: [AWSPrincipal]
    /// The `Service` entries, e.g. `codebuild.amazonaws.com`.
    public var services: [String]
    /// The `Federated` entries (identity providers).
    public var federated: [String]

    public init(isWildcard: Bool = false, aws: [AWSPrincipal] = [], services: [String] = [], federated: [String] = []) {
        self.isWildcard = isWildcard
        self.aws = aws
        self.services = services
        self.federated = federated
    }

    /// `"Principal": "*"`.
    public static let anyone = PrincipalSet(isWildcard: true)
}
