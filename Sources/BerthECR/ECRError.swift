import BerthCore
import BerthSupport
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
    public static func invalidParameter(_ m: ValidationMessage) -> ECRError { .invalidParameter(m.description) }
    public static func validation(_ m: ValidationMessage) -> ECRError { .validation(m.description) }
    public static func serialization(_ message: String) -> ECRError { ECRError("SerializationException", message) }
    public static let server = ECRError("ServerException", "An internal error occurred.", status: 500)

    // MARK: the exceptions of Amazon ECR (and ECR Public), with AWS's message texts
    //
    // The one place each message is built from its parameters. "AWS:" marks a text quoted from real
    // AWS output (CLI/SDK errors quoted in public issues, docs and READMEs); "Berth:" marks a text no
    // real quote was found for, kept in the same style.

    /// AWS: `The repository with name 'oresvc' does not exist in the registry with id '904734893309'`.
    public static func repositoryNotFound(_ name: String, registry: String) -> ECRError {
        ECRError("RepositoryNotFoundException", "The repository with name '\(name)' does not exist in the registry with id '\(registry)'")
    }

    /// AWS: `The repository with name 'dummy-service' already exists in the registry with id '…'`.
    public static func repositoryAlreadyExists(_ name: String, registry: String) -> ECRError {
        ECRError("RepositoryAlreadyExistsException", "The repository with name '\(name)' already exists in the registry with id '\(registry)'")
    }

    /// AWS: `The repository with name 'hellojs' in registry with id '171104014478' cannot be deleted because it still contains images`.
    public static func repositoryNotEmpty(_ name: String, registry: String) -> ECRError {
        ECRError("RepositoryNotEmptyException",
                 "The repository with name '\(name)' in registry with id '\(registry)' cannot be deleted because it still contains images")
    }

    /// AWS: `Repository policy does not exist for the repository with name 'daily/all' in the registry with id '…'`.
    public static func repositoryPolicyNotFound(_ name: String, registry: String) -> ECRError {
        ECRError("RepositoryPolicyNotFoundException",
                 "Repository policy does not exist for the repository with name '\(name)' in the registry with id '\(registry)'")
    }

    /// AWS: `Lifecycle policy does not exist for the repository with name 'x' in the registry with id '…'`.
    public static func lifecyclePolicyNotFound(_ name: String, registry: String) -> ECRError {
        ECRError("LifecyclePolicyNotFoundException",
                 "Lifecycle policy does not exist for the repository with name '\(name)' in the registry with id '\(registry)'")
    }

    /// Berth (the form of the lifecycle policy's message).
    public static func lifecyclePolicyPreviewNotFound(_ name: String, registry: String) -> ECRError {
        ECRError("LifecyclePolicyPreviewNotFoundException",
                 "There is no lifecycle policy preview for the repository with name '\(name)' in the registry with id '\(registry)'")
    }

    /// Berth (the form of the repository policy's message; AWS emulators use the same text).
    public static func registryPolicyNotFound(registry: String) -> ECRError {
        ECRError("RegistryPolicyNotFoundException", "Registry policy does not exist in the registry with id '\(registry)'")
    }

    /// Berth (StartImageScan's exception for an archived image; the text is Berth's).
    public static func imageArchived(_ message: String) -> ECRError { ECRError("ImageArchivedException", message) }

    /// Berth: UpdateImageStorageClass of an image Berth cannot move (ECR documents no text).
    public static func storageClassUpdateNotSupported(_ message: String) -> ECRError {
        ECRError("ImageStorageClassUpdateNotSupportedException", message)
    }

    /// Berth (texts in the style of ECR's other registry-level exceptions).
    public static func exclusionAlreadyExists(_ arn: String, registry: String) -> ECRError {
        ECRError("ExclusionAlreadyExistsException", "The principal '\(arn)' is already excluded from pull time updates in the registry with id '\(registry)'")
    }

    public static func exclusionNotFound(_ arn: String, registry: String) -> ECRError {
        ECRError("ExclusionNotFoundException", "The principal '\(arn)' is not excluded from pull time updates in the registry with id '\(registry)'")
    }

    /// An image id as AWS prints it in messages: `{imageDigest:'sha256:…', imageTag:'null'}`.
    static func imageIDText(digest: String?, tag: String?) -> String {
        "{imageDigest:'\(digest ?? "null")', imageTag:'\(tag ?? "null")'}"
    }

    /// AWS: `The image with imageId {imageDigest:'null', imageTag:'28f3d25'} does not exist within the repository
    /// with name 'otchealth-mcp-gateway' in the registry with id '900915535335'`.
    public static func imageNotFound(digest: String?, tag: String?, repository: String, registry: String) -> ECRError {
        ECRError("ImageNotFoundException",
                 "The image with imageId \(imageIDText(digest: digest, tag: tag)) does not exist within the repository with name '\(repository)' in the registry with id '\(registry)'")
    }

    /// AWS (docker push over an immutable tag, 2025; triggerdotdev/trigger.dev#2473 quotes ECR's
    /// TAG_INVALID body, osscontainertools/kaniko#204 docker's line): `The image tag '20250903.2' already
    /// exists in the 'deployments-prod/proj' repository and cannot be overwritten because the tag is immutable.`
    /// ECR said "because the repository is immutable." before its per-tag exclusions (aws/containers-roadmap#862,
    /// 2020). The OCI door (docker's `tag invalid: …`) sends the same text.
    public static func imageTagAlreadyExists(_ tag: String, repository: String) -> ECRError {
        ECRError("ImageTagAlreadyExistsException",
                 "The image tag '\(tag)' already exists in the '\(repository)' repository and cannot be overwritten because the tag is immutable.")
    }

    /// AWS (the part scripts match on: `already exists in the repository with name`):
    /// `Image with digest 'sha256:…' and tag 'v1' already exists in the repository with name 'r' in registry with id '…'`.
    public static func imageAlreadyExists(digest: String, tag: String?, repository: String, registry: String) -> ECRError {
        ECRError("ImageAlreadyExistsException",
                 "Image with digest '\(digest)'\(tag.map { " and tag '\($0)'" } ?? "") already exists in the repository with name '\(repository)' in registry with id '\(registry)'")
    }

    /// Berth.
    public static func imageDigestDoesNotMatch(computed: String, given: String) -> ECRError {
        ECRError("ImageDigestDoesNotMatchException", "Manifest digest '\(computed)' does not match the digest specified '\(given)'")
    }

    /// Berth.
    public static func referencedImagesNotFound(_ digests: [String], repository: String, registry: String) -> ECRError {
        ECRError("ReferencedImagesNotFoundException",
                 "Some of the images referenced by the manifest list were not found in the repository with name '\(repository)' in the registry with id '\(registry)': [\(digests.joined(separator: ", "))]")
    }

    /// Berth (docker shows ECR's text as `Images with digests [...] required for pushing image into repository [...] do not exist`).
    public static func layersNotFound(_ digests: [String], repository: String, registry: String) -> ECRError {
        ECRError("LayersNotFoundException",
                 "Layers with digests '[\(digests.joined(separator: ", "))]' required for pushing image into repository with name '\(repository)' in the registry with id '\(registry)' do not exist")
    }

    /// Berth: a layer GetDownloadUrlForLayer or a blob read does not find.
    public static func layerNotFound(_ digest: String, repository: String, registry: String) -> ECRError {
        ECRError("LayersNotFoundException",
                 "The layer with digest '\(digest)' does not exist in the repository with name '\(repository)' in the registry with id '\(registry)'")
    }

    /// Berth.
    public static func layerInaccessible(_ digest: String, repository: String, registry: String) -> ECRError {
        ECRError("LayerInaccessibleException",
                 "The layer with digest '\(digest)' is not associated with an image in the repository with name '\(repository)' in the registry with id '\(registry)'")
    }

    /// Berth.
    public static func uploadNotFound(_ uploadID: String, repository: String, registry: String) -> ECRError {
        ECRError("UploadNotFoundException",
                 "The upload with id '\(uploadID)' does not exist in the repository with name '\(repository)' in the registry with id '\(registry)'")
    }

    /// Berth.
    public static func emptyUpload(_ uploadID: String) -> ECRError {
        ECRError("EmptyUploadException", "The upload with upload ID '\(uploadID)' was empty")
    }

    /// Berth.
    public static func layerPartTooSmall(minimum: Int64) -> ECRError {
        ECRError("LayerPartTooSmallException", "Layer part size must be at least \(minimum) bytes, except for the last part")
    }

    /// Berth.
    public static func layerAlreadyExists(_ digest: String, repository: String, registry: String) -> ECRError {
        ECRError("LayerAlreadyExistsException",
                 "The layer '\(digest)' already exists in the repository with name '\(repository)' in registry with id '\(registry)'")
    }

    /// Berth.
    public static func invalidLayer(uploadID: String, digest: String) -> ECRError {
        ECRError("InvalidLayerException",
                 "The layer digest calculated for upload ID '\(uploadID)' does not match the layer digest '\(digest)' that was specified")
    }

    /// Berth: a part that is not where the upload ends (with the upload's identity and last valid byte).
    public static func invalidLayerPart(_ reason: InvalidPartReason, uploadID: String, repository: String, registry: String,
                                        lastValidByte: Int64) -> ECRError {
        let message = switch reason {
        case .sizeMismatch:
            "The layer part size is not valid, or the first byte specified is not consecutive to the last byte of a previous layer part upload."
        case .firstPartNotAtZero(let first):
            "The layer part first byte \(first) must be 0: no layer part has been received for this upload yet."
        case .notConsecutive(let first, let last):
            "The layer part first byte \(first) is not consecutive to the last byte of the previous layer part upload (\(last))."
        case .other(let detail):
            detail
        }
        return ECRError("InvalidLayerPartException", message, extra: [
            "registryId": .string(registry), "repositoryName": .string(repository), "uploadId": .string(uploadID),
            "lastValidByteReceived": .int(lastValidByte),
        ])
    }

    public enum InvalidPartReason: Sendable {
        case sizeMismatch
        case firstPartNotAtZero(Int64)
        case notConsecutive(first: Int64, lastReceived: Int64)
        case other(String)
    }

    /// AWS: `Image scan does not exist for the image with '{imageDigest:'…', imageTag:'null'}' in the repository
    /// with name '<repository-name>' in the registry with id '<registry-id>'`.
    public static func scanNotFound(digest: String?, tag: String?, repository: String, registry: String) -> ECRError {
        ECRError("ScanNotFoundException",
                 "Image scan does not exist for the image with '\(imageIDText(digest: digest, tag: tag))' in the repository with name '\(repository)' in the registry with id '\(registry)'")
    }

    /// AWS: `The scan quota per image has been exceeded. Wait and try again.`
    public static let scanQuotaExceeded = ECRError("LimitExceededException", "The scan quota per image has been exceeded. Wait and try again.")

    /// Berth.
    public static func unsupportedImageType(_ type: String) -> ECRError {
        ECRError("UnsupportedImageTypeException", "The image type is not supported: artifacts of type '\(type)' cannot be scanned")
    }

    /// Berth (ECR documents the limits: 50 tags a private repository, 200 a public one).
    public static func tooManyTags(limit: Int) -> ECRError {
        ECRError("TooManyTagsException",
                 "The list of tags on the repository is over the limit. The maximum number of tags that can be applied to a repository is \(limit).")
    }

    /// Berth (InvalidTagParameterException: keys 1–128 characters, not `aws:`; values at most 256).
    public static let tagKeyMissing = ECRError("InvalidTagParameterException", "Tag key must not be null")

    /// Berth.
    public static func invalidTagKey(_ key: String) -> ECRError {
        ECRError("InvalidTagParameterException", "Invalid tag key '\(key)': keys must be 1 to 128 characters and not start with 'aws:'")
    }

    /// Berth.
    public static func invalidTagValue(key: String) -> ECRError {
        ECRError("InvalidTagParameterException", "Invalid tag value for key '\(key)': values must be at most 256 characters")
    }

    /// Berth (ECR Public's TagKey is 1–128 characters).
    public static func tagKeyLength(_ key: String) -> ECRError {
        ECRError("InvalidTagParameterException", "Invalid tag key '\(key)': keys must be 1 to 128 characters")
    }

    /// Berth.
    public static func unknownOperation(_ target: String) -> ECRError {
        ECRError("UnknownOperationException", "Unknown operation \(target)")
    }

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
            return .repositoryNotFound(n, registry: reg)
        case .repositoryAlreadyExists(let n):
            return .repositoryAlreadyExists(n, registry: reg)
        case .repositoryNotEmpty(let n):
            return .repositoryNotEmpty(n, registry: reg)
        case .nameInvalid(let n):
            return .invalidParameter("Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*'' (value: '\(n)')")
        case .manifestInvalid(let m), .referenceInvalid(let m):
            return .invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: '\(m)'")
        case .manifestTooLarge:
            return .invalidParameter("Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Member must have length less than or equal to 4194304'")
        case .manifestBlobUnknown(let d):
            return .layersNotFound([d], repository: repo, registry: reg)
        case .tagImmutable(let t):
            return .imageTagAlreadyExists(t, repository: repo)
        case .digestMismatch(let expected, let computed):
            return .imageDigestDoesNotMatch(computed: computed, given: expected)
        case .digestInvalid(let d):
            return .invalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Invalid digest' (value: '\(d)')")
        case .tagInvalid(let t):
            return .invalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'Invalid tag' (value: '\(t)')")
        case .blobUploadUnknown(let u):
            return .uploadNotFound(u, repository: repo, registry: reg)
        case .blobUnknown(let d):
            return .layerNotFound(d, repository: repo, registry: reg)
        case .manifestUnknown(let r):
            let isDigest = r.contains(":")
            return .imageNotFound(digest: isDigest ? r : nil, tag: isDigest ? nil : r, repository: repo, registry: reg)
        case .imageArchived:
            return .imageArchived(error.description)
        case .denied(let m):
            return ECRError("AccessDeniedException", m)
        case .unauthorized(let m):
            return ECRError("UnrecognizedClientException", m)
        case .tooManyRequests(let m):
            return ECRError("ThrottlingException", m)
        case .manifestReferenced:
            // BatchDeleteImage reports this per image (ImageReferencedByManifestList); elsewhere a parameter error.
            return .invalidParameter(error.description)
        case .paginationNumberInvalid(let m), .sizeInvalid(let m), .unsupported(let m), .blobUploadInvalid(let m):
            return .invalidParameter(m)
        case .rangeNotSatisfiable(_, let d):
            return ECRError("InvalidLayerPartException", d)
        case .kms(let type, let m):
            return ECRError("KmsException", m, extra: ["kmsError": .string(type)])
        case .internalError:
            return .server
        }
    }
}
