/// Which side of the evaluation a policy sits on.
public enum PolicyType: Sendable, Hashable {
    case identityBased
    case resourceBased

    /// The words AWS uses in access-denied messages.
    public var phrase: String {
        switch self {
        case .identityBased: "identity-based"
        case .resourceBased: "resource-based"
        }
    }
}

/// Points at the statement that decided a request.
public struct StatementReference: Sendable, Hashable {
    /// Identity-based or resource-based.
    public var policyType: PolicyType
    /// Index into the `identityPolicies` or `resourcePolicies` array passed to the evaluator.
    public var policyIndex: Int
    /// Index of the statement within its policy.
    public var statementIndex: Int
    /// The statement's `Sid`, if it has one.
    public var sid: String?

    public init(policyType: PolicyType, policyIndex: Int, statementIndex: Int, sid: String?) {
        self.policyType = policyType
        self.policyIndex = policyIndex
        self.statementIndex = statementIndex
        self.sid = sid
    }
}

/// Why a request is allowed.
public enum AllowReason: Sendable, Hashable {
    /// The root user acting in its own account ("the AWS account root user, which has full access").
    case accountRoot
    case identityPolicy(StatementReference)
    case resourcePolicy(StatementReference)
    /// Cross-account: both sides allowed.
    case identityAndResourcePolicies(identity: StatementReference, resource: StatementReference)
}

/// The outcome of evaluating a request.
public enum Decision: Sendable, Hashable {
    case allow(AllowReason)
    /// A `Deny` statement applied; it overrides every allow.
    case explicitDeny(StatementReference)
    /// Nothing allowed the request; the associated value names the policy type that lacked an allow.
    case implicitDeny(PolicyType)

    /// Whether the request may proceed.
    public var isAllowed: Bool {
        if case .allow = self { true } else { false }
    }

    /// AWS's access-denied wording, e.g. "User: arn:aws:iam::123456789012:user/x is not authorized to
    /// perform: ecr:BatchGetImage on resource: arn:… because no identity-based policy allows the
    /// ecr:BatchGetImage action"; `nil` when the request is allowed.
    public func accessDeniedMessage(for request: AccessRequest) -> String? {
        let head = "User: \(request.principal.displayName) is not authorized to perform: \(request.action) on resource: \(request.resource)"
        switch self {
        case .allow:
            return nil
        case let .explicitDeny(reference):
            let article = reference.policyType == .identityBased ? "an" : "a"
            return "\(head) with an explicit deny in \(article) \(reference.policyType.phrase) policy"
        case let .implicitDeny(type):
            return "\(head) because no \(type.phrase) policy allows the \(request.action) action"
        }
    }
}
