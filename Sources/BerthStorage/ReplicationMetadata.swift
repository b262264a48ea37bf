import BerthCore

/// The durable queue of replication jobs (docs/replication.md): one row per image × destination,
/// written by the manifest put's own transaction (`ManifestPut.replication`) or by `enqueueReplicationJobs`
/// (backfill). Enqueueing a key that has a row makes it IN_PROGRESS again, due at once, and advances its
/// generation; an attempt's outcome is recorded only for the generation it worked on.
public protocol ReplicationMetadata: Sendable {
    /// Enqueues jobs in one transaction (see the protocol's description for keys already queued).
    func enqueueReplicationJobs(_ keys: [ReplicationJobKey], at: Double) async throws
    /// IN_PROGRESS jobs due at `at`, soonest first, up to `limit`.
    func dueReplicationJobs(at: Double, limit: Int) async throws -> [ReplicationJob]
    /// Records an attempt's outcome and, in the same transaction, its `events` (the `ECR Replication
    /// Action` of a finished job); false (nothing written, events included) when the job is gone or was
    /// enqueued again since `generation`.
    @discardableResult
    func finishReplicationJob(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double,
                              events: [OutboxEvent]) async throws -> Bool
    /// The jobs of one image (every destination), in destination order.
    func replicationJobs(of repository: RepositoryKey, digest: Digest) async throws -> [ReplicationJob]
    /// Jobs in id order after `after`, optionally in one state, up to `limit`.
    func replicationJobs(state: ReplicationJobState?, after: Int64?, limit: Int) async throws -> [ReplicationJob]
    func replicationQueueSummary() async throws -> ReplicationQueueSummary
    /// Deletes COMPLETE jobs last updated before `completeBefore` and FAILED ones last updated before
    /// `failedBefore` (nil: FAILED jobs are kept). IN_PROGRESS jobs are never deleted. Returns how many.
    func purgeReplicationJobs(completeBefore: Double, failedBefore: Double?) async throws -> Int
    /// The registries (stored ids) that have a non-empty account setting `name`, in id order: the
    /// registries with a replication configuration, for the reconciliation.
    func accountsWithSetting(_ name: String) async throws -> [String]
    /// The images of the repositories of registry `registry` (a stored id) pushed, or that a tag was set
    /// on (created or moved to them), at or after `since`: what an incremental reconciliation pass checks.
    /// In (repository, digest) order after `after` (an earlier answer's last element), up to `limit + 1`.
    func imagesChanged(in registry: String, since: Double, after: ChangedImage?, limit: Int) async throws -> [ChangedImage]
}

extension ReplicationMetadata {
    /// Records an attempt's outcome with no event.
    @discardableResult
    public func finishReplicationJob(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double) async throws -> Bool {
        try await finishReplicationJob(id: id, generation: generation, outcome: outcome, at: at, events: [])
    }
}

/// The replication queue's schema. It is a migration of its own, kept apart from the other versions so
/// that its number can change when branches merge: `version` is the only place it is written.
public enum ReplicationQueueSchema {
    /// The schema version that creates the queue (SQLite and PostgreSQL alike).
    public static let version = 10
    public static let name = "replication jobs"

    /// SQLite's statements.
    public static let sqlite = """
        CREATE TABLE replication_jobs(
            id INTEGER PRIMARY KEY, source_registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
            destination_region TEXT NOT NULL, destination_registry TEXT NOT NULL, state TEXT NOT NULL,
            attempts INTEGER NOT NULL, generation INTEGER NOT NULL, enqueued_at REAL NOT NULL, updated_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL, failure_reason TEXT,
            UNIQUE(source_registry, repository, digest, destination_region, destination_registry));
        CREATE INDEX replication_jobs_due ON replication_jobs(next_attempt_at) WHERE state = 'IN_PROGRESS';
        """

    /// The upsert both dialects share (`?` numbered by the PostgreSQL wrapper): a finished job starts
    /// again (attempts 0, requested now), an unfinished one is only made due now; either way a new generation.
    public static let enqueue = """
        INSERT INTO replication_jobs(source_registry, repository, digest, destination_region, destination_registry,
            state, attempts, generation, enqueued_at, updated_at, next_attempt_at, failure_reason)
        VALUES(?, ?, ?, ?, ?, 'IN_PROGRESS', 0, 1, ?, ?, ?, NULL)
        ON CONFLICT(source_registry, repository, digest, destination_region, destination_registry) DO UPDATE SET
            attempts = CASE WHEN replication_jobs.state = 'IN_PROGRESS' THEN replication_jobs.attempts ELSE 0 END,
            enqueued_at = CASE WHEN replication_jobs.state = 'IN_PROGRESS' THEN replication_jobs.enqueued_at ELSE excluded.enqueued_at END,
            failure_reason = CASE WHEN replication_jobs.state = 'IN_PROGRESS' THEN replication_jobs.failure_reason ELSE NULL END,
            state = 'IN_PROGRESS', generation = replication_jobs.generation + 1,
            updated_at = excluded.updated_at, next_attempt_at = excluded.next_attempt_at
        """

