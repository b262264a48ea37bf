import Testing
@testable import BerthVersions

@Suite("PEP 440 versions")
struct PEP440VersionTests {
    /// Each checked against python's `packaging.version.Version`.
    static let cases: [ComparisonCase] = [
        // release segments, with implicit zero padding
        .init("1.0", .eq, "1.0.0"),
        .init("1", .eq, "1.0.0.0"),
        .init("1.0.1", .gt, "1.0"),
        .init("1.10", .gt, "1.9"),
        .init("1.01", .eq, "1.1"),
        .init("2.0", .gt, "1.99999999999999999999999"),
        .init("99999999999999999999999999", .gt, "99999999999999999999999998"),
        // epochs beat everything
        .init("1!1.0", .gt, "2.0"),
        .init("0!1.0", .eq, "1.0"),
        .init("2!0.1", .gt, "1!99"),
        // dev < pre < release < post
        .init("1.0.dev0", .lt, "1.0a0"),
        .init("1.0a1", .lt, "1.0"),
        .init("1.0a1", .lt, "1.0a2"),
        .init("1.0a2", .lt, "1.0b1"),
        .init("1.0b1", .lt, "1.0rc1"),
        .init("1.0rc1", .lt, "1.0"),
        .init("1.0", .lt, "1.0.post1"),
        .init("1.0a1.dev1", .lt, "1.0a1"),
        .init("1.0a1", .lt, "1.0a1.post1"),
        .init("1.0a1.post1.dev1", .lt, "1.0a1.post1"),
        .init("1.0.post1.dev1", .lt, "1.0.post1"),
        .init("1.0.post1.dev1", .gt, "1.0"),
        .init("1.0.post1", .lt, "1.0.post2"),
        .init("1.0.post1", .lt, "1.0.1"),
        .init("1.0rc1", .gt, "1.0.dev99"),
        .init("1.0.dev1", .gt, "0.9.post9"),
        // alternate spellings normalise to the same version
        .init("1.0a1", .eq, "1.0-alpha.1"),
        .init("1.0a1", .eq, "1.0.ALPHA1"),
        .init("1.0b2", .eq, "1.0beta2"),
        .init("1.0rc1", .eq, "1.0c1"),
        .init("1.0rc1", .eq, "1.0-pre1"),
        .init("1.0rc1", .eq, "1.0preview1"),
        .init("1.0a0", .eq, "1.0a"),
        .init("1.0.post1", .eq, "1.0-1"),
        .init("1.0.post1", .eq, "1.0-r1"),
        .init("1.0.post1", .eq, "1.0_rev_1"),
        .init("1.0.post0", .eq, "1.0.post"),
        .init("1.0.dev0", .eq, "1.0-dev"),
        .init("1.0", .eq, "v1.0"),
        .init("1.0", .eq, "  1.0\n"),
        // local versions sort after the public one
        .init("1.0", .lt, "1.0+local"),
        .init("1.0+abc", .lt, "1.0+1"),
        .init("1.0+abc.5", .lt, "1.0+abc.10"),
        .init("1.0+abc.5", .eq, "1.0+ABC-05"),
        .init("1.0+ubuntu1", .lt, "1.0+ubuntu1.1"),
        .init("1.0+local", .lt, "1.0.post1"),
        .init("1.0a1+local", .lt, "1.0"),
    ]

    @Test(arguments: cases)
    func compares(_ c: ComparisonCase) throws {
        let (a, b) = (try PEP440Version(parsing: c.a), try PEP440Version(parsing: c.b))
        #expect(PEP440Version.compare(a, b) == c.expected)
        #expect(PEP440Version.compare(b, a) == c.expected.reversed)
        #expect(try VersionComparator.compare(c.a, c.b, in: .pypi) == c.expected)
        if c.expected == .equal { #expect(a.hashValue == b.hashValue) }
    }

    /// `str(Version(input))` in python's packaging.
    @Test(arguments: [
        ("1.0a1", "1.0a1"),
        ("1.0-alpha.1", "1.0a1"),
        ("1.0.post1", "1.0.post1"),
        ("1.0-1", "1.0.post1"),
        ("1.0_r_2", "1.0.post2"),
        ("V1.0RC3", "1.0rc3"),
        ("1.0c", "1.0rc0"),
        ("1.0-dev-5", "1.0.dev5"),
        ("0!1.0", "1.0"),
        ("01!001.002.000", "1!1.2.0"),
        ("1!1.0.0.0a01.post02.dev03+abc.07", "1!1.0.0.0a1.post2.dev3+abc.7"),
        ("1.0+Ubuntu_1-2", "1.0+ubuntu.1.2"),
        ("1.0a.", "1.0a0"),
        ("1.0a-1", "1.0a1"),
        ("1.0a.-1", "1.0a0.post1"),
        ("1.0apost1", "1.0a0.post1"),
        ("1.0rcdev", "1.0rc0.dev0"),
        ("1.0-post-", "1.0.post0"),
        ("\u{2003}1.0\u{2003}", "1.0"),
    ])
    func normalises(_ input: String, _ normalised: String) throws {
        let v = try PEP440Version(parsing: input)
        #expect(v.description == normalised)
        #expect(try PEP440Version(parsing: normalised) == v)
    }

    @Test func exposesItsParts() throws {
        let v = try PEP440Version(parsing: "1.0rc1.post2+deb.1")
        #expect(v.isPrerelease)
        #expect(v.isPostRelease)
        #expect(v.local == "deb.1")
        #expect(v.publicVersion == "1.0rc1.post2")
        #expect(try !PEP440Version(parsing: "1.0.post1").isPrerelease)
        #expect(try PEP440Version(parsing: "1.0.dev1").isPrerelease)
        #expect(try PEP440Version(parsing: "1.0").local == nil)
    }

    /// Each rejected by packaging with `InvalidVersion`.
    @Test(arguments: [
        "", "   ", "a", "v", "1.", "1..0", ".1", "1.0-", "1.0_", "1.0+", "1.0+a..b", "1.0++1",
        "1.0+-1", "1!", "!1", "1.0prev", "1.0re", "vv1.0", "1.0-post--", "1.0.dev1.dev2",
        "1.0a1a2", "1.0-1-1", "1.0.post1.post2", "1.0 1", "1,0", "1.0+ſ", "１.０", "1.0\u{0}",
        "1.0éa", "latest",
    ])
    func rejects(_ input: String) {
        #expect(throws: VersionParseError.self) { try PEP440Version(parsing: input) }
    }
}
