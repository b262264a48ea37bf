import BerthCore
import BerthPostgres
import BerthStorage
import Testing

/// `UsageSlotsSchema`: the storage accounting spread over slot rows on PostgreSQL.
@Suite struct UsageSlotsTests {
    let gc = GarbageCollectionConformance()

    /// Two repositories of one account sharing a config blob, and a third account: made before the migration.
    func fillBeforeTheMigration(_ m: any MetadataStore) async throws -> Digest {
        try await gc.seed(m, [k("a"), k("b"), RepositoryKey(storedRegistryID: "222222222222", name: "c")])
        let m1 = try await gc.put(m, k("a"), "1", blobs: [gc.cfg, gc.l1, gc.l2], size: 310, tag: "v1")
        _ = try await gc.put(m, k("b"), "2", blobs: [gc.cfg, gc.l1], size: 110)
        _ = try await gc.put(m, RepositoryKey(storedRegistryID: "222222222222", name: "c"), "3", blobs: [gc.l1], size: 100)
        return m1
    }

    /// The figures made before the migration are read the same after it, and go on following puts and deletes
    /// (the same figures as `GarbageCollectionConformance.accountingFollowsPutsAndDeletes`).
    func expectTheAccountingGoesOn(_ m: any MetadataStore, image m1: Digest) async throws {
        #expect(try await gc.figures(m, k("a")) == UsageFigures(images: 1, storedBytes: 310, uniqueBytes: 200, sharedBytes: 110,
                                                                 reclaimableBytes: 400))
        #expect(try await gc.account(m, "222222222222") == UsageFigures(images: 1, storedBytes: 100, uniqueBytes: 0, sharedBytes: 100,
                                                                         reclaimableBytes: 400))
        var usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.blobs == 4 && usage.bytes == 710 && usage.unreferencedBlobs == 1 && usage.unreferencedBytes == 400)

        _ = try await m.deleteImage(.tag("v1", of: m1), in: k("a"))
        #expect(try await gc.figures(m, k("a")) == UsageFigures(reclaimableBytes: 600))
        #expect(try await gc.figures(m, k("b")) == UsageFigures(images: 1, storedBytes: 110, uniqueBytes: 10, sharedBytes: 100,
                                                                 reclaimableBytes: 600))
        _ = try await gc.put(m, k("a"), "4", blobs: [gc.l3], size: 400)
        #expect(try await gc.figures(m, k("a")) == UsageFigures(images: 1, storedBytes: 400, uniqueBytes: 400, sharedBytes: 0,
                                                                 reclaimableBytes: 200))
        #expect(try await m.deleteRepository(RepositoryKey(storedRegistryID: "222222222222", name: "c")))
        #expect(try await gc.account(m, "222222222222") == UsageFigures())
        #expect(try await m.deleteRepository(k("a")))
        usage = try await m.storageUsage(account: nil, repositories: true)
        #expect(usage.repositories.keys.map(\.name) == ["b"])
        #expect(usage.accounts[registry] == UsageFigures(images: 1, storedBytes: 110, uniqueBytes: 110, sharedBytes: 0,
                                                         reclaimableBytes: 600))
        #expect(usage.unreferencedBlobs == 2 && usage.unreferencedBytes == 600)
    }

    @Test func sqliteKeepsItsFiguresThroughTheMigration() async throws {
        let migrations = SchemaMigrationTests()
        let path = try migrations.directory() + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < UsageSlotsSchema.version })
        #expect(previous.count == UsageSlotsSchema.version - 1)
        let m1 = try await fillBeforeTheMigration(try SQLiteMetadataStore(path: path, migrations: previous))
        let m = try SQLiteMetadataStore(path: path)
        #expect(try migrations.history(path).first { $0.version == UsageSlotsSchema.version }?.name == UsageSlotsSchema.name)
        try await expectTheAccountingGoesOn(m, image: m1)
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func postgresKeepsItsFiguresThroughTheMigration() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == UsageSlotsSchema.name })
        #expect(PostgresMetadataStore.migrations[version].version == UsageSlotsSchema.version)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let m1 = try await fillBeforeTheMigration(before)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        try await expectTheAccountingGoesOn(m, image: m1)
    }

    /// Pushes into one repository at once, each a new tag: every image, blob and byte is counted, and the
    /// transactions seldom fail each other. Before the slots (one row of counts per repository, per account and
    /// for the whole registry) and the tag written before it is read, each put's transaction updated the same
    /// rows and read the page of the tags index the others wrote to: most of them failed and ran again.
    @Test(.enabled(if: PostgresTestDatabase.available))
    func concurrentPushesIntoOneRepositoryAreAllCountedWithFewRetries() async throws {
        let m = try await PostgresTestDatabase.store(schema: try await PostgresTestDatabase.newSchema())
        let repo = k("busy")
        try await m.createRepository(repo, at: 0)
        let n = 32
        let layers = (0..<n).map { GarbageCollectionConformance.blob("busy-layer-\($0)") }
        for (i, d) in layers.enumerated() { try await m.recordBlob(d, size: Int64(1000 + i), linkTo: repo, at: 0) }
        let retriesBefore = m.transactionRetries
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<n {
                group.addTask { _ = try await gc.put(m, repo, "busy-\(i)", blobs: [layers[i]], size: Int64(1000 + i), tag: "t\(i)") }
            }
            try await group.waitForAll()
        }
        let retries = m.transactionRetries - retriesBefore
        let bytes = Int64((0..<n).reduce(0) { $0 + 1000 + $1 })
        #expect(try await gc.figures(m, repo) == UsageFigures(images: Int64(n), storedBytes: bytes, uniqueBytes: bytes, sharedBytes: 0))
        let usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.blobs == Int64(n) && usage.bytes == bytes && usage.unreferencedBlobs == 0)
        #expect(try await m.listTags(in: repo, after: nil, limit: 100).count == n)
        // Measured: 1 to 5 retries; with the counts of schema version 15 (one row per key), 62 and 63. What is left shows in
        // the server log at commit and at the update of the blob rows' reference counts (SSI's page-level read locks).
        #expect(retries <= n / 2, "\(retries) retries for \(n) concurrent puts")
    }
}
