import BerthAuth
import BerthCore
import BerthECR
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The AWS JSON 1.1 door: `POST /` with `X-Amz-Target`, SigV4-verified, dispatched to the ECR API.
public struct ECRHandler: Sendable {
    let ecr: ECRService
    /// Amazon ECR Public (`SpencerFrontendService`), signed for service `ecr-public`.
    let ecrPublic: ECRService?
    let identity: IdentityService
    /// Largest request body accepted (a 4 MiB manifest, or a base64 layer part, plus JSON).
    static let maxBody = 32 * 1024 * 1024

    public init(ecr: ECRService, identity: IdentityService, ecrPublic: ECRService? = nil) {
        self.ecr = ecr
        self.ecrPublic = ecrPublic
        self.identity = identity
    }

    static let target = HTTPField.Name("X-Amz-Target")!
    static let errorType = HTTPField.Name("x-amzn-ErrorType")!
    static let requestID = HTTPField.Name("x-amzn-RequestId")!

    /// Every `POST /` belongs to the AWS JSON door; an unknown or missing target is answered there.
    public static func accepts(_ request: Request) -> Bool {
        request.method == .post && request.uri.path == "/"
    }

    public func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        let result: ECRResponse
        do {
            var body: [UInt8] = []
            for try await chunk in request.body {
                guard body.count + chunk.readableBytes <= Self.maxBody else {
                    return respond(ECRService.errorResponse(.serialization("The request body is too large")), context)
                }
                body.append(contentsOf: chunk.readableBytesView)
            }
            let target = request.headers[Self.target] ?? ""
            let service = ecrPublic.flatMap { target.hasPrefix($0.prefix) ? $0 : nil } ?? ecr
            var principal: Principal
            do {
                principal = try await identity.authenticate(Self.sigV4Request(request, body: body),
                                                            service: service.flavor == .public ? "ecr-public" : "ecr")
            } catch let e as SigV4Error {
                return respond(ECRService.errorResponse(ECRError(e.awsErrorType, e.message, status: e.httpStatus)), context)
            } catch let e as SessionTokenError {
                let type = e == .expired ? "ExpiredTokenException" : "UnrecognizedClientException"
                return respond(ECRService.errorResponse(ECRError(type, e.message, status: 400)), context)
            }
            principal.sourceIP = Self.sourceIP(context)
            result = await service.handle(target: target, body: body, principal: principal)
        }
        return respond(result, context)
    }

    func respond(_ r: ECRResponse, _ context: some RequestContext) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = "application/x-amz-json-1.1"
        headers[.contentLength] = String(r.body.count)
        headers[Self.requestID] = context.id
        if let t = r.errorType { headers[Self.errorType] = t }
        return Response(status: HTTPResponse.Status(code: r.status), headers: headers,
                        body: .init(byteBuffer: makeBuffer(r.body)))
    }

    /// `aws:SourceIp`: the peer address, when the request context knows it.
    static func sourceIP(_ context: some RequestContext) -> String? {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
    }

    /// The parts of a request SigV4 signs, exactly as received.
    static func sigV4Request(_ request: Request, body: [UInt8]?) -> SigV4Request {
        var headers: [(name: String, value: String)] = []
        if let authority = request.head.authority { headers.append(("host", authority)) }
        for field in request.headers { headers.append((field.name.rawName, field.value)) }
        let raw = request.uri.string
        let path = raw.split(separator: "?", maxSplits: 1).first.map(String.init) ?? "/"
        return SigV4Request(method: request.method.rawValue, path: path.isEmpty ? "/" : path, query: request.uri.query,
                            headers: headers, payload: body.map { SigV4Payload.hashing($0) } ?? .unavailable)
    }
}
