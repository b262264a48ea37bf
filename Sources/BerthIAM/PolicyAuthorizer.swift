import BerthCore
import BerthDirectory
import BerthPolicy
import BerthSupport
import Foundation
import Logging
import Synchronization

/// The policy-evaluating `Authorizer`: gathers the caller's identity policies (a user's inline and
/// attached policies and its groups'; a role session's role policies) and the resource's policies
/// (repository policy, registry policy of the resource's account), then decides with `PolicyEngine`
/// as AWS does.
///
/// Lookups are cached, and a cache entry is used only while the directory's `authorizationGeneration` is the
/// one it was filled at: every write to keys, IAM entities, policies, memberships, account settings or
/// repositories moves it, so a change takes effect on the very next request (one atomic load per lookup
/// on the hot path). Writes by another process sharing the database are seen after `cacheSeconds`.
///
/// Fails closed: a stored policy that does not parse, or policies or settings that cannot be read at all,
/// never grant and never drop a `Deny`: the request is denied and the failure logged.
public final class PolicyAuthorizer: Authorizer {
    let directory: Directory
    let clock: any WallClock
    let region: String
    let logger: Logger
    /// The longest a cached lookup is used without a local write moving the generation (writes by other processes).
    let cacheSeconds: Double
    public static let defaultCacheSeconds = 1.0

    struct IdentityEntry {
        var policies: [Policy]
        var userID: String?
        /// A stored policy failed to parse: deny everything.
        var poisoned: Bool
        /// The caller as the policy engine sees it, parsed once per cache entry.
        var requestPrincipal: RequestPrincipal? = nil
    }

    /// Entries are fresh for `cacheSeconds` and while the store's authorization generation has not moved.
    private let identityCache: BoundedCache<String, IdentityEntry>
    private let resourceCache: BoundedCache<String, (policies: [String], tags: [String: String])>
    /// Keyed by the policy text, so never stale.
    private let parsed = BoundedCache<String, Policy?>(capacity: 4096)

    public init(directory: Directory, region: String, clock: any WallClock = SystemWallClock(),
                cacheSeconds: Double = PolicyAuthorizer.defaultCacheSeconds, logger: Logger = Logger(label: "berth.authorizer")) {
        self.directory = directory
        self.region = region
        self.clock = clock
        self.cacheSeconds = cacheSeconds
        self.logger = logger
        identityCache = BoundedCache(capacity: 10_000, timeToLive: cacheSeconds, clock: clock)
        resourceCache = BoundedCache(capacity: 10_000, timeToLive: cacheSeconds, clock: clock)
    }

    /// The denial for policies that could not be read or parsed, logged as the error it is.
    func unreadable(_ principal: Principal, action: String, resource: String, _ error: Any) -> BerthError {
        logger.error("authorization data cannot be read; request denied", metadata: [
            "principal": "\(principal.arn)", "action": "\(action)", "resource": "\(resource)", "error": "\(error)",
        ])
        return BerthError.denied("User: \(principal.arn) is not authorized to perform: \(action) on resource: \(resource) because a policy that applies could not be read")
    }

    public func authorize(_ principal: Principal, action: String, resource: String) async throws {
        try await authorize(principal, action: action, resource: resource, context: AuthorizationContext())
    }

    public func authorize(_ principal: Principal, action: String, resource: String, context: AuthorizationContext) async throws {
        let identity: IdentityEntry
        let resourceSide: (texts: [String], tags: [String: String])
        do {
            identity = try await identityEntry(principal)
            resourceSide = try await self.resourcePolicies(resource)
        } catch {
            throw unreadable(principal, action: action, resource: resource, error)
        }
        let (resourceTexts, tags) = resourceSide
        var resourcePolicies: [Policy] = []
        var poisoned = identity.poisoned
        for t in resourceTexts {
            if let p = parse(t, kind: .resource) { resourcePolicies.append(p) } else { poisoned = true }
        }
        let request = accessRequest(principal, userID: identity.userID, action: action, resource: resource,
                                    resourceTags: tags, context: context, parsed: identity.requestPrincipal)
        if poisoned { throw unreadable(principal, action: action, resource: resource, "a stored policy that applies does not parse") }
        let decision = PolicyEngine.evaluate(request, identityPolicies: identity.policies, resourcePolicies: resourcePolicies)
        if let message = decision.accessDeniedMessage(for: request) { throw BerthError.denied(message) }
    }

    /// `sts:AssumeRole`: the role's trust policy must allow the caller, and (same account, trust naming
    /// only the account; or cross account) so must the caller's identity policies.
    public func authorizeAssumeRole(_ principal: Principal, role: IAMEntityRecord, action: String = "sts:AssumeRole",
                                    context: AuthorizationContext = AuthorizationContext()) async throws {
        let identity: IdentityEntry
        do {
            identity = try await identityEntry(principal)
        } catch {
            throw unreadable(principal, action: action, resource: role.arn, error)
        }
        let denied = BerthError.denied("User: \(principal.arn) is not authorized to perform: \(action) on resource: \(role.arn)")
        guard !identity.poisoned, let text = role.assumeRolePolicy, let trust = parse(text, kind: .resource) else { throw denied }
        let request = accessRequest(principal, userID: identity.userID, action: action, resource: role.arn,
                                    resourceTags: [:], context: context)
        // The trust policy must allow on its own: evaluated as if from another account, a missing
        // resource-side allow shows as implicitDeny(.resourceBased).
        var foreign = request
        foreign.resourceAccount = principal.accountID == "000000000000" ? "000000000001" : "000000000000"
        switch PolicyEngine.evaluate(foreign, identityPolicies: [], resourcePolicies: [trust]) {
        case .explicitDeny, .implicitDeny(.resourceBased): throw denied
        default: break
        }
        let decision = PolicyEngine.evaluate(request, identityPolicies: identity.policies, resourcePolicies: [trust])
        guard decision.isAllowed else { throw denied }
    }

