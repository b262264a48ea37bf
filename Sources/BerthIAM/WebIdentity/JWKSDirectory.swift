import BerthSupport
import Foundation
import Synchronization

/// Where the signing keys of OIDC issuers come from. Berth never fetches them: it has no internet.
public protocol WebIdentityKeySource: Sendable {
    /// The JWKS of an issuer (its URL without `https://`), or nil when none is installed.
    func keys(forIssuer issuer: String) async -> JSONWebKeySet?
}

/// No issuer has keys: every web identity token is refused.
public struct NoWebIdentityKeys: WebIdentityKeySource {
    public init() {}
    public func keys(forIssuer issuer: String) async -> JSONWebKeySet? { nil }
}

/// Issuer keys held in memory (tests).
public final class StaticWebIdentityKeys: WebIdentityKeySource {
    let sets: Mutex<[String: JSONWebKeySet]>
    public init(_ sets: [String: JSONWebKeySet] = [:]) { self.sets = Mutex(sets) }
    public func set(_ keys: JSONWebKeySet?, forIssuer issuer: String) { sets.withLock { $0[issuer] = keys } }
    public func keys(forIssuer issuer: String) async -> JSONWebKeySet? { sets.withLock { $0[issuer] } }
}

/// JWKS files in one directory, one per issuer: `<dir>/<issuer with "/" as "_">.json`, e.g.
/// `token.actions.githubusercontent.com.json` or `gitlab.example.com_ci.json`. A file is looked at
/// (stat) at most every `recheckSeconds` and read again only when its size or modification time changed,
/// so replacing it rotates the keys within seconds.
public final class JWKSDirectory: WebIdentityKeySource {
    public let directory: String
    let clock: any WallClock
    let recheckSeconds: Double
    private struct Entry {
        var keys: JSONWebKeySet?
        var stamp: String
        var checkedAt: Double
    }
    /// Entries never expire: a stale one is re-stat'ed and kept when the file did not change.
    private let cache = BoundedCache<String, Entry>(capacity: 1000)

    public init(directory: String, clock: any WallClock = SystemWallClock(), recheckSeconds: Double = 2) {
        self.directory = directory
        self.clock = clock
        self.recheckSeconds = recheckSeconds
    }

    /// The file name of an issuer's JWKS: its URL without `https://` and trailing `/`, `/` replaced by `_`.
    public static func fileName(forIssuer issuer: String) -> String {
        var s = Substring(issuer)
        if s.hasPrefix("https://") { s = s.dropFirst(8) }
        while s.hasSuffix("/") { s = s.dropLast() }
        return s.replacingOccurrences(of: "/", with: "_") + ".json"
    }

    public func keys(forIssuer issuer: String) async -> JSONWebKeySet? {
        let name = Self.fileName(forIssuer: issuer)
        // Provider URLs are validated on creation; refuse anything that could leave the directory anyway.
        guard !name.hasPrefix("."), !name.contains("\u{0}") else { return nil }
        let now = clock.now()
        let cached = cache.value(forKey: name)
        if let hit = cached, now - hit.checkedAt < recheckSeconds { return hit.keys }
        let path = (directory as NSString).appendingPathComponent(name)
        // Small files and a stat every few seconds at most: read them where we are.
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        let stamp = attributes.map { "\(($0[.size] as? NSNumber)?.intValue ?? -1)/\(($0[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0)" } ?? "missing"
        if var hit = cached, hit.stamp == stamp {
            hit.checkedAt = now
            cache.set(hit, forKey: name)
            return hit.keys
        }
        var keys: JSONWebKeySet?
        if attributes != nil, let data = FileManager.default.contents(atPath: path) {
            keys = JSONWebKeySet(json: Array(data))
        }
        cache.set(Entry(keys: keys, stamp: stamp, checkedAt: now), forKey: name)
        return keys
    }
}
