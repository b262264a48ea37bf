import BerthApp
import BerthAuth
import BerthCore
import BerthHTTP
import BerthIAM
import BerthStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// The HTTP pipeline around the doors: request ids, `GET /metrics`, and authentication done once per request.
@Suite struct PipelineTests {
    /// Counts how often the doors ask for credentials to be checked, and passes each call on.
    final class CountingVerifier: CredentialVerifier {
        let inner: IdentityService
        let basicCalls = Atomic<Int>(0)
        let sigV4Calls = Atomic<Int>(0)
        init(_ inner: IdentityService) { self.inner = inner }
        var region: String { inner.region }
        func authenticate(_ request: SigV4Request, service: String) async throws -> Principal {
            sigV4Calls.add(1, ordering: .relaxed)
            return try await inner.authenticate(request, service: service)
        }
        func authenticate(basic header: String?) async throws -> Principal? {
            basicCalls.add(1, ordering: .relaxed)
            return try await inner.authenticate(basic: header)
        }
        var counts: (basic: Int, sigV4: Int) { (basicCalls.load(ordering: .relaxed), sigV4Calls.load(ordering: .relaxed)) }
    }

    func services() async throws -> BerthServices {
        try await inMemoryServices { $0.oidcJwksDirectory = noJWKSDirectory() }
    }

    func basic(_ services: BerthServices) throws -> String {
        let account = services.config.accountId
        let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAIOSFODNN7EXAMPLE")
        let token = try services.identity.issueToken(for: root, now: services.clock.now()).token
        return "Basic " + Data("AWS:\(token)".utf8).base64EncodedString()
    }

    static let requestID = HTTPField.Name("X-Request-Id")!
    static let amazonRequestID = HTTPField.Name("x-amzn-RequestId")!
    static let target = HTTPField.Name("X-Amz-Target")!
    func sha(_ s: String) -> String { Digest.sha256(of: Array(s.utf8)).description }

