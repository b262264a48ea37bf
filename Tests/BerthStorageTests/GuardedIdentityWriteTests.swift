import BerthCore
import BerthStorage
import Foundation
import Testing

/// The guarded identity writes (check and write in one transaction), on every backend.
@Suite struct GuardedIdentityWrites {
    let account = "123456789012"

    func key(_ id: String, _ principal: String) -> AccessKeyRecord {
        AccessKeyRecord(accessKeyID: id, accountID: account, principalARN: principal, sealedSecret: "s", createdAt: 1)
    }

    func user(_ name: String) -> IAMEntityRecord {
        IAMEntityRecord(kind: .user, accountID: account, name: name, id: "AIDA\(name.uppercased())", createdAt: 1)
    }

    @Test(arguments: Backend.allCases)
    func accessKeyLimits(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        _ = try await m.createAccount(account, at: 0)
        let alice = "arn:aws:iam::\(account):user/alice"
        #expect(try await m.insertAccessKey(key("AKIA1", alice), limit: .perPrincipal(2)))
        #expect(try await m.insertAccessKey(key("AKIA2", alice), limit: .perPrincipal(2)))
        #expect(try await !m.insertAccessKey(key("AKIA3", alice), limit: .perPrincipal(2)))
        // Another principal has its own quota; the account-wide limit counts everybody's.
        #expect(try await m.insertAccessKey(key("AKIA4", "arn:aws:iam::\(account):user/bob"), limit: .perPrincipal(2)))
        #expect(try await !m.insertAccessKey(key("AKIA5", Principal.rootARN(account)), limit: .perAccount(1)))
        #expect(try await m.insertAccessKey(key("AKIA6", Principal.rootARN(account)), limit: .unlimited))
        #expect(try await m.accessKeys(ofAccount: account).map(\.accessKeyID) == ["AKIA1", "AKIA2", "AKIA4", "AKIA6"])
        await #expect(throws: (any Error).self) {
            _ = try await m.insertAccessKey(AccessKeyRecord(accessKeyID: "AKIA7", accountID: "999999999999", principalARN: "x",
                                                            sealedSecret: "s", createdAt: 0), limit: .unlimited)
        }
    }

    @Test(arguments: Backend.allCases)
    func deleteEntityOnlyWhenUnreferenced(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        _ = try await m.createAccount(account, at: 0)
        let alice = IAMEntityKey(.user, account, "alice")
        let devs = IAMEntityKey(.group, account, "devs")
        _ = try await m.createEntity(user("alice"))
        _ = try await m.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))
        #expect(try await m.deleteEntityIfUnreferenced(IAMEntityKey(.user, account, "nobody")) == .notFound)

        // Each reference alone keeps the user.
        #expect(try await m.insertAccessKey(key("AKIA1", user("alice").arn), limit: .unlimited))
        #expect(try await m.deleteEntityIfUnreferenced(alice) == .inUse)
        #expect(try await m.deleteAccessKey("AKIA1"))
        try await m.putInlinePolicy(alice, name: "p", document: "{}")
        #expect(try await m.deleteEntityIfUnreferenced(alice) == .inUse)
        #expect(try await m.deleteInlinePolicy(alice, name: "p"))
        try await m.attachPolicy(alice, arn: "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        #expect(try await m.deleteEntityIfUnreferenced(alice) == .inUse)
        #expect(try await m.detachPolicy(alice, arn: "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"))
        try await m.addUser("alice", toGroup: "devs", account: account)
        #expect(try await m.deleteEntityIfUnreferenced(alice) == .inUse)
        // A group with a member is in use too.
        #expect(try await m.deleteEntityIfUnreferenced(devs) == .inUse)
        #expect(try await m.removeUser("alice", fromGroup: "devs", account: account))

        let before = m.authorizationGeneration.current
        #expect(try await m.deleteEntityIfUnreferenced(alice) == .done)
        #expect(m.authorizationGeneration.current > before)
        #expect(try await m.entity(alice) == nil)
        #expect(try await m.deleteEntityIfUnreferenced(devs) == .done)
    }

    @Test(arguments: Backend.allCases)
    func inlinePolicySizeQuota(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let alice = IAMEntityKey(.user, account, "alice")
        #expect(try await m.putInlinePolicy(alice, name: "a", document: "{}", totalSizeLimit: 10) == .notFound)
        _ = try await m.createEntity(user("alice"))
        #expect(try await m.putInlinePolicy(alice, name: "a", document: "123 456", totalSizeLimit: 10) == .done)  // 6 counted
        #expect(try await m.putInlinePolicy(alice, name: "b", document: "12345", totalSizeLimit: 10) == .limitReached)
        #expect(try await m.putInlinePolicy(alice, name: "b", document: "1 2 3 4", totalSizeLimit: 10) == .done)  // 6 + 4
        // Replacing a policy counts its new text only.
        #expect(try await m.putInlinePolicy(alice, name: "a", document: "123456", totalSizeLimit: 10) == .done)
        #expect(try await m.putInlinePolicy(alice, name: "a", document: "1234567", totalSizeLimit: 10) == .limitReached)
        #expect(try await m.inlinePolicy(alice, name: "a") == "123456")
        #expect(try await m.putInlinePolicy(alice, name: "c", document: String(repeating: "x", count: 100), totalSizeLimit: nil) == .done)
    }

    @Test(arguments: Backend.allCases)
    func attachmentsAndMembershipsNeedTheirEntities(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let alice = IAMEntityKey(.user, account, "alice")
        let policy = ManagedPolicyRecord(accountID: account, name: "pull", id: "ANPA1", document: "{}", createdAt: 1)
        #expect(try await m.attachPolicy(alice, arn: policy.arn, policyMustExist: true, limit: 2) == .notFound)
        _ = try await m.createEntity(user("alice"))
        #expect(try await m.attachPolicy(alice, arn: policy.arn, policyMustExist: true, limit: 2) == .notFound)
        _ = try await m.createManagedPolicy(policy)
        #expect(try await m.attachPolicy(alice, arn: policy.arn, policyMustExist: true, limit: 2) == .done)
        #expect(try await m.attachPolicy(alice, arn: "arn:aws:iam::aws:policy/A", policyMustExist: false, limit: 2) == .done)
        #expect(try await m.attachPolicy(alice, arn: "arn:aws:iam::aws:policy/B", policyMustExist: false, limit: 2) == .limitReached)
        // Attaching one already attached is no new attachment.
        #expect(try await m.attachPolicy(alice, arn: policy.arn, policyMustExist: true, limit: 2) == .done)
        #expect(try await m.deleteManagedPolicyIfUnattached(arn: policy.arn) == .inUse)
        #expect(try await m.detachPolicy(alice, arn: policy.arn))
        #expect(try await m.deleteManagedPolicyIfUnattached(arn: policy.arn) == .done)
        #expect(try await m.deleteManagedPolicyIfUnattached(arn: policy.arn) == .notFound)

        #expect(try await m.addMember("alice", toGroup: "devs", account: account, limit: nil) == .notFound)
        _ = try await m.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))
        #expect(try await m.addMember("bob", toGroup: "devs", account: account, limit: nil) == .notFound)
        #expect(try await m.addMember("alice", toGroup: "devs", account: account, limit: 1) == .done)
        #expect(try await m.addMember("alice", toGroup: "devs", account: account, limit: 1) == .done)
        #expect(try await m.users(inGroup: "devs", account: account) == ["alice"])
        // GroupsPerUser: a second group is over a limit of 1, but not over 2; re-adding counts nothing.
        _ = try await m.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "ops", id: "AGPA2", createdAt: 1))
        #expect(try await m.addMember("alice", toGroup: "ops", account: account, limit: 1) == .limitReached)
        #expect(try await m.groups(ofUser: "alice", account: account) == ["devs"])
        #expect(try await m.addMember("alice", toGroup: "ops", account: account, limit: 2) == .done)
        #expect(try await m.addMember("alice", toGroup: "ops", account: account, limit: 2) == .done)
        #expect(try await m.groups(ofUser: "alice", account: account) == ["devs", "ops"])
    }

    /// Two connections (two processes, say) racing for the last key slot: SQLite's write lock, taken by
    /// `BEGIN IMMEDIATE` before the count, lets exactly one insert.
    @Test func twoConnectionsRaceForTheLastAccessKey() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-guard-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try SQLiteMetadataStore(path: dir + "/berth.db")
        let second = try SQLiteMetadataStore(path: dir + "/berth.db")
        _ = try await first.createAccount(account, at: 0)
        let alice = "arn:aws:iam::\(account):user/alice"
        for round in 0..<20 {
            let a = key("AKIAA\(round)", alice), b = key("AKIAB\(round)", alice)
            async let x = first.insertAccessKey(a, limit: .perPrincipal(2 * round + 1))
            async let y = second.insertAccessKey(b, limit: .perPrincipal(2 * round + 1))
            let won = [try await x, try await y].filter { $0 }.count
            #expect(won == 1, "round \(round)")
            // Make room for the next round's single slot.
            _ = try await first.insertAccessKey(key("AKIAC\(round)", alice), limit: .unlimited)
        }
        #expect(try await first.accessKeys(ofAccount: account).count == 40)
    }
}
