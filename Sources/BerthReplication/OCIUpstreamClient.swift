import AsyncHTTPClient
import BerthSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Credentials for an upstream registry (a pull through cache rule's secret).
public struct UpstreamCredentials: Sendable, Equatable {
    public var username: String
    public var password: String
    public init(username: String, password: String) {
        self.username = username
        self.password = password
    }

    var basic: String { "Basic " + Data("\(username):\(password)".utf8).base64EncodedString() }
}

/// Why an upstream request failed.
public enum UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The upstream could not be reached (connection refused, timeout, TLS failure).
    case unreachable(String)
    /// 429: the upstream throttles.
    case throttled
    /// 401 or 403 after the token flow.
    case unauthorized(String)
    case notFound
    /// Any other status.
    case status(Int)
    /// An answer that breaks the protocol (a digest that does not match, a manifest too large).
    case invalid(String)
    /// `http://` without the setting that allows insecure upstreams.
    case insecureRefused

    public var description: String {
        switch self {
        case .unreachable(let s): "upstream unreachable: \(s)"
        case .throttled: "upstream answered 429 Too Many Requests"
        case .unauthorized(let s): "upstream refused the credentials: \(s)"
        case .notFound: "not found upstream"
        case .status(let s): "upstream answered \(s)"
        case .invalid(let s): "upstream answer invalid: \(s)"
        case .insecureRefused: "plain http upstreams are not allowed (setting pullThroughAllowInsecureUpstreams)"
        }
    }

    /// Whether the upstream is unavailable (down, throttling, failing): cached content is served instead.
    public var isUnavailable: Bool {
        switch self {
        case .unreachable, .throttled: true
        case .status(let s): s >= 500
        default: false
        }
    }
}

/// A client of the OCI distribution API of other registries, with the registry token flow: a request
/// goes out anonymously (or with a token or Basic credentials the host asked for before); a 401 with a
/// `Bearer` challenge fetches a token from the challenge's realm (Basic-authenticated when credentials
/// are given) for the challenge's service and the request's scope, a `Basic` challenge is answered with
/// the credentials. Tokens are cached per realm, service, scope and user until they expire.
public final class OCIUpstreamClient: Sendable {
    let http: HTTPClient
    let allowInsecure: Bool
    let clock: any WallClock
    let logger: Logger

    struct TokenKey: Hashable {
        var authority: String
        var scope: String
        var user: String
    }
    /// Bearer tokens and their expiry.
    let tokens = Mutex<[TokenKey: (token: String, expires: Double)]>([:])
    /// Hosts that asked for Basic authentication.
    let basicHosts = Mutex<Set<String>>([])

