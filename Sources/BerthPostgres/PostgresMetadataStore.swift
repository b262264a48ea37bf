import BerthCore
import BerthStorage
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Registry metadata in PostgreSQL (the scale-out backend; issue #14): the same tables, rules and
/// transactions as `SQLiteMetadataStore`, written in PostgreSQL's dialect.
///
/// Every write that SQLite makes in one transaction is one transaction here, run `SERIALIZABLE` (SQLite's
/// own isolation, since it has one writer) and retried when PostgreSQL reports a serialization failure or
/// a deadlock, so checks and writes (tag immutability, quotas, guarded IAM writes) cannot interleave with
/// another node's. List and describe paths are one statement each; batch operations bind arrays.
public final class PostgresMetadataStore: MetadataStore, StoreChangeFeed {
    let client: PostgresClient
    let logger: Logger
    private let runTask: Task<Void, Never>
    /// The schema migration, started by `init`; every operation waits for it (and fails with its error).
    private let migration: Task<Void, any Error>
    public let authorizationGeneration: AuthorizationGeneration
    /// Tells other nodes of this one's changes and applies theirs (`PostgresChangeListener`).
    let changes: PostgresChangeListener
    private let retries = Atomic<Int>(0)

    /// Transactions run again after a serialization failure or a deadlock since this store opened: contention
    /// the schema should not have (docs/gc.md, "Accounting under concurrency"), for tests and benchmarks.
    public var transactionRetries: Int { retries.load(ordering: .relaxed) }

    /// Starts a pool of at most `maximumConnections` connections and, on the first of them, brings the
    /// schema to the latest of `migrations` (under an advisory lock, so that nodes starting together
    /// apply each version once). Returns at once: the first operation waits for the migration and throws
    /// its error (an unreachable server, a schema too new); `waitUntilReady()` waits for it.
    public init(configuration: PostgresClient.Configuration, maximumConnections: Int = 20,
                migrations: [PostgresSchemaMigration] = PostgresMetadataStore.migrations, connectTimeout: Double = 30,
                logger: Logger = Logger(label: "berth.postgres")) {
        var configuration = configuration
        configuration.options.maximumConnections = maximumConnections
        let server = configuration.host ?? configuration.unixSocketPath ?? "?"
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        self.logger = logger
        runTask = Task { await client.run() }
        let generation = AuthorizationGeneration()
        authorizationGeneration = generation
        changes = PostgresChangeListener(generation: generation, logger: logger)
        let migration = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    do {
                        try await client.withConnection { connection in
                            _ = try await PostgresSchemaMigrator.migrate(PGConnection(connection: connection, logger: logger),
                                                                         migrations: migrations)
                        }
                    } catch let error as PSQLError {
                        throw PostgresError(error, sql: "(connecting to \(server))")
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(connectTimeout))
                    throw StorageError("no connection to PostgreSQL at \(server) "
                                       + "within \(Int(connectTimeout)) s (is the server running, and are postgresURL or PG* right?)")
                }
                try await group.next()
                group.cancelAll()
            }
        }
        self.migration = migration
    }

    /// Starts listening for other nodes' changes (one connection of the pool, for good) on the first call:
    /// a server's registry observes at start, so its authorization and registry caches follow other
    /// nodes; a store nobody observes (a test, a one-off command) takes no connection for it.
    public func observeRemoteChanges(_ observer: @escaping @Sendable (StoreChange) -> Void) {
        changes.observe(observer)
        changes.start(client: client, ready: migration)
    }

    deinit {
        changes.stop()
        migration.cancel()
        runTask.cancel()
    }

    /// Waits until the schema is current; throws what the connection or the migration threw.
    public func waitUntilReady() async throws { try await migration.value }

    /// Closes the pool's connections.
    public func shutdown() {
        changes.stop()
        runTask.cancel()
    }

    /// A pooled connection for `body`; a failure to get one says so (PostgresNIO's own text is generic).
    func withConnection<T: Sendable>(_ body: (PGConnection) async throws -> T) async throws -> T {
        try await migration.value
        do {
            return try await client.withConnection { connection in try await body(PGConnection(connection: connection, logger: logger)) }
        } catch let error as PSQLError {
            throw PostgresError(error, sql: "(connecting)")
        }
    }

    /// A session advisory lock (two-key form, apart from the digests' transaction locks) on a connection
    /// kept for the whole of `body`: PostgreSQL drops it when that connection goes, so a dead node's lease
    /// is free again as soon as the server notices the closed socket.
    public func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        try await withConnection { c -> T? in
            let held = try await c.query(HotSQL.TryLease.self, [.text(name)]) { try $0.bool(0) }.first ?? false
            guard held else { return nil }
            let outcome: Result<T, any Error>
            do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
            // Unlock before the connection goes back to the pool; a failure means the connection is gone,
            // and the lock with it.
            _ = try? await c.query(HotSQL.EndLease.self, [.text(name)]) { _ in () }
            return try outcome.get()
        }
    }

    /// The first key of lease locks ("Bert").
    static let leaseClass: Int32 = 0x4265_7274

    /// One statement (or several, each on its own) on a pooled connection, outside a transaction.
    func read<T: Sendable>(_ body: (PGConnection) async throws -> T) async throws -> T {
        try await withConnection(body)
    }

    /// Runs `body` in one transaction (`SERIALIZABLE` unless told), again (up to 100 times, about 10 s) when it failed on a
    /// serialization failure or deadlock; so `body` must be safe to run twice (those given by callers —
    /// `update` — are).
    func transaction<T: Sendable>(_ isolation: String = "SERIALIZABLE", _ body: (PGConnection) async throws -> T) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await withConnection { c in
                    try await c.execute("BEGIN ISOLATION LEVEL \(isolation)")
                    do {
                        let value = try await body(c)
                        try await c.execute("COMMIT")
                        return value
                    } catch {
                        _ = try? await c.execute("ROLLBACK")
                        throw error
                    }
                }
            } catch let error as PostgresError where error.isTransient && attempt < 100 {
                attempt += 1
                retries.add(1, ordering: .relaxed)
                // Exponential backoff with full jitter (2 ms doubling up to 100 ms): a linear one of a few ms let
                // 16 pushes tagging into one repository at once exhaust their attempts (found by bench-s3-compare).
                let cap = min(UInt64(100_000_000), UInt64(1_000_000) << UInt64(min(attempt, 7)))
                try await Task.sleep(nanoseconds: UInt64.random(in: 1...cap))
            }
        }
    }

    /// A write that can change an authorization decision (see `AuthorizationGeneration`).
    @discardableResult
    func authorizationWrite<T: Sendable>(_ body: (PGConnection) async throws -> T) async throws -> T {
        defer { authorizationGeneration.advance() }
        return try await transaction("SERIALIZABLE") { c in
            let value = try await body(c)
            try await changes.notify(c, .authorization)
            return value
        }
    }

    static func repoID(_ c: PGConnection, _ key: RepositoryKey) async throws -> Int64? {
        try await c.query(HotSQL.RepositoryID.self, [.text(key.registryID), .text(key.name)]) { try $0.int(0) }.first
    }

    static func requireRepo(_ c: PGConnection, _ key: RepositoryKey) async throws -> Int64 {
        guard let id = try await repoID(c, key) else { throw BerthError.nameUnknown(key.name) }
        return id
    }

    static func repoValues(_ key: RepositoryKey) -> [PGValue] { [.text(key.registryID), .text(key.name)] }

    // MARK: repositories

    static func encode(_ settings: RepositorySettings) throws -> String { try StoredValues.encode(settings) }

    /// A repository's stored settings; one that does not decode is an error, never default settings.
    static func decode(_ text: String, of key: RepositoryKey) throws -> RepositorySettings { try StoredValues.decode(text, of: key) }

    public func createRepository(_ key: RepositoryKey, at: Double, settings: RepositorySettings) async throws -> Bool {
        let text = try Self.encode(settings)
        return try await authorizationWrite { c in
            try await c.execute("""
                INSERT INTO repositories(registry_id, name, created_at, settings) VALUES(?, ?, ?, ?) ON CONFLICT DO NOTHING
                """, [.text(key.registryID), .text(key.name), .real(at), .text(text)]) == 1
        }
    }

    public func updateRepositorySettings(
        _ key: RepositoryKey, _ update: @escaping @Sendable (inout RepositorySettings) throws -> Void
    ) async throws -> RepositorySettings? {
        try await authorizationWrite { c in
            guard let text = try await c.query("SELECT settings FROM repositories WHERE registry_id = ? AND name = ? FOR UPDATE",
                                               Self.repoValues(key), row: { try $0.text(0) }).first else { return nil }
            var settings = try Self.decode(text, of: key)
            try update(&settings)
            try await c.execute("UPDATE repositories SET settings = ? WHERE registry_id = ? AND name = ?",
                                [.text(try Self.encode(settings))] + Self.repoValues(key))
            return settings
        }
    }

    public func repository(_ key: RepositoryKey) async throws -> RepositoryRecord? {
        try await read { c in
            try await c.query("SELECT created_at, settings FROM repositories WHERE registry_id = ? AND name = ?", Self.repoValues(key)) {
                RepositoryRecord(key: key, createdAt: try $0.double(0), settings: try Self.decode(try $0.text(1), of: key))
            }.first
        }
    }

    public func listRepositories(in registryID: String, after last: String?, limit: Int) async throws -> [String] {
        try await read { c in
            try await c.query("SELECT name FROM repositories WHERE registry_id = ? AND name > ? ORDER BY name LIMIT ?",
                              [.text(registryID), .text(last ?? ""), .integer(Int64(limit) + 1)]) { try $0.text(0) }
        }
    }

    public func registryIDs() async throws -> [String] {
        try await read { c in
            try await c.query("SELECT DISTINCT registry_id FROM repositories ORDER BY registry_id", []) { try $0.text(0) }
        }
    }

    public func repositoryRecords(in registryID: String, after last: String?, limit: Int) async throws -> [RepositoryRecord] {
        try await read { c in
            try await c.query("""
                SELECT name, created_at, settings FROM repositories WHERE registry_id = ? AND name > ? ORDER BY name LIMIT ?
                """, [.text(registryID), .text(last ?? ""), .integer(Int64(limit) + 1)]) {
                let key = RepositoryKey(storedRegistryID: registryID, name: try $0.text(0))
                return RepositoryRecord(key: key, createdAt: try $0.double(1), settings: try Self.decode(try $0.text(2), of: key))
            }
        }
    }

    public func deleteRepository(_ key: RepositoryKey) async throws -> Bool {
        try await authorizationWrite { c in
            guard let id = try await c.query("DELETE FROM repositories WHERE registry_id = ? AND name = ? RETURNING id",
                                             Self.repoValues(key), row: { try $0.int(0) }).first else { return false }
            // The triggers took the repository's figures back to zero, spread over slot rows that may each be nonzero
            // (`UsageSlotsSchema`): they go with it.
            try await c.execute("DELETE FROM repository_usage WHERE repo_id = ?", [.integer(id)])
            try await changes.notify(c, .repository(key))
            return true
        }
    }

    // MARK: blobs

    /// The upload session is deleted after the transaction, by a statement of its own: in it, its read of the
    /// small `uploads` index made nearly every concurrent push's transaction fail serialization against the
    /// others' inserts of new uploads (docs/gc.md, "Accounting under concurrency"). A crash between the two
    /// leaves a session whose blob is recorded; completing it again records the blob again, and the stale-upload
    /// purge removes it.
    public func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                           finishingUpload upload: String?, bytesVerified: Bool) async throws -> BlobRecording {
        let recording = try await recordBlob(digest, size: size, linkTo: repository, at: at, bytesVerified: bytesVerified)
        if recording == .recorded, let upload { try await deleteUpload(upload) }
        return recording
    }

    func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                    bytesVerified: Bool) async throws -> BlobRecording {
        try await transaction { c in
            let d = PGValue.text(digest.description)
            // Orders this against a claim of an orphan file of this digest (`claimOrphanBlobs`), which inserts the row.
            _ = try await c.query(HotSQL.DigestLock.self, [d]) { _ in () }
            let id = try await Self.requireRepo(c, repository)
            let state = try await c.query(HotSQL.BlobState.self, [d]) {
                (doomed: try $0.bool(0), marked: try $0.bool(1))
            }.first
            if let state {
                // A collection is deleting this digest's bytes (docs/gc.md): wait for it.
                if state.doomed { return .beingCollected }
                // In use again: no longer a candidate.
                if state.marked { try await c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ?", [d]) }
            } else {
                if bytesVerified {
                    try await c.execute("DELETE FROM blob_tombstones WHERE digest = ?", [d])
                } else if try await !c.query(HotSQL.TombstoneExists.self, [d], row: { _ in true }).isEmpty {
                    // Removed recently: the collector may have deleted these very bytes after the upload put
                    // them in place; the caller checks them first.
                    return .collected
                }
                try await c.execute(HotSQL.InsertBlob.self, [d, .integer(size), .real(at)])
            }
            try await c.execute(HotSQL.LinkBlob.self, [.integer(id), d, .real(at)])
            return .recorded
        }
    }

    public func blobSize(_ digest: Digest) async throws -> Int64? {
        try await read { c in
            try await c.query("SELECT size FROM blobs WHERE digest = ? AND doomed = 0", [.text(digest.description)]) { try $0.int(0) }.first
        }
    }

    public func linkedBlobSize(_ digest: Digest, in repository: RepositoryKey) async throws -> Int64? {
        try await linkedBlob(digest, in: repository)?.size
    }

    public func repositoriesLinking(_ digest: Digest, in registryID: String, limit: Int) async throws -> [RepositoryKey] {
        guard limit > 0 else { return [] }
        return try await read { c in
            try await c.query("""
                SELECT r.name FROM repository_blobs l JOIN repositories r ON r.id = l.repo_id
                WHERE l.digest = ? AND r.registry_id = ? ORDER BY r.name LIMIT ?
                """, [.text(digest.description), .text(registryID), .integer(Int64(limit))]) {
                RepositoryKey(storedRegistryID: registryID, name: try $0.text(0))
            }
        }
    }

    public func linkBlob(_ digest: Digest, to repository: RepositoryKey, at: Double) async throws -> Bool {
        try await transaction { c in
            let id = try await Self.requireRepo(c, repository)
            let d = PGValue.text(digest.description)
            guard try await c.exists("SELECT 1 FROM blobs WHERE digest = ? AND doomed = 0", [d]) else { return false }
            try await c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ? AND candidate_since IS NOT NULL", [d])
            try await c.execute("INSERT INTO repository_blobs(repo_id, digest, linked_at) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
                                [.integer(id), d, .real(at)])
            return true
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: RepositoryKey) async throws -> Bool {
        try await transaction { c in
            let unlinked = try await c.execute("""
                DELETE FROM repository_blobs WHERE digest = ?
                AND repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?)
                """, [.text(digest.description)] + Self.repoValues(repository)) == 1
            if unlinked { try await changes.notify(c, .repository(repository)) }
            return unlinked
        }
    }

    // MARK: manifests and tags

    /// Those of `digests` (in their order) that `condition` (a predicate on `d`) holds for, in one statement.
    static func filter(_ c: PGConnection, _ digests: [Digest], where condition: String, _ extra: [PGValue] = []) async throws -> [Digest] {
        guard !digests.isEmpty else { return [] }
        return try await c.query("""
            SELECT d FROM unnest($1::text[]) WITH ORDINALITY AS x(d, n) WHERE \(condition) ORDER BY n
            """, [.texts(digests.map(\.description))] + extra) { Digest.parse(try $0.text(0)) }.compactMap { $0 }
    }

    /// Those of `digests` (in their order) that a prepared `filter` (`$1` the digests, `$2` the repository) returns.
    static func filter<Q: PreparedSQL>(_ c: PGConnection, _ digests: [Digest], _ filter: Q.Type, repo id: Int64) async throws -> [Digest] {
        guard !digests.isEmpty else { return [] }
        return try await c.query(filter, [.texts(digests.map(\.description)), .integer(id)]) { Digest.parse(try $0.text(0)) }.compactMap { $0 }
    }

    static let unlinked = "NOT EXISTS (SELECT 1 FROM repository_blobs WHERE repo_id = $2 AND digest = d)"
    static let absentManifest = "NOT EXISTS (SELECT 1 FROM manifests WHERE repo_id = $2 AND digest = d)"

    public func putManifest(_ put: ManifestPut, in repository: RepositoryKey) async throws -> ManifestPutResult {
        try await transaction { c in
            let id = try await Self.requireRepo(c, repository)
            let r = put.record
            let digest = r.digest.description
            if put.imageChecks { try await Self.checkImagePut(c, put, repo: id) }
            var current: String? = nil
            // A new tag is written first and read not at all: a lookup that finds no row read-locks the index page where
            // the row would go, and every other put tagging into the same repository writes to that page, so under
            // SERIALIZABLE concurrent pushes of new tags into one repository failed each other (docs/gc.md, "Accounting
            // under concurrency"). A failed check below rolls the tag back with the rest.
            var tagged = false
            if let tag = put.tag {
                tagged = try await c.execute(HotSQL.InsertTag.self, [.integer(id), .text(tag), .text(digest), .real(r.pushedAt)]) == 1
                if !tagged {
                    current = try await c.query(HotSQL.TagDigest.self, [.integer(id), .text(tag)]) {
                        try $0.text(0)
                    }.first
                }
            }
            if let tag = put.tag, let current, current != digest {
                guard let settings = try await c.query("SELECT settings FROM repositories WHERE id = ?", [.integer(id)], row: {
                    try Self.decode(try $0.text(0), of: repository)
                }).first else { throw BerthError.nameUnknown(repository.name) }
                if settings.isImmutable(tag: tag) { throw BerthError.tagImmutable(tag) }
            }
            if let b = try await Self.filter(c, put.blobs, HotSQL.UnlinkedBlobs.self, repo: id).first {
                throw BerthError.manifestBlobUnknown(b.description)
            }
            if let m = try await Self.filter(c, put.manifests, HotSQL.AbsentManifests.self, repo: id).first {
                throw BerthError.manifestBlobUnknown(m.description)
            }
            let created = try await c.execute(HotSQL.InsertManifest.self, [.integer(id), .text(digest), .text(r.mediaType), .optional(r.artifactType), .blob(r.bytes),
                      .optional(r.subject?.description), .optional(r.annotationsJSON), .real(r.pushedAt), .integer(r.imageSize)]) == 1
            var restored = false
            if created {
                // The reference triggers run once per row, each seeing the counts the previous one left.
                for (children, isManifest) in [(put.blobs, 0), (put.manifests, 1)] where !children.isEmpty {
                    try await c.execute(HotSQL.InsertReferences.self, [.integer(id), .text(digest), .texts(children.map(\.description)), .integer(Int64(isManifest))])
                }
            } else {
                restored = try await c.execute("""
                    UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ?
                    WHERE repo_id = ? AND digest = ? AND image_status <> 'ACTIVE'
                    """, [.real(r.pushedAt), .integer(id), .text(digest)]) == 1
            }
            var previous: Digest? = nil
            if let tag = put.tag, !tagged, current != digest {
                previous = current.flatMap { Digest.parse($0) }
                try await c.execute(HotSQL.MoveTag.self, [.integer(id), .text(tag), .text(digest), .real(r.pushedAt)])
            }
            try await insertEvents(c, put.events)
            try await enqueueReplication(c, put.replication, at: r.pushedAt)
            return ManifestPutResult(created: created, previousTagDigest: previous, restored: restored)
        }
    }

    /// ECR PutImage's checks (`ManifestPut.imageChecks`), inside the put's transaction.
    static func checkImagePut(_ c: PGConnection, _ put: ManifestPut, repo id: Int64) async throws {
        let digest = put.record.digest
        // An archived image pushed again is restored, not refused (ECR).
        if try await c.exists("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ? AND image_status = 'ACTIVE'",
                              [.integer(id), .text(digest.description)]) {
            guard let tag = put.tag else { throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: nil) }
            if try await c.exists("SELECT 1 FROM tags WHERE repo_id = ? AND tag = ? AND digest = ?",
                                  [.integer(id), .text(tag), .text(digest.description)]) {
                throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: tag)
            }
        }
        if let m = try await filter(c, put.manifests, HotSQL.AbsentManifests.self, repo: id).first {
            throw ImagePutRefusal.referencedImagesNotFound([m])
        }
        let missing = try await filter(c, put.blobs, HotSQL.UnlinkedBlobs.self, repo: id)
        if !missing.isEmpty { throw ImagePutRefusal.layersNotFound(missing) }
    }

    public func manifest(_ digest: Digest, in repository: RepositoryKey) async throws -> ManifestRecord? {
        try await read { c in
            try await c.query("""
                SELECT m.media_type, m.artifact_type, m.body, m.subject, m.annotations, m.pushed_at, m.image_size, m.image_status
                FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.digest = ? WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description)] + Self.repoValues(repository)) { row in
                ManifestRecord(digest: digest, mediaType: try row.text(0), artifactType: try row.optionalText(1),
                               bytes: try row.blob(2), subject: try row.optionalText(3).flatMap { Digest.parse($0) },
                               annotationsJSON: try row.optionalText(4), pushedAt: try row.double(5), imageSize: try row.int(6),
                               status: try Self.imageStatus(try row.text(7)))
            }.first
        }
    }

    /// One statement: the tag's manifest joined in (several nodes check their cached record against it on
    /// every manifest GET).
    public func manifestState(_ reference: ManifestStateQuery, in repository: RepositoryKey) async throws -> ManifestState? {
        try await read { c in
            switch reference {
            case .tag(let tag):
                return try await c.query(HotSQL.TaggedManifestState.self, [.text(tag)] + Self.repoValues(repository)) { row in
                    try Digest.parse(try row.text(0)).map {
                        ManifestState(digest: $0, status: try Self.imageStatus(try row.text(1)), pushedAt: try row.double(2))
                    }
                }.first ?? nil
            case .digest(let digest):
                return try await c.query(HotSQL.ManifestStateByDigest.self, [.text(digest.description)] + Self.repoValues(repository)) { row in
                    ManifestState(digest: digest, status: try Self.imageStatus(try row.text(0)), pushedAt: try row.double(1))
                }.first
            }
        }
    }

    public func resolveTag(_ tag: String, in repository: RepositoryKey) async throws -> Digest? {
        try await read { c in
            try await c.query("""
                SELECT t.digest FROM repositories r JOIN tags t ON t.repo_id = r.id AND t.tag = ? WHERE r.registry_id = ? AND r.name = ?
                """, [.text(tag)] + Self.repoValues(repository)) { Digest.parse(try $0.text(0)) }.first ?? nil
        }
    }

    public func listTags(in repository: RepositoryKey, after last: String?, limit: Int) async throws -> [String] {
        try await read { c in
            try await c.query("""
                SELECT t.tag FROM repositories r JOIN tags t ON t.repo_id = r.id
                WHERE r.registry_id = ? AND r.name = ? AND t.tag > ? ORDER BY t.tag LIMIT ?
                """, Self.repoValues(repository) + [.text(last ?? ""), .integer(Int64(limit) + 1)]) { try $0.text(0) }
        }
    }

    /// Deletes a manifest with its tags, references and scan; false when it was not there.
    static func deleteManifestRows(_ c: PGConnection, _ digest: Digest, repo id: Int64) async throws -> Bool {
        let v: [PGValue] = [.integer(id), .text(digest.description)]
        guard try await c.execute("DELETE FROM manifests WHERE repo_id = ? AND digest = ?", v) == 1 else { return false }
        try await c.execute("DELETE FROM tags WHERE repo_id = ? AND digest = ?", v)
        try await c.execute("DELETE FROM manifest_references WHERE repo_id = ? AND parent = ?", v)
        try await c.execute("DELETE FROM image_scans WHERE repo_id = ? AND digest = ?", v)
        return true
    }

    /// The manifests of a repository that reference `digest`, by digest.
    static func referencingManifests(_ c: PGConnection, _ digest: Digest, repo id: Int64) async throws -> [Digest] {
        try await c.query("SELECT parent FROM manifest_references WHERE repo_id = ? AND child = ? ORDER BY parent",
                          [.integer(id), .text(digest.description)]) { Digest.parse(try $0.text(0)) }.compactMap { $0 }
    }

    public func deleteImage(_ target: ImageDeletionTarget, in repository: RepositoryKey,
                            events: ImageDeletionEvents?) async throws -> ImageDeletion {
        try await transaction { c in
            let deletion = try await Self.deleteImage(c, target, repository)
            if case .deleted(_, true) = deletion { try await changes.notify(c, .repository(repository)) }
            if case .deleted = deletion, let events { try await insertEvents(c, events(deletion)) }
            return deletion
        }
    }

    private static func deleteImage(_ c: PGConnection, _ target: ImageDeletionTarget, _ repository: RepositoryKey) async throws
        -> ImageDeletion {
        guard let id = try await Self.repoID(c, repository) else { return .notFound }
        switch target {
        case .digest(let digest):
            let v: [PGValue] = [.integer(id), .text(digest.description)]
            guard try await c.exists("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?", v) else { return .notFound }
            let tags = try await c.query("SELECT tag FROM tags WHERE repo_id = ? AND digest = ? ORDER BY tag", v) { try $0.text(0) }
            let parents = try await Self.referencingManifests(c, digest, repo: id)
            guard parents.isEmpty else { return .referenced(by: parents) }
            _ = try await Self.deleteManifestRows(c, digest, repo: id)
            return .deleted(tags: tags, imageDeleted: true)
        case .tag(let tag, let digest):
            let untagged = try await c.execute("DELETE FROM tags WHERE repo_id = ? AND tag = ? AND digest = ?",
                                               [.integer(id), .text(tag), .text(digest.description)])
            guard untagged == 1 else { return .notFound }
            let others = try await c.exists("SELECT 1 FROM tags WHERE repo_id = ? AND digest = ?", [.integer(id), .text(digest.description)])
            // The last tag takes the image with it, unless an index still lists the image.
            guard !others, try await Self.referencingManifests(c, digest, repo: id).isEmpty else {
                return .deleted(tags: [tag], imageDeleted: false)
            }
            return .deleted(tags: [tag], imageDeleted: try await Self.deleteManifestRows(c, digest, repo: id))
        }
    }

    public func deleteTag(_ tag: String, in repository: RepositoryKey, events: TagDeletionEvents?) async throws -> Bool {
        try await transaction { c in
            let deleted = try await c.query("""
                DELETE FROM tags WHERE tag = ? AND repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?)
                RETURNING digest
                """, [.text(tag)] + Self.repoValues(repository)) { Digest.parse(try $0.text(0)) }
            guard let first = deleted.first else { return false }
            if let events, let digest = first { try await insertEvents(c, events(digest)) }
            return true
        }
    }

    public func referrers(of digest: Digest, in repository: RepositoryKey) async throws -> [ManifestSummary] {
        try await read { c in
            try await c.query("""
                SELECT m.digest, m.media_type, m.artifact_type, octet_length(m.body), m.annotations
                FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.subject = ?
                WHERE r.registry_id = ? AND r.name = ? ORDER BY m.digest
                """, [.text(digest.description)] + Self.repoValues(repository)) { row -> ManifestSummary? in
                guard let d = Digest.parse(try row.text(0)) else { return nil }
                return ManifestSummary(digest: d, mediaType: try row.text(1), artifactType: try row.optionalText(2),
                                       size: try row.int(3), annotationsJSON: try row.optionalText(4))
            }.compactMap { $0 }
        }
    }

    // MARK: uploads

    /// One statement outside any serializable transaction (`uploads` is a small, hot table: see `recordBlob`).
    public func createUpload(_ session: UploadSession) async throws {
        let inserted = try await read { c in
            try await c.execute(HotSQL.CreateUpload.self, [.text(session.id), .integer(session.offset), .real(session.startedAt), .real(session.updatedAt)]
                    + Self.repoValues(session.repository))
        }
        guard inserted == 1 else { throw BerthError.nameUnknown(session.repository.name) }
    }

    static let uploadColumns = """
        u.id, r.registry_id, r.name, u.committed, u.started_at, u.updated_at, u.last_chunk, u.smallest_inner_chunk,
        u.writer, u.writing_since
        """

    static func uploadRow(_ r: PGRow) throws -> UploadSession {
        UploadSession(id: try r.text(0), repository: RepositoryKey(storedRegistryID: try r.text(1), name: try r.text(2)),
                      offset: try r.int(3), startedAt: try r.double(4), updatedAt: try r.double(5),
                      lastChunkSize: try r.optionalInt(6).map(Int64.init), smallestInnerChunk: try r.optionalInt(7).map(Int64.init),
                      writer: try r.optionalText(8), writingSince: try r.optionalDouble(9))
    }

    public func upload(_ id: String) async throws -> UploadSession? {
        try await read { c in
            try await c.query(HotSQL.Upload.self, [.text(id)], row: Self.uploadRow).first
        }
    }

    public func claimUpload(_ id: String, at offset: Int64, writer: String, now: Double, staleBefore: Double) async throws -> Bool {
        // `UploadSession.claimable`; one statement, so the row lock orders two nodes' claims.
        try await read { c in
            try await c.execute(HotSQL.ClaimUpload.self, [.text(writer), .real(now), .text(id), .integer(offset), .text(writer), .real(staleBefore)]) == 1
        }
    }

    public func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double, writer: String?) async throws -> Bool {
        // `UploadSession.advanced`: the SET expressions read the row as it was before the update (LEAST skips NULLs).
        try await read { c in
            try await c.execute(HotSQL.AdvanceUpload.self, [.integer(offset), .real(at), .integer(offset - expected), .text(id), .integer(expected),
                      .optional(writer)]) == 1
        }
    }

    public func releaseUpload(_ id: String, writer: String) async throws {
        try await read { c in
            _ = try await c.execute("UPDATE uploads SET writer = NULL, writing_since = NULL WHERE id = ? AND writer = ?",
                                    [.text(id), .text(writer)])
        }
    }

    public func deleteUpload(_ id: String) async throws {
        try await read { c in _ = try await c.execute(HotSQL.DeleteUpload.self, [.text(id)]) }
    }

    public func staleUploads(before: Double) async throws -> [UploadSession] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.uploadColumns) FROM uploads u JOIN repositories r ON r.id = u.repo_id WHERE u.updated_at < ? ORDER BY u.id
                """, [.real(before)], row: Self.uploadRow)
        }
    }

    // MARK: images

    static let imageColumns = """
        m.digest, m.media_type, m.artifact_type, octet_length(m.body), m.image_size, m.pushed_at, m.last_pulled_at, m.subject,
        (SELECT string_agg(t.tag, E'\\n' ORDER BY t.tag) FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest),
        m.image_status, m.last_archived_at, m.last_activated_at, m.download_count
        """

    static func imageRow(_ row: PGRow) throws -> ImageSummary? {
        guard let d = Digest.parse(try row.text(0)) else { return nil }
        let tags = try row.optionalText(8).map { $0.split(separator: "\n").map(String.init) } ?? []
        return ImageSummary(digest: d, mediaType: try row.text(1), artifactType: try row.optionalText(2), manifestSize: try row.int(3),
                            imageSize: try row.int(4), pushedAt: try row.double(5), lastPulledAt: try row.optionalDouble(6),
                            subject: try row.optionalText(7).flatMap { Digest.parse($0) }, tags: tags,
                            status: try imageStatus(try row.text(9)), lastArchivedAt: try row.optionalDouble(10),
                            lastActivatedAt: try row.optionalDouble(11), downloadCount: try row.int(12))
    }

    /// A stored `image_status`; anything else is corrupt metadata, never taken as ACTIVE.
    static func imageStatus(_ text: String) throws -> ImageStatus {
        guard let status = ImageStatus(rawValue: text) else {
            throw CorruptMetadataError(what: "image status", detail: "unknown value '\(text)'")
        }
        return status
    }

    public func images(in repository: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.imageColumns) FROM repositories r JOIN manifests m ON m.repo_id = r.id
                WHERE r.registry_id = ? AND r.name = ? AND m.digest > ? ORDER BY m.digest LIMIT ?
                """, Self.repoValues(repository) + [.text(after ?? ""), .integer(Int64(limit) + 1)], row: Self.imageRow).compactMap { $0 }
        }
    }

    public func image(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageSummary? {
        try await read { c in
            try await c.query("""
                SELECT \(Self.imageColumns) FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.digest = ?
                WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description)] + Self.repoValues(repository), row: Self.imageRow).first ?? nil
        }
    }

    public func recordPulls(_ pulls: [ImagePulls]) async throws {
        guard !pulls.isEmpty else { return }
        // One statement for the batch (an image appears once in it); a time of -1 records none. The count is
        // added to the stored one, never read and written back, so nodes flushing at once add up.
        try await read { c in
            try await c.execute("""
                UPDATE manifests m SET
                    last_pulled_at = CASE WHEN p.t < 0 THEN m.last_pulled_at ELSE greatest(coalesce(m.last_pulled_at, 0), p.t) END,
                    download_count = m.download_count + p.by_tag + CASE WHEN p.by_digest = 0 OR EXISTS(
                        SELECT 1 FROM manifest_references x WHERE x.child = m.digest AND x.repo_id = m.repo_id AND x.is_manifest = 1)
                        THEN 0 ELSE p.by_digest END
                FROM (SELECT reg, name, digest, max(t) AS t, sum(by_tag)::bigint AS by_tag, sum(by_digest)::bigint AS by_digest
                      FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[])
                          AS x(reg, name, digest, t, by_tag, by_digest)
                      GROUP BY reg, name, digest) p
                JOIN repositories r ON r.registry_id = p.reg AND r.name = p.name
                WHERE m.repo_id = r.id AND m.digest = p.digest
                """, [.texts(pulls.map(\.repository.registryID)), .texts(pulls.map(\.repository.name)),
                      .texts(pulls.map(\.digest.description)), .reals(pulls.map { $0.lastPulledAt ?? -1 }),
                      .reals(pulls.map { Double($0.byTag) }), .reals(pulls.map { Double($0.byDigest) })])
        }
    }

    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double, activating: Bool, events: [OutboxEvent]) async throws -> ImageStorageClassChange {
        try await transaction { c in
            let d = PGValue.text(digest.description)
            guard let id = try await Self.repoID(c, repository),
                  let text = try await c.query("SELECT image_status FROM manifests WHERE repo_id = ? AND digest = ?",
                                               [.integer(id), d], row: { try $0.text(0) }).first
            else { return .notFound }
            let status = try Self.imageStatus(text)
            switch target {
            case .archive:
                if status == .archived { return .updated(.archived, changed: false) }
                let parents = try await c.query("""
                    SELECT x.parent FROM manifest_references x
                    JOIN manifests p ON p.repo_id = x.repo_id AND p.digest = x.parent AND p.image_status = 'ACTIVE'
                    WHERE x.repo_id = ? AND x.child = ? AND x.is_manifest = 1 ORDER BY x.parent
                    """, [.integer(id), d]) { Digest.parse(try $0.text(0)) }.compactMap { $0 }
                if !parents.isEmpty { return .referenced(by: parents) }
                try await c.execute("UPDATE manifests SET image_status = 'ARCHIVED', last_archived_at = ? WHERE repo_id = ? AND digest = ?",
                                    [.real(at), .integer(id), d])
                // ECR: scan results from before the archive are not available after a restore.
                try await c.execute("DELETE FROM image_scans WHERE repo_id = ? AND digest = ?", [.integer(id), d])
                try await changes.notify(c, .repository(repository))
                try await insertEvents(c, events)
                return .updated(.archived, changed: true)
            case .standard:
                if status == .active { return .updated(.active, changed: false) }
                if activating {
                    if status == .activating { return .updated(.activating, changed: false) }
                    try await c.execute("UPDATE manifests SET image_status = 'ACTIVATING' WHERE repo_id = ? AND digest = ?",
                                        [.integer(id), d])
                    try await changes.notify(c, .repository(repository))
                    return .updated(.activating, changed: true)
                }
                try await c.execute("UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ? WHERE repo_id = ? AND digest = ?",
                                    [.real(at), .integer(id), d])
                try await changes.notify(c, .repository(repository))
                try await insertEvents(c, events)
                return .updated(.active, changed: true)
            }
        }
    }

    public func finishActivation(_ digest: Digest, in repository: RepositoryKey, at: Double,
                                 events: [OutboxEvent]) async throws -> Bool {
        try await transaction { c in
            let done = try await c.execute("""
                UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ?
                WHERE repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?) AND digest = ?
                AND image_status = 'ACTIVATING'
                """, [.real(at)] + Self.repoValues(repository) + [.text(digest.description)]) == 1
            if done {
                try await changes.notify(c, .repository(repository))
                try await insertEvents(c, events)
            }
            return done
        }
    }

    public func activatingImages(after: ImageRef?, limit: Int) async throws -> [ImageRef] {
        try await read { c in
            try await c.query("""
                SELECT r.registry_id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
                WHERE m.image_status = 'ACTIVATING' AND (r.registry_id, r.name, m.digest) > (?, ?, ?)
                ORDER BY r.registry_id, r.name, m.digest LIMIT ?
                """, [.text(after?.repository.registryID ?? ""), .text(after?.repository.name ?? ""),
                      .text(after?.digest.description ?? ""), .integer(Int64(limit))]) { row -> ImageRef? in
                guard let digest = Digest.parse(try row.text(2)) else { return nil }
                return ImageRef(repository: RepositoryKey(storedRegistryID: try row.text(0), name: try row.text(1)), digest: digest)
            }.compactMap { $0 }
        }
    }

    public func blobsUsedOnlyByArchivedImages(_ digests: [Digest]) async throws -> [Digest] {
        try await read { c in
            try await Self.filter(c, digests, where: """
                EXISTS (SELECT 1 FROM manifest_references x WHERE x.child = d AND x.is_manifest = 0)
                AND NOT EXISTS (SELECT 1 FROM manifest_references x JOIN manifests m ON m.repo_id = x.repo_id AND m.digest = x.parent
                                WHERE x.child = d AND m.image_status = 'ACTIVE')
                AND NOT EXISTS (SELECT 1 FROM repository_blobs l WHERE l.digest = d
                                AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repo_id = l.repo_id AND x.child = l.digest))
                """)
        }
    }

    public func pullTimeExclusions(of account: String) async throws -> [PullTimeExclusion] {
        try await read { c in
            try await c.query("SELECT principal_arn, created_at FROM pull_time_exclusions WHERE account_id = ? ORDER BY principal_arn",
                              [.text(account)]) { PullTimeExclusion(principalARN: try $0.text(0), createdAt: try $0.double(1)) }
        }
    }

    public func addPullTimeExclusion(_ exclusion: PullTimeExclusion, to account: String, limit: Int) async throws -> PullTimeExclusionInsert {
        try await transaction { c in
            if try await c.exists("SELECT 1 FROM pull_time_exclusions WHERE account_id = ? AND principal_arn = ?",
                                  [.text(account), .text(exclusion.principalARN)]) { return .alreadyExists }
            if try await c.count("SELECT count(*) FROM pull_time_exclusions WHERE account_id = ?", [.text(account)]) >= limit {
                return .limitExceeded
            }
            try await c.execute("INSERT INTO pull_time_exclusions(account_id, principal_arn, created_at) VALUES(?, ?, ?)",
                                [.text(account), .text(exclusion.principalARN), .real(exclusion.createdAt)])
            return .added(exclusion)
        }
    }

    public func removePullTimeExclusion(_ principalARN: String, from account: String) async throws -> Bool {
        try await read { c in
            try await c.execute("DELETE FROM pull_time_exclusions WHERE account_id = ? AND principal_arn = ?",
                                [.text(account), .text(principalARN)]) == 1
        }
    }

    public func manifestsReferencing(_ digest: Digest, in repository: RepositoryKey) async throws -> [Digest] {
        try await read { c in
            try await c.query("""
                SELECT x.parent FROM repositories r JOIN manifest_references x ON x.repo_id = r.id AND x.child = ?
                WHERE r.registry_id = ? AND r.name = ? ORDER BY x.parent
                """, [.text(digest.description)] + Self.repoValues(repository)) { Digest.parse(try $0.text(0)) }.compactMap { $0 }
        }
    }

    public func imageCount(in repository: RepositoryKey) async throws -> Int {
        try await read { c in
            try await c.count("SELECT count(*) FROM repositories r JOIN manifests m ON m.repo_id = r.id WHERE r.registry_id = ? AND r.name = ?",
                              Self.repoValues(repository))
        }
    }

    // MARK: accounts

    public func createAccount(_ id: String, at: Double) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("INSERT INTO accounts(id, created_at) VALUES(?, ?) ON CONFLICT DO NOTHING", [.text(id), .real(at)]) == 1
        }
    }

    public func account(_ id: String) async throws -> AccountRecord? {
        try await read { c in
            try await c.query("SELECT id, created_at FROM accounts WHERE id = ?", [.text(id)]) {
                AccountRecord(id: try $0.text(0), createdAt: try $0.double(1))
            }.first
        }
    }

    public func listAccounts() async throws -> [AccountRecord] {
        try await read { c in
            try await c.query("SELECT id, created_at FROM accounts ORDER BY id") { AccountRecord(id: try $0.text(0), createdAt: try $0.double(1)) }
        }
    }

    static let keyColumns = "id, account_id, principal_arn, sealed_secret, status, created_at"

    static func keyRow(_ r: PGRow) throws -> AccessKeyRecord {
        AccessKeyRecord(accessKeyID: try r.text(0), accountID: try r.text(1), principalARN: try r.text(2), sealedSecret: try r.text(3),
                        status: try r.text(4), createdAt: try r.double(5))
    }

    static func keyValues(_ key: AccessKeyRecord) -> [PGValue] {
        [.text(key.accessKeyID), .text(key.accountID), .text(key.principalARN), .text(key.sealedSecret), .text(key.status), .real(key.createdAt)]
    }

    public func putAccessKey(_ key: AccessKeyRecord) async throws {
        try await authorizationWrite { c in
            guard try await c.exists("SELECT 1 FROM accounts WHERE id = ?", [.text(key.accountID)]) else {
                throw StorageError("unknown account \(key.accountID)")
            }
            try await c.execute("""
                INSERT INTO access_keys(\(Self.keyColumns)) VALUES(?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET account_id = excluded.account_id, principal_arn = excluded.principal_arn,
                    sealed_secret = excluded.sealed_secret, status = excluded.status, created_at = excluded.created_at
                """, Self.keyValues(key))
        }
    }

    public func accessKey(_ id: String) async throws -> AccessKeyRecord? {
        try await read { c in
            try await c.query("SELECT \(Self.keyColumns) FROM access_keys WHERE id = ?", [.text(id)], row: Self.keyRow).first
        }
    }

    public func accessKeys(ofAccount id: String) async throws -> [AccessKeyRecord] {
        try await read { c in
            try await c.query("SELECT \(Self.keyColumns) FROM access_keys WHERE account_id = ? ORDER BY id", [.text(id)], row: Self.keyRow)
        }
    }

    public func setAccessKeyStatus(_ id: String, _ status: String) async throws -> Bool {
        try await authorizationWrite { c in
            try await c.execute("UPDATE access_keys SET status = ? WHERE id = ?", [.text(status), .text(id)]) == 1
        }
    }

    public func deleteAccessKey(_ id: String) async throws -> Bool {
        try await authorizationWrite { c in try await c.execute("DELETE FROM access_keys WHERE id = ?", [.text(id)]) == 1 }
    }

    public func accountSetting(_ account: String, _ name: String) async throws -> String? {
        try await read { c in
            try await c.query(HotSQL.AccountSetting.self, [.text(account), .text(name)]) {
                try $0.text(0)
            }.first
        }
    }

    public func putAccountSetting(_ account: String, _ name: String, _ value: String) async throws {
        try await authorizationWrite { c in
            try await c.execute("""
                INSERT INTO account_settings(account_id, name, value) VALUES(?, ?, ?)
                ON CONFLICT(account_id, name) DO UPDATE SET value = excluded.value
                """, [.text(account), .text(name), .text(value)])
        }
    }
}