    /// `sts:AssumeRoleWithWebIdentity`: the role's trust policy alone decides, and only a statement whose
    /// `Principal` names the provider as `Federated` can allow (a `"*"` principal does not let any web
    /// identity in). `context` holds the token's claims as `<issuer>:sub`, `<issuer>:aud`, …
    public func authorizeWebIdentity(provider: String, role: IAMEntityRecord, context: [String: ContextValue]) throws {
        let denied = BerthError.denied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        guard let text = role.assumeRolePolicy, let trust = parse(text, kind: .resource) else { throw denied }
        var caller = RequestPrincipal.anonymous
        caller.federatedProvider = provider
        let request = AccessRequest(principal: caller, action: "sts:AssumeRoleWithWebIdentity", resource: role.arn,
                                    currentTime: Date(timeIntervalSince1970: clock.now()), context: context)
        // Every Deny applies; only Allows naming the provider may grant.
        let statements = trust.statements.filter { st in
            if st.effect == .deny { return true }
            guard case let .principal(set)? = st.principals else { return false }
            return set.federated.contains(provider)
        }
        let scoped = Policy(version: trust.version, id: trust.id, statements: statements, kind: trust.kind)
        guard PolicyEngine.evaluate(request, identityPolicies: [], resourcePolicies: [scoped]).isAllowed else { throw denied }
    }

    static func requestPrincipal(_ principal: Principal, userID: String?) -> RequestPrincipal {
        RequestPrincipal(arn: principal.arn, userID: userID ?? principal.userID) ?? RequestPrincipal.root(account: principal.accountID)
    }

    func accessRequest(_ principal: Principal, userID: String?, action: String, resource: String,
                       resourceTags: [String: String], context: AuthorizationContext,
                       parsed: RequestPrincipal? = nil) -> AccessRequest {
        let rp = parsed ?? Self.requestPrincipal(principal, userID: userID)
        return AccessRequest(
            principal: rp, action: action, resource: resource,
            // AWS managed policies (`arn:aws:iam::aws:policy/…`) are read in the caller's account.
            resourceAccount: resource == "*" || resource.hasPrefix("arn:aws:iam::aws:") ? principal.accountID : nil,
            currentTime: Date(timeIntervalSince1970: clock.now()), sourceIP: principal.sourceIP,
            secureTransport: principal.secureTransport, resourceTags: resourceTags, requestTags: context.requestTags,
            context: Self.conditionValues(context))
    }

    func parse(_ text: String, kind: PolicyKind) -> Policy? {
        let key = "\(kind == .identity ? "i" : "r")\u{0}\(text)"
        if let hit = parsed.value(forKey: key) { return hit }
        let options: PolicyParseOptions = kind == .identity ? .identity : .resource
        let policy = try? Policy(parsing: text, options: options)
        parsed.set(policy, forKey: key)
        return policy
    }

    func identityEntry(_ principal: Principal) async throws -> IdentityEntry {
        let now = clock.now()
        // Read before loading: a write that lands during the load leaves the entry stale, and moved past it.
        let generation = directory.authorizationGeneration
        let key = "\(principal.arn)\u{0}\(principal.userID ?? "")"
        if let hit = identityCache.value(forKey: key, generation: generation) {
            return hit
        }
        var entry = try await loadIdentity(principal)
        entry.requestPrincipal = Self.requestPrincipal(principal, userID: entry.userID)
        identityCache.set(entry, forKey: key, generation: generation, filledAt: now)
        return entry
    }

    private func loadIdentity(_ principal: Principal) async throws -> IdentityEntry {
        let found = try await directory.identityPolicies(of: principal)
        var policies: [Policy] = []
        var poisoned = false
        for t in found.documents {
            if let p = parse(t, kind: .identity) { policies.append(p) } else { poisoned = true }
        }
        return IdentityEntry(policies: policies, userID: found.userID, poisoned: poisoned)
    }

    /// The repository policy and registry policy (texts) and the repository tags for a resource ARN.
    private func resourcePolicies(_ resource: String) async throws -> ([String], [String: String]) {
        let now = clock.now()
        let generation = directory.authorizationGeneration
        if let hit = resourceCache.value(forKey: resource, generation: generation) {
            return (hit.policies, hit.tags)
        }
        let found = try await directory.resourcePolicies(of: resource)
        let (texts, tags) = (found.documents, found.tags)
        resourceCache.set((texts, tags), forKey: resource, generation: generation, filledAt: now)
        return (texts, tags)
    }
}
