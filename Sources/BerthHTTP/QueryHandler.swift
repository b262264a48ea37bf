import BerthAuth
import BerthCore
import BerthIAM
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The AWS Query door: `POST /` with a form body (`Action=…&Version=…`) and no `X-Amz-Target`,
/// SigV4-signed for `iam` or `sts` (except STS's unsigned AssumeRoleWithWebIdentity), answered in XML.
public struct QueryHandler: Sendable {
    let iam: IAMService
    let sts: STSService
    let authenticator: Authenticator
    /// Policy documents are at most 131,072 characters, three times that percent-encoded.
    static let maxBody = 1024 * 1024

    public init(iam: IAMService, sts: STSService, authenticator: Authenticator) {
        self.iam = iam
        self.sts = sts
        self.authenticator = authenticator
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

    /// Failures of the door itself, before IAM or STS runs.
    enum DoorError: Error {
        case bodyTooLarge
        case malformedForm
        case wrongService
        case invalidAction(action: String?, version: String?)
    }

    public func handle(_ request: Request, context: BerthRequestContext) async throws -> Response {
        var context = context
        var service = "iam"
        let requestID = context.id
        context.record.set(door: .iam, operation: "unknown")
        let result: QueryResponse
        do {
            let body = try await ECRHandler.readBody(request, limit: Self.maxBody, tooLarge: DoorError.bodyTooLarge)
            guard let form = QueryProtocol.parseForm(body) else { throw DoorError.malformedForm }
            context.record.setAudit {
                $0.requestParameters = Self.auditParameters(form)
                $0.eventName = form["Action"].map { String($0.prefix(128)) }
            }
            service = Self.service(request, form: form)
            guard service == "iam" || service == "sts" else { throw DoorError.wrongService }
            if service == "sts" { context.record.set(door: .sts, operation: "unknown") }
            let expected = service == "sts" ? STSService.version : IAMService.version
            let action = form["Action"]
            if service == "sts", form["Version"] == expected, let action, STSService.unsignedActions.contains(action) {
                // AssumeRoleWithWebIdentity is unsigned in AWS: the web identity token is the credential.
                context.identity = .anonymous
                result = await sts.handleUnsigned(form, requestID: requestID)
            } else {
                let principal = try await authenticator.aws(request, body: body, service: service, context)
                context.identity = .principal(principal)
                guard form["Version"] == expected else { throw DoorError.invalidAction(action: action, version: form["Version"]) }
                result = service == "sts"
                    ? await sts.handle(form, principal: principal, requestID: requestID)
                    : await iam.handle(form, principal: principal, requestID: requestID)
            }
            // Only an action the service recognised names a metric series.
            if let action, result.errorCode != "InvalidAction" { context.record.set(operation: action) }
        } catch {
            result = (service == "sts" ? STSService.wire : IAMService.wire).error(Self.wireError(error, service: service, context),
                                                                                 requestID: requestID)
        }
        if let code = result.errorCode {
            context.record.setAudit { $0.errorCode = code; $0.errorMessage = Self.errorMessage(result.body) }
        }
        return respond(result)
    }

    /// The form's parameters as CloudTrail records them (`userName` for `UserName`), without the protocol's
    /// own (`Action`, `Version`, presigned-request fields); the audit middleware redacts secrets.
    static func auditParameters(_ form: [String: String]) -> JSONValue {
        var out: [String: JSONValue] = [:]
        for (k, v) in form where k != "Action" && k != "Version" && !k.hasPrefix("X-Amz-") {
            out[k.prefix(1).lowercased() + k.dropFirst()] = .string(v)
        }
        return .object(out)
    }

    /// The `<Message>` of a Query error body.
    static func errorMessage(_ body: [UInt8]) -> String? {
        let text = String(decoding: body.prefix(16_384), as: UTF8.self)
        guard let start = text.range(of: "<Message>"), let end = text.range(of: "</Message>", range: start.upperBound..<text.endIndex) else { return nil }
        return String(text[start.upperBound..<end.lowerBound])
    }

    /// The Query door's errors before IAM or STS runs, in one place, in the Query protocol's words: the
    /// body and form, the credential scope and version, credential failures (SigV4 and STS session
    /// tokens), and anything else as `ServiceFailure`. (IAM and STS map their own errors.)
    static func wireError(_ error: any Error, service: String, _ context: BerthRequestContext) -> QueryError {
        switch error {
        case let e as DoorError:
            switch e {
            case .bodyTooLarge: return QueryError("RequestEntityTooLarge", "The request body is too large", status: 413)
            case .malformedForm: return QueryError("MalformedQueryString", "The request body is not valid form data")
            case .wrongService:
                return QueryError("SignatureDoesNotMatch", "Credential should be scoped to correct service: 'iam' or 'sts'.", status: 403)
            case .invalidAction(let action, let version):
                return QueryError("InvalidAction", "Could not find operation \(action ?? "") for version \(version ?? "NO_VERSION_SPECIFIED")")
            }
        case let e as AuthenticationFailure:
            switch e {
            case .signature(let s): return queryError(s)
            case .session(.expired):
                return QueryError(service == "sts" ? "ExpiredTokenException" : "ExpiredToken", SessionTokenError.expired.message,
                                  status: service == "sts" ? 400 : 403)
            case .session(let s): return QueryError("InvalidClientTokenId", s.message, status: 403)
            case .registryTokenRequired: return queryError(.missingAuthenticationToken)
            }
        default:
            let e = QueryError(mapping: error)
            if e.status >= 500 { context.logger.error("query request failed", metadata: ["error": "\(error)"]) }
            return e
        }
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

    func respond(_ r: QueryResponse) -> Response {
        var headers: HTTPFields = [:]
        headers[.contentType] = "text/xml"
        headers[.contentLength] = String(r.body.count)
        return Response(status: HTTPResponse.Status(code: r.status), headers: headers, body: .init(byteBuffer: makeBuffer(r.body)))
    }
}
