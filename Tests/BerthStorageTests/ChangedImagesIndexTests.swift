import BerthCore
import BerthPostgres
@testable import BerthStorage
import Foundation
import Logging
import PostgresNIO
import Testing

/// `ChangedImagesIndexSchema`: the migration on data of the version before it (SQLite's fixture, a
/// PostgreSQL schema), and the plans of `imagesChanged`'s query, which must search the two indexes
/// instead of reading the registry's manifests.
@Suite struct ChangedImagesIndexTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/v1/berth.db")
    static let account = "123456789012"

    func record(_ text: String, at: Double) -> ManifestRecord {
        ManifestRecord(digest: Digest.sha256(of: Array(text.utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                       bytes: Array(text.utf8), subject: nil, annotationsJSON: nil, pushedAt: at)
    }

    /// The query `imagesChanged` runs (its selected columns shortened), with its values.
    static func query(since: Double) -> (String, [SQLiteValue]) {
        let (tail, values) = ReplicationQueueSchema.changedImages(registry: account, since: since, after: nil, limit: 100)
        return ("SELECT m.digest, r.name " + tail, values)
    }

    @Test func sqliteMigrationKeepsTheDataAndThePlanSearchesTheIndexes() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-idx-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/berth.db"
        try FileManager.default.copyItem(atPath: Self.fixture.path, toPath: path)
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < ChangedImagesIndexSchema.version })
        #expect(previous.count == ChangedImagesIndexSchema.version - 1)
        let before = try SQLiteMetadataStore(path: path, migrations: previous)
        let app = RepositoryKey(storedRegistryID: Self.account, name: "fixture/app")
        let changedBefore = try await before.imagesChanged(in: Self.account, since: 0, after: nil, limit: 100)
        #expect(changedBefore.count == 3, "the fixture's three images")

        let m = try SQLiteMetadataStore(path: path)
        let history = try SchemaMigrator.history(SQLiteConnection(path: path, readOnly: true))
        #expect(history.first { $0.version == ChangedImagesIndexSchema.version }?.name == ChangedImagesIndexSchema.name)
        #expect(try await m.imagesChanged(in: Self.account, since: 0, after: nil, limit: 100) == changedBefore)
        let fresh = record("{\"pushed\":\"after the migration\"}", at: 9e9)
        _ = try await m.putManifest(ManifestPut(record: fresh, blobs: [], manifests: [], tag: "later"), in: app)
        #expect(try await m.imagesChanged(in: Self.account, since: 9e9, after: nil, limit: 100).map(\.image.digest) == [fresh.digest])

        let (sql, values) = Self.query(since: 9e9)
        let plan = try SQLiteConnection(path: path, readOnly: true).query("EXPLAIN QUERY PLAN " + sql, values) { $0.text(3) }
        #expect(plan.contains { $0.contains("USING COVERING INDEX manifests_pushed_at") }, "\(plan)")
        #expect(plan.contains { $0.contains("USING INDEX tags_updated_at") }, "\(plan)")
        // Every manifest read is one looked up by its key (never a scan of a repository's or the registry's).
        #expect(plan.filter { $0.contains(" m ") }.allSatisfy { $0.contains("PRIMARY KEY (repo_id=? AND digest=?)") }, "\(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN m") || $0.hasPrefix("SCAN manifests") || $0.hasPrefix("SCAN tags") }, "\(plan)")
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func postgresMigrationKeepsTheDataAndThePlanCanSearchTheIndexes() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == ChangedImagesIndexSchema.name })
        #expect(PostgresMetadataStore.migrations[version].version == ChangedImagesIndexSchema.version)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: Self.account, name: "r")
        try await before.createRepository(repo, at: 1)
        let old = record("{}", at: 1)
        _ = try await before.putManifest(ManifestPut(record: old, blobs: [], manifests: [], tag: "v1"), in: repo)

        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        #expect(try await m.imagesChanged(in: Self.account, since: 0, after: nil, limit: 10).map(\.image.digest) == [old.digest])
        let new = record("{ }", at: 5)
        _ = try await m.putManifest(ManifestPut(record: new, blobs: [], manifests: [], tag: "v1"), in: repo)  // the tag moves too
        #expect(try await m.imagesChanged(in: Self.account, since: 5, after: nil, limit: 10).map(\.image.digest) == [new.digest])

        // On a few rows the planner rightly prefers sequential scans: with them off, the indexes must serve.
        let (sql, values) = Self.query(since: 5)
        var literal = ""
        var next = values.makeIterator()
        for ch in sql {
            guard ch == "?" else { literal.append(ch); continue }
            switch next.next() {
            case .text(let s)?: literal += "'\(s.replacingOccurrences(of: "'", with: "''"))'"
            case .real(let d)?: literal += "\(d)"
            case .integer(let i)?: literal += "\(i)"
            default: literal += "NULL"
            }
        }
        let logger = Logger(label: "test.postgres")
        let plan: [String] = try await PostgresTestDatabase.admin.get().withConnection { c in
            _ = try await c.query(PostgresQuery(unsafeSQL: "SET search_path TO \(schema)"), logger: logger)
            _ = try await c.query(PostgresQuery(unsafeSQL: "SET enable_seqscan = off"), logger: logger)
            var lines: [String] = []
            for try await row in try await c.query(PostgresQuery(unsafeSQL: "EXPLAIN " + literal), logger: logger) {
                lines.append(try row.decode(String.self))
            }
            _ = try await c.query(PostgresQuery(unsafeSQL: "RESET ALL"), logger: logger)
            return lines
        }
        #expect(plan.contains { $0.contains("manifests_pushed_at") }, "\(plan.joined(separator: "\n"))")
        #expect(plan.contains { $0.contains("tags_updated_at") }, "\(plan.joined(separator: "\n"))")
    }
}
