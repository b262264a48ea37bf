@testable import BerthPolicy
import BerthSupport
import Testing

struct JSONParserTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let text: String
        let expected: PolicyJSON?
        var testDescription: String { text }
    }

    static let accepted: [Case] = [
        Case(text: #"{}"#, expected: .object([])),
        Case(text: #" [1, -2.5e3, 0] "#, expected: .array([.number("1"), .number("-2.5e3"), .number("0")])),
        Case(text: #"{"a":true,"b":false,"c":null}"#, expected: .object([("a", .bool(true)), ("b", .bool(false)), ("c", .null)])),
        Case(text: #""\u00e9\n\t\"\\\/""#, expected: .string("é\n\t\"\\/")),
        Case(text: #""\ud83d\ude00""#, expected: .string("😀")),
        Case(text: #"{"z":1,"a":2}"#, expected: .object([("z", .number("1")), ("a", .number("2"))])),
    ]

    @Test(arguments: accepted)
    func parsesValidJSON(_ c: Case) throws {
        #expect(try PolicyJSON.parse(c.text, maximumDepth: 16) == c.expected)
    }

    static let rejected: [String] = [
        "", "{", #"{"a":}"#, #"{"a" 1}"#, "[1,]", "[01]", "[1.]", "[-]", #"{"a":1,}"#, "tru", "nul", #""\x""#,
        #""\ud83d""#, #""\udc00""#, "\"a\u{01}\"", "{} {}", #"{'a':1}"#, "[1 2]",
    ]

    @Test(arguments: rejected)
    func rejectsInvalidJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try PolicyJSON.parse(text, maximumDepth: 16) }
    }

    @Test func rejectsDuplicateKeys() {
        #expect(throws: JSONParseError.duplicateKey("Effect")) {
            try PolicyJSON.parse(#"{"Effect":"Allow","Effect":"Deny"}"#, maximumDepth: 16)
        }
    }

    @Test(arguments: [16, 64])
    func boundsNestingDepth(_ limit: Int) {
        let deep = String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)
        #expect(throws: JSONParseError.tooDeeplyNested(limit: limit)) { try PolicyJSON.parse(deep, maximumDepth: limit) }
        let fits = String(repeating: "[", count: limit) + String(repeating: "]", count: limit)
        #expect((try? PolicyJSON.parse(fits, maximumDepth: limit)) != nil)
    }

    @Test func survivesVeryDeepInputWithoutRecursing() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.tooDeeplyNested(limit: 16)) { try PolicyJSON.parse(deep, maximumDepth: 16) }
    }
}
