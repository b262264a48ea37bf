import BerthCore
import BerthPostgres
import BerthStorage
import Testing

/// `EventOutboxIndexSchema`'s migration on an outbox made by the version before it: three events, e1 and e3
/// delivered and purged, e2's delivery pending. Writes them into `before`; returns e3's sequence, the
/// highest one given so far.
func fillOutboxBeforeTheIndexMigration(_ before: any MetadataStore) async throws -> Int64 {
    let events = (1...3).map { OutboxEvent(id: "e\($0)", time: Double($0), detailType: "ECR Image Action", account: "111111111111", body: "{}") }
    try await before.appendEvents(events)
    #expect(try await before.routeEvents(limit: 10, at: 4) { _ in ["t"] } == 3)
    let claimed = try await before.claimDeliveries(at: 4, until: 40, limit: 10)
    #expect(claimed.map(\.event.id) == ["e1", "e2", "e3"])
    for d in claimed where d.event.id != "e2" {
        #expect(try await before.finishDelivery(sequence: d.sequence, target: "t", outcome: .delivered(at: 5)))
    }
    #expect(try await before.purgeEvents(before: 3.5) == 2)
    return claimed[2].sequence
}

/// After the migration: e2's pending delivery is still there (rebuilding the table did not cascade to the
/// deliveries) and finishes; a new event gets a sequence above every one given before (purged ones
/// included); the purge, now by sequence, removes delivered events older than its time and stops at the
/// first younger one.
func expectTheOutboxGoesOnAfterTheIndexMigration(_ m: any MetadataStore, highest: Int64) async throws {
    let pending = try await m.deliveries(state: .pending, after: nil, limit: 10)
    #expect(pending.map(\.event.id) == ["e2"])
    #expect(try await m.outboxCounts() == OutboxCounts(unrouted: 0, deliveries: ["t": [.pending: 1]], oldestPending: 2))
    try await m.appendEvents([OutboxEvent(id: "e4", time: 10, detailType: "ECR Image Action", account: "111111111111", body: "{}")])
    #expect(try await m.routeEvents(limit: 10, at: 11) { _ in ["t"] } == 1)
    let claimed = try await m.claimDeliveries(at: 50, until: 90, limit: 10)
    #expect(claimed.map(\.event.id) == ["e2", "e4"])
    #expect(claimed[1].sequence > highest)
    for d in claimed {
        #expect(try await m.finishDelivery(sequence: d.sequence, target: "t", outcome: .delivered(at: 51)))
    }
    #expect(try await m.purgeEvents(before: 5) == 1)  // e2; e4 is younger
    #expect(try await m.purgeEvents(before: 5) == 0)
    #expect(try await m.purgeEvents(before: 10.5) == 1)
    #expect(try await m.outboxCounts() == OutboxCounts(unrouted: 0, deliveries: [:], oldestPending: nil))
}

extension SchemaMigrationTests {
    @Test func eventOutboxIndexMigrationKeepsDeliveriesAndSequences() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < EventOutboxIndexSchema.version })
        #expect(previous.count == EventOutboxIndexSchema.version - 1)
        let highest = try await fillOutboxBeforeTheIndexMigration(try SQLiteMetadataStore(path: path, migrations: previous))
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == EventOutboxIndexSchema.version }?.name == EventOutboxIndexSchema.name)
        try await expectFixtureV1(m)
        let indexes = try SQLiteConnection(path: path, readOnly: true)
            .query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event_outbox' ORDER BY name") { $0.text(0) }
        #expect(indexes == ["event_outbox_unrouted"])
        try await expectTheOutboxGoesOnAfterTheIndexMigration(m, highest: highest)
    }
}

extension PostgresSchemaTests {
    @Test(.enabled(if: PostgresTestDatabase.available))
    func eventOutboxIndexMigrationKeepsDeliveriesAndSequences() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == EventOutboxIndexSchema.name })
        #expect(PostgresMetadataStore.migrations[version].version == EventOutboxIndexSchema.version)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let highest = try await fillOutboxBeforeTheIndexMigration(before)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        try await expectTheOutboxGoesOnAfterTheIndexMigration(m, highest: highest)
    }
}