    public static let columns = """
        id, source_registry, repository, digest, destination_region, destination_registry, state, attempts, generation,
        enqueued_at, updated_at, next_attempt_at, failure_reason
        """

    /// The bound values of `enqueue` for one key.
    public static func enqueueValues(_ k: ReplicationJobKey, at: Double) -> [SQLiteValue] {
        [.text(k.sourceRegistry), .text(k.repository), .text(k.digest.description), .text(k.destination.region),
         .text(k.destination.registryId), .real(at), .real(at), .real(at)]
    }

    /// The UPDATE of `finishReplicationJob` and its values (the same in both dialects).
    public static func finish(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double) -> (String, [SQLiteValue]) {
        let sql: String
        var values: [SQLiteValue]
        switch outcome {
        case .complete:
            sql = "UPDATE replication_jobs SET state = 'COMPLETE', failure_reason = NULL, updated_at = ? WHERE id = ? AND generation = ? AND state = 'IN_PROGRESS'"
            values = [.real(at)]
        case .retry(let next, let reason):
            sql = "UPDATE replication_jobs SET attempts = attempts + 1, next_attempt_at = ?, failure_reason = ?, updated_at = ? WHERE id = ? AND generation = ? AND state = 'IN_PROGRESS'"
            values = [.real(next), .text(reason), .real(at)]
        case .failed(let reason):
            sql = "UPDATE replication_jobs SET state = 'FAILED', attempts = attempts + 1, failure_reason = ?, updated_at = ? WHERE id = ? AND generation = ? AND state = 'IN_PROGRESS'"
            values = [.text(reason), .real(at)]
        }
        values += [.integer(id), .integer(generation)]
        return (sql, values)
    }

    /// What follows the selected columns (the image's, then `r.name`) in `imagesChanged`, and its values
    /// (the same in both dialects): a manifest pushed at or after `since`, or one of its tags set then.
    /// The changed images are found first, through the indexes of `ChangedImagesIndexSchema` (a UNION of two
    /// range searches, each on its own index: an `OR` of the two conditions reads every manifest of the
    /// registry), then joined to their manifests and repositories; only they are sorted. `CROSS JOIN` keeps
    /// SQLite's planner to that order (without statistics it would walk the registry's manifests and look
    /// each up in the changed set); PostgreSQL plans it as any inner join.
    public static func changedImages(registry: String, since: Double, after: ChangedImage?, limit: Int) -> (String, [SQLiteValue]) {
        ("""
         FROM (SELECT repo_id, digest FROM manifests WHERE pushed_at >= ?
               UNION SELECT repo_id, digest FROM tags WHERE updated_at >= ?) changed
           CROSS JOIN manifests m CROSS JOIN repositories r
         WHERE m.repo_id = changed.repo_id AND m.digest = changed.digest AND r.id = m.repo_id
           AND r.registry_id = ? AND (r.name > ? OR (r.name = ? AND m.digest > ?))
         ORDER BY r.name, m.digest LIMIT ?
         """,
         [.real(since), .real(since), .text(registry), .text(after?.repository ?? ""), .text(after?.repository ?? ""),
          .text(after?.image.digest.description ?? ""), .integer(Int64(limit) + 1)])
    }

    /// The DELETE of `purgeReplicationJobs` and its values (the same in both dialects).
    public static func purge(completeBefore: Double, failedBefore: Double?) -> (String, [SQLiteValue]) {
        if let failedBefore {
            return ("DELETE FROM replication_jobs WHERE (state = 'COMPLETE' AND updated_at < ?) OR (state = 'FAILED' AND updated_at < ?)",
                    [.real(completeBefore), .real(failedBefore)])
        }
        return ("DELETE FROM replication_jobs WHERE state = 'COMPLETE' AND updated_at < ?", [.real(completeBefore)])
    }

    /// A job from a row of `columns`, given the row's values read in order.
    public static func job(id: Int64, sourceRegistry: String, repository: String, digest: String, region: String, registry: String,
                           state: String, attempts: Int64, generation: Int64, enqueuedAt: Double, updatedAt: Double,
                           nextAttemptAt: Double, failureReason: String?) throws -> ReplicationJob {
        guard let d = Digest.parse(digest), let s = ReplicationJobState(rawValue: state) else {
            throw StorageError("replication job \(id) has an invalid digest or state")
        }
        return ReplicationJob(
            id: id, key: ReplicationJobKey(sourceRegistry: sourceRegistry, repository: repository, digest: d,
                                           destination: ReplicationDestination(region: region, registryId: registry)),
            state: s, attempts: Int(attempts), generation: generation, enqueuedAt: enqueuedAt, updatedAt: updatedAt,
            nextAttemptAt: nextAttemptAt, failureReason: failureReason)
    }
}
