import BerthAuth
import BerthCore
import HTTPTypes
import Hummingbird

/// What the doors need to check credentials. ``IdentityService`` is the implementation; tests wrap it
/// (to count how often a request is authenticated, for instance).
public protocol CredentialVerifier: Sendable {
    /// The default region.
    var region: String { get }
    /// The regions requests may address.
    var regions: RegionSet { get }
    /// Verifies a SigV4-signed request (header or presigned query) for `service`; throws `SigV4Error`
    /// or `SessionTokenError` for bad credentials.
    func authenticate(_ request: SigV4Request, service: String) async throws -> Principal
    /// The principal of a `Basic AWS:<token>` header, or nil when it is missing, invalid, expired or revoked.
    func authenticate(basic header: String?) async throws -> Principal?
}

extension IdentityService: CredentialVerifier {}

extension CredentialVerifier {
    public var regions: RegionSet { .single(region) }
}

/// Why credentials were refused. Each protocol's error table (``OCIWireError``, `ECRHandler.wireError`,
/// `QueryHandler.wireError`) maps it in one place.
public enum AuthenticationFailure: Error, Sendable, Equatable {
    /// A SigV4 signature (header or presigned URL) that does not verify.
    case signature(SigV4Error)
    /// STS session credentials that are forged or expired.
    case session(SessionTokenError)
    /// A `/v2/` request without a valid registry token.
    case registryTokenRequired
}

/// Authentication, done once per request by the door's single function: it turns the credentials the
/// door's protocol carries into a ``RequestIdentity`` for the request context. Failures are thrown as
/// ``AuthenticationFailure``; other errors (storage) propagate as they are.
public struct Authenticator: Sendable {
    let verifier: any CredentialVerifier

    public init(verifier: any CredentialVerifier) {
        self.verifier = verifier
    }

    public var region: String { verifier.region }
    public var regions: RegionSet { verifier.regions }

    /// `/v2/`: a registry token (`Basic AWS:<token>`), or for blob `GET`s a presigned SigV4 URL (as
    /// `GetDownloadUrlForLayer` makes). Pulls from ECR Public repositories are anonymous.
    func oci(_ route: OCIRoute, _ request: Request, _ context: BerthRequestContext, anonymous: Bool) async throws -> RequestIdentity {
        if anonymous { return .anonymous }
        if case .blob = route, request.method == .get, let q = request.uri.query, q.contains("X-Amz-Signature=") {
            return .principal(try await sigV4(Self.sigV4Request(request, body: nil), service: "ecr", context))
        }
        guard var p = try await verifier.authenticate(basic: request.headers[.authorization]) else {
            throw AuthenticationFailure.registryTokenRequired
        }
        p.sourceIP = context.remoteAddress?.ipAddress
        return .principal(p)
    }

    /// `POST /` (the ECR JSON and Query doors): a SigV4 `Authorization` header over the whole body.
    func aws(_ request: Request, body: [UInt8], service: String, _ context: BerthRequestContext) async throws -> Principal {
        try await sigV4(Self.sigV4Request(request, body: body), service: service, context)
    }

    private func sigV4(_ request: SigV4Request, service: String, _ context: BerthRequestContext) async throws -> Principal {
        var p: Principal
        do {
            p = try await verifier.authenticate(request, service: service)
        } catch let e as SigV4Error {
            throw AuthenticationFailure.signature(e)
        } catch let e as SessionTokenError {
            throw AuthenticationFailure.session(e)
        }
        // `aws:SourceIp` of policy conditions.
        p.sourceIP = context.remoteAddress?.ipAddress
        return p
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
