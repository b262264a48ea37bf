import Foundation

/// A key/value pair attached to a finding, as in ECR's `attributes` (`package_name`, `package_version`, …).
public struct FindingAttribute: Sendable, Equatable, Hashable, Codable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// One vulnerability found in one installed package.
public struct Finding: Sendable, Equatable {
    /// The advisory id (ECR's `name`), for example `CVE-2023-4911`.
    public var name: String
    public var description: String?
    /// A page describing the advisory.
    public var uri: String
    public var severity: FindingSeverity
    public var severitySource: SeveritySource
    public var package: InstalledPackage
    /// The name the advisory was matched on: the source package for dpkg, the PEP 503 name for PyPI.
    public var matchedName: String
    /// The version compared with the advisory's ranges: the source version for dpkg.
    public var matchedVersion: String
    /// The `fixed` event of the range that matched; `nil` when none is fixed (or it was `last_affected`).
    public var fixedVersion: String?
    /// The Debian Security Tracker urgency, when the advisory has one.
    public var urgency: String?
    public var aliases: [String]
    /// The advisory's CVSS v3 vectors, as written.
    public var cvssVectors: [String]
    /// The database feed (folder) the advisory came from.
    public var feed: String

    /// ECR-style attributes: `package_name`, `package_version`, and `CVSS3_SCORE`/`CVSS3_VECTOR` when scored.
    public var attributes: [FindingAttribute] {
        var out = [
            FindingAttribute(key: "package_name", value: package.name),
            FindingAttribute(key: "package_version", value: package.version),
        ]
        if case .cvssV3(let score, let vector) = severitySource {
            out.append(FindingAttribute(key: "CVSS3_SCORE", value: String(format: "%.1f", score)))
            out.append(FindingAttribute(key: "CVSS3_VECTOR", value: vector))
        }
        return out
    }
}
