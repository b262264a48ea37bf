import Foundation

/// Orders version strings of one ecosystem.
public protocol VersionComparator: Sendable {
    /// How `a` compares with `b`, or `nil` when either is not a valid version of this ecosystem.
    func compare(_ a: String, _ b: String) -> ComparisonResult?
}

/// The comparator for an OSV ecosystem name, or `nil` when none is known.
public func versionComparator(forEcosystem ecosystem: String) -> (any VersionComparator)? {
    if ecosystem == "Debian" || ecosystem.hasPrefix("Debian:") || ecosystem == "Ubuntu" || ecosystem.hasPrefix("Ubuntu:") {
        return DpkgVersionComparator()
    }
    switch ecosystem {
    case "PyPI": return PEP440VersionComparator()
    case "npm": return SemanticVersionComparator()
    default: return nil
    }
}
