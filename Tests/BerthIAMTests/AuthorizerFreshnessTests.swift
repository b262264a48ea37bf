import BerthCore
import BerthDirectory
@testable import BerthIAM
import BerthPolicy
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Testing

/// The authorizer's caches never outlive a write made through the store, and policies or settings that
/// cannot be read deny. The clock never moves in these tests: a cache that relied on its age alone
/// would answer with the state from before the change.
@Suite struct AuthorizerFreshnessTests {
    static let grantToUser = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/dev"},"Action":"ecr:DescribeImages"}]}"#

    func setPolicy(_ w: World, _ text: String?) async throws {
        let key = RepositoryKey(storedRegistryID: World.account, name: "app")
        var s = try await w.store.repository(key)!.settings
        s.policy = text
        _ = try await w.store.updateRepositorySettings(key, s)
    }

    @Test func everyKindOfChangeAppliesToTheVeryNextRequest() async throws {
        let w = try await World()
        let dev = World.user("dev")
        try await w.createUser("dev")
        #expect(await !w.allowed(dev, "ecr:DescribeImages"))
        // a repository policy granting the user
        try await setPolicy(w, Self.grantToUser)
        #expect(await w.allowed(dev, "ecr:DescribeImages"))
        try await setPolicy(w, nil)
        #expect(await !w.allowed(dev, "ecr:DescribeImages"))
        // another account's root, granted by the repository policy
        #expect(await !w.allowed(World.root(World.other), "ecr:BatchGetImage"))
        try await setPolicy(w, #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:BatchGetImage"}]}"#)
        #expect(await w.allowed(World.root(World.other), "ecr:BatchGetImage"))
        // attached and detached managed policies
        try await w.iamCall("AttachUserPolicy", ["UserName": "dev", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn])
        #expect(await w.allowed(dev, "ecr:BatchGetImage"))
        try await w.iamCall("DetachUserPolicy", ["UserName": "dev", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn])
        #expect(await !w.allowed(dev, "ecr:BatchGetImage"))
        // a customer managed policy, deleted
        let created = try await w.iamCall("CreatePolicy", ["PolicyName": "pull", "PolicyDocument": allow(#""ecr:BatchGetImage""#)])
        #expect(created.contains("arn:aws:iam::123456789012:policy/pull"))
        try await w.iamCall("AttachUserPolicy", ["UserName": "dev", "PolicyArn": "arn:aws:iam::123456789012:policy/pull"])
        #expect(await w.allowed(dev, "ecr:BatchGetImage"))
        try await w.iamCall("DetachUserPolicy", ["UserName": "dev", "PolicyArn": "arn:aws:iam::123456789012:policy/pull"])
        #expect(await !w.allowed(dev, "ecr:BatchGetImage"))
        // group membership
        try await w.iamCall("CreateGroup", ["GroupName": "pullers"])
        try await w.iamCall("AttachGroupPolicy", ["GroupName": "pullers", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryPullOnly.arn])
        try await w.iamCall("AddUserToGroup", ["GroupName": "pullers", "UserName": "dev"])
        #expect(await w.allowed(dev, "ecr:BatchGetImage"))
        try await w.iamCall("RemoveUserFromGroup", ["GroupName": "pullers", "UserName": "dev"])
        #expect(await !w.allowed(dev, "ecr:BatchGetImage"))
        // inline policies, and a Deny in the registry policy
        try await w.iamCall("PutUserPolicy", ["UserName": "dev", "PolicyName": "all", "PolicyDocument": allow(#""ecr:*""#)])
        #expect(await w.allowed(dev, "ecr:PutImage"))
        try await w.store.putAccountSetting(World.account, RegistryPolicy.settingName,
            #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::123456789012:user/dev"},"Action":"ecr:PutImage","Resource":"*"}]}"#)
        #expect(await !w.allowed(dev, "ecr:PutImage"))
        try await w.iamCall("DeleteUserPolicy", ["UserName": "dev", "PolicyName": "all"])
        #expect(await !w.allowed(dev, "ecr:DescribeRepositories"))
        // aws:ResourceTag: the repository's tags
        try await w.iamCall("PutUserPolicy", ["UserName": "dev", "PolicyName": "tagged", "PolicyDocument":
            allow(#""ecr:ListImages""#, condition: #"{"StringEquals":{"aws:ResourceTag/team":"web"}}"#)])
        #expect(await !w.allowed(dev, "ecr:ListImages"))
        let key = RepositoryKey(storedRegistryID: World.account, name: "app")
        var s = try await w.store.repository(key)!.settings
        s.tags = [ResourceTag(key: "team", value: "web")]
        _ = try await w.store.updateRepositorySettings(key, s)
        #expect(await w.allowed(dev, "ecr:ListImages"))
        // a repository deleted and created again does not keep the old one's policy
        try await setPolicy(w, Self.grantToUser)
        #expect(await w.allowed(dev, "ecr:DescribeImages"))
        _ = try await w.store.deleteRepository(key)
        _ = try await w.store.createRepository(key, at: 1)
        #expect(await !w.allowed(dev, "ecr:DescribeImages"))
    }

    func sqliteStore() throws -> (SQLiteMetadataStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-authz-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (try SQLiteMetadataStore(path: dir + "/berth.db"), dir)
    }

    /// A write this process does not make (another process on the same database) is seen once the
    /// cached entry is `cacheSeconds` old; a local write at once.
    @Test func writesOfOtherProcessesAreSeenAfterTheCacheAge() async throws {
        let (store, dir) = try sqliteStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = ManualWallClock()
        let authorizer = PolicyAuthorizer(directory: Directory(store: store), region: "us-east-1", clock: clock, cacheSeconds: 5)
        _ = try await store.createAccount(World.account, at: 0)
        let key = RepositoryKey(storedRegistryID: World.account, name: "app")
        _ = try await store.createRepository(key, at: 0)
        let other = World.root(World.other)
        #expect(await !allowed(authorizer, other))
        var settings = RepositorySettings()
        settings.policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:DescribeImages"}]}"#
        let text = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let raw = try SQLiteConnection(path: dir + "/berth.db")
        _ = try raw.execute("UPDATE repositories SET settings = ? WHERE name = 'app'", [.text(text)])
        clock.advance(by: 4)
        #expect(await !allowed(authorizer, other), "cached for 5 s")
        clock.advance(by: 1.5)
        #expect(await allowed(authorizer, other))
        settings.policy = nil
        _ = try await store.updateRepositorySettings(key, settings)
        #expect(await !allowed(authorizer, other), "a local write applies at once")
        let uncached = PolicyAuthorizer(directory: Directory(store: store), region: "us-east-1", clock: clock, cacheSeconds: 0)
        _ = try raw.execute("UPDATE repositories SET settings = ? WHERE name = 'app'", [.text(text)])
        #expect(await allowed(uncached, other), "0 s: no cache")
    }

    func allowed(_ a: PolicyAuthorizer, _ p: Principal) async -> Bool {
        do {
            try await a.authorize(p, action: "ecr:DescribeImages", resource: World.repo)
            return true
        } catch {
            return false
        }
    }

    /// Settings that cannot be decoded deny (the old store fell back to default settings: no policy, so
    /// the repository policy's Deny vanished and the root was allowed).
    @Test func unreadableRepositorySettingsDeny() async throws {
        let (store, dir) = try sqliteStore()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = ManualWallClock()
        let authorizer = PolicyAuthorizer(directory: Directory(store: store), region: "us-east-1", clock: clock)
        _ = try await store.createAccount(World.account, at: 0)
        var settings = RepositorySettings()
        settings.policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:DescribeImages"}]}"#
        _ = try await store.createRepository(RepositoryKey(storedRegistryID: World.account, name: "app"), at: 0, settings: settings)
        let root = World.root()
        func check(_ action: String) async -> BerthError? {
            do {
                try await authorizer.authorize(root, action: action, resource: World.repo)
                return nil
            } catch let e as BerthError {
                return e
            } catch {
                return .internalError("\(error)")
            }
        }
        guard case .denied? = await check("ecr:DescribeImages") else { Issue.record("the Deny must apply"); return }
        #expect(await check("ecr:ListImages") == nil)

        let raw = try SQLiteConnection(path: dir + "/berth.db")
        _ = try raw.execute("UPDATE repositories SET settings = '{\"policy\": 42' WHERE name = 'app'")
        clock.advance(by: 2)  // a write by another process: seen once the cache ages out
        for action in ["ecr:DescribeImages", "ecr:ListImages"] {
            guard case .denied(let m)? = await check(action) else { Issue.record("\(action) must be denied"); continue }
            #expect(m.contains("could not be read"))
        }
        // An unparseable registry policy denies too.
        _ = try raw.execute(#"UPDATE repositories SET settings = '{"imageTagMutability":"MUTABLE","exclusionFilters":[],"scanOnPush":false,"encryptionType":"AES256","tags":[]}'"#)
        clock.advance(by: 2)
        #expect(await check("ecr:DescribeImages") == nil)
        try await store.putAccountSetting(World.account, RegistryPolicy.settingName, "{broken")
        guard case .denied? = await check("ecr:DescribeImages") else { Issue.record("an unreadable registry policy must deny"); return }
    }
}
