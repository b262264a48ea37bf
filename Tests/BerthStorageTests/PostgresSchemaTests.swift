import BerthCore
import BerthPostgres
import BerthStorage
import Foundation
import Testing

/// The PostgreSQL schema follows SQLite's version for version, and migrates safely when nodes start together.
@Suite struct PostgresSchemaTests {
    @Test func everySQLiteVersionHasItsPostgreSQLCounterpart() {
        #expect(PostgresMetadataStore.migrations.map(\.version) == SQLiteMetadataStore.migrations.map(\.version),
                "a schema change adds the next version to both SQLiteMetadataStore.migrations and PostgresMetadataStore.migrations")
        #expect(PostgresMetadataStore.migrations.map(\.name) == SQLiteMetadataStore.migrations.map(\.name))
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func nodesStartingTogetherApplyEachVersionOnce() async throws {
        for _ in 0..<3 {
            let schema = try await PostgresTestDatabase.newSchema()
            // Eight stores on one empty schema at once: all must come up, the schema must be recorded once per version.
            let stores = try await withThrowingTaskGroup(of: PostgresMetadataStore.self) { group in
                for _ in 0..<8 { group.addTask { try await PostgresTestDatabase.store(schema: schema) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(stores.count == 8)
            let history = try await stores[0].schemaHistory()
            #expect(history.map(\.version) == PostgresMetadataStore.migrations.map(\.version))
            try await stores[3].createRepository(RepositoryKey(storedRegistryID: "111111111111", name: "r"), at: 1)
            #expect(try await stores[5].listRepositories(in: "111111111111", after: nil, limit: 10) == ["r"])
        }
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func aSchemaFromANewerBerthIsRefusedUnchanged() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        _ = try await PostgresTestDatabase.store(schema: schema)
        let older = Array(PostgresMetadataStore.migrations.dropLast())
        await #expect(throws: PostgresSchemaTooNewError.self) { _ = try await PostgresTestDatabase.store(schema: schema, migrations: older) }
        let again = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await again.schemaHistory().count == PostgresMetadataStore.migrations.count)
    }

    /// "blob tombstones and lifecycle policy previews" on a schema made by the previous version: a repository
    /// from before keeps working, and `blobs.doomed` takes a 64-bit claim token (PostgreSQL's INTEGER does not).
    @Test(.enabled(if: PostgresTestDatabase.available))
    func tombstonesMigrationWidensTheClaimToken() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == "blob tombstones and lifecycle policy previews" })
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: "111111111111", name: "r")
        try await before.createRepository(repo, at: 1)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        let a = Digest.sha256(of: Array("a".utf8)), b = Digest.sha256(of: Array("b".utf8))
        try await m.recordBlob(a, size: 3, linkTo: repo, at: 1)
        try await m.recordBlob(b, size: 5, linkTo: repo, at: 1)
        _ = try await m.markUnreferencedBlobs(at: 2)
        let wide = BlobClaim(token: Int64.max - 7, at: 700, staleBefore: 100)
        let due = try await m.collectableBlobs(markedBefore: 2, claim: wide, after: nil, limit: 10).map(\.digest)
        #expect(Set(due) == [a, b])
        #expect(try await m.doomBlobs(due, markedBefore: 2, claim: wide).count == 2)
        #expect(try await m.recordBlob(a, size: 3, linkTo: repo, at: 701, finishingUpload: nil, bytesVerified: true) == .beingCollected)
        #expect(try await m.removeDoomedBlobs(due, claim: wide).count == 2)
        #expect(try await m.recordBlob(a, size: 3, linkTo: repo, at: 701, finishingUpload: nil, bytesVerified: false) == .collected)
        #expect(try await m.purgeBlobTombstones(removedBefore: 701) == 2)
        let preview = StoredLifecyclePreview(policyText: "{}", results: Array("[]".utf8), createdAt: 10)
        try await m.putLifecyclePreview(preview, for: repo, expiredBefore: 0)
        #expect(try await m.lifecyclePreview(repo, notBefore: 10) == preview)
    }

    /// "event outbox and deliveries" on a schema made by the previous version, holding an image: deleting
    /// it afterwards writes its event in the deletion's transaction, which routes and claims.
    @Test(.enabled(if: PostgresTestDatabase.available))
    func eventOutboxMigrationWorksOnVersion6Data() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == "event outbox and deliveries" })
        #expect(PostgresMetadataStore.migrations[version].version == 7)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: "111111111111", name: "r")
        try await before.createRepository(repo, at: 1)
        let digest = Digest.sha256(of: Array("{}".utf8))
        let rec = ManifestRecord(digest: digest, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                                 subject: nil, annotationsJSON: nil, pushedAt: 1)
        _ = try await before.putManifest(ManifestPut(record: rec, blobs: [], manifests: [], tag: "v1"), in: repo)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        #expect(try await m.resolveTag("v1", in: repo) == digest)
        let event = OutboxEvent(id: "e1", time: 5, detailType: "ECR Image Action", account: "111111111111", body: "{}")
        #expect(try await m.deleteImage(.tag("v1", of: digest), in: repo, events: { _ in [event] }) == .deleted(tags: ["v1"], imageDeleted: true))
        #expect(try await m.routeEvents(limit: 10, at: 6) { _ in ["t"] } == 1)
        #expect(try await m.claimDeliveries(at: 6, until: 60, limit: 10).map(\.event) == [event])
    }

    /// The replication queue's version on a schema made by the version before it, holding an image: the
    /// image reads back, and a push enqueues its job in its transaction.
    @Test(.enabled(if: PostgresTestDatabase.available))
    func replicationQueueMigrationWorksOnThePreviousVersionsData() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == ReplicationQueueSchema.name })
        #expect(PostgresMetadataStore.migrations[version].version == ReplicationQueueSchema.version)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: "111111111111", name: "r")
        try await before.createRepository(repo, at: 1)
        let old = ManifestRecord(digest: Digest.sha256(of: Array("{}".utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                                 bytes: Array("{}".utf8), subject: nil, annotationsJSON: nil, pushedAt: 1)
        _ = try await before.putManifest(ManifestPut(record: old, blobs: [], manifests: [], tag: "v1"), in: repo)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        #expect(try await m.resolveTag("v1", in: repo) == old.digest)
        let new = ManifestRecord(digest: Digest.sha256(of: Array("{ }".utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                                 bytes: Array("{ }".utf8), subject: nil, annotationsJSON: nil, pushedAt: 2)
        var put = ManifestPut(record: new, blobs: [], manifests: [], tag: "v2")
        put.replication = [ReplicationJobKey(sourceRegistry: repo.registryID, repository: repo.name, digest: new.digest,
                                             destination: ReplicationDestination(region: "us-west-2", registryId: "222222222222"))]
        _ = try await m.putManifest(put, in: repo)
        #expect(try await m.dueReplicationJobs(at: 2, limit: 10).map(\.key.digest) == [new.digest])
    }

    /// Download counts on a schema made by the version before it, holding an index and its child: the
    /// images read back at 0 downloads, and pulls then count (not the child by digest).
    @Test(.enabled(if: PostgresTestDatabase.available))
    func downloadCountMigrationWorksOnThePreviousVersionsData() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == DownloadCountSchema.name })
        #expect(PostgresMetadataStore.migrations[version].version == DownloadCountSchema.version)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: "public:111111111111", name: "r")
        try await before.createRepository(repo, at: 1)
        let child = ManifestRecord(digest: Digest.sha256(of: Array("{}".utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                                   bytes: Array("{}".utf8), subject: nil, annotationsJSON: nil, pushedAt: 1)
        let index = ManifestRecord(digest: Digest.sha256(of: Array("{ }".utf8)), mediaType: MediaType.ociIndex, artifactType: nil,
                                   bytes: Array("{ }".utf8), subject: nil, annotationsJSON: nil, pushedAt: 2)
        _ = try await before.putManifest(ManifestPut(record: child, blobs: [], manifests: [], tag: "amd64"), in: repo)
        _ = try await before.putManifest(ManifestPut(record: index, blobs: [], manifests: [child.digest], tag: "latest"), in: repo)
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        #expect(try await m.resolveTag("latest", in: repo) == index.digest)
        let images = try await m.images(in: repo, after: nil, limit: 10)
        #expect(images.map(\.downloadCount) == [0, 0] && images.map(\.lastPulledAt) == [nil, nil])
        try await m.recordPulls([ImagePulls(repository: repo, digest: index.digest, lastPulledAt: 8, byTag: 1),
                                 ImagePulls(repository: repo, digest: child.digest, lastPulledAt: 8, byDigest: 1)])
        #expect(try await m.image(index.digest, in: repo)?.downloadCount == 1)
        #expect(try await m.image(child.digest, in: repo)?.downloadCount == 0)
        #expect(try await m.publicRepositorySummaries(includingTexts: false).map(\.downloadCount) == [1])
    }

    /// A store migrated to the latest version from the version before `name`'s, where upload "in-progress"
    /// (at offset 100) was started; the upload is checked to read back as it was.
    static func migratedWithAnUpload(pastMigration name: String, version number: Int) async throws -> PostgresMetadataStore {
        let schema = try await PostgresTestDatabase.newSchema()
        let version = try #require(PostgresMetadataStore.migrations.firstIndex { $0.name == name })
        #expect(PostgresMetadataStore.migrations[version].version == number)
        let before = try await PostgresTestDatabase.store(schema: schema, migrations: Array(PostgresMetadataStore.migrations[..<version]))
        let repo = RepositoryKey(storedRegistryID: "111111111111", name: "r")
        try await before.createRepository(repo, at: 1)
        try await before.createUpload(UploadSession(id: "in-progress", repository: repo, offset: 100, startedAt: 3, updatedAt: 4))
        let m = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await m.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
        #expect(try await m.upload("in-progress") == UploadSession(id: "in-progress", repository: repo, offset: 100,
                                                                   startedAt: 3, updatedAt: 4))
        return m
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func uploadChunkMigrationKeepsUploadsInProgress() async throws {
        let m = try await Self.migratedWithAnUpload(pastMigration: UploadChunkSchema.name, version: UploadChunkSchema.version)
        #expect(try await m.advanceUpload("in-progress", from: 100, to: 150, at: 5))
        #expect(try await m.advanceUpload("in-progress", from: 150, to: 400, at: 6))
        let s = try await m.upload("in-progress")
        #expect(s?.offset == 400 && s?.lastChunkSize == 250 && s?.smallestInnerChunk == 50)
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func uploadWriterMigrationKeepsUploadsInProgress() async throws {
        let m = try await Self.migratedWithAnUpload(pastMigration: UploadWriterSchema.name, version: UploadWriterSchema.version)
        try await expectTheUploadInProgressIsClaimedAndGoesOn(m)
    }

    @Test(.enabled(if: PostgresTestDatabase.available))
    func aFailingMigrationLeavesThePreviousVersion() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let broken = PostgresMetadataStore.migrations + [
            PostgresSchemaMigration(version: PostgresMetadataStore.migrations.count + 1, name: "broken",
                                    sql: "CREATE TABLE half_done(x INTEGER); SELECT no_such_function();"),
        ]
        await #expect(throws: (any Error).self) { _ = try await PostgresTestDatabase.store(schema: schema, migrations: broken) }
        let store = try await PostgresTestDatabase.store(schema: schema)
        #expect(try await store.schemaHistory().map(\.version) == PostgresMetadataStore.migrations.map(\.version))
    }

    @Test func connectionURLsAndPGVariables() throws {
        let full = try PostgresConnectionSettings(url: "postgres://berth:s%40cret@db.example.com:6543/registry?sslmode=require",
                                                  environment: ["PGHOST": "ignored", "PGDATABASE": "ignored"])
        #expect(full == PostgresConnectionSettings.make(host: "db.example.com", port: 6543, user: "berth", password: "s@cret",
                                                         database: "registry", sslMode: "require"))
        let socket = try PostgresConnectionSettings(url: "postgresql:///berth?host=/var/run/postgresql&user=reg", environment: [:])
        #expect(socket.socketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(socket.user == "reg" && socket.database == "berth")
        let env = try PostgresConnectionSettings(url: nil, environment: ["PGHOST": "pg", "PGPORT": "5433", "PGUSER": "u",
                                                                         "PGPASSWORD": "p", "PGSSLMODE": "disable"])
        #expect(env == PostgresConnectionSettings.make(host: "pg", port: 5433, user: "u", password: "p", database: "u", sslMode: "disable"))
        let defaults = try PostgresConnectionSettings(url: nil, environment: ["USER": "alice"])
        #expect(defaults == PostgresConnectionSettings.make(host: "localhost", port: 5432, user: "alice", password: nil,
                                                             database: "alice", sslMode: "prefer"))
        #expect(throws: PostgresConnectionSettings.Invalid.self) { try PostgresConnectionSettings(url: "mysql://x/y", environment: [:]) }
        #expect(throws: PostgresConnectionSettings.Invalid.self) {
            try PostgresConnectionSettings(url: "postgres://x/y?sslmode=sometimes", environment: [:])
        }
        #expect(throws: PostgresConnectionSettings.Invalid.self) { try PostgresConnectionSettings(url: "postgres://x:99999/y", environment: [:]) }
        #expect(throws: PostgresConnectionSettings.Invalid.self) { try PostgresConnectionSettings(url: "postgres://x/y?colour=red", environment: [:]) }
        // A password never appears in the message about a bad URL.
        do {
            _ = try PostgresConnectionSettings(url: "postgresx://u:topsecret@h/db", environment: [:])
        } catch {
            #expect(!"\(error)".contains("topsecret"))
        }
    }
}

extension PostgresConnectionSettings {
    static func make(host: String, port: Int, user: String, password: String?, database: String, sslMode: String) -> Self {
        var s = try! PostgresConnectionSettings(url: nil, environment: [:])
        (s.host, s.port, s.user, s.password, s.database, s.sslMode) = (host, port, user, password, database, sslMode)
        return s
    }
}
