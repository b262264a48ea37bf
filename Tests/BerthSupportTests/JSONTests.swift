import BerthSupport
import Foundation
import Testing

@Suite struct JSONTests {
    @Test func parsesIntoJSONValue() throws {
        let v = try JSONValue.parse(Array(#" {"a":1,"b":[true,null,"x\n\u00e9\ud83d\ude00"],"c":{"d":-2.5e1},"e":9223372036854775808} "#.utf8))
        #expect(v == .object([
            "a": .int(1), "b": .array([.bool(true), .null, .string("x\né😀")]), "c": .object(["d": .double(-25)]),
            "e": .double(9_223_372_036_854_775_808),
        ]))
    }

    @Test func lastDuplicateWinsUnlessRefused() throws {
        let text = Array(#"{"k":1,"k":2}"#.utf8)
        #expect(try JSONValue.parse(text) == .object(["k": .int(2)]))
        #expect(throws: JSONParseError.duplicateKey("k")) {
            try JSONParser.parse(text, maximumDepth: 4, rejectsDuplicateKeys: true, builder: JSONValue.Builder())
        }
    }

    @Test(arguments: ["", "{", "[01]", "[1.]", "[-]", "{\"a\":}", "{'a':1}", "tru", "\"\\x\"", "\"\\ud83d\"", "\"\\udc00\"",
                      "\"a\u{01}\"", "[1 2]", "{\"a\":1,}"])
    func refusesMalformed(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(Array(text.utf8)) }
    }

    @Test func trailingCharactersAreTheirOwnError() {
        #expect(throws: JSONParseError.trailingCharacters(offset: 3)) { try JSONValue.parse(Array("{} {}".utf8)) }
    }

    @Test func refusesBytesThatAreNotUTF8() throws {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xC3, 0x22]) }
        #expect(try JSONValue.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test func boundsNestingBeforeRecursing() {
        let fits = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? JSONValue.parse(Array(fits.utf8))) != nil)
        let deep = Array(String(repeating: "[", count: 100_000).utf8)
        #expect(throws: JSONParseError.tooDeeplyNested(limit: 64)) { try JSONValue.parse(deep) }
    }

    @Test func keepsDocumentOrderAndNumberTextForOtherBuilders() throws {
        struct Text: JSONTreeBuilder {
            func null() -> String { "null" }
            func bool(_ value: Bool) -> String { "\(value)" }
            func number(_ text: String, isInteger: Bool) -> String { isInteger ? text : "~\(text)" }
            func string(_ value: String) -> String { "'\(value)'" }
            func array(_ elements: [String]) -> String { "[" + elements.joined(separator: " ") + "]" }
            func object(_ members: [(key: String, value: String)]) -> String {
                "{" + members.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "}"
            }
        }
        let out = try JSONParser.parse(Array(#"{"z":1.50,"a":[10,-0,1e2],"m":null}"#.utf8), maximumDepth: 8,
                                       rejectsDuplicateKeys: true, builder: Text())
        #expect(out == "{z=~1.50 a=[10 -0 ~1e2] m=null}")
    }

    @Test func encodesCompactlyWithSortedKeysAndEscapes() throws {
        let v: JSONValue = ["b": [1, true, .null], "a": "q\"\\\n\u{01}é", "c": .double(2.5), "d": .double(3)]
        let text = String(decoding: v.encoded(), as: UTF8.self)
        #expect(text == #"{"a":"q\"\\\n\u0001é","b":[1,true,null],"c":2.5,"d":3}"#)
        #expect(try JSONValue.parse(v.encoded()) == ["a": "q\"\\\n\u{01}é", "b": [1, true, .null], "c": .double(2.5), "d": 3])
    }

    /// `Decodable` gives the same tree as the parser, so free-form members of `Codable` documents
    /// (OSV's `ecosystem_specific`) use the one JSON value type.
    @Test func decodableMatchesTheParser() throws {
        let text = #"{"a":"x","b":[1,true,null,2.5,-7],"c":{"d":{}},"e":9007199254740993}"#
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        #expect(decoded == (try JSONValue.parse(Array(text.utf8))))
        #expect(decoded["b"] == [1, true, .null, .double(2.5), -7])
        #expect(decoded["e"] == .int(9_007_199_254_740_993))
        #expect(decoded["a"]?.stringValue == "x" && decoded["c"]?.stringValue == nil && decoded["zz"] == nil)
    }
}
