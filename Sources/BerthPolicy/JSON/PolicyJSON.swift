import BerthSupport

/// A JSON value as a policy document spells it; object members keep their document order. Built by the
/// shared `JSONParser`, with duplicate members refused.
enum PolicyJSON: Sendable, Equatable {
    case object([(key: String, value: PolicyJSON)])
    case array([PolicyJSON])
    case string(String)
    /// The number exactly as written, so `"10"` and `10` compare the same way in conditions.
    case number(String)
    case bool(Bool)
    case null

    static func == (a: PolicyJSON, b: PolicyJSON) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)):
            x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.bool(x), .bool(y)): x == y
        case (.null, .null): true
        default: false
        }
    }

    /// The scalar as the text a condition compares: strings as-is, numbers as written, booleans as `true`/`false`.
    var scalarText: String? {
        switch self {
        case let .string(s): s
        case let .number(n): n
        case let .bool(b): b ? "true" : "false"
        default: nil
        }
    }

    /// Parses `text`, refusing duplicate members and more than `maximumDepth` nested arrays and objects.
    static func parse(_ text: String, maximumDepth: Int) throws(JSONParseError) -> PolicyJSON {
        try JSONParser.parse(Array(text.utf8), maximumDepth: maximumDepth, rejectsDuplicateKeys: true, builder: Builder())
    }

    struct Builder: JSONTreeBuilder {
        func null() -> PolicyJSON { .null }
        func bool(_ value: Bool) -> PolicyJSON { .bool(value) }
        func number(_ text: String, isInteger: Bool) -> PolicyJSON { .number(text) }
        func string(_ value: String) -> PolicyJSON { .string(value) }
        func array(_ elements: [PolicyJSON]) -> PolicyJSON { .array(elements) }
        func object(_ members: [(key: String, value: PolicyJSON)]) -> PolicyJSON { .object(members) }
    }
}
