import BerthAuth
import BerthCore
import BerthIAM
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The AWS Query door: `POST /` with a form body (`Action=…&Version=…`) and no `X-Amz-Target`,
/// SigV4-signed for `iam` or `sts` (except STS's unsigned AssumeRoleWithWebIdentity), answered in XML.
public struct QueryHandler: Sendable {
    let iam: IAMService
    let sts: STSService
    let identity: IdentityService
    /// Policy documents are at most 131,072 characters, three times that percent-encoded.
    static let maxBody = 1024 * 1024

    public init(iam: IAMService, sts: STSService, identity: IdentityService) {
        self.iam = iam
        self.sts = sts
        self.identity = identity
    }

    /// A form POST to `/` without `X-Amz-Target`.
    public static func accepts(_ request: Request) -> Bool {
        guard request.method == .post, request.uri.path == "/", request.headers[ECRHandler.target] == nil else { return false }
        return request.headers[.contentType]?.lowercased().hasPrefix("application/x-www-form-urlencoded") ?? false
    }

    /// The service of a request: its credential scope's, else its `Version`'s.
    static func service(_ request: Request, form: [String: String]) -> String {
        if let auth = request.headers[.authorization], let range = auth.range(of: "Credential=") {
            let scope = auth[range.upperBound...].prefix { $0 != "," && $0 != " " }.split(separator: "/")
            if scope.count >= 4 { return String(scope[3]) }
        }
        return form["Version"] == STSService.version ? "sts" : "iam"
    }

    public func handle(_ request: Request, context: some RequestContext) async throws -> Response {
        var body: [UInt8] = []
        var service = "iam"
        let requestID = context.id
        func fail(_ e: QueryError) -> Response {
            respond((service == "sts" ? STSService.wire : IAMService.wire).error(e, requestID: requestID), context)
        }
        for try await chunk in request.body {
            guard body.count + chunk.readableBytes <= Self.maxBody else {
                return fail(QueryError("RequestEntityTooLarge", "The request body is too large", status: 413))
            }
            body.append(contentsOf: chunk.readableBytesView)
        }
        guard let form = QueryProtocol.parseForm(body) else {
            return fail(QueryError("MalformedQueryString", "The request body is not valid form data"))
        }
        service = Self.service(request, form: form)
        guard service == "iam" || service == "sts" else {
            return fail(QueryError("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'iam' or 'sts'.", status: 403))
        }
        let expected = service == "sts" ? STSService.version : IAMService.version
        if service == "sts", form["Version"] == expected, let action = form["Action"], STSService.unsignedActions.contains(action) {
            // AssumeRoleWithWebIdentity is unsigned in AWS: the web identity token is the credential.
            return respond(await sts.handleUnsigned(form, requestID: requestID), context)
        }
        var principal: Principal
        do {
            principal = try await identity.authenticate(ECRHandler.sigV4Request(request, body: body), service: service)
        } catch let e as SigV4Error {
            return fail(Self.queryError(e))
        } catch let e as SessionTokenError {
            return fail(e == .expired
                ? QueryError(service == "sts" ? "ExpiredTokenException" : "ExpiredToken", e.message, status: service == "sts" ? 400 : 403)
                : QueryError("InvalidClientTokenId", e.message, status: 403))
        }
        principal.sourceIP = ECRHandler.sourceIP(context)
        guard form["Version"] == expected else {
            return fail(QueryError("InvalidAction", "Could not find operation \(form["Action"] ?? "") for version \(form["Version"] ?? "NO_VERSION_SPECIFIED")"))
        }
        let result = service == "sts"
            ? await sts.handle(form, principal: principal, requestID: requestID)
            : await iam.handle(form, principal: principal, requestID: requestID)
        return respond(result, context)
    }

    /// SigV4 failures in the Query protocol's words.
    static func queryError(_ e: SigV4Error) -> QueryError {
        switch e {
        case .missingAuthenticationToken:
            return QueryError("MissingAuthenticationToken", "Request is missing Authentication Token", status: 403)
        case .incompleteSignature(let m):
            return QueryError("IncompleteSignature", m, status: 400)
        case .unrecognizedClient:
            return QueryError("InvalidClientTokenId", "The security token included in the request is invalid.", status: 403)
        case .signatureMismatch, .signatureExpired, .signatureNotYetCurrent, .invalidCredentialScope, .hostNotSigned:
            return QueryError("SignatureDoesNotMatch", e.message, status: 403)
        default:
            return QueryError(e.awsErrorType, e.message, status: e.httpStatus)
        }
    }

    func respond(_ r: QueryResponse, _ context: some RequestContext) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = "text/xml"
        headers[.contentLength] = String(r.body.count)
        headers[ECRHandler.requestID] = context.id
        return Response(status: HTTPResponse.Status(code: r.status), headers: headers, body: .init(byteBuffer: makeBuffer(r.body)))
    }
}
