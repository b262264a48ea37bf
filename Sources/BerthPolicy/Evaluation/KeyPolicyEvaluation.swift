extension PolicyEngine {
    /// KMS's evaluation: the key policy is the primary authority. Unlike other resource policies it is
    /// never optional — no identity, not even the account's root user, may use a key unless its key
    /// policy allows it:
    ///
    /// - an explicit `Deny` in the key policy or an identity policy wins;
    /// - a key-policy `Allow` naming the caller directly (its ARN, its role, `*`; the account root for
    ///   the root user itself) grants on its own, in its own account;
    /// - a key-policy `Allow` naming only the caller's account ("Enable IAM User Permissions") delegates
    ///   to the account: an identity policy must then allow too (the root user needs none);
    /// - cross account, both the key policy and the caller's identity policies must allow.
    public static func evaluateKeyPolicy(
        _ request: AccessRequest, identityPolicies: [Policy], keyPolicy: Policy
    ) -> Decision {
        let principal = request.principal
        let identity = identitySide(request, identityPolicies)
        if let deny = identity.deny { return .explicitDeny(deny) }
        let identityAllow = identity.allow
        let key = resourceSide(request, [keyPolicy])
        if let deny = key.deny { return .explicitDeny(deny) }
        let keyAllow = key.allow
        guard let (keyReference, how) = keyAllow else { return .implicitDeny(.resourceBased) }
        switch principal.kind {
        case .anonymous, .service: return .allow(.resourcePolicy(keyReference))
        default: break
        }
        if request.isSameAccount {
            if how == .direct { return principal.isRoot ? .allow(.accountRoot) : .allow(.resourcePolicy(keyReference)) }
            guard let identityAllow else { return .implicitDeny(.identityBased) }
            return .allow(.identityAndResourcePolicies(identity: identityAllow, resource: keyReference))
        }
        if principal.isRoot { return .allow(.resourcePolicy(keyReference)) }
        guard let identityAllow else { return .implicitDeny(.identityBased) }
        return .allow(.identityAndResourcePolicies(identity: identityAllow, resource: keyReference))
    }
}
