import BerthCore
import BerthStorage
import Foundation
import Testing

/// Pull through cache rules and Secrets Manager secrets in the metadata store, the same in every store.
@Suite struct PullThroughConformance {
    func rule(_ account: String, _ prefix: String, at: Double = 1) -> PullThroughCacheRuleRecord {
        PullThroughCacheRuleRecord(registryID: account, ecrRepositoryPrefix: prefix, upstreamRegistryURL: "registry-1.docker.io",
                                   upstreamRegistry: "docker-hub", upstreamRepositoryPrefix: "ROOT",
                                   credentialARN: "arn:aws:secretsmanager:us-east-1:\(account):secret:ecr-pullthroughcache/hub-AbCdEf",
                                   customRoleARN: nil, createdAt: at, updatedAt: at)
    }

    @Test(arguments: Backend.allCases)
    func rulesAreKeptPerRegistryWithTheirLimit(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        #expect(try await m.createPullThroughCacheRule(rule("111111111111", "hub"), limit: 2) == .created)
        #expect(try await m.createPullThroughCacheRule(rule("111111111111", "hub", at: 5), limit: 2) == .alreadyExists)
        #expect(try await m.createPullThroughCacheRule(rule("111111111111", "ROOT"), limit: 2) == .created)
        #expect(try await m.createPullThroughCacheRule(rule("111111111111", "quay"), limit: 2) == .limitExceeded)
        // Another registry has its own rules and its own count.
        #expect(try await m.createPullThroughCacheRule(rule("222222222222", "hub"), limit: 2) == .created)
        #expect(try await m.pullThroughCacheRules(of: "111111111111").map(\.ecrRepositoryPrefix) == ["ROOT", "hub"])
        #expect(try await m.pullThroughCacheRules(of: "111111111111").first { $0.ecrRepositoryPrefix == "hub" } == rule("111111111111", "hub"))

        let updated = try await m.updatePullThroughCacheRule(registryID: "111111111111", prefix: "hub") { r in
            r.credentialARN = nil
            r.updatedAt = 9
            r.ecrRepositoryPrefix = "ignored"  // the key is not changed by an update
        }
        #expect(updated?.updatedAt == 9 && updated?.credentialARN == nil && updated?.ecrRepositoryPrefix == "hub")
        #expect(try await m.updatePullThroughCacheRule(registryID: "111111111111", prefix: "nope") { $0.updatedAt = 1 } == nil)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await m.updatePullThroughCacheRule(registryID: "111111111111", prefix: "hub") { r in r.updatedAt = 99; throw Refused() }
        }
        #expect(try await m.pullThroughCacheRules(of: "111111111111").first { $0.ecrRepositoryPrefix == "hub" }?.updatedAt == 9)

        if let reopen = s.reopen {
            let (_, again) = try await reopen()
            #expect(try await again.pullThroughCacheRules(of: "111111111111").map(\.updatedAt).sorted() == [1, 9])
        }
        #expect(try await m.deletePullThroughCacheRule(registryID: "111111111111", prefix: "hub")?.updatedAt == 9)
        #expect(try await m.deletePullThroughCacheRule(registryID: "111111111111", prefix: "hub") == nil)
        #expect(try await m.pullThroughCacheRules(of: "111111111111").map(\.ecrRepositoryPrefix) == ["ROOT"])
        #expect(try await m.pullThroughCacheRules(of: "222222222222").count == 1)
    }

    func secret(_ account: String, _ name: String) -> StoredSecret {
        StoredSecret(account: account, name: name, arn: "arn:aws:secretsmanager:us-east-1:\(account):secret:\(name)-AbCdEf",
                     description: "d", kmsKeyID: nil, createdAt: 1, lastChangedAt: 1, tags: [ResourceTag(key: "k", value: "v")],
                     versions: [StoredSecretVersion(id: String(repeating: "a", count: 32), sealedString: "v1:sealed", sealedBinary: nil,
                                                    stages: ["AWSCURRENT"], createdAt: 1)])
    }

    @Test(arguments: Backend.allCases)
    func secretsAreKeptPerAccount(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        #expect(try await m.createSecret(secret("111111111111", "ecr-pullthroughcache/b")))
        #expect(try await !m.createSecret(secret("111111111111", "ecr-pullthroughcache/b")))
        #expect(try await m.createSecret(secret("111111111111", "ecr-pullthroughcache/a")))
        #expect(try await m.createSecret(secret("222222222222", "ecr-pullthroughcache/b")))
        #expect(try await m.secret(account: "111111111111", name: "ecr-pullthroughcache/b") == secret("111111111111", "ecr-pullthroughcache/b"))
        #expect(try await m.secret(account: "111111111111", name: "nope") == nil)
        #expect(try await m.secrets(account: "111111111111").map(\.name) == ["ecr-pullthroughcache/a", "ecr-pullthroughcache/b"])
        let updated = try await m.updateSecret(account: "111111111111", name: "ecr-pullthroughcache/b") { s in
            s.versions.append(StoredSecretVersion(id: String(repeating: "b", count: 32), sealedString: "v1:other", sealedBinary: nil,
                                                  stages: ["AWSPENDING"], createdAt: 2))
            s.lastChangedAt = 2
        }
        #expect(updated?.versions.count == 2)
        if let reopen = s.reopen {
            let (_, again) = try await reopen()
            #expect(try await again.secret(account: "111111111111", name: "ecr-pullthroughcache/b")?.versions.map(\.stages) == [["AWSCURRENT"], ["AWSPENDING"]])
        }
        #expect(try await m.deleteSecret(account: "111111111111", name: "ecr-pullthroughcache/b"))
        #expect(try await !m.deleteSecret(account: "111111111111", name: "ecr-pullthroughcache/b"))
        #expect(try await m.secret(account: "222222222222", name: "ecr-pullthroughcache/b") != nil)
    }
}

/// Migration 8 on a database made by the code before it: the data stays, the new tables work.
@Suite struct PullThroughMigration {
    @Test func migrationEightKeepsEarlierDataAndAddsItsTables() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-ptc-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/berth.db"
        let key = RepositoryKey(registryID: "111111111111", name: try RepositoryName("before/eight"))
        let before = Array(SQLiteMetadataStore.migrations.prefix { $0.version < 8 })
        do {
            let old = try SQLiteMetadataStore(path: path, migrations: before)
            #expect(try await old.createRepository(key, at: 5))
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try await m.repository(key)?.createdAt == 5)
        let rule = PullThroughCacheRuleRecord(registryID: "111111111111", ecrRepositoryPrefix: "hub", upstreamRegistryURL: "quay.io",
                                              upstreamRegistry: "quay", upstreamRepositoryPrefix: "ROOT", credentialARN: nil,
                                              customRoleARN: nil, createdAt: 1, updatedAt: 1)
        #expect(try await m.createPullThroughCacheRule(rule, limit: 50) == .created)
        #expect(try await m.pullThroughCacheRules(of: "111111111111") == [rule])
    }
}
