/// A package ecosystem, by the version ordering its packages follow.
public enum Ecosystem: String, Sendable, Hashable, CaseIterable {
    /// dpkg versions (Debian, Ubuntu): ``DpkgVersion``.
    case debian
    /// apk versions (Alpine, Wolfi): ``ApkVersion``.
    case alpine
    /// RPM versions (Red Hat, Rocky, AlmaLinux, SUSE, …): ``RpmVersion``.
    case rpm
    /// PEP 440 versions: ``PEP440Version``.
    case pypi
    /// SemVer with npm's tolerance of `v` and `=`: ``SemanticVersion/Dialect/npm``.
    case npm
    /// SemVer with Go's `v` prefix and shorthands: ``SemanticVersion/Dialect/go``.
    case go

    /// The ecosystem of an OSV `affected[].package.ecosystem` value (`Debian:12`,
    /// `Alpine:v3.19`, `PyPI`, `npm`, `Go`, `Rocky Linux:9`, …), or nil for one without a
    /// comparator here.
    public init?(osv name: String) {
        let base = name.split(separator: ":", maxSplits: 1).first.map(String.init) ?? name
        switch base {
        case "Debian", "Ubuntu": self = .debian
        case "Alpine", "Wolfi", "Chainguard": self = .alpine
        case "Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE", "Mageia", "openEuler": self = .rpm
        case "PyPI": self = .pypi
        case "npm": self = .npm
        case "Go": self = .go
        default: return nil
        }
    }
}

/// Compares version strings by the rules of their ecosystem.
public enum VersionComparator {
    /// Orders `a` against `b` as `ecosystem`'s package manager would; throws when either is not
    /// a valid version there.
    public static func compare(_ a: String, _ b: String, in ecosystem: Ecosystem) throws(VersionParseError) -> Order {
        switch ecosystem {
        case .debian: DpkgVersion.compare(try DpkgVersion(parsing: a), try DpkgVersion(parsing: b))
        case .alpine: ApkVersion.compare(try ApkVersion(parsing: a), try ApkVersion(parsing: b))
        case .rpm: RpmVersion.compare(try RpmVersion(parsing: a), try RpmVersion(parsing: b))
        case .pypi: PEP440Version.compare(try PEP440Version(parsing: a), try PEP440Version(parsing: b))
        case .npm:
            SemanticVersion.compare(
                try SemanticVersion(parsing: a, dialect: .npm), try SemanticVersion(parsing: b, dialect: .npm))
        case .go:
            SemanticVersion.compare(
                try SemanticVersion(parsing: a, dialect: .go), try SemanticVersion(parsing: b, dialect: .go))
        }
    }
}
