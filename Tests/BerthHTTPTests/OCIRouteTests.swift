import BerthCore
import BerthHTTP
import Testing

@Suite struct OCIRouteTests {
    let d = "sha256:" + String(repeating: "a", count: 64)

    @Test func parsesEveryEndpoint() throws {
        let n = try RepositoryName("library/debian")
        #expect(try OCIRoute.parse(path: "/v2/") == .base)
        #expect(try OCIRoute.parse(path: "/v2") == .base)
        #expect(try OCIRoute.parse(path: "/v2/_catalog") == .catalog)
        #expect(try OCIRoute.parse(path: "/v2/library/debian/tags/list") == .tags(n))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/manifests/latest") == .manifest(n, "latest"))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/blobs/\(d)") == .blob(n, d))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/blobs/uploads/") == .uploads(n))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/blobs/uploads") == .uploads(n))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/blobs/uploads/abc-1") == .upload(n, "abc-1"))
        #expect(try OCIRoute.parse(path: "/v2/library/debian/referrers/\(d)") == .referrers(n, d))
    }

    @Test func namesMayContainKeywords() throws {
        #expect(try OCIRoute.parse(path: "/v2/blobs/manifests/manifests/x") == .manifest(try RepositoryName("blobs/manifests"), "x"))
        #expect(try OCIRoute.parse(path: "/v2/tags/list/tags/list") == .tags(try RepositoryName("tags/list")))
    }

    @Test(arguments: ["/v2/../etc/manifests/x", "/v2/a%2Fb/manifests/x", "/v2/UPPER/manifests/x", "/v2/a//b/manifests/x",
                      "/v2/./ab/blobs/uploads/", "/v2/a/tags/list"])
    func refusesInvalidNames(_ path: String) {
        #expect(throws: BerthError.self) { try OCIRoute.parse(path: path) }
    }

    @Test func unknownPathsAreNotRoutes() throws {
        #expect(try OCIRoute.parse(path: "/v3/x") == nil)
        #expect(try OCIRoute.parse(path: "/v2x") == nil)
        #expect(try OCIRoute.parse(path: "/v2/ab") == nil)
        #expect(try OCIRoute.parse(path: "/v2/ab/unknown/x") == nil)
    }
}

@Suite struct OCIErrorTableTests {
    @Test func statusesFollowTheSpec() {
        #expect(OCIWireError(.digestInvalid("x")).status.code == 400)
        #expect(OCIWireError(.digestInvalid("x")).code == "DIGEST_INVALID")
        #expect(OCIWireError(.digestMismatch(expected: "a", computed: "b")).code == "DIGEST_INVALID")
        #expect(OCIWireError(.blobUnknown("x")).status.code == 404)
        #expect(OCIWireError(.blobUploadUnknown("x")).code == "BLOB_UPLOAD_UNKNOWN")
        #expect(OCIWireError(.rangeNotSatisfiable(offset: 1, detail: "")).status.code == 416)
        #expect(OCIWireError(.manifestBlobUnknown("x")).status.code == 400)
        #expect(OCIWireError(.manifestUnknown("x")).status.code == 404)
        #expect(OCIWireError(.nameUnknown("x")).code == "NAME_UNKNOWN")
        #expect(OCIWireError(.nameInvalid("x")).status.code == 400)
        #expect(OCIWireError(.sizeInvalid("x")).code == "SIZE_INVALID")
        #expect(OCIWireError(.unsupported("x")).code == "UNSUPPORTED")
        #expect(OCIWireError(.denied("x")).status.code == 403)
        #expect(OCIWireError(.unauthorized("x")).status.code == 401)
        let json = String(decoding: OCIWireError(.blobUnknown("sha256:x")).json, as: UTF8.self)
        #expect(json.contains(#""code":"BLOB_UNKNOWN""#))
    }

