import Foundation
import Testing
@testable import BerthScanner

@Suite struct DpkgVersionTests {
    @Test(.enabled(if: Fixtures.available)) func agreesWithDpkgOnTheFixtureCases() throws {
        let text = try String(contentsOf: Fixtures.url("dpkg-version-cases.tsv"), encoding: .utf8)
        var checked = 0
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: "\t").map(String.init)
            guard f.count == 3 else { continue }
            let expected: ComparisonResult = f[2] == "lt" ? .orderedAscending : f[2] == "gt" ? .orderedDescending : .orderedSame
            #expect(DpkgVersionComparator().compare(f[0], f[1]) == expected, "\(f[0]) \(f[2]) \(f[1])")
            checked += 1
        }
        #expect(checked == 60)
    }

    @Test func basics() throws {
        let c = DpkgVersionComparator()
        #expect(c.compare("1:2.38.1-5+b1", "2.38.1-5+deb12u1") == .orderedDescending)
        #expect(c.compare("2.38.1-5", "2.38.1-5+deb12u1") == .orderedAscending)
        #expect(c.compare("3.0.9-1", "3.0.10-1~deb12u1") == .orderedAscending)
        #expect(c.compare("1.0~rc1", "1.0") == .orderedAscending)
        #expect(c.compare("", "1") == nil)
        #expect(c.compare("a1", "1") == nil)
        #expect(c.compare("x:1", "1") == nil)
        let v = try #require(DpkgVersion("1:2.38.1-5+b1"))
        #expect(v.epoch == 1 && v.upstream == "2.38.1" && v.revision == "5+b1")
    }
}

@Suite struct PEP440Tests {
    @Test(arguments: [
        ("2.19.1", "2.20.0", ComparisonResult.orderedAscending),
        ("1.0", "1.0.0", .orderedSame),
        ("1.0a1", "1.0", .orderedAscending),
        ("1.0.dev1", "1.0a1", .orderedAscending),
        ("1.0rc1", "1.0", .orderedAscending),
        ("1.0.post1", "1.0", .orderedDescending),
        ("1.0.post1.dev1", "1.0.post1", .orderedAscending),
        ("1!0.1", "2.0", .orderedDescending),
        ("1.0+local.1", "1.0", .orderedDescending),
        ("1.0-1", "1.0.post1", .orderedSame),
        ("1.0-ALPHA-2", "1.0a2", .orderedSame),
        ("v1.0", "1.0", .orderedSame),
        ("1.0c1", "1.0rc1", .orderedSame),
        ("2.31.0", "2.19.1", .orderedDescending),
    ])
    func ordering(a: String, b: String, expected: ComparisonResult) {
        #expect(PEP440VersionComparator().compare(a, b) == expected)
    }

    @Test(arguments: ["", "trunk", "1.0+", "1..0", "2013-01-21T20:33:09+0100", "abc"])
    func rejectsInvalid(text: String) {
        #expect(PEP440Version(text) == nil)
    }
}

@Suite struct SemanticVersionTests {
    @Test(arguments: [
        ("0.7.0", "0.7.1", ComparisonResult.orderedAscending),
        ("1.0.0-alpha", "1.0.0", .orderedAscending),
        ("1.0.0-alpha", "1.0.0-alpha.1", .orderedAscending),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta", .orderedAscending),
        ("1.0.0-beta.2", "1.0.0-beta.11", .orderedAscending),
        ("1.0.0-rc.1", "1.0.0", .orderedAscending),
        ("1.0.0+build.1", "1.0.0", .orderedSame),
        ("v1.2", "1.2.0", .orderedSame),
        ("10.0.0", "9.99.99", .orderedDescending),
    ])
    func ordering(a: String, b: String, expected: ComparisonResult) {
        #expect(SemanticVersionComparator().compare(a, b) == expected)
    }

    @Test(arguments: ["", "1.2.3.4", "a.b.c", "1.-2.3", "1.2.3-", "1.2.3-a..b"])
    func rejectsInvalid(text: String) {
        #expect(SemanticVersion(text) == nil)
    }
}
