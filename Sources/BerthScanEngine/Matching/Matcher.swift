import Foundation

/// Matches installed packages against a ``VulnerabilityDatabase``.
///
/// Rules: dpkg packages are matched in ecosystem `Debian:<VERSION_ID>` on their SOURCE name and version; apk
/// packages in `Alpine:v<major.minor>` on their origin; rpm packages in `Rocky Linux:<major>`/`AlmaLinux:<major>` on
/// their SOURCERPM name; Go modules in `Go` on their module path (`stdlib` for the toolchain);
/// PyPI names are compared after PEP 503 normalisation; npm names exactly. A version is affected when it is
/// listed in `versions[]` or falls in an ECOSYSTEM/SEMVER range: `introduced <= v < fixed`, or
/// `<= last_affected`, `< limit`; a range without an upper event is still open. GIT ranges are not used.
public struct Matcher: Sendable {
    public let database: VulnerabilityDatabase
    /// Feeds not used for matching. `Debian-DSA` by default: a DSA groups CVEs already reported one by one.
    public let excludedFeeds: Set<String>

    public init(database: VulnerabilityDatabase, excludedFeeds: Set<String> = ["Debian-DSA"]) {
        self.database = database
        self.excludedFeeds = excludedFeeds
    }

    /// The OSV ecosystem dpkg packages belong to, from os-release (`ID=debian`, `VERSION_ID=12` → `Debian:12`).
    public static func dpkgEcosystem(osRelease: [String: String]) -> String? {
        guard osRelease["ID"] == "debian", let version = osRelease["VERSION_ID"], !version.isEmpty else { return nil }
        return "Debian:\(version)"
    }

    /// The OSV ecosystem apk packages belong to: `Alpine:v<major.minor>` from `ID=alpine` and `VERSION_ID`
    /// (`3.19.1` → `Alpine:v3.19`), `Wolfi` for `ID=wolfi`, `Chainguard` for `ID=chainguard`.
    public static func apkEcosystem(osRelease: [String: String]) -> String? {
        switch osRelease["ID"] {
        case "alpine":
            guard let version = osRelease["VERSION_ID"] else { return nil }
            let parts = version.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count >= 2, let major = Int(parts[0]),
                  let minor = Int(parts[1].prefix(while: { $0.isASCII && $0.isNumber }))
            else { return nil }
            return "Alpine:v\(major).\(minor)"
        case "wolfi": return "Wolfi"
        case "chainguard": return "Chainguard"
        default: return nil
        }
    }

    /// The OSV ecosystem rpm packages belong to: `Rocky Linux:<major>` (`ID=rocky`), `AlmaLinux:<major>`
    /// (`ID=almalinux`), `Mageia:<VERSION_ID>`. `nil` for Red Hat Enterprise Linux, whose OSV ecosystems are
    /// per product stream (`Red Hat:enterprise_linux:9::baseos`) and cannot be derived from os-release, and for
    /// other distributions.
    public static func rpmEcosystem(osRelease: [String: String]) -> String? {
        guard let version = osRelease["VERSION_ID"], !version.isEmpty else { return nil }
        let major = version.split(separator: ".").first.map(String.init) ?? version
        guard !major.isEmpty, major.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        switch osRelease["ID"] {
        case "rocky": return "Rocky Linux:\(major)"
        case "almalinux": return "AlmaLinux:\(major)"
        case "mageia": return "Mageia:\(version)"
        default: return nil
        }
    }

    /// The ecosystems of the operating system's package kinds (deb, apk, rpm) known from os-release.
    public static func osEcosystems(osRelease: [String: String]) -> [InstalledPackage.Kind: String] {
        var out: [InstalledPackage.Kind: String] = [:]
        out[.deb] = dpkgEcosystem(osRelease: osRelease)
        out[.apk] = apkEcosystem(osRelease: osRelease)
        out[.rpm] = rpmEcosystem(osRelease: osRelease)
        return out
    }

    /// The findings for `packages`, sorted by package type, package name, version, path and advisory id.
    public func findings(for packages: [InstalledPackage], dpkgEcosystem: String?) -> [Finding] {
        findings(for: packages, osEcosystems: dpkgEcosystem.map { [.deb: $0] } ?? [:])
    }

