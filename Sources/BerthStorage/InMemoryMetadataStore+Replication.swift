import BerthCore

/// The replication queue of the in-memory store: the same rules as the SQL table, under the store's lock.
struct ReplicationQueueState {
    var nextID: Int64 = 1
    var jobs: [Int64: ReplicationJob] = [:]
    var ids: [ReplicationJobKey: Int64] = [:]

    mutating func enqueue(_ keys: [ReplicationJobKey], at: Double) {
        for k in keys {
            if let id = ids[k], var job = jobs[id] {
                if job.state != .inProgress {
                    job.attempts = 0
                    job.enqueuedAt = at
                    job.failureReason = nil
                }
                job.state = .inProgress
                job.generation += 1
                job.updatedAt = at
                job.nextAttemptAt = at
                jobs[id] = job
            } else {
                jobs[nextID] = ReplicationJob(id: nextID, key: k, state: .inProgress, attempts: 0, generation: 1, enqueuedAt: at,
                                              updatedAt: at, nextAttemptAt: at, failureReason: nil)
                ids[k] = nextID
                nextID += 1
            }
        }
    }
}

extension InMemoryMetadataStore {
    public func enqueueReplicationJobs(_ keys: [ReplicationJobKey], at: Double) async throws {
        state.withLock { $0.replication.enqueue(keys, at: at) }
    }

    public func dueReplicationJobs(at: Double, limit: Int) async throws -> [ReplicationJob] {
        state.withLock { s in
            Array(s.replication.jobs.values.filter { $0.state == .inProgress && $0.nextAttemptAt <= at }
                .sorted { ($0.nextAttemptAt, $0.id) < ($1.nextAttemptAt, $1.id) }.prefix(limit))
        }
    }

    @discardableResult
    public func finishReplicationJob(id: Int64, generation: Int64, outcome: ReplicationOutcome, at: Double,
                                     events: [OutboxEvent]) async throws -> Bool {
        state.withLock { s in
            guard var job = s.replication.jobs[id], job.generation == generation, job.state == .inProgress else { return false }
            switch outcome {
            case .complete:
                job.state = .complete
                job.failureReason = nil
            case .retry(let next, let reason):
                job.attempts += 1
                job.nextAttemptAt = next
                job.failureReason = reason
            case .failed(let reason):
                job.state = .failed
                job.attempts += 1
                job.failureReason = reason
            }
            job.updatedAt = at
            s.replication.jobs[id] = job
            s.outbox.append(events)
            return true
        }
    }

    public func imagesChanged(in registry: String, since: Double, after: ChangedImage?, limit: Int) async throws -> [ChangedImage] {
        state.withLock { s in
            var found: [ChangedImage] = []
            for (key, r) in s.repos where key.registryID == registry && key.name >= (after?.repository ?? "") {
                for m in r.manifests.values {
                    if let after, key.name == after.repository, m.digest.description <= after.image.digest.description { continue }
                    let tagged = r.tags.contains { $0.value == m.digest && (r.tagTimes[$0.key] ?? 0) >= since }
                    if m.pushedAt >= since || tagged { found.append(ChangedImage(repository: key.name, image: summary(r, m))) }
                }
            }
            return Array(found.sorted { ($0.repository, $0.image.digest.description) < ($1.repository, $1.image.digest.description) }
                .prefix(limit + 1))
        }
    }

    public func replicationJobs(of repository: RepositoryKey, digest: Digest) async throws -> [ReplicationJob] {
        state.withLock { s in
            s.replication.jobs.values.filter {
                $0.key.sourceRegistry == repository.registryID && $0.key.repository == repository.name && $0.key.digest == digest
            }.sorted { ($0.key.destination.region, $0.key.destination.registryId) < ($1.key.destination.region, $1.key.destination.registryId) }
        }
    }

    public func replicationJobs(state wanted: ReplicationJobState?, after: Int64?, limit: Int) async throws -> [ReplicationJob] {
        state.withLock { s in
            Array(s.replication.jobs.values.filter { ($0.id > (after ?? 0)) && (wanted == nil || $0.state == wanted) }
                .sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    public func replicationQueueSummary() async throws -> ReplicationQueueSummary {
        state.withLock { s in
            let jobs = s.replication.jobs.values
            let open = jobs.filter { $0.state == .inProgress }
            return ReplicationQueueSummary(inProgress: open.count, failed: jobs.filter { $0.state == .failed }.count,
                                           complete: jobs.filter { $0.state == .complete }.count,
                                           oldestInProgress: open.map(\.enqueuedAt).min())
        }
    }

    public func purgeReplicationJobs(completeBefore: Double, failedBefore: Double?) async throws -> Int {
        state.withLock { s in
            let gone = s.replication.jobs.values.filter { job in
                switch job.state {
                case .complete: job.updatedAt < completeBefore
                case .failed: failedBefore.map { job.updatedAt < $0 } ?? false
                case .inProgress: false
                }
            }
            for job in gone {
                s.replication.jobs[job.id] = nil
                s.replication.ids[job.key] = nil
            }
            return gone.count
        }
    }

    public func accountsWithSetting(_ name: String) async throws -> [String] {
        state.withLock { s in
            s.accountSettings.compactMap { key, value -> String? in
                guard !value.isEmpty, key.hasSuffix("/\(name)") else { return nil }
                return String(key.dropLast(name.count + 1))
            }.sorted()
        }
    }
}
