import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct RangeEvaluationTests {
    func affected(_ events: [OSVEvent], versions: [String] = [], type: OSVRangeType = .ecosystem) -> OSVAffected {
        OSVAffected(package: OSVPackage(ecosystem: "Debian:12", name: "p"),
                    ranges: [OSVRange(type: type, events: events)], versions: versions)
    }

    func match(_ a: OSVAffected, _ v: String) -> AffectedMatch? {
        Matcher.evaluate(a, version: v, comparator: EcosystemVersionComparator(.debian))
    }

    @Test func introducedFixed() {
        let a = affected([.introduced("0"), .fixed("1.2-1")])
        #expect(match(a, "1.1-1") == AffectedMatch(fixedVersion: "1.2-1"))
        #expect(match(a, "1.2-1") == nil)  // fixed == installed
        #expect(match(a, "1:1.0-1") == nil)  // epoch
        #expect(match(a, "1.2~rc1-1") != nil)
    }

    @Test func openAndLastAffectedAndLimit() {
        #expect(match(affected([.introduced("0")]), "9.9") == AffectedMatch(fixedVersion: nil))
        let last = affected([.introduced("1.0"), .lastAffected("1.5")])
        #expect(match(last, "1.5") != nil)
        #expect(match(last, "1.5.1") == nil)
        #expect(match(last, "0.9") == nil)
        #expect(match(affected([.introduced("0"), .limit("2.0")]), "2.0") == nil)
    }

    @Test func multipleSegmentsInAnyOrder() {
        let a = affected([.fixed("3.0"), .introduced("2.5"), .introduced("1.0"), .fixed("2.0")])
        #expect(match(a, "0.5") == nil)
        #expect(match(a, "1.5") == AffectedMatch(fixedVersion: "2.0"))
        #expect(match(a, "2.2") == nil)
        #expect(match(a, "2.7") == AffectedMatch(fixedVersion: "3.0"))
        #expect(match(a, "3.0") == nil)
    }

    @Test func explicitVersionsAndIgnoredRanges() {
        #expect(match(affected([], versions: ["1.0-1"]), "1.0-1") != nil)
        #expect(match(affected([.introduced("0"), .fixed(String(repeating: "a", count: 40))], type: .git), "1.0") == nil)
        #expect(match(affected([.introduced("0"), .fixed("1.0")]), "not a version") == nil)
    }
}

/// The end-to-end check: the tiny image against the fixture database, compared with the expected results.
@Suite(.enabled(if: Fixtures.available, "shared fixtures not found; set BERTH_FIXTURES"))
struct TinyImageScanTests {
    struct Expected: Decodable {
        struct Package: Decodable {
            var type: String
            var name: String
            var version: String
            var source: String?
            var source_version: String?
            var arch: String?
            var path: String
        }
        struct NotInstalled: Decodable {
            var name: String
            var version: String
            var status: String
            var path: String
        }
        struct Finding: Decodable, Equatable {
            var package_type: String
            var package: String
            var installed_version: String
            var matched_name: String
            var matched_version: String
            var id: String
            var aliases: [String]
            var fixed_version: String?
            var urgency: String?
            var cvss: [String]
        }
        var packages: [Package]
        var not_installed_packages: [NotInstalled]
        var finding_count: Int
        var unique_ids: [String]
        var findings_per_package: [String: Int]
        var findings: [Finding]
    }

