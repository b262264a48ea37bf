import BerthCore
import BerthStorage

/// The replication queue in PostgreSQL: the same table and statements as SQLite's (`ReplicationQueueSchema`).
extension PostgresMetadataStore {
    static func pg(_ values: [SQLiteValue]) -> [PGValue] {
        values.map {
            switch $0 {
            case .integer(let i): .integer(i)
            case .real(let d): .real(d)
            case .text(let s): .text(s)
            case .blob(let b): .blob(b)
            case .null: .null
            }
        }
    }

    /// Enqueues jobs inside the caller's transaction (the manifest put's, or `enqueueReplicationJobs`'s).
    func enqueueReplication(_ c: PGConnection, _ keys: [ReplicationJobKey], at: Double) async throws {
        for k in keys { try await c.execute(ReplicationQueueSchema.enqueue, Self.pg(ReplicationQueueSchema.enqueueValues(k, at: at))) }
    }

    static func job(_ r: PGRow) throws -> ReplicationJob {
        try ReplicationQueueSchema.job(
            id: r.int(0), sourceRegistry: r.text(1), repository: r.text(2), digest: r.text(3), region: r.text(4),
            registry: r.text(5), state: r.text(6), attempts: r.int(7), generation: r.int(8), enqueuedAt: r.double(9),
            updatedAt: r.double(10), nextAttemptAt: r.double(11), failureReason: r.optionalText(12))
    }

    public func enqueueReplicationJobs(_ keys: [ReplicationJobKey], at: Double) async throws {
        guard !keys.isEmpty else { return }
        try await transaction { c in try await enqueueReplication(c, keys, at: at) }
    }

    public func dueReplicationJobs(at: Double, limit: Int) async throws -> [ReplicationJob] {
        try await read { c in
            try await c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE state = 'IN_PROGRESS' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?
                """, [.real(at), .integer(Int64(limit))], row: Self.job)
        }
    }

    @discardableResult
    public func finishReplicationJob(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double,
                                     events: [OutboxEvent]) async throws -> Bool {
        let (sql, values) = ReplicationQueueSchema.finish(id: id, generation: generation, outcome: outcome, at: at)
        guard !events.isEmpty else { return try await read { c in try await c.execute(sql, Self.pg(values)) == 1 } }
        return try await transaction { c in
            guard try await c.execute(sql, Self.pg(values)) == 1 else { return false }
            try await insertEvents(c, events)
            return true
        }
    }

    public func purgeReplicationJobs(completeBefore: Double, failedBefore: Double?) async throws -> Int {
        let (sql, values) = ReplicationQueueSchema.purge(completeBefore: completeBefore, failedBefore: failedBefore)
        return try await read { c in try await c.execute(sql, Self.pg(values)) }
    }

    public func accountsWithSetting(_ name: String) async throws -> [String] {
        try await read { c in
            try await c.query("SELECT account_id FROM account_settings WHERE name = ? AND value <> '' ORDER BY account_id", [.text(name)]) {
                try $0.text(0)
            }
        }
    }

    public func imagesChanged(in registry: String, since: Double, after: ChangedImage?, limit: Int) async throws -> [ChangedImage] {
        let (tail, values) = ReplicationQueueSchema.changedImages(registry: registry, since: since, after: after, limit: limit)
        return try await read { c in
            try await c.query("SELECT \(Self.imageColumns), r.name " + tail, Self.pg(values)) { row in
                try Self.imageRow(row).map { ChangedImage(repository: try row.text(13), image: $0) }
            }.compactMap { $0 }
        }
    }

    public func replicationJobs(of repository: RepositoryKey, digest: Digest) async throws -> [ReplicationJob] {
        try await read { c in
            try await c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE source_registry = ? AND repository = ? AND digest = ? ORDER BY destination_region, destination_registry
                """, [.text(repository.registryID), .text(repository.name), .text(digest.description)], row: Self.job)
        }
    }

    public func replicationJobs(state: ReplicationJobState?, after: Int64?, limit: Int) async throws -> [ReplicationJob] {
        try await read { c in
            try await c.query("""
                SELECT \(ReplicationQueueSchema.columns) FROM replication_jobs
                WHERE id > ? AND (?::text IS NULL OR state = ?::text) ORDER BY id LIMIT ?
                """, [.integer(after ?? 0), .optional(state?.rawValue), .optional(state?.rawValue), .integer(Int64(limit))], row: Self.job)
        }
    }

    public func replicationQueueSummary() async throws -> ReplicationQueueSummary {
        try await read { c in
            let counts = try await c.query("SELECT state, count(*)::bigint FROM replication_jobs GROUP BY state") {
                (state: try $0.text(0), n: Int(try $0.int(1)))
            }
            let oldest = try await c.query("SELECT min(enqueued_at) FROM replication_jobs WHERE state = 'IN_PROGRESS'") {
                try $0.optionalDouble(0)
            }.first ?? nil
            func n(_ s: ReplicationJobState) -> Int { counts.first { $0.state == s.rawValue }?.n ?? 0 }
            return ReplicationQueueSummary(inProgress: n(.inProgress), failed: n(.failed), complete: n(.complete), oldestInProgress: oldest)
        }
    }
}
