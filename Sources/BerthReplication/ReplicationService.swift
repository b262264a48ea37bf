import BerthCore
import BerthPolicy
import BerthRegistry
import BerthSupport
import Foundation
import Logging
import Synchronization

/// Settings of replication (`replicationPeers`, `replicationMaxAttempts`, … in the configuration).
public struct ReplicationSettings: Sendable, Equatable {
    /// The regions this deployment serves (each account × region a registry of its own).
    public var regions: RegionSet
    /// Peer deployments, by destination region (and optionally registry).
    public var peers: [ReplicationPeer]
    /// Attempts before a job that keeps failing for a reason that may pass (a peer down) is FAILED.
    public var maxAttempts: Int
    public var retryBaseSeconds: Double
    public var retryMaxSeconds: Double
    /// How often an idle worker looks for jobs other processes enqueued or retries falling due.
    public var pollSeconds: Double
    /// Jobs copied at the same time.
    public var concurrency: Int
    /// Seconds between reconciliation passes (0: none run in the background).
    public var reconcileIntervalSeconds: Double
    /// Every how many passes a registry's reconciliation is full (every covered image); the passes between
    /// check only what changed since the last one. 1: every pass is full.
    public var reconcileFullEvery: Int
    /// How far before the last pass's start an incremental pass looks (pushes committed late, clocks of
    /// several nodes).
    public var reconcileOverlapSeconds: Double
    /// Seconds a COMPLETE job is kept after it finished.
    public var completeRetentionSeconds: Double
    /// Seconds a FAILED job is kept after it failed (nil: kept until enqueued again).
    public var failedRetentionSeconds: Double?

    public init(regions: RegionSet, peers: [ReplicationPeer] = [], maxAttempts: Int = 20, retryBaseSeconds: Double = 1,
                retryMaxSeconds: Double = 300, pollSeconds: Double = 1, concurrency: Int = 4, reconcileIntervalSeconds: Double = 3_600,
                reconcileFullEvery: Int = 24, reconcileOverlapSeconds: Double = 300,
                completeRetentionSeconds: Double = 7 * 86_400, failedRetentionSeconds: Double? = 30 * 86_400) {
        self.reconcileIntervalSeconds = reconcileIntervalSeconds
        self.reconcileFullEvery = reconcileFullEvery
        self.reconcileOverlapSeconds = reconcileOverlapSeconds
        self.completeRetentionSeconds = completeRetentionSeconds
        self.failedRetentionSeconds = failedRetentionSeconds
        self.regions = regions
        self.peers = peers
        self.maxAttempts = maxAttempts
        self.retryBaseSeconds = retryBaseSeconds
        self.retryMaxSeconds = retryMaxSeconds
        self.pollSeconds = pollSeconds
        self.concurrency = concurrency
    }
}

/// What the worker reports, for metrics.
public protocol ReplicationObserver: Sendable {
    func finished(_ job: ReplicationJob, _ outcome: ReplicationOutcome, bytes: Int64, at: Double)
    func queue(_ summary: ReplicationQueueSummary, at: Double)
    /// A reconciliation pass ended (`ReplicationService.reconcile`).
    func reconciled(_ report: ReconciliationReport)
    /// Finished jobs were purged.
    func purged(_ count: Int)
}

/// A failure that waiting will not cure: the job is FAILED at once with this reason.
struct PermanentReplicationFailure: Error, CustomStringConvertible {
    let description: String
}

/// Works the replication queue (docs/replication.md): copies each due job's image — its manifests
/// children first, only the blobs the destination lacks, its tags and its referrers — to a registry of
/// this deployment (through `Registry`) or to a peer (over HTTP), and records the outcome.
public final class ReplicationService: Sendable {
    let registry: Registry
    public let settings: ReplicationSettings
    let peers: ReplicationPeerClient
    let observer: (any ReplicationObserver)?
    let logger: Logger
    let wake = WakeSignal()
    /// Peer repositories known to exist (`CreateRepository` is asked once per process).
    let peerRepositories = Mutex<Set<String>>([])

    /// The work lease: on several nodes sharing a database, one works the queue at a time.
    public static let lease = "replication"

    public init(registry: Registry, settings: ReplicationSettings, peers: ReplicationPeerClient = ReplicationPeerClient(),
                observer: (any ReplicationObserver)? = nil, logger: Logger = Logger(label: "berth.replication")) {
        self.registry = registry
        self.settings = settings
        self.peers = peers
        self.observer = observer
        self.logger = logger
    }

