import BerthCore
import BerthStorage
import Foundation

extension PostgresMetadataStore {
    static let kmsKeyColumns = """
        key_id, account_id, description, key_manager, state, created_at, deletion_date, pending_window_days, policy, tags,
        rotation_enabled, rotation_period_days, next_rotation_at, current_version, on_demand_rotations
        """

    static func kmsKeyRow(_ r: PGRow) throws -> KMSKeyRecord {
        let tags: [ResourceTag]
        do {
            tags = try JSONDecoder().decode([ResourceTag].self, from: Data(try r.text(9).utf8))
        } catch {
            throw CorruptMetadataError(what: "tags of KMS key \(try r.text(0))", detail: "\(error)")
        }
        return KMSKeyRecord(keyID: try r.text(0), accountID: try r.text(1), description: try r.text(2), keyManager: try r.text(3),
                            state: try r.text(4), createdAt: try r.double(5), deletionDate: try r.optionalDouble(6),
                            pendingWindowDays: try r.optionalInt(7), policy: try r.text(8), tags: tags,
                            rotationEnabled: try r.int(10) != 0, rotationPeriodDays: try r.optionalInt(11),
                            nextRotationAt: try r.optionalDouble(12), currentVersion: Int(try r.int(13)),
                            onDemandRotations: Int(try r.int(14)))
    }

    static func kmsKeyValues(_ k: KMSKeyRecord) throws -> [PGValue] {
        let tags = String(decoding: try JSONEncoder().encode(k.tags), as: UTF8.self)
        return [.text(k.keyID), .text(k.accountID), .text(k.description), .text(k.keyManager), .text(k.state), .real(k.createdAt),
                .optional(k.deletionDate), .optional(k.pendingWindowDays), .text(k.policy), .text(tags),
                .integer(k.rotationEnabled ? 1 : 0), .optional(k.rotationPeriodDays),
                .optional(k.nextRotationAt), .integer(Int64(k.currentVersion)), .integer(Int64(k.onDemandRotations))]
    }

    static func insertMaterial(_ c: PGConnection, _ m: KMSKeyMaterialRecord) async throws {
        try await c.execute("INSERT INTO kms_key_material(key_id, version, material, created_at, rotation_type) VALUES(?, ?, ?, ?, ?)",
                            [.text(m.keyID), .integer(Int64(m.version)), .blob(m.sealedMaterial), .real(m.createdAt), .optional(m.rotationType)])
    }

    static let materialColumns = "key_id, version, material, created_at, rotation_type"

    static func materialRow(_ r: PGRow) throws -> KMSKeyMaterialRecord {
        KMSKeyMaterialRecord(keyID: try r.text(0), version: Int(try r.int(1)), sealedMaterial: try r.blob(2), createdAt: try r.double(3),
                             rotationType: try r.optionalText(4))
    }

    static func readKMSKey(_ c: PGConnection, _ id: String, forUpdate: Bool = false) async throws -> KMSKeyRecord? {
        try await c.query("SELECT \(kmsKeyColumns) FROM kms_keys WHERE key_id = ?\(forUpdate ? " FOR UPDATE" : "")", [.text(id)],
                          row: kmsKeyRow).first
    }

