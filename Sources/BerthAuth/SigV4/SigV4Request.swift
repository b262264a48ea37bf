#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto

/// The parts of an HTTP request that SigV4 signs, exactly as received.
public struct SigV4Request: Sendable {
    /// The HTTP method, e.g. `POST`.
    public var method: String
    /// The raw request path as it appeared on the wire (still percent-encoded, without the query), e.g. `/`.
    public var path: String
    /// The raw query string after `?`, still percent-encoded, or `nil` when there is none.
    public var query: String?
    /// The header fields in the order received; a name may repeat (values are then joined with commas).
    public var headers: [(name: String, value: String)]
    /// What is known about the body.
    public var payload: SigV4Payload

    /// Creates a request description.
    public init(
        method: String,
        path: String,
        query: String? = nil,
        headers: [(name: String, value: String)],
        payload: SigV4Payload
    ) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.payload = payload
    }

    /// All values of header `name` (case-insensitive), in received order.
    func headerValues(_ name: String) -> [String] {
        headers.compactMap { $0.name.asciiCaseInsensitiveEquals(name) ? $0.value : nil }
    }

    /// The first value of header `name` (case-insensitive).
    func firstHeader(_ name: String) -> String? {
        headers.first { $0.name.asciiCaseInsensitiveEquals(name) }?.value
    }
}

/// What the verifier or signer knows about a request body.
public enum SigV4Payload: Sendable, Hashable {
    /// The lowercase hex SHA-256 of the complete body.
    case sha256Hex(String)
    /// The body has not been read (streamed); only an `X-Amz-Content-Sha256` header can stand for it.
    case unavailable

    /// The SHA-256 of an empty body.
    public static let emptySHA256Hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// `.sha256Hex` of `body`.
    public static func hashing(_ body: some DataProtocol) -> SigV4Payload {
        .sha256Hex(Bytes.hex(SHA256.hash(data: body)))
    }
}

/// A secret looked up for an access key id during verification.
public struct SigV4Credential: Sendable {
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token that must accompany temporary credentials; `nil` for long-term keys (then none may be sent).
    public var sessionToken: String?

    /// Creates a credential.
    public init(secretAccessKey: String, sessionToken: String? = nil) {
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }
}

/// The `date/region/service/aws4_request` part of a SigV4 credential.
public struct SigV4Scope: Sendable, Hashable, CustomStringConvertible {
    /// `yyyyMMdd`.
    public var date: String
    /// The signing region, e.g. `us-east-1`.
    public var region: String
    /// The signing service name, e.g. `ecr`.
    public var service: String

    /// Creates a scope.
    public init(date: String, region: String, service: String) {
        self.date = date
        self.region = region
        self.service = service
    }

    /// `date/region/service/aws4_request`.
    public var description: String { "\(date)/\(region)/\(service)/aws4_request" }
}

/// A request whose SigV4 signature was verified.
public struct SigV4Authentication: Sendable, Hashable {
    /// The access key id that signed the request.
    public var accessKeyID: String
    /// The session token sent with the request (already matched against the credential), if any.
    public var sessionToken: String?
    /// The credential scope the request was signed for.
    public var scope: SigV4Scope
    /// The request time (`X-Amz-Date`).
    public var requestDate: AmzDate
    /// The signed header names, lowercase, as listed by the client.
    public var signedHeaders: [String]
    /// The payload hash that was signed: a hex SHA-256, `UNSIGNED-PAYLOAD`, or a `STREAMING-…` marker.
    ///
    /// When the body was `.unavailable` and this is a hex hash, the caller must check the body against it
    /// while streaming; when it is not a hex hash the body is not covered by the signature.
    public var payloadHash: String
    /// Whether the signature came from the query string (a presigned URL) rather than `Authorization`.
    public var isPresigned: Bool

    /// Creates an authentication result (the verifier makes these; tests of other layers may too).
    public init(
        accessKeyID: String, sessionToken: String?, scope: SigV4Scope, requestDate: AmzDate,
        signedHeaders: [String], payloadHash: String, isPresigned: Bool
    ) {
        self.accessKeyID = accessKeyID
        self.sessionToken = sessionToken
        self.scope = scope
        self.requestDate = requestDate
        self.signedHeaders = signedHeaders
        self.payloadHash = payloadHash
        self.isPresigned = isPresigned
    }
}

/// Header names that SigV4 clients (botocore) never sign because proxies may rewrite them.
let unsignableHeaderNames: Set<String> = [
    "authorization", "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
]

extension String {
    /// ASCII case-insensitive equality, without allocating lowercased copies.
    func asciiCaseInsensitiveEquals(_ other: String) -> Bool {
        let lhs = utf8, rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (left, right) in zip(lhs, rhs) where left != right {
            guard left | 0x20 == right | 0x20, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(left | 0x20)
            else { return false }
        }
        return true
    }

    /// ASCII-only lowercase (header names are ASCII tokens).
    var asciiLowercased: String {
        guard utf8.contains(where: { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else { return self }
        return String(decoding: utf8.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 },
                      as: UTF8.self)
    }
}
