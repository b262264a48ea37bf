/// Why a policy document was refused, with the message IAM gives for it.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The IAM error code the refusal maps to on the wire.
    public enum Code: String, Sendable, Equatable {
        case malformedPolicyDocument = "MalformedPolicyDocument"
        case limitExceeded = "LimitExceeded"
    }

    /// What exactly is wrong; stable for tests and for mapping to other services' wording.
    public enum Reason: Sendable, Equatable {
        case invalidJSON
        case tooDeeplyNested(limit: Int)
        case duplicateKey(String)
        case documentTooLong(limit: Int)
        case policySizeExceeded(limit: Int, size: Int)
        case unsupportedCharacter
        case notAnObject
        case unknownField(String)
        case invalidVersion
        case versionTooOld
        case invalidId
        case missingStatement
        case invalidStatement
        case unknownStatementField(String)
        case invalidSid
        case nonAlphanumericSid(String)
        case duplicateSid(String)
        case missingEffect
        case invalidEffect(String)
        case effectCase(String)
        case bothActionAndNotAction
        case bothResourceAndNotResource
        case bothPrincipalAndNotPrincipal
        case missingAction
        case invalidActionValue
        case actionWithoutVendor(String)
        case actionWithTooManyColons(String)
        case invalidVendor(String)
        case missingResource
        case invalidResourceValue
        case resourceNotARN(String)
        case principalInIdentityPolicy
        case missingPrincipal
        case invalidPrincipal(String)
        case notPrincipalWithAllow
        case invalidCondition
        case unknownConditionOperator(String)
        case invalidConditionValue(operator: String, value: String)
    }

    /// The wire error code.
    public let code: Code
    /// The precise fault.
    public let reason: Reason
    /// The message, in IAM's words where IAM has words for it.
    public let message: String

    /// `MalformedPolicyDocument: <message>`.
    public var description: String { "\(code.rawValue): \(message)" }

    init(_ reason: Reason) {
        self.reason = reason
        switch reason {
        case .policySizeExceeded, .documentTooLong: code = .limitExceeded
        default: code = .malformedPolicyDocument
        }
        message = Self.message(for: reason)
    }

    private static func message(for reason: Reason) -> String {
        switch reason {
        case .invalidJSON, .notAnObject, .unknownField, .invalidVersion, .invalidId, .missingStatement,
             .invalidStatement, .unknownStatementField, .invalidSid, .missingEffect, .invalidEffect,
             .bothActionAndNotAction, .bothResourceAndNotResource, .bothPrincipalAndNotPrincipal,
             .invalidActionValue, .invalidResourceValue, .invalidCondition, .duplicateKey, .unknownConditionOperator:
            "Syntax errors in policy."
        case let .tooDeeplyNested(limit):
            "Syntax errors in policy. The document nests deeper than \(limit) levels."
        case let .documentTooLong(limit):
            "Cannot exceed quota for PolicySize: \(limit)"
        case let .policySizeExceeded(limit, _):
            "Cannot exceed quota for PolicySize: \(limit)"
        case .unsupportedCharacter:
            "Policy documents can contain only tab, line feed, carriage return and characters in the range U+0020 to U+00FF."
        case .versionTooOld:
            "Policy document must be version 2012-10-17 or greater."
        case let .nonAlphanumericSid(sid):
            "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*: \(sid)"
        case .duplicateSid:
            "Statement IDs (SID) in a single policy must be unique."
        case .effectCase, .invalidConditionValue:
            "The policy failed legacy parsing"
        case .missingAction:
            "Policy statement must contain actions."
        case .actionWithoutVendor:
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
        case .actionWithTooManyColons:
            "Actions/Condition can contain only one colon."
        case let .invalidVendor(vendor):
            "Vendor \(vendor) is not valid"
        case .missingResource:
            "Policy statement must contain resources."
        case let .resourceNotARN(resource):
            "Resource \(resource) must be in ARN format or \"*\"."
        case .principalInIdentityPolicy:
            "Policy document should not specify a principal."
        case .missingPrincipal:
            "Missing required field Principal"
        case let .invalidPrincipal(principal):
            "Invalid principal in policy: \(principal)"
        case .notPrincipalWithAllow:
            "NotPrincipal is supported only with \"Effect\": \"Deny\"."
        }
    }
}
