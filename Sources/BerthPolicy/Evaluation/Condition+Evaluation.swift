import Foundation
import BerthSupport

extension Condition {
    /// Whether the condition holds for `request`; `nil` when one of its values names a policy
    /// variable the request cannot supply (the statement is then invalid).
    func isSatisfied(by request: AccessRequest, variables: Bool) -> Bool? {
        let context = request.value(forKey: key)

        if self.operator == .null {
            // true: "the key doesn't exist — it is null"; false: "the key exists and its value is not null".
            let present = context.map { !$0.isEmptySet } ?? false
            return values.contains { $0.lowercased() == "true" ? !present : present }
        }

        guard let context else {
            if ifExists { return true }
            switch qualifier {
            case .forAllValues?: return true  // "It also returns true if there are no context keys in the request."
            case .forAnyValue?: return false  // "if the key does not exist, the condition returns false."
            case nil: return self.operator.isNegated  // Negated operators are true for a missing key.
            }
        }

        var policyValues: [[PatternPiece]] = []
        for value in values {
            if variables && self.operator.acceptsPolicyVariables && value.contains("${") {
                guard let pieces = PolicyVariables.substitute(value, resolve: request.variable) else { return nil }
                policyValues.append(pieces)
            } else {
                policyValues.append([.pattern(value)])
            }
        }

        let positive = self.operator.positiveForm
        // Several policy values are ORed; negated operators NOR them.
        func holds(_ contextValue: String) -> Bool {
            let any = policyValues.contains { Self.compare(positive, context: contextValue, policy: $0) }
            return self.operator.isNegated ? !any : any
        }

        let requestValues = context.values
        switch qualifier {
        case .forAllValues?:
            return context.isEmptySet || requestValues.allSatisfy(holds)
        case .forAnyValue?:
            return !context.isEmptySet && requestValues.contains(where: holds)
        case nil:
            if case let .single(v) = context { return holds(v) }
            // A multivalued key without a set operator (AWS says it requires one): any value matching
            // satisfies a positive operator; a negated operator needs none to match.
            let any = requestValues.contains { v in
                policyValues.contains { Self.compare(positive, context: v, policy: $0) }
            }
            return self.operator.isNegated ? !any : any
        }
    }

    /// Compares one request value with one policy value under a non-negated operator.
    static func compare(_ op: ConditionOperator, context: String, policy: [PatternPiece]) -> Bool {
        switch op {
        case .stringEquals:
            return context == PolicyVariables.joined(policy)
        case .stringEqualsIgnoreCase:
            return context.lowercased() == PolicyVariables.joined(policy).lowercased()
        case .stringLike:
            return WildcardPattern.glob(policy).matches(context)
        case .arnEquals, .arnLike:
            return ARNMatcher.matches(pattern: policy, value: context)
        case .numericEquals, .numericLessThan, .numericLessThanEquals, .numericGreaterThan, .numericGreaterThanEquals:
            guard let c = PolicyNumber.parse(context), let p = PolicyNumber.parse(PolicyVariables.joined(policy)) else {
                return false
            }
            return relation(op, c, p)
        case .dateEquals, .dateLessThan, .dateLessThanEquals, .dateGreaterThan, .dateGreaterThanEquals:
            guard let c = PolicyDate.parse(context), let p = PolicyDate.parse(PolicyVariables.joined(policy)) else {
                return false
            }
            return relation(op, c, p)
        case .bool:
            return context.lowercased() == PolicyVariables.joined(policy).lowercased()
        case .binaryEquals:
            guard let c = Data(base64Encoded: context), let p = Data(base64Encoded: PolicyVariables.joined(policy)) else {
                return false
            }
            return c == p
        case .ipAddress:
            guard let range = IPAddressRange(PolicyVariables.joined(policy)),
                  let address = IPAddressRange(context) else { return false }
            return address.prefixLength == address.bytes.count * 8 && range.contains(address.bytes)
        default:
            return false
        }
    }

    private static func relation<T: Comparable>(_ op: ConditionOperator, _ c: T, _ p: T) -> Bool {
        switch op {
        case .numericEquals, .dateEquals: c == p
        case .numericLessThan, .dateLessThan: c < p
        case .numericLessThanEquals, .dateLessThanEquals: c <= p
        case .numericGreaterThan, .dateGreaterThan: c > p
        case .numericGreaterThanEquals, .dateGreaterThanEquals: c >= p
        default: false
        }
    }
}

extension ConditionOperator {
    /// The operator a negated operator negates; other operators are their own positive form.
    var positiveForm: ConditionOperator {
        switch self {
        case .stringNotEquals: .stringEquals
        case .stringNotEqualsIgnoreCase: .stringEqualsIgnoreCase
        case .stringNotLike: .stringLike
        case .numericNotEquals: .numericEquals
        case .dateNotEquals: .dateEquals
        case .notIpAddress: .ipAddress
        case .arnNotEquals: .arnEquals
        case .arnNotLike: .arnLike
        default: self
        }
    }
}
