import Foundation
import Testing
@testable import BerthAuth
import BerthSupport

/// The canonicalization pieces on their own.
@Suite struct SigV4CanonicalTests {
    static func uri(_ path: String, normalize: Bool = true) -> String {
        String(decoding: SigV4Canonical.canonicalURI(path, normalize: normalize), as: UTF8.self)
    }

    static func query(_ raw: String?, excluding: String? = nil) -> String {
        String(decoding: SigV4Canonical.canonicalQuery(SigV4Canonical.parseQuery(raw), excludingName: excluding),
               as: UTF8.self)
    }

    @Test(arguments: [
        ("", "/"), ("/", "/"), ("//", "/"), ("/./", "/"), ("/a/../..", "/"), ("/a/b/../c", "/a/c"),
        ("//example//", "/example/"), ("/a/./b/", "/a/b/"), ("/example space/", "/example%20space/"),
        // Encoded once on the wire, encoded again in the canonical URI (non-S3 "double encoding").
        ("/example%20space", "/example%2520space"), ("/sha256:abc", "/sha256%3Aabc"), ("/ሴ", "/%E1%88%B4"),
    ])
    func normalizedURI(path: String, expected: String) {
        #expect(Self.uri(path) == expected)
    }

    @Test func unnormalizedURIKeepsSlashesAndDots() {
        #expect(Self.uri("//example//", normalize: false) == "//example//")
        #expect(Self.uri("/./a/../b", normalize: false) == "/./a/../b")
        #expect(Self.uri("/a b", normalize: false) == "/a%20b")
    }

    @Test func querySortingAndEncoding() {
        #expect(Self.query(nil) == "")
        #expect(Self.query("") == "")
        #expect(Self.query("b=2&a=1") == "a=1&b=2")
        // Sorted by name, then value, byte-wise (uppercase before lowercase).
        #expect(Self.query("a=2&a=1&B=3") == "B=3&a=1&a=2")
        // A name without `=` gets an empty value; empty parts vanish.
        #expect(Self.query("flag&&x=1&") == "flag=&x=1")
        // Values are decoded then re-encoded with RFC 3986 (uppercase hex, `+` and `/` encoded).
        #expect(Self.query("k=a%2fb+c%20d") == "k=a%2Fb%2Bc%20d")
        #expect(Self.query("k=%zz") == "k=%25zz")
        #expect(Self.query("=v") == "=v")
        #expect(Self.query("X-Amz-Signature=abc&a=1", excluding: "X-Amz-Signature") == "a=1")
    }

    @Test func headerValueTrimming() {
        func trimmed(_ value: String) -> String {
            var out: [UInt8] = []
            SigV4Canonical.appendTrimmed(value, into: &out)
            return String(decoding: out, as: UTF8.self)
        }
        #expect(trimmed("  a   b \t c  ") == "a b c")
        #expect(trimmed("\"a   b   c\"") == "\"a b c\"")
        #expect(trimmed("") == "")
        #expect(trimmed("   ") == "")
    }

    @Test func canonicalHeadersJoinRepeatedValues() {
        var out: [UInt8] = []
        SigV4Canonical.canonicalHeaders(
            signedNames: ["host", "my-header1"],
            headers: [("Host", "h"), ("My-Header1", " b "), ("my-header1", "a"), ("Other", "x")], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "host:h\nmy-header1:b,a\n")
    }

    @Test func percentEncoding() {
        #expect(PercentEncoding.encoded("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encoded("a b/c;d=e&f+g*h") == "a%20b%2Fc%3Bd%3De%26f%2Bg%2Ah")
        #expect(PercentEncoding.encoded("é") == "%C3%A9")
    }

    @Test func signingKeyDerivation() {
        // The documented example key: AWS General Reference, "Examples of how to derive a signing key".
        let key = SigV4Canonical.signingKey(
            secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            scope: SigV4Scope(date: "20120215", region: "us-east-1", service: "iam"))
        #expect(Bytes.hex(key)
            == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
    }
}

/// `AmzDate` parsing and formatting.
@Suite struct AmzDateTests {
    @Test func roundTrip() throws {
        let date = try #require(AmzDate("20150830T123600Z"))
        #expect(date.secondsSince1970 == 1_440_938_160)
        #expect(date.description == "20150830T123600Z")
        #expect(date.dateStamp == "20150830")
        #expect(AmzDate(secondsSince1970: 0).description == "19700101T000000Z")
        #expect(AmzDate(secondsSince1970: 951_782_400).description == "20000229T000000Z")
        #expect(AmzDate(secondsSince1970: -1).description == "19691231T235959Z")
        #expect(AmzDate(Date(timeIntervalSince1970: 1_440_938_160.9)).description == "20150830T123600Z")
        #expect(AmzDate(Date(timeIntervalSince1970: -0.5)).description == "19691231T235959Z")
        #expect(AmzDate("20150830T123600Z")?.date == Date(timeIntervalSince1970: 1_440_938_160))
    }

    @Test(arguments: [
        "", "20150830T123600", "20150830 123600Z", "2015-08-30T12:36:00Z", "20151330T123600Z", "20150230T123600Z",
        "20150831T243600Z", "20150830T126000Z", "20150830T123660Z", "2015083OT123600Z", "20150830T123600z",
        "+0150830T123600Z",
    ])
    func rejectsMalformed(text: String) {
        #expect(AmzDate(text) == nil)
    }

    @Test func extremeInstantsDoNotTrap() {
        #expect(AmzDate(secondsSince1970: .min).description == "00000101T000000Z")
        #expect(AmzDate(secondsSince1970: .max).description == "99991231T235959Z")
        #expect(AmzDate(Date.distantFuture).description.count == 16)
        #expect(AmzDate(Date(timeIntervalSince1970: .infinity)).secondsSince1970 == 0)
        #expect(AmzDate(secondsSince1970: .max).adding(seconds: 10).secondsSince1970 < 0) // wraps, no trap
    }

    @Test func leapYears() {
        #expect(AmzDate("20240229T000000Z") != nil)
        #expect(AmzDate("20230229T000000Z") == nil)
        #expect(AmzDate("19000229T000000Z") == nil)
        #expect(AmzDate("20000229T000000Z") != nil)
    }

    @Test func everyDayOfARangeRoundTrips() {
        // 0000-01-01 through 9999-12-31.
        for day in stride(from: Int64(-719_528), through: 2_932_896, by: 97) {
            let date = AmzDate(secondsSince1970: day * 86_400 + 45_296)
            #expect(AmzDate(date.description) == date)
        }
    }
}