    // MARK: destinations

    /// The registry of this deployment a destination names — the account's registry in that region, when
    /// the deployment serves the region — nil otherwise (then it must be a configured peer). Every
    /// same-deployment destination is decided here.
    public func localDestination(region: String, registryId: String) -> RegistryID? {
        settings.regions.accepts(region) ? .private(registryId, region: settings.regions.storageRegion(region)) : nil
    }

    /// The peer a destination goes to: the entry for its region and registry, else the one for its region alone.
    public func peer(region: String, registryId: String) -> ReplicationPeer? {
        settings.peers.first { $0.region == region && $0.registryId == registryId }
            ?? settings.peers.first { $0.region == region && $0.registryId == nil }
    }

    /// A destination repository is created as ECR creates one: through the registry's repository creation
    /// templates for `REPLICATION` (docs/creation-templates.md), else with the defaults.
    func createDestinationRepository(_ key: RepositoryKey) async throws {
        _ = try await registry.createRepositoryAutomatically(key, for: .replication)
    }

    /// Whether a registry policy lets `sourceAccount` do `action` on the destination repository (ECR's
    /// cross-account rule), decided by the policy engine as any request would be.
    public static func policyAllows(_ policyText: String?, action: String, sourceAccount: String, destinationAccount: String,
                                    region: String, repository: String) -> Bool {
        guard let policyText, let policy = try? Policy(parsing: policyText, options: .ecrRegistryPolicy),
              let principal = RequestPrincipal(arn: "arn:aws:iam::\(sourceAccount):root") else { return false }
        let request = AccessRequest(principal: principal, action: action,
                                    resource: "arn:aws:ecr:\(region):\(destinationAccount):repository/\(repository)")
        return PolicyEngine.evaluate(request, identityPolicies: [], resourcePolicies: [policy]).isAllowed
    }

    func requirePermission(_ policyText: String?, _ job: ReplicationJob, creating: Bool) throws {
        let source = job.key.source.registry.account
        let d = job.key.destination
        var actions = ["ecr:ReplicateImage"]
        if creating { actions.append("ecr:CreateRepository") }
        for action in actions where !Self.policyAllows(policyText, action: action, sourceAccount: source, destinationAccount: d.registryId,
                                                       region: d.region, repository: job.key.repository) {
            throw PermanentReplicationFailure(description: "the registry policy of \(d.registryId) in \(d.region) does not allow \(action) for account \(source)")
        }
    }

    /// Where a job's image goes, after the cross-account permission check; creates the repository when missing.
    func target(for job: ReplicationJob) async throws -> any ReplicationTarget {
        let d = job.key.destination
        let sourceAccount = job.key.source.registry.account
        guard let name = try? RepositoryName(job.key.repository) else {
            throw PermanentReplicationFailure(description: "invalid repository name \(job.key.repository)")
        }
        // A configured peer wins over a region this deployment serves (with `regions: *` it serves them all).
        if let peer = peer(region: d.region, registryId: d.registryId) {
            let known = "\(peer.endpoint) \(d.registryId)/\(name.value)"
            let exists = peerRepositories.withLock { $0.contains(known) }
            if d.registryId != sourceAccount {
                try requirePermission(try await peers.registryPolicy(peer), job, creating: !exists)
            }
            if !exists {
                try await peers.ensureRepository(peer, registryId: d.registryId, name: name.value)
                _ = peerRepositories.withLock { $0.insert(known) }
            }
            return PeerReplicationTarget(client: peers, peer: peer, registryId: d.registryId, repository: name.value, registry: registry)
        }
        if let local = localDestination(region: d.region, registryId: d.registryId) {
            let key = RepositoryKey(registry: local, name: name)
            let exists = try await registry.findRepository(key) != nil
            if local.account != sourceAccount {
                try requirePermission(try await registry.registryPolicy(of: local.storedValue), job, creating: !exists)
            }
            if !exists { try await createDestinationRepository(key) }
            return LocalReplicationTarget(registry: registry, key: key)
        }
        throw PermanentReplicationFailure(description: "no destination for region \(d.region), registry \(d.registryId): this deployment serves \(settings.regions) and no replicationPeers entry maps that region")
    }

