import BerthCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// The door a request went through, as the access log and the metrics name it.
public enum Door: UInt8, Sendable, CaseIterable {
    case oci, ecr, ecrPublic, iam, sts, kms, cloudTrail, secretsManager, gallery, health, metrics, none

    public var label: String {
        switch self {
        case .oci: "oci"
        case .ecr: "ecr"
        case .ecrPublic: "ecr-public"
        case .iam: "iam"
        case .sts: "sts"
        case .kms: "kms"
        case .cloudTrail: "cloudtrail"
        case .secretsManager: "secretsmanager"
        case .gallery: "gallery"
        case .health: "health"
        case .metrics: "metrics"
        case .none: "none"
        }
    }

    /// The AWS protocols answer with `x-amzn-RequestId` as well as `X-Request-Id`.
    var isAWS: Bool { self == .ecr || self == .ecrPublic || self == .iam || self == .sts || self == .kms || self == .cloudTrail || self == .secretsManager }
}

/// What the doors learn about a request for the middleware around them: the door and the operation.
/// Request contexts are values passed inward, so this one reference carries the answer back out to the
/// access log and the metrics. Operation names are bounded: OCI's are fixed, and the AWS doors name an
/// operation only once their service has recognised it (else `unknown`).
public final class RequestRecord: Sendable {
    struct Labels {
        var door: Door = .none
        var operation: String = "unknown"
        var identity: RequestIdentity = .none
    }
    private let labels = Mutex(Labels())
    /// What the audit trail records beyond the labels, set by the doors (``AuditFacts``).
    private let facts = Mutex(AuditFacts())

    public init() {}

    public func set(door: Door, operation: String) {
        labels.withLock { $0 = Labels(door: door, operation: operation) }
    }

    public func set(operation: String) {
        labels.withLock { $0.operation = operation }
    }

    /// Who the request comes from (``BerthRequestContext/identity`` reads and writes it here, so the
    /// middleware outside the door sees what the door decided).
    public var identity: RequestIdentity {
        get { labels.withLock { $0.identity } }
        set { labels.withLock { $0.identity = newValue } }
    }

    public func setAudit(_ update: (inout AuditFacts) -> Void) { facts.withLock { update(&$0) } }
    var audit: AuditFacts { facts.withLock { $0 } }

    public var door: Door { labels.withLock { $0.door } }
    public var operation: String { labels.withLock { $0.operation } }
    var both: (door: Door, operation: String) { labels.withLock { ($0.door, $0.operation) } }
}

/// Who a request comes from, decided once per request by the door's authentication (``Authenticator``)
/// and read by the handlers from the request context.
public enum RequestIdentity: Sendable, Equatable {
    /// Not authenticated (yet): health, metrics, or a request refused before its credentials were read.
    case none
    /// Allowed without credentials: ECR Public pulls, STS `AssumeRoleWithWebIdentity`.
    case anonymous
    /// Verified credentials: a registry token, a SigV4 signature or a presigned URL.
    case principal(Principal)

    public var principal: Principal? {
        if case .principal(let p) = self { return p }
        return nil
    }
}

// MARK: middleware

/// Sets `X-Request-Id` on every answer, and `x-amzn-RequestId` on the AWS doors' (the same id; the
/// Query door also writes it into its XML body as `RequestId`).
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = BerthRequestContext
    static let requestID = HTTPField.Name("X-Request-Id")!
    static let amazonRequestID = HTTPField.Name("x-amzn-RequestId")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        let id = context.id
        response.headers[Self.requestID] = id
        if context.record.door.isAWS { response.headers[Self.amazonRequestID] = id }
        return response
    }
}

/// One structured line per request: door, operation, method, path, status, bytes in and out, duration.
/// Answers of status 500 and above are logged as errors; the others at debug level (the metadata is
/// only built when that level is enabled).
struct AccessLogMiddleware: RouterMiddleware {
    typealias Context = BerthRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            log(request, context, status: Int(response.status.code), bytesOut: response.body.contentLength ?? 0, start: start)
            return response
        } catch {
            log(request, context, status: 500, bytesOut: 0, start: start, error: error)
            throw error
        }
    }

    func log(_ request: Request, _ context: Context, status: Int, bytesOut: Int, start: ContinuousClock.Instant, error: (any Error)? = nil) {
        let level: Logger.Level = status >= 500 ? .error : .debug
        guard context.logger.logLevel <= level else { return }
        let elapsed = start.duration(to: .now)
        let (door, operation) = context.record.both
        var metadata: Logger.Metadata = [
            "door": .string(door.label), "operation": .string(operation),
            "method": .string(request.method.rawValue), "path": .string(request.uri.path),
            "status": .stringConvertible(status), "bytesIn": .stringConvertible(BerthMetrics.bytesIn(request)),
            "bytesOut": .stringConvertible(bytesOut),
            "durationMs": .stringConvertible(Double(BerthMetrics.nanoseconds(elapsed)) / 1e6),
        ]
        if let error { metadata["error"] = .string("\(error)") }
        context.logger.log(level: level, status >= 500 ? "request failed" : "request", metadata: metadata)
    }
}

/// Counts requests by door, operation and status, their latency and their bytes (``BerthMetrics``).
struct RequestMetricsMiddleware: RouterMiddleware {
    typealias Context = BerthRequestContext
    let metrics: BerthMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            metrics.record(context.record, status: response.status.code, bytesIn: BerthMetrics.bytesIn(request),
                           bytesOut: response.body.contentLength ?? 0, elapsed: start.duration(to: .now))
            return response
        } catch {
            metrics.record(context.record, status: 500, bytesIn: BerthMetrics.bytesIn(request), bytesOut: 0,
                           elapsed: start.duration(to: .now))
            throw error
        }
    }
}

/// Requests no route matched (the router's not-found): `/v2` paths the route patterns do not express
/// (`/v2abc`, methods no route lists) still reach the OCI door, which answers them as before the
/// router (`UNSUPPORTED`), `/healthz` answers any method, and everything else is 404 `NOT_FOUND`.
struct UnroutedMiddleware: RouterMiddleware {
    typealias Context = BerthRequestContext
    let oci: OCIHandler

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let e as HTTPError where e.status == .notFound && context.endpointPath == "NotFound" {
            let path = request.uri.path
            if path.hasPrefix("/v2") { return await oci.handle(request, context: context) }
            if path == "/healthz" { return BerthRouter.health(context) }
            return BerthRouter.notFound(context)
        }
    }
}
