import BerthCore
@testable import BerthStorage
import Foundation
import Testing

/// The metadata schema's migrations, on databases made by earlier code (Fixtures/v1: made by the
/// unversioned Berth with Fixtures/make_fixture.py) and on new, future and damaged ones.
@Suite struct SchemaMigrationTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static let account = "123456789012"
    static let app = RepositoryKey(storedRegistryID: account, name: "fixture/app")
    static let v1 = Digest.parse("sha256:68301536634b6ec3581f743957af6d87560f2291d5cc29c9aa713db6fbab2a27")!
    static let v2 = Digest.parse("sha256:caa857dba9caf08230e1f8ef49cade3b0f6553644c349cd08182806b20b92c2c")!
    static let multi = Digest.parse("sha256:a8f5f4d7f13e4e4626a7e1812a7de4aa768eaf7a50402a4d1fbbd7fd332f7809")!
    static let v1Layer = Digest.parse("sha256:4ef6015c3dfa5a2e882d4fb2d62a940f303a2628b5cbedeeda04737f859293bf")!

    /// A fresh directory; with `fixture`, a copy of that fixture's berth.db in it.
    func directory(fixture: String? = nil) throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-mig-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if let fixture {
            try FileManager.default.copyItem(atPath: Self.fixtures.appendingPathComponent("\(fixture)/berth.db").path, toPath: dir + "/berth.db")
        }
        return dir
    }

    func history(_ path: String) throws -> [(version: Int, name: String, appliedAt: Double)] {
        try SchemaMigrator.history(SQLiteConnection(path: path, readOnly: true))
    }

    func schema(_ path: String) throws -> [String] {
        try SchemaMigrator.objects(SQLiteConnection(path: path, readOnly: true)).map { "\($0.type) \($0.name): \(SchemaMigrator.normalized($0.sql))" }
    }

    func rowCounts(_ path: String) throws -> [String: Int64] {
        let c = try SQLiteConnection(path: path, readOnly: true)
        let tables = try c.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'schema_migrations'") { $0.text(0) }
        return Dictionary(uniqueKeysWithValues: try tables.map { t in (t, try c.query("SELECT count(*) FROM \"\(t)\"") { $0.int(0) }.first ?? -1) })
    }

    /// The version a test's own migration gets: the one after the last real migration.
    static let next = SQLiteMetadataStore.migrations.count + 1
    static let shipped = SQLiteMetadataStore.migrations.map(\.version)
    static let baselineOnly = Array(SQLiteMetadataStore.migrations.prefix(1))

    /// Rows of the tables the fixture was made with (later migrations add tables of their own).
    func fixtureRowCounts(_ path: String) throws -> [String: Int64] {
        try rowCounts(path).filter { Self.fixtureCounts[$0.key] != nil }
    }

    static let fixtureCounts: [String: Int64] = [
        "access_keys": 3, "account_settings": 3, "accounts": 2, "blobs": 4, "iam_attachments": 2, "iam_entities": 4,
        "iam_group_members": 2, "iam_inline_policies": 1, "iam_managed_policies": 1, "iam_oidc_providers": 1, "image_scans": 1,
        "manifest_references": 6, "manifests": 3, "repositories": 2, "repository_blobs": 4, "tags": 3,
        "uploads": 1,
    ]

    /// Everything Fixtures/v1 holds, read through the store's API (values from Fixtures/v1/expected.json).
    func expectFixtureV1(_ m: SQLiteMetadataStore) async throws {
        let a = Self.account
        #expect(try await m.listRepositories(in: a, after: nil, limit: 10) == ["fixture/app", "fixture/empty"])
        let repo = try #require(try await m.repository(Self.app))
        #expect(repo.settings.imageTagMutability == .immutable)
        #expect(repo.settings.lifecyclePolicy == nil && repo.settings.lifecycleEvaluatedAt == nil, "settings written before lifecycle policies")
        #expect(repo.settings.policy == #"{"Version":"2012-10-17","Statement":[{"Sid":"OtherAccountPulls","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#)
        #expect(try await m.repository(RepositoryKey(storedRegistryID: a, name: "fixture/empty"))?.settings == RepositorySettings())

        #expect(try await m.listTags(in: Self.app, after: nil, limit: 10) == ["multi", "v1", "v2"])
        #expect(try await m.resolveTag("v1", in: Self.app) == Self.v1)
        #expect(try await m.resolveTag("v2", in: Self.app) == Self.v2)
        #expect(try await m.resolveTag("multi", in: Self.app) == Self.multi)
        let manifest = try #require(try await m.manifest(Self.v1, in: Self.app))
        #expect(manifest.mediaType == "application/vnd.oci.image.manifest.v1+json")
        #expect(Digest.sha256(of: manifest.bytes) == Self.v1)
        #expect(try await m.manifest(Self.multi, in: Self.app)?.mediaType == "application/vnd.oci.image.index.v1+json")
        #expect(try await m.manifestsReferencing(Self.v1, in: Self.app) == [Self.multi])
        #expect(try await m.manifestsReferencing(Self.v1Layer, in: Self.app) == [Self.v1])
        let image = try #require(try await m.image(Self.v1, in: Self.app))
        #expect(image.tags == ["v1"])
        #expect(image.lastPulledAt != nil)
        // The storage class migration: every image of the previous release is ACTIVE (STANDARD), never archived.
        for i in try await m.images(in: Self.app, after: nil, limit: 10) {
            #expect(i.status == .active && i.status.storageClass == .standard)
            #expect(i.lastArchivedAt == nil && i.lastActivatedAt == nil)
        }
        #expect(try await m.manifest(Self.multi, in: Self.app)?.status == .active)
        #expect(try await m.pullTimeExclusions(of: a).isEmpty)
        #expect(try await m.imageCount(in: Self.app) == 3)
        #expect(try await m.linkedBlobSize(Self.v1Layer, in: Self.app) == 600)
        #expect(try await m.blobSize(Self.v1Layer) == 600)

        let upload = try #require(try await m.upload("edf66f7f-479b-4590-a1ed-84595ae85ec7"))
        #expect(upload.repository == Self.app && upload.offset == 0)
        let scan = try #require(try await m.scan(Self.v1, in: Self.app))
        #expect(scan.state == .failed && scan.trigger == "MANUAL")

        #expect(try await m.listAccounts().map(\.id) == ["123456789012", "210987654321"])
        #expect(try await m.accessKey("AKIAIOSFODNN7EXAMPLE")?.principalARN == "arn:aws:iam::123456789012:root")
        let alice = try #require(try await m.accessKey("AKIAPGYZNKER23YOW2F5"))
        #expect(alice.principalARN == "arn:aws:iam::123456789012:user/team/alice" && alice.status == "Active")
        #expect(alice.sealedSecret.hasPrefix("v1:"))
        #expect(try await m.accessKeys(ofAccount: "210987654321").map(\.accessKeyID) == ["AKIA3MJFIFKMZDJQRK56"])
        #expect(try await m.accountSetting(a, "BASIC_SCAN_TYPE_VERSION") == "CLAIR")
        #expect(try await m.accountSetting(a, "berth:REGISTRY_POLICY")?.contains(#""Sid":"Replicate""#) == true)
        #expect(try await m.accountSetting(a, "REGISTRY_SCANNING_CONFIGURATION")?.contains("SCAN_ON_PUSH") == true)

        #expect(try await m.entities(.user, account: a).map(\.name) == ["alice", "bob"])
        #expect(try await m.entity(IAMEntityKey(.user, a, "alice"))?.path == "/team/")
        #expect(try await m.inlinePolicy(IAMEntityKey(.user, a, "alice"), name: "push-fixture")
                == #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:123456789012:repository/fixture/*"}]}"#)
        #expect(try await m.users(inGroup: "devs", account: a) == ["alice", "bob"])
        let pullAll = "arn:aws:iam::123456789012:policy/fixture/pull-all"
        #expect(try await m.attachedPolicies(IAMEntityKey(.group, a, "devs")) == [pullAll])
        let policy = try #require(try await m.managedPolicy(arn: pullAll))
        #expect(policy.document.contains("ecr:GetAuthorizationToken") && policy.description == "pull everything")
        let role = try #require(try await m.entity(IAMEntityKey(.role, a, "ci")))
        #expect(role.maxSessionDuration == 7200 && role.description == "builds")
        #expect(role.assumeRolePolicy?.contains("sts:AssumeRole") == true)
        #expect(try await m.attachedPolicies(IAMEntityKey(.role, a, "ci")) == ["arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"])
        let oidc = try #require(try await m.oidcProvider(arn: "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"))
        #expect(oidc.clientIDs == ["sts.amazonaws.com"] && oidc.thumbprints == ["6938fd4d98bab03faadb97b34396831e3780aea1"])
    }

    @Test func fixtureV1IsAdoptedAsVersion1AndReadsBack() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let before = try schema(path)
        #expect(try history(path).isEmpty)
        // Adoption alone (the baseline only) changes no table, index or row.
        _ = try SQLiteMetadataStore(path: path, migrations: Self.baselineOnly)
        #expect(try schema(path) == before, "adoption changes no table or index")
        #expect(try fixtureRowCounts(path) == Self.fixtureCounts)
        // The same objects as a database the baseline creates.
        let fresh = try directory() + "/berth.db"
        _ = try SQLiteMetadataStore(path: fresh, migrations: Self.baselineOnly)
        #expect(Set(try schema(fresh)) == Set(before))
        do {
            let m = try SQLiteMetadataStore(path: path)
            try await expectFixtureV1(m)
        }
        #expect(try history(path).map(\.version) == Self.shipped)
        #expect(try history(path).first?.name == "baseline")
        #expect(try fixtureRowCounts(path) == Self.fixtureCounts)

        // Opening again is a no-op: nothing applied, nothing recorded anew.
        let recorded = try history(path)
        let again = try SQLiteMetadataStore(path: path)
        try await expectFixtureV1(again)
        #expect(try history(path).map(\.appliedAt) == recorded.map(\.appliedAt))
        #expect(try await again.db.write { c in try SchemaMigrator.migrate(c, path: path, migrations: SQLiteMetadataStore.migrations) } == [])
    }

    @Test func laterMigrationsApplyToFixtureV1() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let next = SQLiteMetadataStore.migrations.count + 1
        let migrations = SQLiteMetadataStore.migrations + [
            SchemaMigration(version: Self.next, name: "test: repository notes", sql: "ALTER TABLE repositories ADD COLUMN notes TEXT NOT NULL DEFAULT ''"),
            SchemaMigration(version: Self.next + 1, name: "test: note every repository") { c in
                try c.execute("UPDATE repositories SET notes = 'from ' || name")
            },
        ]
        let m = try SQLiteMetadataStore(path: path, migrations: migrations)
        #expect(try history(path).map(\.version) == Self.shipped + [Self.next, Self.next + 1])
        #expect(try history(path).map(\.name) == SQLiteMetadataStore.migrations.map(\.name) + ["test: repository notes", "test: note every repository"])
        try await expectFixtureV1(m)
        let notes = try SQLiteConnection(path: path, readOnly: true).query("SELECT notes FROM repositories ORDER BY name") { $0.text(0) }
        #expect(notes == ["from fixture/app", "from fixture/empty"])
    }

    @Test func freshDatabaseGetsEveryMigration() async throws {
        let path = try directory() + "/berth.db"
        let next = SQLiteMetadataStore.migrations.count + 1
        let migrations = SQLiteMetadataStore.migrations + [
            SchemaMigration(version: Self.next, name: "test: notes", sql: "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL)"),
        ]
        let m = try SQLiteMetadataStore(path: path, migrations: migrations)
        #expect(try history(path).map(\.version) == Self.shipped + [Self.next])
        #expect(Set(try rowCounts(path).keys).isSuperset(of: Self.fixtureCounts.keys))
        #expect(try rowCounts(path)["notes"] == 0)
        #expect(try await m.createRepository(Self.app, at: 1, settings: RepositorySettings()))
        #expect(try await m.listRepositories(in: Self.account, after: nil, limit: 10) == ["fixture/app"])
    }

    @Test func futureVersionIsRefusedUntouched() throws {
        let path = try directory() + "/berth.db"
        do {
            let c = try SQLiteConnection(path: path)
            try c.exec(SQLiteMetadataStore.baselineSchema)
            try c.exec(SchemaMigrator.bookkeeping)
            try c.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES(1, 'baseline', 1), (?, 'from the future', 2)",
                          [.integer(Int64(Self.next))])
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = #expect(throws: SchemaTooNewError.self) { _ = try SQLiteMetadataStore(path: path) }
        #expect(error?.found == Self.next && error?.supported == SQLiteMetadataStore.migrations.count)
        #expect(error?.description.contains("schema version \(Self.next)") == true)
        #expect(error?.description.contains("versions up to \(SQLiteMetadataStore.migrations.count)") == true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "not even switched to WAL")
    }

    @Test func failingMigrationRollsBackAndKeepsTheVersion() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        _ = try SQLiteMetadataStore(path: path)
        let counts = try rowCounts(path)
        let broken = SQLiteMetadataStore.migrations + [
            SchemaMigration(version: Self.next, name: "test: half done") { c in
                try c.exec("CREATE TABLE half(x); DELETE FROM tags;")
                try c.exec("INSERT INTO no_such_table VALUES(1)")
            },
        ]
        #expect(throws: SQLiteError.self) { _ = try SQLiteMetadataStore(path: path, migrations: broken) }
        #expect(try history(path).map(\.version) == Self.shipped)
        #expect(try rowCounts(path) == counts, "no table created, no row deleted")
        // A migration breaking a foreign key is refused the same way.
        let dangling = SQLiteMetadataStore.migrations + [
            SchemaMigration(version: Self.next, name: "test: dangling tag", sql: "DELETE FROM repositories WHERE name = 'fixture/app'"),
        ]
        #expect(throws: StorageError.self) { _ = try SQLiteMetadataStore(path: path, migrations: dangling) }
        #expect(try history(path).map(\.version) == Self.shipped)
        try await expectFixtureV1(try SQLiteMetadataStore(path: path))
    }

    @Test func concurrentOpensApplyEachMigrationOnce() async throws {
        let path = try directory() + "/berth.db"
        let next = SQLiteMetadataStore.migrations.count + 1
        let migrations = SQLiteMetadataStore.migrations + [
            SchemaMigration(version: Self.next, name: "test: counter", sql: "CREATE TABLE counter(n INTEGER)"),
            SchemaMigration(version: Self.next + 1, name: "test: count") { c in try c.exec("INSERT INTO counter VALUES(1)") },
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<6 {
                group.addTask { _ = try SQLiteMetadataStore(path: path, migrations: migrations) }
            }
            try await group.waitForAll()
        }
        #expect(try history(path).map(\.version) == Self.shipped + [Self.next, Self.next + 1])
        #expect(try SQLiteConnection(path: path, readOnly: true).query("SELECT count(*) FROM counter") { $0.int(0) } == [1])
    }

    @Test func unversionedDatabaseMissingTablesGetsThem() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        do {
            let c = try SQLiteConnection(path: path)
            try c.exec("DROP TABLE iam_oidc_providers; DROP INDEX image_scans_unfinished;")
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).map(\.version) == Self.shipped)
        #expect(try await m.oidcProviders(account: Self.account).isEmpty)
        #expect(try schema(path).contains { $0.hasPrefix("index image_scans_unfinished:") })
        #expect(try await m.resolveTag("v1", in: Self.app) == Self.v1)
    }

    @Test func unversionedDatabaseWithOtherTablesIsRefusedUntouched() throws {
        let path = try directory() + "/berth.db"
        do {
            let c = try SQLiteConnection(path: path)
            try c.exec("CREATE TABLE repositories(id INTEGER PRIMARY KEY, name TEXT)")
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let error = #expect(throws: SchemaMismatchError.self) { _ = try SQLiteMetadataStore(path: path) }
        #expect(error?.description.contains("table repositories") == true)
        let c = try SQLiteConnection(path: path, readOnly: true)
        #expect(try SchemaMigrator.recordedVersion(c) == 0)
        #expect(try c.query("SELECT name FROM sqlite_master WHERE type = 'table'") { $0.text(0) } == ["repositories"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == bytes)
    }

    /// The garbage collection migration counts the references the fixture already holds: every blob of
    /// Fixtures/v1 is referenced by fixture/app's manifests, none by another repository.
    @Test func garbageCollectionMigrationCountsFixtureV1References() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).map(\.name).contains("garbage collection and storage accounting"))
        let usage = try await m.storageUsage(account: nil, repositories: true)
        #expect(usage.blobs == 4 && usage.bytes == 1_440)
        #expect(usage.unreferencedBlobs == 0 && usage.unreferencedBytes == 0)
        let figures = UsageFigures(images: 3, storedBytes: 1_800, uniqueBytes: 1_440, sharedBytes: 0, reclaimableBytes: 0)
        #expect(usage.repositories == [Self.app: figures])
        #expect(usage.accounts == [Self.account: figures])
        #expect(try await m.linkedBlob(Self.v1Layer, in: Self.app) == LinkedBlob(size: 600, isCandidate: false))
        #expect(try await m.markUnreferencedBlobs(at: 1) == 0)
        // Deleting the image by its last tag is refused while the index lists it; deleting the index and
        // then v1 leaves v1's own blobs unreferenced.
        guard case .deleted = try await m.deleteImage(.digest(Self.multi), in: Self.app) else { Issue.record("index"); return }
        guard case .deleted = try await m.deleteImage(.digest(Self.v1), in: Self.app) else { Issue.record("v1"); return }
        let after = try await m.storageUsage(account: nil, repositories: true)
        #expect(after.unreferencedBlobs == 2 && after.unreferencedBytes == 720)
        #expect(after.repositories[Self.app] == UsageFigures(images: 1, storedBytes: 600, uniqueBytes: 720, sharedBytes: 0,
                                                            reclaimableBytes: 720))
        // Those deletes ran the triggers on the tables version 5 rebuilt digest first, without a second index.
        #expect(try history(path).map(\.name).contains("blob usage keyed by digest first"))
        let c = try SQLiteConnection(path: path, readOnly: true)
        let indexes = try c.query("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('blob_usage', 'account_blob_usage') AND sql IS NOT NULL") { $0.text(0) }
        #expect(indexes.isEmpty)
        #expect(try c.query("SELECT name FROM pragma_index_info('sqlite_autoindex_blob_usage_1') ORDER BY seqno") { $0.text(0) }.prefix(2) == ["digest", "repo_id"])
    }

    @Test func tombstonesAndPreviewsMigrationWorksOnFixtureV1() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).map(\.name).contains("blob tombstones and lifecycle policy previews"))
        // The fixture's blobs go through a whole collection: claimed, removed, tombstoned, recorded again
        // only once verified.
        guard case .deleted = try await m.deleteImage(.digest(Self.multi), in: Self.app) else { Issue.record("index"); return }
        guard case .deleted = try await m.deleteImage(.digest(Self.v1), in: Self.app) else { Issue.record("v1"); return }
        _ = try await m.markUnreferencedBlobs(at: 1)
        let claim = BlobClaim(token: 3, at: 2, staleBefore: -600)
        let due = try await m.collectableBlobs(markedBefore: 1, claim: claim, after: nil, limit: 10)
        #expect(due.count == 2 && due.map(\.digest).contains(Self.v1Layer))
        #expect(try await m.doomBlobs(due.map(\.digest), markedBefore: 1, claim: claim).count == 2)
        #expect(try await m.removeDoomedBlobs(due.map(\.digest), claim: claim).count == 2)
        #expect(try await m.recordBlob(Self.v1Layer, size: 600, linkTo: Self.app, at: 3, finishingUpload: nil, bytesVerified: false)
                == .collected)
        #expect(try await m.purgeBlobTombstones(removedBefore: 3) == 2)
        // Previews are kept per repository and go with it.
        let preview = StoredLifecyclePreview(policyText: "{}", results: Array("[]".utf8), createdAt: 10)
        try await m.putLifecyclePreview(preview, for: Self.app, expiredBefore: 0)
        #expect(try await m.lifecyclePreview(Self.app, notBefore: 10) == preview)
        #expect(try await m.deleteRepository(Self.app))
        #expect(try SQLiteConnection(path: path, readOnly: true).query("SELECT count(*) FROM lifecycle_previews") { $0.int(0) } == [0])
    }

    /// Version 7 ("event outbox and deliveries") on a database of version 6 holding data: the data reads
    /// back, and changes to it write their events in their transactions.
    @Test func eventOutboxMigrationWorksOnVersion6Data() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let six = Array(SQLiteMetadataStore.migrations.prefix { $0.version <= 6 })
        #expect(six.count == 6)
        do {
            _ = try SQLiteMetadataStore(path: path, migrations: six)
            // Read by its rows: today's store reads columns later versions add.
            #expect(try fixtureRowCounts(path) == Self.fixtureCounts)
            #expect(try history(path).map(\.version) == [1, 2, 3, 4, 5, 6])
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == 7 }?.name == "event outbox and deliveries")
        try await expectFixtureV1(m)
        let event = OutboxEvent(id: "e1", time: 5, detailType: "ECR Image Action", account: Self.account, body: "{}")
        guard case .deleted = try await m.deleteImage(.digest(Self.multi), in: Self.app, events: { _ in [event] }) else {
            Issue.record("the index was not deleted"); return
        }
        #expect(try await m.routeEvents(limit: 10, at: 6) { _ in ["t"] } == 1)
        #expect(try await m.claimDeliveries(at: 6, until: 60, limit: 10).map(\.event) == [event])
    }

    /// The replication queue's version (`ReplicationQueueSchema.version`) on a database of the version
    /// before it holding data: the data reads back, and a push to it enqueues its jobs in its transaction.
    @Test func replicationQueueMigrationWorksOnThePreviousVersionsData() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < ReplicationQueueSchema.version })
        #expect(previous.count == ReplicationQueueSchema.version - 1)
        do {
            _ = try SQLiteMetadataStore(path: path, migrations: previous)
            // Read by its rows: today's store reads columns later versions add.
            #expect(try fixtureRowCounts(path) == Self.fixtureCounts)
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == ReplicationQueueSchema.version }?.name == ReplicationQueueSchema.name)
        try await expectFixtureV1(m)
        let bytes = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
        let record = ManifestRecord(digest: Digest.sha256(of: bytes), mediaType: MediaType.ociManifest, artifactType: nil, bytes: bytes,
                                    subject: nil, annotationsJSON: nil, pushedAt: 7)
        var put = ManifestPut(record: record, blobs: [], manifests: [], tag: "replicated")
        put.replication = [ReplicationJobKey(sourceRegistry: Self.app.registryID, repository: Self.app.name, digest: record.digest,
                                             destination: ReplicationDestination(region: "us-west-2", registryId: "999999999999"))]
        _ = try await m.putManifest(put, in: Self.app)
        #expect(try await m.dueReplicationJobs(at: 7, limit: 10).map(\.key.digest) == [record.digest])
    }

    /// `UploadChunkSchema.version` on a database of the version before it with an upload in progress: the
    /// upload reads back (its chunk sizes unknown) and goes on, its later chunks counted.
    @Test func uploadChunkMigrationKeepsUploadsInProgress() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < UploadChunkSchema.version })
        #expect(previous.count == UploadChunkSchema.version - 1)
        let session = UploadSession(id: "in-progress", repository: Self.app, offset: 100, startedAt: 3, updatedAt: 4)
        do {
            let before = try SQLiteMetadataStore(path: path, migrations: previous)
            try await before.createUpload(session)
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == UploadChunkSchema.version }?.name == UploadChunkSchema.name)
        try await expectFixtureV1(m)
        #expect(try await m.upload("in-progress") == UploadSession(id: "in-progress", repository: Self.app, offset: 100,
                                                                   startedAt: 3, updatedAt: 4))
        #expect(try await m.advanceUpload("in-progress", from: 100, to: 150, at: 5))
        #expect(try await m.advanceUpload("in-progress", from: 150, to: 400, at: 6))
        let s = try await m.upload("in-progress")
        #expect(s?.offset == 400 && s?.lastChunkSize == 250 && s?.smallestInnerChunk == 50)
    }

    /// `UploadWriterSchema.version` on a database of the version before it with an upload in progress: the
    /// upload reads back unclaimed, can be claimed (by one writer), and goes on.
    @Test func uploadWriterMigrationKeepsUploadsInProgress() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < UploadWriterSchema.version })
        #expect(previous.count == UploadWriterSchema.version - 1)
        do {
            let before = try SQLiteMetadataStore(path: path, migrations: previous)
            try await before.createUpload(UploadSession(id: "in-progress", repository: Self.app, offset: 100, startedAt: 3, updatedAt: 4))
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == UploadWriterSchema.version }?.name == UploadWriterSchema.name)
        try await expectFixtureV1(m)
        #expect(try await m.upload("in-progress") == UploadSession(id: "in-progress", repository: Self.app, offset: 100,
                                                                   startedAt: 3, updatedAt: 4))
        try await expectTheUploadInProgressIsClaimedAndGoesOn(m)
    }

    /// Download counts (`DownloadCountSchema.version`) on a database of the version before it holding data:
    /// the data reads back (pull times kept), every image starts at 0 downloads, and pulls then count
    /// (the fixture's index `multi` lists `v1` and `v2`: their GETs by digest are the index's pulls).
    @Test func downloadCountMigrationWorksOnThePreviousVersionsData() async throws {
        let path = try directory(fixture: "v1") + "/berth.db"
        let previous = Array(SQLiteMetadataStore.migrations.prefix { $0.version < DownloadCountSchema.version })
        #expect(previous.count == DownloadCountSchema.version - 1)
        let pulledBefore: [Double]
        do {
            _ = try SQLiteMetadataStore(path: path, migrations: previous)
            #expect(try fixtureRowCounts(path) == Self.fixtureCounts)
            pulledBefore = try SQLiteConnection(path: path, readOnly: true)
                .query("SELECT last_pulled_at FROM manifests WHERE digest = ?", [.text(Self.v1.description)]) { $0.double(0) }
            #expect(pulledBefore.count == 1)
        }
        let m = try SQLiteMetadataStore(path: path)
        #expect(try history(path).first { $0.version == DownloadCountSchema.version }?.name == DownloadCountSchema.name)
        #expect(try schema(path).contains { $0.contains("manifests_figures") })
        try await expectFixtureV1(m)
        #expect(try await m.image(Self.v1, in: Self.app)?.lastPulledAt == pulledBefore.first)
        #expect(try await m.images(in: Self.app, after: nil, limit: 10).map(\.downloadCount) == [0, 0, 0])
        try await m.recordPulls([ImagePulls(repository: Self.app, digest: Self.multi, lastPulledAt: 9e9, byTag: 1),
                                 ImagePulls(repository: Self.app, digest: Self.v1, lastPulledAt: 9e9, byDigest: 1),
                                 ImagePulls(repository: Self.app, digest: Self.v2, lastPulledAt: 9e9, byTag: 2, byDigest: 3)])
        #expect(try await m.image(Self.multi, in: Self.app)?.downloadCount == 1)
        #expect(try await m.image(Self.v1, in: Self.app)?.downloadCount == 0)
        #expect(try await m.image(Self.v2, in: Self.app)?.downloadCount == 2)
        #expect(try await m.image(Self.v1, in: Self.app)?.lastPulledAt == 9e9)
    }
}

/// After `UploadWriterSchema`'s migration, upload "in-progress" (at offset 100, started before it) is claimed
/// by one writer, refused to another, and advanced by the first, which releases the claim.
func expectTheUploadInProgressIsClaimedAndGoesOn(_ m: any MetadataStore) async throws {
    #expect(try await m.claimUpload("in-progress", at: 100, writer: "w", now: 6, staleBefore: 0))
    #expect(try await m.claimUpload("in-progress", at: 100, writer: "other", now: 6, staleBefore: 0) == false)
    #expect(try await m.advanceUpload("in-progress", from: 100, to: 150, at: 7, writer: "w"))
    let s = try await m.upload("in-progress")
    #expect(s?.offset == 150 && s?.writer == nil && s?.writingSince == nil && s?.lastChunkSize == 50)
}
