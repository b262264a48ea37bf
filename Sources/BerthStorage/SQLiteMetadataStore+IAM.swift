import Foundation
import BerthCore

extension SQLiteMetadataStore {
    static let entityColumns = "kind, account_id, name, path, id, created_at, assume_role_policy, max_session_duration, description"

    static func entityRow(_ r: SQLiteRow) -> IAMEntityRecord {
        IAMEntityRecord(kind: IAMEntityKind(rawValue: r.text(0)) ?? .user, accountID: r.text(1), name: r.text(2),
                        path: r.text(3), id: r.text(4), createdAt: r.double(5), assumeRolePolicy: r.optionalText(6),
                        maxSessionDuration: r.isNull(7) ? nil : Int(r.int(7)), description: r.optionalText(8))
    }

    static func keyValues(_ k: IAMEntityKey) -> [SQLiteValue] { [.text(k.kind.rawValue), .text(k.accountID), .text(k.name)] }

    static func optional(_ s: String?) -> SQLiteValue { s.map(SQLiteValue.text) ?? .null }

    public func createEntity(_ e: IAMEntityRecord) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO iam_entities(\(Self.entityColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)", [
                .text(e.kind.rawValue), .text(e.accountID), .text(e.name), .text(e.path), .text(e.id), .real(e.createdAt),
                Self.optional(e.assumeRolePolicy), e.maxSessionDuration.map { .integer(Int64($0)) } ?? .null,
                Self.optional(e.description),
            ]) == 1
        }
    }

    public func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord? {
        try await db.read { c in
            try c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE kind = ? AND account_id = ? AND name = ?",
                        Self.keyValues(key), row: Self.entityRow).first
        }
    }

    public func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord] {
        try await db.read { c in
            try c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE kind = ? AND account_id = ? ORDER BY name",
                        [.text(kind.rawValue), .text(account)], row: Self.entityRow)
        }
    }

    public func deleteEntity(_ key: IAMEntityKey) async throws -> Bool {
        try await authorizationWrite { c in
            try c.transaction {
                let v = Self.keyValues(key)
                guard try c.execute("DELETE FROM iam_entities WHERE kind = ? AND account_id = ? AND name = ?", v) == 1 else {
                    return false
                }
                try c.execute("DELETE FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ?", v)
                try c.execute("DELETE FROM iam_attachments WHERE kind = ? AND account_id = ? AND entity = ?", v)
                switch key.kind {
                case .group:
                    try c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ?",
                                  [.text(key.accountID), .text(key.name)])
                case .user:
                    try c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND user_name = ?",
                                  [.text(key.accountID), .text(key.name)])
                case .role: break
                }
                return true
            }
        }
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws {
        try await authorizationWrite { c in
            try c.execute("INSERT OR REPLACE INTO iam_inline_policies(kind, account_id, entity, name, document) VALUES(?, ?, ?, ?, ?)",
                          Self.keyValues(key) + [.text(name), .text(document)])
        }
    }

    public func inlinePolicy(_ key: IAMEntityKey, name: String) async throws -> String? {
        try await db.read { c in
            try c.query("SELECT document FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ? AND name = ?",
                        Self.keyValues(key) + [.text(name)]) { $0.text(0) }.first
        }
    }

    public func inlinePolicies(_ key: IAMEntityKey) async throws -> [(name: String, document: String)] {
        try await db.read { c in
            try c.query("SELECT name, document FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ? ORDER BY name",
                        Self.keyValues(key)) { (name: $0.text(0), document: $0.text(1)) }
        }
    }

    public func deleteInlinePolicy(_ key: IAMEntityKey, name: String) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("DELETE FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ? AND name = ?",
                          Self.keyValues(key) + [.text(name)]) == 1
        }
    }

    static let policyColumns = "arn, account_id, name, path, id, document, description, created_at"

    static func policyRow(_ r: SQLiteRow) -> ManagedPolicyRecord {
        ManagedPolicyRecord(accountID: r.text(1), name: r.text(2), path: r.text(3), id: r.text(4), document: r.text(5),
                            description: r.optionalText(6), createdAt: r.double(7))
    }

    public func createManagedPolicy(_ p: ManagedPolicyRecord) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO iam_managed_policies(\(Self.policyColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?)", [
                .text(p.arn), .text(p.accountID), .text(p.name), .text(p.path), .text(p.id), .text(p.document),
                Self.optional(p.description), .real(p.createdAt),
            ]) == 1
        }
    }

    public func managedPolicy(arn: String) async throws -> ManagedPolicyRecord? {
        try await db.read { c in
            try c.query("SELECT \(Self.policyColumns) FROM iam_managed_policies WHERE arn = ?", [.text(arn)], row: Self.policyRow).first
        }
    }

    public func managedPolicies(account: String) async throws -> [ManagedPolicyRecord] {
        try await db.read { c in
            try c.query("SELECT \(Self.policyColumns) FROM iam_managed_policies WHERE account_id = ? ORDER BY arn",
                        [.text(account)], row: Self.policyRow)
        }
    }

    public func deleteManagedPolicy(arn: String) async throws -> Bool {
        try await authorizationWrite { c in
            try c.transaction {
                guard try c.execute("DELETE FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) == 1 else { return false }
                try c.execute("DELETE FROM iam_attachments WHERE arn = ?", [.text(arn)])
                return true
            }
        }
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String) async throws {
        try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO iam_attachments(kind, account_id, entity, arn) VALUES(?, ?, ?, ?)",
                          Self.keyValues(key) + [.text(arn)])
        }
    }

    public func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("DELETE FROM iam_attachments WHERE kind = ? AND account_id = ? AND entity = ? AND arn = ?",
                          Self.keyValues(key) + [.text(arn)]) == 1
        }
    }

    public func attachedPolicies(_ key: IAMEntityKey) async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT arn FROM iam_attachments WHERE kind = ? AND account_id = ? AND entity = ? ORDER BY arn",
                        Self.keyValues(key)) { $0.text(0) }
        }
    }

    public func attachmentCount(arn: String) async throws -> Int {
        try await db.read { c in
            Int(try c.query("SELECT count(*) FROM iam_attachments WHERE arn = ?", [.text(arn)]) { $0.int(0) }.first ?? 0)
        }
    }

    public func addUser(_ user: String, toGroup group: String, account: String) async throws {
        try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO iam_group_members(account_id, group_name, user_name) VALUES(?, ?, ?)",
                          [.text(account), .text(group), .text(user)])
        }
    }

    public func removeUser(_ user: String, fromGroup group: String, account: String) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ? AND user_name = ?",
                          [.text(account), .text(group), .text(user)]) == 1
        }
    }

    public func groups(ofUser user: String, account: String) async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT group_name FROM iam_group_members WHERE account_id = ? AND user_name = ? ORDER BY group_name",
                        [.text(account), .text(user)]) { $0.text(0) }
        }
    }

    public func users(inGroup group: String, account: String) async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT user_name FROM iam_group_members WHERE account_id = ? AND group_name = ? ORDER BY user_name",
                        [.text(account), .text(group)]) { $0.text(0) }
        }
    }

    // MARK: OIDC providers

    static let oidcColumns = "account_id, url, client_ids, thumbprints, created_at"

    static func encodeList(_ list: [String]) throws -> String { try StoredValues.encodeList(list) }

    static func decodeList(_ text: String, _ what: @autoclosure () -> String) throws -> [String] {
        try StoredValues.decodeList(text, what())
    }

    static func oidcRow(_ r: SQLiteRow) throws -> OIDCProviderRecord {
        let url = r.text(1)
        return OIDCProviderRecord(accountID: r.text(0), url: url, clientIDs: try decodeList(r.text(2), "client ids of OIDC provider \(url)"),
                                  thumbprints: try decodeList(r.text(3), "thumbprints of OIDC provider \(url)"), createdAt: r.double(4))
    }

    public func createOIDCProvider(_ p: OIDCProviderRecord) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO iam_oidc_providers(arn, \(Self.oidcColumns)) VALUES(?, ?, ?, ?, ?, ?)", [
                .text(p.arn), .text(p.accountID), .text(p.url), .text(try Self.encodeList(p.clientIDs)),
                .text(try Self.encodeList(p.thumbprints)), .real(p.createdAt),
            ]) == 1
        }
    }

    public func oidcProvider(arn: String) async throws -> OIDCProviderRecord? {
        try await db.read { c in
            try c.query("SELECT \(Self.oidcColumns) FROM iam_oidc_providers WHERE arn = ?", [.text(arn)], row: Self.oidcRow).first
        }
    }

    public func oidcProviders(account: String) async throws -> [OIDCProviderRecord] {
        try await db.read { c in
            try c.query("SELECT \(Self.oidcColumns) FROM iam_oidc_providers WHERE account_id = ? ORDER BY arn",
                        [.text(account)], row: Self.oidcRow)
        }
    }

    public func deleteOIDCProvider(arn: String) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("DELETE FROM iam_oidc_providers WHERE arn = ?", [.text(arn)]) == 1
        }
    }
}

