import BerthCore
import BerthStorage
import Foundation
import Testing

/// IdentityMetadata, run on every backend of the conformance suite.
@Suite struct IdentityMetadataConformance {
    let account = "123456789012"

    @Test(arguments: Backend.allCases)
    func entitiesAreUniquePerKindAndAccount(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let alice = IAMEntityRecord(kind: .user, accountID: account, name: "alice", path: "/dev/", id: "AIDAALICE", createdAt: 10)
        #expect(try await m.createEntity(alice))
        #expect(try await !m.createEntity(alice))
        // Same name, another kind or another account: different entities.
        #expect(try await m.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "alice", id: "AGPA1", createdAt: 11)))
        #expect(try await m.createEntity(IAMEntityRecord(kind: .user, accountID: "210987654321", name: "alice", id: "AIDA2", createdAt: 12)))
        let role = IAMEntityRecord(kind: .role, accountID: account, name: "puller", id: "AROA1", createdAt: 13,
                                   assumeRolePolicy: #"{"Statement":[]}"#, maxSessionDuration: 7200, description: "pulls")
        #expect(try await m.createEntity(role))
        #expect(try await m.entity(IAMEntityKey(.user, account, "alice")) == alice)
        #expect(try await m.entity(IAMEntityKey(.role, account, "puller")) == role)
        #expect(try await m.entity(IAMEntityKey(.user, account, "bob")) == nil)
        #expect(try await m.entities(.user, account: account).map(\.name) == ["alice"])
        #expect(alice.arn == "arn:aws:iam::123456789012:user/dev/alice")
        #expect(try await m.deleteEntity(IAMEntityKey(.user, account, "alice")))
        #expect(try await !m.deleteEntity(IAMEntityKey(.user, account, "alice")))
        #expect(try await m.entity(IAMEntityKey(.user, "210987654321", "alice")) != nil)
    }

    @Test(arguments: Backend.allCases)
    func inlinePoliciesAttachmentsAndMemberships(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let user = IAMEntityKey(.user, account, "alice")
        let group = IAMEntityKey(.group, account, "devs")
        _ = try await m.createEntity(IAMEntityRecord(kind: .user, accountID: account, name: "alice", id: "AIDA1", createdAt: 1))
        _ = try await m.createEntity(IAMEntityRecord(kind: .group, accountID: account, name: "devs", id: "AGPA1", createdAt: 1))

        try await m.putInlinePolicy(user, name: "b", document: "B1")
        try await m.putInlinePolicy(user, name: "a", document: "A")
        try await m.putInlinePolicy(user, name: "b", document: "B2")
        #expect(try await m.inlinePolicies(user).map(\.name) == ["a", "b"])
        #expect(try await m.inlinePolicy(user, name: "b") == "B2")
        #expect(try await m.deleteInlinePolicy(user, name: "a"))
        #expect(try await !m.deleteInlinePolicy(user, name: "a"))

        let policy = ManagedPolicyRecord(accountID: account, name: "pull", id: "ANPA1", document: "{}", description: "d", createdAt: 5)
        #expect(try await m.createManagedPolicy(policy))
        #expect(try await !m.createManagedPolicy(policy))
        #expect(try await m.managedPolicy(arn: policy.arn) == policy)
        #expect(try await m.managedPolicies(account: account) == [policy])
        try await m.attachPolicy(user, arn: policy.arn)
        try await m.attachPolicy(user, arn: policy.arn)
        try await m.attachPolicy(group, arn: policy.arn)
        try await m.attachPolicy(user, arn: "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        #expect(try await m.attachedPolicies(user) == ["arn:aws:iam::123456789012:policy/pull", "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"])
        #expect(try await m.attachmentCount(arn: policy.arn) == 2)
        #expect(try await m.detachPolicy(group, arn: policy.arn))
        #expect(try await !m.detachPolicy(group, arn: policy.arn))

        try await m.addUser("alice", toGroup: "devs", account: account)
        try await m.addUser("alice", toGroup: "devs", account: account)
        #expect(try await m.groups(ofUser: "alice", account: account) == ["devs"])
        #expect(try await m.users(inGroup: "devs", account: account) == ["alice"])
        #expect(try await m.removeUser("alice", fromGroup: "devs", account: account))
        #expect(try await !m.removeUser("alice", fromGroup: "devs", account: account))
        try await m.addUser("alice", toGroup: "devs", account: account)

        // Deleting a managed policy detaches it; deleting a user drops its policies and memberships.
        #expect(try await m.deleteManagedPolicy(arn: policy.arn))
        #expect(try await m.attachmentCount(arn: policy.arn) == 0)
        #expect(try await m.deleteEntity(user))
        #expect(try await m.inlinePolicies(user).isEmpty)
        #expect(try await m.attachedPolicies(user).isEmpty)
        #expect(try await m.users(inGroup: "devs", account: account).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func oidcProvidersAreUniquePerARN(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let github = OIDCProviderRecord(accountID: account, url: "token.actions.githubusercontent.com",
                                        clientIDs: ["sts.amazonaws.com", "other"], thumbprints: [String(repeating: "a", count: 40)],
                                        createdAt: 7)
        let gitlab = OIDCProviderRecord(accountID: account, url: "gitlab.example.com/ci", createdAt: 8)
        #expect(github.arn == "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com")
        #expect(try await m.createOIDCProvider(github))
        #expect(try await !m.createOIDCProvider(github))
        #expect(try await m.createOIDCProvider(gitlab))
        // The same issuer in another account is another provider.
        #expect(try await m.createOIDCProvider(OIDCProviderRecord(accountID: "210987654321", url: github.url, createdAt: 9)))
        #expect(try await m.oidcProvider(arn: github.arn) == github)
        #expect(try await m.oidcProvider(arn: gitlab.arn) == gitlab)
        #expect(try await m.oidcProviders(account: account) == [gitlab, github].sorted { $0.arn < $1.arn })
        #expect(try await m.deleteOIDCProvider(arn: github.arn))
        #expect(try await !m.deleteOIDCProvider(arn: github.arn))
        #expect(try await m.oidcProvider(arn: github.arn) == nil)
        #expect(try await m.oidcProviders(account: "210987654321").count == 1)
    }

    @Test(arguments: Backend.persistent)
    func identitySurvivesReopen(_ backend: Backend) async throws {
        let s = try await backend.make()
        _ = try await s.metadata.createEntity(IAMEntityRecord(kind: .role, accountID: account, name: "r", id: "AROA1", createdAt: 1,
                                                              assumeRolePolicy: "{}", maxSessionDuration: 3600))
        try await s.metadata.putInlinePolicy(IAMEntityKey(.role, account, "r"), name: "p", document: "{}")
        let (_, reopened) = try await s.reopen!()
        #expect(try await reopened.entity(IAMEntityKey(.role, account, "r"))?.maxSessionDuration == 3600)
        #expect(try await reopened.inlinePolicy(IAMEntityKey(.role, account, "r"), name: "p") == "{}")
        _ = try await reopened.createOIDCProvider(OIDCProviderRecord(accountID: account, url: "idp.example.com", clientIDs: ["a"], createdAt: 2))
        let (_, again) = try await s.reopen!()
        #expect(try await again.oidcProvider(arn: "arn:aws:iam::123456789012:oidc-provider/idp.example.com")?.clientIDs == ["a"])
    }

    @Test func repositorySettingsWithoutPolicyStillDecode() throws {
        let old = #"{"imageTagMutability":"MUTABLE","exclusionFilters":[],"scanOnPush":false,"encryptionType":"AES256","tags":[]}"#
        let s = try JSONDecoder().decode(RepositorySettings.self, from: Data(old.utf8))
        #expect(s.policy == nil)
        var withPolicy = s
        withPolicy.policy = "{}"
        let round = try JSONDecoder().decode(RepositorySettings.self, from: JSONEncoder().encode(withPolicy))
        #expect(round.policy == "{}")
    }
}
