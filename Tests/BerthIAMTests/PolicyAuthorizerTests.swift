import BerthAuth
import BerthCore
import BerthDirectory
@testable import BerthIAM
import BerthPolicy
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Testing

/// A world with account 123456789012 (users, groups, roles) and a second account 210987654321.
struct World {
    static let account = "123456789012"
    static let other = "210987654321"
    let store = InMemoryMetadataStore()
    let directory: Directory
    let clock = ManualWallClock(1_700_000_000)
    let authorizer: PolicyAuthorizer
    let iam: IAMService
    let sts: STSService
    let sessions = SessionTokenCodec(box: try! SecretBox(key: SecretBox.generateKey()))

    init() async throws {
        directory = Directory(store: store)
        authorizer = PolicyAuthorizer(directory: directory, region: "us-east-1", clock: clock)
        iam = IAMService(directory: directory, authorizer: authorizer, clock: clock) { secret, _ in "sealed:\(secret)" }
        sts = STSService(directory: directory, authorizer: authorizer, sessions: sessions, clock: clock)
        for a in [Self.account, Self.other] { _ = try await store.createAccount(a, at: 0) }
        _ = try await store.createRepository(RepositoryKey(storedRegistryID: Self.account, name: "app"), at: 0,
                                             settings: RepositorySettings(tags: [ResourceTag(key: "team", value: "core")]))
    }

    static func root(_ account: String = account) -> Principal {
        Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT\(account.prefix(12))")
    }

    static func user(_ name: String, _ account: String = account) -> Principal {
        Principal(accountID: account, arn: "arn:aws:iam::\(account):user/\(name)", accessKeyID: "AKIAUSER0000000000\(name.count)")
    }

    static let repo = "arn:aws:ecr:us-east-1:123456789012:repository/app"

    /// Runs an IAM action as `p` (root by default); throws the Query error it answers with.
    @discardableResult
    func iamCall(_ action: String, _ params: [String: String], as p: Principal = root()) async throws -> String {
        var form = params
        form["Action"] = action
        form["Version"] = "2010-05-08"
        let r = await iam.handle(form, principal: p, requestID: "req-1")
        let body = String(decoding: r.body, as: UTF8.self)
        if let code = r.errorCode { throw QueryError(code, body, status: r.status) }
        return body
    }

    func allowed(_ p: Principal, _ action: String, _ resource: String = repo) async -> Bool {
        do {
            try await authorizer.authorize(p, action: action, resource: resource)
            return true
        } catch {
            return false
        }
    }

    func createUser(_ name: String, policies: [String] = [], attached: [String] = []) async throws {
        try await iamCall("CreateUser", ["UserName": name])
        for (i, doc) in policies.enumerated() {
            try await iamCall("PutUserPolicy", ["UserName": name, "PolicyName": "p\(i)", "PolicyDocument": doc])
        }
        for arn in attached { try await iamCall("AttachUserPolicy", ["UserName": name, "PolicyArn": arn]) }
    }

    func setRepositoryPolicy(_ text: String?) async throws {
        let key = RepositoryKey(storedRegistryID: Self.account, name: "app")
        var s = try await store.repository(key)!.settings
        s.policy = text
        _ = try await store.updateRepositorySettings(key, s)
        clock.advance(by: 2)  // past the one-second cache
    }
}

