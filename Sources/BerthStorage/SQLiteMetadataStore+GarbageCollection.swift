import BerthCore
import Foundation

/// Garbage collection and storage accounting on SQLite: the counts come from the triggers of
/// `garbageCollectionSchema`; these functions read them and run the collector's transactions.
extension SQLiteMetadataStore {
    public func linkedBlob(_ digest: Digest, in repository: RepositoryKey) async throws -> LinkedBlob? {
        try await db.read { c in
            try c.query("""
                SELECT b.size, b.candidate_since IS NOT NULL, \(LinkedBlob.archivedOnlySQL) FROM repositories r
                JOIN repository_blobs l ON l.repo_id = r.id AND l.digest = ?
                JOIN blobs b ON b.digest = l.digest WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description), .text(repository.registryID), .text(repository.name)]) {
                LinkedBlob(size: $0.int(0), isCandidate: $0.int(1) != 0, archivedOnly: $0.int(2) != 0)
            }.first
        }
    }

    public func touchBlob(_ digest: Digest) async throws -> Bool {
        try await db.write { c in
            try c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ? AND doomed = 0", [.text(digest.description)]) == 1
        }
    }

    public func unknownBlobs(_ digests: [Digest]) async throws -> [Digest] {
        try await db.read { c in
            try digests.filter { d in
                try c.query("SELECT 1 FROM blobs WHERE digest = ?", [.text(d.description)]) { _ in true }.isEmpty
            }
        }
    }

    public func markUnreferencedBlobs(at now: Double) async throws -> Int {
        try await db.write { c in
            try c.execute("UPDATE blobs SET candidate_since = ? WHERE repos = 0 AND candidate_since IS NULL", [.real(now)])
        }
    }

    static func collectable(_ row: SQLiteRow) -> CollectableBlob? {
        Digest.parse(row.text(0)).map { CollectableBlob(digest: $0, size: row.int(1)) }
    }

    /// Unreferenced, and either marked at or before ?1 and unclaimed, or claimed before ?2 (abandoned).
    static let collectableCondition = """
        repos = 0 AND ((doomed = 0 AND candidate_since <= ?1) OR (doomed != 0 AND candidate_since <= ?2))
        """

    public func collectableBlobs(markedBefore cutoff: Double, claim: BlobClaim, after: Digest?, limit: Int) async throws
        -> [CollectableBlob] {
        try await db.read { c in
            try c.query("""
                SELECT digest, size FROM blobs WHERE \(Self.collectableCondition) AND digest > ?3 ORDER BY digest LIMIT ?4
                """, [.real(cutoff), .real(claim.staleBefore), .text(after?.description ?? ""), .integer(Int64(limit))],
                row: Self.collectable).compactMap { $0 }
        }
    }

    public func pendingCandidates(markedBefore cutoff: Double) async throws -> (count: Int64, bytes: Int64) {
        try await db.read { c in
            try c.query("""
                SELECT count(*), coalesce(sum(size), 0) FROM blobs
                WHERE repos = 0 AND doomed = 0 AND (candidate_since IS NULL OR candidate_since > ?)
                """, [.real(cutoff)]) { (count: $0.int(0), bytes: $0.int(1)) }.first ?? (0, 0)
        }
    }

    public func doomBlobs(_ digests: [Digest], markedBefore cutoff: Double, claim: BlobClaim) async throws -> [CollectableBlob] {
        try await db.write { c in
            try c.transaction {
                var doomed: [CollectableBlob] = []
                for d in digests {
                    let key = SQLiteValue.text(d.description)
                    guard let blob = try c.query("SELECT digest, size FROM blobs WHERE digest = ?3 AND \(Self.collectableCondition)",
                                                 [.real(cutoff), .real(claim.staleBefore), key], row: Self.collectable).first ?? nil
                    else { continue }
                    try c.execute("DELETE FROM repository_blobs WHERE digest = ?", [key])
                    try c.execute("UPDATE blobs SET doomed = ?, candidate_since = ? WHERE digest = ?",
                                  [.integer(claim.token), .real(claim.at), key])
                    doomed.append(blob)
                }
                return doomed
            }
        }
    }

    public func removeDoomedBlobs(_ digests: [Digest], claim: BlobClaim) async throws -> [CollectableBlob] {
        try await db.write { c in
            try c.transaction {
                var gone: [CollectableBlob] = []
                for d in digests {
                    let key = SQLiteValue.text(d.description)
                    guard let blob = try c.query("SELECT digest, size FROM blobs WHERE digest = ? AND doomed = ?",
                                                 [key, .integer(claim.token)], row: Self.collectable).first ?? nil else { continue }
                    try c.execute("DELETE FROM blobs WHERE digest = ?", [key])
                    try c.execute("INSERT OR REPLACE INTO blob_tombstones(digest, removed_at) VALUES(?, ?)", [key, .real(claim.at)])
                    gone.append(blob)
                }
                return gone
            }
        }
    }

    public func claimOrphanBlobs(_ files: [CollectableBlob], claim: BlobClaim) async throws -> [CollectableBlob] {
        try await db.write { c in
            try c.transaction {
                try files.filter { f in
                    try c.execute("""
                        INSERT OR IGNORE INTO blobs(digest, size, created_at, doomed, candidate_since) VALUES(?, ?, ?, ?, ?)
                        """, [.text(f.digest.description), .integer(f.size), .real(claim.at), .integer(claim.token),
                              .real(claim.at)]) == 1
                }
            }
        }
    }

    public func purgeBlobTombstones(removedBefore cutoff: Double) async throws -> Int {
        try await db.write { c in
            try c.execute("DELETE FROM blob_tombstones WHERE removed_at < ?", [.real(cutoff)])
        }
    }

    public func existingUploads(_ ids: [String]) async throws -> Set<String> {
        try await db.read { c in
            var found: Set<String> = []
            for id in ids {
                if try !c.query("SELECT 1 FROM uploads WHERE id = ?", [.text(id)], row: { _ in true }).isEmpty { found.insert(id) }
            }
            return found
        }
    }

    static func figures(_ row: SQLiteRow, from i: Int32) -> UsageFigures {
        UsageFigures(images: row.int(i), storedBytes: row.int(i + 1), uniqueBytes: row.int(i + 2), sharedBytes: row.int(i + 3))
    }

    public func distinctBlobUsage(of repositories: [RepositoryKey]) async throws -> (blobs: Int64, bytes: Int64) {
        guard !repositories.isEmpty else { return (0, 0) }
        let names = String(decoding: try JSONEncoder().encode(repositories.map { "\($0.registryID) \($0.name)" }), as: UTF8.self)
        return try await db.read { c in
            try c.query("""
                SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE digest IN (
                    SELECT l.digest FROM json_each(?) j
                    JOIN repositories r ON r.registry_id = substr(j.value, 1, instr(j.value, ' ') - 1)
                                       AND r.name = substr(j.value, instr(j.value, ' ') + 1)
                    JOIN repository_blobs l ON l.repo_id = r.id)
                """, [.text(names)]) { (blobs: $0.int(0), bytes: $0.int(1)) }.first ?? (0, 0)
        }
    }

    public func storageUsage(account: String?, repositories: Bool) async throws -> StorageUsage {
        try await db.read { c in
            var usage = StorageUsage()
            if let t = try c.query("SELECT blobs, bytes, unreferenced_blobs, unreferenced_bytes FROM storage_totals", row: {
                ($0.int(0), $0.int(1), $0.int(2), $0.int(3))
            }).first {
                (usage.blobs, usage.bytes, usage.unreferencedBlobs, usage.unreferencedBytes) = t
            }
            let filter: [SQLiteValue] = [account.map { .text($0) } ?? .null]
            for (name, f) in try c.query("""
                SELECT account, images, stored_bytes, unique_bytes, shared_bytes FROM account_usage
                WHERE ?1 IS NULL OR account = ?1
                """, filter, row: { ($0.text(0), Self.figures($0, from: 1)) }) {
                usage.accounts[name] = f
            }
            // Reclaimable: unreferenced blobs (a set the collector keeps small) by the accounts linking them.
            for (name, bytes) in try c.query("""
                SELECT a, sum(size) FROM (
                    SELECT DISTINCT b.digest, b.size,
                           CASE WHEN r.registry_id LIKE 'public:%' THEN substr(r.registry_id, 8) ELSE r.registry_id END AS a
                    FROM blobs b JOIN repository_blobs l ON l.digest = b.digest JOIN repositories r ON r.id = l.repo_id
                    WHERE b.repos = 0 AND b.doomed = 0)
                WHERE ?1 IS NULL OR a = ?1 GROUP BY a
                """, filter, row: { ($0.text(0), $0.int(1)) }) {
                usage.accounts[name, default: UsageFigures()].reclaimableBytes = bytes
            }
            guard repositories else { return usage }
            for (key, f) in try c.query("""
                SELECT r.registry_id, r.name, u.images, u.stored_bytes, u.unique_bytes, u.shared_bytes
                FROM repository_usage u JOIN repositories r ON r.id = u.repo_id WHERE ?1 IS NULL OR u.account = ?1
                """, filter, row: { (RepositoryKey(storedRegistryID: $0.text(0), name: $0.text(1)), Self.figures($0, from: 2)) }) {
                usage.repositories[key] = f
            }
            for (key, bytes) in try c.query("""
                SELECT r.registry_id, r.name, sum(b.size) FROM blobs b
                JOIN repository_blobs l ON l.digest = b.digest JOIN repositories r ON r.id = l.repo_id
                WHERE b.repos = 0 AND b.doomed = 0 AND (?1 IS NULL OR
                    (CASE WHEN r.registry_id LIKE 'public:%' THEN substr(r.registry_id, 8) ELSE r.registry_id END) = ?1)
                GROUP BY r.id
                """, filter, row: { (RepositoryKey(storedRegistryID: $0.text(0), name: $0.text(1)), $0.int(2)) }) {
                usage.repositories[key, default: UsageFigures()].reclaimableBytes = bytes
            }
            return usage
        }
    }
}
