import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Media types used by the benchmark's images.
enum MediaType {
    static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    static let ociConfig = "application/vnd.oci.image.config.v1+json"
    static let ociLayer = "application/vnd.oci.image.layer.v1.tar+gzip"
    static let manifestAccept = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ].joined(separator: ", ")
}

private let hexDigits = Array("0123456789abcdef".utf8)

func hexString<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in bytes {
        out.append(hexDigits[Int(b >> 4)])
        out.append(hexDigits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

func sha256Digest(_ buffer: ByteBuffer) -> String {
    buffer.withUnsafeReadableBytes { ptr in "sha256:" + hexString(SHA256.hash(data: ptr)) }
}

func sha256Digest(_ bytes: [UInt8]) -> String {
    "sha256:" + hexString(SHA256.hash(data: bytes))
}

/// A thin OCI distribution-spec client over AsyncHTTPClient.
///
/// Every response body is drained (or collected) so connections go back to the pool.
struct Registry: Sendable {
    let client: HTTPClient
    /// Base URL without trailing slash, e.g. `http://127.0.0.1:5000`.
    let base: String
    /// `scheme://authority` of `base`, used to resolve absolute-path references.
    let origin: String
    let requestTimeout: TimeAmount
    let bulkTimeout: TimeAmount
    /// `Authorization` header value sent on every request (e.g. `Basic …`), or nil for anonymous access.
    /// AsyncHTTPClient keeps it on same-origin redirects and drops it on cross-origin ones.
    let authorization: String?

    init(client: HTTPClient, baseURL: String, authorization: String? = nil,
         requestTimeout: TimeAmount = .seconds(60), bulkTimeout: TimeAmount = .seconds(900)) throws {
        var b = baseURL
        while b.hasSuffix("/") { b.removeLast() }
        guard let schemeEnd = b.range(of: "://"), b.hasPrefix("http://") || b.hasPrefix("https://") else {
            throw BenchError("registry URL must start with http:// or https:// (got \(baseURL))")
        }
        let afterScheme = b[schemeEnd.upperBound...]
        if let slash = afterScheme.firstIndex(of: "/") {
            origin = String(b[..<slash])
        } else {
            origin = b
        }
        self.client = client
        self.base = b
        self.authorization = authorization
        self.requestTimeout = requestTimeout
        self.bulkTimeout = bulkTimeout
    }

    // MARK: URL helpers

    func url(_ path: String) -> String { base + path }

    /// Resolves a `Location` / `Link` reference (absolute URL, scheme-relative, absolute path or relative path)
    /// against the URL of the request that produced it (RFC 3986 reference resolution, the common cases).
    func resolve(_ reference: String, against requestURL: String) -> String {
        let ref = reference.trimmingCharacters(in: .whitespaces)
        if ref.hasPrefix("http://") || ref.hasPrefix("https://") { return ref }
        if ref.hasPrefix("//") {
            let scheme = origin.hasPrefix("https") ? "https:" : "http:"
            return scheme + ref
        }
        if ref.hasPrefix("/") { return origin + ref }
        // Relative path or query-only reference.
        var reqNoQuery = requestURL
        if let q = reqNoQuery.firstIndex(of: "?") { reqNoQuery = String(reqNoQuery[..<q]) }
        if ref.hasPrefix("?") { return reqNoQuery + ref }
        if let lastSlash = reqNoQuery.lastIndex(of: "/") {
            return String(reqNoQuery[...lastSlash]) + ref
        }
        return reqNoQuery + "/" + ref
    }

    /// Appends `name=value` to a URL, with `?` or `&` as appropriate.
    static func appendQuery(_ url: String, _ name: String, _ value: String) -> String {
        let sep: String
        if url.contains("?") {
            sep = (url.hasSuffix("?") || url.hasSuffix("&")) ? "" : "&"
        } else {
            sep = "?"
        }
        return url + sep + name + "=" + value
    }

    /// `Basic base64(USER:PASSWORD)` for a `USER:PASSWORD` string (RFC 7617: the user ends at the first colon,
    /// the password may contain colons). Throws unless there is a colon and a non-empty user.
    static func basicAuthorization(_ credentials: String) throws -> String {
        guard let colon = credentials.firstIndex(of: ":"), colon != credentials.startIndex else {
            throw BenchError("basic auth credentials must be USER:PASSWORD with a non-empty USER")
        }
        return "Basic " + Data(credentials.utf8).base64EncodedString()
    }

    /// The user part of `USER:PASSWORD` (safe to print; the password is not).
    static func basicAuthUser(_ credentials: String) -> String {
        String(credentials.prefix { $0 != ":" })
    }

    /// Extracts the `rel="next"` target from a `Link` header value.
    static func nextLink(_ header: String?) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ",") {
            let p = part.trimmingCharacters(in: .whitespaces)
            let lower = p.lowercased()
            guard lower.contains("rel=\"next\"") || lower.contains("rel=next") else { continue }
            guard let lt = p.firstIndex(of: "<"), let gt = p.firstIndex(of: ">"), lt < gt else { continue }
            return String(p[p.index(after: lt)..<gt])
        }
        return nil
    }

    // MARK: Requests

    func send(
        _ method: HTTPMethod,
        _ url: String,
        headers: [(String, String)] = [],
        body: ByteBuffer? = nil,
        timeout: TimeAmount? = nil
    ) async throws -> HTTPClientResponse {
        try await client.execute(request(method, url, headers: headers, body: body), timeout: timeout ?? requestTimeout)
    }

    /// The request `send` executes. Every request, including those to a `Location` or `Link` target, carries
    /// `authorization` when set.
    func request(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [], body: ByteBuffer? = nil) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: url)
        req.method = method
        if let authorization { req.headers.add(name: "Authorization", value: authorization) }
        for (k, v) in headers { req.headers.add(name: k, value: v) }
        if let body {
            req.body = .bytes(body)
        } else if method == .POST || method == .PUT || method == .PATCH {
            req.body = .bytes(ByteBuffer())  // explicit Content-Length: 0
        }
        return req
    }

    /// Reads and discards the body, returning the number of bytes.
    @discardableResult
    static func drain(_ response: HTTPClientResponse) async throws -> Int {
        var n = 0
        for try await chunk in response.body { n += chunk.readableBytes }
        return n
    }

    static func collect(_ response: HTTPClientResponse, max: Int = 64 << 20) async throws -> ByteBuffer {
        try await response.body.collect(upTo: max)
    }

    /// Throws with the status and (a prefix of) the error body unless the status is one of `expected`.
    static func expect(_ response: HTTPClientResponse, _ expected: Set<UInt>, _ what: String) async throws {
        if expected.contains(response.status.code) { return }
        var text = ""
        if let buf = try? await response.body.collect(upTo: 1 << 20) {
            text = String(buffer: buf)
            if text.count > 300 { text = String(text.prefix(300)) + "…" }
        }
        throw BenchError("\(what): HTTP \(response.status.code) \(text.trimmingCharacters(in: .whitespacesAndNewlines))")
    }

    func location(_ response: HTTPClientResponse, requestURL: String, _ what: String) throws -> String {
        guard let loc = response.headers.first(name: "Location"), !loc.isEmpty else {
            throw BenchError("\(what): response has no Location header")
        }
        return resolve(loc, against: requestURL)
    }

    // MARK: Blob uploads

    /// `POST /v2/<repo>/blobs/uploads/` → absolute upload URL.
    func startUpload(_ repo: String) async throws -> String {
        let u = url("/v2/\(repo)/blobs/uploads/")
        let r = try await send(.POST, u)
        try await Self.expect(r, [202], "POST \(u)")
        let loc = try location(r, requestURL: u, "POST upload")
        try await Self.drain(r)
        return loc
    }

    /// `PUT <upload>?digest=` with an optional body; expects 201.
    func finishUpload(_ uploadURL: String, digest: String, body: ByteBuffer?) async throws {
        let u = Self.appendQuery(uploadURL, "digest", digest)
        var headers: [(String, String)] = []
        if body != nil { headers.append(("Content-Type", "application/octet-stream")) }
        let r = try await send(.PUT, u, headers: headers, body: body, timeout: bulkTimeout)
        try await Self.expect(r, [201], "PUT upload")
        try await Self.drain(r)
    }

    /// `PATCH <upload>` with `Content-Range`; returns the next upload URL.
    func patchChunk(_ uploadURL: String, chunk: ByteBuffer, offset: Int) async throws -> String {
        let end = offset + chunk.readableBytes - 1
        let r = try await send(
            .PATCH, uploadURL,
            headers: [
                ("Content-Type", "application/octet-stream"),
                ("Content-Range", "\(offset)-\(end)"),
            ],
            body: chunk, timeout: bulkTimeout)
        try await Self.expect(r, [202], "PATCH upload")
        if let range = r.headers.first(name: "Range") {
            // Range: 0-<last byte received>  (some servers prefix "bytes=")
            let v = range.replacingOccurrences(of: "bytes=", with: "")
            if let dash = v.lastIndex(of: "-"), let last = Int(v[v.index(after: dash)...]), last != end {
                throw BenchError("PATCH upload: server reports Range \(range), expected 0-\(end)")
            }
        }
        let next = try location(r, requestURL: uploadURL, "PATCH upload")
        try await Self.drain(r)
        return next
    }

    /// Monolithic push in two requests: POST, then PUT with the whole body.
    func pushBlobMonolithic(_ repo: String, _ data: ByteBuffer, digest: String) async throws {
        let loc = try await startUpload(repo)
        try await finishUpload(loc, digest: digest, body: data)
    }

    /// Chunked push: POST, PATCH in `chunkSize` pieces (slices of `data`, no copies), PUT ?digest= with no body.
    func pushBlobChunked(_ repo: String, _ data: ByteBuffer, digest: String, chunkSize: Int) async throws {
        var loc = try await startUpload(repo)
        var offset = 0
        let total = data.readableBytes
        while offset < total {
            let n = min(chunkSize, total - offset)
            let chunk = data.getSlice(at: data.readerIndex + offset, length: n)!
            loc = try await patchChunk(loc, chunk: chunk, offset: offset)
            offset += n
        }
        try await finishUpload(loc, digest: digest, body: nil)
    }

    /// Single-request monolithic push: `POST /v2/<repo>/blobs/uploads/?digest=` with the body.
    /// Returns false (after cancelling the session) if the server answered 202, i.e. does not support it.
    func pushBlobSinglePost(_ repo: String, _ data: ByteBuffer, digest: String) async throws -> Bool {
        let u = Self.appendQuery(url("/v2/\(repo)/blobs/uploads/"), "digest", digest)
        let r = try await send(.POST, u, headers: [("Content-Type", "application/octet-stream")], body: data, timeout: bulkTimeout)
        if r.status.code == 202 {
            let loc = try? location(r, requestURL: u, "POST upload")
            try await Self.drain(r)
            if let loc {
                let d = try await send(.DELETE, loc)
                try await Self.drain(d)
            }
            return false
        }
        try await Self.expect(r, [201], "POST \(u)")
        try await Self.drain(r)
        return true
    }

    /// Pushes a small blob (POST + PUT), the way clients push config/layer blobs.
    func pushSmallBlob(_ repo: String, _ bytes: [UInt8], digest: String) async throws {
        try await pushBlobMonolithic(repo, ByteBuffer(bytes: bytes), digest: digest)
    }

    /// `HEAD /v2/<repo>/blobs/<digest>` → Content-Length (nil on 404).
    func headBlob(_ repo: String, _ digest: String) async throws -> Int? {
        let u = url("/v2/\(repo)/blobs/\(digest)")
        let r = try await send(.HEAD, u)
        if r.status.code == 404 { try await Self.drain(r); return nil }
        try await Self.expect(r, [200], "HEAD \(u)")
        let len = r.headers.first(name: "Content-Length").flatMap { Int($0) }
        try await Self.drain(r)
        guard let len else { throw BenchError("HEAD \(u): no Content-Length") }
        return len
    }

    /// `GET /v2/<repo>/blobs/<digest>`, discarding (or hashing) the bytes; returns the byte count.
    func getBlob(_ repo: String, _ digest: String, hash: Bool = false) async throws -> (bytes: Int, digest: String?) {
        let u = url("/v2/\(repo)/blobs/\(digest)")
        let r = try await send(.GET, u, timeout: bulkTimeout)
        try await Self.expect(r, [200], "GET \(u)")
        var n = 0
        if hash {
            var h = SHA256()
            for try await chunk in r.body {
                n += chunk.readableBytes
                chunk.withUnsafeReadableBytes { h.update(bufferPointer: $0) }
            }
            let d = "sha256:" + hexString(h.finalize())
            return (n, d)
        }
        for try await chunk in r.body { n += chunk.readableBytes }
        return (n, nil)
    }

    // MARK: Manifests

    func putManifest(_ repo: String, reference: String, _ body: ByteBuffer, mediaType: String = MediaType.ociManifest) async throws {
        let u = url("/v2/\(repo)/manifests/\(reference)")
        let r = try await send(.PUT, u, headers: [("Content-Type", mediaType)], body: body)
        try await Self.expect(r, [201], "PUT \(u)")
        try await Self.drain(r)
    }

    /// `GET /v2/<repo>/manifests/<ref>` → body length.
    func getManifest(_ repo: String, reference: String) async throws -> Int {
        let u = url("/v2/\(repo)/manifests/\(reference)")
        let r = try await send(.GET, u, headers: [("Accept", MediaType.manifestAccept)])
        try await Self.expect(r, [200], "GET \(u)")
        return try await Self.drain(r)
    }

    /// GET a JSON listing page; returns the body and the resolved `rel="next"` URL, if any.
    func getPage(_ pageURL: String) async throws -> (body: ByteBuffer, next: String?) {
        let r = try await send(.GET, pageURL)
        try await Self.expect(r, [200], "GET \(pageURL)")
        let next = Self.nextLink(r.headers.first(name: "Link")).map { resolve($0, against: pageURL) }
        let body = try await Self.collect(r)
        return (body, next)
    }

    /// `GET /v2/` — API version check.
    func ping() async throws {
        let u = url("/v2/")
        let r = try await send(.GET, u)
        if r.status.code == 401 {
            let challenge = r.headers.first(name: "WWW-Authenticate").map { " (WWW-Authenticate: \($0))" } ?? ""
            let hint = authorization == nil
                ? "the registry requires authentication\(challenge); pass --basic-auth USER:PASSWORD or set BERTH_BENCH_BASIC_AUTH"
                : "the registry rejected the --basic-auth credentials\(challenge)"
            try await Self.drain(r)
            throw BenchError("GET \(u): HTTP 401: \(hint)")
        }
        try await Self.expect(r, [200], "GET \(u)")
        try await Self.drain(r)
    }
}

