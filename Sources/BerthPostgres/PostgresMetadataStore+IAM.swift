import BerthCore
import BerthStorage
import Foundation

extension PostgresMetadataStore {
    static let entityColumns = "kind, account_id, name, path, id, created_at, assume_role_policy, max_session_duration, description"
    static let entityKey = "kind = ? AND account_id = ? AND name = ?"
    static let policyOwner = "kind = ? AND account_id = ? AND entity = ?"

    static func entityRow(_ r: PGRow) throws -> IAMEntityRecord {
        IAMEntityRecord(kind: IAMEntityKind(rawValue: try r.text(0)) ?? .user, accountID: try r.text(1), name: try r.text(2),
                        path: try r.text(3), id: try r.text(4), createdAt: try r.double(5), assumeRolePolicy: try r.optionalText(6),
                        maxSessionDuration: try r.optionalInt(7), description: try r.optionalText(8))
    }

    static func keyValues(_ k: IAMEntityKey) -> [PGValue] { [.text(k.kind.rawValue), .text(k.accountID), .text(k.name)] }

    public func createEntity(_ e: IAMEntityRecord) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("INSERT INTO iam_entities(\(Self.entityColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", [
                .text(e.kind.rawValue), .text(e.accountID), .text(e.name), .text(e.path), .text(e.id), .real(e.createdAt),
                .optional(e.assumeRolePolicy), .optional(e.maxSessionDuration), .optional(e.description),
            ]) == 1
        }
    }

    public func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE \(Self.entityKey)", Self.keyValues(key), row: Self.entityRow).first
        }
    }

    public func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE kind = ? AND account_id = ? ORDER BY name",
                              [.text(kind.rawValue), .text(account)], row: Self.entityRow)
        }
    }

    public func deleteEntity(_ key: IAMEntityKey) async throws -> Bool {
        try await authorizationWrite { c in
            let v = Self.keyValues(key)
            guard try await c.execute("DELETE FROM iam_entities WHERE \(Self.entityKey)", v) == 1 else { return false }
            try await c.execute("DELETE FROM iam_inline_policies WHERE \(Self.policyOwner)", v)
            try await c.execute("DELETE FROM iam_attachments WHERE \(Self.policyOwner)", v)
            switch key.kind {
            case .group:
                try await c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ?", [.text(key.accountID), .text(key.name)])
            case .user:
                try await c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND user_name = ?", [.text(key.accountID), .text(key.name)])
            case .role: break
            }
            return true
        }
    }

    static func upsertInlinePolicy(_ c: PGConnection, _ key: IAMEntityKey, _ name: String, _ document: String) async throws {
        try await c.execute("""
            INSERT INTO iam_inline_policies(kind, account_id, entity, name, document) VALUES(?, ?, ?, ?, ?)
            ON CONFLICT(kind, account_id, entity, name) DO UPDATE SET document = excluded.document
            """, keyValues(key) + [.text(name), .text(document)])
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws {
        try await authorizationWrite { c in try await Self.upsertInlinePolicy(c, key, name, document) }
    }

    public func inlinePolicy(_ key: IAMEntityKey, name: String) async throws -> String? {
        try await read { c in
            try await c.query("SELECT document FROM iam_inline_policies WHERE \(Self.policyOwner) AND name = ?",
                              Self.keyValues(key) + [.text(name)]) { try $0.text(0) }.first
        }
    }

    public func inlinePolicies(_ key: IAMEntityKey) async throws -> [(name: String, document: String)] {
        try await read { c in
            try await c.query("SELECT name, document FROM iam_inline_policies WHERE \(Self.policyOwner) ORDER BY name",
                              Self.keyValues(key)) { (name: try $0.text(0), document: try $0.text(1)) }
        }
    }

    public func deleteInlinePolicy(_ key: IAMEntityKey, name: String) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("DELETE FROM iam_inline_policies WHERE \(Self.policyOwner) AND name = ?", Self.keyValues(key) + [.text(name)]) == 1
        }
    }

    static let policyColumns = "arn, account_id, name, path, id, document, description, created_at"

    static func policyRow(_ r: PGRow) throws -> ManagedPolicyRecord {
        ManagedPolicyRecord(accountID: try r.text(1), name: try r.text(2), path: try r.text(3), id: try r.text(4), document: try r.text(5),
                            description: try r.optionalText(6), createdAt: try r.double(7))
    }

    public func createManagedPolicy(_ p: ManagedPolicyRecord) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("INSERT INTO iam_managed_policies(\(Self.policyColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", [
                .text(p.arn), .text(p.accountID), .text(p.name), .text(p.path), .text(p.id), .text(p.document),
                .optional(p.description), .real(p.createdAt),
            ]) == 1
        }
    }

    public func managedPolicy(arn: String) async throws -> ManagedPolicyRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.policyColumns) FROM iam_managed_policies WHERE arn = ?", [.text(arn)], row: Self.policyRow).first
        }
    }

    public func managedPolicies(account: String) async throws -> [ManagedPolicyRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.policyColumns) FROM iam_managed_policies WHERE account_id = ? ORDER BY arn",
                              [.text(account)], row: Self.policyRow)
        }
    }

    public func deleteManagedPolicy(arn: String) async throws -> Bool {
        try await authorizationWrite { c in
            guard try await c.execute("DELETE FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) == 1 else { return false }
            try await c.execute("DELETE FROM iam_attachments WHERE arn = ?", [.text(arn)])
            return true
        }
    }

    static func attach(_ c: PGConnection, _ key: IAMEntityKey, _ arn: String) async throws {
        try await c.execute("INSERT INTO iam_attachments(kind, account_id, entity, arn) VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            keyValues(key) + [.text(arn)])
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String) async throws {
        try await authorizationWrite { c in try await Self.attach(c, key, arn) }
    }

    public func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("DELETE FROM iam_attachments WHERE \(Self.policyOwner) AND arn = ?", Self.keyValues(key) + [.text(arn)]) == 1
        }
    }

    public func attachedPolicies(_ key: IAMEntityKey) async throws -> [String] {
        try await read { c in
            try await c.query("SELECT arn FROM iam_attachments WHERE \(Self.policyOwner) ORDER BY arn", Self.keyValues(key)) { try $0.text(0) }
        }
    }

    public func attachmentCount(arn: String) async throws -> Int {
        try await read { c in try await c.count("SELECT count(*) FROM iam_attachments WHERE arn = ?", [.text(arn)]) }
    }

    static func addMembership(_ c: PGConnection, _ user: String, _ group: String, _ account: String) async throws {
        try await c.execute("INSERT INTO iam_group_members(account_id, group_name, user_name) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
                            [.text(account), .text(group), .text(user)])
    }

    public func addUser(_ user: String, toGroup group: String, account: String) async throws {
        try await authorizationWrite { c in try await Self.addMembership(c, user, group, account) }
    }

    public func removeUser(_ user: String, fromGroup group: String, account: String) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("DELETE FROM iam_group_members WHERE account_id = ? AND group_name = ? AND user_name = ?",
                                [.text(account), .text(group), .text(user)]) == 1
        }
    }

    public func groups(ofUser user: String, account: String) async throws -> [String] {
        try await read { c in
            try await c.query("SELECT group_name FROM iam_group_members WHERE account_id = ? AND user_name = ? ORDER BY group_name",
                              [.text(account), .text(user)]) { try $0.text(0) }
        }
    }

    public func users(inGroup group: String, account: String) async throws -> [String] {
        try await read { c in
            try await c.query("SELECT user_name FROM iam_group_members WHERE account_id = ? AND group_name = ? ORDER BY user_name",
                              [.text(account), .text(group)]) { try $0.text(0) }
        }
    }

    // MARK: OIDC providers

    static let oidcColumns = "account_id, url, client_ids, thumbprints, created_at"

    static func encodeList(_ list: [String]) throws -> String { try StoredValues.encodeList(list) }

    static func decodeList(_ text: String, _ what: @autoclosure () -> String) throws -> [String] {
        try StoredValues.decodeList(text, what())
    }

    static func oidcRow(_ r: PGRow) throws -> OIDCProviderRecord {
        let url = try r.text(1)
        return OIDCProviderRecord(accountID: try r.text(0), url: url,
                                  clientIDs: try decodeList(try r.text(2), "client ids of OIDC provider \(url)"),
                                  thumbprints: try decodeList(try r.text(3), "thumbprints of OIDC provider \(url)"), createdAt: try r.double(4))
    }

    public func createOIDCProvider(_ p: OIDCProviderRecord) async throws -> Bool {
        let values: [PGValue] = [.text(p.arn), .text(p.accountID), .text(p.url), .text(try Self.encodeList(p.clientIDs)),
                                 .text(try Self.encodeList(p.thumbprints)), .real(p.createdAt)]
        return try await authorizationWrite { c in
            try await c.execute("INSERT INTO iam_oidc_providers(arn, \(Self.oidcColumns)) VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING", values) == 1
        }
    }

    public func oidcProvider(arn: String) async throws -> OIDCProviderRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.oidcColumns) FROM iam_oidc_providers WHERE arn = ?", [.text(arn)], row: Self.oidcRow).first
        }
    }

    public func oidcProviders(account: String) async throws -> [OIDCProviderRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.oidcColumns) FROM iam_oidc_providers WHERE account_id = ? ORDER BY arn",
                              [.text(account)], row: Self.oidcRow)
        }
    }

    public func deleteOIDCProvider(arn: String) async throws -> Bool {
        try await authorizationWrite { c in try await c.execute("DELETE FROM iam_oidc_providers WHERE arn = ?", [.text(arn)]) == 1 }
    }
}

