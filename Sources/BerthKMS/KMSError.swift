import BerthSupport

/// An error of the KMS API, as AWS JSON 1.1 sends it: `{"__type": …, "message": …}` with a status.
/// `__type`s are those of botocore's `kms` model (plus `ValidationException` for constraint failures,
/// `AccessDeniedException`, `SerializationException` and `UnknownOperationException`, which KMS sends
/// without modelling them).
public struct KMSError: Error, Sendable, Equatable {
    public let type: String
    public let message: String
    public let status: Int

    public init(_ type: String, _ message: String, status: Int = 400) {
        self.type = type
        self.message = message
        self.status = status
    }

    public var json: [UInt8] { JSONValue.object(["__type": .string(type), "message": .string(message)]).encoded() }

    public static func notFound(_ message: String) -> KMSError { KMSError("NotFoundException", message) }
    /// A key that does not exist (or no longer does).
    public static func keyNotFound(_ arnOrID: String) -> KMSError { .notFound("Key '\(arnOrID)' does not exist") }
    public static func aliasNotFound(_ aliasARN: String) -> KMSError { .notFound("Alias \(aliasARN) is not found.") }
    public static func disabled(_ keyARN: String) -> KMSError { KMSError("DisabledException", "\(keyARN) is disabled.") }
    public static func invalidState(_ message: String) -> KMSError { KMSError("KMSInvalidStateException", message) }
    public static func pendingDeletion(_ keyARN: String) -> KMSError { .invalidState("\(keyARN) is pending deletion.") }
    public static let invalidCiphertext = KMSError("InvalidCiphertextException",
                                                   "The ciphertext is invalid, was not made by this service, or its encryption context does not match.")
    public static func incorrectKey(_ keyARN: String) -> KMSError {
        KMSError("IncorrectKeyException", "The key ID in the request does not identify the KMS key that encrypted the ciphertext: \(keyARN)")
    }
    public static func validation(_ message: String) -> KMSError { KMSError("ValidationException", message) }
    public static func validation(_ m: ValidationMessage) -> KMSError { .validation(m.description) }
    /// `1 validation error detected: Value … at '<member>' failed to satisfy constraint: …`, as AWS writes it.
    public static func constraint(_ value: String, _ member: String, _ constraint: String) -> KMSError {
        .validation(ValidationMessage(.text(value), at: member, .other(constraint)))
    }
    public static func serialization(_ message: String) -> KMSError { KMSError("SerializationException", message) }
    public static func unsupported(_ message: String) -> KMSError { KMSError("UnsupportedOperationException", message) }
    public static func malformedPolicy(_ message: String) -> KMSError { KMSError("MalformedPolicyDocumentException", message) }
    public static func invalidAlias(_ message: String) -> KMSError { KMSError("InvalidAliasNameException", message) }
    public static func invalidARN(_ message: String) -> KMSError { KMSError("InvalidArnException", message) }
    public static func invalidMarker() -> KMSError { KMSError("InvalidMarkerException", "The marker is not valid") }
    public static func limitExceeded(_ message: String) -> KMSError { KMSError("LimitExceededException", message) }
    public static func tag(_ message: String) -> KMSError { KMSError("TagException", message) }
    public static func invalidKeyUsage(_ message: String) -> KMSError { KMSError("InvalidKeyUsageException", message) }
    public static func accessDenied(_ message: String) -> KMSError { KMSError("AccessDeniedException", message) }
    public static let dryRun = KMSError("DryRunOperationException", "The request would have succeeded, but the DryRun option is set.",
                                        status: 412)
    public static let internalError = KMSError("KMSInternalException", "An internal error occurred.", status: 500)
}