// MARK: guarded writes (check and write in one transaction)

extension SQLiteMetadataStore {
    static func exists(_ c: SQLiteConnection, _ sql: String, _ values: [SQLiteValue]) throws -> Bool {
        try c.query("SELECT EXISTS(\(sql))", values) { $0.int(0) }.first == 1
    }

    static func count(_ c: SQLiteConnection, _ sql: String, _ values: [SQLiteValue]) throws -> Int {
        Int(try c.query(sql, values) { $0.int(0) }.first ?? 0)
    }

    static func entityExists(_ c: SQLiteConnection, _ key: IAMEntityKey) throws -> Bool {
        try exists(c, "SELECT 1 FROM iam_entities WHERE kind = ? AND account_id = ? AND name = ?", keyValues(key))
    }

    public func insertAccessKey(_ key: AccessKeyRecord, limit: AccessKeyLimit) async throws -> Bool {
        try await authorizationWrite { c in
            try c.transaction {
                guard try Self.exists(c, "SELECT 1 FROM accounts WHERE id = ?", [.text(key.accountID)]) else {
                    throw StorageError("unknown account \(key.accountID)")
                }
                switch limit {
                case .unlimited: break
                case .perPrincipal(let n):
                    let have = try Self.count(c, "SELECT count(*) FROM access_keys WHERE account_id = ? AND principal_arn = ?",
                                              [.text(key.accountID), .text(key.principalARN)])
                    if have >= n { return false }
                case .perAccount(let n):
                    if try Self.count(c, "SELECT count(*) FROM access_keys WHERE account_id = ?", [.text(key.accountID)]) >= n { return false }
                }
                try c.execute("INSERT INTO access_keys(\(Self.keyColumns)) VALUES(?, ?, ?, ?, ?, ?)",
                              [.text(key.accessKeyID), .text(key.accountID), .text(key.principalARN), .text(key.sealedSecret),
                               .text(key.status), .real(key.createdAt)])
                return true
            }
        }
    }

