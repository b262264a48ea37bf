/// Typed domain errors. Each wire protocol maps them to its own error vocabulary in exactly one place.
public enum BerthError: Error, Sendable, Equatable {
    case digestInvalid(String)
    case digestMismatch(expected: String, computed: String)
    case nameInvalid(String)
    case nameUnknown(String)
    case tagInvalid(String)
    case referenceInvalid(String)
    case blobUnknown(String)
    case blobUploadUnknown(String)
    /// The upload is in a state that does not allow this operation.
    case blobUploadInvalid(String)
    /// A chunk does not start where the upload ends (HTTP 416).
    case rangeNotSatisfiable(offset: Int64, detail: String)
    case sizeInvalid(String)
    case manifestInvalid(String)
    case manifestUnknown(String)
    /// The image is in the ARCHIVE storage class (or still being restored from it): it cannot be pulled.
    case imageArchived(String)
    case manifestBlobUnknown(String)
    case manifestTooLarge(limit: Int)
    case tagImmutable(String)
    /// A manifest cannot be deleted while manifests of its repository (indexes) reference it.
    case manifestReferenced(digest: String, by: [String])
    case repositoryAlreadyExists(String)
    case repositoryNotEmpty(String)
    case unsupported(String)
    case paginationNumberInvalid(String)
    case denied(String)
    case unauthorized(String)
    case tooManyRequests(String)
    /// A KMS key refused an operation on the repository's data (disabled, pending deletion, deleted, not
    /// found): ECR's `KmsException`, with the KMS error type (e.g. `DisabledException`) in `kmsError`.
    case kms(kmsError: String, message: String)
    /// Storage or another dependency failed; details are logged, not sent to clients.
    case internalError(String)
}

extension BerthError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .digestInvalid(let s): return "invalid digest: \(s)"
        case .digestMismatch(let e, let c): return "digest mismatch: expected \(e), computed \(c)"
        case .nameInvalid(let s): return "invalid repository name: \(s)"
        case .nameUnknown(let s): return "repository name not known to registry: \(s)"
        case .tagInvalid(let s): return "invalid tag: \(s)"
        case .referenceInvalid(let s): return "invalid reference: \(s)"
        case .blobUnknown(let s): return "blob unknown to registry: \(s)"
        case .blobUploadUnknown(let s): return "blob upload unknown to registry: \(s)"
        case .blobUploadInvalid(let s): return "blob upload invalid: \(s)"
        case .rangeNotSatisfiable(let o, let d): return "requested range not satisfiable (upload offset \(o)): \(d)"
        case .sizeInvalid(let s): return "provided length did not match content length: \(s)"
        case .manifestInvalid(let s): return "manifest invalid: \(s)"
        case .manifestUnknown(let s): return "manifest unknown: \(s)"
        case .imageArchived(let s):
            return "the image \(s) is archived and cannot be pulled; restore it to the STANDARD storage class (UpdateImageStorageClass) or push it again"
        case .manifestBlobUnknown(let s): return "manifest references a blob or manifest unknown to the repository: \(s)"
        case .manifestTooLarge(let l): return "manifest exceeds the \(l) byte limit"
        case .tagImmutable(let s): return "tag is immutable: \(s)"
        case .manifestReferenced(let d, let by):
            return "manifest \(d) is referenced by \(by.count == 1 ? "an image index" : "image indexes") in this repository (\(by.joined(separator: ", "))); delete \(by.count == 1 ? "it" : "them") first"
        case .repositoryAlreadyExists(let s): return "repository already exists: \(s)"
        case .repositoryNotEmpty(let s): return "repository is not empty: \(s)"
        case .unsupported(let s): return "the operation is unsupported: \(s)"
        case .paginationNumberInvalid(let s): return "invalid number of results requested: \(s)"
        case .denied(let s): return "requested access to the resource is denied: \(s)"
        case .unauthorized(let s): return "authentication required: \(s)"
        case .tooManyRequests(let s): return "too many requests: \(s)"
        case .kms(let t, let m): return "KMS error (\(t)): \(m)"
        case .internalError(let s): return "internal error: \(s)"
        }
    }
}
