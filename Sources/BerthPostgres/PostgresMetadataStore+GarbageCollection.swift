import BerthCore
import BerthStorage

/// Garbage collection and storage accounting on PostgreSQL: the counts come from the triggers of
/// `garbageCollectionSchema`; these functions read them and run the collector's transactions.
extension PostgresMetadataStore {
    public func linkedBlob(_ digest: Digest, in repository: RepositoryKey) async throws -> LinkedBlob? {
        try await read { c in
            try await c.query("""
                SELECT b.size, b.candidate_since IS NOT NULL, \(LinkedBlob.archivedOnlySQL) FROM repositories r
                JOIN repository_blobs l ON l.repo_id = r.id AND l.digest = ?
                JOIN blobs b ON b.digest = l.digest WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description)] + Self.repoValues(repository)) {
                LinkedBlob(size: try $0.int(0), isCandidate: try $0.bool(1), archivedOnly: try $0.bool(2))
            }.first
        }
    }

    public func touchBlob(_ digest: Digest) async throws -> Bool {
        try await read { c in
            try await c.execute("UPDATE blobs SET candidate_since = NULL WHERE digest = ? AND doomed = 0", [.text(digest.description)]) == 1
        }
    }

    public func unknownBlobs(_ digests: [Digest]) async throws -> [Digest] {
        try await read { c in try await Self.filter(c, digests, where: "NOT EXISTS (SELECT 1 FROM blobs WHERE digest = d)") }
    }

    public func markUnreferencedBlobs(at now: Double) async throws -> Int {
        try await read { c in
            try await c.execute("UPDATE blobs SET candidate_since = ? WHERE repos = 0 AND candidate_since IS NULL", [.real(now)])
        }
    }

    static func collectable(_ row: PGRow) throws -> CollectableBlob? {
        guard let digest = Digest.parse(try row.text(0)) else { return nil }
        return CollectableBlob(digest: digest, size: try row.int(1))
    }

    /// Unreferenced, and either marked at or before $1 and unclaimed, or claimed before $2 (abandoned).
    static let collectableCondition = """
        b.repos = 0 AND ((b.doomed = 0 AND b.candidate_since <= $1) OR (b.doomed <> 0 AND b.candidate_since <= $2))
        """

    public func collectableBlobs(markedBefore cutoff: Double, claim: BlobClaim, after: Digest?, limit: Int) async throws
        -> [CollectableBlob] {
        try await read { c in
            try await c.query("""
                SELECT b.digest, b.size FROM blobs b WHERE \(Self.collectableCondition) AND b.digest > $3 ORDER BY b.digest LIMIT $4
                """, [.real(cutoff), .real(claim.staleBefore), .text(after?.description ?? ""), .integer(Int64(limit))],
                row: Self.collectable).compactMap { $0 }
        }
    }

    public func pendingCandidates(markedBefore cutoff: Double) async throws -> (count: Int64, bytes: Int64) {
        try await read { c in
            try await c.query("""
                SELECT count(*), coalesce(sum(size), 0)::bigint FROM blobs
                WHERE repos = 0 AND doomed = 0 AND (candidate_since IS NULL OR candidate_since > ?)
                """, [.real(cutoff)]) { (count: try $0.int(0), bytes: try $0.int(1)) }.first ?? (0, 0)
        }
    }

    /// Rows of `digests` (in their order) that match `condition`, locked for the rest of the transaction.
    /// `condition` may use `b.` columns and the parameters from `$2` on (`extra`).
    static func lockedBlobs(_ c: PGConnection, _ digests: [Digest], where condition: String, _ extra: [PGValue] = []) async throws -> [CollectableBlob] {
        guard !digests.isEmpty else { return [] }
        return try await c.query("""
            SELECT b.digest, b.size FROM unnest($1::text[]) WITH ORDINALITY AS x(d, n) JOIN blobs b ON b.digest = x.d
            WHERE \(condition) ORDER BY x.n FOR UPDATE OF b
            """, [.texts(digests.map(\.description))] + extra, row: collectable).compactMap { $0 }
    }

    public func doomBlobs(_ digests: [Digest], markedBefore cutoff: Double, claim: BlobClaim) async throws -> [CollectableBlob] {
        try await transaction { c in
            let doomed = try await Self.lockedBlobs(c, digests, where: """
                b.repos = 0 AND ((b.doomed = 0 AND b.candidate_since <= $2) OR (b.doomed <> 0 AND b.candidate_since <= $3))
                """, [.real(cutoff), .real(claim.staleBefore)])
            guard !doomed.isEmpty else { return [] }
            let keys = PGValue.texts(doomed.map(\.digest.description))
            try await c.execute("DELETE FROM repository_blobs WHERE digest = ANY($1::text[])", [keys])
            try await c.execute("UPDATE blobs SET doomed = $2, candidate_since = $3 WHERE digest = ANY($1::text[])",
                                [keys, .integer(claim.token), .real(claim.at)])
            for part in stride(from: 0, to: doomed.count, by: StoreChange.digestsPerNotification) {
                let slice = doomed[part ..< min(doomed.count, part + StoreChange.digestsPerNotification)]
                try await changes.notify(c, .blobs(slice.map(\.digest)))
            }
            return doomed
        }
    }

    public func removeDoomedBlobs(_ digests: [Digest], claim: BlobClaim) async throws -> [CollectableBlob] {
        try await transaction { c in
            let gone = try await Self.lockedBlobs(c, digests, where: "b.doomed = $2", [.integer(claim.token)])
            guard !gone.isEmpty else { return [] }
            let keys = PGValue.texts(gone.map(\.digest.description))
            try await c.execute("DELETE FROM blobs WHERE digest = ANY($1::text[])", [keys])
            try await c.execute("""
                INSERT INTO blob_tombstones(digest, removed_at) SELECT d, $2 FROM unnest($1::text[]) AS d
                ON CONFLICT (digest) DO UPDATE SET removed_at = excluded.removed_at
                """, [keys, .real(claim.at)])
            return gone
        }
    }

    public func claimOrphanBlobs(_ files: [CollectableBlob], claim: BlobClaim) async throws -> [CollectableBlob] {
        guard !files.isEmpty else { return [] }
        return try await transaction { c in
            // The per-digest lock `recordBlob` takes: a concurrent recording of one of these waits, then
            // finds the claimed row (and waits for the collection) instead of failing on the key.
            try await c.execute("SELECT pg_advisory_xact_lock(hashtext(d)) FROM unnest($1::text[]) AS d ORDER BY d",
                                [.texts(files.map(\.digest.description))])
            let claimed = Set(try await c.query("""
                INSERT INTO blobs(digest, size, created_at, doomed, candidate_since)
                SELECT d, s::bigint, $3, $4, $3 FROM unnest($1::text[], $2::text[]) AS x(d, s)
                ON CONFLICT DO NOTHING RETURNING digest
                """, [.texts(files.map(\.digest.description)), .texts(files.map { String($0.size) }), .real(claim.at),
                      .integer(claim.token)]) { try $0.text(0) })
            return files.filter { claimed.contains($0.digest.description) }
        }
    }

    public func purgeBlobTombstones(removedBefore cutoff: Double) async throws -> Int {
        try await read { c in
            try await c.execute("DELETE FROM blob_tombstones WHERE removed_at < ?", [.real(cutoff)])
        }
    }

    public func existingUploads(_ ids: [String]) async throws -> Set<String> {
        guard !ids.isEmpty else { return [] }
        return try await read { c in
            Set(try await c.query("SELECT id FROM uploads WHERE id = ANY($1::text[])", [.texts(ids)]) { try $0.text(0) })
        }
    }

    static func figures(_ row: PGRow, from i: Int) throws -> UsageFigures {
        UsageFigures(images: try row.int(i), storedBytes: try row.int(i + 1), uniqueBytes: try row.int(i + 2), sharedBytes: try row.int(i + 3))
    }

    public func distinctBlobUsage(of repositories: [RepositoryKey]) async throws -> (blobs: Int64, bytes: Int64) {
        guard !repositories.isEmpty else { return (0, 0) }
        return try await read { c in
            try await c.query("""
                SELECT count(*), coalesce(sum(size), 0)::bigint FROM blobs WHERE digest IN (
                    SELECT l.digest FROM repositories r JOIN repository_blobs l ON l.repo_id = r.id
                    WHERE r.registry_id || ' ' || r.name = ANY($1::text[]))
                """, [.texts(repositories.map { "\($0.registryID) \($0.name)" })]) { (blobs: try $0.int(0), bytes: try $0.int(1)) }.first ?? (0, 0)
        }
    }

    /// The four figures of a usage table's rows, summed (`figures` reads them).
    static let usageSums = "sum(images)::bigint, sum(stored_bytes)::bigint, sum(unique_bytes)::bigint, sum(shared_bytes)::bigint"

    public func storageUsage(account: String?, repositories: Bool) async throws -> StorageUsage {
        try await read { c in
            var usage = StorageUsage()
            // Each figure is spread over slot rows (`UsageSlotsSchema`): a key's figures are the sums of its rows.
            if let t = try await c.query("""
                SELECT coalesce(sum(blobs), 0)::bigint, coalesce(sum(bytes), 0)::bigint,
                       coalesce(sum(unreferenced_blobs), 0)::bigint, coalesce(sum(unreferenced_bytes), 0)::bigint FROM storage_totals
                """, row: {
                (try $0.int(0), try $0.int(1), try $0.int(2), try $0.int(3))
            }).first {
                (usage.blobs, usage.bytes, usage.unreferencedBlobs, usage.unreferencedBytes) = t
            }
            let filter: [PGValue] = [.optional(account)]
            for (name, f) in try await c.query("""
                SELECT account, \(Self.usageSums) FROM account_usage
                WHERE $1::text IS NULL OR account = $1 GROUP BY account
                """, filter, row: { (try $0.text(0), try Self.figures($0, from: 1)) }) {
                usage.accounts[name] = f
            }
            // Reclaimable: unreferenced blobs (a set the collector keeps small) by the accounts linking them.
            for (name, bytes) in try await c.query("""
                SELECT a, sum(size)::bigint FROM (
                    SELECT DISTINCT b.digest, b.size, \(Self.accountOf) AS a
                    FROM blobs b JOIN repository_blobs l ON l.digest = b.digest JOIN repositories r ON r.id = l.repo_id
                    WHERE b.repos = 0 AND b.doomed = 0) AS u
                WHERE $1::text IS NULL OR a = $1 GROUP BY a
                """, filter, row: { (try $0.text(0), try $0.int(1)) }) {
                usage.accounts[name, default: UsageFigures()].reclaimableBytes = bytes
            }
            guard repositories else { return usage }
            for (key, f) in try await c.query("""
                SELECT r.registry_id, r.name, \(Self.usageSums)
                FROM repository_usage u JOIN repositories r ON r.id = u.repo_id WHERE $1::text IS NULL OR u.account = $1
                GROUP BY r.id, r.registry_id, r.name
                HAVING sum(u.images) <> 0 OR sum(u.stored_bytes) <> 0 OR sum(u.unique_bytes) <> 0 OR sum(u.shared_bytes) <> 0
                """, filter, row: { (RepositoryKey(storedRegistryID: try $0.text(0), name: try $0.text(1)), try Self.figures($0, from: 2)) }) {
                usage.repositories[key] = f
            }
            for (key, bytes) in try await c.query("""
                SELECT r.registry_id, r.name, sum(b.size)::bigint FROM blobs b
                JOIN repository_blobs l ON l.digest = b.digest JOIN repositories r ON r.id = l.repo_id
                WHERE b.repos = 0 AND b.doomed = 0 AND ($1::text IS NULL OR (\(Self.accountOf)) = $1)
                GROUP BY r.id, r.registry_id, r.name
                """, filter, row: { (RepositoryKey(storedRegistryID: try $0.text(0), name: try $0.text(1)), try $0.int(2)) }) {
                usage.repositories[key, default: UsageFigures()].reclaimableBytes = bytes
            }
            return usage
        }
    }
}
