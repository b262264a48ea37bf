import BerthSupport

/// An error of the Secrets Manager API as AWS JSON 1.1 sends it: `{"__type": …, "Message": …}` with a
/// status. `__type`s are those of botocore's `secretsmanager` model (plus `ValidationException`,
/// `AccessDeniedException`, `SerializationException` and `UnknownOperationException`, which the service
/// sends without modelling them).
public struct SecretsError: Error, Sendable, Equatable {
    public let type: String
    public let message: String
    public let status: Int

    public init(_ type: String, _ message: String, status: Int = 400) {
        self.type = type
        self.message = message
        self.status = status
    }

    public var json: [UInt8] { JSONValue.object(["__type": .string(type), "Message": .string(message)]).encoded() }

    static let notFound = SecretsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret.")
    static func valueNotFound(_ what: String) -> SecretsError {
        SecretsError("ResourceNotFoundException", "Secrets Manager can't find the specified secret value for \(what)")
    }
    static func exists(_ name: String) -> SecretsError {
        SecretsError("ResourceExistsException", "The operation failed because the secret \(name) already exists.")
    }
    static func invalidParameter(_ message: String) -> SecretsError { SecretsError("InvalidParameterException", message) }
    static func invalidRequest(_ message: String) -> SecretsError { SecretsError("InvalidRequestException", message) }
    static let markedForDeletion = invalidRequest(
        "You can't perform this operation on the secret because it was marked for deletion.")
    static func validation(_ m: ValidationMessage) -> SecretsError { SecretsError("ValidationException", m.description) }
    static func serialization(_ message: String) -> SecretsError { SecretsError("SerializationException", message) }
    static let invalidNextToken = SecretsError("InvalidNextTokenException", "The NextToken value is invalid.")
    static func accessDenied(_ message: String) -> SecretsError { SecretsError("AccessDeniedException", message) }
    static let internalError = SecretsError("InternalServiceError", "An error occurred on the server side.", status: 500)
    static let decryptionFailure = SecretsError(
        "DecryptionFailure", "Secrets Manager can't decrypt the protected secret text using the provided KMS key.")
}