// MARK: guarded writes (check and write in one transaction)

extension PostgresMetadataStore {
    static func entityExists(_ c: PGConnection, _ key: IAMEntityKey) async throws -> Bool {
        try await c.exists("SELECT 1 FROM iam_entities WHERE \(entityKey)", keyValues(key))
    }

    public func insertAccessKey(_ key: AccessKeyRecord, limit: AccessKeyLimit) async throws -> Bool {
        try await authorizationWrite { c in
            guard try await c.exists("SELECT 1 FROM accounts WHERE id = ?", [.text(key.accountID)]) else {
                throw StorageError("unknown account \(key.accountID)")
            }
            switch limit {
            case .unlimited: break
            case .perPrincipal(let n):
                if try await c.count("SELECT count(*) FROM access_keys WHERE account_id = ? AND principal_arn = ?",
                                     [.text(key.accountID), .text(key.principalARN)]) >= n { return false }
            case .perAccount(let n):
                if try await c.count("SELECT count(*) FROM access_keys WHERE account_id = ?", [.text(key.accountID)]) >= n { return false }
            }
            try await c.execute("INSERT INTO access_keys(\(Self.keyColumns)) VALUES(?, ?, ?, ?, ?, ?)", Self.keyValues(key))
            return true
        }
    }

    public func deleteEntityIfUnreferenced(_ key: IAMEntityKey) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            let v = Self.keyValues(key)
            guard let entity = try await c.query("SELECT \(Self.entityColumns) FROM iam_entities WHERE \(Self.entityKey)",
                                                 v, row: Self.entityRow).first else { return .notFound }
            var referenced = try await c.exists("SELECT 1 FROM iam_inline_policies WHERE \(Self.policyOwner)", v)
            if !referenced { referenced = try await c.exists("SELECT 1 FROM iam_attachments WHERE \(Self.policyOwner)", v) }
            let account = PGValue.text(key.accountID), name = PGValue.text(key.name)
            switch key.kind {
            case .user:
                if !referenced {
                    referenced = try await c.exists("SELECT 1 FROM access_keys WHERE account_id = ? AND principal_arn = ?", [account, .text(entity.arn)])
                }
                if !referenced {
                    referenced = try await c.exists("SELECT 1 FROM iam_group_members WHERE account_id = ? AND user_name = ?", [account, name])
                }
            case .group:
                if !referenced {
                    referenced = try await c.exists("SELECT 1 FROM iam_group_members WHERE account_id = ? AND group_name = ?", [account, name])
                }
            case .role: break
            }
            if referenced { return .inUse }
            try await c.execute("DELETE FROM iam_entities WHERE \(Self.entityKey)", v)
            return .done
        }
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String, totalSizeLimit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            guard try await Self.entityExists(c, key) else { return .notFound }
            if let totalSizeLimit {
                let others = try await c.query("SELECT document FROM iam_inline_policies WHERE \(Self.policyOwner) AND name <> ?",
                                               Self.keyValues(key) + [.text(name)]) { try $0.text(0) }
                let total = (others + [document]).reduce(0) { $0 + InlinePolicyQuota.chargedSize($1) }
                if total > totalSizeLimit { return .limitReached }
            }
            try await Self.upsertInlinePolicy(c, key, name, document)
            return .done
        }
    }

    public func deleteManagedPolicyIfUnattached(arn: String) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            guard try await c.exists("SELECT 1 FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) else { return .notFound }
            if try await c.exists("SELECT 1 FROM iam_attachments WHERE arn = ?", [.text(arn)]) { return .inUse }
            try await c.execute("DELETE FROM iam_managed_policies WHERE arn = ?", [.text(arn)])
            return .done
        }
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String, policyMustExist: Bool, limit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            guard try await Self.entityExists(c, key) else { return .notFound }
            if policyMustExist, try await !c.exists("SELECT 1 FROM iam_managed_policies WHERE arn = ?", [.text(arn)]) {
                return .notFound
            }
            if let limit {
                let attached = try await c.query("SELECT arn FROM iam_attachments WHERE \(Self.policyOwner)", Self.keyValues(key)) { try $0.text(0) }
                if !attached.contains(arn), attached.count >= limit { return .limitReached }
            }
            try await Self.attach(c, key, arn)
            return .done
        }
    }

    public func addMember(_ user: String, toGroup group: String, account: String, limit: Int?) async throws -> IdentityWriteResult {
        try await authorizationWrite { c in
            guard try await Self.entityExists(c, IAMEntityKey(.user, account, user)),
                  try await Self.entityExists(c, IAMEntityKey(.group, account, group)) else { return .notFound }
            if let limit {
                let groups = try await c.query("SELECT group_name FROM iam_group_members WHERE account_id = ? AND user_name = ?",
                                               [.text(account), .text(user)]) { try $0.text(0) }
                if !groups.contains(group), groups.count >= limit { return .limitReached }
            }
            try await Self.addMembership(c, user, group, account)
            return .done
        }
    }
}
