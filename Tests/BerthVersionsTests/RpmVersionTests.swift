import Testing
@testable import BerthVersions

@Suite("rpm versions")
struct RpmVersionTests {
    /// rpm's own `rpmvercmp` test cases (tests/rpmvercmp.at), including the ones it keeps to
    /// document odd behaviour (RhBug:811992, non-ASCII bytes acting as separators).
    static let rpmvercmpCases: [ComparisonCase] = [
        .init("1.0", .eq, "1.0"), .init("1.0", .lt, "2.0"), .init("2.0", .gt, "1.0"),
        .init("2.0.1", .eq, "2.0.1"), .init("2.0", .lt, "2.0.1"), .init("2.0.1", .gt, "2.0"),
        .init("2.0.1a", .eq, "2.0.1a"), .init("2.0.1a", .gt, "2.0.1"), .init("2.0.1", .lt, "2.0.1a"),
        .init("5.5p1", .eq, "5.5p1"), .init("5.5p1", .lt, "5.5p2"), .init("5.5p2", .gt, "5.5p1"),
        .init("5.5p10", .eq, "5.5p10"), .init("5.5p1", .lt, "5.5p10"), .init("5.5p10", .gt, "5.5p1"),
        .init("10xyz", .lt, "10.1xyz"), .init("10.1xyz", .gt, "10xyz"),
        .init("xyz10", .eq, "xyz10"), .init("xyz10", .lt, "xyz10.1"), .init("xyz10.1", .gt, "xyz10"),
        .init("xyz.4", .eq, "xyz.4"), .init("xyz.4", .lt, "8"), .init("8", .gt, "xyz.4"),
        .init("xyz.4", .lt, "2"), .init("2", .gt, "xyz.4"),
        .init("5.5p2", .lt, "5.6p1"), .init("5.6p1", .gt, "5.5p2"),
        .init("5.6p1", .lt, "6.5p1"), .init("6.5p1", .gt, "5.6p1"),
        .init("6.0.rc1", .gt, "6.0"), .init("6.0", .lt, "6.0.rc1"),
        .init("10b2", .gt, "10a1"), .init("10a2", .lt, "10b2"),
        .init("1.0aa", .eq, "1.0aa"), .init("1.0a", .lt, "1.0aa"), .init("1.0aa", .gt, "1.0a"),
        .init("10.0001", .eq, "10.0001"), .init("10.0001", .eq, "10.1"), .init("10.1", .eq, "10.0001"),
        .init("10.0001", .lt, "10.0039"), .init("10.0039", .gt, "10.0001"),
        .init("4.999.9", .lt, "5.0"), .init("5.0", .gt, "4.999.9"),
        .init("20101121", .eq, "20101121"), .init("20101121", .lt, "20101122"),
        .init("20101122", .gt, "20101121"),
        .init("2_0", .eq, "2_0"), .init("2.0", .eq, "2_0"), .init("2_0", .eq, "2.0"),
        .init("a", .eq, "a"), .init("a+", .eq, "a+"), .init("a+", .eq, "a_"), .init("a_", .eq, "a+"),
        .init("+a", .eq, "+a"), .init("+a", .eq, "_a"), .init("_a", .eq, "+a"), .init("+_", .eq, "+_"),
        .init("_+", .eq, "+_"), .init("_+", .eq, "_+"), .init("+", .eq, "_"), .init("_", .eq, "+"),
        .init("1.0~rc1", .eq, "1.0~rc1"), .init("1.0~rc1", .lt, "1.0"), .init("1.0", .gt, "1.0~rc1"),
        .init("1.0~rc1", .lt, "1.0~rc2"), .init("1.0~rc2", .gt, "1.0~rc1"),
        .init("1.0~rc1~git123", .eq, "1.0~rc1~git123"), .init("1.0~rc1~git123", .lt, "1.0~rc1"),
        .init("1.0~rc1", .gt, "1.0~rc1~git123"),
        .init("1.0^", .eq, "1.0^"), .init("1.0^", .gt, "1.0"), .init("1.0", .lt, "1.0^"),
        .init("1.0^git1", .eq, "1.0^git1"), .init("1.0^git1", .gt, "1.0"), .init("1.0", .lt, "1.0^git1"),
        .init("1.0^git1", .lt, "1.0^git2"), .init("1.0^git2", .gt, "1.0^git1"),
        .init("1.0^git1", .lt, "1.01"), .init("1.01", .gt, "1.0^git1"),
        .init("1.0^20160101", .eq, "1.0^20160101"), .init("1.0^20160101", .lt, "1.0.1"),
        .init("1.0.1", .gt, "1.0^20160101"),
        .init("1.0^20160101^git1", .eq, "1.0^20160101^git1"),
        .init("1.0^20160102", .gt, "1.0^20160101^git1"), .init("1.0^20160101^git1", .lt, "1.0^20160102"),
        .init("1.0~rc1^git1", .eq, "1.0~rc1^git1"), .init("1.0~rc1^git1", .gt, "1.0~rc1"),
        .init("1.0~rc1", .lt, "1.0~rc1^git1"),
        .init("1.0^git1~pre", .eq, "1.0^git1~pre"), .init("1.0^git1", .gt, "1.0^git1~pre"),
        .init("1.0^git1~pre", .lt, "1.0^git1"),
        .init("1b.fc17", .eq, "1b.fc17"), .init("1b.fc17", .lt, "1.fc17"), .init("1.fc17", .gt, "1b.fc17"),
        .init("1g.fc17", .eq, "1g.fc17"), .init("1g.fc17", .gt, "1.fc17"), .init("1.fc17", .lt, "1g.fc17"),
        .init("1.1.α", .eq, "1.1.α"), .init("1.1.α", .eq, "1.1.β"), .init("1.1.β", .eq, "1.1.α"),
        .init("1.1.αα", .eq, "1.1.α"), .init("1.1.α", .eq, "1.1.ββ"), .init("1.1.ββ", .eq, "1.1.αα"),
    ]

