import BerthCore
import Foundation

/// An error as the AWS JSON 1.1 protocol sends it: `{"__type": ..., "message": ...}` with a status.
public struct ECRError: Error, Sendable, Equatable {
    public let type: String
    public let message: String
    public let status: Int
    /// Extra members some exceptions carry (e.g. InvalidLayerPartException's lastValidByteReceived).
    public var extra: [String: JSONValue] = [:]

    public init(_ type: String, _ message: String, status: Int = 400, extra: [String: JSONValue] = [:]) {
        self.type = type
        self.message = message
        self.status = status
        self.extra = extra
    }

    public static func invalidParameter(_ message: String) -> ECRError { ECRError("InvalidParameterException", message) }
    public static func validation(_ message: String) -> ECRError { ECRError("ValidationException", message) }
    public static func serialization(_ message: String) -> ECRError { ECRError("SerializationException", message) }
    public static let server = ECRError("ServerException", "An internal error occurred.", status: 500)

    public var json: [UInt8] {
        var object = extra
        object["__type"] = .string(type)
        object["message"] = .string(message)
        return JSONValue.object(object).encoded()
    }
}

/// Maps domain errors to ECR's vocabulary: the one table for this protocol.
enum ECRErrorMapping {
    static func map(_ error: BerthError, _ ctx: OperationContext) -> ECRError {
        let repo = ctx.repositoryName ?? ""
        let reg = ctx.registryID
        switch error {
        case .nameUnknown(let n):
            return ECRError("RepositoryNotFoundException",
                            "The repository with name '\(n)' does not exist in the registry with id '\(reg)'")
        case .repositoryAlreadyExists(let n):
            return ECRError("RepositoryAlreadyExistsException",
                            "The repository with name '\(n)' already exists in the registry with id '\(reg)'")
        case .repositoryNotEmpty(let n):
            return ECRError("RepositoryNotEmptyException",
                            "The repository with name '\(n)' in registry with id '\(reg)' cannot be deleted because it still contains images")
        case .nameInvalid(let n):
            return .invalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (value: '\(n)')")
        case .manifestInvalid(let m), .referenceInvalid(let m):
            return .invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '\(m)'")
        case .manifestTooLarge:
            return .invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Member must have length less than or equal to 4194304'")
        case .manifestBlobUnknown(let d):
            return ECRError("LayersNotFoundException",
                            "Layers with digests '[\(d)]' required for pushing image into repository with name '\(repo)' in the registry with id '\(reg)' do not exist")
        case .tagImmutable(let t):
            return ECRError("ImageTagAlreadyExistsException",
                            "The image tag '\(t)' already exists in the '\(repo)' repository and cannot be overwritten because the tag is immutable.")
        case .digestMismatch(let expected, let computed):
            return ECRError("ImageDigestDoesNotMatchException",
                            "Manifest digest '\(computed)' does not match the digest specified '\(expected)'")
        case .digestInvalid(let d):
            return .invalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Invalid digest' (value: '\(d)')")
        case .tagInvalid(let t):
            return .invalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'Invalid tag' (value: '\(t)')")
        case .blobUploadUnknown(let u):
            return ECRError("UploadNotFoundException",
                            "The upload with id '\(u)' does not exist in the repository with name '\(repo)' in the registry with id '\(reg)'")
        case .blobUnknown(let d):
            return ECRError("LayersNotFoundException",
                            "Layers with digests '[\(d)]' do not exist in the repository with name '\(repo)' in the registry with id '\(reg)'")
        case .manifestUnknown(let r):
            return ECRError("ImageNotFoundException",
                            "The image with imageId '\(r)' does not exist within the repository with name '\(repo)' in the registry with id '\(reg)'")
        case .denied(let m):
            return ECRError("AccessDeniedException", m)
        case .unauthorized(let m):
            return ECRError("UnrecognizedClientException", m)
        case .tooManyRequests(let m):
            return ECRError("ThrottlingException", m)
        case .paginationNumberInvalid(let m), .sizeInvalid(let m), .unsupported(let m), .blobUploadInvalid(let m):
            return .invalidParameter(m)
        case .rangeNotSatisfiable(_, let d):
            return ECRError("InvalidLayerPartException", d)
        case .internalError:
            return .server
        }
    }
}
