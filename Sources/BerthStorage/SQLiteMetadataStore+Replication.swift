import BerthCore

/// The replication queue in SQLite (`replication_jobs`, `ReplicationQueueSchema`).
extension SQLiteMetadataStore {
    /// Enqueues jobs inside the caller's transaction (the manifest put's, or `enqueueReplicationJobs`'s).
    static func enqueueReplication(_ c: SQLiteConnection, _ keys: [ReplicationJobKey], at: Double) throws {
        for k in keys { try c.execute(ReplicationQueueSchema.enqueue, ReplicationQueueSchema.enqueueValues(k, at: at)) }
    }

    static func job(_ r: SQLiteRow) throws -> ReplicationJob {
        try ReplicationQueueSchema.job(
            id: r.int(0), sourceRegistry: r.text(1), repository: r.text(2), digest: r.text(3), region: r.text(4),
            registry: r.text(5), state: r.text(6), attempts: r.int(7), generation: r.int(8), enqueuedAt: r.double(9),
            updatedAt: r.double(10), nextAttemptAt: r.double(11), failureReason: r.optionalText(12))
    }

    public func enqueueReplicationJobs(_ keys: [ReplicationJobKey], at: Double) async throws {
        guard !keys.isEmpty else { return }
        try await db.write { c in try c.transaction { try Self.enqueueReplication(c, keys, at: at) } }
    }

    public func dueReplicationJobs(at: Double, limit: Int) async throws -> [ReplicationJob] {
        try await db.read { c in
            try c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE state = 'IN_PROGRESS' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?
                """, [.real(at), .integer(Int64(limit))], row: Self.job)
        }
    }

    @discardableResult
    public func finishReplicationJob(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double,
                                     events: [OutboxEvent]) async throws -> Bool {
        let (sql, values) = ReplicationQueueSchema.finish(id: id, generation: generation, outcome: outcome, at: at)
        return try await db.write { c in
            try c.transaction {
                guard try c.execute(sql, values) == 1 else { return false }
                try Self.insertEvents(c, events)
                return true
            }
        }
    }

    public func purgeReplicationJobs(completeBefore: Double, failedBefore: Double?) async throws -> Int {
        let (sql, values) = ReplicationQueueSchema.purge(completeBefore: completeBefore, failedBefore: failedBefore)
        return try await db.write { c in try c.execute(sql, values) }
    }

    public func accountsWithSetting(_ name: String) async throws -> [String] {
        try await db.read { c in
            try c.query("SELECT account_id FROM account_settings WHERE name = ? AND value <> '' ORDER BY account_id", [.text(name)]) { $0.text(0) }
        }
    }

    public func imagesChanged(in registry: String, since: Double, after: ChangedImage?, limit: Int) async throws -> [ChangedImage] {
        let (tail, values) = ReplicationQueueSchema.changedImages(registry: registry, since: since, after: after, limit: limit)
        return try await db.read { c in
            try c.query("SELECT \(Self.imageColumns), r.name " + tail, values) { row in
                try Self.imageRow(row).map { ChangedImage(repository: row.text(13), image: $0) }
            }.compactMap { $0 }
        }
    }

    public func replicationJobs(of repository: RepositoryKey, digest: Digest) async throws -> [ReplicationJob] {
        try await db.read { c in
            try c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE source_registry = ? AND repository = ? AND digest = ? ORDER BY destination_region, destination_registry
                """, [.text(repository.registryID), .text(repository.name), .text(digest.description)], row: Self.job)
        }
    }

    public func replicationJobs(state: ReplicationJobState?, after: Int64?, limit: Int) async throws -> [ReplicationJob] {
        try await db.read { c in
            try c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE id > ? AND (? IS NULL OR state = ?) ORDER BY id LIMIT ?
                """, [.integer(after ?? 0), state.map { .text($0.rawValue) } ?? .null, state.map { .text($0.rawValue) } ?? .null,
                      .integer(Int64(limit))], row: Self.job)
        }
    }

    public func replicationQueueSummary() async throws -> ReplicationQueueSummary {
        try await db.read { c in
            let counts = try c.query("SELECT state, count(*) FROM replication_jobs GROUP BY state") { (state: $0.text(0), n: Int($0.int(1))) }
            let oldest = try c.query("SELECT min(enqueued_at) FROM replication_jobs WHERE state = 'IN_PROGRESS'") { $0.isNull(0) ? nil : $0.double(0) }.first ?? nil
            func n(_ s: ReplicationJobState) -> Int { counts.first { $0.state == s.rawValue }?.n ?? 0 }
            return ReplicationQueueSummary(inProgress: n(.inProgress), failed: n(.failed), complete: n(.complete), oldestInProgress: oldest)
        }
    }
}
