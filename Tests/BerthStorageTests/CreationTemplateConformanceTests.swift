import BerthCore
import BerthPostgres
import BerthStorage
import Foundation
import Testing

/// Repository creation templates in the metadata store, the same in every store.
@Suite struct CreationTemplateConformance {
    func template(_ registry: String, _ prefix: String, at: Double = 1) -> RepositoryCreationTemplateRecord {
        RepositoryCreationTemplateRecord(registryID: registry, prefix: prefix, description: "d", encryptionType: "KMS",
                                         kmsKey: "arn:aws:kms:us-east-1:\(registry):key/1234abcd-12ab-34cd-56ef-1234567890ab",
                                         resourceTags: [ResourceTag(key: "team", value: "a")], imageTagMutability: .immutableWithExclusion,
                                         exclusionFilters: ["latest"], repositoryPolicy: "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
                                         lifecyclePolicy: "{\"rules\":[]}", appliedFor: [.createOnPush, .replication],
                                         customRoleARN: "arn:aws:iam::\(registry):role/r", createdAt: at, updatedAt: at)
    }

    @Test(arguments: Backend.allCases)
    func templatesAreKeptPerRegistryWithTheirLimit(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        let a = "111111111111", b = "222222222222"
        #expect(try await m.createCreationTemplate(template(a, "prod"), limit: 3) == .created)
        #expect(try await m.createCreationTemplate(template(a, "prod", at: 5), limit: 3) == .alreadyExists)
        #expect(try await m.createCreationTemplate(template(a, "ROOT"), limit: 3) == .created)
        #expect(try await m.createCreationTemplate(template(a, "prod/team"), limit: 3) == .created)
        #expect(try await m.createCreationTemplate(template(a, "dev"), limit: 3) == .limitExceeded)
        // Another registry has its own templates and its own count; a public registry's stored id is another key.
        #expect(try await m.createCreationTemplate(template(b, "prod"), limit: 3) == .created)
        #expect(try await m.createCreationTemplate(template("public:" + a, "prod"), limit: 3) == .created)
        // Bytewise prefix order (`ROOT` before lower case), on every store.
        #expect(try await m.creationTemplates(of: a).map(\.prefix) == ["ROOT", "prod", "prod/team"])
        #expect(try await m.creationTemplates(of: a).first { $0.prefix == "prod" } == template(a, "prod"))
        #expect(try await m.creationTemplates(of: "333333333333").isEmpty)

        let updated = try await m.updateCreationTemplate(registryID: a, prefix: "prod") { t in
            t.description = nil
            t.appliedFor = [.pullThroughCache]
            t.updatedAt = 9
            t.prefix = "ignored"  // the key is not changed by an update
            t.registryID = "ignored"
        }
        #expect(updated?.updatedAt == 9 && updated?.description == nil && updated?.prefix == "prod" && updated?.registryID == a)
        #expect(try await m.updateCreationTemplate(registryID: a, prefix: "nope") { $0.updatedAt = 1 } == nil)
        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            try await m.updateCreationTemplate(registryID: a, prefix: "prod") { t in t.updatedAt = 99; throw Refused() }
        }
        #expect(try await m.creationTemplates(of: a).first { $0.prefix == "prod" }?.appliedFor == [.pullThroughCache])
        #expect(try await m.creationTemplates(of: a).first { $0.prefix == "prod" }?.updatedAt == 9)

        if let reopen = s.reopen {
            let (_, again) = try await reopen()
            #expect(try await again.creationTemplates(of: a).map(\.updatedAt).sorted() == [1, 1, 9])
            #expect(try await again.creationTemplates(of: a).first { $0.prefix == "ROOT" } == template(a, "ROOT"))
        }
        #expect(try await m.deleteCreationTemplate(registryID: a, prefix: "prod")?.updatedAt == 9)
        #expect(try await m.deleteCreationTemplate(registryID: a, prefix: "prod") == nil)
        #expect(try await m.creationTemplates(of: a).map(\.prefix) == ["ROOT", "prod/team"])
        #expect(try await m.creationTemplates(of: b).count == 1)
        // Room again under the limit.
        #expect(try await m.createCreationTemplate(template(a, "dev"), limit: 3) == .created)
    }
}

/// Migration 9 on a database made by the code before it: the data stays, the new table works.
@Suite struct CreationTemplateMigration {
    let key = RepositoryKey(registryID: "111111111111", name: try! RepositoryName("before/nine"))
    let rule = PullThroughCacheRuleRecord(registryID: "111111111111", ecrRepositoryPrefix: "hub", upstreamRegistryURL: "quay.io",
                                          upstreamRegistry: "quay", upstreamRepositoryPrefix: "ROOT", credentialARN: nil,
                                          customRoleARN: nil, createdAt: 1, updatedAt: 1)
    var template: RepositoryCreationTemplateRecord {
        RepositoryCreationTemplateRecord(registryID: "111111111111", prefix: "hub", appliedFor: [.pullThroughCache], createdAt: 2, updatedAt: 2)
    }

    @Test func migrationNineKeepsEarlierDataOnSQLite() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-rct-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/berth.db"
        do {
            let old = try SQLiteMetadataStore(path: path, migrations: Array(SQLiteMetadataStore.migrations.prefix { $0.version < 9 }))
            #expect(try await old.createRepository(key, at: 5))
            #expect(try await old.createPullThroughCacheRule(rule, limit: 50) == .created)
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try await m.repository(key)?.createdAt == 5)
        #expect(try await m.pullThroughCacheRules(of: "111111111111") == [rule])
        #expect(try await m.createCreationTemplate(template, limit: 10) == .created)
        #expect(try await m.creationTemplates(of: "111111111111") == [template])
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func migrationNineKeepsEarlierDataOnPostgreSQL() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let old = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations.prefix { $0.version < 9 }))
        #expect(try await old.createRepository(key, at: 5))
        #expect(try await old.createPullThroughCacheRule(rule, limit: 50) == .created)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version).contains(9))
        #expect(try await m.repository(key)?.createdAt == 5)
        #expect(try await m.pullThroughCacheRules(of: "111111111111") == [rule])
        #expect(try await m.createCreationTemplate(template, limit: 10) == .created)
        #expect(try await m.creationTemplates(of: "111111111111") == [template])
    }
}
