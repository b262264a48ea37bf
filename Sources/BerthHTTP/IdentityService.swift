import BerthAuth
import BerthCore
import BerthDirectory
import BerthIAM
import BerthRegistry
import BerthSupport
import Foundation
import Synchronization

/// Turns credentials into principals: SigV4-signed API requests, presigned URLs, and the registry
/// tokens `docker login` uses. Key records (read from the `Directory`) are cached, but an entry is used
/// only while the directory's `authorizationGeneration` is the one it was read at (any key, user or
/// policy write moves it), so deactivating or deleting a key revokes its signatures and its tokens on
/// the very next request; a change made by another process sharing the database is seen after
/// `cacheSeconds`.
public final class IdentityService: Sendable {
    let directory: Directory
    let secrets: SecretBox
    let tokens: RegistryTokenIssuer
    let clock: any WallClock
    public let region: String
    /// The regions requests may be scoped to (`region` is the default one).
    public let regions: RegionSet
    /// Opens STS session tokens (`X-Amz-Security-Token` of `ASIA…` credentials).
    public let sessions: SessionTokenCodec
    /// `aws:SecureTransport` of requests (true when clients reach the server over TLS, e.g. through a proxy).
    let secureTransport: Bool
    private let cache: BoundedCache<String, AccessKeyRecord?>
    /// Recently verified `Authorization` headers (a docker pull sends the same one many times). A hit
    /// still re-checks its key through `activeKey`, so it never outlives a revocation.
    private let verifiedHeaders: BoundedCache<String, Principal>
    /// The longest a cached key record is used without a local write moving the generation.
    let cacheSeconds: Double
    public static let defaultCacheSeconds = 1.0

    public init(directory: Directory, secrets: SecretBox, tokens: RegistryTokenIssuer, region: String,
                clock: any WallClock, secureTransport: Bool = false, cacheSeconds: Double = IdentityService.defaultCacheSeconds,
                regions: RegionSet? = nil) {
        self.regions = regions ?? .single(region)
        self.cacheSeconds = cacheSeconds
        self.cache = BoundedCache(capacity: 10_000, timeToLive: cacheSeconds, clock: clock)
        self.verifiedHeaders = BoundedCache(capacity: 10_000, clock: clock)
        self.sessions = SessionTokenCodec(box: secrets)
        self.secureTransport = secureTransport
        self.directory = directory
        self.secrets = secrets
        self.tokens = tokens
        self.region = region
        self.clock = clock
    }

    /// Seals a secret access key for storage (bound to its key id).
    public func seal(secret: String, accessKeyID: String) throws -> String {
        try secrets.seal(secret, context: accessKeyID)
    }

    /// The active access key record for an id, or nil.
    func activeKey(_ id: String) async throws -> AccessKeyRecord? {
        let now = clock.now()
        // Read before loading: a write that lands during the load leaves the entry stale, and moved past it.
        let generation = directory.authorizationGeneration
        if let hit = cache.value(forKey: id, generation: generation) {
            return hit?.status == AccessKeyStatus.active.rawValue ? hit : nil
        }
        let record = try await directory.accessKey(id)
        cache.set(record, forKey: id, generation: generation, filledAt: now)
        return record?.status == AccessKeyStatus.active.rawValue ? record : nil
    }

    func principal(_ r: AccessKeyRecord) -> Principal {
        var p = Principal(accountID: r.accountID, arn: r.principalARN, accessKeyID: r.accessKeyID)
        p.secureTransport = secureTransport
        return p
    }

    static func isTemporary(_ accessKeyID: String) -> Bool { accessKeyID.hasPrefix(AccessKeyGenerator.temporaryPrefix) }

    /// Verifies a SigV4-signed request for `service`; the error is the SigV4 failure to report
    /// (or a `SessionTokenError` for temporary credentials).
    public func authenticate(_ request: SigV4Request, service: String) async throws -> Principal {
        var verifier = SigV4Verifier(region: region, services: [service])
        verifier.acceptsRegion = { [regions] in regions.accepts($0) }
        let now = clock.now()
        let parsed = try verifier.parse(request, now: Date(timeIntervalSince1970: now))
        if Self.isTemporary(parsed.accessKeyID), let token = parsed.sessionToken {
            guard let claims = sessions.open(token), claims.accessKeyID == parsed.accessKeyID else {
                throw SessionTokenError.invalid
            }
            _ = try verifier.verify(parsed, credential: SigV4Credential(secretAccessKey: claims.secretAccessKey, sessionToken: token))
            guard now < claims.expiresAt else { throw SessionTokenError.expired }
            var p = claims.principal
            p.sessionToken = token
            p.secureTransport = secureTransport
            p.region = parsed.scope.region
            return p
        }
        let found = try await activeKey(parsed.accessKeyID)
        let credential = try found.map { r in
            SigV4Credential(secretAccessKey: try secrets.open(r.sealedSecret, context: r.accessKeyID))
        }
        let auth = try verifier.verify(parsed, credential: credential)
        guard let found, found.accessKeyID == auth.accessKeyID else { throw SigV4Error.unrecognizedClient }
        var p = principal(found)
        p.region = auth.scope.region
        return p
    }

