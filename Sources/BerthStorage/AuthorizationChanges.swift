import BerthCore
import Synchronization

/// Counts the writes that can change an authorization decision: access keys, IAM entities, their
/// inline and attached policies, managed policies, group memberships, OIDC providers, account settings
/// (the registry policy), repository settings (policy, tags) and repository creation and deletion.
///
/// A store advances it after every such write; the key and policy caches remember the value they were
/// filled at and reload when it moved. So a change made through this process takes effect on the very
/// next request, while the hot path pays one atomic load. Writes made by another process on the same
/// database (`berth admin`, later other nodes) are not seen here: for those the caches' age limit
/// (`authCacheSeconds`) bounds the staleness.
public final class AuthorizationGeneration: Sendable {
    private let value = Atomic<UInt64>(0)

    public init() {}

    /// The number of authorization-relevant writes so far.
    public var current: UInt64 { value.load(ordering: .acquiring) }

    /// Records that an authorization-relevant write happened (call it after the write is visible).
    public func advance() {
        _ = value.wrappingAdd(1, ordering: .releasing)
    }
}

/// A store whose authorization-relevant writes advance ``authorizationGeneration``.
public protocol AuthorizationChangeTracking: Sendable {
    var authorizationGeneration: AuthorizationGeneration { get }
}

extension AuthorizationGeneration {
    /// Runs an authorization-relevant write and advances the counter afterwards, also when the write
    /// failed half-way (an extra reload is harmless, a missed one is not).
    public func recording<T>(_ write: () throws -> T) rethrows -> T {
        defer { advance() }
        return try write()
    }
}

/// A stored value that cannot be decoded (a damaged row, or one written by a newer version).
/// Never replaced by a default: a policy that cannot be read must not silently stop applying.
public struct CorruptMetadataError: Error, Sendable, CustomStringConvertible {
    /// What the value belongs to, e.g. `settings of repository 123456789012/app`.
    public var what: String
    public var detail: String

    public init(what: String, detail: String) {
        self.what = what
        self.detail = detail
    }

    public var description: String { "stored \(what) cannot be decoded: \(detail)" }
}
