/// The text AWS services give a request member that fails a constraint of its service model:
/// `1 validation error detected: Value 'v' at 'member' failed to satisfy constraint: Member must …`.
/// Every door (ECR's `InvalidParameterException`/`ValidationException`, IAM's and STS's
/// `ValidationError`, KMS's `ValidationException`) writes it from here; each wraps it in its own error.
public struct ValidationMessage: Sendable, Equatable, CustomStringConvertible {
    /// How the offending value is shown.
    public enum Value: Sendable, Equatable {
        /// `Value null at …`: a required member is missing.
        case null
        /// `Value at …`: the value is left out (too long, binary or secret).
        case omitted
        /// `Value '<text>' at …`.
        case text(String)
    }

    /// The constraint, worded as the service models' validators word it.
    public enum Constraint: Sendable, Equatable {
        case notNull
        case lengthBetween(Int, Int)
        case lengthAtMost(Int)
        case lengthAtLeast(Int)
        case valueBetween(Int, Int)
        case valueAtLeast(Int)
        case valueAtMost(Int)
        case oneOf([String])
        case pattern(String)
        /// Any other wording, after `failed to satisfy constraint: `.
        case other(String)

        public var text: String {
            switch self {
            case .notNull: "Member must not be null"
            case let .lengthBetween(lo, hi): "Member must have length between \(lo) and \(hi)"
            case let .lengthAtMost(n): "Member must have length less than or equal to \(n)"
            case let .lengthAtLeast(n): "Member must have length greater than or equal to \(n)"
            case let .valueBetween(lo, hi): "Member must have value between \(lo) and \(hi)"
            case let .valueAtLeast(n): "Member must have value greater than or equal to \(n)"
            case let .valueAtMost(n): "Member must have value less than or equal to \(n)"
            case let .oneOf(values): "Member must satisfy enum value set: [\(values.joined(separator: ", "))]"
            case let .pattern(p): "Member must satisfy regular expression pattern: \(p)"
            case let .other(text): text
            }
        }
    }

    public let value: Value
    public let member: String
    public let constraint: Constraint

    public init(_ value: Value, at member: String, _ constraint: Constraint) {
        self.value = value
        self.member = member
        self.constraint = constraint
    }

    /// A required member is missing.
    public static func missing(_ member: String) -> ValidationMessage { ValidationMessage(.null, at: member, .notNull) }

    public var description: String {
        let shown: String
        switch value {
        case .null: shown = "Value null"
        case .omitted: shown = "Value"
        case .text(let t): shown = "Value '\(t)'"
        }
        return "1 validation error detected: \(shown) at '\(member)' failed to satisfy constraint: \(constraint.text)"
    }
}
