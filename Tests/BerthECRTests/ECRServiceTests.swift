import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthSupport
import Foundation
import Testing

@Suite struct JSONValueTests {
    @Test func parsesAndEncodes() throws {
        let o = try JSONValue.parseObject(Array(#"{"a":1,"b":[true,null,"x\n\u00e9"],"c":{"d":-2.5e1}}"#.utf8))
        #expect(o["a"] == .int(1))
        #expect(o["b"] == .array([.bool(true), .null, .string("x\né")]))
        #expect(o["c"] == .object(["d": .double(-25)]))
        #expect(String(decoding: JSONValue.object(o).encoded(), as: UTF8.self) == #"{"a":1,"b":[true,null,"x\né"],"c":{"d":-25}}"#)
        #expect(try JSONValue.parseObject([]) == [:])
    }

    @Test(arguments: ["{", "[1]", "\"x\"", "{\"a\":}", "{\"a\":1,}", "{'a':1}", "{\"a\":01x}", "{\"a\":\"\u{01}\"}",
                      String(repeating: "[", count: 200) + String(repeating: "]", count: 200)])
    func refusesMalformed(_ s: String) {
        #expect(throws: ECRError.self) { try JSONValue.parseObject(Array(s.utf8)) }
    }

    /// The writer is also what BerthApp.JSONLogHandler serialises log lines with.
    @Test func stringsEscapeEverythingJSONRequires() throws {
        let out = String(decoding: JSONValue.string("a\"b\\c\nd\re\tf\u{1}g\u{7f}é😀").encoded(), as: UTF8.self)
        #expect(out == #""a\"b\\c\nd\re\tf\u0001g"# + "\u{7f}é😀\"")
        let parsed = try JSONSerialization.jsonObject(with: Data("[\(out)]".utf8)) as? [String]
        #expect(parsed == ["a\"b\\c\nd\re\tf\u{1}g\u{7f}é😀"])
        #expect(String(decoding: JSONValue.object(["time": "t", "level": "info"]).encoded(), as: UTF8.self) == #"{"level":"info","time":"t"}"#)
    }
}

@Suite struct ECRServiceTests {
    let account = "123456789012"
    var root: Principal { Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT") }

    func service() -> ECRService {
        let registry = Registry.inMemory()
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "127.0.0.1:5000/\($1)" }, proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        return ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock())
    }

    func call(_ s: ECRService, _ op: String, _ body: String, as p: Principal? = nil) async -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: ECRService.targetPrefix + op, body: Array(body.utf8), principal: p ?? root)
        return (r.status, (try? JSONValue.parseObject(r.body)) ?? [:])
    }

    @Test func repositoryLifecycle() async throws {
        let s = service()
        var (status, out) = await call(s, "CreateRepository", #"{"repositoryName":"team/app","imageTagMutability":"IMMUTABLE","tags":[{"Key":"k","Value":"v"}]}"#)
        #expect(status == 200)
        guard case .object(let repo)? = out["repository"] else { Issue.record("no repository"); return }
        #expect(repo["repositoryArn"] == "arn:aws:ecr:us-east-1:123456789012:repository/team/app")
        #expect(repo["repositoryUri"] == "127.0.0.1:5000/team/app")
        #expect(repo["imageTagMutability"] == "IMMUTABLE")
        (status, out) = await call(s, "CreateRepository", #"{"repositoryName":"team/app"}"#)
        #expect(status == 400)
        #expect(out["__type"] == "RepositoryAlreadyExistsException")
        (status, out) = await call(s, "ListTagsForResource", #"{"resourceArn":"arn:aws:ecr:us-east-1:123456789012:repository/team/app"}"#)
        #expect(out["tags"] == [["Key": "k", "Value": "v"]])
        (status, out) = await call(s, "DescribeRepositories", #"{"repositoryNames":["nope"]}"#)
        #expect(out["__type"] == "RepositoryNotFoundException")
        (status, out) = await call(s, "DeleteRepository", #"{"repositoryName":"team/app"}"#)
        #expect(status == 200)
    }

    @Test func protocolErrors() async {
        let s = service()
        var (status, out) = await call(s, "NoSuchThing", "{}")
        #expect(out["__type"] == "UnknownOperationException")
        (status, out) = await call(s, "CreateRepository", "{not json")
        #expect(status == 400)
        #expect(out["__type"] == "SerializationException")
        (_, out) = await call(s, "CreateRepository", #"{"repositoryName":5}"#)
        #expect(out["__type"] == "SerializationException")
        (_, out) = await call(s, "CreateRepository", "{}")
        #expect(out["__type"] == "InvalidParameterException")
        (_, out) = await call(s, "CreateRepository", #"{"repositoryName":"Bad Name"}"#)
        #expect(out["__type"] == "InvalidParameterException")
        let other = Principal(accountID: "210987654321", arn: Principal.rootARN("210987654321"), accessKeyID: "AKIAOTHER")
        _ = await call(s, "CreateRepository", #"{"repositoryName":"mine"}"#)
        (status, out) = await call(s, "DescribeRepositories", #"{"registryId":"123456789012","repositoryNames":["mine"]}"#, as: other)
        #expect(out["__type"] == "AccessDeniedException")
    }

    @Test func layersAndPutImage() async throws {
        let s = service()
        _ = await call(s, "CreateRepository", #"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#)
        let layer = Array("layer-bytes".utf8)
        let config = Array("{}".utf8)
        var digests: [String] = []
        for blob in [layer, config] {
            let (_, started) = await call(s, "InitiateLayerUpload", #"{"repositoryName":"app"}"#)
            guard case .string(let id)? = started["uploadId"] else { Issue.record("no upload id"); return }
            let b64 = Data(blob).base64EncodedString()
            var (status, out) = await call(s, "UploadLayerPart", #"{"repositoryName":"app","uploadId":"\#(id)","partFirstByte":1,"partLastByte":\#(blob.count),"layerPartBlob":"\#(b64)"}"#)
            #expect(out["__type"] == "InvalidLayerPartException")
            (status, out) = await call(s, "UploadLayerPart", #"{"repositoryName":"app","uploadId":"\#(id)","partFirstByte":0,"partLastByte":\#(blob.count - 1),"layerPartBlob":"\#(b64)"}"#)
            #expect(status == 200)
            let d = Digest.sha256(of: blob).description
            (status, out) = await call(s, "CompleteLayerUpload", #"{"repositoryName":"app","uploadId":"\#(id)","layerDigests":["\#(Digest.sha256(of: [1]))"]}"#)
            #expect(out["__type"] == "InvalidLayerException")
            (status, out) = await call(s, "CompleteLayerUpload", #"{"repositoryName":"app","uploadId":"\#(id)","layerDigests":["\#(d)"]}"#)
            #expect(status == 200, "\(out)")
            digests.append(d)
        }
        let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(digests[1])","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(digests[0])","size":11}]}"#
        let escaped = manifest.replacingOccurrences(of: "\"", with: "\\\"")
        var (status, out) = await call(s, "PutImage", #"{"repositoryName":"app","imageTag":"v1","imageManifest":"\#(escaped)"}"#)
        #expect(status == 200, "\(out)")
        (status, out) = await call(s, "PutImage", #"{"repositoryName":"app","imageTag":"v1","imageManifest":"\#(escaped)"}"#)
        #expect(out["__type"] == "ImageAlreadyExistsException")
        let other = manifest.replacingOccurrences(of: "\"size\":11", with: "\"size\":11,\"annotations\":{\"a\":\"b\"}").replacingOccurrences(of: "\"", with: "\\\"")
        (status, out) = await call(s, "PutImage", #"{"repositoryName":"app","imageTag":"v1","imageManifest":"\#(other)"}"#)
        #expect(out["__type"] == "ImageTagAlreadyExistsException")
        (status, out) = await call(s, "DescribeImages", #"{"repositoryName":"app"}"#)
        guard case .array(let details)? = out["imageDetails"], case .object(let d)? = details.first else { Issue.record("no details"); return }
        #expect(d["imageTags"] == ["v1"])
        #expect(d["imageSizeInBytes"] == .int(11))
        (status, out) = await call(s, "BatchDeleteImage", #"{"repositoryName":"app","imageIds":[{"imageTag":"v1"}]}"#)
        #expect(status == 200)
        (status, out) = await call(s, "ListImages", #"{"repositoryName":"app"}"#)
        #expect(out["imageIds"] == [], "removing the last tag deletes the image")
    }
}

/// Each account × region is its own registry: the region a request is signed for selects it.
@Suite struct ECRRegionTests {
    let account = "123456789012"

    func principal(_ region: String?) -> Principal {
        var p = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT")
        p.region = region
        return p
    }

    func service(_ registry: Registry) -> ECRService {
        var env = ECREnvironment(
            region: "us-east-1",
            repositoryURI: { account, name in "\(account).dkr.ecr.\(RequestRegion.current?.name ?? "us-east-1").example.com/\(name)" },
            proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        env.regions = RegionSet(home: "us-east-1", listed: ["eu-west-1"])
        return ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock())
    }

    func call(_ s: ECRService, _ op: String, _ body: String, region: String?) async -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: ECRService.targetPrefix + op, body: Array(body.utf8), principal: principal(region))
        return (r.status, (try? JSONValue.parseObject(r.body)) ?? [:])
    }

    func names(_ s: ECRService, region: String?) async -> [String] {
        let (_, out) = await call(s, "DescribeRepositories", "{}", region: region)
        guard case .array(let repos)? = out["repositories"] else { return [] }
        return repos.compactMap { if case .object(let o) = $0, case .string(let n)? = o["repositoryName"] { n } else { nil } }.sorted()
    }

    @Test func repositoriesPoliciesAndSettingsArePerRegion() async throws {
        let registry = Registry.inMemory()
        let s = service(registry)
        var (status, out) = await call(s, "CreateRepository", #"{"repositoryName":"app","imageTagMutability":"IMMUTABLE"}"#, region: "eu-west-1")
        #expect(status == 200)
        guard case .object(let repo)? = out["repository"] else { Issue.record("no repository"); return }
        #expect(repo["repositoryArn"] == "arn:aws:ecr:eu-west-1:123456789012:repository/app")
        #expect(repo["repositoryUri"] == "123456789012.dkr.ecr.eu-west-1.example.com/app")
        #expect(repo["registryId"] == .string(account))
        // The same name in the home region is another repository.
        (status, _) = await call(s, "CreateRepository", #"{"repositoryName":"app"}"#, region: "us-east-1")
        #expect(status == 200)
        (status, _) = await call(s, "CreateRepository", #"{"repositoryName":"only-home"}"#, region: nil)
        #expect(status == 200)
        #expect(await names(s, region: "eu-west-1") == ["app"])
        #expect(await names(s, region: "us-east-1") == ["app", "only-home"])
        // Stored under the region's registry id; the home region's under the bare account, as before regions.
        #expect(try await registry.findRepository(RepositoryKey(storedRegistryID: "123456789012@eu-west-1", name: "app"))?.settings.imageTagMutability == .immutable)
        #expect(try await registry.findRepository(RepositoryKey(storedRegistryID: account, name: "only-home")) != nil)
        // ARNs of another region are not resources of this one.
        (status, out) = await call(s, "ListTagsForResource", #"{"resourceArn":"arn:aws:ecr:us-east-1:123456789012:repository/only-home"}"#, region: "eu-west-1")
        #expect(out["__type"] == "InvalidParameterException")
        (status, out) = await call(s, "ListTagsForResource", #"{"resourceArn":"arn:aws:ecr:eu-west-1:123456789012:repository/app"}"#, region: "eu-west-1")
        #expect(status == 200)
        // Registry policy, scanning configuration and account settings belong to one region's registry.
        let policy = #"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"r\",\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::210987654321:root\"},\"Action\":[\"ecr:ReplicateImage\"],\"Resource\":\"arn:aws:ecr:eu-west-1:123456789012:repository/*\"}]}"#
        (status, out) = await call(s, "PutRegistryPolicy", "{\"policyText\":\"\(policy)\"}", region: "eu-west-1")
        #expect(status == 200)
        (status, out) = await call(s, "GetRegistryPolicy", "{}", region: "eu-west-1")
        #expect(status == 200)
        (status, out) = await call(s, "GetRegistryPolicy", "{}", region: "us-east-1")
        #expect(out["__type"] == "RegistryPolicyNotFoundException")
        (status, _) = await call(s, "PutAccountSetting", #"{"name":"BASIC_SCAN_TYPE_VERSION","value":"CLAIR"}"#, region: "eu-west-1")
        #expect(status == 200)
        (_, out) = await call(s, "GetAccountSetting", #"{"name":"BASIC_SCAN_TYPE_VERSION"}"#, region: "eu-west-1")
        #expect(out["value"] == "CLAIR")
        (_, out) = await call(s, "GetAccountSetting", #"{"name":"BASIC_SCAN_TYPE_VERSION"}"#, region: "us-east-1")
        #expect(out["value"] == "AWS_NATIVE")
        #expect(try await registry.registryIDs() == ["123456789012", "123456789012@eu-west-1"])
    }
}

/// The operations this stop added (creation templates, replication) go through the single authorization
/// point: a principal no policy allows is denied each, and malformed input is a 400 of the protocol, never a 500.
@Suite struct ECRNewOperationsAuthorizationTests {
    let account = "123456789012"
    static let valid: [String: String] = [
        "CreateRepositoryCreationTemplate": #"{"prefix":"team","appliedFor":["CREATE_ON_PUSH"]}"#,
        "DescribeRepositoryCreationTemplates": "{}",
        "UpdateRepositoryCreationTemplate": #"{"prefix":"team","description":"x"}"#,
        "DeleteRepositoryCreationTemplate": #"{"prefix":"team"}"#,
        "PutReplicationConfiguration": #"{"replicationConfiguration":{"rules":[{"destinations":[{"region":"eu-west-1","registryId":"210987654321"}]}]}}"#,
        "DescribeImageReplicationStatus": #"{"repositoryName":"app","imageId":{"imageTag":"v1"}}"#,
        "DescribeRegistry": "{}",
    ]

    func service() -> ECRService {
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "127.0.0.1:5000/\($1)" }, proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        return ECRService(registry: Registry.inMemory(), authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock())
    }

    @Test(arguments: valid.keys.sorted())
    func deniedWithoutPermissionAndRefusesBadInput(_ op: String) async throws {
        let s = service()
        let user = Principal(accountID: account, arn: "arn:aws:iam::\(account):user/alice", accessKeyID: "AKIAUSER")
        let denied = await s.handle(target: ECRService.targetPrefix + op, body: Array(Self.valid[op]!.utf8), principal: user)
        #expect(denied.errorType == "AccessDeniedException", "\(op): \(String(decoding: denied.body, as: UTF8.self))")
        let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT")
        // Members of the wrong type (an operation ignores members it does not have, as AWS does; DescribeRegistry has none).
        let wrongTypes = op == "DescribeRegistry" ? [] : [op == "DescribeRepositoryCreationTemplates" ? #"{"prefixes":5}"#
            : #"{"prefix":5,"replicationConfiguration":"x","repositoryName":[],"imageId":7}"#]
        for bad in ["{not json"] + wrongTypes {
            let r = await s.handle(target: ECRService.targetPrefix + op, body: Array(bad.utf8), principal: root)
            #expect(r.status == 400, "\(op) \(bad): \(r.status) \(String(decoding: r.body, as: UTF8.self))")
        }
    }
}