    static func report() throws -> ScanReport {
        let db = try #require(Fixtures.database)
        let scanner = ImageScanner(matcher: Matcher(database: db))
        return try scanner.scan(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1")
    }

    static func expected() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Fixtures.url("expected/debian-tiny-vuln.json")))
    }

    @Test func catalogsExactlyTheExpectedPackages() throws {
        let report = try Self.report()
        let expected = try Self.expected()
        #expect(report.dpkgEcosystem == "Debian:12")
        let got = report.packages.map { p in
            [p.kind.rawValue, p.name, p.version, p.kind == .deb ? p.sourceName : "", p.kind == .deb ? p.sourceVersion : "",
             p.architecture ?? "", p.path]
        }
        let want = expected.packages.map { p in
            [p.type, p.name, p.version, p.source ?? "", p.source_version ?? "", p.arch ?? "", p.path]
        }
        #expect(got.sorted { $0.lexicographicallyPrecedes($1) } == want.sorted { $0.lexicographicallyPrecedes($1) })
        #expect(report.notInstalled.map { [$0.name, $0.version, $0.status, $0.path] }
            == expected.not_installed_packages.map { [$0.name, $0.version, $0.status, $0.path] })
    }

    @Test func findingsMatchTheExpectedFileExactly() throws {
        let report = try Self.report()
        let expected = try Self.expected()
        let got = report.findings.map { f in
            Expected.Finding(
                package_type: f.package.kind.rawValue, package: f.package.name, installed_version: f.package.version,
                matched_name: f.matchedName, matched_version: f.matchedVersion, id: f.name, aliases: f.aliases,
                fixed_version: f.fixedVersion, urgency: f.urgency, cvss: f.cvssVectors)
        }
        #expect(got.count == expected.finding_count)
        #expect(Set(got.map(\.id)).sorted() == expected.unique_ids)
        let perPackage = Dictionary(grouping: got, by: { "\($0.package_type):\($0.package)" }).mapValues(\.count)
        #expect(perPackage == expected.findings_per_package)
        let key: (Expected.Finding) -> String = { "\($0.package_type) \($0.package) \($0.id)" }
        let gotByKey = Dictionary(uniqueKeysWithValues: got.map { (key($0), $0) })
        for want in expected.findings {
            #expect(gotByKey[key(want)] == want, "\(key(want))")
        }
        #expect(got.map(key) == expected.findings.map(key))
    }

    @Test func noNegativeFindingAppears() throws {
        let report = try Self.report()
        let data = try Data(contentsOf: Fixtures.url("expected/debian-tiny-vuln.negative.json"))
        let negative = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var forbidden: [(String, String)] = []  // (package context, id)
        for (context, value) in negative {
            if let ids = value as? [String] {
                forbidden += ids.map { (context, $0) }
            } else if let nested = value as? [String: [String]] {
                for (pkg, ids) in nested { forbidden += ids.map { ("\(context) \(pkg)", $0) } }
            }
        }
        #expect(forbidden.count > 40)
        for (context, id) in forbidden {
            let hits = report.findings.filter { f in
                guard f.name == id else { return false }
                if context.hasPrefix("deinstalled libssl1.1") { return f.package.name == "libssl1.1" }
                if context.hasPrefix("libexpat1") { return f.package.name == "libexpat1" }
                if context.hasPrefix("PyYAML") { return f.package.kind == .pypi && f.package.name.lowercased() == "pyyaml" }
                if context.hasPrefix("bsdutils") { return f.package.name == "bsdutils" && f.matchedVersion != "2.38.1-5" }
                if context.contains("openssl 3.0.9-1") { return f.matchedName == "openssl" }
                if context.contains("curl 7.88.1-10") { return f.matchedName == "curl" }
                return true
            }
            #expect(hits.isEmpty, "\(context): \(id)")
        }
        // The CVE-2024-28085 trap: matched only through the source version.
        #expect(report.findings.contains { $0.name == "CVE-2024-28085" && $0.matchedVersion == "2.38.1-5" })
    }

    @Test func severitiesFollowTheDocumentedRule() throws {
        let report = try Self.report()
        for f in report.findings {
            #expect(f.severity == SeverityRule.severity(urgency: f.urgency, cvssVectors: f.cvssVectors).0)
            #expect(f.attributes.first { $0.key == "package_name" }?.value == f.package.name)
            #expect(f.attributes.first { $0.key == "package_version" }?.value == f.package.version)
        }
        let glibcUnimportant = try #require(report.findings.first { $0.name == "CVE-2010-4756" })
        #expect(glibcUnimportant.severity == .informational)
        #expect(glibcUnimportant.uri == "https://security-tracker.debian.org/tracker/CVE-2010-4756")
        let ms = try #require(report.findings.first { $0.name == "x_NSWG-ECO-46" })
        #expect(ms.severity == .medium)  // CVSS:3.0/.../A:L = 5.3
        #expect(ms.attributes.contains(FindingAttribute(key: "CVSS3_SCORE", value: "5.3")))
        let counts = report.severityCounts
        #expect(counts.values.reduce(0, +) == 64)
    }
}

/// A real Debian 12 minbase root file system: one 48.7 MiB gzip layer, streamed.
@Suite(.enabled(if: Fixtures.available, "shared fixtures not found; set BERTH_FIXTURES"))
struct MinbaseScanTests {
    @Test func scansTheRealRootfs() throws {
        let db = try #require(Fixtures.database)
        let report = try ImageScanner(matcher: Matcher(database: db))
            .scan(layout: Fixtures.url("images/debian-minbase"), tag: "bookworm")
        #expect(report.dpkgEcosystem == "Debian:12")
        #expect(report.packages.filter { $0.kind == .deb }.count == 88)
        #expect(report.layerIssues.isEmpty)
        #expect(report.catalogIssues.isEmpty)
        #expect(!report.findings.isEmpty)
        #expect(report.findings.allSatisfy { $0.feed == "Debian" })
    }
}
