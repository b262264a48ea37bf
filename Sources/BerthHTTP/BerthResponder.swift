import BerthCore
import BerthRegistry
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The front door: routes `/v2/` to the OCI handler and serves `/healthz`.
public struct BerthResponder<Context: RequestContext>: HTTPResponder {
    let oci: OCIHandler
    let ecr: ECRHandler
    /// IAM and STS (Query protocol); nil serves only the ECR API on `POST /`.
    let query: QueryHandler?

    public init(oci: OCIHandler, ecr: ECRHandler, query: QueryHandler? = nil) {
        self.oci = oci
        self.ecr = ecr
        self.query = query
    }

    static var requestIDHeader: HTTPField.Name { HTTPField.Name("X-Request-Id")! }

    public func respond(to request: Request, context: Context) async throws -> Response {
        let path = request.uri.path
        var response: Response
        if path.hasPrefix("/v2") {
            response = try await oci.handle(request, context: context)
        } else if let query, QueryHandler.accepts(request) {
            response = try await query.handle(request, context: context)
        } else if ECRHandler.accepts(request) {
            response = try await ecr.handle(request, context: context)
        } else if path.hasPrefix("/gallery/"), request.method == .get || request.method == .head {
            response = try await oci.galleryLogo(path)
        } else if path == "/healthz" {
            response = Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ok"}"#)))
        } else {
            response = Response(status: .notFound, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#)))
        }
        response.headers[Self.requestIDHeader] = context.id
        if response.status.code >= 500 {
            context.logger.error("request failed", metadata: ["method": "\(request.method)", "path": "\(path)", "status": "\(response.status.code)"])
        } else {
            context.logger.debug("request", metadata: ["method": "\(request.method)", "path": "\(path)", "status": "\(response.status.code)"])
        }
        return response
    }
}