    /// The findings for `packages`; OS packages (deb, apk, rpm) are matched in `osEcosystems[kind]` and skipped
    /// when their kind has none, language packages in `PyPI`, `npm` and `Go`.
    public func findings(for packages: [InstalledPackage], osEcosystems: [InstalledPackage.Kind: String]) -> [Finding] {
        var out: [Finding] = []
        for package in packages {
            let ecosystem: String?
            switch package.kind {
            case .deb, .apk, .rpm: ecosystem = osEcosystems[package.kind]
            case .pypi: ecosystem = "PyPI"
            case .npm: ecosystem = "npm"
            case .golang: ecosystem = "Go"
            }
            guard let ecosystem, let comparator = versionComparator(forEcosystem: ecosystem) else { continue }
            let name = package.sourceName
            let version = package.sourceVersion
            var seen = Set<String>()
            for advisory in database.advisories(ecosystem: ecosystem, name: name) {
                guard !excludedFeeds.contains(advisory.feed), advisory.record.withdrawn == nil,
                      !seen.contains(advisory.record.id)
                else { continue }
                let key = PackageKey(ecosystem: ecosystem, name: name)
                for affected in advisory.record.affected
                where PackageKey(ecosystem: affected.package.ecosystem, name: affected.package.name) == key {
                    guard let match = Self.evaluate(affected, version: version, comparator: comparator) else { continue }
                    seen.insert(advisory.record.id)
                    out.append(finding(advisory, affected, package, matchedName: key.name, version: version, fixed: match.fixedVersion))
                    break
                }
            }
        }
        return out.sorted { a, b in
            (a.package.kind.rawValue, a.package.name, a.package.version, a.package.path, a.name)
                < (b.package.kind.rawValue, b.package.name, b.package.version, b.package.path, b.name)
        }
    }

    private func finding(
        _ advisory: LoadedAdvisory, _ affected: OSVAffected, _ package: InstalledPackage,
        matchedName: String, version: String, fixed: String?
    ) -> Finding {
        let record = advisory.record
        var vectors: [String] = []
        for s in record.severity + affected.severity where s.type == "CVSS_V3" && !vectors.contains(s.score) {
            vectors.append(s.score)
        }
        let urgency = affected.urgency
        let (severity, source) = SeverityRule.severity(urgency: urgency, cvssVectors: vectors)
        let uri: String = if affected.package.ecosystem.hasPrefix("Debian") {
            "https://security-tracker.debian.org/tracker/\(record.id)"
        } else {
            "https://osv.dev/vulnerability/\(record.id)"
        }
        return Finding(
            name: record.id, description: record.summary ?? record.details, uri: uri, severity: severity,
            severitySource: source, package: package, matchedName: matchedName, matchedVersion: version,
            fixedVersion: fixed, urgency: urgency, aliases: record.aliases, cvssVectors: vectors, feed: advisory.feed)
    }

    /// Whether `version` is affected by `affected`, and the fix of the range that matched.
    public static func evaluate(
        _ affected: OSVAffected, version: String, comparator: any VersionComparator
    ) -> AffectedMatch? {
        for range in affected.ranges {
            switch range.type {
            case .ecosystem, .semver:
                if let match = evaluate(range, version: version, comparator: comparator) { return match }
            case .git, .other:
                continue
            }
        }
        // Ranges first, so that a version both listed and in a range reports that range's fix.
        if affected.versions.contains(version) { return AffectedMatch(fixedVersion: nil) }
        return nil
    }

    /// OSV range evaluation: walk the events in version order, the last event at or below `version` decides.
    static func evaluate(
        _ range: OSVRange, version: String, comparator: any VersionComparator
    ) -> AffectedMatch? {
        func isZero(_ e: OSVEvent) -> Bool {
            if case .introduced("0") = e { return true }
            return false
        }
        // Events whose version cannot be compared are ignored.
        var events: [OSVEvent] = []
        for e in range.events where isZero(e) || comparator.compare(e.version, e.version) != nil {
            events.append(e)
        }
        guard comparator.compare(version, version) != nil else { return nil }
        events.sort { a, b in
            if isZero(a) != isZero(b) { return isZero(a) }
            if isZero(a) { return false }
            return comparator.compare(a.version, b.version) == .orderedAscending
        }
        var affected = false
        for event in events {
            let cmp: ComparisonResult = isZero(event) ? .orderedDescending : comparator.compare(version, event.version)!
            switch event {
            case .introduced:
                if cmp != .orderedAscending { affected = true }
            case .fixed, .limit:
                if cmp != .orderedAscending { affected = false }
            case .lastAffected:
                if cmp == .orderedDescending { affected = false }
            }
        }
        guard affected else { return nil }
        // The fix is the first `fixed` event above the version.
        let fixed = events.first { e in
            if case .fixed(let v) = e { return comparator.compare(version, v) == .orderedAscending }
            return false
        }
        return AffectedMatch(fixedVersion: fixed?.version)
    }
}

/// The outcome of a positive match: the fix of the range that matched, if it has one.
public struct AffectedMatch: Sendable, Equatable {
    public var fixedVersion: String?
}
