import BerthAudit
import BerthCore
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird

/// What a door tells the audit trail about a request, beyond its door, operation and identity.
public struct AuditFacts: Sendable {
    /// The CloudTrail event name when it is not the operation's (the OCI door's ECR names).
    public var eventName: String?
    /// `ecr-public.amazonaws.com` for ECR Public traffic on `/v2/`.
    public var eventSource: String?
    public var errorCode: String?
    public var errorMessage: String?
    /// Redacted before it is recorded (``AuditRedaction``).
    public var requestParameters: JSONValue?
    public var resources: [AuditEvent.Resource] = []
    public var recipientAccountID: String?
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
        let facts = context.record.audit
        let source: String
        switch door {
        case .oci: source = facts.eventSource ?? "ecr.amazonaws.com"
        case .ecr: source = "ecr.amazonaws.com"
        case .ecrPublic: source = "ecr-public.amazonaws.com"
        case .iam: source = "iam.amazonaws.com"
        case .sts: source = "sts.amazonaws.com"
        case .kms: source = "kms.amazonaws.com"
        case .cloudTrail: source = "cloudtrail.amazonaws.com"
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
            eventID: UUID().uuidString.lowercased(), eventTime: trail.now, eventSource: source, eventName: eventName,
            awsRegion: region, sourceIPAddress: Self.address(context), userAgent: request.headers[Self.userAgent],
            userIdentity: identity, requestParameters: facts.requestParameters.map(AuditRedaction.redacted),
            errorCode: errorCode, errorMessage: facts.errorMessage, requestID: context.id,
            readOnly: door == .oci ? (request.method == .get || request.method == .head) : AuditEvent.isReadOnly(eventName),
            resources: facts.resources, recipientAccountID: facts.recipientAccountID ?? identity?.accountID ?? defaultAccountID)
        trail.record(event)
    }

    static func address(_ context: Context) -> String? {
        guard let a = context.remoteAddress else { return nil }
        return a.ipAddress
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
            : ARN.ecrRepository(region: region, account: registry.account, name: name).description
        return AuditEvent.Resource(type: "AWS::ECR::Repository", name: name, arn: arn)
    }
}
