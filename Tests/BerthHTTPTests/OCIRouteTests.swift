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
