import BerthCore
import BerthStorage
import Testing

/// The replication queue (`ReplicationMetadata`) on every backend: jobs written by the manifest put's own
/// transaction (and only by puts that happen), enqueueing again, outcomes per generation, reads, reopen.
@Suite struct ReplicationQueueConformance {
    let image = Digest.sha256(of: Array("image".utf8))
    let west = ReplicationDestination(region: "us-west-2", registryId: "111111111111")
    let peer = ReplicationDestination(region: "eu-central-1", registryId: "222222222222")

    func job(_ d: ReplicationDestination, digest: Digest? = nil, repository: String = "r") -> ReplicationJobKey {
        ReplicationJobKey(sourceRegistry: registry, repository: repository, digest: digest ?? image, destination: d)
    }

    func put(_ m: any MetadataStore, tag: String?, jobs: [ReplicationJobKey], at: Double = 5,
             imageChecks: Bool = false) async throws -> ManifestPutResult {
        let rec = ManifestRecord(digest: image, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                                 subject: nil, annotationsJSON: nil, pushedAt: at)
        var put = ManifestPut(record: rec, blobs: [], manifests: [], tag: tag, imageChecks: imageChecks)
        put.replication = jobs
        return try await m.putManifest(put, in: k("r"))
    }

    @Test(arguments: Backend.allCases)
    func pushesEnqueueInTheirTransaction(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await put(m, tag: "v1", jobs: [job(west), job(peer)])
        // A refused put enqueues nothing (the image exists under that tag).
        await #expect(throws: ImagePutRefusal.self) {
            _ = try await put(m, tag: "v1", jobs: [job(ReplicationDestination(region: "ap-south-1", registryId: registry))], imageChecks: true)
        }
        let jobs = try await m.replicationJobs(of: k("r"), digest: image)
        #expect(jobs.map(\.key.destination) == [peer, west])  // destination order
        #expect(jobs.allSatisfy { $0.state == .inProgress && $0.attempts == 0 && $0.generation == 1 && $0.enqueuedAt == 5 && $0.nextAttemptAt == 5 })
        #expect(try await m.dueReplicationJobs(at: 4, limit: 10).isEmpty)
        #expect(try await m.dueReplicationJobs(at: 5, limit: 10).count == 2)
        #expect(try await m.dueReplicationJobs(at: 5, limit: 1).count == 1)
        #expect(try await m.replicationJobs(of: k("other"), digest: image).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func outcomesRetriesAndEnqueueingAgain(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        try await m.enqueueReplicationJobs([job(west), job(peer)], at: 10)
        var due = try await m.dueReplicationJobs(at: 10, limit: 10)
        let w = try #require(due.first { $0.key.destination == west })
        let p = try #require(due.first { $0.key.destination == peer })

        // A retry: attempts counted, reason kept, due later.
        #expect(try await m.finishReplicationJob(id: p.id, generation: p.generation, outcome: .retry(at: 30, reason: "peer down"), at: 11))
        #expect(try await m.dueReplicationJobs(at: 20, limit: 10).map(\.id) == [w.id])
        let retried = try #require(try await m.replicationJobs(of: k("r"), digest: image).first { $0.id == p.id })
        #expect(retried.state == .inProgress && retried.attempts == 1 && retried.failureReason == "peer down" && retried.nextAttemptAt == 30)

        // Enqueued again while an attempt runs: that attempt's outcome is not recorded, the job stays due.
        try await m.enqueueReplicationJobs([job(west)], at: 12)
        #expect(try await m.finishReplicationJob(id: w.id, generation: w.generation, outcome: .complete, at: 13) == false)
        due = try await m.dueReplicationJobs(at: 13, limit: 10)
        let again = try #require(due.first { $0.id == w.id })
        #expect(again.generation == w.generation + 1 && again.enqueuedAt == 10)  // still the first request's time (lag)
        #expect(try await m.finishReplicationJob(id: again.id, generation: again.generation, outcome: .complete, at: 14))
        #expect(try await m.finishReplicationJob(id: again.id, generation: again.generation, outcome: .complete, at: 14) == false)

        // Failed for good, then enqueued again (a new push, a backfill): a fresh start.
        let p2 = try #require(try await m.dueReplicationJobs(at: 30, limit: 10).first)
        #expect(try await m.finishReplicationJob(id: p2.id, generation: p2.generation, outcome: .failed(reason: "denied"), at: 31))
        var byState = try await m.replicationJobs(state: .failed, after: nil, limit: 10)
        #expect(byState.map(\.id) == [p.id] && byState.first?.failureReason == "denied" && byState.first?.attempts == 2)
        #expect(try await m.replicationQueueSummary() == ReplicationQueueSummary(inProgress: 0, failed: 1, complete: 1, oldestInProgress: nil))
        try await m.enqueueReplicationJobs([job(peer)], at: 40)
        byState = try await m.replicationJobs(state: .inProgress, after: nil, limit: 10)
        #expect(byState.count == 1 && byState.first?.attempts == 0 && byState.first?.failureReason == nil && byState.first?.enqueuedAt == 40)
        #expect(try await m.replicationQueueSummary() == ReplicationQueueSummary(inProgress: 1, failed: 0, complete: 1, oldestInProgress: 40))
        #expect(try await m.replicationJobs(state: nil, after: nil, limit: 10).map(\.id) == [w.id, p.id].sorted())
        #expect(try await m.replicationJobs(state: nil, after: min(w.id, p.id), limit: 10).map(\.id) == [max(w.id, p.id)])