    public func createKMSKey(_ key: KMSKeyRecord, material: KMSKeyMaterialRecord) async throws -> Bool {
        let values = try Self.kmsKeyValues(key)
        return try await transaction { c in
            guard try await c.execute("""
                INSERT INTO kms_keys(\(Self.kmsKeyColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, values) == 1 else { return false }
            try await Self.insertMaterial(c, material)
            return true
        }
    }

    public func kmsKey(_ keyID: String) async throws -> KMSKeyRecord? {
        try await read { c in try await Self.readKMSKey(c, keyID) }
    }

    public func kmsKeys(account: String, after last: String?, limit: Int) async throws -> [KMSKeyRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.kmsKeyColumns) FROM kms_keys WHERE account_id = ? AND key_id > ? ORDER BY key_id LIMIT ?",
                              [.text(account), .text(last ?? ""), .integer(Int64(limit))], row: Self.kmsKeyRow)
        }
    }

    public func updateKMSKey(_ keyID: String, addingMaterial material: KMSKeyMaterialRecord?,
                             _ update: @escaping @Sendable (inout KMSKeyRecord) throws -> Void) async throws -> KMSKeyRecord? {
        try await transaction { c in
            guard var key = try await Self.readKMSKey(c, keyID, forUpdate: true) else { return nil }
            try update(&key)
            key.keyID = keyID
            var values = try Self.kmsKeyValues(key)
            values.append(values.removeFirst())
            try await c.execute("""
                UPDATE kms_keys SET account_id = ?, description = ?, key_manager = ?, state = ?, created_at = ?,
                    deletion_date = ?, pending_window_days = ?, policy = ?, tags = ?, rotation_enabled = ?,
                    rotation_period_days = ?, next_rotation_at = ?, current_version = ?, on_demand_rotations = ?
                WHERE key_id = ?
                """, values)
            if let material { try await Self.insertMaterial(c, material) }
            return key
        }
    }

    public func kmsKeyMaterial(_ keyID: String, version: Int) async throws -> KMSKeyMaterialRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.materialColumns) FROM kms_key_material WHERE key_id = ? AND version = ?",
                              [.text(keyID), .integer(Int64(version))], row: Self.materialRow).first
        }
    }

    public func kmsKeyMaterials(_ keyID: String) async throws -> [KMSKeyMaterialRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.materialColumns) FROM kms_key_material WHERE key_id = ? ORDER BY version",
                              [.text(keyID)], row: Self.materialRow)
        }
    }

    public func deleteKMSKey(_ keyID: String, dueBy: Double) async throws -> Bool {
        try await transaction { c in
            guard try await c.exists("SELECT 1 FROM kms_keys WHERE key_id = ? AND state = 'PendingDeletion' AND deletion_date <= ?",
                                     [.text(keyID), .real(dueBy)]) else { return false }
            try await c.execute("DELETE FROM kms_aliases WHERE key_id = ?", [.text(keyID)])
            try await c.execute("DELETE FROM kms_key_material WHERE key_id = ?", [.text(keyID)])
            try await c.execute("DELETE FROM kms_keys WHERE key_id = ?", [.text(keyID)])
            return true
        }
    }

    public func kmsKeysDue(at now: Double, limit: Int) async throws -> [KMSKeyRecord] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.kmsKeyColumns) FROM kms_keys
                WHERE (state = 'PendingDeletion' AND deletion_date <= $1)
                   OR (state = 'Enabled' AND rotation_enabled = 1 AND next_rotation_at <= $1)
                ORDER BY key_id LIMIT $2
                """, [.real(now), .integer(Int64(limit))], row: Self.kmsKeyRow)
        }
    }

    static func keyOfAccount(_ c: PGConnection, _ keyID: String, _ account: String) async throws -> Bool {
        try await c.exists("SELECT 1 FROM kms_keys WHERE key_id = ? AND account_id = ?", [.text(keyID), .text(account)])
    }

    public func createKMSAlias(_ alias: KMSAliasRecord) async throws -> KMSAliasWrite {
        try await transaction { c in
            guard try await Self.keyOfAccount(c, alias.targetKeyID, alias.accountID) else { return .keyNotFound }
            let changed = try await c.execute("""
                INSERT INTO kms_aliases(account_id, name, key_id, created_at, updated_at) VALUES(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, [.text(alias.accountID), .text(alias.name), .text(alias.targetKeyID), .real(alias.createdAt), .real(alias.updatedAt)])
            return changed == 1 ? .done : .aliasConflict
        }
    }

    public func updateKMSAlias(account: String, name: String, targetKeyID: String, at: Double) async throws -> KMSAliasWrite {
        try await transaction { c in
            guard try await Self.keyOfAccount(c, targetKeyID, account) else { return .keyNotFound }
            let changed = try await c.execute("UPDATE kms_aliases SET key_id = ?, updated_at = ? WHERE account_id = ? AND name = ?",
                                              [.text(targetKeyID), .real(at), .text(account), .text(name)])
            return changed == 1 ? .done : .aliasConflict
        }
    }

    public func deleteKMSAlias(account: String, name: String) async throws -> Bool {
        try await read { c in
            try await c.execute("DELETE FROM kms_aliases WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) == 1
        }
    }

    static let aliasColumns = "account_id, name, key_id, created_at, updated_at"

    static func aliasRow(_ r: PGRow) throws -> KMSAliasRecord {
        KMSAliasRecord(accountID: try r.text(0), name: try r.text(1), targetKeyID: try r.text(2), createdAt: try r.double(3),
                       updatedAt: try r.double(4))
    }

    public func kmsAlias(account: String, name: String) async throws -> KMSAliasRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.aliasColumns) FROM kms_aliases WHERE account_id = ? AND name = ?",
                              [.text(account), .text(name)], row: Self.aliasRow).first
        }
    }

    public func kmsAliases(account: String, keyID: String?) async throws -> [KMSAliasRecord] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.aliasColumns) FROM kms_aliases WHERE account_id = $1 AND ($2::text IS NULL OR key_id = $2) ORDER BY name
                """, [.text(account), .optional(keyID)], row: Self.aliasRow)
        }
    }
}
