import BerthSupport

/// A refused event pattern, with EventBridge's kind of message.
public struct EventPatternError: Error, Equatable, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "invalid event pattern: \(message)" }
}

/// An EventBridge event pattern (the common subset, docs/events.md): an object whose members are either
/// nested objects (matched against the event's object at that key) or non-empty arrays of matchers, of
/// which one must match the event's value (or, for an array value, one of its elements). Matchers: a
/// literal (string, number, boolean, null: equal), `{"prefix": s}`, `{"suffix": s}`,
/// `{"equals-ignore-case": s}`, `{"anything-but": v | [v…] | {"prefix": s} | {"suffix": s}}`,
/// `{"exists": true|false}` and `{"numeric": [op, n, …]}`. Every member of the pattern must match.
public struct EventPattern: Sendable, Equatable {
    indirect enum Node: Sendable, Equatable {
        case fields([String: Node])
        case matchers([Matcher])
    }

    enum Matcher: Sendable, Equatable {
        case equals(JSONValue)
        case prefix(String)
        case suffix(String)
        case equalsIgnoreCase(String)
        case anythingBut([JSONValue])
        case anythingButPrefix(String)
        case anythingButSuffix(String)
        case exists(Bool)
        case numeric([NumericBound])
    }

    struct NumericBound: Sendable, Equatable {
        enum Op: String, Sendable { case lt = "<", le = "<=", eq = "=", ge = ">=", gt = ">" }
        let op: Op
        let value: Double

        func holds(_ x: Double) -> Bool {
            switch op {
            case .lt: return x < value
            case .le: return x <= value
            case .eq: return x == value
            case .ge: return x >= value
            case .gt: return x > value
            }
        }
    }

    let root: [String: Node]

    /// Parses a pattern's JSON text.
    public init(parsing text: String) throws(EventPatternError) {
        let value: JSONValue
        do { value = try JSONValue.parse(Array(text.utf8)) } catch { throw EventPatternError("not JSON: \(error)") }
        try self.init(value)
    }

    public init(_ value: JSONValue) throws(EventPatternError) {
        guard case .object(let members) = value else { throw EventPatternError("a pattern is a JSON object") }
        guard !members.isEmpty else { throw EventPatternError("a pattern needs at least one field") }
        root = try Self.fields(members, path: "")
    }

    static func fields(_ members: [String: JSONValue], path: String) throws(EventPatternError) -> [String: Node] {
        var out: [String: Node] = [:]
        for (key, value) in members {
            let here = path.isEmpty ? key : "\(path).\(key)"
            switch value {
            case .object(let nested):
                guard !nested.isEmpty else { throw EventPatternError("\(here) is an empty object") }
                out[key] = .fields(try fields(nested, path: here))
            case .array(let list):
                guard !list.isEmpty else { throw EventPatternError("\(here) is an empty array") }
                var matchers: [Matcher] = []
                for item in list { matchers.append(try matcher(item, path: here)) }
                out[key] = .matchers(matchers)
            default:
                throw EventPatternError("\(here) must be an array of values or an object, got \(String(decoding: value.encoded(), as: UTF8.self))")
            }
        }
        return out
    }

    static func matcher(_ item: JSONValue, path: String) throws(EventPatternError) -> Matcher {
        switch item {
        case .string, .int, .double, .bool, .null:
            return .equals(item)
        case .array:
            throw EventPatternError("\(path): a matcher cannot be an array")
        case .object(let o):
            guard o.count == 1, let (name, arg) = o.first else {
                throw EventPatternError("\(path): a matcher object has exactly one member")
            }
            switch (name, arg) {
            case ("prefix", .string(let s)): return .prefix(s)
            case ("suffix", .string(let s)): return .suffix(s)
            case ("equals-ignore-case", .string(let s)): return .equalsIgnoreCase(s)
            case ("exists", .bool(let b)): return .exists(b)
            case ("anything-but", .array(let list)):
                guard !list.isEmpty, list.allSatisfy(\.isScalar) else {
                    throw EventPatternError("\(path): anything-but takes a value, a non-empty list of values, or a prefix or suffix")
                }
                return .anythingBut(list)
            case ("anything-but", .object(let inner)):
                if inner.count == 1, case .string(let s)? = inner["prefix"] { return .anythingButPrefix(s) }
                if inner.count == 1, case .string(let s)? = inner["suffix"] { return .anythingButSuffix(s) }
                throw EventPatternError("\(path): anything-but takes a value, a non-empty list of values, or a prefix or suffix")
            case ("anything-but", let v) where v.isScalar:
                return .anythingBut([v])
            case ("numeric", .array(let list)):
                return .numeric(try numeric(list, path: path))
            default:
                throw EventPatternError("\(path): unsupported matcher \(name) with \(String(decoding: arg.encoded(), as: UTF8.self))")
            }
        }
    }

