import BerthApp
import BerthCore
import BerthStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Drives the real application (router and handlers) on in-memory storage.
@Suite struct OCIHTTPTests {
    /// The application on in-memory storage, and a registry token of its root key as a Basic header.
    func app() async throws -> (some ApplicationProtocol, String) {
        var config = BerthConfiguration()
        config.metadataBackend = "memory"
        config.blobBackend = "memory"
        config.rootAccessKeyId = "AKIAIOSFODNN7EXAMPLE"
        config.rootSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        let services = try BerthServices.make(
            config, storage: StorageBackends(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore()))
        try await services.bootstrap(logger: Logger(label: "test"))
        let root = Principal(accountID: config.accountId, arn: Principal.rootARN(config.accountId), accessKeyID: "AKIAIOSFODNN7EXAMPLE")
        let token = try services.identity.issueToken(for: root, now: services.clock.now()).token
        return (buildApplication(services), "Basic " + Data("AWS:\(token)".utf8).base64EncodedString())
    }

    static let digestHeader = HTTPField.Name("Docker-Content-Digest")!

    func sha(_ s: String) -> String { Digest.sha256(of: Array(s.utf8)).description }

    func errorCode(_ r: TestResponse) -> String? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(buffer: r.body)) as? [String: Any],
              let errs = obj["errors"] as? [[String: Any]] else { return nil }
        return errs.first?["code"] as? String
    }

    @Test func baseAndHealth() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            try await client.execute(uri: "/v2/", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .ok)
                #expect(r.headers[HTTPField.Name("Docker-Distribution-API-Version")!] == "registry/2.0")
            }
            try await client.execute(uri: "/healthz", method: .get, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
        }
    }

    @Test func everyRequestNeedsAToken() async throws {
        let (app, _) = try await app()
        try await app.test(.router) { client in
            for uri in ["/v2/", "/v2/rr/tags/list", "/v2/_catalog", "/v2/rr/manifests/latest"] {
                try await client.execute(uri: uri, method: .get) { r in
                    #expect(r.status == .unauthorized)
                    #expect(r.headers[.wwwAuthenticate]?.hasPrefix("Basic realm=") == true)
                    #expect(self.errorCode(r) == "UNAUTHORIZED")
                }
            }
            try await client.execute(uri: "/v2/", method: .get, headers: [.authorization: "Basic QVdTOmdhcmJhZ2U="]) { r in
                #expect(r.status == .unauthorized)
            }
        }
    }

    @Test func blobLifecycle() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            let d = sha("payload")
            try await client.execute(uri: "/v2/r1/blobs/uploads/?digest=\(d)", method: .post, headers: [.authorization: auth], body: ByteBuffer(string: "payload")) { r in
                #expect(r.status == .created)
                #expect(r.headers[.location] == "/v2/r1/blobs/\(d)")
            }
            try await client.execute(uri: "/v2/r1/blobs/\(d)", method: .head, headers: [.authorization: auth]) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentLength] == "7")
                #expect(r.headers[Self.digestHeader] == d)
            }
            try await client.execute(uri: "/v2/r1/blobs/\(d)", method: .get, headers: [.authorization: auth, .range: "bytes=1-3"]) { r in
                #expect(r.status == .partialContent)
                #expect(String(buffer: r.body) == "ayl")
                #expect(r.headers[.contentRange] == "bytes 1-3/7")
            }
            try await client.execute(uri: "/v2/r1/blobs/\(d)", method: .get, headers: [.authorization: auth, .range: "bytes=50-"]) { r in
                #expect(r.status == .rangeNotSatisfiable)
            }
            try await client.execute(uri: "/v2/r1/blobs/\(d)", method: .delete, headers: [.authorization: auth]) { r in #expect(r.status == .accepted) }
            try await client.execute(uri: "/v2/r1/blobs/\(d)", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .notFound)
                #expect(self.errorCode(r) == "BLOB_UNKNOWN")
            }
        }
    }

    @Test func chunkedUploadOverHTTP() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            let location = try await client.execute(uri: "/v2/r2/blobs/uploads/", method: .post, headers: [.authorization: auth]) { r in
                #expect(r.status == .accepted)
                #expect(r.headers[HTTPField.Name("Range")!] == "0-0")
                return r.headers[.location] ?? ""
            }
            try await client.execute(uri: location, method: .patch, headers: [.authorization: auth, .contentRange: "0-3", .contentLength: "4"],
                                     body: ByteBuffer(string: "abcd")) { r in
                #expect(r.status == .accepted)
                #expect(r.headers[HTTPField.Name("Range")!] == "0-3")
            }
            try await client.execute(uri: location, method: .patch, headers: [.authorization: auth, .contentRange: "2-5", .contentLength: "4"],
                                     body: ByteBuffer(string: "cdef")) { r in
                #expect(r.status == .rangeNotSatisfiable)
                #expect(r.headers[HTTPField.Name("Range")!] == "0-3")
            }
            // A Content-Range the door cannot read is 416 with the upload's Range, like a misplaced chunk.
            for bad in ["garbage", "5-2", "bytes=x-y"] {
                try await client.execute(uri: location, method: .patch, headers: [.authorization: auth, .contentRange: bad, .contentLength: "2"],
                                         body: ByteBuffer(string: "ef")) { r in
                    #expect(r.status == .rangeNotSatisfiable, "\(bad)")
                    #expect(r.headers[HTTPField.Name("Range")!] == "0-3")
                    #expect(self.errorCode(r) == "BLOB_UPLOAD_INVALID")
                }
            }
            try await client.execute(uri: "/v2/r2/blobs/uploads/00000000-0000-0000-0000-000000000000", method: .patch,
                                     headers: [.authorization: auth, .contentRange: "garbage"], body: ByteBuffer(string: "ef")) { r in
                #expect(r.status == .notFound, "an unknown upload is reported before a bad header")
                #expect(self.errorCode(r) == "BLOB_UPLOAD_UNKNOWN")
            }
            try await client.execute(uri: location, method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .noContent)
                #expect(r.headers[HTTPField.Name("Range")!] == "0-3")
            }
            try await client.execute(uri: location + "?digest=\(self.sha("abcdef"))", method: .put, headers: [.authorization: auth], body: ByteBuffer(string: "ef")) { r in
                #expect(r.status == .created)
                #expect(r.headers[Self.digestHeader] == self.sha("abcdef"))
            }
            try await client.execute(uri: location, method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .notFound)
                #expect(self.errorCode(r) == "BLOB_UPLOAD_UNKNOWN")
            }
        }
    }

    @Test func manifestsTagsAndReferrers() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            for s in ["cfg", "layer"] {
                try await client.execute(uri: "/v2/app/blobs/uploads/?digest=\(self.sha(s))", method: .post, headers: [.authorization: auth], body: ByteBuffer(string: s)) { _ in }
            }
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(self.sha("cfg"))","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(self.sha("layer"))","size":5}]}
                """
            let md = self.sha(manifest)
            try await client.execute(uri: "/v2/app/manifests/v1", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: manifest)) { r in
                #expect(r.status == .created)
                #expect(r.headers[Self.digestHeader] == md)
            }
            try await client.execute(uri: "/v2/app/manifests/v1", method: .get, headers: [.authorization: auth]) { r in
                #expect(String(buffer: r.body) == manifest)
                #expect(r.headers[.contentType] == MediaType.ociManifest)
            }
            let sig = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/x.sig","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(self.sha("cfg"))","size":3},"layers":[],"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(md)","size":\(manifest.utf8.count)}}
                """
            try await client.execute(uri: "/v2/app/manifests/\(self.sha(sig))", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: sig)) { r in
                #expect(r.status == .created)
                #expect(r.headers[HTTPField.Name("OCI-Subject")!] == md)
            }
            try await client.execute(uri: "/v2/app/referrers/\(md)?artifactType=application/x.sig", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .ok)
                #expect(r.headers[HTTPField.Name("OCI-Filters-Applied")!] == "artifactType")
                #expect(String(buffer: r.body).contains(self.sha(sig)))
            }
            try await client.execute(uri: "/v2/app/referrers/\(self.sha("nothing"))", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains(#""manifests":[]"#))
            }
            try await client.execute(uri: "/v2/app/tags/list?n=1", method: .get, headers: [.authorization: auth]) { r in
                #expect(String(buffer: r.body) == #"{"name":"app","tags":["v1"]}"#)
            }
            try await client.execute(uri: "/v2/app/manifests/v2", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: manifest)) { _ in }
            try await client.execute(uri: "/v2/app/tags/list?n=1", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.headers[HTTPField.Name("Link")!] == #"</v2/app/tags/list?n=1&last=v1>; rel="next""#)
            }
            try await client.execute(uri: "/v2/app/manifests/v1", method: .delete, headers: [.authorization: auth]) { r in #expect(r.status == .accepted) }
            try await client.execute(uri: "/v2/app/manifests/v1", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .notFound)
                #expect(self.errorCode(r) == "MANIFEST_UNKNOWN")
            }
            try await client.execute(uri: "/v2/app/manifests/v2", method: .head, headers: [.authorization: auth]) { r in #expect(r.status == .ok) }
        }
    }

    /// DELETE of a manifest an index in the repository lists is refused (409 DENIED), as ECR's
    /// BatchDeleteImage refuses it; once the index is gone, the manifest can be deleted.
    @Test func aManifestAnIndexListsCannotBeDeleted() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            for s in ["cfg", "layer"] {
                try await client.execute(uri: "/v2/idx/blobs/uploads/?digest=\(self.sha(s))", method: .post, headers: [.authorization: auth], body: ByteBuffer(string: s)) { _ in }
            }
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(self.sha("cfg"))","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(self.sha("layer"))","size":5}]}
                """
            let index = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(self.sha(manifest))","size":\(manifest.utf8.count)}]}
                """
            try await client.execute(uri: "/v2/idx/manifests/\(self.sha(manifest))", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: manifest)) { r in #expect(r.status == .created) }
            try await client.execute(uri: "/v2/idx/manifests/list", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociIndex],
                                     body: ByteBuffer(string: index)) { r in #expect(r.status == .created) }
            try await client.execute(uri: "/v2/idx/manifests/\(self.sha(manifest))", method: .delete, headers: [.authorization: auth]) { r in
                #expect(r.status == .conflict)
                #expect(self.errorCode(r) == "DENIED")
            }
            try await client.execute(uri: "/v2/idx/manifests/\(self.sha(manifest))", method: .head, headers: [.authorization: auth]) { r in
                #expect(r.status == .ok, "the refused delete kept the manifest")
            }
            try await client.execute(uri: "/v2/idx/manifests/\(self.sha(index))", method: .delete, headers: [.authorization: auth]) { r in
                #expect(r.status == .accepted)
            }
            try await client.execute(uri: "/v2/idx/manifests/\(self.sha(manifest))", method: .delete, headers: [.authorization: auth]) { r in
                #expect(r.status == .accepted)
            }
        }
    }

    @Test func badInputGetsSpecErrorsNever500() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            let cases: [(String, HTTPRequest.Method, String?, String)] = [
                ("/v2/rr/blobs/sha256:xyz", .get, nil, "DIGEST_INVALID"),
                ("/v2/rr/blobs/uploads/?digest=sha256:zz", .post, "x", "DIGEST_INVALID"),
                ("/v2/rr/blobs/uploads/?digest=\(self.sha("other"))", .post, "x", "DIGEST_INVALID"),
                ("/v2/rr/blobs/uploads/no-such-upload", .patch, "x", "BLOB_UPLOAD_UNKNOWN"),
                ("/v2/rr/blobs/uploads/no-such-upload", .put, nil, "DIGEST_INVALID"),
                ("/v2/Bad/manifests/x", .get, nil, "NAME_INVALID"),
                ("/v2/a%2Fb/manifests/x", .get, nil, "NAME_INVALID"),
                ("/v2/rr/manifests/v1", .put, "{not json", "MANIFEST_INVALID"),
                ("/v2/rr/manifests/v1", .put, #"{"schemaVersion":1,"fsLayers":[]}"#, "MANIFEST_INVALID"),
                ("/v2/rr/manifests/bad:tag", .put, "{}", "DIGEST_INVALID"),
                ("/v2/nope/tags/list", .get, nil, "NAME_UNKNOWN"),
                ("/v2/_catalog?n=-2", .get, nil, "PAGINATION_NUMBER_INVALID"),
            ]
            for (uri, method, body, code) in cases {
                try await client.execute(uri: uri, method: method, headers: [.authorization: auth], body: body.map { ByteBuffer(string: $0) }) { r in
                    #expect(r.status.code >= 400 && r.status.code < 500, "\(method) \(uri) → \(r.status)")
                    #expect(self.errorCode(r) == code, "\(method) \(uri)")
                }
            }
        }
    }

    /// distribution-spec v1.1.1 conformance ("GET/HEAD nonexistent manifest should return 404") asks for
    /// `.INVALID_MANIFEST_NAME`: a reference that is no legal tag names nothing on read (and DELETE) paths,
    /// while a PUT under it is refused as TAG_INVALID.
    @Test func invalidTagReferenceIsUnknownOnReadButInvalidOnPut() async throws {
        let (app, auth) = try await app()
        try await app.test(.router) { client in
            try await client.execute(uri: "/v2/inv/blobs/uploads/?digest=\(self.sha("x"))", method: .post, headers: [.authorization: auth],
                                     body: ByteBuffer(string: "x")) { r in #expect(r.status == .created) }
            for ref in [".INVALID_MANIFEST_NAME", "-dash", String(repeating: "t", count: 129)] {
                for method in [HTTPRequest.Method.get, .head, .delete] {
                    try await client.execute(uri: "/v2/inv/manifests/\(ref)", method: method, headers: [.authorization: auth]) { r in
                        #expect(r.status == .notFound, "\(method) \(ref)")
                        if method != .head { #expect(self.errorCode(r) == "MANIFEST_UNKNOWN", "\(method) \(ref)") }
                    }
                }
                try await client.execute(uri: "/v2/inv/manifests/\(ref)", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                         body: ByteBuffer(string: "{}")) { r in
                    #expect(r.status == .badRequest)
                    #expect(self.errorCode(r) == "TAG_INVALID")
                }
            }
            // In a repository that does not exist, the repository is what is unknown.
            try await client.execute(uri: "/v2/nothere/manifests/.INVALID_MANIFEST_NAME", method: .get, headers: [.authorization: auth]) { r in
                #expect(r.status == .notFound)
                #expect(self.errorCode(r) == "NAME_UNKNOWN")
            }
        }
    }
}
