import BerthCore
@testable import BerthPostgres
@testable import BerthStorage
import Foundation
import Testing

/// `PostgresMetadataStore.importEmbedded`: an embedded database copied table by table into PostgreSQL
/// (`berth admin migrate`), resumable, with the derived accounting copied rather than counted twice.
@Suite struct MetadataImportTests {
    typealias M = MetadataImport

    @Test func tablesComeAfterTheTablesTheyReference() throws {
        func t(_ name: String, _ refs: String...) -> M.SourceTable { M.SourceTable(name: name, columns: ["a"], key: ["a"], references: Set(refs)) }
        let ordered = try M.dependencyOrder([t("tags", "repositories"), t("access_keys", "accounts"), t("repositories"),
                                             t("accounts"), t("event_deliveries", "event_outbox"), t("event_outbox")])
        #expect(ordered.map(\.name) == ["accounts", "access_keys", "event_outbox", "event_deliveries", "repositories", "tags"])
        #expect(throws: MetadataImportError.self) { try M.dependencyOrder([t("a", "b"), t("b", "a")]) }
    }

    @Test func valuesConvertToTheDeclaredTypeOrFail() throws {
        #expect(try M.convert(.integer(7), to: .real, at: "x") == .real(7))
        #expect(try M.convert(.real(3), to: .integer, at: "x") == .integer(3))
        #expect(try M.convert(.text("{}"), to: .bytes, at: "x") == .blob(Array("{}".utf8)))
        #expect(try M.convert(.blob(Array("é".utf8)), to: .text, at: "x") == .text("é"))
        #expect(try M.convert(.null, to: .integer, at: "x") == .null)
        #expect(throws: MetadataImportError.self) { try M.convert(.real(2.5), to: .integer, at: "t.c") }
        #expect(throws: MetadataImportError.self) { try M.convert(.blob([0xff, 0xfe]), to: .text, at: "t.c") }
        #expect(throws: MetadataImportError.self) { try M.convert(.text("x"), to: .integer, at: "t.c") }
    }

    @Test func highWaterMarksKeepTheirTypes() throws {
        let key: [SQLiteValue] = [.integer(-3), .real(0.1), .text("a\"b"), .blob([0, 255]), .null]
        #expect(try M.decodeKey(try M.encodeKey(key)) == key)
    }

    @Test func sourceTablesAreEveryTableOfTheSchemaWithTheirKeys() throws {
        let dir = try Backend.temporaryDirectory()
        _ = try SQLiteMetadataStore(path: dir + "/berth.db")
        let tables = try M.sourceTables(try SQLiteConnection(path: dir + "/berth.db", readOnly: true))
        #expect(!tables.contains { $0.name == "schema_migrations" || $0.name.hasPrefix("sqlite_") })
        #expect(tables.allSatisfy { !$0.key.isEmpty })
        let names = tables.map(\.name)
        #expect(names.firstIndex(of: "repositories")! < names.firstIndex(of: "tags")!)
        #expect(names.firstIndex(of: "event_outbox")! < names.firstIndex(of: "event_deliveries")!)
        #expect(tables.first { $0.name == "tags" }?.key == ["repo_id", "tag"])
    }

