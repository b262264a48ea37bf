import BerthCore
import Foundation

extension SQLiteMetadataStore {
    static let kmsKeyColumns = """
        key_id, account_id, description, key_manager, state, created_at, deletion_date, pending_window_days, policy, tags,
        rotation_enabled, rotation_period_days, next_rotation_at, current_version, on_demand_rotations
        """

    static func kmsKeyRow(_ r: SQLiteRow) throws -> KMSKeyRecord {
        let tags: [ResourceTag]
        do {
            tags = try JSONDecoder().decode([ResourceTag].self, from: Data(r.text(9).utf8))
        } catch {
            throw CorruptMetadataError(what: "tags of KMS key \(r.text(0))", detail: "\(error)")
        }
        func optInt(_ i: Int32) -> Int? { r.isNull(i) ? nil : Int(r.int(i)) }
        func optReal(_ i: Int32) -> Double? { r.isNull(i) ? nil : r.double(i) }
        return KMSKeyRecord(keyID: r.text(0), accountID: r.text(1), description: r.text(2), keyManager: r.text(3), state: r.text(4),
                            createdAt: r.double(5), deletionDate: optReal(6), pendingWindowDays: optInt(7), policy: r.text(8),
                            tags: tags, rotationEnabled: r.int(10) != 0, rotationPeriodDays: optInt(11),
                            nextRotationAt: optReal(12), currentVersion: Int(r.int(13)), onDemandRotations: Int(r.int(14)))
    }

    static func kmsKeyValues(_ k: KMSKeyRecord) throws -> [SQLiteValue] {
        let tags = String(decoding: try JSONEncoder().encode(k.tags), as: UTF8.self)
        return [.text(k.keyID), .text(k.accountID), .text(k.description), .text(k.keyManager), .text(k.state), .real(k.createdAt),
                optional(k.deletionDate), k.pendingWindowDays.map { .integer(Int64($0)) } ?? .null, .text(k.policy), .text(tags),
                .integer(k.rotationEnabled ? 1 : 0), k.rotationPeriodDays.map { .integer(Int64($0)) } ?? .null,
                optional(k.nextRotationAt), .integer(Int64(k.currentVersion)), .integer(Int64(k.onDemandRotations))]
    }

    static func insertMaterial(_ c: SQLiteConnection, _ m: KMSKeyMaterialRecord) throws {
        try c.execute("INSERT INTO kms_key_material(key_id, version, material, created_at, rotation_type) VALUES(?, ?, ?, ?, ?)",
                      [.text(m.keyID), .integer(Int64(m.version)), .blob(m.sealedMaterial), .real(m.createdAt),
                       m.rotationType.map { .text($0) } ?? .null])
    }

    static func materialRow(_ r: SQLiteRow) -> KMSKeyMaterialRecord {
        KMSKeyMaterialRecord(keyID: r.text(0), version: Int(r.int(1)), sealedMaterial: r.blob(2), createdAt: r.double(3),
                             rotationType: r.optionalText(4))
    }

    static func readKMSKey(_ c: SQLiteConnection, _ id: String) throws -> KMSKeyRecord? {
        try c.query("SELECT \(kmsKeyColumns) FROM kms_keys WHERE key_id = ?", [.text(id)], row: kmsKeyRow).first
    }