    /// docker prints `<code>: <message>`; these messages read as Amazon ECR's, the codes stay the spec's.
    @Test func messagesReadAsECRs() {
        let immutable = OCIWireError(.tagImmutable("v1"), registryID: "123456789012", repository: "team/app")
        #expect(immutable.code == "TAG_INVALID")
        #expect(immutable.message == "The image tag 'v1' already exists in the 'team/app' repository and cannot be overwritten because the tag is immutable.")
        let unknown = OCIWireError(.nameUnknown("team/app"), registryID: "123456789012", repository: "team/app")
        #expect(unknown.code == "NAME_UNKNOWN")
        #expect(unknown.message == "The repository with name 'team/app' does not exist in the registry with id '123456789012'")
        let iam = "User: arn:aws:iam::123456789012:user/r is not authorized to perform: ecr:InitiateLayerUpload on resource: "
            + "arn:aws:ecr:us-east-1:123456789012:repository/team/app because no identity-based policy allows the ecr:InitiateLayerUpload action"
        let denied = OCIWireError(.denied(iam), registryID: "123456789012", repository: "team/app")
        #expect(denied.code == "DENIED")
        #expect(denied.message == iam)
        // Without the request's scope, the error's own description.
        #expect(OCIWireError(.tagImmutable("v1")).message == "tag is immutable: v1")
    }
}

@Suite struct OCIRouteDifferentialTests {
    /// The byte-wise parser against the segment-array parser it replaced, on paths built from the
    /// pieces that matter (keywords, names, empty segments, trailing slashes).
    @Test func agreesWithTheSegmentParserItReplaced() throws {
        let pieces = ["", "a", "ab", "library", "blobs", "uploads", "tags", "list", "manifests", "referrers", "_catalog",
                      "v2", "UP", "a..b", "x-y", "sha256:\(String(repeating: "a", count: 64))"]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            var path = ["/v2", "/v2/", "/v2x/", "/v3/", "/"].randomElement(using: &rng)!
            for k in 0..<Int.random(in: 0...5, using: &rng) {
                if k > 0 { path += "/" }
                path += pieces.randomElement(using: &rng)!
            }
            if Bool.random(using: &rng) { path += "/" }
            let new = Result { () throws(BerthError) in try OCIRoute.parse(path: path) }
            let old = Result { () throws(BerthError) in try Self.reference(path: path) }
            switch (new, old) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(path)")
            case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", "\(path)")
            default: Issue.record("\(path): \(new) vs \(old)")
            }
        }
    }

    static func reference(path rawPath: String) throws(BerthError) -> OCIRoute? {
        guard rawPath.hasPrefix("/v2") else { return nil }
        var rest = rawPath.dropFirst(3)
        if rest.isEmpty || rest == "/" { return .base }
        guard rest.first == "/" else { return nil }
        rest = rest.dropFirst()
        if rest == "_catalog" { return .catalog }
        // Substrings of the path: no copies but the name and the last segment.
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        // A trailing slash (".../uploads/") yields an empty last element.
        let trailingSlash = parts.last?.isEmpty == true
        if trailingSlash { parts.removeLast() }
        guard parts.count >= 2 else { return nil }
        func name(_ count: Int) throws(BerthError) -> RepositoryName {
            // The first `count` segments with their slashes, as they are in the path.
            // Percent-encoding is never valid in a name; refuse it rather than decode it
            // (an encoded slash or dot segment must not sneak past the grammar).
            try RepositoryName(rest[rest.startIndex..<parts[count - 1].endIndex])
        }
        let n = parts.count
        if n >= 3, parts[n - 2] == "tags", parts[n - 1] == "list", !trailingSlash {
            return .tags(try name(n - 2))
        }
        if n >= 3, parts[n - 2] == "blobs", parts[n - 1] == "uploads" {
            return .uploads(try name(n - 2))
        }
        if n >= 4, parts[n - 3] == "blobs", parts[n - 2] == "uploads", !trailingSlash {
            return .upload(try name(n - 3), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "manifests", !trailingSlash {
            return .manifest(try name(n - 2), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "blobs", !trailingSlash {
            return .blob(try name(n - 2), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "referrers", !trailingSlash {
            return .referrers(try name(n - 2), String(parts[n - 1]))
        }
        return nil
    }

}

@Suite struct RegistryHostTests {
    @Test(arguments: [
        ("123456789012.dkr.ecr.us-east-1.example.com:5000", "123456789012"),
        ("123456789012.dkr.ecr.", "123456789012"),
        ("123456789012.dkr.ecr", nil),
        ("12345678901a.dkr.ecr.us-east-1.example.com", nil),
        ("1234567890123.dkr.ecr.us-east-1.example.com", nil),
        ("123456789012.dkr.ecs.us-east-1.example.com", nil),
        ("127.0.0.1:5000", nil),
        ("", nil),
    ] as [(String, String?)])
    func accountFromHost(host: String, account: String?) {
        #expect(OCIHandler.registryID(fromHost: host) == account)
    }

    @Test func noHostNoAccount() {
        #expect(OCIHandler.registryID(fromHost: nil) == nil)
    }
}
