import BerthAudit
import BerthCore
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird

/// A `/v2/` request as the OCI door routed it, for the audit trail.
public struct OCIAuditRequest: Sendable {
    var route: OCIRoute
    var method: HTTPRequest.Method
    /// The stored registry id (`public:<account>` for ECR Public).
    var registryID: String
    var isPublic: Bool
}

/// What a door tells the audit trail about a request, beyond its door, operation and identity.
public struct AuditFacts: Sendable {
    /// Set by the OCI door; the middleware derives the event name, parameters and resource from it.
    public var oci: OCIAuditRequest?
    /// The CloudTrail event name when it is not the operation's (the OCI door's ECR names).
    public var eventName: String?
    /// `ecr-public.amazonaws.com` for ECR Public traffic on `/v2/`.
    public var eventSource: String?
    public var errorCode: String?
    public var errorMessage: String?
    /// Redacted before it is recorded (``AuditRedaction``).
    public var requestParameters: JSONValue?
    /// What a write operation answered (redacted too); nil for reads, as CloudTrail records them.
    public var responseElements: JSONValue?
    public var resources: [AuditEvent.Resource] = []
    public var recipientAccountID: String?
    /// The region the request addressed (`awsRegion`), when the door knows it better than the principal's
    /// credential scope (the `/v2/` door: its host or token).
    public var region: String?
    public init() {}
}

