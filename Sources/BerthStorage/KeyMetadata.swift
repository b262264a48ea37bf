import BerthCore

/// KMS keys, their sealed material versions and their aliases. Writes that check something (the
/// alias's target, the key's state) check and write in one transaction.
public protocol KeyMetadata: Sendable {
    /// Stores a new key with its first material version; false when a key with that id exists.
    func createKMSKey(_ key: KMSKeyRecord, material: KMSKeyMaterialRecord) async throws -> Bool
    func kmsKey(_ keyID: String) async throws -> KMSKeyRecord?
    /// Keys of an account in key-id order after `last`, up to `limit` rows.
    func kmsKeys(account: String, after last: String?, limit: Int) async throws -> [KMSKeyRecord]
    /// Reads a key, applies `update` and writes it back in one transaction; nil when the key does not
    /// exist. An error thrown by `update` leaves the key as it was. With `material`, that new material
    /// version is stored in the same transaction (a rotation).
    func updateKMSKey(_ keyID: String, addingMaterial material: KMSKeyMaterialRecord?,
                      _ update: @escaping @Sendable (inout KMSKeyRecord) throws -> Void) async throws -> KMSKeyRecord?
    func kmsKeyMaterial(_ keyID: String, version: Int) async throws -> KMSKeyMaterialRecord?
    /// Every material version of a key, oldest first.
    func kmsKeyMaterials(_ keyID: String) async throws -> [KMSKeyMaterialRecord]
    /// Deletes the key, all its material and its aliases if it is still `PendingDeletion` with a
    /// deletion date at or before `dueBy`; false otherwise.
    func deleteKMSKey(_ keyID: String, dueBy: Double) async throws -> Bool
    /// Keys whose scheduled deletion is due at `now`, or whose automatic rotation is.
    func kmsKeysDue(at now: Double, limit: Int) async throws -> [KMSKeyRecord]

    /// Creates an alias if its name is free in the account and the target is a key of that account.
    func createKMSAlias(_ alias: KMSAliasRecord) async throws -> KMSAliasWrite
    /// Points an existing alias at another key of its account.
    func updateKMSAlias(account: String, name: String, targetKeyID: String, at: Double) async throws -> KMSAliasWrite
    @discardableResult
    func deleteKMSAlias(account: String, name: String) async throws -> Bool
    func kmsAlias(account: String, name: String) async throws -> KMSAliasRecord?
    /// An account's aliases in name order (only those of `keyID` when given).
    func kmsAliases(account: String, keyID: String?) async throws -> [KMSAliasRecord]
}
