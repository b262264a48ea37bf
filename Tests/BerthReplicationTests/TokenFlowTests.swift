import BerthReplication
import BerthSupport
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing

/// A registry on loopback that answers as Docker Hub's token flow does (or asks for Basic), counting
/// what it is asked.
final class FakeRegistry: Sendable {
    enum Mode: Sendable { case anonymous, bearer, basic }
    let mode: Mode
    let requests = Mutex<[String]>([])
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    init(_ mode: Mode) async throws {
        self.mode = mode
        let box = Mutex<FakeRegistry?>(nil)
        let handler = { @Sendable (head: HTTPRequestHead) -> (HTTPResponseStatus, HTTPHeaders, String) in
            box.withLock { $0 }!.answer(head)
        }
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { ch in
                ch.pipeline.configureHTTPServerPipeline().flatMap { ch.pipeline.addHandler(Responder(answer: handler)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        box.withLock { $0 = self }
    }

    func close() async { try? await channel.close() }

    func answer(_ head: HTTPRequestHead) -> (HTTPResponseStatus, HTTPHeaders, String) {
        let auth = head.headers.first(name: "Authorization") ?? ""
        requests.withLock { $0.append("\(head.uri) \(auth)") }
        let basic = "Basic " + Data("alice:s3cret".utf8).base64EncodedString()
        if head.uri.hasPrefix("/token") {
            guard auth == basic, head.uri.contains("scope=repository:team/app:pull"), head.uri.contains("service=fake") else {
                return (.unauthorized, [:], "{}")
            }
            return (.ok, ["Content-Type": "application/json"], #"{"token":"tok-1","expires_in":300}"#)
        }
        switch mode {
        case .anonymous: break
        case .bearer where auth == "Bearer tok-1": break
        case .basic where auth == basic: break
        case .bearer:
            return (.unauthorized, ["WWW-Authenticate": #"Bearer realm="http://127.0.0.1:\#(port)/token",service="fake",scope="repository:team/app:pull""#], "{}")
        case .basic:
            return (.unauthorized, ["WWW-Authenticate": #"Basic realm="fake""#], "{}")
        }
        return (.ok, ["Content-Type": "text/plain"], "hello")
    }

    final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart
        let answer: @Sendable (HTTPRequestHead) -> (HTTPResponseStatus, HTTPHeaders, String)
        init(answer: @escaping @Sendable (HTTPRequestHead) -> (HTTPResponseStatus, HTTPHeaders, String)) { self.answer = answer }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard case .head(let head) = unwrapInboundIn(data) else { return }
            let (status, extra, body) = answer(head)
            var headers = extra
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}

@Suite struct TokenFlowTests {
    let credentials = UpstreamCredentials(username: "alice", password: "s3cret")

    func fetch(_ client: OCIUpstreamClient, _ registry: FakeRegistry, credentials: UpstreamCredentials?) async throws -> String {
        let r = try await client.get(UpstreamEndpoint(scheme: "http", authority: "127.0.0.1:\(registry.port)"), path: "/v2/team/app/manifests/v1",
                                     scope: "repository:team/app:pull", credentials: credentials)
        return String(buffer: try await r.body.collect(upTo: 1024))
    }

    @Test func anonymousUpstreamNeedsNoCredentials() async throws {
        let registry = try await FakeRegistry(.anonymous)
        defer { Task { await registry.close() } }
        let client = OCIUpstreamClient(allowInsecure: true)
        #expect(try await fetch(client, registry, credentials: nil) == "hello")
        #expect(registry.requests.withLock { $0 } == ["/v2/team/app/manifests/v1 "])
    }

    @Test func bearerTokenFromTheChallengeRealmIsFetchedOnceAndReused() async throws {
        let registry = try await FakeRegistry(.bearer)
        defer { Task { await registry.close() } }
        let client = OCIUpstreamClient(allowInsecure: true)
        #expect(try await fetch(client, registry, credentials: credentials) == "hello")
        #expect(try await fetch(client, registry, credentials: credentials) == "hello")
        let seen = registry.requests.withLock { $0 }
        // Anonymous try, token (Basic-authenticated), retry with the token; then straight with the cached token.
        #expect(seen.count == 4)
        #expect(seen.filter { $0.hasPrefix("/token") }.count == 1)
        #expect(seen.last == "/v2/team/app/manifests/v1 Bearer tok-1")
    }

    @Test func wrongCredentialsAreRefusedAsUnauthorized() async throws {
        let registry = try await FakeRegistry(.bearer)
        defer { Task { await registry.close() } }
        let client = OCIUpstreamClient(allowInsecure: true)
        await #expect(throws: UpstreamError.self) {
            _ = try await fetch(client, registry, credentials: UpstreamCredentials(username: "alice", password: "wrong"))
        }
    }

    @Test func basicChallengeIsAnsweredAndRemembered() async throws {
        let registry = try await FakeRegistry(.basic)
        defer { Task { await registry.close() } }
        let client = OCIUpstreamClient(allowInsecure: true)
        #expect(try await fetch(client, registry, credentials: credentials) == "hello")
        #expect(try await fetch(client, registry, credentials: credentials) == "hello")
        #expect(registry.requests.withLock { $0 }.count == 3)
        await #expect(throws: UpstreamError.unauthorized("the upstream requires credentials")) {
            _ = try await fetch(OCIUpstreamClient(allowInsecure: true), registry, credentials: nil)
        }
    }

    @Test func plainHTTPNeedsTheInsecureSetting() async throws {
        let client = OCIUpstreamClient(allowInsecure: false)
        await #expect(throws: UpstreamError.insecureRefused) {
            _ = try await client.get(UpstreamEndpoint(scheme: "http", authority: "127.0.0.1:1"), path: "/v2/", scope: "x", credentials: nil)
        }
    }

    @Test func unreachableUpstreamIsUnavailable() async throws {
        let client = OCIUpstreamClient(allowInsecure: true)
        do {
            _ = try await client.get(UpstreamEndpoint(scheme: "http", authority: "127.0.0.1:1"), path: "/v2/", scope: "x", credentials: nil)
            Issue.record("expected a failure")
        } catch {
            #expect(error.isUnavailable)
        }
    }
}
