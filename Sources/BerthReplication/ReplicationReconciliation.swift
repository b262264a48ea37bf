import BerthCore
import BerthRegistry
import Logging

/// What one reconciliation pass found and did (docs/replication.md, "Reconciliation").
public struct ReconciliationReport: Sendable, Equatable, Codable {
    /// Registries with a replication configuration looked at.
    public var registries = 0
    /// Repositories matched by a rule.
    public var repositories = 0
    /// Image × destination pairs checked.
    public var checked = 0
    /// Pairs whose image is absent at the destination.
    public var missing = 0
    /// Pairs whose image is there but one of its tags is absent or points at another image.
    public var tagsDiffering = 0
    /// Repair jobs enqueued (`missing + tagsDiffering`).
    public var enqueued = 0
    /// Pairs skipped because a job for them is already IN_PROGRESS.
    public var alreadyQueued = 0
    /// Pairs that could not be checked: a peer that did not answer, a destination nothing serves.
    public var unchecked = 0
    /// Registries reconciled fully (every covered image) and incrementally (what changed since the last pass).
    public var full = 0
    public var incremental = 0

    public init() {}

    /// Image × destination pairs that differ from the source.
    public var drift: Int { missing + tagsDiffering }
}

/// How an image stands at one destination.
public enum DestinationState: Sendable, Equatable {
    /// The image is there, and every one of the given tags points at it.
    case inSync
    case missing
    case tagsDiffer
}

/// Reconciliation: finds images of repositories that replication rules cover which are absent or differ
/// at a destination — deleted there by hand, a tag moved there, a job lost, or pushed before the rule —
/// and enqueues the jobs that repair them. The copy itself is the queue's (`runOnce`).
extension ReplicationService {
    /// The work lease of reconciliation passes (one node at a time reconciles).
    public static let reconcileLease = "replication-reconcile"
    /// The work lease of the hourly purge of finished jobs.
    public static let purgeLease = "replication-purge"

    /// The destination a check reads, without creating anything there; nil when nothing serves it.
    func checkTarget(_ d: ReplicationDestination, repository: RepositoryName) -> (any ReplicationTarget)? {
        if let peer = peer(region: d.region, registryId: d.registryId) {
            return PeerReplicationTarget(client: peers, peer: peer, registryId: d.registryId, repository: repository.value, registry: registry)
        }
        if let local = localDestination(region: d.region, registryId: d.registryId) {
            return LocalReplicationCheck(registry: registry, key: RepositoryKey(registry: local, name: repository))
        }
        return nil
    }

    /// How `digest` (with `tags`) stands at a destination; throws when the destination cannot be read.
    func state(of digest: Digest, mediaType: String, tags: [String], at target: any ReplicationTarget) async throws -> DestinationState {
        guard try await target.manifestDigest(digest.description, mediaType: mediaType) == digest else { return .missing }
        for tag in tags where try await target.manifestDigest(tag, mediaType: mediaType) != digest { return .tagsDiffer }
        return .inSync
    }

