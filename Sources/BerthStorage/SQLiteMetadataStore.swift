import BerthCore
import Foundation

/// Registry metadata in a SQLite database (the embedded default).
public final class SQLiteMetadataStore: MetadataStore {
    let db: SQLiteDatabase
    public let authorizationGeneration = AuthorizationGeneration()
    /// `resolveTag`'s cache, told of every change of `tags` by triggers on the writer (see `TagCache`).
    let tagCache: TagCache
    /// Where `withLease` holds its locks: files beside the database, or this process for one in memory.
    private let fileLeases: FileLeases?
    private let processLeases = ProcessLeaseTable()
    /// Held while the store lives: `berth admin migrate` does not copy a database a store has open.
    private let openLock: DatabaseOpenLock?

    /// Opens (creating if needed) the database at `path` and brings its schema to the latest of
    /// `migrations` (see `SchemaMigrator`). A database recorded at a later version than the list
    /// knows (`SchemaTooNewError`), or unversioned with tables unlike the baseline's (`SchemaMismatchError`),
    /// is refused before anything is written to it.
    public init(path: String, migrations: [SchemaMigration] = SQLiteMetadataStore.migrations) throws {
        let tagCache = TagCache()
        self.tagCache = tagCache
        let inMemory = path.isEmpty || path == ":memory:" || path.hasPrefix("file::memory:")
        fileLeases = inMemory ? nil : FileLeases(databasePath: path)
        openLock = inMemory ? nil : try DatabaseOpenLock.shared(database: path)
        db = try SQLiteDatabase(path: path, check: { c in try SchemaMigrator.checkOpenable(c, path: path, migrations: migrations) },
                                afterWrite: { tagCache.writeEnded() })
        try db.writeOnCallingThread { c in
            _ = try SchemaMigrator.migrate(c, path: path, migrations: migrations)
            try tagCache.attach(to: c)
        }
    }

