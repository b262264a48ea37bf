import Foundation

/// A JSON value, for AWS JSON protocol requests and responses.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses a request body. Throws `SerializationException` for anything that is not a JSON object.
    public static func parseObject(_ bytes: [UInt8]) throws(ECRError) -> [String: JSONValue] {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        if p.i == bytes.count { return [:] }
        guard let v = p.value(depth: 0) else {
            throw .serialization("The request body is not valid JSON")
        }
        p.skipSpace()
        guard p.i == bytes.count else { throw .serialization("Unexpected characters after the JSON document") }
        guard case .object(let o) = v else {
            throw .serialization("Start of structure or map not found: the request body must be a JSON object")
        }
        return o
    }

    /// Compact JSON text.
    public func encoded() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d):
            if d.isFinite, d.rounded() == d, abs(d) < 1e15 { out.append(contentsOf: String(Int64(d)).utf8) }
            else if d.isFinite { out.append(contentsOf: String(d).utf8) }
            else { out.append(contentsOf: "null".utf8) }
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            for (i, k) in o.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                o[k]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): out.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): out.append(contentsOf: "\\\\".utf8)
            case 0x0a: out.append(contentsOf: "\\n".utf8)
            case 0x0d: out.append(contentsOf: "\\r".utf8)
            case 0x09: out.append(contentsOf: "\\t".utf8)
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "\\u00".utf8)
                out.append(hex[Int(b >> 4)])
                out.append(hex[Int(b & 0xf)])
            default: out.append(b)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, b in b }))
    }
}

/// Typed access to request members with AWS's errors: a wrong JSON type is a
/// `SerializationException`, a missing required member an `InvalidParameterException`.
struct Params {
    let members: [String: JSONValue]

    init(_ members: [String: JSONValue]) { self.members = members }

    func typeError(_ name: String, _ expected: String) -> ECRError {
        .serialization("Unexpected type for member '\(name)': expected \(expected)")
    }

    func missing(_ name: String) -> ECRError {
        .invalidParameter("1 validation error detected: Value null at '\(name)' failed to satisfy constraint: Member must not be null")
    }

    func string(_ name: String) throws(ECRError) -> String? {
        switch members[name] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw typeError(name, "string")
        }
    }

    func requiredString(_ name: String) throws(ECRError) -> String {
        guard let s = try string(name) else { throw missing(name) }
        return s
    }

    func bool(_ name: String) throws(ECRError) -> Bool? {
        switch members[name] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw typeError(name, "boolean")
        }
    }

    func int(_ name: String) throws(ECRError) -> Int64? {
        switch members[name] {
        case nil, .null?: return nil
        case .int(let i)?: return i
        default: throw typeError(name, "integer")
        }
    }

    func requiredInt(_ name: String) throws(ECRError) -> Int64 {
        guard let i = try int(name) else { throw missing(name) }
        return i
    }

    func object(_ name: String) throws(ECRError) -> Params? {
        switch members[name] {
        case nil, .null?: return nil
        case .object(let o)?: return Params(o)
        default: throw typeError(name, "structure")
        }
    }

    func list(_ name: String) throws(ECRError) -> [JSONValue]? {
        switch members[name] {
        case nil, .null?: return nil
        case .array(let a)?: return a
        default: throw typeError(name, "list")
        }
    }

    func stringList(_ name: String) throws(ECRError) -> [String]? {
        guard let l = try list(name) else { return nil }
        var out: [String] = []
        for v in l {
            guard case .string(let s) = v else { throw typeError(name, "list of strings") }
            out.append(s)
        }
        return out
    }

    func objectList(_ name: String) throws(ECRError) -> [Params]? {
        guard let l = try list(name) else { return nil }
        var out: [Params] = []
        for v in l {
            guard case .object(let o) = v else { throw typeError(name, "list of structures") }
            out.append(Params(o))
        }
        return out
    }

    /// Refuses a list whose length is outside `range`, with ECR's validation message.
    func checkCount(_ name: String, _ count: Int, _ range: ClosedRange<Int>) throws(ECRError) {
        guard range.contains(count) else {
            throw .invalidParameter("1 validation error detected: Value at '\(name)' failed to satisfy constraint: Member must have length between \(range.lowerBound) and \(range.upperBound)")
        }
    }

    /// A required list of structures with a length in `range`.
    func requiredObjectList(_ name: String, count range: ClosedRange<Int>) throws(ECRError) -> [Params] {
        guard let list = try objectList(name) else { throw missing(name) }
        try checkCount(name, list.count, range)
        return list
    }

    /// A required list of strings with a length in `range`.
    func requiredStringList(_ name: String, count range: ClosedRange<Int>) throws(ECRError) -> [String] {
        guard let list = try stringList(name) else { throw missing(name) }
        try checkCount(name, list.count, range)
        return list
    }

    /// `maxResults` within [lo, hi].
    func maxResults(_ lo: Int64 = 1, _ hi: Int64) throws(ECRError) -> Int? {
        guard let v = try int("maxResults") else { return nil }
        guard v >= lo, v <= hi else {
            throw .invalidParameter("1 validation error detected: Value '\(v)' at 'maxResults' failed to satisfy constraint: Member must have value \(v < lo ? "greater than or equal to \(lo)" : "less than or equal to \(hi)")")
        }
        return Int(v)
    }
}

