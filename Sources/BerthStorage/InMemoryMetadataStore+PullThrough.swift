import BerthCore
import Synchronization

/// Pull through cache rules and secrets, in memory (`PullThroughMetadata`).
struct PullThroughState {
    /// Rules by registry, then prefix.
    var rules: [String: [String: PullThroughCacheRuleRecord]] = [:]
    /// Secrets by account, then name.
    var secrets: [String: [String: StoredSecret]] = [:]
}

extension InMemoryMetadataStore {
    public func createPullThroughCacheRule(_ rule: PullThroughCacheRuleRecord, limit: Int) async throws -> PullThroughCacheRuleInsert {
        pullThrough.withLock { s in
            let current = s.rules[rule.registryID] ?? [:]
            if current[rule.ecrRepositoryPrefix] != nil { return .alreadyExists }
            if current.count >= limit { return .limitExceeded }
            s.rules[rule.registryID, default: [:]][rule.ecrRepositoryPrefix] = rule
            return .created
        }
    }

    public func pullThroughCacheRules(of registryID: String) async throws -> [PullThroughCacheRuleRecord] {
        pullThrough.withLock { s in (s.rules[registryID] ?? [:]).values.sorted { $0.ecrRepositoryPrefix < $1.ecrRepositoryPrefix } }
    }

    public func updatePullThroughCacheRule(registryID: String, prefix: String,
                                           _ update: @escaping @Sendable (inout PullThroughCacheRuleRecord) throws -> Void) async throws -> PullThroughCacheRuleRecord? {
        try pullThrough.withLock { s in
            guard var rule = s.rules[registryID]?[prefix] else { return nil }
            try update(&rule)
            rule.registryID = registryID
            rule.ecrRepositoryPrefix = prefix
            s.rules[registryID]?[prefix] = rule
            return rule
        }
    }

    public func deletePullThroughCacheRule(registryID: String, prefix: String) async throws -> PullThroughCacheRuleRecord? {
        pullThrough.withLock { s in s.rules[registryID]?.removeValue(forKey: prefix) }
    }

    public func createSecret(_ secret: StoredSecret) async throws -> Bool {
        pullThrough.withLock { s in
            if s.secrets[secret.account]?[secret.name] != nil { return false }
            s.secrets[secret.account, default: [:]][secret.name] = secret
            return true
        }
    }

    public func secret(account: String, name: String) async throws -> StoredSecret? {
        pullThrough.withLock { $0.secrets[account]?[name] }
    }

    public func updateSecret(account: String, name: String,
                             _ update: @escaping @Sendable (inout StoredSecret) throws -> Void) async throws -> StoredSecret? {
        try pullThrough.withLock { s in
            guard var secret = s.secrets[account]?[name] else { return nil }
            try update(&secret)
            secret.account = account
            secret.name = name
            s.secrets[account]?[name] = secret
            return secret
        }
    }

    @discardableResult
    public func deleteSecret(account: String, name: String) async throws -> Bool {
        pullThrough.withLock { $0.secrets[account]?.removeValue(forKey: name) != nil }
    }

    public func secrets(account: String) async throws -> [StoredSecret] {
        pullThrough.withLock { s in (s.secrets[account] ?? [:]).values.sorted { $0.name < $1.name } }
    }
}
