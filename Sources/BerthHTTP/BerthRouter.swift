import BerthCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The one HTTP pipeline: Hummingbird's `Router` with Berth's middleware, and a route per door.
///
/// Middleware, outermost first: ``RequestIDMiddleware`` (`X-Request-Id`, `x-amzn-RequestId`),
/// ``AccessLogMiddleware`` (one line per request), ``RequestMetricsMiddleware`` (``BerthMetrics``), and
/// ``UnroutedMiddleware`` (what no route matched). Routes:
///
/// - `/v2`, `/v2/**` → ``OCIHandler`` (the OCI door; `OCIRoute.parse` reads names with slashes);
/// - `POST /` → the Query door (``QueryHandler``: a form body without `X-Amz-Target`), else the ECR JSON
///   door (``ECRHandler``);
/// - `GET`/`HEAD /gallery/**` → ECR Public logos; `/healthz`; `GET /metrics` (Prometheus text);
/// - anything else → 404 `NOT_FOUND`.
///
/// Each door authenticates once (``Authenticator``), keeps the identity in ``BerthRequestContext``,
/// and maps every error through its protocol's one table.
public enum BerthRouter {
    public static func make(oci: OCIHandler, ecr: ECRHandler, query: QueryHandler?, metrics: BerthMetrics) -> Router<BerthRequestContext> {
        let router = Router(context: BerthRequestContext.self)
        router.add(middleware: RequestIDMiddleware())
        router.add(middleware: AccessLogMiddleware())
        router.add(middleware: RequestMetricsMiddleware(metrics: metrics))
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
                    try await oci.galleryLogo(request.uri.path, context: context)
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
