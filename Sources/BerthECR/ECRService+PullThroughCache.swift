import BerthCore
import BerthReplication
import BerthSupport
import Foundation

/// Pull through cache rules: Create/Describe/Update/Delete/ValidatePullThroughCacheRule, authorized as
/// `ecr:<Action>` on the registry (`arn:aws:ecr:<region>:<account>:registry`... the account's repository
/// wildcard, as ECR's registry-level actions are), stored by ``PullThroughCache``.
extension ECRService {
    static func ruleError(_ e: PullThroughRuleError) -> ECRError {
        switch e {
        case .invalidParameter(let m): return .invalidParameter(m)
        case .alreadyExists(let prefix, let registry):
            return ECRError("PullThroughCacheRuleAlreadyExistsException",
                            "A pull through cache rule with prefix '\(prefix)' already exists in the registry with id '\(registry)'")
        case .notFound(let prefix, let registry):
            return ECRError("PullThroughCacheRuleNotFoundException",
                            "The pull through cache rule with prefix '\(prefix)' does not exist in the registry with id '\(registry)'")
        case .limitExceeded(let n):
            return ECRError("LimitExceededException", "The maximum number of pull through cache rules (\(n)) for this registry has been reached")
        case .unsupportedUpstream(let m): return ECRError("UnsupportedUpstreamRegistryException", m)
        case .secretNotFound(let arn): return ECRError("SecretNotFoundException", "The secret with ARN '\(arn)' could not be found")
        case .unableToDecryptSecret(let arn):
            return ECRError("UnableToDecryptSecretValueException", "The secret with ARN '\(arn)' could not be decrypted")
        case .unableToAccessSecret(let arn):
            return ECRError("UnableToAccessSecretException",
                            "The secret with ARN '\(arn)' could not be used: it must hold a JSON object with 'username' and 'accessToken'")
        }
    }

    func pullThroughCache() throws -> PullThroughCache {
        guard let pullThrough else { throw ECRError("UnsupportedOperationException", "Pull through cache rules are not available on this server") }
        return pullThrough
    }

    /// The registry a rule operation addresses; rules belong to the caller's registry.
    func ruleRegistry(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) throws -> String {
        let id = try registryID(p, principal)
        ctx.registryID = id
        return id
    }

    func authorizeRule(_ principal: Principal, _ action: String, _ account: String) async throws {
        try await authorizer.authorize(principal, action: "ecr:\(action)", resource: registryResource(account))
    }

    func prefix(_ p: Params, _ member: String, required: Bool) throws -> String? {
        guard let value = required ? try p.requiredString(member) : try p.string(member) else { return nil }
        return try PullThroughRules.prefix(value, member: member)
    }

    func ruleJSON(_ r: PullThroughCacheRuleRecord, updated: Bool = true) -> [String: JSONValue] {
        var o: [String: JSONValue] = [
            "ecrRepositoryPrefix": .string(r.ecrRepositoryPrefix), "upstreamRegistryUrl": .string(r.upstreamRegistryURL),
            "createdAt": .double(r.createdAt), "registryId": .string(RegistryID(storedValue: r.registryID).account),
            "upstreamRepositoryPrefix": .string(r.upstreamRepositoryPrefix),
        ]
        if updated { o["updatedAt"] = .double(r.updatedAt) }
        if let u = r.upstreamRegistry { o["upstreamRegistry"] = .string(u) }
        if let c = r.credentialARN { o["credentialArn"] = .string(c) }
        if let c = r.customRoleARN { o["customRoleArn"] = .string(c) }
        return o
    }

    func checkCredential(_ arn: String, _ cache: PullThroughCache) async throws {
        try PullThroughRules.checkCredentialARN(arn)
        _ = try await cache.credentials(arn)
    }

    func createPullThroughCacheRule(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let cache = try pullThroughCache()
        let account = try ruleRegistry(p, principal, &ctx)
        let prefix = try prefix(p, "ecrRepositoryPrefix", required: true)!
        let url = try p.requiredString("upstreamRegistryUrl")
        let upstreamPrefix = try self.prefix(p, "upstreamRepositoryPrefix", required: false) ?? "ROOT"
        let credentialARN = try p.string("credentialArn")
        let roleARN = try p.string("customRoleArn")
        if let roleARN { try PullThroughRules.checkCustomRoleARN(roleARN) }
        if let credentialARN { try PullThroughRules.checkCredentialARN(credentialARN) }
        let (_, upstream) = try PullThroughRules.upstream(url: url, registry: try p.string("upstreamRegistry"))
        if let upstream, PullThroughRules.credentialRequired.contains(upstream), credentialARN == nil {
            throw ECRError.invalidParameter("A credentialArn is required for the upstream registry \(upstream)")
        }
        try await authorizeRule(principal, "CreatePullThroughCacheRule", account)
        if let credentialARN { try await checkCredential(credentialARN, cache) }
        let now = clock.now()
        let rule = try await cache.createRule(PullThroughCacheRuleRecord(
            registryID: storeID(account), ecrRepositoryPrefix: prefix, upstreamRegistryURL: url, upstreamRegistry: upstream,
            upstreamRepositoryPrefix: upstreamPrefix, credentialARN: credentialARN, customRoleARN: roleARN, createdAt: now, updatedAt: now))
        return .object(ruleJSON(rule, updated: false))
    }

