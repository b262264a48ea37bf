import BerthCore
import BerthPolicy

extension PolicyAuthorizer {
    /// KMS: the key policy decides, identity policies count where it delegates to the account
    /// (`PolicyEngine.evaluateKeyPolicy`). Fails closed like `authorize`: a key policy or identity
    /// policy that does not parse, or policies that cannot be read, deny.
    public func authorize(_ principal: Principal, action: String, resource: String, keyPolicy: String,
                          context: AuthorizationContext) async throws {
        let identity: IdentityEntry
        do {
            identity = try await identityEntry(principal)
        } catch {
            throw unreadable(principal, action: action, resource: resource, error)
        }
        guard !identity.poisoned, let policy = parse(keyPolicy, kind: .resource) else {
            throw unreadable(principal, action: action, resource: resource, "a key policy or identity policy does not parse")
        }
        let request = accessRequest(principal, userID: identity.userID, action: action, resource: resource,
                                    resourceTags: [:], context: context, parsed: identity.requestPrincipal)
        let decision = PolicyEngine.evaluateKeyPolicy(request, identityPolicies: identity.policies, keyPolicy: policy)
        if let message = decision.accessDeniedMessage(for: request) { throw BerthError.denied(message) }
    }

    /// The service-specific condition keys of a request, as the policy engine reads them.
    static func conditionValues(_ context: AuthorizationContext) -> [String: ContextValue] {
        var values: [String: ContextValue] = [:]
        for (k, v) in context.values { values[k] = .single(v) }
        for (k, v) in context.valueSets { values[k] = .multiple(v) }
        return values
    }
}