        // The queue is durable.
        if let reopen = s.reopen {
            let (_, reopened) = try await reopen()
            let jobs = try await reopened.replicationJobs(of: k("r"), digest: image)
            #expect(jobs.map(\.state) == [.inProgress, .complete])
            #expect(try await reopened.dueReplicationJobs(at: 40, limit: 10).map(\.key.destination) == [peer])
        }
    }

    @Test(arguments: Backend.allCases)
    func finishingWritesItsEventsInTheSameTransaction(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.enqueueReplicationJobs([job(west)], at: 10)
        let j = try #require(try await m.dueReplicationJobs(at: 10, limit: 10).first)
        let event = OutboxEvent(id: "e1", time: 11, detailType: "ECR Replication Action", account: west.registryId, body: "{}")
        // A stale generation records nothing, its event included.
        #expect(try await m.finishReplicationJob(id: j.id, generation: j.generation + 1, outcome: .complete, at: 11, events: [event]) == false)
        #expect(try await m.outboxCounts().unrouted == 0)
        #expect(try await m.finishReplicationJob(id: j.id, generation: j.generation, outcome: .complete, at: 11, events: [event]))
        #expect(try await m.outboxCounts().unrouted == 1)
    }

    @Test(arguments: Backend.allCases)
    func purgeDeletesFinishedJobsPastTheirRetention(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        let other = Digest.sha256(of: Array("other".utf8))
        let third = Digest.sha256(of: Array("third".utf8))
        try await m.enqueueReplicationJobs([job(west), job(peer), job(west, digest: other), job(west, digest: third)], at: 10)
        for j in try await m.dueReplicationJobs(at: 10, limit: 10) {
            switch (j.key.digest, j.key.destination) {
            case (image, west): #expect(try await m.finishReplicationJob(id: j.id, generation: j.generation, outcome: .complete, at: 20))
            case (image, _): #expect(try await m.finishReplicationJob(id: j.id, generation: j.generation, outcome: .failed(reason: "denied"), at: 20))
            case (other, _): #expect(try await m.finishReplicationJob(id: j.id, generation: j.generation, outcome: .complete, at: 50))
            default: break  // `third` stays IN_PROGRESS
            }
        }
        // Nothing is old enough yet; then the COMPLETE job of time 20 goes, FAILED ones are kept (nil).
        #expect(try await m.purgeReplicationJobs(completeBefore: 20, failedBefore: 20) == 0)
        #expect(try await m.purgeReplicationJobs(completeBefore: 30, failedBefore: nil) == 1)
        #expect(try await m.replicationJobs(of: k("r"), digest: image).map(\.key.destination) == [peer])
        #expect(try await m.replicationQueueSummary() == ReplicationQueueSummary(inProgress: 1, failed: 1, complete: 1, oldestInProgress: 10))
        // FAILED past its own retention goes; IN_PROGRESS never does.
        #expect(try await m.purgeReplicationJobs(completeBefore: 30, failedBefore: 21) == 1)
        #expect(try await m.purgeReplicationJobs(completeBefore: 1_000, failedBefore: 1_000) == 1)
        #expect(try await m.replicationJobs(state: nil, after: nil, limit: 10).map(\.key.digest) == [third])
        // A purged key can be enqueued again: a fresh job.
        try await m.enqueueReplicationJobs([job(west)], at: 60)
        let again = try #require(try await m.replicationJobs(of: k("r"), digest: image).first)
        #expect(again.state == .inProgress && again.generation == 1 && again.enqueuedAt == 60)
        if let reopen = s.reopen {
            let (_, reopened) = try await reopen()
            #expect(try await reopened.replicationJobs(state: nil, after: nil, limit: 10).count == 2)
        }
    }

    @Test(arguments: Backend.allCases)
    func accountsWithASetting(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.putAccountSetting("222222222222@eu-west-1", "replicationConfiguration", "{\"rules\":[]}")
        try await m.putAccountSetting("111111111111", "replicationConfiguration", "{}")
        try await m.putAccountSetting("333333333333", "replicationConfiguration", "")
        try await m.putAccountSetting("444444444444", "other", "x")
        #expect(try await m.accountsWithSetting("replicationConfiguration") == ["111111111111", "222222222222@eu-west-1"])
        #expect(try await m.accountsWithSetting("missing").isEmpty)
    }
}
