import BerthCore
import BerthECR
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The one table that maps domain errors to the OCI distribution-spec error vocabulary.
public struct OCIWireError: Sendable, Equatable {
    public let status: HTTPResponse.Status
    public let code: String
    public let message: String
    public let detail: String?

    /// Any error a `/v2/` request can end with, as the domain error it is answered as: the one place the
    /// OCI door turns errors into its vocabulary. Credential failures: a missing or bad registry token is
    /// 401 `UNAUTHORIZED`, a bad presigned URL 403 `DENIED`; Hummingbird's body limit is `SIZE_INVALID`;
    /// anything else (storage, corrupt metadata) is 500 `UNKNOWN`.
    static func domainError(_ error: any Error) -> BerthError {
        switch error {
        case let e as BerthError:
            return e
        case let e as AuthenticationFailure:
            switch e {
            case .registryTokenRequired:
                return .unauthorized("a valid registry token is required: use the output of aws ecr get-login-password as the password of user AWS")
            case .signature(let s): return .denied(s.message)
            case .session(let s): return .denied(s.message)
            }
        case let e as HTTPError where e.status == .contentTooLarge:
            return .sizeInvalid("request body too large")
        default:
            return .internalError("\(error)")
        }
    }

    init(status: HTTPResponse.Status, code: String, message: String, detail: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
    }

    /// A path no door serves (or a gallery logo that does not exist): 404 in the OCI error shape.
    static func notFound(_ message: String) -> OCIWireError {
        OCIWireError(status: .notFound, code: "NOT_FOUND", message: message)
    }

    /// The answer: the JSON body, or for a `HEAD` only its length.
    func response(head: Bool, headers extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = "application/json"
        let body = json
        if head {
            headers[.contentLength] = String(body.count)
            return Response(status: status, headers: headers)
        }
        return Response(status: status, headers: headers, body: .init(byteBuffer: makeBuffer(body)))
    }

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
        // ECR: "Requests to pull the archived image will fail with a 404 error" (the archive storage class).
        case .imageArchived(let r): (status, code) = (.notFound, "MANIFEST_UNKNOWN"); detail = r
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
        case .kms: (status, code) = (.forbidden, "DENIED")
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