    func describePullThroughCacheRules(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let cache = try pullThroughCache()
        let account = try ruleRegistry(p, principal, &ctx)
        var wanted: [String]? = nil
        if let list = try p.stringList("ecrRepositoryPrefixes") {
            try p.checkCount("ecrRepositoryPrefixes", list.count, 1...100)
            wanted = try list.map { v throws -> String in try PullThroughRules.prefix(v, member: "ecrRepositoryPrefixes") }
        }
        let limit = try p.maxResults(1, 1000) ?? 100
        let after = try Self.decodeToken(try p.string("nextToken"))
        try await authorizeRule(principal, "DescribePullThroughCacheRules", account)
        var rules = try await cache.rules(of: storeID(account))
        if let wanted {
            for w in wanted where !rules.contains(where: { $0.ecrRepositoryPrefix == w }) {
                throw Self.ruleError(.notFound(prefix: w, registry: account))
            }
            rules = rules.filter { wanted.contains($0.ecrRepositoryPrefix) }
        }
        if let after { rules = rules.filter { $0.ecrRepositoryPrefix > after } }
        let page = rules.prefix(limit)
        var out: [String: JSONValue] = ["pullThroughCacheRules": .array(page.map { .object(ruleJSON($0)) })]
        if rules.count > limit, let last = page.last { out["nextToken"] = .string(Self.encodeToken(last.ecrRepositoryPrefix)) }
        return .object(out)
    }

    func updatePullThroughCacheRule(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let cache = try pullThroughCache()
        let account = try ruleRegistry(p, principal, &ctx)
        let prefix = try prefix(p, "ecrRepositoryPrefix", required: true)!
        let credentialARN = try p.string("credentialArn")
        let roleARN = try p.string("customRoleArn")
        if let roleARN { try PullThroughRules.checkCustomRoleARN(roleARN) }
        if let credentialARN { try PullThroughRules.checkCredentialARN(credentialARN) }
        guard credentialARN != nil || roleARN != nil else {
            throw ECRError.invalidParameter("At least one of credentialArn or customRoleArn must be given")
        }
        try await authorizeRule(principal, "UpdatePullThroughCacheRule", account)
        guard try await cache.rules(of: storeID(account)).contains(where: { $0.ecrRepositoryPrefix == prefix }) else {
            throw Self.ruleError(.notFound(prefix: prefix, registry: account))
        }
        if let credentialARN { try await checkCredential(credentialARN, cache) }
        let now = clock.now()
        let rule = try await cache.updateRule(registryID: storeID(account), prefix: prefix) { r in
            if let credentialARN { r.credentialARN = credentialARN }
            if let roleARN { r.customRoleARN = roleARN }
            r.updatedAt = now
        }
        var o: [String: JSONValue] = ["ecrRepositoryPrefix": .string(rule.ecrRepositoryPrefix), "registryId": .string(account),
                                      "updatedAt": .double(rule.updatedAt), "upstreamRepositoryPrefix": .string(rule.upstreamRepositoryPrefix)]
        if let c = rule.credentialARN { o["credentialArn"] = .string(c) }
        if let c = rule.customRoleARN { o["customRoleArn"] = .string(c) }
        return .object(o)
    }

    func deletePullThroughCacheRule(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let cache = try pullThroughCache()
        let account = try ruleRegistry(p, principal, &ctx)
        let prefix = try prefix(p, "ecrRepositoryPrefix", required: true)!
        try await authorizeRule(principal, "DeletePullThroughCacheRule", account)
        let rule = try await cache.deleteRule(registryID: storeID(account), prefix: prefix)
        // DeletePullThroughCacheRuleResponse has no upstreamRegistry member.
        var o = ruleJSON(rule, updated: false)
        o["upstreamRegistry"] = nil
        return .object(o)
    }

    func validatePullThroughCacheRule(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let cache = try pullThroughCache()
        let account = try ruleRegistry(p, principal, &ctx)
        let prefix = try prefix(p, "ecrRepositoryPrefix", required: true)!
        try await authorizeRule(principal, "ValidatePullThroughCacheRule", account)
        guard let rule = try await cache.rules(of: storeID(account)).first(where: { $0.ecrRepositoryPrefix == prefix }) else {
            throw Self.ruleError(.notFound(prefix: prefix, registry: account))
        }
        let failure = await cache.validate(rule)
        var o: [String: JSONValue] = ["ecrRepositoryPrefix": .string(rule.ecrRepositoryPrefix), "registryId": .string(account),
                                      "upstreamRegistryUrl": .string(rule.upstreamRegistryURL),
                                      "upstreamRepositoryPrefix": .string(rule.upstreamRepositoryPrefix),
                                      "isValid": .bool(failure == nil)]
        if let c = rule.credentialARN { o["credentialArn"] = .string(c) }
        if let c = rule.customRoleARN { o["customRoleArn"] = .string(c) }
        if let failure { o["failure"] = .string(failure) }
        return .object(o)
    }
}