/// A strict RFC 8259 parser with a nesting limit; returns nil on any error.
struct JSONParser {
    let bytes: [UInt8]
    var i = 0
    static let maxDepth = 64

    init(bytes: [UInt8]) { self.bytes = bytes }

    mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
    }

    mutating func literal(_ s: String) -> Bool {
        let u = Array(s.utf8)
        guard i + u.count <= bytes.count, Array(bytes[i..<i + u.count]) == u else { return false }
        i += u.count
        return true
    }

    mutating func value(depth: Int) -> JSONValue? {
        guard depth < Self.maxDepth else { return nil }
        skipSpace()
        guard i < bytes.count else { return nil }
        switch bytes[i] {
        case UInt8(ascii: "{"):
            i += 1
            var o: [String: JSONValue] = [:]
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\""), let k = string() else { return nil }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                i += 1
                guard let v = value(depth: depth + 1) else { return nil }
                o[k] = v
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(o) }
                return nil
            }
        case UInt8(ascii: "["):
            i += 1
            var a: [JSONValue] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
            while true {
                guard let v = value(depth: depth + 1) else { return nil }
                a.append(v)
                skipSpace()
                guard i < bytes.count else { return nil }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(a) }
                return nil
            }
        case UInt8(ascii: "\""):
            return string().map { .string($0) }
        case UInt8(ascii: "t"): return literal("true") ? .bool(true) : nil
        case UInt8(ascii: "f"): return literal("false") ? .bool(false) : nil
        case UInt8(ascii: "n"): return literal("null") ? .null : nil
        default:
            return number()
        }
    }

    mutating func number() -> JSONValue? {
        let start = i
        if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
        var digits = 0
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1; digits += 1 }
        guard digits > 0 else { return nil }
        var isInt = true
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            isInt = false
            i += 1
            var frac = 0
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1; frac += 1 }
            guard frac > 0 else { return nil }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            isInt = false
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            var exp = 0
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1; exp += 1 }
            guard exp > 0 else { return nil }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if isInt, let v = Int64(text) { return .int(v) }
        return Double(text).map { .double($0) }
    }

    mutating func hex4() -> UInt32? {
        guard i + 4 <= bytes.count else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: return nil
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func string() -> String? {
        i += 1  // opening quote
        var out: [UInt8] = []
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return String(validating: out, as: UTF8.self)
            }
            if c < 0x20 { return nil }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < bytes.count else { return nil }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard var scalar = hex4() else { return nil }
                if scalar >= 0xD800, scalar < 0xDC00 {
                    guard literal("\\u"), let low = hex4(), low >= 0xDC00, low < 0xE000 else { return nil }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let u = Unicode.Scalar(scalar) else { return nil }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: return nil
            }
        }
        return nil
    }
}
