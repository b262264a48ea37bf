import Testing
@testable import BerthVersions

@Suite("SemVer versions")
struct SemanticVersionTests {
    /// Each checked against npm's `semver.compare` (after `semver.clean`).
    static let cases: [ComparisonCase] = [
        .init("1.0.0", .lt, "2.0.0"),
        .init("2.0.0", .lt, "2.1.0"),
        .init("2.1.0", .lt, "2.1.1"),
        .init("1.10.0", .gt, "1.9.0"),
        .init("0.0.0", .lt, "0.0.1"),
        // SemVer §11's own chain
        .init("1.0.0-alpha", .lt, "1.0.0-alpha.1"),
        .init("1.0.0-alpha.1", .lt, "1.0.0-alpha.beta"),
        .init("1.0.0-alpha.beta", .lt, "1.0.0-beta"),
        .init("1.0.0-beta", .lt, "1.0.0-beta.2"),
        .init("1.0.0-beta.2", .lt, "1.0.0-beta.11"),
        .init("1.0.0-beta.11", .lt, "1.0.0-rc.1"),
        .init("1.0.0-rc.1", .lt, "1.0.0"),
        // pre-release identifiers
        .init("1.0.0-2", .lt, "1.0.0-10"),
        .init("1.0.0-10", .lt, "1.0.0-a"),
        .init("1.0.0-A", .lt, "1.0.0-a"),
        .init("1.0.0-a-b", .gt, "1.0.0-a"),
        .init("1.0.0-0a", .gt, "1.0.0-1"),
        .init("1.0.0-x.7.z.92", .eq, "1.0.0-x.7.z.92"),
        .init("1.0.0-alpha.0", .lt, "1.0.0-alpha.1"),
        .init("2.0.0-rc.1", .gt, "1.9.9"),
        // build metadata takes no part
        .init("1.0.0+build.1", .eq, "1.0.0+build.2"),
        .init("1.0.0-alpha+001", .eq, "1.0.0-alpha"),
        .init("1.0.0+20130313144700", .eq, "1.0.0"),
        .init("1.0.0-beta+exp.sha.5114f85", .lt, "1.0.0"),
        // npm's tolerance of a leading "v" and "="
        .init("v1.2.3", .eq, "1.2.3"),
        .init("=1.2.3", .eq, "1.2.3"),
        .init("=v1.2.3", .eq, "v1.2.3"),
        .init(" v 1.2.3 ", .eq, "1.2.3"),
        .init("v2.0.0", .gt, "=1.999.999"),
        // numbers of any size
        .init("1.2.99999999999999999999", .gt, "1.2.99999999999999999998"),
        .init("1.0.0-99999999999999999999", .gt, "1.0.0-9999999999999999999"),
    ]

    @Test(arguments: cases)
    func compares(_ c: ComparisonCase) throws {
        let a = try SemanticVersion(parsing: c.a, dialect: .npm)
        let b = try SemanticVersion(parsing: c.b, dialect: .npm)
        #expect(SemanticVersion.compare(a, b) == c.expected)
        #expect(SemanticVersion.compare(b, a) == c.expected.reversed)
        #expect(try VersionComparator.compare(c.a, c.b, in: .npm) == c.expected)
        if c.expected == .equal { #expect(a.hashValue == b.hashValue) }
    }

    @Test func exposesItsParts() throws {
        let v = try SemanticVersion(parsing: "1.2.3-rc.1+build.5")
        #expect((v.major, v.minor, v.patch) == ("1", "2", "3"))
        #expect(v.prerelease == ["rc", "1"])
        #expect(v.build == ["build", "5"])
        #expect(v.isPrerelease)
        #expect(v.description == "1.2.3-rc.1+build.5")
        #expect(try SemanticVersion(parsing: "=v1.2.3", dialect: .npm).description == "1.2.3")
    }

    /// Rejected by the bare SemVer 2.0.0 grammar.
    @Test(arguments: [
        "", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3+", "1.2.3-01",
        "1.2.3-a..b", "1.2.3-a_b", "1.2.3+a..b", "1.2.3 ", "v1.2.3", "=1.2.3", "1.2.3-α", "１.2.3",
        "1.2.-3", "a.b.c",
    ])
    func strictRejects(_ input: String) {
        #expect(throws: VersionParseError.self) { try SemanticVersion(parsing: input) }
    }

    @Test(arguments: ["", "v", "=", "1.2", "1.2.3-01", "1.2.3.4", "V1.2.3", "1.2.3-", "x1.2.3"])
    func npmRejects(_ input: String) {
        #expect(throws: VersionParseError.self) { try SemanticVersion(parsing: input, dialect: .npm) }
    }

    /// Go's `golang.org/x/mod/semver`: `v` prefix (optional here, as in OSV), shorthands,
    /// `+incompatible` as build metadata, pseudo-versions as pre-releases.
    static let goCases: [ComparisonCase] = [
        .init("v1", .eq, "v1.0.0"),
        .init("v1.2", .eq, "v1.2.0"),
        .init("0", .eq, "v0.0.0"),
        .init("1.2.3", .eq, "v1.2.3"),
        .init("v2.0.0+incompatible", .eq, "v2.0.0"),
        .init("v0.0.0-20191109021931-daa7c04131f5", .lt, "v0.0.1"),
        .init("v1.2.4-0.20191109021931-daa7c04131f5", .gt, "v1.2.3"),
        .init("v1.2.4-0.20191109021931-daa7c04131f5", .lt, "v1.2.4"),
        .init("v0.0.0-20191109021931-daa7c04131f5", .gt, "v0.0.0-20181109021931-aaa7c04131f5"),
        .init("v1.21.0", .gt, "v1.9.0"),
    ]

    @Test(arguments: goCases)
    func comparesGo(_ c: ComparisonCase) throws {
        #expect(try VersionComparator.compare(c.a, c.b, in: .go) == c.expected)
        #expect(try VersionComparator.compare(c.b, c.a, in: .go) == c.expected.reversed)
    }

    @Test(arguments: ["", "v", "v1.2-pre", "v1-pre", "v01.2.3", "vv1.2.3", "=v1.2.3", "V1.2.3", "v1.2.3.4"])
    func goRejects(_ input: String) {
        #expect(throws: VersionParseError.self) { try SemanticVersion(parsing: input, dialect: .go) }
    }
}