func allow(_ actions: String, _ resource: String = "*", condition: String? = nil) -> String {
    let c = condition.map { #","Condition":\#($0)"# } ?? ""
    return #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":\#(actions),"Resource":"\#(resource)"\#(c)}]}"#
}

func deny(_ actions: String, _ resource: String = "*") -> String {
    #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":\#(actions),"Resource":"\#(resource)"}]}"#
}

@Suite struct PolicyAuthorizerTests {
    @Test func rootMayDoEverythingInItsOwnAccountOnly() async throws {
        let w = try await World()
        #expect(await w.allowed(World.root(), "ecr:PutImage"))
        #expect(await w.allowed(World.root(), "ecr:GetAuthorizationToken", "*"))
        #expect(await !w.allowed(World.root(World.other), "ecr:BatchGetImage"))
    }

    @Test func userNeedsAnIdentityPolicy() async throws {
        let w = try await World()
        try await w.createUser("nobody")
        #expect(await !w.allowed(World.user("nobody"), "ecr:BatchGetImage"))
        #expect(await !w.allowed(World.user("nobody"), "ecr:GetAuthorizationToken", "*"))
        try await w.createUser("reader", attached: [ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn])
        #expect(await w.allowed(World.user("reader"), "ecr:BatchGetImage"))
        #expect(await w.allowed(World.user("reader"), "ecr:GetAuthorizationToken", "*"))
        #expect(await !w.allowed(World.user("reader"), "ecr:PutImage"))
        // A user that does not exist (deleted) has no policies.
        #expect(await !w.allowed(World.user("ghost"), "ecr:BatchGetImage"))
    }

    @Test func explicitDenyWinsAndMessagesAreAWSs() async throws {
        let w = try await World()
        try await w.createUser("dev", policies: [allow(#""ecr:*""#), deny(#""ecr:BatchDeleteImage""#)])
        #expect(await w.allowed(World.user("dev"), "ecr:PutImage"))
        do {
            try await w.authorizer.authorize(World.user("dev"), action: "ecr:BatchDeleteImage", resource: World.repo)
            Issue.record("allowed")
        } catch BerthError.denied(let m) {
            #expect(m == "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ecr:BatchDeleteImage on resource: \(World.repo) with an explicit deny in an identity-based policy")
        }
        // The repository policy's deny binds even the root.
        try await w.setRepositoryPolicy(#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:PutImage"}]}"#)
        #expect(await !w.allowed(World.root(), "ecr:PutImage"))
        #expect(await w.allowed(World.root(), "ecr:BatchGetImage"))
    }

    @Test func groupPoliciesApplyToMembers() async throws {
        let w = try await World()
        try await w.createUser("ann")
        try await w.iamCall("CreateGroup", ["GroupName": "pullers"])
        try await w.iamCall("AttachGroupPolicy", ["GroupName": "pullers", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryPullOnly.arn])
        #expect(await !w.allowed(World.user("ann"), "ecr:BatchGetImage"))
        try await w.iamCall("AddUserToGroup", ["GroupName": "pullers", "UserName": "ann"])
        w.clock.advance(by: 2)
        #expect(await w.allowed(World.user("ann"), "ecr:BatchGetImage"))
        try await w.iamCall("RemoveUserFromGroup", ["GroupName": "pullers", "UserName": "ann"])
        // Cached for at most a second.
        w.clock.advance(by: 1.5)
        #expect(await !w.allowed(World.user("ann"), "ecr:BatchGetImage"))
    }

    @Test func sameAccountRepositoryPolicyNamingTheUserGrants() async throws {
        let w = try await World()
        try await w.createUser("ci")
        try await w.setRepositoryPolicy(#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/ci"},"Action":"ecr:BatchGetImage"}]}"#)
        #expect(await w.allowed(World.user("ci"), "ecr:BatchGetImage"))
        #expect(await !w.allowed(World.user("ci"), "ecr:PutImage"))
    }

    @Test func crossAccountNeedsTheResourcePolicyAndTheCallersIdentityPolicy() async throws {
        let w = try await World()
        let outsider = World.user("puller", World.other)
        _ = try await w.store.createEntity(IAMEntityRecord(kind: .user, accountID: World.other, name: "puller", id: "AIDAOUT", createdAt: 0))
        try await w.store.attachPolicy(IAMEntityKey(.user, World.other, "puller"), arn: ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn)
        #expect(await !w.allowed(outsider, "ecr:BatchGetImage"))
        #expect(await !w.allowed(World.root(World.other), "ecr:BatchGetImage"))
        try await w.setRepositoryPolicy(#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"210987654321"},"Action":["ecr:BatchGetImage","ecr:PutImage"]}]}"#)
        #expect(await w.allowed(outsider, "ecr:BatchGetImage"))
        #expect(await w.allowed(World.root(World.other), "ecr:BatchGetImage"))
        // The resource allows PutImage, the caller's own account does not.
        #expect(await !w.allowed(outsider, "ecr:PutImage"))
        #expect(await w.allowed(World.root(World.other), "ecr:PutImage"))
    }

    @Test func registryPolicyIsAResourcePolicyOfEveryRepository() async throws {
        let w = try await World()
        try await w.store.putAccountSetting(World.account, RegistryPolicy.settingName,
            #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:ReplicateImage","Resource":"*"}]}"#)
        #expect(await w.allowed(World.root(World.other), "ecr:ReplicateImage"))
        #expect(await !w.allowed(World.root(World.other), "ecr:BatchGetImage"))
    }

    @Test func conditionKeysComeFromTheRequestAndTheRepository() async throws {
        let w = try await World()
        try await w.createUser("tagged", policies: [allow(#""ecr:BatchGetImage""#, condition: #"{"StringEquals":{"aws:ResourceTag/team":"core"}}"#)])
        try await w.createUser("me", policies: [allow(#""ecr:BatchGetImage""#, condition: #"{"StringEquals":{"aws:username":"me"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#)])
        #expect(await w.allowed(World.user("tagged"), "ecr:BatchGetImage"))
        var me = World.user("me")
        #expect(await !w.allowed(me, "ecr:BatchGetImage"))
        me.sourceIP = "10.1.2.3"
        #expect(await w.allowed(me, "ecr:BatchGetImage"))
        me.sourceIP = "192.168.1.1"
        #expect(await !w.allowed(me, "ecr:BatchGetImage"))
    }

    @Test func requestTagsReachConditions() async throws {
        let w = try await World()
        try await w.createUser("tagger", policies: [allow(#""ecr:CreateRepository""#, condition: #"{"StringEquals":{"aws:RequestTag/team":"core"},"ForAllValues:StringEquals":{"aws:TagKeys":["team"]}}"#)])
        let p = World.user("tagger")
        let core = AuthorizationContext(requestTags: ["team": "core"])
        try await w.authorizer.authorize(p, action: "ecr:CreateRepository", resource: World.repo, context: core)
        for bad in [AuthorizationContext(), AuthorizationContext(requestTags: ["team": "web"]),
                    AuthorizationContext(requestTags: ["team": "core", "cost": "1"])] {
            await #expect(throws: BerthError.self) {
                try await w.authorizer.authorize(p, action: "ecr:CreateRepository", resource: World.repo, context: bad)
            }
        }
    }

    @Test func aPolicyThatDoesNotParseNeverGrants() async throws {
        let w = try await World()
        try await w.createUser("broken", policies: [allow(#""ecr:*""#)])
        try await w.store.putInlinePolicy(IAMEntityKey(.user, World.account, "broken"), name: "bad", document: "{not json")
        w.clock.advance(by: 2)
        #expect(await !w.allowed(World.user("broken"), "ecr:BatchGetImage"))
        try await w.setRepositoryPolicy("[]")
        #expect(await !w.allowed(World.root(), "ecr:BatchGetImage"))
    }

    @Test func roleSessionsUseTheirRolesPolicies() async throws {
        let w = try await World()
        try await w.iamCall("CreateRole", ["RoleName": "builder", "AssumeRolePolicyDocument": #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#])
        try await w.iamCall("AttachRolePolicy", ["RoleName": "builder", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryPowerUser.arn])
        let session = Principal(accountID: World.account, arn: "arn:aws:sts::123456789012:assumed-role/builder/s", accessKeyID: "ASIAX")
        #expect(await w.allowed(session, "ecr:PutImage"))
        #expect(await !w.allowed(session, "ecr:DeleteRepository"))
        let roleID = try #require(try await w.store.entity(IAMEntityKey(.role, World.account, "builder"))?.id)
        var current = session
        current.userID = "\(roleID):s"
        #expect(await w.allowed(current, "ecr:PutImage"))
        var stale = session
        stale.userID = "AROAOLDROLEOFTHATNAME:s"
        #expect(await !w.allowed(stale, "ecr:PutImage"))
    }
}