/// Records every request in the audit trail once it is answered (or has failed): the door and operation
/// as the labels name them, the identity the door decided, and the facts the door left in the record.
/// Health checks and metrics scrapes are not API calls and are not recorded.
struct AuditMiddleware: RouterMiddleware {
    typealias Context = BerthRequestContext
    let trail: AuditTrail
    let region: String
    let defaultAccountID: String
    /// Whether successful `/v2/` reads (manifest and blob GET/HEAD, tag and catalog lists) are recorded:
    /// they are the registry's hot path (see the `auditRegistryReads` setting). Failed and denied reads
    /// are recorded either way.
    let recordsRegistryReads: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            record(request, context, status: Int(response.status.code))
            return response
        } catch {
            record(request, context, status: 500)
            throw error
        }
    }

    static let userAgent = HTTPField.Name("User-Agent")!

    func record(_ request: Request, _ context: Context, status: Int) {
        let (door, operation) = context.record.both
        guard door != .health, door != .metrics else { return }
        // Successful anonymous reads of the registry and of the public gallery (pages, logos) are recorded only when asked.
        if door == .oci || door == .gallery, !recordsRegistryReads, status < 400, request.method == .get || request.method == .head { return }
        var facts = context.record.audit
        var requestRegion = facts.region ?? region
        if case .principal(let p) = context.record.identity, facts.region == nil, let r = p.region { requestRegion = r }
        if let oci = facts.oci { Self.fill(&facts, from: oci, region: requestRegion) }
        let source: String
        switch door {
        case .oci: source = facts.eventSource ?? "ecr.amazonaws.com"
        case .ecr: source = "ecr.amazonaws.com"
        case .ecrPublic: source = "ecr-public.amazonaws.com"
        case .iam: source = "iam.amazonaws.com"
        case .sts: source = "sts.amazonaws.com"
        case .kms: source = "kms.amazonaws.com"
        case .cloudTrail: source = "cloudtrail.amazonaws.com"
        case .secretsManager: source = "secretsmanager.amazonaws.com"
        case .gallery: source = "ecr-public.amazonaws.com"
        case .none, .health, .metrics: source = "berth"
        }
        let eventName = facts.eventName ?? operation
        let identity: AuditEvent.UserIdentity?
        switch context.record.identity {
        case .principal(let p): identity = AuditEvent.UserIdentity(p)
        case .anonymous: identity = .anonymous
        case .none: identity = nil
        }
        var errorCode = facts.errorCode
        if errorCode == nil, status >= 400 { errorCode = String(status) }
        let event = AuditEvent(
            eventID: TimeOrderedUUID.shared.next(), eventTime: trail.now, eventSource: source, eventName: eventName,
            awsRegion: requestRegion, sourceIPAddress: Self.address(context), userAgent: request.headers[Self.userAgent],
            userIdentity: identity,
            // The `/v2/` door's parameters are its route's (repository, reference, digest, upload id): nothing to hide.
            requestParameters: facts.oci != nil ? facts.requestParameters : facts.requestParameters.map(AuditRedaction.redacted),
            responseElements: facts.responseElements.map(AuditRedaction.redacted),
            errorCode: errorCode, errorMessage: facts.errorMessage, requestID: context.id,
            readOnly: door == .oci ? (request.method == .get || request.method == .head) : AuditEvent.isReadOnly(eventName),
            resources: facts.resources, recipientAccountID: facts.recipientAccountID ?? identity?.accountID ?? defaultAccountID)
        trail.record(event)
    }

    /// A small JSON object body, parsed for the trail (request members of KMS, answers of writes).
    static func smallObject(_ body: [UInt8]) -> JSONValue? {
        guard body.count <= 65_536, case .object(let o)? = try? JSONValue.parse(body) else { return nil }
        return .object(o)
    }

    static func address(_ context: Context) -> String? {
        guard let a = context.remoteAddress else { return nil }
        return a.ipAddress
    }

    /// The event name, `requestParameters`, resource and recipient of a `/v2/` request: the repository and
    /// the reference, as ECR's own events name them.
    static func fill(_ f: inout AuditFacts, from r: OCIAuditRequest, region: String) {
        let registry = RegistryID(storedValue: r.registryID)
        var parameters: [String: JSONValue] = ["registryId": .string(registry.account)]
        var name: String?
        switch r.route {
        case .base, .catalog: break
        case .tags(let n), .uploads(let n): name = n.value
        case .manifest(let n, let reference):
            name = n.value
            parameters[reference.hasPrefix("sha256:") || reference.hasPrefix("sha512:") ? "imageDigest" : "imageTag"] = .string(reference)
        case .blob(let n, let digest): name = n.value; parameters["layerDigest"] = .string(digest)
        case .upload(let n, let id): name = n.value; parameters["uploadId"] = .string(id)
        case .referrers(let n, let digest): name = n.value; parameters["imageDigest"] = .string(digest)
        }
        if let name {
            parameters["repositoryName"] = .string(name)
            f.resources = [repositoryResource(region: region, registryID: r.registryID, name: name)]
        }
        f.eventName = ociEventName(OCIHandler.operation(r.route, r.method))
        if r.isPublic { f.eventSource = "ecr-public.amazonaws.com" }
        f.requestParameters = .object(parameters)
        f.recipientAccountID = registry.account
    }

    /// The CloudTrail name of a `/v2/` operation: ECR's event names for registry traffic.
    static func ociEventName(_ operation: String) -> String {
        switch operation {
        case "manifest.get", "manifest.head": "BatchGetImage"
        case "manifest.put": "PutImage"
        case "manifest.delete", "blob.delete": "BatchDeleteImage"
        case "blob.get": "GetDownloadUrlForLayer"
        case "blob.head": "BatchCheckLayerAvailability"
        case "upload.start": "InitiateLayerUpload"
        case "upload.patch": "UploadLayerPart"
        case "upload.complete": "CompleteLayerUpload"
        case "upload.status": "GetLayerUploadStatus"
        case "upload.cancel": "AbortLayerUpload"
        case "tags.list": "ListImages"
        case "catalog": "DescribeRepositories"
        case "referrers": "ListImageReferrers"
        case "base": "CheckRegistryAccess"
        default: "UnknownRegistryRequest"
        }
    }

    /// The repository resource CloudTrail lists for a request.
    static func repositoryResource(region: String, registryID: String, name: String) -> AuditEvent.Resource {
        let registry = RegistryID(storedValue: registryID)
        let arn = registry.isPublic
            ? ARN.ecrPublicRepository(account: registry.account, name: name).description
            : ARN.ecrRepository(region: registry.region ?? region, account: registry.account, name: name).description
        return AuditEvent.Resource(type: "AWS::ECR::Repository", name: name, arn: arn)
    }
}
