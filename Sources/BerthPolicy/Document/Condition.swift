/// A condition operator, without its `IfExists` suffix or set qualifier.
public enum ConditionOperator: String, Sendable, Hashable, CaseIterable {
    case stringEquals = "StringEquals"
    case stringNotEquals = "StringNotEquals"
    case stringEqualsIgnoreCase = "StringEqualsIgnoreCase"
    case stringNotEqualsIgnoreCase = "StringNotEqualsIgnoreCase"
    case stringLike = "StringLike"
    case stringNotLike = "StringNotLike"
    case numericEquals = "NumericEquals"
    case numericNotEquals = "NumericNotEquals"
    case numericLessThan = "NumericLessThan"
    case numericLessThanEquals = "NumericLessThanEquals"
    case numericGreaterThan = "NumericGreaterThan"
    case numericGreaterThanEquals = "NumericGreaterThanEquals"
    case dateEquals = "DateEquals"
    case dateNotEquals = "DateNotEquals"
    case dateLessThan = "DateLessThan"
    case dateLessThanEquals = "DateLessThanEquals"
    case dateGreaterThan = "DateGreaterThan"
    case dateGreaterThanEquals = "DateGreaterThanEquals"
    case bool = "Bool"
    case binaryEquals = "BinaryEquals"
    case ipAddress = "IpAddress"
    case notIpAddress = "NotIpAddress"
    case arnEquals = "ArnEquals"
    case arnLike = "ArnLike"
    case arnNotEquals = "ArnNotEquals"
    case arnNotLike = "ArnNotLike"
    case null = "Null"

    /// Negated operators: several policy values combine as NOR, and a missing key makes them true.
    public var isNegated: Bool {
        switch self {
        case .stringNotEquals, .stringNotEqualsIgnoreCase, .stringNotLike, .numericNotEquals, .dateNotEquals,
             .notIpAddress, .arnNotEquals, .arnNotLike:
            true
        default:
            false
        }
    }

    /// Whether `${…}` variables are substituted in this operator's values (string and ARN operators only).
    public var acceptsPolicyVariables: Bool {
        switch self {
        case .stringEquals, .stringNotEquals, .stringEqualsIgnoreCase, .stringNotEqualsIgnoreCase, .stringLike,
             .stringNotLike, .arnEquals, .arnLike, .arnNotEquals, .arnNotLike:
            true
        default:
            false
        }
    }
}

/// `ForAnyValue:` or `ForAllValues:`, for multivalued context keys.
public enum SetQualifier: String, Sendable, Hashable {
    case forAnyValue = "ForAnyValue"
    case forAllValues = "ForAllValues"
}

/// One key of one operator in a `Condition` block: `{"ForAnyValue:StringLikeIfExists": {"aws:TagKeys": ["a*"]}}`.
public struct Condition: Sendable, Hashable {
    /// The comparison, e.g. `StringLike`.
    public var `operator`: ConditionOperator
    /// `ForAnyValue:` / `ForAllValues:`, for multivalued keys.
    public var qualifier: SetQualifier?
    /// `…IfExists`: a missing key makes the condition true.
    public var ifExists: Bool
    /// The context key as written; keys compare case-insensitively.
    public var key: String
    /// The policy values; several values are ORed (NORed for negated operators).
    public var values: [String]

    public init(_ op: ConditionOperator, qualifier: SetQualifier? = nil, ifExists: Bool = false, key: String, values: [String]) {
        self.operator = op
        self.qualifier = qualifier
        self.ifExists = ifExists
        self.key = key
        self.values = values
    }

    /// The operator as written in a policy, e.g. `ForAllValues:StringNotLikeIfExists`.
    public var operatorName: String {
        (qualifier.map { $0.rawValue + ":" } ?? "") + self.operator.rawValue + (ifExists ? "IfExists" : "")
    }

    /// Parses an operator name into operator, qualifier and `IfExists`; `nil` when it is not one IAM knows.
    public static func parseOperatorName(_ name: String) -> (ConditionOperator, SetQualifier?, Bool)? {
        var rest = Substring(name)
        var qualifier: SetQualifier?
        for q in [SetQualifier.forAnyValue, .forAllValues] where rest.hasPrefix(q.rawValue + ":") {
            qualifier = q
            rest = rest.dropFirst(q.rawValue.count + 1)
        }
        var ifExists = false
        if ConditionOperator(rawValue: String(rest)) == nil, rest.hasSuffix("IfExists") {
            ifExists = true
            rest = rest.dropLast("IfExists".count)
        }
        guard let op = ConditionOperator(rawValue: String(rest)) else { return nil }
        // "You can add IfExists to the end of any condition operator name except the Null condition."
        if op == .null && (ifExists || qualifier != nil) { return nil }
        return (op, qualifier, ifExists)
    }
}
