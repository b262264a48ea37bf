/// AWS's documented evaluation logic for identity-based and resource-based policies.
///
/// - An explicit `Deny` in any applicable policy wins.
/// - The root user has full access in its own account; identity policies do not apply to it, but a
///   resource policy's `Deny` does.
/// - Same account: an `Allow` in an identity policy *or* in a resource policy suffices. A resource
///   policy naming the caller directly (its ARN, its role's ARN, `*`) grants on its own; naming only
///   the caller's account delegates to that account, so an identity policy must still allow.
/// - Cross account: the caller's identity policy *and* a resource policy must both allow.
/// - Anonymous callers and service principals have no identity policies; only a resource policy can allow them.
///
/// Permissions boundaries, session policies and SCPs are not modelled.
public enum PolicyEngine {
    /// Decides `request` against the caller's identity policies and the resource's policies
    /// (repository policy, registry policy).
    public static func evaluate(
        _ request: AccessRequest, identityPolicies: [Policy], resourcePolicies: [Policy]
    ) -> Decision {
        let principal = request.principal
        let identity = identitySide(request, identityPolicies)
        if let deny = identity.deny { return .explicitDeny(deny) }
        let identityAllow = identity.allow
        let resource = resourceSide(request, resourcePolicies)
        if let deny = resource.deny { return .explicitDeny(deny) }
        let resourceAllow = resource.allow

        switch principal.kind {
        case .anonymous, .service:
            if let (reference, _) = resourceAllow { return .allow(.resourcePolicy(reference)) }
            return .implicitDeny(.resourceBased)
        default:
            break
        }

        if request.isSameAccount {
            if principal.isRoot { return .allow(.accountRoot) }
            if let identityAllow { return .allow(.identityPolicy(identityAllow)) }
            if let (reference, how) = resourceAllow, how == .direct { return .allow(.resourcePolicy(reference)) }
            return .implicitDeny(.identityBased)
        }

        // Cross account: the trusted account must allow (its root user always does), and so must the resource.
        guard let (resourceReference, _) = resourceAllow else { return .implicitDeny(.resourceBased) }
        if principal.isRoot { return .allow(.resourcePolicy(resourceReference)) }
        guard let identityAllow else { return .implicitDeny(.identityBased) }
        return .allow(.identityAndResourcePolicies(identity: identityAllow, resource: resourceReference))
    }

    /// The caller's identity policies: the first `Deny` that applies, else the first `Allow`.
    /// "Identity-based policies are attached to an IAM identity"; the root user, services and
    /// anonymous callers have none.
    static func identitySide(_ request: AccessRequest, _ policies: [Policy]) -> (deny: StatementReference?, allow: StatementReference?) {
        let kind = request.principal.kind
        guard kind != .rootUser, kind != .service, kind != .anonymous else { return (nil, nil) }
        var allow: StatementReference?
        for (p, policy) in policies.enumerated() {
            for (s, statement) in policy.statements.enumerated() {
                guard case .applies = statement.match(request, in: policy) else { continue }
                let reference = StatementReference(policyType: .identityBased, policyIndex: p, statementIndex: s, sid: statement.sid)
                if statement.effect == .deny { return (reference, nil) }
                if allow == nil { allow = reference }
            }
        }
        return (nil, allow)
    }

    /// The resource's policies: the first `Deny` that applies, else the strongest `Allow` (naming the
    /// caller directly beats delegating to its account).
    static func resourceSide(_ request: AccessRequest, _ policies: [Policy])
        -> (deny: StatementReference?, allow: (StatementReference, PrincipalMatch)?) {
        var allow: (StatementReference, PrincipalMatch)?
        for (p, policy) in policies.enumerated() {
            for (s, statement) in policy.statements.enumerated() {
                guard case let .applies(match) = statement.match(request, in: policy) else { continue }
                let reference = StatementReference(policyType: .resourceBased, policyIndex: p, statementIndex: s, sid: statement.sid)
                if statement.effect == .deny { return (reference, nil) }
                let how = match ?? .direct
                if let (_, best) = allow, best >= how { continue }
                allow = (reference, how)
            }
        }
        return (nil, allow)
    }
}
