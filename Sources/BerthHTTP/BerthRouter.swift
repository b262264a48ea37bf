import BerthAudit
import BerthCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The one HTTP pipeline: Hummingbird's `Router` with Berth's middleware, and a route per door.
///
/// Middleware, outermost first: ``RequestIDMiddleware`` (`X-Request-Id`, `x-amzn-RequestId`),
/// ``AccessLogMiddleware`` (one line per request), ``RequestMetricsMiddleware`` (``BerthMetrics``),
/// ``AuditMiddleware`` (the audit trail, when it is on) and ``UnroutedMiddleware`` (what no route
/// matched). Routes:
///
/// - `/v2`, `/v2/**` → ``OCIHandler`` (the OCI door; `OCIRoute.parse` reads names with slashes);
/// - `POST /` → the Query door (``QueryHandler``: a form body without `X-Amz-Target`), else the ECR JSON
///   door (``ECRHandler``);
/// - `GET`/`HEAD /gallery`, `/gallery/**` → ``GalleryHandler`` (the public gallery's pages and ECR Public
///   logos); `/healthz`; `GET /metrics` (Prometheus text);
/// - anything else → 404 `NOT_FOUND`.
///
/// Each door authenticates once (``Authenticator``), keeps the identity in ``BerthRequestContext``,
/// and maps every error through its protocol's one table.
///
/// Every path that starts with `/v2` reaches the OCI door whatever the router would decide (its routes
/// and ``UnroutedMiddleware`` both send them there), so ``BerthResponder`` hands those to the same
/// middleware and the OCI door directly, without resolving the route trie: it is the registry's hot path.
public struct BerthRouter: HTTPResponderBuilder {
    let router: Router<BerthRequestContext>
    let oci: OCIHandler
    let metrics: BerthMetrics
    let audit: AuditMiddleware?

    public func buildResponder() -> BerthResponder {
        BerthResponder(routes: router.buildResponder(), oci: oci, requestMetrics: RequestMetricsMiddleware(metrics: metrics), audit: audit)
    }

    /// `audit`: the trail every request is recorded in, nil to record nothing. `gallery`: the public
    /// gallery; nil serves only ECR Public logos under `/gallery/`.
    public static func make(oci: OCIHandler, ecr: ECRHandler, query: QueryHandler?, metrics: BerthMetrics,
                            audit: AuditTrail? = nil, region: String = "us-east-1", auditRegistryReads: Bool = false,
                            gallery: GalleryHandler? = nil) -> BerthRouter {
        let middleware = audit.map {
            AuditMiddleware(trail: $0, region: region, defaultAccountID: oci.defaultRegistryID, recordsRegistryReads: auditRegistryReads)
        }
        let gallery = gallery ?? GalleryHandler(registry: oci.registry, host: "localhost", pagesEnabled: false)
        return BerthRouter(router: routes(oci: oci, ecr: ecr, query: query, metrics: metrics, audit: middleware, gallery: gallery),
                           oci: oci, metrics: metrics, audit: middleware)
    }

    static func routes(oci: OCIHandler, ecr: ECRHandler, query: QueryHandler?, metrics: BerthMetrics,
                       audit: AuditMiddleware? = nil, gallery: GalleryHandler) -> Router<BerthRequestContext> {
        let router = Router(context: BerthRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
        if let audit { router.add(middleware: audit) }
        router.add(middleware: UnroutedMiddleware(oci: oci))

        let methods: [HTTPRequest.Method] = [.get, .head, .put, .post, .patch, .delete]
        for method in methods {
            for path in ["/v2", "/v2/**"] as [RouterPath] {
                router.on(path, method: method) { request, context in await oci.handle(request, context: context) }
            }
        }
        router.post("/") { request, context in
            // The router also folds `//` into `/`; only `/` itself is the AWS doors' path.
            guard request.uri.path == "/" else { return notFound(context) }
            if let query, QueryHandler.accepts(request) { return try await query.handle(request, context: context) }
            return try await ecr.handle(request, context: context)
        }
        for method in [HTTPRequest.Method.get, .head] {
            for path in ["/gallery", "/gallery/**"] as [RouterPath] {
                router.on(path, method: method) { request, context in
                    try await gallery.handle(request, context: context)
                }
            }
            router.on("/healthz", method: method) { request, context in
                request.uri.path == "/healthz" ? health(context) : notFound(context)
            }
        }
        router.get("/metrics") { request, context in
            guard request.uri.path == "/metrics" else { return notFound(context) }
            context.record.set(door: .metrics, operation: "scrape")
            try? await metrics.storage.withLock { $0 }?.refresh()
            return metrics.response()
        }
        return router
    }

    static func health(_ context: BerthRequestContext) -> Response {
        context.record.set(door: .health, operation: "healthz")
        return Response(status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
    }

    /// 404 for paths no door serves, in the OCI error shape.
    static func notFound(_ context: BerthRequestContext) -> Response {
        context.record.set(door: .none, operation: "notFound")
        return OCIWireError.notFound("not found").response(head: false)
    }
}

/// The responder ``BerthRouter`` builds: `/v2…` paths go through the router's middleware (request id,
/// access log, metrics) straight to the OCI door; every other path through the router.
public struct BerthResponder: HTTPResponder {
    public typealias Context = BerthRequestContext
    let routes: RouterResponder<BerthRequestContext>
    let oci: OCIHandler
    let requestID = RequestIDMiddleware()
    let accessLog = AccessLogMiddleware()
    let requestMetrics: RequestMetricsMiddleware
    let audit: AuditMiddleware?

    public func respond(to request: Request, context: Context) async throws -> Response {
        guard Self.isOCIPath(request.head.path) else { return try await routes.respond(to: request, context: context) }
        return try await requestID.handle(request, context: context) { request, context in
            try await accessLog.handle(request, context: context) { request, context in
                try await requestMetrics.handle(request, context: context) { request, context in
                    guard let audit else { return await oci.handle(request, context: context) }
                    return try await audit.handle(request, context: context) { request, context in
                        await oci.handle(request, context: context)
                    }
                }
            }
        }
    }

    /// Whether a request target (path and query, as received) starts with `/v2`.
    static func isOCIPath(_ target: String?) -> Bool {
        guard let target else { return false }
        var bytes = target.utf8.makeIterator()
        return bytes.next() == UInt8(ascii: "/") && bytes.next() == UInt8(ascii: "v") && bytes.next() == UInt8(ascii: "2")
    }
}