    /// The samples of a Prometheus text exposition, by `name{labels}`; fails the test on a line that is
    /// neither a comment nor `name{labels} value`.
    func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            let series = String(line[..<space])
            let name = series.prefix { $0 != "{" }
            #expect(!name.isEmpty && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }, "\(line)")
            if series.contains("{") { #expect(series.hasSuffix("}"), "\(line)") }
            result[series] = value
        }
        return result
    }

    func scrape(_ client: some TestClientProtocol) async throws -> [String: Double] {
        try await client.execute(uri: "/metrics", method: .get) { r in
            #expect(r.status == .ok)
            #expect(r.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            return samples(String(buffer: r.body))
        }
    }

    @Test func metricsAreServedInPrometheusTextAndCount() async throws {
        let services = try await services()
        let auth = try basic(services)
        let app = buildApplication(services)
        try await app.test(.router) { client in
            let d = sha("payload")
            try await client.execute(uri: "/v2/mm/blobs/uploads/?digest=\(d)", method: .post, headers: [.authorization: auth, .contentLength: "7"],
                                     body: ByteBuffer(string: "payload")) { r in #expect(r.status == .created) }
            let before = try await scrape(client)
            let head = #"berth_http_requests_total{door="oci",operation="blob.head",status="200"}"#
            let missing = #"berth_http_requests_total{door="oci",operation="blob.head",status="404"}"#
            let pushed = #"berth_http_requests_total{door="oci",operation="upload.start",status="201"}"#
            #expect(before[pushed] == 1)
            #expect(before[#"berth_http_request_bytes_total{door="oci",operation="upload.start"}"#] == 7)
            #expect(before[head] == nil)
            for _ in 0..<3 {
                try await client.execute(uri: "/v2/mm/blobs/\(d)", method: .head, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
            }
            try await client.execute(uri: "/v2/mm/blobs/\(sha("none"))", method: .head, headers: [.authorization: auth]) { r in
                #expect(r.status == .notFound)
            }
            try await client.execute(uri: "/v2/mm/blobs/\(d)", method: .get, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/nowhere", method: .get) { r in #expect(r.status == .notFound) }
            let after = try await scrape(client)
            #expect(after[head] == 3)
            #expect(after[missing] == 1)
            #expect(after[#"berth_http_response_bytes_total{door="oci",operation="blob.get"}"#] == 7)
            #expect(after[#"berth_http_request_duration_seconds_count{door="oci",operation="blob.head"}"#] == 4)
            #expect(after[#"berth_http_requests_total{door="none",operation="notFound",status="404"}"#] == 1)
            #expect(after[#"berth_http_requests_total{door="metrics",operation="scrape",status="200"}"#] == 1)
            #expect(after["berth_uploads_in_flight"] == 0)
        }
        // Each server counts into its own registry: another one starts from nothing.
        try await buildApplication(try await self.services()).test(.router) { client in
            let fresh = try await scrape(client)
            #expect(fresh.keys.contains { $0.contains("blob.head") } == false)
        }
    }

    @Test func everyAnswerCarriesItsRequestID() async throws {
        let services = try await services()
        try await buildApplication(services).test(.router) { client in
            var ids: Set<String> = []
            for uri in ["/healthz", "/nowhere", "/v2/", "/metrics"] {
                try await client.execute(uri: uri, method: .get) { r in
                    let id = r.headers[Self.requestID]
                    #expect(id?.isEmpty == false, "\(uri)")
                    #expect(r.headers[Self.amazonRequestID] == nil, "\(uri)")
                    if let id { ids.insert(id) }
                }
            }
            #expect(ids.count == 4)
            // The AWS doors also answer with x-amzn-RequestId, the same id (the Query door's body names it too).
            try await client.execute(uri: "/", method: .post, headers: [Self.target: "AmazonEC2ContainerRegistry_V20150921.ListImages",
                                                                        .contentType: "application/x-amz-json-1.1"],
                                     body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .badRequest)
                #expect(r.headers[Self.amazonRequestID] != nil)
                #expect(r.headers[Self.amazonRequestID] == r.headers[Self.requestID])
            }
            try await client.execute(uri: "/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "Action=GetCallerIdentity&Version=2011-06-15")) { r in
                let id = try #require(r.headers[Self.requestID])
                #expect(r.headers[Self.amazonRequestID] == id)
                #expect(String(buffer: r.body).contains("<RequestId>\(id)</RequestId>"))
            }
        }
    }

    @Test func eachRequestIsAuthenticatedExactlyOnce() async throws {
        let services = try await services()
        let auth = try basic(services)
        let verifier = CountingVerifier(services.identity)
        try await buildApplication(services, verifier: verifier).test(.router) { client in
            // A push and a pull: four requests, four registry-token checks.
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(self.sha("cfg"))","size":3},"layers":[]}
                """
            try await client.execute(uri: "/v2/once/blobs/uploads/?digest=\(sha("cfg"))", method: .post, headers: [.authorization: auth],
                                     body: ByteBuffer(string: "cfg")) { r in #expect(r.status == .created) }
            try await client.execute(uri: "/v2/once/manifests/v1", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: manifest)) { r in #expect(r.status == .created) }
            try await client.execute(uri: "/v2/once/manifests/v1", method: .get, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v2/once/blobs/\(sha("cfg"))", method: .head, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
            #expect(verifier.counts == (4, 0))
            // A refused token is checked once too.
            try await client.execute(uri: "/v2/once/manifests/v1", method: .get, headers: [.authorization: "Basic QVdTOmdhcmJhZ2U="]) { r in
                #expect(r.status == .unauthorized)
            }
            #expect(verifier.counts == (5, 0))
            // ECR Public pulls are anonymous: no credential check at all.
            let alias = PublicRegistry.alias(of: services.config.accountId)
            try await client.execute(uri: "/v2/public/\(alias)/nothing/manifests/latest", method: .get) { r in #expect(r.status == .notFound) }
            #expect(verifier.counts == (5, 0))
            // The AWS doors check one SigV4 signature per request (here: none, refused once).
            try await client.execute(uri: "/", method: .post, headers: [Self.target: "AmazonEC2ContainerRegistry_V20150921.ListImages",
                                                                        .contentType: "application/x-amz-json-1.1"],
                                     body: ByteBuffer(string: "{}")) { r in #expect(r.status == .badRequest) }
            try await client.execute(uri: "/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "Action=ListUsers&Version=2010-05-08")) { r in #expect(r.status == .forbidden) }
            #expect(verifier.counts == (5, 2))
            // AssumeRoleWithWebIdentity is unsigned: the token is its credential, no signature is checked.
            try await client.execute(uri: "/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                     body: ByteBuffer(string: "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fci&RoleSessionName=s1&WebIdentityToken=not.a.jwt")) { r in
                #expect(r.status == .badRequest)
            }
            // Health and metrics need no credentials.
            try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/metrics", method: .get) { r in #expect(r.status == .ok) }
            #expect(verifier.counts == (5, 2))
        }
    }

    /// What the router's patterns do not express is answered as before it: other methods and `/v2…` paths
    /// reach the OCI door, `/healthz` takes any method, and every other path is 404 `NOT_FOUND`.
    @Test func unroutedRequestsAnswerAsBefore() async throws {
        let services = try await services()
        let auth = try basic(services)
        try await buildApplication(services).test(.router) { client in
            try await client.execute(uri: "/v2/xx/manifests/v1", method: .options, headers: [.authorization: auth]) { r in
                #expect(r.status == .methodNotAllowed)
                #expect(String(buffer: r.body).contains("UNSUPPORTED"))
            }
            try await client.execute(uri: "/v2abc", method: .get) { r in #expect(r.status == .methodNotAllowed) }
            try await client.execute(uri: "/healthz", method: .post) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/healthz/", method: .get) { r in #expect(r.status == .notFound) }
            // The gallery's pages (on by default) are HTML, 404s included.
            try await client.execute(uri: "/gallery/", method: .get) { r in
                #expect(r.status == .ok && r.headers[.contentType] == "text/html; charset=utf-8")
                #expect(r.headers[HTTPField.Name("Content-Security-Policy")!]?.hasPrefix("default-src 'none'") == true)
            }
            try await client.execute(uri: "/gallery/nope/x", method: .get) { r in
                #expect(r.status == .notFound && r.headers[.contentType] == "text/html; charset=utf-8")
            }
            for (uri, method) in [("/nowhere", HTTPRequest.Method.get), ("/gallery/x", .post), ("/metrics", .post)] {
                try await client.execute(uri: uri, method: method) { r in
                    #expect(r.status == .notFound, "\(method) \(uri)")
                    #expect(r.headers[.contentType] == "application/json")
                    #expect(String(buffer: r.body) == #"{"errors":[{"code":"NOT_FOUND","message":"not found"}]}"#)
                }
            }
        }
    }
}

/// The Query protocol's error table: no domain error but `internalError` becomes a 500.
@Suite struct QueryErrorTableTests {
    @Test func domainErrorsAreNeverServerFailuresUnlessInternal() {
        let errors: [BerthError] = [
            .digestInvalid("d"), .digestMismatch(expected: "a", computed: "b"), .nameInvalid("n"), .nameUnknown("n"),
            .tagInvalid("t"), .referenceInvalid("r"), .blobUnknown("b"), .blobUploadUnknown("u"), .blobUploadInvalid("u"),
            .rangeNotSatisfiable(offset: 1, detail: "x"), .sizeInvalid("s"), .manifestInvalid("m"), .manifestUnknown("m"),
            .manifestBlobUnknown("m"), .manifestTooLarge(limit: 1), .tagImmutable("t"), .repositoryAlreadyExists("r"),
            .repositoryNotEmpty("r"), .unsupported("u"), .paginationNumberInvalid("p"), .denied("no"), .unauthorized("who"),
            .tooManyRequests("slow"),
        ]
        for e in errors {
            let q = QueryError(mapping: e)
            #expect(q.status >= 400 && q.status < 500, "\(e) → \(q.code) \(q.status)")
            #expect(q.sender, "\(e)")
        }
        #expect(QueryError(mapping: BerthError.denied("m")) == .accessDenied("m"))
        #expect(QueryError(mapping: BerthError.internalError("disk")) == .serviceFailure)
        #expect(QueryError(mapping: QueryError.noSuchEntity("x")) == .noSuchEntity("x"))
        #expect(QueryError(mapping: WebIdentityTokenError.expired("late")).code == "ExpiredTokenException")
        struct Other: Error {}
        #expect(QueryError(mapping: Other()) == .serviceFailure)
    }
}
