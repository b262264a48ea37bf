import BerthCore

/// The in-memory store's KMS tables.
struct KMSState {
    var keys: [String: KMSKeyRecord] = [:]
    /// Key id → material by version.
    var material: [String: [Int: KMSKeyMaterialRecord]] = [:]
    /// Account → alias name → alias.
    var aliases: [String: [String: KMSAliasRecord]] = [:]

    func isKey(_ keyID: String, of account: String) -> Bool { keys[keyID]?.accountID == account }
}

extension InMemoryMetadataStore {
    public func createKMSKey(_ key: KMSKeyRecord, material: KMSKeyMaterialRecord) async throws -> Bool {
        kms.withLock { s in
            guard s.keys[key.keyID] == nil else { return false }
            s.keys[key.keyID] = key
            s.material[key.keyID] = [material.version: material]
            return true
        }
    }

    public func kmsKey(_ keyID: String) async throws -> KMSKeyRecord? {
        kms.withLock { $0.keys[keyID] }
    }

    public func kmsKeys(account: String, after last: String?, limit: Int) async throws -> [KMSKeyRecord] {
        kms.withLock { s in
            Array(s.keys.values.filter { $0.accountID == account && $0.keyID > (last ?? "") }
                .sorted { $0.keyID < $1.keyID }.prefix(limit))
        }
    }

    public func updateKMSKey(_ keyID: String, addingMaterial material: KMSKeyMaterialRecord?,
                             _ update: @escaping @Sendable (inout KMSKeyRecord) throws -> Void) async throws -> KMSKeyRecord? {
        try kms.withLock { s in
            guard var key = s.keys[keyID] else { return nil }
            try update(&key)
            key.keyID = keyID
            s.keys[keyID] = key
            if let material { s.material[keyID, default: [:]][material.version] = material }
            return key
        }
    }

    public func kmsKeyMaterial(_ keyID: String, version: Int) async throws -> KMSKeyMaterialRecord? {
        kms.withLock { $0.material[keyID]?[version] }
    }

    public func kmsKeyMaterials(_ keyID: String) async throws -> [KMSKeyMaterialRecord] {
        kms.withLock { s in (s.material[keyID] ?? [:]).values.sorted { $0.version < $1.version } }
    }

    public func deleteKMSKey(_ keyID: String, dueBy: Double) async throws -> Bool {
        kms.withLock { s in
            guard let key = s.keys[keyID], key.state == "PendingDeletion", let date = key.deletionDate, date <= dueBy else { return false }
            s.keys[keyID] = nil
            s.material[keyID] = nil
            s.aliases[key.accountID] = s.aliases[key.accountID]?.filter { $0.value.targetKeyID != keyID }
            return true
        }
    }

    public func kmsKeysDue(at now: Double, limit: Int) async throws -> [KMSKeyRecord] {
        kms.withLock { s in
            Array(s.keys.values.filter { k in
                (k.state == "PendingDeletion" && (k.deletionDate ?? .infinity) <= now)
                    || (k.state == "Enabled" && k.rotationEnabled && (k.nextRotationAt ?? .infinity) <= now)
            }.sorted { $0.keyID < $1.keyID }.prefix(limit))
        }
    }

    public func createKMSAlias(_ alias: KMSAliasRecord) async throws -> KMSAliasWrite {
        kms.withLock { s in
            guard s.isKey(alias.targetKeyID, of: alias.accountID) else { return .keyNotFound }
            guard s.aliases[alias.accountID]?[alias.name] == nil else { return .aliasConflict }
            s.aliases[alias.accountID, default: [:]][alias.name] = alias
            return .done
        }
    }

    public func updateKMSAlias(account: String, name: String, targetKeyID: String, at: Double) async throws -> KMSAliasWrite {
        kms.withLock { s in
            guard s.isKey(targetKeyID, of: account) else { return .keyNotFound }
            guard var alias = s.aliases[account]?[name] else { return .aliasConflict }
            alias.targetKeyID = targetKeyID
            alias.updatedAt = at
            s.aliases[account]![name] = alias
            return .done
        }
    }

    public func deleteKMSAlias(account: String, name: String) async throws -> Bool {
        kms.withLock { s in s.aliases[account]?.removeValue(forKey: name) != nil }
    }

    public func kmsAlias(account: String, name: String) async throws -> KMSAliasRecord? {
        kms.withLock { $0.aliases[account]?[name] }
    }

    public func kmsAliases(account: String, keyID: String?) async throws -> [KMSAliasRecord] {
        kms.withLock { s in
            (s.aliases[account] ?? [:]).values.filter { keyID == nil || $0.targetKeyID == keyID }.sorted { $0.name < $1.name }
        }
    }
}
