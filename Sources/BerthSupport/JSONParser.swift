/// Why a document is not acceptable JSON.
public enum JSONParseError: Error, Sendable, Equatable {
    case syntax(offset: Int)
    /// A complete value was followed by more than white space.
    case trailingCharacters(offset: Int)
    case tooDeeplyNested(limit: Int)
    case duplicateKey(String)
}

/// What a parse builds: the parser reads the grammar, a builder decides what a value is made of, so the
/// AWS JSON protocol's `JSONValue` and a policy's document-order tree come from the same parser.
public protocol JSONTreeBuilder {
    associatedtype Value
    func null() -> Value
    func bool(_ value: Bool) -> Value
    /// A number exactly as written; `isInteger` when it has neither fraction nor exponent.
    func number(_ text: String, isInteger: Bool) -> Value
    func string(_ value: String) -> Value
    func array(_ elements: [Value]) -> Value
    /// The members in document order (duplicates included unless the parse refuses them).
    func object(_ members: [(key: String, value: Value)]) -> Value
}

/// A strict RFC 8259 parser with a nesting bound and, optionally, duplicate-key rejection.
///
/// Written by hand rather than using `JSONSerialization` so that depth is bounded before any recursion
/// happens, duplicate members (an ambiguous `Effect`, say) can be refused instead of silently resolved,
/// member order is kept, numbers stay as written, and bytes that are not UTF-8 are refused.
public struct JSONParser<Builder: JSONTreeBuilder> {
    private let bytes: [UInt8]
    private var index = 0
    private let maximumDepth: Int
    private let rejectsDuplicateKeys: Bool
    private let builder: Builder

    private init(_ bytes: [UInt8], maximumDepth: Int, rejectsDuplicateKeys: Bool, builder: Builder) {
        self.bytes = bytes
        self.maximumDepth = maximumDepth
        self.rejectsDuplicateKeys = rejectsDuplicateKeys
        self.builder = builder
    }

    /// Parses one JSON text (surrounded by optional white space). `maximumDepth` bounds how many arrays
    /// and objects may be nested (the outermost is level 1).
    public static func parse(_ bytes: [UInt8], maximumDepth: Int, rejectsDuplicateKeys: Bool,
                             builder: Builder) throws(JSONParseError) -> Builder.Value {
        var parser = JSONParser(bytes, maximumDepth: maximumDepth, rejectsDuplicateKeys: rejectsDuplicateKeys, builder: builder)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw .trailingCharacters(offset: parser.index) }
        return value
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func skipWhitespace() {
        while let c = current, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { index += 1 }
    }

    private mutating func expect(_ byte: UInt8) throws(JSONParseError) {
        guard current == byte else { throw .syntax(offset: index) }
        index += 1
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> Builder.Value {
        guard let c = current else { throw .syntax(offset: index) }
        switch c {
        case UInt8(ascii: "{"): return try parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return builder.string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return builder.bool(true)
        case UInt8(ascii: "f"): try literal("false"); return builder.bool(false)
        case UInt8(ascii: "n"): try literal("null"); return builder.null()
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let (text, isInteger) = try parseNumber()
            return builder.number(text, isInteger: isInteger)
        default: throw .syntax(offset: index)
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let expected = word.withUTF8Buffer { Array($0) }
        guard index + expected.count <= bytes.count, bytes[index..<index + expected.count].elementsEqual(expected) else {
            throw .syntax(offset: index)
        }
        index += expected.count
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> Builder.Value {
        guard depth <= maximumDepth else { throw .tooDeeplyNested(limit: maximumDepth) }
        try expect(UInt8(ascii: "{"))
        var members: [(key: String, value: Builder.Value)] = []
        var seen = Set<String>()
        skipWhitespace()
        if current == UInt8(ascii: "}") { index += 1; return builder.object(members) }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw .syntax(offset: index) }
            let key = try parseString()
            if rejectsDuplicateKeys {
                guard seen.insert(key).inserted else { throw .duplicateKey(key) }
            }
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            skipWhitespace()
            let value = try parseValue(depth: depth)
            members.append((key, value))
            skipWhitespace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "}"))
            return builder.object(members)
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> Builder.Value {
        guard depth <= maximumDepth else { throw .tooDeeplyNested(limit: maximumDepth) }
        try expect(UInt8(ascii: "["))
        var elements: [Builder.Value] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") { index += 1; return builder.array(elements) }
        while true {
            skipWhitespace()
            elements.append(try parseValue(depth: depth))
            skipWhitespace()
            if current == UInt8(ascii: ",") { index += 1; continue }
            try expect(UInt8(ascii: "]"))
            return builder.array(elements)
        }
    }

    private mutating func parseNumber() throws(JSONParseError) -> (text: String, isInteger: Bool) {
        let start = index
        var isInteger = true
        if current == UInt8(ascii: "-") { index += 1 }
        guard let first = current, isDigit(first) else { throw .syntax(offset: index) }
        if first == UInt8(ascii: "0") {
            index += 1
        } else {
            while let c = current, isDigit(c) { index += 1 }
        }
        if current == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard let c = current, isDigit(c) else { throw .syntax(offset: index) }
            while let c = current, isDigit(c) { index += 1 }
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            isInteger = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard let c = current, isDigit(c) else { throw .syntax(offset: index) }
            while let c = current, isDigit(c) { index += 1 }
        }
        return (String(decoding: bytes[start..<index], as: UTF8.self), isInteger)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }

    private mutating func parseString() throws(JSONParseError) -> String {
        let open = index
        try expect(UInt8(ascii: "\""))
        var out: [UInt8] = []
        var runStart = index
        while true {
            guard let c = current else { throw .syntax(offset: index) }
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<index])
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else { throw .syntax(offset: open) }
                return text
            }
            if c < 0x20 { throw .syntax(offset: index) }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: bytes[runStart..<index])
                index += 1
                guard let e = current else { throw .syntax(offset: index) }
                index += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    let high = try parseHex4()
                    var value = high
                    if (0xD800...0xDBFF).contains(high) {
                        guard current == UInt8(ascii: "\\") else { throw .syntax(offset: index) }
                        index += 1
                        guard current == UInt8(ascii: "u") else { throw .syntax(offset: index) }
                        index += 1
                        let low = try parseHex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw .syntax(offset: index) }
                        value = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(value) else { throw .syntax(offset: index) }
                    out.append(contentsOf: String(Character(scalar)).utf8)
                default: throw .syntax(offset: index - 1)
                }
                runStart = index
                continue
            }
            index += 1
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw .syntax(offset: index) }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[index]
            let digit: UInt32
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(c - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(c - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(c - UInt8(ascii: "A") + 10)
            default: throw .syntax(offset: index)
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }
}
