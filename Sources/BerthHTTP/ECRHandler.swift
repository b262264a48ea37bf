import BerthAudit
import BerthAuth
import BerthCore
import BerthECR
import BerthKMS
import BerthSecrets
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The AWS JSON 1.1 door: `POST /` with `X-Amz-Target`, SigV4-verified, dispatched by target prefix to
/// the ECR API, ECR Public (`SpencerFrontendService.`) or KMS (`TrentService.`, signed for `kms`).
public struct ECRHandler: Sendable {
    let ecr: ECRService
    /// Amazon ECR Public (`SpencerFrontendService`), signed for service `ecr-public`.
    let ecrPublic: ECRService?
    /// AWS KMS (`TrentService`), signed for service `kms`.
    let kms: KMSService?
    /// AWS Secrets Manager (`secretsmanager.`), signed for `secretsmanager`.
    let secrets: SecretsManagerService?
    /// CloudTrail's `LookupEvents` over the audit trail, signed for `cloudtrail`.
    let cloudTrail: CloudTrailService?
    let authenticator: Authenticator
    let metrics: BerthMetrics
    /// Largest request body accepted (a 4 MiB manifest, or a base64 layer part, plus JSON).
    static let maxBody = 32 * 1024 * 1024

    public init(ecr: ECRService, authenticator: Authenticator, ecrPublic: ECRService? = nil, kms: KMSService? = nil,
                secrets: SecretsManagerService? = nil, cloudTrail: CloudTrailService? = nil, metrics: BerthMetrics) {
        self.secrets = secrets
        self.ecr = ecr
        self.ecrPublic = ecrPublic
        self.kms = kms
        self.cloudTrail = cloudTrail
        self.authenticator = authenticator
        self.metrics = metrics
    }

    static let target = HTTPField.Name("X-Amz-Target")!
    static let errorType = HTTPField.Name("x-amzn-ErrorType")!

    /// The request body is over `maxBody`.
    struct BodyTooLarge: Error {}

    /// Every `POST /` belongs to the AWS JSON door; an unknown or missing target is answered there.
    public static func accepts(_ request: Request) -> Bool {
        request.method == .post && request.uri.path == "/"
    }

    public func handle(_ request: Request, context: BerthRequestContext) async throws -> Response {
        var context = context
        let target = request.headers[Self.target] ?? ""
        if let kms, KMSService.handles(target: target) { return try await handleKMS(kms, target, request, context) }
        if let secrets, SecretsManagerService.handles(target: target) {
            // Secret values never reach the audit trail: only the operation and its outcome are recorded.
            return try await handleService(door: .secretsManager, signingName: SecretsManagerService.signingName,
                                           prefix: SecretsManagerService.targetPrefix, target, request, context) { body, principal in
                let r = await secrets.handle(target: target, body: body, principal: principal)
                return (r.status, r.body, r.errorType)
            }
        }
        if let cloudTrail, CloudTrailService.handles(target: target) { return try await handleCloudTrail(cloudTrail, target, request, context) }
        let service = ecrPublic.flatMap { target.hasPrefix($0.prefix) ? $0 : nil } ?? ecr
        context.record.set(door: service.flavor == .public ? .ecrPublic : .ecr, operation: "unknown")
        // The audit trail names even a refused request after the operation it asked for.
        let asked = target.hasPrefix(service.prefix) ? String(target.dropFirst(service.prefix.count).prefix(128)) : "unknown"
        context.record.setAudit { $0.eventName = asked }
        let result: ECRResponse
        var principalRegion: String? = nil
        do {
            let body = try await Self.readBody(request, limit: Self.maxBody, tooLarge: BodyTooLarge())
            let principal = try await authenticator.aws(request, body: body, service: service.flavor == .public ? "ecr-public" : "ecr",
                                                        context)
            context.identity = .principal(principal)
            principalRegion = principal.region
            let operation = target.dropFirst(service.prefix.count)
            if operation == "UploadLayerPart" {
                result = await metrics.trackingUpload { await service.handle(target: target, body: body, principal: principal) }
            } else {
                result = await service.handle(target: target, body: body, principal: principal)
            }
            // Only an operation the service recognised names a metric series.
            if result.errorType != "UnknownOperationException" { context.record.set(operation: String(operation)) }
        } catch {
            result = ECRService.errorResponse(Self.wireError(error, context))
        }
        let region = principalRegion ?? authenticator.region
        let answer = result.errorType == nil && !AuditEvent.isReadOnly(asked) ? AuditMiddleware.smallObject(result.body) : nil
        context.record.setAudit { f in
            f.responseElements = answer
            f.errorCode = result.errorType
            f.errorMessage = result.errorMessage
            f.requestParameters = result.requestParameters.map { JSONValue.object($0) }
            if let key = result.repository {
                f.resources = [AuditMiddleware.repositoryResource(region: region, registryID: key.registryID, name: key.name)]
                f.recipientAccountID = key.registry.account
            }
        }
        return respond(result)
    }