    /// Issues a 12-hour registry token for a principal (no longer than its session, for temporary credentials).
    public func issueToken(for p: Principal, now: Double) throws -> (token: String, expiresAt: Double) {
        var validity = RegistryTokenIssuer.defaultValidity
        if let end = p.sessionExpiry { validity = min(validity, max(1, (end - now).rounded(.down))) }
        let issued = try tokens.issue(accountID: p.accountID, principalARN: p.arn, accessKeyID: p.accessKeyID,
                                      now: Date(timeIntervalSince1970: now), validity: validity, region: p.region)
        return (issued.token, issued.claims.expiresAt.timeIntervalSince1970)
    }

    /// The principal of a `Basic` `AWS:<token>` authorization, or nil when missing, invalid, expired or revoked.
    public func authenticate(basic header: String?) async throws -> Principal? {
        guard let header else { return nil }
        let now = clock.now()
        if let hit = verifiedHeaders.value(forKey: header) {
            // Still re-check the key (its cache entry dies with any key write), so revocation stays immediate.
            if !Self.isTemporary(hit.accessKeyID) {
                guard try await activeKey(hit.accessKeyID) != nil else { return nil }
            }
            return hit
        }
        guard let principal = try await verifyBasic(header) else { return nil }
        verifiedHeaders.set(principal, forKey: header, expiresAt: min(now + cacheSeconds, principal.tokenExpiry ?? now))
        return principal
    }

    private func verifyBasic(_ header: String) async throws -> Principal? {
        guard header.lowercased().hasPrefix("basic ") else { return nil }
        let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        guard let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
              let colon = text.firstIndex(of: ":"), text[..<colon] == "AWS" else { return nil }
        let token = String(text[text.index(after: colon)...])
        guard let claims = try? tokens.verify(token, now: Date(timeIntervalSince1970: clock.now())) else { return nil }
        if Self.isTemporary(claims.accessKeyID) {
            // Issued to a role session, and never valid longer than it.
            var p = Principal(accountID: claims.accountID, arn: claims.principalARN, accessKeyID: claims.accessKeyID)
            p.tokenExpiry = claims.expiresAt.timeIntervalSince1970
            p.sessionExpiry = p.tokenExpiry
            p.secureTransport = secureTransport
            p.region = claims.region
            return p
        }
        guard let key = try await activeKey(claims.accessKeyID), key.accountID == claims.accountID,
              key.principalARN == claims.principalARN else { return nil }
        var p = principal(key)
        p.tokenExpiry = claims.expiresAt.timeIntervalSince1970
        p.region = claims.region
        return p
    }

    /// A presigned GET URL for a blob, signed with the principal's own key (so revoking it revokes the URL).
    public func presignedBlobURL(base: String, host: String, repository: RepositoryKey, digest: BerthCore.Digest,
                                 principal: Principal, now: Double, expires: Int = 3600) async throws -> String {
        let signer: SigV4Signer
        if Self.isTemporary(principal.accessKeyID) {
            guard let token = principal.sessionToken, let claims = sessions.open(token), claims.accessKeyID == principal.accessKeyID else {
                throw BerthError.denied("presigned URLs need the session's credentials")
            }
            signer = SigV4Signer(accessKeyID: claims.accessKeyID, secretAccessKey: claims.secretAccessKey, sessionToken: token,
                                 region: RequestRegion.name(or: region), service: "ecr")
        } else {
            guard let key = try await activeKey(principal.accessKeyID) else { throw BerthError.denied("access key is not active") }
            let secret = try secrets.open(key.sealedSecret, context: key.accessKeyID)
            signer = SigV4Signer(accessKeyID: key.accessKeyID, secretAccessKey: secret, region: RequestRegion.name(or: region),
                                 service: "ecr")
        }
        let path = "/v2/\(repository.name)/blobs/\(digest)"
        let url = try signer.presign(method: "GET", host: host, path: path, expires: expires,
                                     date: Date(timeIntervalSince1970: now))
        return "\(base)\(path)?\(url.query)"
    }
}

/// Why temporary credentials were refused.
public enum SessionTokenError: Error, Sendable {
    /// Not a token this server issued, or not for this access key id.
    case invalid
    case expired

    public var message: String {
        switch self {
        case .invalid: "The security token included in the request is invalid."
        case .expired: "The security token included in the request is expired"
        }
    }
}