    // MARK: copying

    /// Copies a job's image (and its referrers) to its destination; the bytes of blobs sent.
    func copy(_ job: ReplicationJob) async throws -> Int64 {
        let source = job.key.source
        guard let top = try await registry.storedManifest(job.key.digest, in: source) else {
            throw PermanentReplicationFailure(description: "the image \(job.key.digest) is no longer in \(job.key.repository)")
        }
        let tags = try await registry.image(job.key.digest, in: source)?.tags ?? []
        let target = try await target(for: job)
        var bytes = try await copyTree(top, from: source, to: target, tags: tags)
        for referrer in try await registry.referrers(source, of: job.key.digest, artifactType: nil) {
            guard let d = Digest.parse(referrer.digest), let record = try await registry.storedManifest(d, in: source) else { continue }
            bytes += try await copyTree(record, from: source, to: target, tags: [])
        }
        return bytes
    }

    /// Copies one manifest: what the destination lacks of it (children first, then blobs), then the manifest
    /// by digest or under each tag the destination does not have at this digest.
    func copyTree(_ record: ManifestRecord, from source: RepositoryKey, to target: any ReplicationTarget, tags: [String]) async throws -> Int64 {
        var bytes: Int64 = 0
        if try await target.manifestDigest(record.digest.description, mediaType: record.mediaType) == nil {
            let parsed = try ManifestParser.parse(record.bytes, contentType: record.mediaType)
            for child in parsed.requiredManifests {
                guard let c = try await registry.storedManifest(child, in: source) else {
                    throw PermanentReplicationFailure(description: "the manifest \(child) listed by \(record.digest) is not in \(source.name)")
                }
                bytes += try await copyTree(c, from: source, to: target, tags: [])
            }
            for blob in parsed.requiredBlobs { bytes += try await target.ensureBlob(blob, from: source) }
            if tags.isEmpty { try await target.putManifest(record, reference: record.digest.description) }
        }
        for tag in tags where try await target.manifestDigest(tag, mediaType: record.mediaType) != record.digest {
            try await target.putManifest(record, reference: tag)
        }
        return bytes
    }

    /// One attempt at a job, and its outcome.
    func attempt(_ job: ReplicationJob) async -> (ReplicationOutcome, Int64) {
        do {
            let bytes = try await copy(job)
            return (.complete, bytes)
        } catch let e as PermanentReplicationFailure {
            return (.failed(reason: e.description), 0)
        } catch let e as PeerError where !e.retryable {
            return (.failed(reason: e.description), 0)
        } catch {
            let reason = "\(error)"
            let attempts = job.attempts + 1
            if attempts >= settings.maxAttempts { return (.failed(reason: "\(reason) (gave up after \(attempts) attempts)"), 0) }
            let delay = ReplicationRules.backoff(attempt: attempts, base: settings.retryBaseSeconds, max: settings.retryMaxSeconds)
            return (.retry(at: registry.clock.now() + delay, reason: reason), 0)
        }
    }

    /// Works one batch of due jobs (`concurrency` at a time); returns how many were attempted.
    public func runOnce(limit: Int = 64) async throws -> Int {
        let jobs = try await registry.dueReplicationJobs(limit: limit)
        guard !jobs.isEmpty else { return 0 }
        try await withThrowingTaskGroup(of: Void.self) { group in
            var pending = jobs.makeIterator()
            var started = 0
            while started < max(1, settings.concurrency), let job = pending.next() {
                group.addTask { try await self.work(job) }
                started += 1
            }
            while try await group.next() != nil {
                if let job = pending.next() { group.addTask { try await self.work(job) } }
            }
        }
        return jobs.count
    }

    /// One attempt at a job, recorded.
    func work(_ job: ReplicationJob) async throws {
        let (outcome, bytes) = await attempt(job)
        // The tags the events name: the image's at the source now (none for a retry, which sends no event).
        var tags: [String] = []
        if case .retry = outcome {} else { tags = (try? await registry.image(job.key.digest, in: job.key.source))?.tags ?? [] }
        try await registry.finishReplicationJob(job, outcome, tags: tags)
        observer?.finished(job, outcome, bytes: bytes, at: registry.clock.now())
        switch outcome {
        case .complete:
            logger.debug("image replicated", metadata: Self.metadata(job))
        case .retry(_, let reason):
            logger.info("replication attempt failed, will retry", metadata: Self.metadata(job).merging(["reason": "\(reason)"]) { a, _ in a })
        case .failed(let reason):
            logger.warning("replication failed", metadata: Self.metadata(job).merging(["reason": "\(reason)"]) { a, _ in a })
        }
    }