    public func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        if let fileLeases { return try await fileLeases.withLease(name, body) }
        return try await processLeases.withLease(name, body)
    }

    /// A write that can change an authorization decision (see `AuthorizationGeneration`).
    @discardableResult
    func authorizationWrite<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        // As `AuthorizationGeneration.recording`: advance also when the write failed half-way.
        defer { authorizationGeneration.advance() }
        return try await db.write(body)
    }

    static func repoID(_ c: SQLiteConnection, _ key: RepositoryKey) throws -> Int64? {
        try c.query("SELECT id FROM repositories WHERE registry_id = ? AND name = ?",
                    [.text(key.registryID), .text(key.name)]) { $0.int(0) }.first
    }

    private static func requireRepo(_ c: SQLiteConnection, _ key: RepositoryKey) throws -> Int64 {
        guard let id = try Self.repoID(c, key) else { throw BerthError.nameUnknown(key.name) }
        return id
    }

    // MARK: repositories

    static func encode(_ settings: RepositorySettings) throws -> String { try StoredValues.encode(settings) }

    /// A repository's stored settings (see `StoredValues.decode`).
    static func decode(_ text: String, of key: RepositoryKey) throws -> RepositorySettings { try StoredValues.decode(text, of: key) }

    public func createRepository(_ key: RepositoryKey, at: Double, settings: RepositorySettings) async throws -> Bool {
        let text = try Self.encode(settings)
        return try await authorizationWrite { c in
            try c.execute("INSERT OR IGNORE INTO repositories(registry_id, name, created_at, settings) VALUES(?, ?, ?, ?)",
                          [.text(key.registryID), .text(key.name), .real(at), .text(text)]) == 1
        }
    }

    public func updateRepositorySettings(
        _ key: RepositoryKey, _ update: @escaping @Sendable (inout RepositorySettings) throws -> Void
    ) async throws -> RepositorySettings? {
        try await authorizationWrite { c in
            try c.transaction {
                let where_ = [SQLiteValue.text(key.registryID), .text(key.name)]
                guard let text = try c.query("SELECT settings FROM repositories WHERE registry_id = ? AND name = ?", where_,
                                             row: { $0.text(0) }).first else { return nil }
                var settings = try Self.decode(text, of: key)
                try update(&settings)
                try c.execute("UPDATE repositories SET settings = ? WHERE registry_id = ? AND name = ?",
                              [.text(try Self.encode(settings))] + where_)
                return settings
            }
        }
    }

    public func repository(_ key: RepositoryKey) async throws -> RepositoryRecord? {
        try await db.read { c in
            try c.query("SELECT created_at, settings FROM repositories WHERE registry_id = ? AND name = ?",
                        [.text(key.registryID), .text(key.name)]) {
                RepositoryRecord(key: key, createdAt: $0.double(0), settings: try Self.decode($0.text(1), of: key))
            }.first
        }
    }

    public func listRepositories(in registryID: String, after last: String?, limit: Int) async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT name FROM repositories WHERE registry_id = ? AND name > ? ORDER BY name LIMIT ?",
                        [.text(registryID), .text(last ?? ""), .integer(Int64(limit) + 1)]) { $0.text(0) }
        }
    }

    public func registryIDs() async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT DISTINCT registry_id FROM repositories ORDER BY registry_id", []) { $0.text(0) }
        }
    }

    public func deleteRepository(_ key: RepositoryKey) async throws -> Bool {
        try await authorizationWrite { c in
            try c.execute("DELETE FROM repositories WHERE registry_id = ? AND name = ?",
                          [.text(key.registryID), .text(key.name)]) == 1
        }
    }

    // MARK: blobs

    public func recordBlob(_ digest: Digest, size: Int64, linkTo repository: RepositoryKey, at: Double,
                           finishingUpload upload: String?, bytesVerified: Bool) async throws -> BlobRecording {
        try await db.write { c in
            try c.transaction {
                let key = SQLiteValue.text(digest.description)
                let id = try Self.requireRepo(c, repository)
                let state = try c.query("SELECT doomed != 0, candidate_since IS NOT NULL FROM blobs WHERE digest = ?", [key]) {
                    (doomed: $0.int(0) != 0, marked: $0.int(1) != 0)
                }.first
                if let state {
                    // A collection is deleting this digest's bytes (docs/gc.md): wait for it.
                    if state.doomed { return .beingCollected }
                    // In use again: no longer a candidate.
                    if state.marked { try c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ?", [key]) }
                } else {
                    if bytesVerified {
                        try c.execute("DELETE FROM blob_tombstones WHERE digest = ?", [key])
                    } else if try !c.query("SELECT 1 FROM blob_tombstones WHERE digest = ?", [key], row: { _ in true }).isEmpty {
                        // Removed recently: the collector may have deleted these very bytes after the
                        // upload put them in place; the caller checks them first.
                        return .collected
                    }
                    try c.execute("INSERT INTO blobs(digest, size, created_at) VALUES(?, ?, ?)",
                                  [key, .integer(size), .real(at)])
                }
                if let upload { try c.execute("DELETE FROM uploads WHERE id = ?", [.text(upload)]) }
                try c.execute("INSERT OR IGNORE INTO repository_blobs(repo_id, digest, linked_at) VALUES(?, ?, ?)",
                              [.integer(id), key, .real(at)])
                return .recorded
            }
        }
    }

    public func blobSize(_ digest: Digest) async throws -> Int64? {
        try await db.read { c in
            try c.query("SELECT size FROM blobs WHERE digest = ? AND doomed = 0", [.text(digest.description)]) { $0.int(0) }.first
        }
    }

    public func linkedBlobSize(_ digest: Digest, in repository: RepositoryKey) async throws -> Int64? {
        try await db.read { c in
            try c.query("""
                SELECT b.size FROM repositories r
                JOIN repository_blobs l ON l.repo_id = r.id AND l.digest = ?
                JOIN blobs b ON b.digest = l.digest WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) { $0.int(0) }.first
        }
    }

    public func repositoriesLinking(_ digest: Digest, in registryID: String, limit: Int) async throws -> [RepositoryKey] {
        guard limit > 0 else { return [] }
        return try await db.read { c in
            try c.query("""
                SELECT r.name FROM repository_blobs l JOIN repositories r ON r.id = l.repo_id
                WHERE l.digest = ? AND r.registry_id = ? ORDER BY r.name LIMIT ?
                """, [.text(digest.description), .text(registryID), .integer(Int64(limit))]) {
                RepositoryKey(storedRegistryID: registryID, name: $0.text(0))
            }
        }
    }

    public func linkBlob(_ digest: Digest, to repository: RepositoryKey, at: Double) async throws -> Bool {
        try await db.write { c in
            try c.transaction {
                let id = try Self.requireRepo(c, repository)
                let known = try c.query("SELECT 1 FROM blobs WHERE digest = ? AND doomed = 0", [.text(digest.description)]) { _ in 1 }
                guard !known.isEmpty else { return false }
                try c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ? AND candidate_since IS NOT NULL",
                              [.text(digest.description)])
                try c.execute("INSERT OR IGNORE INTO repository_blobs(repo_id, digest, linked_at) VALUES(?, ?, ?)",
                              [.integer(id), .text(digest.description), .real(at)])
                return true
            }
        }
    }

    public func unlinkBlob(_ digest: Digest, from repository: RepositoryKey) async throws -> Bool {
        try await db.write { c in
            try c.execute("""
                DELETE FROM repository_blobs WHERE digest = ?
                AND repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?)
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) == 1
        }
    }

    // MARK: manifests and tags

    public func putManifest(_ put: ManifestPut, in repository: RepositoryKey) async throws -> ManifestPutResult {
        try await db.write { c in
            try c.transaction {
                let id = try Self.requireRepo(c, repository)
                if put.imageChecks { try Self.checkImagePut(c, put, repo: id) }
                if let tag = put.tag {
                    let current = try c.query("SELECT digest FROM tags WHERE repo_id = ? AND tag = ?",
                                              [.integer(id), .text(tag)]) { $0.text(0) }.first
                    if let current, current != put.record.digest.description {
                        guard let settings = try c.query("SELECT settings FROM repositories WHERE id = ?", [.integer(id)], row: {
                            try Self.decode($0.text(0), of: repository)
                        }).first else { throw BerthError.nameUnknown(repository.name) }
                        if settings.isImmutable(tag: tag) { throw BerthError.tagImmutable(tag) }
                    }
                }
                for b in put.blobs {
                    let linked = try c.query("SELECT 1 FROM repository_blobs WHERE repo_id = ? AND digest = ?",
                                             [.integer(id), .text(b.description)]) { _ in 1 }
                    if linked.isEmpty { throw BerthError.manifestBlobUnknown(b.description) }
                }
                for m in put.manifests {
                    let present = try c.query("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
                                              [.integer(id), .text(m.description)]) { _ in 1 }
                    if present.isEmpty { throw BerthError.manifestBlobUnknown(m.description) }
                }
                let r = put.record
                let digest = r.digest.description
                let created = try c.execute("""
                    INSERT OR IGNORE INTO manifests(repo_id, digest, media_type, artifact_type, body, subject, annotations, pushed_at, image_size)
                    VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.integer(id), .text(digest), .text(r.mediaType), r.artifactType.map { .text($0) } ?? .null,
                          .blob(r.bytes), r.subject.map { .text($0.description) } ?? .null,
                          r.annotationsJSON.map { .text($0) } ?? .null, .real(r.pushedAt), .integer(r.imageSize)]) == 1
                var restored = false
                if !created {
                    restored = try c.execute("""
                        UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ?
                        WHERE repo_id = ? AND digest = ? AND image_status != 'ACTIVE'
                        """, [.real(r.pushedAt), .integer(id), .text(digest)]) == 1
                }
                if created {
                    for b in put.blobs {
                        try c.execute("INSERT OR IGNORE INTO manifest_references(repo_id, parent, child, is_manifest) VALUES(?, ?, ?, 0)",
                                      [.integer(id), .text(digest), .text(b.description)])
                    }
                    for m in put.manifests {
                        try c.execute("INSERT OR IGNORE INTO manifest_references(repo_id, parent, child, is_manifest) VALUES(?, ?, ?, 1)",
                                      [.integer(id), .text(digest), .text(m.description)])
                    }
                }
                var previous: Digest? = nil
                if let tag = put.tag {
                    previous = try c.query("SELECT digest FROM tags WHERE repo_id = ? AND tag = ?",
                                           [.integer(id), .text(tag)]) { Digest.parse($0.text(0)) }.first ?? nil
                    if previous != r.digest {
                        try c.execute("""
                            INSERT INTO tags(repo_id, tag, digest, updated_at) VALUES(?, ?, ?, ?)
                            ON CONFLICT(repo_id, tag) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at
                            """, [.integer(id), .text(tag), .text(digest), .real(r.pushedAt)])
                    } else {
                        previous = nil
                    }
                }
                try Self.insertEvents(c, put.events)
                try Self.enqueueReplication(c, put.replication, at: r.pushedAt)
                return ManifestPutResult(created: created, previousTagDigest: previous, restored: restored)
            }
        }
    }

    /// ECR PutImage's checks (`ManifestPut.imageChecks`), inside the put's transaction.
    static func checkImagePut(_ c: SQLiteConnection, _ put: ManifestPut, repo id: Int64) throws {
        let digest = put.record.digest
        // An archived image pushed again is restored, not refused (ECR).
        let exists = try c.query("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ? AND image_status = 'ACTIVE'",
                                 [.integer(id), .text(digest.description)]) { _ in true }
        if !exists.isEmpty {
            guard let tag = put.tag else { throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: nil) }
            let named = try c.query("SELECT 1 FROM tags WHERE repo_id = ? AND tag = ? AND digest = ?",
                                    [.integer(id), .text(tag), .text(digest.description)]) { _ in true }
            if !named.isEmpty { throw ImagePutRefusal.imageAlreadyExists(digest: digest, tag: tag) }
        }
        for m in put.manifests {
            let present = try c.query("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
                                      [.integer(id), .text(m.description)]) { _ in true }
            if present.isEmpty { throw ImagePutRefusal.referencedImagesNotFound([m]) }
        }
        var missing: [Digest] = []
        for b in put.blobs {
            let linked = try c.query("SELECT 1 FROM repository_blobs WHERE repo_id = ? AND digest = ?",
                                     [.integer(id), .text(b.description)]) { _ in true }
            if linked.isEmpty { missing.append(b) }
        }
        if !missing.isEmpty { throw ImagePutRefusal.layersNotFound(missing) }
    }

    public func manifest(_ digest: Digest, in repository: RepositoryKey) async throws -> ManifestRecord? {
        try await db.read { c in
            try c.query("""
                SELECT m.media_type, m.artifact_type, m.body, m.subject, m.annotations, m.pushed_at, m.image_size, m.image_status
                FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.digest = ? WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) { row in
                ManifestRecord(digest: digest, mediaType: row.text(0), artifactType: row.optionalText(1),
                               bytes: row.blob(2), subject: row.optionalText(3).flatMap { Digest.parse($0) },
                               annotationsJSON: row.optionalText(4), pushedAt: row.double(5), imageSize: row.int(6),
                               status: try Self.imageStatus(row.text(7)))
            }.first
        }
    }

    public func resolveTag(_ tag: String, in repository: RepositoryKey) async throws -> Digest? {
        let key = TagCache.Key(repository: repository, tag: tag)
        let (cached, generation) = tagCache.lookup(key)
        if let cached { return cached }
        let found = try await db.read { c in
            try c.query("""
                SELECT r.id, t.digest FROM repositories r JOIN tags t ON t.repo_id = r.id AND t.tag = ? WHERE r.registry_id = ? AND r.name = ?
                """, [.text(tag), .text(repository.registryID), .text(repository.name)]) { ($0.int(0), Digest.parse($0.text(1))) }.first
        }
        guard let (repositoryID, digest) = found, let digest else { return nil }
        tagCache.put(key, repositoryID: repositoryID, digest: digest, ifGeneration: generation)
        return digest
    }

    public func listTags(in repository: RepositoryKey, after last: String?, limit: Int) async throws -> [String] {
        try await db.read { c in
            try c.query("""
                SELECT t.tag FROM repositories r JOIN tags t ON t.repo_id = r.id
                WHERE r.registry_id = ? AND r.name = ? AND t.tag > ? ORDER BY t.tag LIMIT ?
                """, [.text(repository.registryID), .text(repository.name), .text(last ?? ""), .integer(Int64(limit) + 1)]) { $0.text(0) }
        }
    }

    /// Deletes a manifest with its tags, references and scan; false when it was not there.
    static func deleteManifestRows(_ c: SQLiteConnection, _ digest: Digest, repo id: Int64) throws -> Bool {
        let d = SQLiteValue.text(digest.description)
        let n = try c.execute("DELETE FROM manifests WHERE repo_id = ? AND digest = ?", [.integer(id), d])
        guard n == 1 else { return false }
        try c.execute("DELETE FROM tags WHERE repo_id = ? AND digest = ?", [.integer(id), d])
        try c.execute("DELETE FROM manifest_references WHERE repo_id = ? AND parent = ?", [.integer(id), d])
        try c.execute("DELETE FROM image_scans WHERE repo_id = ? AND digest = ?", [.integer(id), d])
        return true
    }

    /// The manifests of a repository that reference `digest`, by digest.
    static func referencingManifests(_ c: SQLiteConnection, _ digest: Digest, repo id: Int64) throws -> [Digest] {
        try c.query("SELECT parent FROM manifest_references WHERE repo_id = ? AND child = ? ORDER BY parent",
                    [.integer(id), .text(digest.description)]) { Digest.parse($0.text(0)) }.compactMap { $0 }
    }

    public func deleteImage(_ target: ImageDeletionTarget, in repository: RepositoryKey,
                            events: ImageDeletionEvents?) async throws -> ImageDeletion {
        try await db.write { c in
            try c.transaction {
                let outcome = try Self.deleteImageRows(c, target, in: repository)
                if case .deleted = outcome, let events { try Self.insertEvents(c, events(outcome)) }
                return outcome
            }
        }
    }

    /// `deleteImage`'s rows, inside its transaction.
    static func deleteImageRows(_ c: SQLiteConnection, _ target: ImageDeletionTarget, in repository: RepositoryKey) throws -> ImageDeletion {
        guard let id = try Self.repoID(c, repository) else { return .notFound }
        switch target {
        case .digest(let digest):
            let tags = try c.query("SELECT tag FROM tags WHERE repo_id = ? AND digest = ? ORDER BY tag",
                                   [.integer(id), .text(digest.description)]) { $0.text(0) }
            let exists = try c.query("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?",
                                     [.integer(id), .text(digest.description)]) { _ in true }
            guard !exists.isEmpty else { return .notFound }
            let parents = try Self.referencingManifests(c, digest, repo: id)
            guard parents.isEmpty else { return .referenced(by: parents) }
            _ = try Self.deleteManifestRows(c, digest, repo: id)
            return .deleted(tags: tags, imageDeleted: true)
        case .tag(let tag, let digest):
            let untagged = try c.execute("DELETE FROM tags WHERE repo_id = ? AND tag = ? AND digest = ?",
                                         [.integer(id), .text(tag), .text(digest.description)])
            guard untagged == 1 else { return .notFound }
            let others = try c.query("SELECT 1 FROM tags WHERE repo_id = ? AND digest = ? LIMIT 1",
                                     [.integer(id), .text(digest.description)]) { _ in true }
            // The last tag takes the image with it, unless an index still lists the image.
            guard others.isEmpty, try Self.referencingManifests(c, digest, repo: id).isEmpty else {
                return .deleted(tags: [tag], imageDeleted: false)
            }
            return .deleted(tags: [tag], imageDeleted: try Self.deleteManifestRows(c, digest, repo: id))
        }
    }

    public func deleteTag(_ tag: String, in repository: RepositoryKey, events: TagDeletionEvents?) async throws -> Bool {
        try await db.write { c in
            try c.transaction {
                guard let id = try Self.repoID(c, repository),
                      let digest = try c.query("SELECT digest FROM tags WHERE repo_id = ? AND tag = ?", [.integer(id), .text(tag)],
                                               row: { Digest.parse($0.text(0)) }).first ?? nil
                else { return false }
                guard try c.execute("DELETE FROM tags WHERE repo_id = ? AND tag = ?", [.integer(id), .text(tag)]) == 1 else { return false }
                if let events { try Self.insertEvents(c, events(digest)) }
                return true
            }
        }
    }

    public func referrers(of digest: Digest, in repository: RepositoryKey) async throws -> [ManifestSummary] {
        try await db.read { c in
            try c.query("""
                SELECT m.digest, m.media_type, m.artifact_type, length(m.body), m.annotations
                FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.subject = ?
                WHERE r.registry_id = ? AND r.name = ? ORDER BY m.digest
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) { row -> ManifestSummary? in
                guard let d = Digest.parse(row.text(0)) else { return nil }
                return ManifestSummary(digest: d, mediaType: row.text(1), artifactType: row.optionalText(2),
                                       size: row.int(3), annotationsJSON: row.optionalText(4))
            }.compactMap { $0 }
        }
    }

    // MARK: uploads

    public func createUpload(_ session: UploadSession) async throws {
        try await db.write { c in
            try c.transaction {
                let id = try Self.requireRepo(c, session.repository)
                try c.execute("INSERT INTO uploads(id, repo_id, committed, started_at, updated_at) VALUES(?, ?, ?, ?, ?)",
                              [.text(session.id), .integer(id), .integer(session.offset), .real(session.startedAt),
                               .real(session.updatedAt)])
            }
        }
    }

    public func upload(_ id: String) async throws -> UploadSession? {
        try await db.read { c in
            try c.query("""
                SELECT u.id, r.registry_id, r.name, u.committed, u.started_at, u.updated_at, u.last_chunk, u.smallest_inner_chunk,
                       u.writer, u.writing_since
                FROM uploads u JOIN repositories r ON r.id = u.repo_id WHERE u.id = ?
                """, [.text(id)]) {
                Self.uploadRow($0)
            }.first
        }
    }

    static func uploadRow(_ r: SQLiteRow) -> UploadSession {
        UploadSession(id: r.text(0), repository: RepositoryKey(storedRegistryID: r.text(1), name: r.text(2)),
                      offset: r.int(3), startedAt: r.double(4), updatedAt: r.double(5),
                      lastChunkSize: r.isNull(6) ? nil : r.int(6), smallestInnerChunk: r.isNull(7) ? nil : r.int(7),
                      writer: r.isNull(8) ? nil : r.text(8), writingSince: r.isNull(9) ? nil : r.double(9))
    }

    public func claimUpload(_ id: String, at offset: Int64, writer: String, now: Double, staleBefore: Double) async throws -> Bool {
        // `UploadSession.claimable`.
        try await db.write { c in
            try c.execute("""
                UPDATE uploads SET writer = ?, writing_since = ?
                WHERE id = ? AND committed = ? AND (writer IS NULL OR writer = ? OR writing_since < ?)
                """, [.text(writer), .real(now), .text(id), .integer(offset), .text(writer), .real(staleBefore)]) == 1
        }
    }

    public func releaseUpload(_ id: String, writer: String) async throws {
        try await db.write { c in
            _ = try c.execute("UPDATE uploads SET writer = NULL, writing_since = NULL WHERE id = ? AND writer = ?",
                              [.text(id), .text(writer)])
        }
    }

    public func advanceUpload(_ id: String, from expected: Int64, to offset: Int64, at: Double, writer: String?) async throws -> Bool {
        // `UploadSession.advanced`: the SET expressions read the row as it was before the update.
        try await db.write { c in
            try c.execute("""
                UPDATE uploads SET committed = ?, updated_at = ?, last_chunk = ?,
                    smallest_inner_chunk = CASE WHEN last_chunk IS NULL THEN smallest_inner_chunk
                                                ELSE min(coalesce(smallest_inner_chunk, last_chunk), last_chunk) END,
                    writer = NULL, writing_since = NULL
                WHERE id = ? AND committed = ? AND writer IS ?
                """, [.integer(offset), .real(at), .integer(offset - expected), .text(id), .integer(expected),
                      writer.map { .text($0) } ?? .null]) == 1
        }
    }

    public func deleteUpload(_ id: String) async throws {
        try await db.write { c in _ = try c.execute("DELETE FROM uploads WHERE id = ?", [.text(id)]) }
    }

    public func staleUploads(before: Double) async throws -> [UploadSession] {
        try await db.read { c in
            try c.query("""
                SELECT u.id, r.registry_id, r.name, u.committed, u.started_at, u.updated_at, u.last_chunk, u.smallest_inner_chunk,
                       u.writer, u.writing_since
                FROM uploads u JOIN repositories r ON r.id = u.repo_id WHERE u.updated_at < ? ORDER BY u.id
                """, [.real(before)]) {
                Self.uploadRow($0)
            }
        }
    }

    // MARK: images

    static let imageColumns = """
        m.digest, m.media_type, m.artifact_type, length(m.body), m.image_size, m.pushed_at, m.last_pulled_at, m.subject,
        (SELECT group_concat(tag, char(10)) FROM (SELECT tag FROM tags t WHERE t.repo_id = m.repo_id AND t.digest = m.digest ORDER BY tag)),
        m.image_status, m.last_archived_at, m.last_activated_at, m.download_count
        """

    static func imageRow(_ row: SQLiteRow) throws -> ImageSummary? {
        guard let d = Digest.parse(row.text(0)) else { return nil }
        let tags = row.optionalText(8).map { $0.split(separator: "\n").map(String.init) } ?? []
        return ImageSummary(digest: d, mediaType: row.text(1), artifactType: row.optionalText(2), manifestSize: row.int(3),
                            imageSize: row.int(4), pushedAt: row.double(5), lastPulledAt: row.isNull(6) ? nil : row.double(6),
                            subject: row.optionalText(7).flatMap { Digest.parse($0) }, tags: tags,
                            status: try imageStatus(row.text(9)), lastArchivedAt: row.isNull(10) ? nil : row.double(10),
                            lastActivatedAt: row.isNull(11) ? nil : row.double(11), downloadCount: row.int(12))
    }

    /// A stored `image_status`; anything else is corrupt metadata, never taken as ACTIVE.
    static func imageStatus(_ text: String) throws -> ImageStatus {
        guard let status = ImageStatus(rawValue: text) else {
            throw CorruptMetadataError(what: "image status", detail: "unknown value '\(text)'")
        }
        return status
    }

    public func images(in repository: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary] {
        try await db.read { c in
            try c.query("""
                SELECT \(Self.imageColumns) FROM repositories r JOIN manifests m ON m.repo_id = r.id
                WHERE r.registry_id = ? AND r.name = ? AND m.digest > ? ORDER BY m.digest LIMIT ?
                """, [.text(repository.registryID), .text(repository.name), .text(after ?? ""), .integer(Int64(limit) + 1)],
                row: Self.imageRow).compactMap { $0 }
        }
    }

    public func image(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageSummary? {
        try await db.read { c in
            try c.query("""
                SELECT \(Self.imageColumns) FROM repositories r JOIN manifests m ON m.repo_id = r.id AND m.digest = ?
                WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)],
                row: Self.imageRow).first ?? nil
        }
    }

    public func recordPulls(_ pulls: [ImagePulls]) async throws {
        guard !pulls.isEmpty else { return }
        try await db.write { c in
            try c.transaction {
                for p in pulls {
                    let time: SQLiteValue = p.lastPulledAt.map { .real($0) } ?? .null
                    try c.execute("""
                        UPDATE manifests SET
                            last_pulled_at = CASE WHEN ? IS NULL THEN last_pulled_at ELSE max(coalesce(last_pulled_at, 0), ?) END,
                            download_count = download_count + ? + CASE WHEN ? = 0 OR EXISTS(
                                SELECT 1 FROM manifest_references x
                                WHERE x.child = manifests.digest AND x.repo_id = manifests.repo_id AND x.is_manifest = 1)
                                THEN 0 ELSE ? END
                        WHERE digest = ? AND repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?)
                        """, [time, time, .integer(p.byTag), .integer(p.byDigest), .integer(p.byDigest), .text(p.digest.description),
                              .text(p.repository.registryID), .text(p.repository.name)])
                }
            }
        }
    }

    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double, activating: Bool, events: [OutboxEvent]) async throws -> ImageStorageClassChange {
        try await db.write { c in
            try c.transaction {
                guard let id = try Self.repoID(c, repository),
                      let text = try c.query("SELECT image_status FROM manifests WHERE repo_id = ? AND digest = ?",
                                             [.integer(id), .text(digest.description)], row: { $0.text(0) }).first
                else { return .notFound }
                let status = try Self.imageStatus(text)
                switch target {
                case .archive:
                    if status == .archived { return .updated(.archived, changed: false) }
                    let parents = try c.query("""
                        SELECT x.parent FROM manifest_references x
                        JOIN manifests p ON p.repo_id = x.repo_id AND p.digest = x.parent AND p.image_status = 'ACTIVE'
                        WHERE x.repo_id = ? AND x.child = ? AND x.is_manifest = 1 ORDER BY x.parent
                        """, [.integer(id), .text(digest.description)]) { Digest.parse($0.text(0)) }.compactMap { $0 }
                    if !parents.isEmpty { return .referenced(by: parents) }
                    try c.execute("UPDATE manifests SET image_status = 'ARCHIVED', last_archived_at = ? WHERE repo_id = ? AND digest = ?",
                                  [.real(at), .integer(id), .text(digest.description)])
                    // ECR: scan results from before the archive are not available after a restore.
                    try c.execute("DELETE FROM image_scans WHERE repo_id = ? AND digest = ?", [.integer(id), .text(digest.description)])
                    try Self.insertEvents(c, events)
                    return .updated(.archived, changed: true)
                case .standard:
                    if status == .active { return .updated(.active, changed: false) }
                    if activating {
                        if status == .activating { return .updated(.activating, changed: false) }
                        try c.execute("UPDATE manifests SET image_status = 'ACTIVATING' WHERE repo_id = ? AND digest = ?",
                                      [.integer(id), .text(digest.description)])
                        return .updated(.activating, changed: true)
                    }
                    try c.execute("UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ? WHERE repo_id = ? AND digest = ?",
                                  [.real(at), .integer(id), .text(digest.description)])
                    try Self.insertEvents(c, events)
                    return .updated(.active, changed: true)
                }
            }
        }
    }

    public func finishActivation(_ digest: Digest, in repository: RepositoryKey, at: Double,
                                 events: [OutboxEvent]) async throws -> Bool {
        try await db.write { c in
            try c.transaction {
                let done = try c.execute("""
                    UPDATE manifests SET image_status = 'ACTIVE', last_activated_at = ?
                    WHERE repo_id = (SELECT id FROM repositories WHERE registry_id = ? AND name = ?) AND digest = ?
                    AND image_status = 'ACTIVATING'
                    """, [.real(at), .text(repository.registryID), .text(repository.name), .text(digest.description)]) == 1
                if done { try Self.insertEvents(c, events) }
                return done
            }
        }
    }

    public func activatingImages(after: ImageRef?, limit: Int) async throws -> [ImageRef] {
        try await db.read { c in
            try c.query("""
                SELECT r.registry_id, r.name, m.digest FROM manifests m JOIN repositories r ON r.id = m.repo_id
                WHERE m.image_status = 'ACTIVATING' AND (r.registry_id, r.name, m.digest) > (?, ?, ?)
                ORDER BY r.registry_id, r.name, m.digest LIMIT ?
                """, [.text(after?.repository.registryID ?? ""), .text(after?.repository.name ?? ""),
                      .text(after?.digest.description ?? ""), .integer(Int64(limit))]) { row -> ImageRef? in
                Digest.parse(row.text(2)).map {
                    ImageRef(repository: RepositoryKey(storedRegistryID: row.text(0), name: row.text(1)), digest: $0)
                }
            }.compactMap { $0 }
        }
    }

    public func blobsUsedOnlyByArchivedImages(_ digests: [Digest]) async throws -> [Digest] {
        try await db.read { c in
            try digests.filter { d in
                let v = [SQLiteValue.text(d.description)]
                let referenced = try c.query("SELECT 1 FROM manifest_references WHERE child = ? AND is_manifest = 0 LIMIT 1", v) { _ in true }
                guard !referenced.isEmpty else { return false }
                let active = try c.query("""
                    SELECT 1 FROM manifest_references x JOIN manifests m ON m.repo_id = x.repo_id AND m.digest = x.parent
                    WHERE x.child = ? AND m.image_status = 'ACTIVE' LIMIT 1
                    """, v) { _ in true }
                guard active.isEmpty else { return false }
                let pending = try c.query("""
                    SELECT 1 FROM repository_blobs l WHERE l.digest = ?
                    AND NOT EXISTS (SELECT 1 FROM manifest_references x WHERE x.repo_id = l.repo_id AND x.child = l.digest) LIMIT 1
                    """, v) { _ in true }
                return pending.isEmpty
            }
        }
    }

    public func pullTimeExclusions(of account: String) async throws -> [PullTimeExclusion] {
        try await db.read { c in
            try c.query("SELECT principal_arn, created_at FROM pull_time_exclusions WHERE account_id = ? ORDER BY principal_arn",
                        [.text(account)]) { PullTimeExclusion(principalARN: $0.text(0), createdAt: $0.double(1)) }
        }
    }

    public func addPullTimeExclusion(_ exclusion: PullTimeExclusion, to account: String, limit: Int) async throws -> PullTimeExclusionInsert {
        try await db.write { c in
            try c.transaction {
                let exists = try c.query("SELECT 1 FROM pull_time_exclusions WHERE account_id = ? AND principal_arn = ?",
                                         [.text(account), .text(exclusion.principalARN)]) { _ in true }
                if !exists.isEmpty { return .alreadyExists }
                let count = try c.query("SELECT count(*) FROM pull_time_exclusions WHERE account_id = ?", [.text(account)]) { $0.int(0) }.first ?? 0
                if count >= Int64(limit) { return .limitExceeded }
                try c.execute("INSERT INTO pull_time_exclusions(account_id, principal_arn, created_at) VALUES(?, ?, ?)",
                              [.text(account), .text(exclusion.principalARN), .real(exclusion.createdAt)])
                return .added(exclusion)
            }
        }
    }

    public func removePullTimeExclusion(_ principalARN: String, from account: String) async throws -> Bool {
        try await db.write { c in
            try c.execute("DELETE FROM pull_time_exclusions WHERE account_id = ? AND principal_arn = ?",
                          [.text(account), .text(principalARN)]) == 1
        }
    }

    public func manifestsReferencing(_ digest: Digest, in repository: RepositoryKey) async throws -> [Digest] {
        try await db.read { c in
            try c.query("""
                SELECT x.parent FROM repositories r JOIN manifest_references x ON x.repo_id = r.id AND x.child = ?
                WHERE r.registry_id = ? AND r.name = ? ORDER BY x.parent
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) {
                Digest.parse($0.text(0))
            }.compactMap { $0 }
        }
    }

    public func imageCount(in repository: RepositoryKey) async throws -> Int {
        try await db.read { c in
            Int(try c.query("""
                SELECT count(*) FROM repositories r JOIN manifests m ON m.repo_id = r.id WHERE r.registry_id = ? AND r.name = ?
                """, [.text(repository.registryID), .text(repository.name)]) { $0.int(0) }.first ?? 0)
        }
    }

    // MARK: accounts

    public func createAccount(_ id: String, at: Double) async throws -> Bool {
        try await authorizationWrite { c in try c.execute("INSERT OR IGNORE INTO accounts(id, created_at) VALUES(?, ?)", [.text(id), .real(at)]) == 1 }
    }

    public func account(_ id: String) async throws -> AccountRecord? {
        try await db.read { c in
            try c.query("SELECT id, created_at FROM accounts WHERE id = ?", [.text(id)]) {
                AccountRecord(id: $0.text(0), createdAt: $0.double(1))
            }.first
        }
    }

    public func listAccounts() async throws -> [AccountRecord] {
        try await db.read { c in
            try c.query("SELECT id, created_at FROM accounts ORDER BY id") { AccountRecord(id: $0.text(0), createdAt: $0.double(1)) }
        }
    }

    static let keyColumns = "id, account_id, principal_arn, sealed_secret, status, created_at"

    static func keyRow(_ r: SQLiteRow) -> AccessKeyRecord {
        AccessKeyRecord(accessKeyID: r.text(0), accountID: r.text(1), principalARN: r.text(2), sealedSecret: r.text(3),
                        status: r.text(4), createdAt: r.double(5))
    }

    public func putAccessKey(_ key: AccessKeyRecord) async throws {
        try await authorizationWrite { c in
            try c.transaction {
                let known = try c.query("SELECT 1 FROM accounts WHERE id = ?", [.text(key.accountID)]) { _ in 1 }
                guard !known.isEmpty else { throw StorageError("unknown account \(key.accountID)") }
                try c.execute("INSERT OR REPLACE INTO access_keys(\(Self.keyColumns)) VALUES(?, ?, ?, ?, ?, ?)",
                              [.text(key.accessKeyID), .text(key.accountID), .text(key.principalARN), .text(key.sealedSecret),
                               .text(key.status), .real(key.createdAt)])
            }
        }
    }

    public func accessKey(_ id: String) async throws -> AccessKeyRecord? {
        try await db.read { c in
            try c.query("SELECT \(Self.keyColumns) FROM access_keys WHERE id = ?", [.text(id)], row: Self.keyRow).first
        }
    }

    public func accessKeys(ofAccount id: String) async throws -> [AccessKeyRecord] {
        try await db.read { c in
            try c.query("SELECT \(Self.keyColumns) FROM access_keys WHERE account_id = ? ORDER BY id", [.text(id)], row: Self.keyRow)
        }
    }

    public func setAccessKeyStatus(_ id: String, _ status: String) async throws -> Bool {
        try await authorizationWrite { c in try c.execute("UPDATE access_keys SET status = ? WHERE id = ?", [.text(status), .text(id)]) == 1 }
    }

    public func deleteAccessKey(_ id: String) async throws -> Bool {
        try await authorizationWrite { c in try c.execute("DELETE FROM access_keys WHERE id = ?", [.text(id)]) == 1 }
    }

    public func accountSetting(_ account: String, _ name: String) async throws -> String? {
        try await db.read { c in
            try c.query("SELECT value FROM account_settings WHERE account_id = ? AND name = ?", [.text(account), .text(name)]) {
                $0.text(0)
            }.first
        }
    }

    public func putAccountSetting(_ account: String, _ name: String, _ value: String) async throws {
        try await authorizationWrite { c in
            try c.execute("INSERT OR REPLACE INTO account_settings(account_id, name, value) VALUES(?, ?, ?)",
                          [.text(account), .text(name), .text(value)])
        }
    }
}
