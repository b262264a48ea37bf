import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthSupport
import Foundation
import Testing

@Suite struct ECRLifecycleTests {
    let account = "123456789012"
    var root: Principal { Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT") }
    static let policy = #"{"rules":[{"rulePriority":1,"description":"keep the newest untagged image","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#

    func service() -> (ECRService, Registry, ManualWallClock) {
        let clock = ManualWallClock()
        let registry = Registry.inMemory(clock: clock)
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "127.0.0.1:5000/\($1)" }, proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        return (ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: clock), registry, clock)
    }

    func call(_ s: ECRService, _ op: String, _ body: JSONValue) async -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: ECRService.targetPrefix + op, body: body.encoded(), principal: root)
        return (r.status, (try? JSONValue.parseObject(r.body)) ?? [:])
    }

    /// Uploads a blob with the layer operations.
    func pushBlob(_ s: ECRService, _ repo: String, _ bytes: [UInt8]) async throws -> Digest {
        let started = await call(s, "InitiateLayerUpload", ["repositoryName": .string(repo)])
        guard case .string(let id)? = started.1["uploadId"] else { throw BerthError.internalError("no uploadId") }
        _ = await call(s, "UploadLayerPart", ["repositoryName": .string(repo), "uploadId": .string(id), "partFirstByte": 0,
                                              "partLastByte": .int(Int64(bytes.count - 1)),
                                              "layerPartBlob": .string(Data(bytes).base64EncodedString())])
        let digest = Digest.sha256(of: bytes)
        _ = await call(s, "CompleteLayerUpload", ["repositoryName": .string(repo), "uploadId": .string(id), "layerDigests": [.string(digest.description)]])
        return digest
    }

    /// Pushes `n` untagged images one second apart with PutImage; their digests, oldest first.
    func push(_ s: ECRService, _ clock: ManualWallClock, _ repo: String, _ n: Int) async throws -> [Digest] {
        let config = try await pushBlob(s, repo, Array("{}".utf8))
        var out: [Digest] = []
        for i in 0..<n {
            let layer = try await pushBlob(s, repo, Array("layer \(i)".utf8))
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":2},
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":\("layer \(i)".utf8.count)}]}
                """
            clock.advance(by: 1)
            let (status, body) = await call(s, "PutImage", ["repositoryName": .string(repo), "imageManifest": .string(manifest)])
            #expect(status == 200, "\(body)")
            out.append(Digest.sha256(of: Array(manifest.utf8)))
        }
        return out
    }

    /// Allows everything but `denied`, and records every action it is asked about.
    final class RecordingAuthorizer: Authorizer, @unchecked Sendable {
        let denied: String?
        let lock = NSLock()
        var actions: [String] = []
        init(denying denied: String? = nil) { self.denied = denied }
        func authorize(_ principal: Principal, action: String, resource: String) async throws {
            lock.withLock { actions.append(action) }
            if action == denied { throw BerthError.denied("not allowed: \(action)") }
        }
    }

    @Test func eachOperationAuthorizesItsAction() async throws {
        for op in ["PutLifecyclePolicy", "GetLifecyclePolicy", "DeleteLifecyclePolicy", "StartLifecyclePolicyPreview", "GetLifecyclePolicyPreview"] {
            let (open, registry, _) = service()
            _ = await call(open, "CreateRepository", ["repositoryName": "app"])
            _ = await call(open, "PutLifecyclePolicy", ["repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
            _ = await call(open, "StartLifecyclePolicyPreview", ["repositoryName": "app"])
            let authorizer = RecordingAuthorizer(denying: "ecr:\(op)")
            let guarded = ECRService(registry: registry, authorizer: authorizer, environment: open.env, clock: open.clock)
            let (status, body) = await call(guarded, op, ["repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
            #expect(status == 400 && body["__type"] == "AccessDeniedException", "\(op): \(status) \(body)")
            #expect(authorizer.lock.withLock { authorizer.actions } == ["ecr:\(op)"])
        }
        // a refused delete deleted nothing
        let (open, registry, _) = service()
        _ = await call(open, "CreateRepository", ["repositoryName": "app"])
        _ = await call(open, "PutLifecyclePolicy", ["repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
        let guarded = ECRService(registry: registry, authorizer: RecordingAuthorizer(denying: "ecr:DeleteLifecyclePolicy"),
                                 environment: open.env, clock: open.clock)
        _ = await call(guarded, "DeleteLifecyclePolicy", ["repositoryName": "app"])
        #expect(await call(open, "GetLifecyclePolicy", ["repositoryName": "app"]).0 == 200)
    }

    @Test func putGetDelete() async throws {
        let (s, _, _) = service()
        #expect(await call(s, "CreateRepository", ["repositoryName": "app"]).0 == 200)
        let (status, missing) = await call(s, "GetLifecyclePolicy", ["repositoryName": "app"])
        #expect(status == 400)
        #expect(missing["__type"] == "LifecyclePolicyNotFoundException")
        #expect(missing["message"] == .string("Lifecycle policy does not exist for the repository with name 'app' in the registry with id '\(account)'"))
        let put = await call(s, "PutLifecyclePolicy", ["repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
        #expect(put.0 == 200)
        #expect(put.1 == ["registryId": .string(account), "repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
        let got = await call(s, "GetLifecyclePolicy", ["repositoryName": "app"])
        #expect(got.1["lifecyclePolicyText"] == .string(Self.policy))
        #expect(got.1["lastEvaluatedAt"] == nil)
        let deleted = await call(s, "DeleteLifecyclePolicy", ["repositoryName": "app"])
        #expect(deleted.1["lifecyclePolicyText"] == .string(Self.policy))
        #expect(await call(s, "DeleteLifecyclePolicy", ["repositoryName": "app"]).1["__type"] == "LifecyclePolicyNotFoundException")
        #expect(await call(s, "GetLifecyclePolicy", ["repositoryName": "nope"]).1["__type"] == "RepositoryNotFoundException")
    }

    @Test(arguments: [
        (String(repeating: " ", count: 98) + "{", "1 validation error detected: Value at 'lifecyclePolicyText' failed to satisfy constraint: Member must have length greater than or equal to 100"),
        (#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
         "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: tagPrefixList or tagPatternList must be specified when tagStatus is 'tagged''"),
    ])
    func invalidPolicies(_ text: String, _ message: String) async {
        let (s, _, _) = service()
        _ = await call(s, "CreateRepository", ["repositoryName": "app"])
        let (status, body) = await call(s, "PutLifecyclePolicy", ["repositoryName": "app", "lifecyclePolicyText": .string(text)])
        #expect(status == 400)
        #expect(body["__type"] == "InvalidParameterException")
        #expect(body["message"] == .string(message))
    }

    @Test func previewPagesAndFilters() async throws {
        let (s, registry, clock) = service()
        _ = await call(s, "CreateRepository", ["repositoryName": "app"])
        #expect(await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app"]).1["__type"] == "LifecyclePolicyPreviewNotFoundException")
        #expect(await call(s, "StartLifecyclePolicyPreview", ["repositoryName": "app"]).1["__type"] == "LifecyclePolicyNotFoundException")
        let digests = try await push(s, clock, "app", 4)
        let started = await call(s, "StartLifecyclePolicyPreview", ["repositoryName": "app", "lifecyclePolicyText": .string(Self.policy)])
        #expect(started.1["status"] == "IN_PROGRESS")
        let all = await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app"])
        #expect(all.1["status"] == "COMPLETE")
        guard case .array(let results)? = all.1["previewResults"] else { Issue.record("no previewResults"); return }
        #expect(results.count == 3)
        #expect(results.first == ["imageDigest": .string(digests[0].description), "imagePushedAt": .int(Int64(clock.now() - 3)),
                                  "action": ["type": "EXPIRE"], "appliedRulePriority": 1, "storageClass": "STANDARD"])
        #expect(all.1["summary"] == ["expiringImageTotalCount": 3, "transitioningImageTotalCounts": []])
        let page1 = await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app", "maxResults": 2])
        #expect(page1.1["previewResults"].map { if case .array(let a) = $0 { a.count } else { 0 } } == 2)
        guard case .string(let token)? = page1.1["nextToken"] else { Issue.record("no nextToken"); return }
        let page2 = await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app", "maxResults": 2, "nextToken": .string(token)])
        #expect(page2.1["previewResults"] == [results[2]])
        #expect(page2.1["nextToken"] == nil)
        let tagged = await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app", "filter": ["tagStatus": "TAGGED"]])
        #expect(tagged.1["previewResults"] == [])
        let byID = await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app", "imageIds": [["imageDigest": .string(digests[1].description)]]])
        #expect(byID.1["previewResults"] == [results[1]])
        #expect(await call(s, "GetLifecyclePolicyPreview", ["repositoryName": "app", "maxResults": 101]).1["__type"] == "InvalidParameterException")
        // the preview expired nothing
        #expect(try await registry.images(in: RepositoryKey(registryID: account, name: try RepositoryName("app")), after: nil, limit: 10).count == 4)
    }
}