    /// Whether the image of `key` is at its destination (by digest): the durable answer of
    /// DescribeImageReplicationStatus for a destination whose job was purged. nil when the destination
    /// cannot be read within `timeout` (a peer down or hanging) or nothing serves it.
    public func destinationHas(_ key: ReplicationJobKey, mediaType: String, timeout: Duration = .seconds(5)) async -> Bool? {
        guard let name = try? RepositoryName(key.repository), let target = checkTarget(key.destination, repository: name) else { return nil }
        return await withTaskGroup(of: Bool?.self) { group in
            group.addTask {
                do { return try await target.manifestDigest(key.digest.description, mediaType: mediaType) == key.digest } catch { return nil }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    /// One reconciliation pass over every registry with a replication configuration (or only `only`).
    /// A registry's pass is **full** — every image of every covered repository checked at each of its
    /// destinations — when `full` is set, when the registry has no mark yet, when its rules changed since
    /// the mark, or when `reconcileFullEvery` passes have run since the last full one; otherwise it is
    /// **incremental**: only the images pushed or tagged since the last completed pass (less
    /// `reconcileOverlapSeconds`) and those whose job FAILED since then. Drift that starts at a destination
    /// (an image deleted there) is found by the next full pass. A job is enqueued for each image absent
    /// at a destination or whose tags differ there; an image with a job already IN_PROGRESS for a
    /// destination is left to that job. A registry's pass in which a destination could not be read (a
    /// peer down) leaves its mark as it was, so the next pass checks the same images again.
    public func reconcile(only: RegistryID? = nil, full: Bool = false) async throws -> ReconciliationReport {
        var report = ReconciliationReport()
        var registries: [RegistryID] = []
        if let only { registries = [only] } else { registries = try await registry.registriesWithReplicationConfiguration() }
        for source in registries {
            let configuration = try await registry.replicationConfiguration(of: source)
            guard !configuration.rules.isEmpty else { continue }
            report.registries += 1
            let stored = try await registry.storedReplicationConfiguration(of: source)
            let start = registry.clock.now()
            let mark = try await registry.reconciliationMark(of: source)
            var pass = RegistryPass(source: source, configuration: configuration)
            if !full, let mark, mark.configuration == stored, mark.incrementalPasses + 1 < settings.reconcileFullEvery {
                report.incremental += 1
                try await reconcileChanges(&pass, since: mark.since - settings.reconcileOverlapSeconds, into: &report)
                if pass.unreadable.isEmpty {
                    try await registry.putReconciliationMark(ReconciliationMark(since: start, incrementalPasses: mark.incrementalPasses + 1,
                                                                                configuration: stored), of: source)
                }
            } else {
                report.full += 1
                for name in try await registry.allRepositoryNames(in: source) {
                    guard let repository = try? RepositoryName(name), !configuration.destinations(for: name).isEmpty else { continue }
                    report.repositories += 1
                    let key = RepositoryKey(registry: source, name: repository)
                    var after: String? = nil
                    while true {
                        let images = try await registry.replicationImages(in: key, after: after, limit: 200)
                        let page = images.prefix(200)
                        for image in page { try await check(image, in: name, pass: &pass, into: &report) }
                        try await enqueue(&pass, into: &report)
                        guard images.count > 200, let last = page.last else { break }
                        after = last.digest.description
                    }
                }
                if pass.unreadable.isEmpty {
                    try await registry.putReconciliationMark(ReconciliationMark(since: start, incrementalPasses: 0, configuration: stored), of: source)
                }
            }
        }
        if report.drift == 0 && report.unchecked > 0 {
            logger.warning("replication destinations not checked", metadata: ["unchecked": "\(report.unchecked)", "checked": "\(report.checked)"])
        } else if report.drift > 0 {
            logger.warning("replication drift found", metadata: [
                "missing": "\(report.missing)", "tagsDiffering": "\(report.tagsDiffering)", "enqueued": "\(report.enqueued)",
                "unchecked": "\(report.unchecked)", "checked": "\(report.checked)",
            ])
        } else {
            logger.info("replication reconciled, no drift", metadata: ["checked": "\(report.checked)", "full": "\(report.full)",
                                                                        "incremental": "\(report.incremental)"])
        }
        observer?.reconciled(report)
        return report
    }

    /// An incremental pass of one registry: the images pushed or tagged at or after `since`, then the
    /// images whose job for some destination FAILED at or after `since` (a copy that gave up).
    func reconcileChanges(_ pass: inout RegistryPass, since: Double, into report: inout ReconciliationReport) async throws {
        var after: ChangedImage? = nil
        var seen = Set<String>()
        var covered = Set<String>()
        while true {
            let changed = try await registry.imagesChanged(in: pass.source, since: since, after: after, limit: 200)
            let page = changed.prefix(200)
            for item in page where !pass.configuration.destinations(for: item.repository).isEmpty {
                if covered.insert(item.repository).inserted { report.repositories += 1 }
                seen.insert("\(item.repository)@\(item.image.digest)")
                try await check(item.image, in: item.repository, pass: &pass, into: &report)
            }
            try await enqueue(&pass, into: &report)
            guard changed.count > 200, let last = page.last else { break }
            after = last
        }
        var afterID: Int64? = nil
        while true {
            let failed = try await registry.replicationJobs(state: .failed, after: afterID, limit: 500)
            for job in failed where job.key.sourceRegistry == pass.source.storedValue && job.updatedAt >= since {
                let repository = job.key.repository
                guard !pass.configuration.destinations(for: repository).isEmpty, seen.insert("\(repository)@\(job.key.digest)").inserted,
                      let name = try? RepositoryName(repository),
                      let image = try await registry.image(job.key.digest, in: RepositoryKey(registry: pass.source, name: name)) else { continue }
                if covered.insert(repository).inserted { report.repositories += 1 }
                try await check(image, in: repository, pass: &pass, into: &report)
            }
            try await enqueue(&pass, into: &report)
            guard failed.count == 500, let last = failed.last else { break }
            afterID = last.id
        }
    }

    /// Checks one image of `repository` at each destination the rules give it, adding the repairs to `pass`.
    func check(_ image: ImageSummary, in repository: String, pass: inout RegistryPass, into report: inout ReconciliationReport) async throws {
        guard let name = try? RepositoryName(repository) else { return }
        let key = RepositoryKey(registry: pass.source, name: name)
        let jobs = try await registry.replicationJobs(of: key, digest: image.digest)
        for (d, target) in pass.targets(for: name, service: self) {
            if jobs.contains(where: { $0.key.destination == d && $0.state == .inProgress }) {
                report.alreadyQueued += 1
                continue
            }
            guard let target, !pass.unreadable.contains(d) else {
                report.unchecked += 1
                continue
            }
            report.checked += 1
            do {
                switch try await state(of: image.digest, mediaType: image.mediaType, tags: image.tags, at: target) {
                case .inSync: continue
                case .missing: report.missing += 1
                case .tagsDiffer: report.tagsDiffering += 1
                }
                pass.repairs.append(ReplicationJobKey(sourceRegistry: key.registryID, repository: key.name, digest: image.digest, destination: d))
            } catch {
                // A peer that does not answer: its other images are not tried in this registry's pass.
                report.checked -= 1
                report.unchecked += 1
                pass.unreadable.insert(d)
                logger.info("replication destination unreadable, not reconciled", metadata: [
                    "region": "\(d.region)", "registryId": "\(d.registryId)", "error": "\(error)",
                ])
            }
        }
    }

    /// Enqueues the repairs a pass collected so far.
    func enqueue(_ pass: inout RegistryPass, into report: inout ReconciliationReport) async throws {
        guard !pass.repairs.isEmpty else { return }
        try await registry.enqueueReplication(pass.repairs)
        report.enqueued += pass.repairs.count
        pass.repairs = []
        wake.signal()
    }

    /// Deletes finished jobs past their retention (`completeRetentionSeconds`, `failedRetentionSeconds`).
    @discardableResult
    public func purgeFinishedJobs() async throws -> Int {
        let n = try await registry.purgeReplicationJobs(completeRetention: settings.completeRetentionSeconds,
                                                        failedRetention: settings.failedRetentionSeconds)
        if n > 0 { logger.info("finished replication jobs purged", metadata: ["count": "\(n)"]) }
        observer?.purged(n)
        return n
    }
}

/// One registry's part of a reconciliation pass: its rules, the destinations found unreadable, the
/// repairs not yet enqueued, and the check targets of the repository being looked at.
struct RegistryPass {
    let source: RegistryID
    let configuration: ReplicationConfiguration
    var unreadable = Set<ReplicationDestination>()
    var repairs: [ReplicationJobKey] = []
    private var current: (name: String, targets: [(ReplicationDestination, (any ReplicationTarget)?)])? = nil

    init(source: RegistryID, configuration: ReplicationConfiguration) {
        self.source = source
        self.configuration = configuration
    }

    /// The destinations of `name` with what reads each (nil: nothing serves it), kept while the pass stays in that repository.
    mutating func targets(for name: RepositoryName, service: ReplicationService) -> [(ReplicationDestination, (any ReplicationTarget)?)] {
        if let current, current.name == name.value { return current.targets }
        let targets = configuration.destinations(for: name.value).map { ($0, service.checkTarget($0, repository: name)) }
        current = (name.value, targets)
        return targets
    }
}

/// A destination of this deployment as a check reads it: straight from the metadata (no manifest cache,
/// so a deletion made by another process is seen), writing nothing.
struct LocalReplicationCheck: ReplicationTarget {
    let registry: Registry
    let key: RepositoryKey

    func manifestDigest(_ reference: String, mediaType: String) async throws -> Digest? {
        if let d = Digest.parse(reference) { return try await registry.image(d, in: key) != nil ? d : nil }
        return try await registry.resolveTag(reference, in: key)
    }

    func ensureBlob(_ digest: Digest, from source: RepositoryKey) async throws -> Int64 {
        throw PermanentReplicationFailure(description: "a reconciliation check writes nothing")
    }

    func putManifest(_ record: ManifestRecord, reference: String) async throws {
        throw PermanentReplicationFailure(description: "a reconciliation check writes nothing")
    }
}