    public func deleteEntityIfUnreferenced(_ key: IAMEntityKey) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            try c.transaction {
                let v = Self.keyValues(key)
                guard let entity = try c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE kind = ? AND account_id = ? AND name = ?",
                                                v, row: Self.entityRow).first else { return .notFound }
                var referenced = try Self.exists(c, "SELECT 1 FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ?", v)
                    || Self.exists(c, "SELECT 1 FROM iam_attachments WHERE kind = ? AND account_id = ? AND entity = ?", v)
                let account: SQLiteValue = .text(key.accountID), name: SQLiteValue = .text(key.name)
                switch key.kind {
                case .user:
                    referenced = try referenced
                        || Self.exists(c, "SELECT 1 FROM access_keys WHERE account_id = ? AND principal_arn = ?", [account, .text(entity.arn)])
                        || Self.exists(c, "SELECT 1 FROM iam_group_members WHERE account_id = ? AND user_name = ?", [account, name])
                case .group:
                    referenced = try referenced
                        || Self.exists(c, "SELECT 1 FROM iam_group_members WHERE account_id = ? AND group_name = ?", [account, name])
                case .role: break
                }
                if referenced { return .inUse }
                try c.execute("DELETE FROM iam_entities WHERE kind = ? AND account_id = ? AND name = ?", v)
                return .done
            }
        }
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String, totalSizeLimit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            try c.transaction {
                guard try Self.entityExists(c, key) else { return .notFound }
                if let totalSizeLimit {
                    let others = try c.query("SELECT document FROM iam_inline_policies WHERE kind = ? AND account_id = ? AND entity = ? AND name != ?",
                                             Self.keyValues(key) + [.text(name)]) { $0.text(0) }
                    let total = (others + [document]).reduce(0) { $0 + InlinePolicyQuota.chargedSize($1) }
                    if total > totalSizeLimit { return .limitReached }
                }
                try c.execute("INSERT OR REPLACE INTO iam_inline_policies(kind, account_id, entity, name, document) VALUES(?, ?, ?, ?, ?)",
                              Self.keyValues(key) + [.text(name), .text(document)])
                return .done
            }
        }
    }

    public func deleteManagedPolicyIfUnattached(arn: String) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            try c.transaction {
                guard try Self.exists(c, "SELECT 1 FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) else { return .notFound }
                if try Self.exists(c, "SELECT 1 FROM iam_attachments WHERE arn = ?", [.text(arn)]) { return .inUse }
                try c.execute("DELETE FROM iam_managed_policies WHERE arn = ?", [.text(arn)])
                return .done
            }
        }
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String, policyMustExist: Bool, limit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            try c.transaction {
                guard try Self.entityExists(c, key) else { return .notFound }
                if policyMustExist, try !Self.exists(c, "SELECT 1 FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) {
                    return .notFound
                }
                if let limit {
                    let attached = try c.query("SELECT arn FROM iam_attachments WHERE kind = ? AND account_id = ? AND entity = ?",
                                               Self.keyValues(key)) { $0.text(0) }
                    if !attached.contains(arn), attached.count >= limit { return .limitReached }
                }
                try c.execute("INSERT OR IGNORE INTO iam_attachments(kind, account_id, entity, arn) VALUES(?, ?, ?, ?)",
                              Self.keyValues(key) + [.text(arn)])
                return .done
            }
        }
    }

    public func addMember(_ user: String, toGroup group: String, account: String, limit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            try c.transaction {
                guard try Self.entityExists(c, IAMEntityKey(.user, account, user)),
                      try Self.entityExists(c, IAMEntityKey(.group, account, group)) else { return .notFound }
                if let limit {
                    let groups = try c.query("SELECT group_name FROM iam_group_members WHERE account_id = ? AND user_name = ?",
                                             [.text(account), .text(user)]) { $0.text(0) }
                    if !groups.contains(group), groups.count >= limit { return .limitReached }
                }
                try c.execute("INSERT OR IGNORE INTO iam_group_members(account_id, group_name, user_name) VALUES(?, ?, ?)",
                              [.text(account), .text(group), .text(user)])
                return .done
            }
        }
    }
}