    public static let sharedHTTPClient: HTTPClient = {
        let configuration = HTTPClient.Configuration(
            redirectConfiguration: .follow(max: 5, allowCycles: false), timeout: .init(connect: .seconds(10), read: .seconds(120)))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(allowInsecure: Bool, http: HTTPClient = OCIUpstreamClient.sharedHTTPClient, clock: any WallClock = SystemWallClock(),
                logger: Logger = Logger(label: "berth.upstream")) {
        self.http = http
        self.allowInsecure = allowInsecure
        self.clock = clock
        self.logger = logger
    }

    /// A response whose status is 200 (the body still to be read); any other status is thrown as an
    /// ``UpstreamError`` after the token flow had its chance.
    public func get(_ endpoint: UpstreamEndpoint, path: String, method: HTTPMethod = .GET, accept: [String] = [],
                    scope: String, credentials: UpstreamCredentials?) async throws(UpstreamError) -> HTTPClientResponse {
        guard endpoint.scheme == "https" || allowInsecure else { throw .insecureRefused }
        let user = credentials?.username ?? ""
        let key = TokenKey(authority: endpoint.authority, scope: scope, user: user)
        var authorization: String? = nil
        if let t = tokens.withLock({ $0[key] }), t.expires > clock.now() {
            authorization = "Bearer \(t.token)"
        } else if let credentials, basicHosts.withLock({ $0.contains(endpoint.authority) }) {
            authorization = credentials.basic
        }
        var response = try await send(endpoint, path, method, accept, authorization)
        if response.status == .unauthorized {
            let header = response.headers.first(name: "WWW-Authenticate") ?? ""
            await drain(response)
            guard let challenge = AuthChallenge.parse(header) else { throw .unauthorized("no usable WWW-Authenticate challenge") }
            switch challenge.scheme {
            case "bearer":
                let token = try await fetchToken(challenge, scope: scope, credentials: credentials)
                tokens.withLock { $0[key] = (token.token, clock.now() + token.expiresIn - 5) }
                response = try await send(endpoint, path, method, accept, "Bearer \(token.token)")
            case "basic":
                guard let credentials else { throw .unauthorized("the upstream requires credentials") }
                basicHosts.withLock { _ = $0.insert(endpoint.authority) }
                response = try await send(endpoint, path, method, accept, credentials.basic)
            default:
                throw .unauthorized("unsupported authentication scheme \(challenge.scheme)")
            }
        }
        switch response.status.code {
        case 200: return response
        case 401, 403:
            await drain(response)
            throw .unauthorized("status \(response.status.code)")
        case 404:
            await drain(response)
            throw .notFound
        case 429:
            await drain(response)
            throw .throttled
        default:
            await drain(response)
            throw .status(Int(response.status.code))
        }
    }

    func send(_ endpoint: UpstreamEndpoint, _ path: String, _ method: HTTPMethod, _ accept: [String],
              _ authorization: String?) async throws(UpstreamError) -> HTTPClientResponse {
        var request = HTTPClientRequest(url: endpoint.base + path)
        request.method = method
        if !accept.isEmpty { request.headers.add(name: "Accept", value: accept.joined(separator: ", ")) }
        if let authorization { request.headers.add(name: "Authorization", value: authorization) }
        request.headers.add(name: "User-Agent", value: "berth-pull-through-cache")
        do {
            return try await http.execute(request, timeout: .seconds(300))
        } catch {
            throw .unreachable("\(error)")
        }
    }

    func drain(_ response: HTTPClientResponse) async {
        _ = try? await response.body.collect(upTo: 1 << 20)
    }

    struct Token {
        var token: String
        var expiresIn: Double
    }

    /// GET `<realm>?service=…&scope=…`, Basic-authenticated with the credentials when there are some.
    func fetchToken(_ challenge: AuthChallenge, scope: String, credentials: UpstreamCredentials?) async throws(UpstreamError) -> Token {
        guard let realm = challenge.parameters["realm"], var components = URLComponents(string: realm),
              let scheme = components.scheme, scheme == "https" || (scheme == "http" && allowInsecure)
        else { throw .unauthorized("the token realm is missing or not allowed") }
        var query = components.queryItems ?? []
        if let service = challenge.parameters["service"] { query.append(URLQueryItem(name: "service", value: service)) }
        query.append(URLQueryItem(name: "scope", value: scope))
        components.queryItems = query
        guard let url = components.string else { throw .unauthorized("bad token realm") }
        var request = HTTPClientRequest(url: url)
        if let credentials { request.headers.add(name: "Authorization", value: credentials.basic) }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(60))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw .unreachable("token realm: \(error)")
        }
        guard response.status == .ok else {
            if response.status == .tooManyRequests { throw .throttled }
            throw .unauthorized("the token realm answered \(response.status.code)")
        }
        guard let json = try? JSONValue.parse(Array(body.readableBytesView)),
              let token = json["token"]?.stringValue ?? json["access_token"]?.stringValue, !token.isEmpty
        else { throw .unauthorized("the token realm's answer has no token") }
        let expiresIn: Double
        switch json["expires_in"] {
        case .int(let i)?: expiresIn = Double(i)
        case .double(let d)?: expiresIn = d
        default: expiresIn = 60
        }
        return Token(token: token, expiresIn: max(10, expiresIn))
    }
}
