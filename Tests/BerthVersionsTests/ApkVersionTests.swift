import Testing
@testable import BerthVersions

@Suite("apk versions")
struct ApkVersionTests {
    /// From apk-tools' own test data (test/version.data), which `apk version -t` must satisfy.
    static let cases: [ComparisonCase] = [
        // plain dotted numbers
        .init("1.0.0", .lt, "1.0.1"),
        .init("1.0.1", .lt, "1.1"),
        .init("1.2.1", .gt, "1.2"),
        .init("2.8", .lt, "2.20.1"),
        .init("1.0.0", .eq, "1.0.0"),
        .init("20060720", .gt, "3.0.20060720"),
        .init("7.0.17", .lt, "7.0.174"),
        .init("006", .gt, "1.0.0"),
        .init("021109-r3", .lt, "20060512"),
        // a fractional group with a leading zero compares as a string
        .init("1.02", .lt, "1.03-r1"),
        .init("1.06-r6", .lt, "006"),
        .init("4.09-r1", .lt, "4.5.14"),
        .init("8.2.0", .lt, "8.2.001"),
        .init("8.2.0015", .lt, "8.2.002"),
        .init("1.2.07.8", .lt, "1.2.12.04"),
        // a letter after the numbers
        .init("1.7", .lt, "1.7b"),
        .init("2.5.1-r8", .lt, "2.5.1a-r1"),
        .init("0.9.8c-r1", .lt, "0.9.8d"),
        .init("1.1a", .lt, "1.3a"),
        .init("2.12r-r4", .lt, "2.12r-r5"),
        // pre-release suffixes sort before the release
        .init("1.1", .gt, "1.1_alpha1"),
        .init("0.1.0_alpha2", .gt, "0.1.0_alpha"),
        .init("1.3_alpha2", .lt, "1.3_alpha3"),
        .init("0.8_beta1", .lt, "0.8_beta2"),
        .init("0.10.0", .lt, "0.10.1_rc1"),
        .init("6.0_pre1", .lt, "6.0"),
        .init("1.3_pre1-r1", .lt, "1.3.2"),
        .init("2.1_pre20", .lt, "2.1_pre26"),
        .init("0.1.0_alpha_pre2", .lt, "0.1.0_alpha"),
        .init("1.0.0_pre20191002222144-r0", .lt, "1.0.0_pre20210530193627-r0"),
        .init("20040401", .gt, "2.0.0_rc3-r1"),
        // post-release suffixes sort after it
        .init("6.0_p1", .gt, "6.0"),
        .init("1.8.5", .lt, "1.8.5_p2"),
        .init("3.1_p16", .lt, "3.1_p17"),
        .init("1.0_p10-r0", .gt, "1.0_p9-r0"),
        .init("1.6.8_p12-r1", .gt, "1.6.8_p9-r2"),
        .init("4.5_p1-r1", .gt, "4.5_p1"),
        // the package revision
        .init("1.0.4-r3", .lt, "1.0.4-r4"),
        .init("1.3.5-r10", .gt, "1.3.5-r8"),
        .init("2.11-r1", .gt, "2.11"),
        .init("104-r11", .gt, "104-r9"),
        .init("1.3-r0", .lt, "1.3.1-r0"),
        .init("0.2.0-r1", .eq, "0.2.0-r1"),
        // commit hashes
        .init("1.0~1234", .lt, "1.0~2345"),
        .init("1.0~1234-r1", .lt, "1.0~2345-r0"),
        .init("1.0~1234-r1", .gt, "1.0~1234-r0"),
        // invalid input still compares, the way apk does: up to the first bad token
        .init("1.0", .lt, "1.0bc"),
        .init("23_foo", .gt, "4_beta"),
    ]

    @Test(arguments: cases)
    func compares(_ c: ComparisonCase) throws {
        #expect(ApkVersion.compare(c.a, c.b) == c.expected)
        #expect(ApkVersion.compare(c.b, c.a) == c.expected.reversed)
        guard let a = try? ApkVersion(parsing: c.a), let b = try? ApkVersion(parsing: c.b) else { return }
        #expect(ApkVersion.compare(a, b) == c.expected)
        #expect((a < b) == (c.expected == .less))
        #expect(try VersionComparator.compare(c.a, c.b, in: .alpine) == c.expected)
        if c.expected == .equal { #expect(a.hashValue == b.hashValue) }
    }

    /// apk-tools' validity table: what `apk version --check` accepts.
    @Test(arguments: [
        "1.2", "0.1_pre2", "0.1_pre2~1234abcd", "0.1_p1_pre2", "0.1_alpha1_pre2",
        "0.1_git20240101_pre1", "1.0.0-r0", "2.3.0b-r1", "1.0~0123456789abcdef-r12",
    ])
    func accepts(_ input: String) throws {
        #expect(try ApkVersion(parsing: input).description == input)
    }

    @Test(arguments: [
        "", "0.1bc", "0.1bc1", "0.1a1", "0.1a.1", "0.1_pre2~", "0.1_pre2~1234xbcd",
        "0.1_pre2~1234abcd_pre1", "0.1_pre2-r1~1234xbcd", "0.1_foobar", "0.1_foobar1",
        "0.1-pre1.1", "0.1-r", "0.1-r2_pre1", "0.1-r2_p3_pre1", "0.1-r2-r3", "0.1-r2.1", ".1",
        "a", "_pre1", "-r1", "0.1_", "0.1_-r0", "0.1__alpha", "0.1_1_alpha",
        "1.0A", "1.0~ABCD", "1.0 ", "1.0é", "v1.0",
    ])
    func rejects(_ input: String) {
        #expect(throws: VersionParseError.self) { try ApkVersion(parsing: input) }
        #expect(throws: VersionParseError.self) { try VersionComparator.compare(input, "1.0", in: .alpine) }
    }

    @Test func equalVersionsHashAlike() throws {
        // Numbers outside a fractional group lose their leading zeros.
        let pairs = [("01.2", "1.2"), ("1.0_rc01", "1.0_rc1"), ("1.0-r007", "1.0-r7")]
        for (x, y) in pairs {
            let (a, b) = (try ApkVersion(parsing: x), try ApkVersion(parsing: y))
            #expect(a == b)
            #expect(a.hashValue == b.hashValue)
        }
        #expect(try ApkVersion(parsing: "1.02") != ApkVersion(parsing: "1.2"))
    }
}