    @Test(arguments: rpmvercmpCases)
    func rpmvercmp(_ c: ComparisonCase) {
        #expect(RpmVersion.rpmvercmp(c.a, c.b) == c.expected)
        #expect(RpmVersion.rpmvercmp(c.b, c.a) == c.expected.reversed)
    }

    /// Whole `epoch:version-release` strings, as in Red Hat, Rocky and SUSE advisories.
    static let evrCases: [ComparisonCase] = [
        .init("1:1.0-1", .gt, "2.0-1"),
        .init("0:1.0-1", .eq, "1.0-1"),
        .init(":1.0-1", .eq, "0:1.0-1"),
        .init("2:0.1-1", .gt, "1:99-99"),
        .init("10:1.0", .gt, "9:1.0"),
        .init("1.0-2", .gt, "1.0-1"),
        .init("1.0-10", .gt, "1.0-9"),
        .init("1.0", .lt, "1.0-1"),
        .init("1.0-", .eq, "1.0"),
        .init("3.2.1-7.el9_4", .lt, "3.2.1-7.el9_5"),
        .init("3.2.1-7.el9_4.1", .gt, "3.2.1-7.el9_4"),
        .init("1.1.1k-12.el8_9", .lt, "1.1.1k-14.el8_9"),
        .init("5.14.0-427.13.1.el9_4", .lt, "5.14.0-427.16.1.el9_4"),
        .init("1.2.3-1.fc40", .gt, "1.2.3-1.fc39"),
        .init("2.9.1-1.module+el8.10.0+21886+4b4b8a23", .gt, "2.9.1-1.module+el8.9.0+20000+1a2b3c4d"),
        .init("1.0~rc1-1", .lt, "1.0-1"),
        .init("1.0^20240101git1-1", .gt, "1.0-1"),
        .init("1.0-1-2", .gt, "1.0-1-1"),
        .init("99999999999999999999999:1.0", .gt, "99999999999999999999998:2.0"),
    ]

    @Test(arguments: evrCases)
    func compares(_ c: ComparisonCase) throws {
        let (a, b) = (try RpmVersion(parsing: c.a), try RpmVersion(parsing: c.b))
        #expect(RpmVersion.compare(a, b) == c.expected)
        #expect(RpmVersion.compare(b, a) == c.expected.reversed)
        #expect(try VersionComparator.compare(c.a, c.b, in: .rpm) == c.expected)
        if c.expected == .equal { #expect(a.hashValue == b.hashValue) }
    }

    @Test func splitsEpochVersionRelease() throws {
        let v = try RpmVersion(parsing: "2:1.2.3-4.el9")
        #expect(v.epoch == "2")
        #expect(v.version == "1.2.3")
        #expect(v.release == "4.el9")
        let bare = try RpmVersion(parsing: "1.2.3")
        #expect(bare.epoch == nil)
        #expect(bare.release == nil)
        // Only leading digits then ':' make an epoch, and the release follows the last '-'.
        let odd = try RpmVersion(parsing: "a:1-2-3")
        #expect(odd.epoch == nil)
        #expect(odd.version == "a:1-2")
        #expect(odd.release == "3")
    }

    @Test func missingReleaseMatchesAnyReleaseOnlyWhenAskedTo() throws {
        let (base, built) = (try RpmVersion(parsing: "1.0"), try RpmVersion(parsing: "1.0-5"))
        #expect(RpmVersion.compare(base, built) == .less)
        #expect(RpmVersion.compareIgnoringMissingRelease(base, built) == .equal)
        #expect(RpmVersion.compareIgnoringMissingRelease(try RpmVersion(parsing: "1.0-4"), built) == .less)
    }

    @Test(arguments: ["", "1:", "-1", "1:-1"])
    func rejectsAnEmptyVersion(_ input: String) {
        #expect(throws: VersionParseError.self) { try RpmVersion(parsing: input) }
    }
}
