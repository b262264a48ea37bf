import BerthCore
import Foundation

/// Pull through cache rules (per registry, keyed by prefix) and Secrets Manager secrets (per account,
/// keyed by name). Both are stored as one versioned JSON document per row; writes that check something
/// (a count limit, the row's presence) check and write in one transaction.
public protocol PullThroughMetadata: Sendable {
    /// Stores a new rule unless one with that prefix exists or the registry already has `limit` rules.
    func createPullThroughCacheRule(_ rule: PullThroughCacheRuleRecord, limit: Int) async throws -> PullThroughCacheRuleInsert
    /// A registry's rules in prefix order.
    func pullThroughCacheRules(of registryID: String) async throws -> [PullThroughCacheRuleRecord]
    /// Reads a rule, applies `update` and writes it back in one transaction; nil when it does not exist.
    func updatePullThroughCacheRule(registryID: String, prefix: String,
                                    _ update: @escaping @Sendable (inout PullThroughCacheRuleRecord) throws -> Void) async throws -> PullThroughCacheRuleRecord?
    /// Removes a rule and returns it; nil when it does not exist.
    func deletePullThroughCacheRule(registryID: String, prefix: String) async throws -> PullThroughCacheRuleRecord?

    /// Stores a new secret; false when the account has one of that name.
    func createSecret(_ secret: StoredSecret) async throws -> Bool
    func secret(account: String, name: String) async throws -> StoredSecret?
    /// Reads a secret, applies `update` and writes it back in one transaction; nil when it does not exist.
    func updateSecret(account: String, name: String,
                      _ update: @escaping @Sendable (inout StoredSecret) throws -> Void) async throws -> StoredSecret?
    @discardableResult
    func deleteSecret(account: String, name: String) async throws -> Bool
    /// An account's secrets in name order.
    func secrets(account: String) async throws -> [StoredSecret]
}

/// The stored form of a rule or secret document: `{"v":1,"d":<record>}`.
public enum PullThroughDocument {
    static let version = 1

    struct Envelope<T: Codable>: Codable {
        var v: Int
        var d: T
    }

    public static func encode<T: Codable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(Envelope(v: version, d: value)), as: UTF8.self)
    }

    public static func decode<T: Codable>(_ text: String, as: T.Type) throws -> T {
        let e = try JSONDecoder().decode(Envelope<T>.self, from: Data(text.utf8))
        guard e.v == version else { throw StorageError("stored document version \(e.v) is not known (expected \(version))") }
        return e.d
    }

    /// The schema both SQL stores create (migration 8): the same in both dialects.
    public static let schema = """
        CREATE TABLE pull_through_cache_rules(
            registry_id TEXT NOT NULL, prefix TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY(registry_id, prefix));
        CREATE TABLE secrets(
            account_id TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL, PRIMARY KEY(account_id, name));
        """
}