    /// CloudTrail `LookupEvents`: the same body limit and SigV4 check (signed for `cloudtrail`).
    func handleCloudTrail(_ cloudTrail: CloudTrailService, _ target: String, _ request: Request,
                          _ context: BerthRequestContext) async throws -> Response {
        try await handleService(door: .cloudTrail, signingName: CloudTrailService.signingName, prefix: CloudTrailService.targetPrefix,
                                target, request, context) { body, principal in
            let r = await cloudTrail.handle(target: target, body: body, principal: principal)
            return (r.status, r.body, r.errorType)
        }
    }

    /// The `message` of an AWS JSON error body.
    static func message(_ body: [UInt8]) -> String? {
        guard body.count < 16_384, let v = try? JSONValue.parse(body) else { return nil }
        return v["message"]?.stringValue ?? v["Message"]?.stringValue
    }

    /// The ECR JSON door's errors before the ECR service runs, in one place: the body limit, credential
    /// failures (with `SigV4Error`'s AWS type and status), and anything else as `ServerException`.
    /// (The service maps its own errors with `ECRErrorMapping`.)
    static func wireError(_ error: any Error, _ context: BerthRequestContext) -> ECRError {
        switch error {
        case is BodyTooLarge:
            return .serialization("The request body is too large")
        case let e as AuthenticationFailure:
            switch e {
            case .signature(let s): return ECRError(s.awsErrorType, s.message, status: s.httpStatus)
            case .session(let s):
                return ECRError(s == .expired ? "ExpiredTokenException" : "UnrecognizedClientException", s.message, status: 400)
            case .registryTokenRequired:
                let s = SigV4Error.missingAuthenticationToken
                return ECRError(s.awsErrorType, s.message, status: s.httpStatus)
            }
        default:
            context.logger.error("ecr request failed", metadata: ["error": "\(error)"])
            return .server
        }
    }

    /// KMS: the same body limit and SigV4 check (signed for `kms`), then ``KMSService``; the request's
    /// members are recorded for the audit trail (redacted there).
    func handleKMS(_ kms: KMSService, _ target: String, _ request: Request, _ context: BerthRequestContext) async throws -> Response {
        try await handleService(door: .kms, signingName: KMSService.signingName, prefix: KMSService.targetPrefix,
                                target, request, context) { body, principal in
            context.record.setAudit { $0.requestParameters = AuditMiddleware.smallObject(body) }
            let r = await kms.handle(target: target, body: body, principal: principal)
            return (r.status, r.body, r.errorType)
        }
    }

    /// A service of this door other than ECR (KMS, CloudTrail): the body limit, the SigV4 check for its
    /// signing name, then `call`; failures before the service runs are mapped by `wireError`, as for ECR.
    func handleService(door: Door, signingName: String, prefix: String, _ target: String, _ request: Request,
                       _ context: BerthRequestContext,
                       call: ([UInt8], Principal) async -> (status: Int, body: [UInt8], errorType: String?)) async throws -> Response {
        context.record.set(door: door, operation: "unknown")
        do {
            let body = try await Self.readBody(request, limit: Self.maxBody, tooLarge: BodyTooLarge())
            let principal = try await authenticator.aws(request, body: body, service: signingName, context)
            context.identity = .principal(principal)
            let r = await call(body, principal)
            if r.errorType != "UnknownOperationException" { context.record.set(operation: String(target.dropFirst(prefix.count))) }
            context.record.setAudit { $0.errorCode = r.errorType; $0.errorMessage = r.errorType.flatMap { _ in Self.message(r.body) } }
            return respond(status: r.status, body: r.body, errorType: r.errorType)
        } catch {
            let e = Self.wireError(error, context)
            context.record.setAudit { $0.errorCode = e.type; $0.errorMessage = e.message }
            return respond(ECRService.errorResponse(e))
        }
    }

    func respond(_ r: ECRResponse) -> Response { respond(status: r.status, body: r.body, errorType: r.errorType) }

    func respond(status: Int, body: [UInt8], errorType: String?) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = "application/x-amz-json-1.1"
        headers[.contentLength] = String(body.count)
        if let t = errorType { headers[Self.errorType] = t }
        return Response(status: HTTPResponse.Status(code: status), headers: headers,
                        body: .init(byteBuffer: makeBuffer(body)))
    }

    /// A request body of at most `limit` bytes, else `tooLarge` is thrown.
    static func readBody(_ request: Request, limit: Int, tooLarge: some Error) async throws -> [UInt8] {
        var body: [UInt8] = []
        for try await chunk in request.body {
            guard body.count + chunk.readableBytes <= limit else { throw tooLarge }
            body.append(contentsOf: chunk.readableBytesView)
        }
        return body
    }
}