    static func numeric(_ list: [JSONValue], path: String) throws(EventPatternError) -> [NumericBound] {
        guard !list.isEmpty, list.count.isMultiple(of: 2), list.count <= 4 else {
            throw EventPatternError("\(path): numeric takes one or two comparisons, like [\">\", 0, \"<=\", 5]")
        }
        var bounds: [NumericBound] = []
        var i = 0
        while i < list.count {
            guard case .string(let opText) = list[i], let op = NumericBound.Op(rawValue: opText), let n = list[i + 1].number else {
                throw EventPatternError("\(path): numeric takes one or two comparisons, like [\">\", 0, \"<=\", 5]")
            }
            bounds.append(NumericBound(op: op, value: n))
            i += 2
        }
        return bounds
    }

    /// Whether the event (EventBridge's envelope as JSON) matches.
    public func matches(_ event: JSONValue) -> Bool {
        Self.matches(root, event)
    }

    /// Whether the event's JSON text matches; text that is not a JSON object matches nothing.
    public func matches(text: String) -> Bool {
        guard let value = try? JSONValue.parse(Array(text.utf8)) else { return false }
        return matches(value)
    }

    static func matches(_ fields: [String: Node], _ value: JSONValue?) -> Bool {
        let object: [String: JSONValue]
        if case .object(let o)? = value { object = o } else { object = [:] }
        for (key, node) in fields {
            switch node {
            case .fields(let nested):
                if !matches(nested, object[key]) { return false }
            case .matchers(let list):
                let v = object[key]
                if !list.contains(where: { matches($0, v) }) { return false }
            }
        }
        return true
    }

    static func matches(_ m: Matcher, _ value: JSONValue?) -> Bool {
        if case .exists(let wanted) = m { return (value != nil) == wanted }
        guard let value else { return false }
        if case .array(let elements) = value {
            // A list matches when one of its elements does (anything-but: when none is excluded).
            switch m {
            case .anythingBut, .anythingButPrefix, .anythingButSuffix:
                return !elements.isEmpty && elements.allSatisfy { scalarMatches(m, $0) }
            default:
                return elements.contains { scalarMatches(m, $0) }
            }
        }
        return scalarMatches(m, value)
    }

    static func scalarMatches(_ m: Matcher, _ v: JSONValue) -> Bool {
        switch m {
        case .equals(let literal): return same(literal, v)
        case .prefix(let p): if case .string(let s) = v { return s.hasPrefix(p) } else { return false }
        case .suffix(let p): if case .string(let s) = v { return s.hasSuffix(p) } else { return false }
        case .equalsIgnoreCase(let p): if case .string(let s) = v { return s.lowercased() == p.lowercased() } else { return false }
        case .anythingBut(let excluded): return v.isScalar && !excluded.contains { same($0, v) }
        case .anythingButPrefix(let p): if case .string(let s) = v { return !s.hasPrefix(p) } else { return false }
        case .anythingButSuffix(let p): if case .string(let s) = v { return !s.hasSuffix(p) } else { return false }
        case .exists(let wanted): return wanted
        case .numeric(let bounds):
            guard let x = v.number else { return false }
            return bounds.allSatisfy { $0.holds(x) }
        }
    }

    /// Equal values, numbers compared by value (`5` equals `5.0`).
    static func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
        if let x = a.number, let y = b.number { return x == y }
        return a == b
    }
}

extension JSONValue {
    var isScalar: Bool {
        switch self {
        case .array, .object: return false
        default: return true
        }
    }

    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }
}
