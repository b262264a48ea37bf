import BerthCore
import BerthDirectory
import BerthStorage
import Foundation
import Testing

/// The stores a directory is tested on.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory, sqlite
    var testDescription: String { rawValue }

    func make() throws -> any MetadataStore {
        switch self {
        case .memory: return InMemoryMetadataStore()
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-dir-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return try SQLiteMetadataStore(path: dir + "/berth.db")
        }
    }
}

@Suite struct DirectoryRules {
    static let account = "123456789012"
    var account: String { Self.account }

    func directory(_ backend: Backend) async throws -> (Directory, any MetadataStore) {
        let store = try backend.make()
        let d = Directory(store: store)
        #expect(try await d.createAccount(account, at: 0))
        return (d, store)
    }

    func user(_ name: String) -> IAMEntityRecord {
        IAMEntityRecord(kind: .user, accountID: account, name: name, id: "AIDA\(name.uppercased())", createdAt: 1)
    }

    func key(_ id: String, _ owner: String) -> AccessKeyRecord {
        AccessKeyRecord(accessKeyID: id, accountID: account, principalARN: owner, sealedSecret: "s", createdAt: 1)
    }

    /// Outcomes of concurrent calls: how many succeeded, and the errors of the others.
    func race(_ n: Int, _ body: @escaping @Sendable (Int) async throws -> Void) async -> (ok: Int, errors: [any Error]) {
        await withTaskGroup(of: (any Error)?.self) { group in
            for i in 0..<n {
                group.addTask {
                    do {
                        try await body(i)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            var ok = 0
            var errors: [any Error] = []
            for await e in group {
                if let e { errors.append(e) } else { ok += 1 }
            }
            return (ok, errors)
        }
    }

    /// Two concurrent CreateAccessKey for a user at its last slot: exactly one succeeds, the other is
    /// refused with the quota, and the user ends with exactly the quota.
    @Test(arguments: Backend.allCases)
    func concurrentAccessKeysAtTheLimit(_ backend: Backend) async throws {
        for round in 0..<10 {
            let (d, _) = try await directory(backend)
            let alice = user("alice").arn
            _ = try await d.createEntity(user("alice"))
            try await d.addAccessKey(key("AKIAFIRST\(round)", alice))
            let outcome = await race(2) { i in try await d.addAccessKey(key("AKIA\(round)X\(i)", alice)) }
            #expect(outcome.ok == 1)
            #expect(outcome.errors.map { $0 as? DirectoryError } == [.accessKeyQuota(limit: Directory.accessKeysPerUser)])
            #expect(try await d.accessKeys(account: account, principalARN: alice).count == Directory.accessKeysPerUser)
        }
    }

    @Test(arguments: Backend.allCases)
    func manyConcurrentAccessKeysStopAtTheQuota(_ backend: Backend) async throws {
        let (d, _) = try await directory(backend)
        let alice = user("alice").arn
        let outcome = await race(12) { i in try await d.addAccessKey(key("AKIAMANY\(i)", alice)) }
        #expect(outcome.ok == Directory.accessKeysPerUser)
        #expect(outcome.errors.count == 12 - Directory.accessKeysPerUser)
        // The root has no quota.
        let root = Principal.rootARN(account)
        let roots = await race(5) { i in try await d.addAccessKey(key("AKIAROOT\(i)", root)) }
        #expect(roots.ok == 5)
        #expect(try await d.rootAccessKeys(account: account).count == 5)
    }

    /// Only one of many concurrent bootstraps creates the account's first key.
    @Test(arguments: Backend.allCases)
    func firstAccessKeyOnce(_ backend: Backend) async throws {
        let (d, _) = try await directory(backend)
        let root = Principal.rootARN(account)
        let won = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<6 { group.addTask { (try? await d.addFirstAccessKey(key("AKIABOOT\(i)", root))) ?? false } }
            var n = 0
            for await w in group where w { n += 1 }
            return n
        }
        #expect(won == 1)
        #expect(try await d.accessKeys(account: account).count == 1)
    }

    /// DeleteUser racing PutUserPolicy: either the user is deleted and the policy refused (the user is
    /// gone), or the policy is stored and the delete refused (DeleteConflict); never an orphaned policy.
    @Test(arguments: Backend.allCases)
    func deleteRacesWithPolicyWrites(_ backend: Backend) async throws {
        let (d, store) = try await directory(backend)
        let doc = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#
        for round in 0..<15 {
            let name = "u\(round)"
            let k = IAMEntityKey(.user, account, name)
            _ = try await d.createEntity(user(name))
            let outcome = await race(2) { i in
                if i == 0 { try await d.deleteEntity(k) } else { try await d.putInlinePolicy(k, name: "p", document: doc) }
            }
            #expect(outcome.ok == 1, "round \(round)")
            let exists = try await d.entity(k) != nil
            let policies = try await store.inlinePolicies(k)
            if exists {
                #expect(policies.count == 1)
                #expect(outcome.errors.map { $0 as? DirectoryError } == [.entityInUse(k)])
            } else {
                #expect(policies.isEmpty)
                #expect(outcome.errors.map { $0 as? DirectoryError } == [.noSuchEntity(k)])
            }
        }
    }

    /// DeletePolicy racing AttachUserPolicy: never an attachment to a deleted policy.
    @Test(arguments: Backend.allCases)
    func deletePolicyRacesWithAttach(_ backend: Backend) async throws {
        let (d, store) = try await directory(backend)
        _ = try await d.createEntity(user("alice"))
        let alice = IAMEntityKey(.user, account, "alice")
        for round in 0..<15 {
            let policy = ManagedPolicyRecord(accountID: account, name: "p\(round)", id: "ANPA\(round)", document: "{}", createdAt: 1)
            _ = try await d.createManagedPolicy(policy)
            let outcome = await race(2) { i in
                if i == 0 { try await d.deleteManagedPolicy(arn: policy.arn) } else { try await d.attachPolicy(alice, arn: policy.arn) }
            }
            #expect(outcome.ok == 1, "round \(round)")
            let attached = try await store.attachedPolicies(alice).contains(policy.arn)
            let stored = try await d.managedPolicy(arn: policy.arn) != nil
            #expect(attached == stored)
            if attached {
                #expect(outcome.errors.map { $0 as? DirectoryError } == [.policyAttached(arn: policy.arn)])
                #expect(try await d.detachPolicy(alice, arn: policy.arn))
            } else {
                #expect(outcome.errors.map { $0 as? DirectoryError } == [.noSuchPolicy(arn: policy.arn)])
            }
        }
    }

    @Test(arguments: Backend.allCases)
    func attachedPolicyQuotaUnderConcurrency(_ backend: Backend) async throws {
        let (d, _) = try await directory(backend)
        let devs = IAMEntityKey(.group, account, "devs")
        _ = try await d.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))
        var arns: [String] = []
        for i in 0..<(Directory.attachedPoliciesPerEntity + 3) {
            let p = ManagedPolicyRecord(accountID: account, name: "p\(i)", id: "ANPA\(i)", document: "{}", createdAt: 1)
            _ = try await d.createManagedPolicy(p)
            arns.append(p.arn)
        }
        let all = arns
        let outcome = await race(all.count) { i in try await d.attachPolicy(devs, arn: all[i]) }
        #expect(outcome.ok == Directory.attachedPoliciesPerEntity)
        #expect(outcome.errors.allSatisfy { ($0 as? DirectoryError) == .attachedPolicyQuota(.group, limit: 10) })
        #expect(try await d.attachedPolicies(devs).count == Directory.attachedPoliciesPerEntity)
        // Attaching one of those again is fine at the limit.
        let again = try await d.attachedPolicies(devs)[0]
        try await d.attachPolicy(devs, arn: again)
    }

