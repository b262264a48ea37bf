import BerthCore

/// Pull through cache rules and secrets in SQLite: one JSON document per row (`PullThroughDocument`).
extension SQLiteMetadataStore {
    public func createPullThroughCacheRule(_ rule: PullThroughCacheRuleRecord, limit: Int) async throws -> PullThroughCacheRuleInsert {
        let document = try PullThroughDocument.encode(rule)
        return try await db.write { c in
            try c.transaction {
                let exists = try c.query("SELECT 1 FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ?",
                                         [.text(rule.registryID), .text(rule.ecrRepositoryPrefix)]) { _ in true }
                if !exists.isEmpty { return .alreadyExists }
                let count = try c.query("SELECT count(*) FROM pull_through_cache_rules WHERE registry_id = ?",
                                        [.text(rule.registryID)]) { $0.int(0) }.first ?? 0
                if count >= Int64(limit) { return .limitExceeded }
                try c.execute("INSERT INTO pull_through_cache_rules(registry_id, prefix, document) VALUES(?, ?, ?)",
                              [.text(rule.registryID), .text(rule.ecrRepositoryPrefix), .text(document)])
                return .created
            }
        }
    }

    public func pullThroughCacheRules(of registryID: String) async throws -> [PullThroughCacheRuleRecord] {
        let rows = try await db.read { c in
            try c.query("SELECT document FROM pull_through_cache_rules WHERE registry_id = ? ORDER BY prefix",
                        [.text(registryID)]) { $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: PullThroughCacheRuleRecord.self) }
    }

    public func updatePullThroughCacheRule(registryID: String, prefix: String,
                                           _ update: @escaping @Sendable (inout PullThroughCacheRuleRecord) throws -> Void) async throws -> PullThroughCacheRuleRecord? {
        try await db.write { c in
            try c.transaction {
                guard let text = try c.query("SELECT document FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ?",
                                             [.text(registryID), .text(prefix)], row: { $0.text(0) }).first else { return nil }
                var rule = try PullThroughDocument.decode(text, as: PullThroughCacheRuleRecord.self)
                try update(&rule)
                rule.registryID = registryID
                rule.ecrRepositoryPrefix = prefix
                try c.execute("UPDATE pull_through_cache_rules SET document = ? WHERE registry_id = ? AND prefix = ?",
                              [.text(try PullThroughDocument.encode(rule)), .text(registryID), .text(prefix)])
                return rule
            }
        }
    }

    public func deletePullThroughCacheRule(registryID: String, prefix: String) async throws -> PullThroughCacheRuleRecord? {
        try await db.write { c in
            try c.transaction {
                guard let text = try c.query("SELECT document FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ?",
                                             [.text(registryID), .text(prefix)], row: { $0.text(0) }).first else { return nil }
                try c.execute("DELETE FROM pull_through_cache_rules WHERE registry_id = ? AND prefix = ?", [.text(registryID), .text(prefix)])
                return try PullThroughDocument.decode(text, as: PullThroughCacheRuleRecord.self)
            }
        }
    }

    public func createSecret(_ secret: StoredSecret) async throws -> Bool {
        let document = try PullThroughDocument.encode(secret)
        return try await db.write { c in
            try c.execute("INSERT INTO secrets(account_id, name, document) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
                          [.text(secret.account), .text(secret.name), .text(document)]) == 1
        }
    }

    public func secret(account: String, name: String) async throws -> StoredSecret? {
        let text = try await db.read { c in
            try c.query("SELECT document FROM secrets WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) { $0.text(0) }.first
        }
        return try text.map { try PullThroughDocument.decode($0, as: StoredSecret.self) }
    }

    public func updateSecret(account: String, name: String,
                             _ update: @escaping @Sendable (inout StoredSecret) throws -> Void) async throws -> StoredSecret? {
        try await db.write { c in
            try c.transaction {
                guard let text = try c.query("SELECT document FROM secrets WHERE account_id = ? AND name = ?",
                                             [.text(account), .text(name)], row: { $0.text(0) }).first else { return nil }
                var secret = try PullThroughDocument.decode(text, as: StoredSecret.self)
                try update(&secret)
                secret.account = account
                secret.name = name
                try c.execute("UPDATE secrets SET document = ? WHERE account_id = ? AND name = ?",
                              [.text(try PullThroughDocument.encode(secret)), .text(account), .text(name)])
                return secret
            }
        }
    }

    @discardableResult
    public func deleteSecret(account: String, name: String) async throws -> Bool {
        try await db.write { c in
            try c.execute("DELETE FROM secrets WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) == 1
        }
    }

    public func secrets(account: String) async throws -> [StoredSecret] {
        let rows = try await db.read { c in
            try c.query("SELECT document FROM secrets WHERE account_id = ? ORDER BY name", [.text(account)]) { $0.text(0) }
        }
        return try rows.map { try PullThroughDocument.decode($0, as: StoredSecret.self) }
    }
}
