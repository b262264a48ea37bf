import BerthCore
import BerthStorage

/// Pull through cache rules and secrets in PostgreSQL: one JSON document per row (`PullThroughDocument`).
extension PostgresMetadataStore {
    public func createPullThroughCacheRule(_ rule: PullThroughCacheRuleRecord, limit: Int) async throws -> PullThroughCacheRuleInsert {
        let document = try PullThroughDocument.encode(rule)
        return try await transaction { c in
            if try await c.exists("SELECT 1 FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ?",
                                  [.text(rule.registryID), .text(rule.ecrRepositoryPrefix)]) { return .alreadyExists }
            if try await c.count("SELECT count(*) FROM pull_through_cache_rules WHERE registry_id = ?", [.text(rule.registryID)]) >= limit {
                return .limitExceeded
            }
            try await c.execute("INSERT INTO pull_through_cache_rules(registry_id, prefix, document) VALUES(?, ?, ?)",
                                [.text(rule.registryID), .text(rule.ecrRepositoryPrefix), .text(document)])
            return .created
        }
    }

    public func pullThroughCacheRules(of registryID: String) async throws -> [PullThroughCacheRuleRecord] {
        let rows = try await read { c in
            try await c.query("SELECT document FROM pull_through_cache_rules WHERE registry_id = ? ORDER BY prefix",
                              [.text(registryID)]) { try $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: PullThroughCacheRuleRecord.self) }
    }

    public func updatePullThroughCacheRule(registryID: String, prefix: String,
                                           _ update: @escaping @Sendable (inout PullThroughCacheRuleRecord) throws -> Void) async throws -> PullThroughCacheRuleRecord? {
        try await transaction { c in
            guard let text = try await c.query("SELECT document FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ? FOR UPDATE",
                                               [.text(registryID), .text(prefix)], row: { try $0.text(0) }).first else { return nil }
            var rule = try PullThroughDocument.decode(text, as: PullThroughCacheRuleRecord.self)
            try update(&rule)
            rule.registryID = registryID
            rule.ecrRepositoryPrefix = prefix
            try await c.execute("UPDATE pull_through_cache_rules SET document = ? WHERE registry_id = ? AND prefix = ?",
                                [.text(try PullThroughDocument.encode(rule)), .text(registryID), .text(prefix)])
            return rule
        }
    }

    public func deletePullThroughCacheRule(registryID: String, prefix: String) async throws -> PullThroughCacheRuleRecord? {
        try await transaction { c in
            guard let text = try await c.query("DELETE FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ? RETURNING document",
                                               [.text(registryID), .text(prefix)], row: { try $0.text(0) }).first else { return nil }
            return try PullThroughDocument.decode(text, as: PullThroughCacheRuleRecord.self)
        }
    }

    public func createSecret(_ secret: StoredSecret) async throws -> Bool {
        let document = try PullThroughDocument.encode(secret)
        return try await read { c in
            try await c.execute("INSERT INTO secrets(account_id, name, document) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
                                [.text(secret.account), .text(secret.name), .text(document)]) == 1
        }
    }

    public func secret(account: String, name: String) async throws -> StoredSecret? {
        let text = try await read { c in
            try await c.query("SELECT document FROM secrets WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) { try $0.text(0) }.first
        }
        return try text.map { try PullThroughDocument.decode($0, as: StoredSecret.self) }
    }

    public func updateSecret(account: String, name: String,
                             _ update: @escaping @Sendable (inout StoredSecret) throws -> Void) async throws -> StoredSecret? {
        try await transaction { c in
            guard let text = try await c.query("SELECT document FROM secrets WHERE account_id = ? AND name = ? FOR UPDATE",
                                               [.text(account), .text(name)], row: { try $0.text(0) }).first else { return nil }
            var secret = try PullThroughDocument.decode(text, as: StoredSecret.self)
            try update(&secret)
            secret.account = account
            secret.name = name
            try await c.execute("UPDATE secrets SET document = ? WHERE account_id = ? AND name = ?",
                                [.text(try PullThroughDocument.encode(secret)), .text(account), .text(name)])
            return secret
        }
    }

    @discardableResult
    public func deleteSecret(account: String, name: String) async throws -> Bool {
        try await read { c in
            try await c.execute("DELETE FROM secrets WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) == 1
        }
    }

    public func secrets(account: String) async throws -> [StoredSecret] {
        let rows = try await read { c in
            try await c.query("SELECT document FROM secrets WHERE account_id = ? ORDER BY name", [.text(account)]) { try $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: StoredSecret.self) }
    }
}