    @Test(arguments: Backend.allCases)
    func deleteConflictsAndMissingEntities(_ backend: Backend) async throws {
        let (d, _) = try await directory(backend)
        let alice = IAMEntityKey(.user, account, "alice")
        let devs = IAMEntityKey(.group, account, "devs")
        let builder = IAMEntityKey(.role, account, "builder")
        await #expect(throws: DirectoryError.noSuchEntity(alice)) { try await d.deleteEntity(alice) }
        await #expect(throws: DirectoryError.noSuchEntity(devs)) { try await d.addUser("alice", toGroup: "devs", account: account) }
        _ = try await d.createEntity(user("alice"))
        _ = try await d.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))
        _ = try await d.createEntity(IAMEntityRecord(kind: .role, accountID: account, name: "builder", id: "AROA1", createdAt: 1,
                                                     assumeRolePolicy: "{}"))
        await #expect(throws: DirectoryError.noSuchEntity(IAMEntityKey(.user, account, "bob"))) {
            try await d.addUser("bob", toGroup: "devs", account: account)
        }
        try await d.addUser("alice", toGroup: "devs", account: account)
        #expect(try await d.groups(ofUser: "alice", account: account).map(\.name) == ["devs"])
        // GroupsPerUser: ten groups in all.
        for i in 2...Directory.groupsPerUser {
            _ = try await d.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "g\(i)", id: "AGPAG\(i)", createdAt: 1))
            try await d.addUser("alice", toGroup: "g\(i)", account: account)
        }
        _ = try await d.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "g11", id: "AGPAG11", createdAt: 1))
        await #expect(throws: DirectoryError.groupsPerUserQuota(limit: 10)) { try await d.addUser("alice", toGroup: "g11", account: account) }
        try await d.addUser("alice", toGroup: "devs", account: account)
        for i in 2...Directory.groupsPerUser { #expect(try await d.removeUser("alice", fromGroup: "g\(i)", account: account)) }
        #expect(try await d.groups(ofUser: "alice", account: account).map(\.name) == ["devs"])
        #expect(try await d.users(inGroup: "devs", account: account).map(\.id) == ["AIDAALICE"])
        await #expect(throws: DirectoryError.entityInUse(alice)) { try await d.deleteEntity(alice) }
        await #expect(throws: DirectoryError.entityInUse(devs)) { try await d.deleteEntity(devs) }
        #expect(try await d.removeUser("alice", fromGroup: "devs", account: account))
        try await d.deleteEntity(devs)

        try await d.addAccessKey(key("AKIAALICE", user("alice").arn))
        await #expect(throws: DirectoryError.entityInUse(alice)) { try await d.deleteEntity(alice) }
        #expect(try await d.deleteAccessKey("AKIAALICE"))
        try await d.deleteEntity(alice)

        try await d.attachPolicy(builder, arn: "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        await #expect(throws: DirectoryError.entityInUse(builder)) { try await d.deleteEntity(builder) }
        await #expect(throws: DirectoryError.noSuchPolicy(arn: "arn:aws:iam::\(account):policy/none")) {
            try await d.attachPolicy(builder, arn: "arn:aws:iam::\(account):policy/none")
        }
        // An inline policy over the role quota (10,240 characters but whitespace).
        let big = #"{"Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":""# + String(repeating: "a", count: 10_300) + #""}]}"#
        await #expect(throws: DirectoryError.inlinePolicySizeQuota(builder, limit: 10_240)) {
            try await d.putInlinePolicy(builder, name: "big", document: big)
        }
    }

    @Test func configuredRootKeyKeepsStatusAndRefusesAnotherAccount() async throws {
        let (d, _) = try await directory(.memory)
        try await d.putConfiguredRootKey(id: "AKIACONFIGURED", account: account, sealedSecret: "one", at: 5)
        #expect(try await d.setAccessKeyStatus("AKIACONFIGURED", .inactive))
        try await d.putConfiguredRootKey(id: "AKIACONFIGURED", account: account, sealedSecret: "two", at: 9)
        let k = try #require(try await d.accessKey("AKIACONFIGURED"))
        #expect(k.sealedSecret == "two" && k.status == "Inactive" && k.createdAt == 5)
        #expect(try await d.createAccount("210987654321", at: 0))
        await #expect(throws: DirectoryError.accessKeyOfAnotherAccount(id: "AKIACONFIGURED", account: account)) {
            try await d.putConfiguredRootKey(id: "AKIACONFIGURED", account: "210987654321", sealedSecret: "x", at: 0)
        }
    }

    @Test func lookupsForAuthorization() async throws {
        let (d, store) = try await directory(.memory)
        let alice = IAMEntityKey(.user, account, "alice")
        _ = try await d.createEntity(user("alice"))
        _ = try await d.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))
        try await d.putInlinePolicy(alice, name: "own", document: #"{"Statement":[]}"#)
        try await d.addUser("alice", toGroup: "devs", account: account)
        let managed = ManagedPolicyRecord(accountID: account, name: "m", id: "ANPA1", document: #"{"m":1}"#, createdAt: 1)
        _ = try await d.createManagedPolicy(managed)
        try await d.attachPolicy(IAMEntityKey(.group, account, "devs"), arn: managed.arn)
        let p = Principal(accountID: account, arn: user("alice").arn, accessKeyID: "AKIAX")
        let found = try await d.identityPolicies(of: p)
        #expect(found.userID == "AIDAALICE")
        #expect(found.documents == [#"{"Statement":[]}"#, #"{"m":1}"#])
        let root = try await d.identityPolicies(of: Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAR"))
        #expect(root == IdentityPolicyDocuments(userID: account, documents: []))

        var settings = RepositorySettings(tags: [ResourceTag(key: "team", value: "core")])
        settings.policy = "{repo}"
        _ = try await store.createRepository(RepositoryKey(storedRegistryID: account, name: "app"), at: 0, settings: settings)
        try await store.putAccountSetting(account, RegistryPolicy.settingName, "{registry}")
        let resource = try await d.resourcePolicies(of: "arn:aws:ecr:us-east-1:\(account):repository/app")
        #expect(resource == ResourcePolicyDocuments(documents: ["{repo}", "{registry}"], tags: ["team": "core"]))
        #expect(try await d.resourcePolicies(of: "arn:aws:iam::\(account):user/alice") == ResourcePolicyDocuments())
    }
}
