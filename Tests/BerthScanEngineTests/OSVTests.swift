import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct OSVRecordTests {
    static let sample = #"""
    {"schema_version":"1.6.0","id":"CVE-2099-0001","modified":"2024-12-05T15:34:02.459517Z",
     "published":"2022-02-21T19:15:08Z","aliases":["GHSA-xxxx"],"summary":"s","details":"d",
     "severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
     "affected":[{"package":{"ecosystem":"Debian:12","name":"glibc","purl":"pkg:deb/debian/glibc?arch=source"},
       "ranges":[{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"2.36-9+deb12u3"}]},
                 {"type":"GIT","repo":"https://x","events":[{"introduced":"0"},{"limit":"\#(String(repeating: "a", count: 40))"}]}],
       "versions":["2.36-9"],"ecosystem_specific":{"urgency":"low","n":[1,true,null]},"database_specific":{"source":"x"}}],
     "references":[{"type":"ADVISORY","url":"https://example"}],"unknown_field":{"a":1}}
    """#

    @Test func decodesAllModelledFields() throws {
        let r = try JSONDecoder().decode(OSVRecord.self, from: Data(Self.sample.utf8))
        #expect(r.id == "CVE-2099-0001")
        #expect(r.aliases == ["GHSA-xxxx"])
        #expect(r.severity == [OSVSeverity(type: "CVSS_V3", score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")])
        let a = try #require(r.affected.first)
        #expect(a.package == OSVPackage(ecosystem: "Debian:12", name: "glibc", purl: "pkg:deb/debian/glibc?arch=source"))
        #expect(a.ranges[0] == OSVRange(type: .ecosystem, events: [.introduced("0"), .fixed("2.36-9+deb12u3")]))
        #expect(a.ranges[1].type == .git)
        #expect(a.ranges[1].events[1] == .limit(String(repeating: "a", count: 40)))
        #expect(a.versions == ["2.36-9"])
        #expect(a.urgency == "low")
        #expect(a.databaseSpecific?["source"]?.stringValue == "x")
        #expect(r.references == [OSVReference(type: "ADVISORY", url: "https://example")])
    }

    @Test func malformedRecordsAreSkippedWithAReason() {
        var db = VulnerabilityDatabase()
        let cases: [(String, String)] = [
            ("notjson", "{"),
            ("array", "[1,2]"),
            ("noid", #"{"modified":"2024-01-01T00:00:00Z"}"#),
            ("badmodified", #"{"id":"X-1","modified":"yesterday"}"#),
            ("twoevents", #"{"id":"X-2","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"a"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0","fixed":"1"}]}]}]}"#),
            ("badtype", #"{"id":"X-3","modified":"2024-01-01T00:00:00Z","aliases":"CVE-1"}"#),
            ("emptyname", #"{"id":"X-4","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":""}}]}"#),
            ("binary", "\u{0}\u{1}\u{2}"),
        ]
        for (file, text) in cases { db.add(feed: "t", file: file, data: Data(text.utf8)) }
        #expect(db.advisories.isEmpty)
        #expect(db.issues.count == cases.count)
        #expect(db.issues.allSatisfy { $0.disposition == .skipped && !$0.reason.isEmpty })
        #expect(db.issues.first { $0.file == "badmodified" }?.reason.contains("RFC 3339") == true)
    }

    @Test func malformedRangeIsDroppedAndTheRecordKept() throws {
        var db = VulnerabilityDatabase()
        let text = #"{"id":"X-5","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"PyPI","name":"Foo_Bar"},"ranges":[{"type":"GIT","repo":"r","events":[{"introduced":"0"},{"fixed":"abc123.patch"}]},{"type":"ECOSYSTEM","events":[{"introduced":"0"},{"fixed":"1.0"}]}]}]}"#
        db.add(feed: "PyPI", file: "X-5.json", data: Data(text.utf8))
        #expect(db.advisories.count == 1)
        #expect(db.issues.count == 1)
        #expect(db.issues[0].disposition == .repaired)
        let found = db.advisories(ecosystem: "PyPI", name: "foo.bar")
        #expect(found.count == 1)
        #expect(found.first?.record.affected[0].ranges.map(\.type) == [.ecosystem])
    }
}

@Suite(.enabled(if: Fixtures.available, "shared fixtures not found; set BERTH_FIXTURES"))
struct VulnerabilityDatabaseFixtureTests {
    @Test func loadsEveryFeedWithTheExpectedCounts() throws {
        let db = try #require(Fixtures.database)
        #expect(db.countsByFeed == ["Debian": 1758, "Debian-DSA": 22, "Alpine": 2545, "PyPI": 2661, "npm": 449])
        #expect(db.countsByEcosystem["Debian:12"] == 1758 + 22)
        #expect(db.countsByEcosystem["PyPI"] == 2661)
        #expect(db.countsByEcosystem["npm"] == 449)
        #expect(db.countsByEcosystem["Alpine:v3.19"] != nil)
    }

    /// The seven upstream PyPI records whose GIT ranges carry abbreviated or `.patch` commit ids.
    @Test func flagsTheSevenMalformedPyPIRecords() throws {
        let db = try #require(Fixtures.database)
        #expect(db.issues.allSatisfy { $0.feed == "PyPI" && $0.disposition == .repaired })
        let ids = Set(db.issues.compactMap(\.recordID))
        #expect(ids == ["PYSEC-2017-27", "PYSEC-2019-155", "PYSEC-2021-371", "PYSEC-2021-424",
                        "PYSEC-2021-425", "PYSEC-2021-436", "PYSEC-2023-80"])
        // Their ECOSYSTEM ranges still match.
        let synapse = db.advisories(ecosystem: "PyPI", name: "Matrix_Synapse").map(\.record.id)
        #expect(synapse.contains("PYSEC-2021-436"))
    }

    @Test func newestModified() throws {
        let db = try #require(Fixtures.database)
        let newest = try #require(db.newestModified)
        #expect(newest.modified == "2025-02-16T11:19:04.364665Z")
    }

    @Test func indexesDebianBySourcePackage() throws {
        let db = try #require(Fixtures.database)
        let glibc = db.advisories(ecosystem: "Debian:12", name: "glibc")
        #expect(glibc.contains { $0.record.id == "CVE-2023-4911" })
        #expect(db.advisories(ecosystem: "Debian:12", name: "libc6").isEmpty)
        #expect(db.advisories(ecosystem: "Debian:11", name: "glibc").isEmpty)
        #expect(db.advisories(ecosystem: "PyPI", name: "Requests").map(\.record.id).contains("PYSEC-2018-28"))
    }
}
