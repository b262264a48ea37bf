import AsyncHTTPClient
import BerthAuth
import BerthCore
import BerthSupport
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Another Berth (or ECR-compatible) deployment that replicated images are pushed to: the region (and
/// optionally the one registry) it stands for, its endpoint, and the access key used there. As written
/// in the settings (`replicationPeers`): unknown members are refused, and the secret is never encoded.
public struct ReplicationPeer: Sendable, Equatable, Codable {
    public var region: String
    /// The destination registry this entry is for; nil: any registry of `region`.
    public var registryId: String?
    /// `http(s)://host[:port]`: where the peer's ECR API and `/v2/` are served.
    public var endpoint: String
    public var accessKeyId: String
    public var secretAccessKey: String

    public init(region: String, registryId: String? = nil, endpoint: String, accessKeyId: String, secretAccessKey: String) {
        self.region = region
        self.registryId = registryId
        self.endpoint = endpoint
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
    }

    enum CodingKeys: String, CodingKey, CaseIterable { case region, registryId, endpoint, accessKeyId, secretAccessKey }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let any = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        for k in any.allKeys where !known.contains(k.stringValue) {
            throw DecodingError.dataCorruptedError(forKey: k, in: any, debugDescription: "unknown replication peer setting \(k.stringValue)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        region = try c.decode(String.self, forKey: .region)
        registryId = try c.decodeIfPresent(String.self, forKey: .registryId)
        endpoint = try c.decode(String.self, forKey: .endpoint)
        accessKeyId = try c.decode(String.self, forKey: .accessKeyId)
        secretAccessKey = try c.decode(String.self, forKey: .secretAccessKey)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(region, forKey: .region)
        try c.encodeIfPresent(registryId, forKey: .registryId)
        try c.encode(endpoint, forKey: .endpoint)
        try c.encode(accessKeyId, forKey: .accessKeyId)
        try c.encode("(hidden)", forKey: .secretAccessKey)
    }
}

/// Why a request to a peer failed; `retryable` says whether trying later may help.
public struct PeerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public var retryable: Bool
}

/// The client side of replication to a peer: ECR's `GetAuthorizationToken` (SigV4-signed with the peer's
/// access key), then the OCI distribution API with the token as Basic credentials (`AWS:<token>`).
public final class ReplicationPeerClient: Sendable {
    let http: HTTPClient
    /// Tokens by endpoint and access key, with their expiry.
    let tokens = Mutex<[String: (basic: String, expires: Double)]>([:])
    let clock: any WallClock

    public init(http: HTTPClient = OCIUpstreamClient.sharedHTTPClient, clock: any WallClock = SystemWallClock()) {
        self.http = http
        self.clock = clock
    }

    var base: (String) -> String { { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } }

    // MARK: the ECR API of the peer

    /// One ECR operation at the peer; the decoded JSON body of a 200, else a `PeerError` carrying the `__type`.
    func ecr(_ peer: ReplicationPeer, _ operation: String, _ body: JSONValue) async throws -> JSONValue {
        let endpoint = base(peer.endpoint)
        guard let url = URL(string: endpoint), let host = url.host else {
            throw PeerError(description: "peer endpoint \(peer.endpoint) is not a URL", retryable: false)
        }
        let authority = url.port.map { "\(host):\($0)" } ?? host
        let bytes = body.encoded()
        let target = "AmazonEC2ContainerRegistry_V20150921.\(operation)"
        let unsigned = SigV4Request(method: "POST", path: "/", query: nil,
                                    headers: [(name: "host", value: authority), (name: "content-type", value: "application/x-amz-json-1.1"),
                                              (name: "x-amz-target", value: target)],
                                    payload: .hashing(bytes))
        let signer = SigV4Signer(accessKeyID: peer.accessKeyId, secretAccessKey: peer.secretAccessKey, region: peer.region, service: "ecr")
        let signed = signer.sign(unsigned, date: Date(timeIntervalSince1970: clock.now())).applied(to: unsigned)
        var request = HTTPClientRequest(url: endpoint + "/")
        request.method = .POST
        for h in signed.headers where h.name.lowercased() != "host" { request.headers.add(name: h.name, value: h.value) }
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let (status, _, data) = try await send(request, what: operation)
        let json = (try? JSONValue.parse(data)) ?? .null
        guard status == 200 else {
            let type = json["__type"]?.stringValue.map { String($0.split(separator: "#").last ?? Substring($0)) } ?? "status \(status)"
            let message = json["message"]?.stringValue ?? json["Message"]?.stringValue ?? ""
            throw PeerError(description: "peer \(operation) failed: \(type) \(message)".trimmingCharacters(in: .whitespaces),
                            retryable: status >= 500 || status == 429)
        }
        return json
    }

    /// The `Authorization` value for `/v2/` at the peer (a cached registry token while it is valid).
    func authorization(_ peer: ReplicationPeer) async throws -> String {
        let key = "\(peer.endpoint) \(peer.accessKeyId)"
        if let t = tokens.withLock({ $0[key] }), t.expires > clock.now() { return t.basic }
        let answer = try await ecr(peer, "GetAuthorizationToken", [:])
        guard case .array(let data)? = answer["authorizationData"], let first = data.first,
              let token = first["authorizationToken"]?.stringValue else {
            throw PeerError(description: "peer GetAuthorizationToken answered without authorizationData", retryable: true)
        }
        var expires = clock.now() + 3_600
        switch first["expiresAt"] {
        case .double(let d)?: expires = min(expires, d - 300)
        case .int(let i)?: expires = min(expires, Double(i) - 300)
        default: break
        }
        let basic = "Basic " + token
        tokens.withLock { $0[key] = (basic, expires) }
        return basic
    }

    /// The registry policy of the peer account the credentials belong to; nil when it has none.
    public func registryPolicy(_ peer: ReplicationPeer) async throws -> String? {
        do {
            let answer = try await ecr(peer, "GetRegistryPolicy", [:])
            return answer["policyText"]?.stringValue
        } catch let e as PeerError where e.description.contains("RegistryPolicyNotFoundException") {
            return nil
        }
    }

    /// Creates the repository at the peer unless it exists.
    public func ensureRepository(_ peer: ReplicationPeer, registryId: String, name: String) async throws {
        do {
            _ = try await ecr(peer, "CreateRepository", ["repositoryName": .string(name), "registryId": .string(registryId)])
        } catch let e as PeerError where e.description.contains("RepositoryAlreadyExistsException") {
            return
        }
    }

    // MARK: /v2/ at the peer

    func send(_ request: HTTPClientRequest, what: String) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(600))
            body = try await response.body.collect(upTo: 16 << 20)
        } catch {
            throw PeerError(description: "peer unreachable (\(what)): \(error)", retryable: true)
        }
        return (Int(response.status.code), response.headers, Array(body.readableBytesView))
    }

    /// The `Host` that addresses `registryId` at the peer: Berth (and ECR) read the registry from a host
    /// `<account>.dkr.ecr.<region>.…`; an endpoint already of that form is kept.
    func host(_ peer: ReplicationPeer, registryId: String) -> String? {
        guard let url = URL(string: peer.endpoint), let host = url.host else { return nil }
        let authority = url.port.map { "\(host):\($0)" } ?? host
        if host.utf8.count > 21, host.utf8.dropFirst(12).starts(with: ".dkr.ecr.".utf8) { return nil }
        return "\(registryId).dkr.ecr.\(peer.region).\(authority)"
    }

    func v2(_ peer: ReplicationPeer, registryId: String, _ method: HTTPMethod, _ path: String, headers: [(String, String)] = [],
            body: HTTPClientRequest.Body? = nil, what: String) async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8]) {
        let url = path.hasPrefix("http://") || path.hasPrefix("https://") ? path : base(peer.endpoint) + path
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let host = host(peer, registryId: registryId) { request.headers.add(name: "Host", value: host) }
        request.headers.add(name: "Authorization", value: try await authorization(peer))
        request.headers.add(name: "User-Agent", value: "berth-replication")
        for (n, v) in headers { request.headers.add(name: n, value: v) }
        if let body { request.body = body }
        let r = try await send(request, what: what)
        if r.status == 401 { tokens.withLock { $0["\(peer.endpoint) \(peer.accessKeyId)"] = nil } }
        return r
    }

    static func failure(_ what: String, _ r: (status: Int, headers: HTTPHeaders, body: [UInt8])) -> PeerError {
        var detail = ""
        if let json = try? JSONValue.parse(r.body), case .array(let errors)? = json["errors"], let first = errors.first {
            detail = " \(first["code"]?.stringValue ?? ""): \(first["message"]?.stringValue ?? "")"
        }
        return PeerError(description: "peer answered \(r.status) to \(what)\(detail)", retryable: r.status >= 500 || r.status == 429 || r.status == 401)
    }

    /// The digest a manifest reference resolves to at the peer, nil when it does not exist there.
    public func manifestDigest(_ peer: ReplicationPeer, registryId: String, repository: String, reference: String, accept: [String]) async throws -> Digest? {
        let r = try await v2(peer, registryId: registryId, .HEAD, "/v2/\(repository)/manifests/\(reference)", headers: [("Accept", accept.joined(separator: ", "))],
                             what: "HEAD manifest")
        if r.status == 404 { return nil }
        guard r.status == 200 else { throw Self.failure("HEAD manifest", r) }
        return r.headers.first(name: "Docker-Content-Digest").flatMap(Digest.parse)
    }

    /// Whether the peer's repository has a blob; when it does not, asks for a mount from another of the
    /// destination registry's repositories (`?mount=` without `from`, as Berth accepts) and says whether it took.
    /// Otherwise returns the upload location to send the bytes to.
    public enum BlobPresence: Sendable { case present, upload(location: String) }

    public func blobPresence(_ peer: ReplicationPeer, registryId: String, repository: String, digest: Digest) async throws -> BlobPresence {
        let head = try await v2(peer, registryId: registryId, .HEAD, "/v2/\(repository)/blobs/\(digest)", what: "HEAD blob")
        if head.status == 200 { return .present }
        guard head.status == 404 else { throw Self.failure("HEAD blob", head) }
        let start = try await v2(peer, registryId: registryId, .POST, "/v2/\(repository)/blobs/uploads/?mount=\(digest)", body: .bytes(ByteBuffer()),
                                 what: "start upload")
        if start.status == 201 { return .present }
        guard start.status == 202, let location = start.headers.first(name: "Location") else { throw Self.failure("start upload", start) }
        return .upload(location: location)
    }

    /// Sends a blob's bytes to an upload location in one request and completes it.
    public func uploadBlob<Body: AsyncSequence & Sendable>(_ peer: ReplicationPeer, registryId: String, location: String, digest: Digest, size: Int64,
                                                           body: Body) async throws where Body.Element == ByteBuffer {
        let separator = location.contains("?") ? "&" : "?"
        let r = try await v2(peer, registryId: registryId, .PUT, location + separator + "digest=\(digest)",
                             headers: [("Content-Type", "application/octet-stream")],
                             body: .stream(body, length: .known(size)), what: "PUT blob")
        guard r.status == 201 else { throw Self.failure("PUT blob", r) }
    }

    /// Puts a manifest by tag or digest.
    public func putManifest(_ peer: ReplicationPeer, registryId: String, repository: String, reference: String, mediaType: String, bytes: [UInt8]) async throws {
        let r = try await v2(peer, registryId: registryId, .PUT, "/v2/\(repository)/manifests/\(reference)", headers: [("Content-Type", mediaType)],
                             body: .bytes(ByteBuffer(bytes: bytes)), what: "PUT manifest")
        guard r.status == 201 else { throw Self.failure("PUT manifest", r) }
    }
}
