import BerthVersions
import Foundation

/// Orders version strings of one ecosystem.
public protocol VersionComparator: Sendable {
    /// How `a` compares with `b`, or `nil` when either is not a valid version of this ecosystem.
    func compare(_ a: String, _ b: String) -> ComparisonResult?
}

/// Compares with BerthVersions' ordering for one ecosystem (dpkg, apk, rpm, PEP 440, SemVer/npm, Go).
public struct EcosystemVersionComparator: VersionComparator {
    public let ecosystem: Ecosystem

    public init(_ ecosystem: Ecosystem) { self.ecosystem = ecosystem }

    public func compare(_ a: String, _ b: String) -> ComparisonResult? {
        guard let order = try? BerthVersions.VersionComparator.compare(a, b, in: ecosystem) else { return nil }
        switch order {
        case .less: return .orderedAscending
        case .equal: return .orderedSame
        case .greater: return .orderedDescending
        }
    }
}

/// The comparator for an OSV ecosystem name, or `nil` when none is known.
public func versionComparator(forEcosystem ecosystem: String) -> (any VersionComparator)? {
    Ecosystem(osv: ecosystem).map(EcosystemVersionComparator.init)
}
