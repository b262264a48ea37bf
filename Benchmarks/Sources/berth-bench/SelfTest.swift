import ArgumentParser
import AsyncHTTPClient
import NIOCore

/// Offline checks of the protocol helpers (URL resolution, query building, Link parsing, payload slicing).
/// Hidden from help; run with `berth-bench self-test`.
struct SelfTest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "self-test", abstract: "Offline checks of the client's protocol helpers.", shouldDisplay: false)

    func run() async throws {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = client.shutdown() as EventLoopFuture<Void> }
        let reg = try Registry(client: client, baseURL: "http://127.0.0.1:5000/")
        var passed = 0
        var failed = 0
        func check(_ name: String, _ got: String?, _ want: String?) {
            if got == want { passed += 1 } else { failed += 1; print("FAIL \(name): got \(got ?? "nil"), want \(want ?? "nil")") }
        }
        let req = "http://127.0.0.1:5000/v2/a/b/blobs/uploads/"
        check("base", reg.base, "http://127.0.0.1:5000")
        check("origin", reg.origin, "http://127.0.0.1:5000")
        check("absolute", reg.resolve("http://other:1/x?y=1", against: req), "http://other:1/x?y=1")
        check("abs-path", reg.resolve("/v2/a/b/blobs/uploads/u1?_state=s", against: req), "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?_state=s")
        check("relative", reg.resolve("u1", against: req), "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1")
        check("relative-q", reg.resolve("u2", against: req + "u1?x=1"), "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u2")
        check("query-only", reg.resolve("?n=2", against: req + "u1?x=1"), "http://127.0.0.1:5000/v2/a/b/blobs/uploads/u1?n=2")
        check("scheme-rel", reg.resolve("//h:2/p", against: req), "http://h:2/p")
        check("q-none", Registry.appendQuery("http://h/u", "digest", "sha256:ab"), "http://h/u?digest=sha256:ab")
        check("q-some", Registry.appendQuery("http://h/u?_state=x", "digest", "sha256:ab"), "http://h/u?_state=x&digest=sha256:ab")
        check("q-trailing", Registry.appendQuery("http://h/u?", "digest", "d"), "http://h/u?digest=d")
        check("link", Registry.nextLink("</v2/_catalog?last=b&n=2>; rel=\"next\""), "/v2/_catalog?last=b&n=2")
        check("link-multi", Registry.nextLink("<http://h/p1>; rel=\"prev\", <http://h/p3>; rel=\"next\""), "http://h/p3")
        check("link-none", Registry.nextLink("<http://h/p1>; rel=\"prev\""), nil)
        check("link-absent", Registry.nextLink(nil), nil)
        check("basic", try? Registry.basicAuthorization("AWS:abc"), "Basic QVdTOmFiYw==")
        check("basic-colon-in-password", try? Registry.basicAuthorization("u:p:w"), "Basic dTpwOnc=")
        check("basic-empty-password", try? Registry.basicAuthorization("u:"), "Basic dTo=")
        check("basic-no-colon", try? Registry.basicAuthorization("AWS"), nil)
        check("basic-empty-user", try? Registry.basicAuthorization(":pw"), nil)
        check("basic-user", Registry.basicAuthUser("AWS:tok:en"), "AWS")
        check("anonymous", reg.authorization, nil)
        let authed = try Registry(client: client, baseURL: "http://127.0.0.1:5000", authorization: "Basic QVdTOmFiYw==")
        check("authed", authed.authorization, "Basic QVdTOmFiYw==")
        let follow = authed.resolve("/v2/a/b/blobs/uploads/u1?_state=s", against: req)
        check("auth-on-location", authed.request(.PATCH, follow, headers: [("Content-Range", "0-1")]).headers.first(name: "Authorization"), "Basic QVdTOmFiYw==")
        check("auth-on-link", authed.request(.GET, authed.resolve("?n=2&last=x", against: req)).headers.first(name: "Authorization"), "Basic QVdTOmFiYw==")
        check("auth-single", String(authed.request(.GET, req).headers["Authorization"].count), "1")
        check("anonymous-request", reg.request(.GET, req).headers.first(name: "Authorization"), nil)
        check("digest", sha256Digest(Array("abc".utf8)), "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        var rng = Xoshiro256(seed: 1)
        let pool = PayloadPool(maxBlobSize: 1 << 20, slots: 2, rng: &rng)
        let a = pool.blob(slot: 0, size: 1 << 20)
        let b = pool.blob(slot: 1, size: 1 << 20)
        check("slice-size", String(a.readableBytes), String(1 << 20))
        check("slices-differ", String(sha256Digest(a) != sha256Digest(b)), "true")
        check("slice-overlap", String(a.getBytes(at: a.readerIndex + PayloadPool.stride, length: 16) == b.getBytes(at: b.readerIndex, length: 16)), "true")
        func head(_ text: String) -> String {
            guard let (status, length, size) = RawLoad.Connection.parseHead(ByteBuffer(string: text)) else { return "incomplete" }
            return "\(status) \(length.map(String.init) ?? "-") \(size)"
        }
        check("raw-head", head("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nX: y\r\n\r\nbody"), "200 1234 47")
        check("raw-head-case", head("HTTP/1.1 404 Not Found\r\ncontent-LENGTH:7\r\n\r\n"), "404 7 44")
        check("raw-head-none", head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), "200 - 47")
        check("raw-head-partial", head("HTTP/1.1 200 OK\r\nContent-Length: 1"), "incomplete")
        check("raw-head-similar-name", head("HTTP/1.1 200 OK\r\nX-Content-Length: 9\r\n\r\n"), "200 - 40")
        let t = try RawLoad.target(base: "http://127.0.0.1:5002", method: "HEAD", path: "/v2/r/blobs/d", headers: [("A", "b")], expectedLength: 3)
        check("raw-target", "\(t.host) \(t.port) \(t.isHead)", "127.0.0.1 5002 true")
        check("raw-request", String(decoding: t.request, as: UTF8.self),
              "HEAD /v2/r/blobs/d HTTP/1.1\r\nHost: 127.0.0.1:5002\r\nUser-Agent: berth-bench\r\nA: b\r\n\r\n")
        print("\(passed) passed, \(failed) failed")
        if failed > 0 { throw ExitCode.failure }
    }
}