/// A tiny but well-formed OCI image: config blob, one layer blob, and a manifest referencing both.
struct SmallImage: Sendable {
    let config: [UInt8]
    let configDigest: String
    let layer: [UInt8]
    let layerDigest: String
    let manifest: ByteBuffer
    let manifestDigest: String

    init(layerSize: Int, rng: inout Xoshiro256) {
        var layer = [UInt8](repeating: 0, count: layerSize)
        layer.withUnsafeMutableBytes { fillRandom($0, &rng) }
        let layerDigest = sha256Digest(layer)
        let created = rng.next()
        let configJSON = """
            {"architecture":"amd64","os":"linux","config":{"Labels":{"berth.bench.id":"\(String(created, radix: 16))"}},\
            "rootfs":{"type":"layers","diff_ids":["\(layerDigest)"]}}
            """
        let config = Array(configJSON.utf8)
        let configDigest = sha256Digest(config)
        let manifestJSON = """
            {"schemaVersion":2,"mediaType":"\(MediaType.ociManifest)",\
            "config":{"mediaType":"\(MediaType.ociConfig)","digest":"\(configDigest)","size":\(config.count)},\
            "layers":[{"mediaType":"\(MediaType.ociLayer)","digest":"\(layerDigest)","size":\(layer.count)}]}
            """
        let manifestBytes = Array(manifestJSON.utf8)
        self.config = config
        self.configDigest = configDigest
        self.layer = layer
        self.layerDigest = layerDigest
        self.manifest = ByteBuffer(bytes: manifestBytes)
        self.manifestDigest = sha256Digest(manifestBytes)
    }

    /// Pushes both blobs and the manifest under `tag` (5 requests).
    func push(to registry: Registry, repo: String, tag: String) async throws {
        try await registry.pushSmallBlob(repo, config, digest: configDigest)
        try await registry.pushSmallBlob(repo, layer, digest: layerDigest)
        try await registry.putManifest(repo, reference: tag, manifest)
    }
}
