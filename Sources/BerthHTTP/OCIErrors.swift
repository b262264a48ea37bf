import BerthCore
import BerthECR
import Foundation
import HTTPTypes
import NIOCore

/// The one table that maps domain errors to the OCI distribution-spec error vocabulary.
public struct OCIWireError: Sendable, Equatable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let detail: String?

    /// `registryID` (the account) and `repository` (the name in the request) let a message read as
    /// Amazon ECR's does for docker, which prints `<code>: <message>`.
    public init(_ error: BerthError, registryID: String? = nil, repository: String? = nil) {
        let (status, code): (HTTPResponse.Status, String)
        var detail: String? = nil
        switch error {
        case .digestInvalid(let d): (status, code) = (.badRequest, "DIGEST_INVALID"); detail = d
        case .digestMismatch: (status, code) = (.badRequest, "DIGEST_INVALID")
        case .nameInvalid(let n): (status, code) = (.badRequest, "NAME_INVALID"); detail = n
        case .nameUnknown(let n): (status, code) = (.notFound, "NAME_UNKNOWN"); detail = n
        case .tagInvalid(let t): (status, code) = (.badRequest, "TAG_INVALID"); detail = t
        case .referenceInvalid(let r): (status, code) = (.badRequest, "MANIFEST_INVALID"); detail = r
        case .blobUnknown(let d): (status, code) = (.notFound, "BLOB_UNKNOWN"); detail = d
        case .blobUploadUnknown(let u): (status, code) = (.notFound, "BLOB_UPLOAD_UNKNOWN"); detail = u
        case .blobUploadInvalid: (status, code) = (.badRequest, "BLOB_UPLOAD_INVALID")
        case .rangeNotSatisfiable: (status, code) = (.rangeNotSatisfiable, "BLOB_UPLOAD_INVALID")
        case .sizeInvalid: (status, code) = (.badRequest, "SIZE_INVALID")
        case .manifestInvalid: (status, code) = (.badRequest, "MANIFEST_INVALID")
        case .manifestUnknown(let r): (status, code) = (.notFound, "MANIFEST_UNKNOWN"); detail = r
        case .manifestBlobUnknown(let d): (status, code) = (.badRequest, "MANIFEST_BLOB_UNKNOWN"); detail = d
        case .manifestTooLarge: (status, code) = (.contentTooLarge, "MANIFEST_INVALID")
        case .tagImmutable(let t): (status, code) = (.badRequest, "TAG_INVALID"); detail = t
        // DELETE of a manifest an index in the repository lists (ECR's BatchDeleteImage refuses it with
        // ImageReferencedByManifestList). The distribution spec has no code for it: 409 Conflict says the
        // repository's state forbids it until the index is deleted, and DENIED that the registry refuses.
        case .manifestReferenced(let d, _): (status, code) = (.conflict, "DENIED"); detail = d
        case .repositoryAlreadyExists(let n): (status, code) = (.badRequest, "NAME_INVALID"); detail = n
        case .repositoryNotEmpty(let n): (status, code) = (.badRequest, "UNSUPPORTED"); detail = n
        case .unsupported: (status, code) = (.methodNotAllowed, "UNSUPPORTED")
        case .paginationNumberInvalid: (status, code) = (.badRequest, "PAGINATION_NUMBER_INVALID")
        case .denied: (status, code) = (.forbidden, "DENIED")
        case .unauthorized: (status, code) = (.unauthorized, "UNAUTHORIZED")
        case .tooManyRequests: (status, code) = (.tooManyRequests, "TOOMANYREQUESTS")
        case .internalError: (status, code) = (.internalServerError, "UNKNOWN")
        }
        self.status = status
        self.code = code
        self.message = Self.message(error, registryID: registryID, repository: repository)
        self.detail = detail
    }

    /// The message of an error: ECR's text where docker users see one from Amazon ECR (the same texts
    /// as the ECR API's exceptions, from ECRError's table), otherwise the error's description.
    static func message(_ error: BerthError, registryID: String?, repository: String?) -> String {
        switch error {
        case .tagImmutable(let t):
            // ECR: `tag invalid: The image tag 'v1' already exists in the 'r' repository and cannot be
            // overwritten because the tag is immutable.`
            guard let repository else { return error.description }
            return ECRError.imageTagAlreadyExists(t, repository: repository).message
        case .nameUnknown(let n):
            // ECR: `name unknown: The repository with name 'r' does not exist in the registry with id '123456789012'`.
            guard let registryID else { return error.description }
            return ECRError.repositoryNotFound(n, registry: registryID).message
        case .denied(let m):
            // ECR: `denied: User: arn:… is not authorized to perform: ecr:InitiateLayerUpload on resource: …`
            // (the IAM text alone: DENIED already says that access was denied).
            return m
        default:
            return error.description
        }
    }

    struct Body: Encodable {
        struct Item: Encodable {
            let code: String
            let message: String
            let detail: String?
        }
        let errors: [Item]
    }

    public var json: [UInt8] {
        let body = Body(errors: [.init(code: code, message: message, detail: detail)])
        return (try? OCIJSON.encoder.encode(body)).map { Array($0) } ?? Array(#"{"errors":[]}"#.utf8)
    }
}

enum OCIJSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()
}

func makeBuffer(_ bytes: [UInt8]) -> ByteBuffer {
    var b = ByteBufferAllocator().buffer(capacity: bytes.count)
    b.writeBytes(bytes)
    return b
}
