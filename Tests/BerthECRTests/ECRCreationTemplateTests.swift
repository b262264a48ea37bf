import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthSupport
import Foundation
import Testing

/// The repository creation template operations beyond their golden cases: updates, paging, limits of the
/// model, and templates applied to repositories a push creates.
@Suite struct ECRCreationTemplateTests {
    let account = "123456789012"
    var root: Principal { Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT") }

    func service(createOnPush: Bool = true) -> (ECRService, Registry) {
        let registry = Registry.inMemory(settings: RegistrySettings(createOnPush: createOnPush))
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "127.0.0.1:5000/\($1)" }, proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        return (ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock()), registry)
    }

    func call(_ s: ECRService, _ op: String, _ body: JSONValue) async -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: ECRService.targetPrefix + op, body: body.encoded(), principal: root)
        return (r.status, (try? JSONValue.parseObject(r.body)) ?? [:])
    }

    func template(_ out: [String: JSONValue]) -> [String: JSONValue] {
        guard case .object(let t)? = out["repositoryCreationTemplate"] else { return [:] }
        return t
    }

    static let policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#
    static let lifecycle = #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":3},"action":{"type":"expire"}}]}"#

    @Test func updateChangesOnlyWhatItGives() async throws {
        let (s, _) = service()
        var (status, out) = await call(s, "CreateRepositoryCreationTemplate", [
            "prefix": "prod", "appliedFor": ["CREATE_ON_PUSH"], "description": "d", "imageTagMutability": "IMMUTABLE",
            "lifecyclePolicy": .string(Self.lifecycle), "repositoryPolicy": .string(Self.policy),
            "resourceTags": [["Key": "a", "Value": "1"]],
        ])
        #expect(status == 200, "\(out)")
        #expect(out["registryId"] == .string(account))
        (status, out) = await call(s, "UpdateRepositoryCreationTemplate", ["prefix": "prod/", "description": "new", "repositoryPolicy": ""])
        #expect(status == 200)
        let t = template(out)
        #expect(t["description"] == "new")
        #expect(t["imageTagMutability"] == "IMMUTABLE")
        #expect(t["lifecyclePolicy"] == .string(Self.lifecycle))
        #expect(t["repositoryPolicy"] == nil)  // an empty text removes it
        #expect(t["resourceTags"] == [["Key": "a", "Value": "1"]])
        #expect(t["appliedFor"] == ["CREATE_ON_PUSH"])
        (_, out) = await call(s, "UpdateRepositoryCreationTemplate", ["prefix": "prod", "appliedFor": ["REPLICATION", "REPLICATION"]])
        #expect(template(out)["appliedFor"] == ["REPLICATION"])
        (status, out) = await call(s, "UpdateRepositoryCreationTemplate", ["prefix": "prod", "appliedFor": []])
        #expect(status == 400 && out["__type"] == "InvalidParameterException")
    }

    @Test func describePagesInPrefixOrder() async throws {
        let (s, _) = service()
        for p in ["c", "a", "ROOT", "b/x", "b"] {
            let (status, _) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": .string(p), "appliedFor": ["REPLICATION"]])
            #expect(status == 200)
        }
        var seen: [String] = []
        var token: JSONValue? = nil
        repeat {
            var body: [String: JSONValue] = ["maxResults": 2]
            if let token { body["nextToken"] = token }
            let (status, out) = await call(s, "DescribeRepositoryCreationTemplates", .object(body))
            #expect(status == 200)
            guard case .array(let page)? = out["repositoryCreationTemplates"] else { Issue.record("no page"); return }
            #expect(page.count <= 2)
            for case .object(let t) in page { if case .string(let p)? = t["prefix"] { seen.append(p) } }
            token = out["nextToken"]
        } while token != nil
        #expect(seen == ["ROOT", "a", "b", "b/x", "c"])
        let (_, all) = await call(s, "DescribeRepositoryCreationTemplates", [:])
        guard case .array(let everything)? = all["repositoryCreationTemplates"] else { Issue.record("no list"); return }
        #expect(everything.count == 5 && all["nextToken"] == nil)
        let (_, some) = await call(s, "DescribeRepositoryCreationTemplates", ["prefixes": ["b/", "ROOT", "zzz"]])
        guard case .array(let two)? = some["repositoryCreationTemplates"] else { Issue.record("no list"); return }
        #expect(two.count == 2)
        let (status, bad) = await call(s, "DescribeRepositoryCreationTemplates", ["nextToken": "%%%"])
        #expect(status == 400 && bad["__type"] == "InvalidParameterException")
    }

    @Test(arguments: [
        (#"{"prefix":"","appliedFor":["REPLICATION"]}"#, "ValidationException"),
        (#"{"prefix":"a//b","appliedFor":["REPLICATION"]}"#, "ValidationException"),
        (#"{"prefix":"prod"}"#, "ValidationException"),
        (#"{"appliedFor":["REPLICATION"]}"#, "ValidationException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"description":"\#(String(repeating: "d", count: 257))"}"#, "ValidationException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"encryptionConfiguration":{"encryptionType":"DES"}}"#, "ValidationException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"encryptionConfiguration":{"encryptionType":"AES256","kmsKey":"arn:aws:kms:us-east-1:123456789012:key/abc"}}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"imageTagMutability":"SOMETIMES"}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"imageTagMutability":"IMMUTABLE_WITH_EXCLUSION"}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"resourceTags":[{"Key":"aws:x","Value":"1"}]}"#, "InvalidTagParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"repositoryPolicy":"not json"}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"lifecyclePolicy":"{\"rules\":[{}]}"}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":["REPLICATION"],"customRoleArn":"arn:aws:iam::999999999999:role/x"}"#, "InvalidParameterException"),
        (#"{"prefix":"prod","appliedFor":"REPLICATION"}"#, "SerializationException"),
    ])
    func badCreationsGetTheirErrors(_ body: String, _ type: String) async throws {
        let (s, _) = service()
        let r = await s.handle(target: ECRService.targetPrefix + "CreateRepositoryCreationTemplate", body: Array(body.utf8), principal: root)
        let out = try JSONValue.parseObject(r.body)
        #expect(r.status == 400)
        #expect(out["__type"] == .string(type), "\(body): \(String(decoding: r.body, as: UTF8.self))")
    }

    @Test func tooManyTagsAreRefused() async throws {
        let (s, _) = service()
        let tags = JSONValue.array((0..<51).map { ["Key": .string("k\($0)"), "Value": "v"] })
        let (status, out) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": "p", "appliedFor": ["REPLICATION"], "resourceTags": tags])
        #expect(status == 400 && out["__type"] == "TooManyTagsException")
    }

    @Test func aPushCreatesTheRepositoryWithTheTemplatesSettings() async throws {
        let (s, registry) = service(createOnPush: false)
        _ = await call(s, "CreateRepositoryCreationTemplate", [
            "prefix": "team", "appliedFor": ["CREATE_ON_PUSH"], "imageTagMutability": "IMMUTABLE",
            "resourceTags": [["Key": "owner", "Value": "team"]], "lifecyclePolicy": .string(Self.lifecycle),
        ])
        let key = RepositoryKey(registryID: account, name: try RepositoryName("team/app"))
        _ = try await registry.startUpload(key)
        var (status, out) = await call(s, "DescribeRepositories", ["repositoryNames": ["team/app"]])
        #expect(status == 200)
        guard case .array(let repos)? = out["repositories"], case .object(let repo)? = repos.first else { Issue.record("no repository"); return }
        #expect(repo["imageTagMutability"] == "IMMUTABLE")
        (_, out) = await call(s, "ListTagsForResource", ["resourceArn": "arn:aws:ecr:us-east-1:123456789012:repository/team/app"])
        #expect(out["tags"] == [["Key": "owner", "Value": "team"]])
        (_, out) = await call(s, "GetLifecyclePolicy", ["repositoryName": "team/app"])
        #expect(out["lifecyclePolicyText"] == .string(Self.lifecycle))
        // Outside the template, createOnPush=false refuses the push.
        await #expect(throws: BerthError.nameUnknown("solo")) {
            _ = try await registry.startUpload(RepositoryKey(registryID: account, name: try RepositoryName("solo")))
        }
        // Deleting the template stops it from applying.
        (status, _) = await call(s, "DeleteRepositoryCreationTemplate", ["prefix": "team"])
        #expect(status == 200)
        await #expect(throws: BerthError.nameUnknown("team/other")) {
            _ = try await registry.startUpload(RepositoryKey(registryID: account, name: try RepositoryName("team/other")))
        }
    }

    /// Allows everything but `denied`, recording each (action, resource) asked.
    final class GrantRecorder: Authorizer, @unchecked Sendable {
        let denied: String?
        let lock = NSLock()
        var asked: [String] = []
        init(denying denied: String? = nil) { self.denied = denied }
        func authorize(_ principal: Principal, action: String, resource: String) async throws {
            lock.withLock { asked.append("\(action) \(resource)") }
            if action == denied { throw BerthError.denied("not allowed: \(action)") }
        }
    }

    @Test func writingATemplateNeedsWhatItGrants() async throws {
        let (open, registry) = service()
        let role = "arn:aws:iam::\(account):role/team/templates"
        let full: JSONValue = ["prefix": "team", "appliedFor": ["REPLICATION"], "lifecyclePolicy": .string(Self.lifecycle),
                               "repositoryPolicy": .string(Self.policy), "resourceTags": [["Key": "a", "Value": "1"]], "customRoleArn": .string(role)]
        for denied in ["ecr:CreateRepository", "ecr:PutLifecyclePolicy", "ecr:SetRepositoryPolicy", "ecr:TagResource", "iam:PassRole"] {
            let guarded = ECRService(registry: registry, authorizer: GrantRecorder(denying: denied), environment: open.env, clock: open.clock)
            let (status, out) = await call(guarded, "CreateRepositoryCreationTemplate", full)
            #expect(status == 400 && out["__type"] == "AccessDeniedException", "\(denied): \(out)")
            #expect(try await registry.creationTemplates(of: account).isEmpty)
        }
        let recorder = GrantRecorder()
        let allowed = ECRService(registry: registry, authorizer: recorder, environment: open.env, clock: open.clock)
        var (status, _) = await call(allowed, "CreateRepositoryCreationTemplate", full)
        #expect(status == 200)
        let covered = "arn:aws:ecr:us-east-1:\(account):repository/team/*"
        #expect(recorder.lock.withLock { recorder.asked } == [
            "ecr:CreateRepositoryCreationTemplate arn:aws:ecr:us-east-1:\(account):registry", "ecr:CreateRepository \(covered)",
            "ecr:PutLifecyclePolicy \(covered)", "ecr:SetRepositoryPolicy \(covered)", "ecr:TagResource \(covered)", "iam:PassRole \(role)",
        ])
        // An update asks only for what it sets; ROOT covers every repository.
        recorder.lock.withLock { recorder.asked = [] }
        (status, _) = await call(allowed, "UpdateRepositoryCreationTemplate", ["prefix": "team", "description": "d"])
        #expect(status == 200)
        #expect(recorder.lock.withLock { recorder.asked }.map { $0.split(separator: " ")[0] } == ["ecr:UpdateRepositoryCreationTemplate", "ecr:CreateRepository"])
        recorder.lock.withLock { recorder.asked = [] }
        (status, _) = await call(allowed, "CreateRepositoryCreationTemplate", ["prefix": "ROOT", "appliedFor": ["REPLICATION"]])
        #expect(status == 200 && recorder.lock.withLock { recorder.asked }.last == "ecr:CreateRepository arn:aws:ecr:us-east-1:\(account):repository/*")
    }

    @Test func customRoleArnIsARoleOfTheRegistrysAccount() async throws {
        let (s, _) = service()
        for good in ["arn:aws:iam::\(account):role/r", "arn:aws:iam::\(account):role/path/to/my.role+x=y,z@w_v-1", "arn:aws-cn:iam::\(account):role/r"] {
            let (status, out) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": "ok", "appliedFor": ["REPLICATION"], "customRoleArn": .string(good)])
            #expect(status == 200, "\(good): \(out)")
            _ = await call(s, "DeleteRepositoryCreationTemplate", ["prefix": "ok"])
        }
        for bad in ["arn:aws:iam::\(account):user/u", "arn:aws:iam::111111111111:role/r", "arn:aws:iam:us-east-1:\(account):role/r",
                    "arn:aws:iam::\(account):role/", "arn:aws:iam::\(account):role/a//b", "arn:aws:iam::\(account):role/bad name",
                    "arn:aws:iam::\(account):role/" + String(repeating: "n", count: 65), "role/r"] {
            let (status, out) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": "no", "appliedFor": ["REPLICATION"], "customRoleArn": .string(bad)])
            #expect(status == 400 && out["__type"] == "InvalidParameterException", "\(bad): \(out)")
        }
    }

    @Test func theECRAPIPushCreatesOnlyThroughACreateOnPushTemplate() async throws {
        let (s, registry) = service(createOnPush: true)
        var (status, out) = await call(s, "InitiateLayerUpload", ["repositoryName": "api/app"])
        #expect(status == 400 && out["__type"] == "RepositoryNotFoundException")
        (status, _) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": "api", "appliedFor": ["CREATE_ON_PUSH"], "imageTagMutability": "IMMUTABLE"])
        #expect(status == 200)
        // The caller needs ecr:CreateRepository: denied, nothing is created.
        let guarded = ECRService(registry: registry, authorizer: GrantRecorder(denying: "ecr:CreateRepository"), environment: s.env, clock: s.clock)
        (status, out) = await call(guarded, "InitiateLayerUpload", ["repositoryName": "api/app"])
        #expect(status == 400 && out["__type"] == "AccessDeniedException")
        #expect(try await registry.findRepository(RepositoryKey(registry: .private(account), name: try RepositoryName("api/app"))) == nil)
        (status, out) = await call(s, "InitiateLayerUpload", ["repositoryName": "api/app"])
        #expect(status == 200 && out["uploadId"] != nil, "\(out)")
        let created = try #require(try await registry.findRepository(RepositoryKey(registry: .private(account), name: try RepositoryName("api/app"))))
        #expect(created.settings.imageTagMutability == .immutable)
        // A template for another purpose does not let a push create.
        (status, _) = await call(s, "CreateRepositoryCreationTemplate", ["prefix": "rep", "appliedFor": ["REPLICATION"]])
        (status, out) = await call(s, "PutImage", ["repositoryName": "rep/app", "imageTag": "v1", "imageManifest": #"{"schemaVersion":2}"#])
        #expect(status == 400 && out["__type"] == "RepositoryNotFoundException", "\(out)")
    }
}
