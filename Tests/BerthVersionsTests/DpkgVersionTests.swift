import Foundation
import Testing
@testable import BerthVersions

@Suite("dpkg versions")
struct DpkgVersionTests {
    /// Every line of `dpkg-version-cases.tsv`, whose answers come from `dpkg --compare-versions`.
    @Test(.enabled(if: Fixtures.present, "shared fixtures directory (../shared/fixtures) is absent"))
    func everyFixtureLine() throws {
        let url = try #require(Fixtures.directory).appendingPathComponent("dpkg-version-cases.tsv")
        let text = try String(contentsOf: url, encoding: .utf8)
        var checked = 0
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            try #require(fields.count == 3, "line \(number + 1) is not a<TAB>b<TAB>result: \(line)")
            let expected: Order = switch fields[2] {
            case "lt": .less
            case "eq": .equal
            case "gt": .greater
            default: throw FixtureError.badResult(line: number + 1, String(fields[2]))
            }
            let a = try DpkgVersion(parsing: String(fields[0]))
            let b = try DpkgVersion(parsing: String(fields[1]))
            #expect(DpkgVersion.compare(a, b) == expected, "line \(number + 1): \(line)")
            #expect(DpkgVersion.compare(b, a) == expected.reversed, "line \(number + 1) reversed: \(line)")
            #expect((a == b) == (expected == .equal), "line \(number + 1): ==")
            if expected == .equal { #expect(a.hashValue == b.hashValue, "line \(number + 1): hash") }
            checked += 1
        }
        #expect(checked == 60, "the fixture has 60 pairs")
    }

    enum FixtureError: Error { case badResult(line: Int, String) }

    /// Cases checked with `dpkg --compare-versions` (dpkg 1.21.22).
    static let cases: [ComparisonCase] = [
        // Debian policy's own example: ~~ < ~~a < ~ < (nothing) < a
        .init("1~~", .lt, "1~~a"),
        .init("1~~a", .lt, "1~"),
        .init("1~", .lt, "1"),
        .init("1", .lt, "1a"),
        .init("1.0~", .eq, "1.0~0"),
        .init("1.0~a", .gt, "1.0~~"),
        .init("1.0~~~~", .lt, "1.0~~~"),
        // letters sort before other characters; case matters
        .init("1.0a", .lt, "1.0+"),
        .init("1.0+", .lt, "1.0."),
        .init("1.0a", .gt, "1.0A"),
        .init("1.0Z", .lt, "1.0a"),
        // digit runs are numbers, of any length
        .init("1.001", .eq, "1.1"),
        .init("1.10", .gt, "1.9"),
        .init("1.0000000000000000000000000001", .eq, "1.1"),
        .init("18446744073709551616", .gt, "18446744073709551615"),
        .init("1.0.", .eq, "1.0.0"),
        // revisions
        .init("1.0-a", .gt, "1.0-1"),
        .init("1.0-00", .eq, "1.0"),
        .init("1.0-0.0", .gt, "1.0"),
        .init("1.0-beta-1", .gt, "1.0-1"),
        .init("1:2:3-1", .gt, "1:2.3-1"),
        .init("1.0-1+b1", .lt, "1.0-1.1"),
        // epochs
        .init("00:1", .eq, "0:1"),
        .init("2147483647:1", .gt, "99999:1"),
        .init("2:1.0", .gt, "1:9.9"),
        .init("+1:1.0", .eq, "1:1.0"),
        .init(" 1.0 ", .eq, "1.0"),
        // what Debian security updates look like
        .init("1:9.18.28-1~deb12u2", .gt, "1:9.18.24-1"),
        .init("3.0.15-1~deb12u1", .gt, "3.0.14-1~deb12u2"),
        .init("252.31-1~deb12u1", .gt, "252.30-1~deb12u2"),
        .init("7.88.1-10+deb12u8", .lt, "7.88.1-10+deb12u12"),
        .init("2.7.18-1~deb12u1", .gt, "2.7.18-1~deb11u1"),
        .init("4.19.0-21+deb10u1", .gt, "4.19.0-21"),
        .init("1.0.0+b1", .lt, "1.0.0+b10"),
        .init("1.2.3~dfsg-1", .lt, "1.2.3-1"),
        .init("1.0~rc1+dfsg-1", .gt, "1.0~rc1-1"),
        .init("1.0+git20200101.abcdef-1", .gt, "1.0-1"),
        .init("1.0~git20200101-1", .lt, "1.0-1"),
    ]

    @Test(arguments: cases)
    func compares(_ c: ComparisonCase) throws {
        let (a, b) = (try DpkgVersion(parsing: c.a), try DpkgVersion(parsing: c.b))
        #expect(DpkgVersion.compare(a, b) == c.expected)
        #expect(DpkgVersion.compare(b, a) == c.expected.reversed)
        #expect(try VersionComparator.compare(c.a, c.b, in: .debian) == c.expected)
        if c.expected == .equal {
            #expect(a == b)
            #expect(a.hashValue == b.hashValue)
            #expect(Set([a, b]).count == 1)
        }
    }

    @Test func splitsEpochUpstreamAndRevision() throws {
        let v = try DpkgVersion(parsing: "1:2.36-9+deb12u4")
        #expect(v.epoch == 1)
        #expect(v.upstream == "2.36")
        #expect(v.revision == "9+deb12u4")
        #expect(v.description == "1:2.36-9+deb12u4")
        let hyphens = try DpkgVersion(parsing: "1.0-beta-2")
        #expect(hyphens.upstream == "1.0-beta")
        #expect(hyphens.revision == "2")
        let bare = try DpkgVersion(parsing: "10")
        #expect(bare.epoch == 0)
        #expect(bare.revision == "")
    }

    /// The reasons are dpkg's own messages for the same inputs.
    @Test(arguments: [
        ("", "version string is empty"),
        ("   ", "version string is empty"),
        ("a1.0", "version number does not start with digit"),
        ("1.0 1", "version string has embedded spaces"),
        (":1.0", "epoch in version is empty"),
        ("a:1.0", "epoch in version is empty"),
        ("1.0-1:2", "epoch in version is not number"),
        ("-1:1.0", "epoch in version is negative"),
        ("2147483648:1", "epoch in version is too big"),
        ("99999999999999999999999:1", "epoch in version is too big"),
        ("1:", "nothing after colon in version number"),
        ("1.0-", "revision number is empty"),
        ("1.0-1-", "revision number is empty"),
        ("-1", "version number is empty"),
        ("1:-1", "version number is empty"),
        ("1.0_1", "invalid character in version number"),
        ("1.0-1_2", "invalid character in revision number"),
        ("1.0é", "invalid character in version number"),
        ("1.0\u{0}", "invalid character in version number"),
    ])
    func rejects(_ input: String, _ reason: String) {
        #expect(throws: VersionParseError("dpkg", input, reason)) { try DpkgVersion(parsing: input) }
    }
}