    static func metadata(_ job: ReplicationJob) -> Logger.Metadata {
        ["repository": "\(job.key.repository)", "digest": "\(job.key.digest)", "region": "\(job.key.destination.region)",
         "registryId": "\(job.key.destination.registryId)"]
    }

    /// Works the queue until cancelled, under `lease` (skipped while another process holds it): at once
    /// after a push of this process, else every `pollSeconds`.
    public func run() async {
        let changes = registry.events.subscribe()
        let listener = Task { [wake] in
            for await event in changes {
                if case .manifestPushed = event { wake.signal() }
            }
        }
        defer { listener.cancel() }
        var lastSummary = -Double.infinity
        while !Task.isCancelled {
            var busy = false
            do {
                if let n = try await registry.withLease(Self.lease, { try await self.runOnce() }) { busy = n > 0 }
                let now = registry.clock.now()
                if let observer, now - lastSummary >= 1 {
                    lastSummary = now
                    observer.queue(try await registry.replicationQueueSummary(), at: now)
                }
            } catch {
                logger.error("replication pass failed", metadata: ["error": "\(error)"])
            }
            if !busy { await wake.wait(timeout: .milliseconds(Int64(settings.pollSeconds * 1000))) }
        }
    }
}

/// Where a job's manifests and blobs are written.
protocol ReplicationTarget: Sendable {
    /// The digest `reference` (a tag or a digest) resolves to at the destination; nil when absent.
    func manifestDigest(_ reference: String, mediaType: String) async throws -> Digest?
    /// Makes a blob present at the destination; the bytes sent (0 when it was there or was linked).
    func ensureBlob(_ digest: Digest, from source: RepositoryKey) async throws -> Int64
    func putManifest(_ record: ManifestRecord, reference: String) async throws
}

/// A registry of this deployment: written through `Registry`, no HTTP.
struct LocalReplicationTarget: ReplicationTarget {
    let registry: Registry
    let key: RepositoryKey

    func manifestDigest(_ reference: String, mediaType: String) async throws -> Digest? {
        if let d = Digest.parse(reference) { return try await registry.storedManifest(d, in: key) != nil ? d : nil }
        return try await registry.resolveTag(reference, in: key)
    }

    func ensureBlob(_ digest: Digest, from source: RepositoryKey) async throws -> Int64 {
        try await registry.copyBlob(digest, from: source, to: key)
    }

    func putManifest(_ record: ManifestRecord, reference: String) async throws {
        let ref: Reference = try Digest.parse(reference).map { .digest($0) } ?? .tag(try Tag(reference))
        _ = try await registry.putReplicatedManifest(key, reference: ref, contentType: record.mediaType, bytes: record.bytes)
    }
}

/// A peer deployment, over HTTP.
struct PeerReplicationTarget: ReplicationTarget {
    let client: ReplicationPeerClient
    let peer: ReplicationPeer
    let registryId: String
    let repository: String
    /// The source registry, whose blobs are read.
    let registry: Registry

    static let manifestTypes = [
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    ]

    func manifestDigest(_ reference: String, mediaType: String) async throws -> Digest? {
        try await client.manifestDigest(peer, registryId: registryId, repository: repository, reference: reference,
                                        accept: [mediaType] + Self.manifestTypes.filter { $0 != mediaType })
    }

    func ensureBlob(_ digest: Digest, from source: RepositoryKey) async throws -> Int64 {
        switch try await client.blobPresence(peer, registryId: registryId, repository: repository, digest: digest) {
        case .present: return 0
        case .upload(let location):
            let opened = try await registry.openBlob(source, digest)
            try await client.uploadBlob(peer, registryId: registryId, location: location, digest: digest, size: opened.size,
                                        body: BlobChunks(registry: registry, source: opened, size: opened.size))
            return opened.size
        }
    }

    func putManifest(_ record: ManifestRecord, reference: String) async throws {
        try await client.putManifest(peer, registryId: registryId, repository: repository, reference: reference, mediaType: record.mediaType, bytes: record.bytes)
    }
}