    /// An embedded database with a bit of everything the copy must carry: repositories, blobs, images, tags,
    /// an upload, an account with a key, an event.
    static func embedded() async throws -> (path: String, store: SQLiteMetadataStore) {
        let dir = try Backend.temporaryDirectory()
        let path = dir + "/berth.db"
        let m = try SQLiteMetadataStore(path: path)
        _ = try await m.createAccount(registry, at: 1)
        for r in 0..<4 {
            let repo = k("repo-\(r)")
            try await m.createRepository(repo, at: Double(r))
            let layer = Digest.sha256(of: Array("layer \(r % 2)".utf8)), config = Digest.sha256(of: Array("config \(r)".utf8))
            try await m.recordBlob(layer, size: 100 + Int64(r % 2), linkTo: repo, at: 2)
            try await m.recordBlob(config, size: 10, linkTo: repo, at: 2)
            for t in 0..<3 {
                let d = Digest.sha256(of: Array("manifest \(r) \(t)".utf8))
                let record = ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil,
                                            bytes: Array("{\"m\":\(r),\"t\":\(t)}".utf8), subject: nil, annotationsJSON: nil,
                                            pushedAt: 3, imageSize: 110)
                _ = try await m.putManifest(ManifestPut(record: record, blobs: [layer, config], manifests: [], tag: "v\(t)"), in: repo)
            }
        }
        try await m.recordBlob(Digest.sha256(of: Array("unreferenced".utf8)), size: 7, linkTo: k("repo-0"), at: 4)
        try await m.createUpload(UploadSession(id: "u-1", repository: k("repo-1"), offset: 5, startedAt: 1, updatedAt: 2))
        return (path, m)
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func anInterruptedCopyResumesAndCarriesEverything() async throws {
        let (path, sqlite) = try await Self.embedded()
        let source = try SQLiteConnection(path: path, readOnly: true)
        let target = try await PostgresTestDatabase.store(schema: try await PostgresTestDatabase.newSchema())

        await #expect(throws: MetadataImportError.self) {
            _ = try await target.importEmbedded(from: source, label: path, batchSize: 2, stopAfterBatches: 5)
        }
        let outcome = try await target.importEmbedded(from: source, label: path, batchSize: 2)
        #expect(outcome.resumed && !outcome.alreadyComplete)
        #expect(outcome.tables.allSatisfy { $0.sourceRows == $0.targetRows })
        #expect(outcome.tables.first { $0.name == "manifests" }?.targetRows == 12)
        #expect(outcome.tables.reduce(0) { $0 + $1.copied } < outcome.tables.reduce(0) { $0 + $1.sourceRows },
                "the second run continued the first rather than starting over")

        // The same registry, read through the store: tags, manifests, blobs, uploads, and the accounting as SQLite had it.
        for r in 0..<4 {
            #expect(try await target.listTags(in: k("repo-\(r)"), after: nil, limit: 10) == ["v0", "v1", "v2"])
            let d = Digest.sha256(of: Array("manifest \(r) 2".utf8))
            #expect(try await target.resolveTag("v2", in: k("repo-\(r)")) == d)
            #expect(try await target.manifest(d, in: k("repo-\(r)"))?.bytes == Array("{\"m\":\(r),\"t\":2}".utf8))
        }
        #expect(try await target.upload("u-1")?.offset == 5)
        #expect(try await target.storageUsage(account: nil, repositories: true) == sqlite.storageUsage(account: nil, repositories: true))
        // Serial columns continue after the copied ids: a new repository gets a fresh one, and is counted.
        try await target.createRepository(k("after"), at: 9)
        let layer = Digest.sha256(of: Array("layer 0".utf8))
        try await target.recordBlob(layer, size: 100, linkTo: k("after"), at: 9)
        #expect(try await target.listRepositories(in: registry, after: nil, limit: 10).contains("after"))

        let again = try await target.importEmbedded(from: source, label: path)
        #expect(again.alreadyComplete)
        await #expect(throws: MetadataImportError.self) { _ = try await target.importEmbedded(from: source, label: "/elsewhere/berth.db") }
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func aDatabaseInUseIsRefused() async throws {
        let (path, _) = try await Self.embedded()
        let target = try await PostgresTestDatabase.store(schema: try await PostgresTestDatabase.newSchema())
        try await target.createRepository(k("mine"), at: 1)
        let error = await #expect(throws: MetadataImportError.self) {
            _ = try await target.importEmbedded(from: try SQLiteConnection(path: path, readOnly: true), label: path)
        }
        #expect(error?.description.contains("not empty") == true)
        #expect(try await target.listRepositories(in: registry, after: nil, limit: 10) == ["mine"])
    }

    @Test func aStoreAndACopyDoNotOpenOneDatabaseTogether() async throws {
        let dir = try Backend.temporaryDirectory()
        var store: SQLiteMetadataStore? = try SQLiteMetadataStore(path: dir + "/berth.db")
        #expect(try DatabaseOpenLock.exclusive(database: dir + "/berth.db") == nil)
        store = nil
        _ = store
        let copying = try #require(try DatabaseOpenLock.exclusive(database: dir + "/berth.db"))
        #expect(throws: StorageError.self) { _ = try SQLiteMetadataStore(path: dir + "/berth.db") }
        withExtendedLifetime(copying) {}
    }
}
