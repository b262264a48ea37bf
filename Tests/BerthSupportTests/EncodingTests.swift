import BerthSupport
import Testing

@Suite struct Base64URLTests {
    @Test func roundTripsEveryLength() {
        var bytes: [UInt8] = []
        for n in 0..<70 {
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("=") && !encoded.contains("+") && !encoded.contains("/"))
            #expect(Base64URL.decode(encoded) == bytes)
            bytes.append(UInt8(truncatingIfNeeded: n &* 37 &+ 251))
        }
    }

    @Test func knownValues() {
        #expect(Base64URL.encode([0xfb, 0xff, 0xbf]) == "-_-_")
        #expect(Base64URL.encode(Array("hello".utf8)) == "aGVsbG8")
        #expect(Base64URL.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64URL.decode("AQ") == [1])
        #expect(Base64URL.decode("") == [])
    }

    @Test func refusesWhatIsNotCanonicalUnpaddedBase64URL() {
        #expect(Base64URL.decode("A") == nil, "a lone character cannot encode a byte")
        #expect(Base64URL.decode("AB") == nil, "non-zero leftover bits")
        #expect(Base64URL.decode("AAA=") == nil, "padding")
        #expect(Base64URL.decode("a+b/") == nil, "the standard alphabet's characters")
        #expect(Base64URL.decode("aGVs bG8") == nil)
        #expect(Base64URL.decode(Substring("aGVsbG8")) == Array("hello".utf8))
    }
}

@Suite struct PercentEncodingTests {
    @Test func encodesAllButUnreservedWithUpperCaseHex() {
        #expect(PercentEncoding.encoded("AZaz09-._~") == "AZaz09-._~")
        #expect(PercentEncoding.encoded("a b/c;d=e&f+g*h") == "a%20b%2Fc%3Bd%3De%26f%2Bg%2Ah")
        #expect(PercentEncoding.encoded("é{\"x\":1}") == "%C3%A9%7B%22x%22%3A1%7D")
        var out: [UInt8] = []
        PercentEncoding.encode("/a b/".utf8, keepSlash: true, into: &out)
        #expect(String(decoding: out, as: UTF8.self) == "/a%20b/")
    }

    @Test func lenientDecodingKeepsWhatIsNotAnEscape() {
        func d(_ s: String) -> String { String(decoding: PercentEncoding.decodeLeniently(s.utf8), as: UTF8.self) }
        #expect(d("a%20b%2fc") == "a b/c")
        #expect(d("a+b") == "a+b")
        #expect(d("100%") == "100%")
        #expect(d("%zz%4") == "%zz%4")
        #expect(d("%C3%A9") == "é")
    }

    @Test func formDecoding() {
        func d(_ s: String) -> String? { PercentEncoding.decodeFormComponent(Array(s.utf8)[...]) }
        #expect(d("a+b%20c") == "a b c")
        #expect(d("%7B%22x%22%3A1%7D") == "{\"x\":1}")
        #expect(d("%41") == "A")
        #expect(d("100%") == nil)
        #expect(d("%4") == nil)
        #expect(d("%zz") == nil)
        #expect(d("%FF") == nil, "not UTF-8")
        #expect(d("") == "")
    }

    @Test func encodedDecodesBack() {
        let text = "Statement=[{\"Effect\": \"Allow\", \"Action\": \"ecr:*\"}] ü ☃ +&="
        #expect(PercentEncoding.decodeFormComponent(Array(PercentEncoding.encoded(text).utf8)) == text)
        #expect(String(decoding: PercentEncoding.decodeLeniently(PercentEncoding.encoded(text).utf8), as: UTF8.self) == text)
    }
}

@Suite struct WildcardPatternTests {
    @Test func globs() {
        #expect(WildcardPattern.glob("*").matches(""))
        #expect(WildcardPattern.glob("release-*").matches("release-1.2"))
        #expect(!WildcardPattern.glob("release-*").matches("dev-1"))
        #expect(WildcardPattern.glob("a*b*c").matches("axxbyyc"))
        #expect(!WildcardPattern.glob("a*b*c").matches("axxbyy"))
        #expect(WildcardPattern.glob("a?c").matches("abc"))
        #expect(!WildcardPattern.glob("a?c").matches("ac"))
        #expect(WildcardPattern.glob("arn:*:x").matches("arn:a:b:x"), "colons are ordinary characters in a plain glob")
    }

    @Test func questionMarkCanBeLiteral() {
        #expect(!WildcardPattern.glob("a?c", questionMark: false).matches("abc"))
        #expect(WildcardPattern.glob("a?c", questionMark: false).matches("a?c"))
    }

    @Test func caseInsensitive() {
        #expect(WildcardPattern.glob("ECR:Get*", caseInsensitive: true).matches("ecr:GetAuthorizationToken"))
        #expect(!WildcardPattern.glob("ECR:Get*").matches("ecr:GetAuthorizationToken"))
    }

    @Test func noBacktrackingBlowUp() {
        let pattern = WildcardPattern.glob(String(repeating: "*a", count: 60) + "b")
        #expect(!pattern.matches(String(repeating: "a", count: 5000)))
    }
}

@Suite struct ValidationMessageTests {
    /// The three ways AWS shows the value, and the constraint wordings of its validators.
    @Test func wordingMatchesAWS() {
        #expect(ValidationMessage.missing("repositoryName").description
            == "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null")
        #expect(ValidationMessage(.omitted, at: "layerPartBlob", .lengthAtMost(20_971_520)).description
            == "1 validation error detected: Value at 'layerPartBlob' failed to satisfy constraint: Member must have length less than or equal to 20971520")
        #expect(ValidationMessage(.text("9"), at: "durationSeconds", .valueBetween(900, 43200)).description
            == "1 validation error detected: Value '9' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200")
        #expect(ValidationMessage(.text("X"), at: "targetStorageClass", .oneOf(["STANDARD", "ARCHIVE"])).description
            == "1 validation error detected: Value 'X' at 'targetStorageClass' failed to satisfy constraint: Member must satisfy enum value set: [STANDARD, ARCHIVE]")
        #expect(ValidationMessage(.text("a b"), at: "userName", .pattern("[\\w+=,.@-]+")).description
            == "1 validation error detected: Value 'a b' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+")
        #expect(ValidationMessage(.omitted, at: "m", .lengthBetween(1, 2)).constraint.text == "Member must have length between 1 and 2")
        #expect(ValidationMessage(.omitted, at: "m", .lengthAtLeast(2)).constraint.text == "Member must have length greater than or equal to 2")
        #expect(ValidationMessage(.omitted, at: "m", .valueAtLeast(0)).constraint.text == "Member must have value greater than or equal to 0")
        #expect(ValidationMessage(.omitted, at: "m", .valueAtMost(5)).constraint.text == "Member must have value less than or equal to 5")
    }
}