    public func createKMSKey(_ key: KMSKeyRecord, material: KMSKeyMaterialRecord) async throws -> Bool {
        let values = try Self.kmsKeyValues(key)
        return try await db.write { c in
            try c.transaction {
                guard try Self.readKMSKey(c, key.keyID) == nil else { return false }
                try c.execute("INSERT INTO kms_keys(\(Self.kmsKeyColumns)) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
                try Self.insertMaterial(c, material)
                return true
            }
        }
    }

    public func kmsKey(_ keyID: String) async throws -> KMSKeyRecord? {
        try await db.read { c in try Self.readKMSKey(c, keyID) }
    }

    public func kmsKeys(account: String, after last: String?, limit: Int) async throws -> [KMSKeyRecord] {
        try await db.read { c in
            try c.query("SELECT \(Self.kmsKeyColumns) FROM kms_keys WHERE account_id = ? AND key_id > ? ORDER BY key_id LIMIT ?",
                        [.text(account), .text(last ?? ""), .integer(Int64(limit))], row: Self.kmsKeyRow)
        }
    }

    public func updateKMSKey(_ keyID: String, addingMaterial material: KMSKeyMaterialRecord?,
                             _ update: @escaping @Sendable (inout KMSKeyRecord) throws -> Void) async throws -> KMSKeyRecord? {
        try await db.write { c in
            try c.transaction {
                guard var key = try Self.readKMSKey(c, keyID) else { return nil }
                try update(&key)
                key.keyID = keyID
                var values = try Self.kmsKeyValues(key)
                values.append(values.removeFirst())
                try c.execute("""
                    UPDATE kms_keys SET account_id = ?, description = ?, key_manager = ?, state = ?, created_at = ?,
                        deletion_date = ?, pending_window_days = ?, policy = ?, tags = ?, rotation_enabled = ?,
                        rotation_period_days = ?, next_rotation_at = ?, current_version = ?, on_demand_rotations = ?
                    WHERE key_id = ?
                    """, values)
                if let material { try Self.insertMaterial(c, material) }
                return key
            }
        }
    }

    public func kmsKeyMaterial(_ keyID: String, version: Int) async throws -> KMSKeyMaterialRecord? {
        try await db.read { c in
            try c.query("SELECT key_id, version, material, created_at, rotation_type FROM kms_key_material WHERE key_id = ? AND version = ?",
                        [.text(keyID), .integer(Int64(version))], row: Self.materialRow).first
        }
    }

    public func kmsKeyMaterials(_ keyID: String) async throws -> [KMSKeyMaterialRecord] {
        try await db.read { c in
            try c.query("SELECT key_id, version, material, created_at, rotation_type FROM kms_key_material WHERE key_id = ? ORDER BY version",
                        [.text(keyID)], row: Self.materialRow)
        }
    }

    public func deleteKMSKey(_ keyID: String, dueBy: Double) async throws -> Bool {
        try await db.write { c in
            try c.transaction {
                let due = try c.query("SELECT 1 FROM kms_keys WHERE key_id = ? AND state = 'PendingDeletion' AND deletion_date <= ?",
                                      [.text(keyID), .real(dueBy)]) { _ in true }
                guard !due.isEmpty else { return false }
                try c.execute("DELETE FROM kms_aliases WHERE key_id = ?", [.text(keyID)])
                try c.execute("DELETE FROM kms_key_material WHERE key_id = ?", [.text(keyID)])
                try c.execute("DELETE FROM kms_keys WHERE key_id = ?", [.text(keyID)])
                return true
            }
        }
    }

    public func kmsKeysDue(at now: Double, limit: Int) async throws -> [KMSKeyRecord] {
        try await db.read { c in
            try c.query("""
                SELECT \(Self.kmsKeyColumns) FROM kms_keys
                WHERE (state = 'PendingDeletion' AND deletion_date <= ?)
                   OR (state = 'Enabled' AND rotation_enabled = 1 AND next_rotation_at <= ?)
                ORDER BY key_id LIMIT ?
                """, [.real(now), .real(now), .integer(Int64(limit))], row: Self.kmsKeyRow)
        }
    }

    static func keyOfAccount(_ c: SQLiteConnection, _ keyID: String, _ account: String) throws -> Bool {
        !(try c.query("SELECT 1 FROM kms_keys WHERE key_id = ? AND account_id = ?", [.text(keyID), .text(account)]) { _ in true }).isEmpty
    }

    public func createKMSAlias(_ alias: KMSAliasRecord) async throws -> KMSAliasWrite {
        try await db.write { c in
            try c.transaction {
                guard try Self.keyOfAccount(c, alias.targetKeyID, alias.accountID) else { return .keyNotFound }
                let changed = try c.execute("""
                    INSERT OR IGNORE INTO kms_aliases(account_id, name, key_id, created_at, updated_at) VALUES(?, ?, ?, ?, ?)
                    """, [.text(alias.accountID), .text(alias.name), .text(alias.targetKeyID), .real(alias.createdAt), .real(alias.updatedAt)])
                return changed == 1 ? .done : .aliasConflict
            }
        }
    }

    public func updateKMSAlias(account: String, name: String, targetKeyID: String, at: Double) async throws -> KMSAliasWrite {
        try await db.write { c in
            try c.transaction {
                guard try Self.keyOfAccount(c, targetKeyID, account) else { return .keyNotFound }
                let changed = try c.execute("UPDATE kms_aliases SET key_id = ?, updated_at = ? WHERE account_id = ? AND name = ?",
                                            [.text(targetKeyID), .real(at), .text(account), .text(name)])
                return changed == 1 ? .done : .aliasConflict
            }
        }
    }

    public func deleteKMSAlias(account: String, name: String) async throws -> Bool {
        try await db.write { c in
            try c.execute("DELETE FROM kms_aliases WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) == 1
        }
    }

    static func aliasRow(_ r: SQLiteRow) -> KMSAliasRecord {
        KMSAliasRecord(accountID: r.text(0), name: r.text(1), targetKeyID: r.text(2), createdAt: r.double(3), updatedAt: r.double(4))
    }

    public func kmsAlias(account: String, name: String) async throws -> KMSAliasRecord? {
        try await db.read { c in
            try c.query("SELECT account_id, name, key_id, created_at, updated_at FROM kms_aliases WHERE account_id = ? AND name = ?",
                        [.text(account), .text(name)], row: Self.aliasRow).first
        }
    }

    public func kmsAliases(account: String, keyID: String?) async throws -> [KMSAliasRecord] {
        try await db.read { c in
            if let keyID {
                return try c.query("""
                    SELECT account_id, name, key_id, created_at, updated_at FROM kms_aliases
                    WHERE account_id = ? AND key_id = ? ORDER BY name
                    """, [.text(account), .text(keyID)], row: Self.aliasRow)
            }
            return try c.query("SELECT account_id, name, key_id, created_at, updated_at FROM kms_aliases WHERE account_id = ? ORDER BY name",
                               [.text(account)], row: Self.aliasRow)
        }
    }
}
