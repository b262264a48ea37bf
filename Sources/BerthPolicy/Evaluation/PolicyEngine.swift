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
        // "Identity-based policies are attached to an IAM identity"; the root user, services and
        // anonymous callers have none.
        let identityApplies = principal.kind != .rootUser && principal.kind != .service && principal.kind != .anonymous
        let identity = identityApplies ? identityPolicies : []

        var identityAllow: StatementReference?
        var resourceAllow: (StatementReference, PrincipalMatch)?

        for (p, policy) in identity.enumerated() {
            for (s, statement) in policy.statements.enumerated() {
                guard case .applies = statement.match(request, in: policy) else { continue }
                let reference = StatementReference(policyType: .identityBased, policyIndex: p, statementIndex: s, sid: statement.sid)
                if statement.effect == .deny { return .explicitDeny(reference) }
                if identityAllow == nil { identityAllow = reference }
            }
        }
        for (p, policy) in resourcePolicies.enumerated() {
            for (s, statement) in policy.statements.enumerated() {
                guard case let .applies(match) = statement.match(request, in: policy) else { continue }
                let reference = StatementReference(policyType: .resourceBased, policyIndex: p, statementIndex: s, sid: statement.sid)
                if statement.effect == .deny { return .explicitDeny(reference) }
                let how = match ?? .direct
                // Keep the strongest grant: naming the caller directly beats delegating to its account.
                if let (_, best) = resourceAllow, best >= how { continue }
                resourceAllow = (reference, how)
            }
        }

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
}
