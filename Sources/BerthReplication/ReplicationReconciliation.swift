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

    /// One reconciliation pass over every registry with a replication configuration (or only `only`):
    /// checks each image of each covered repository at each of its destinations and enqueues a job for
    /// those that are absent there or whose tags differ. An image with a job already IN_PROGRESS for a
    /// destination is left to that job.
    public func reconcile(only: RegistryID? = nil) async throws -> ReconciliationReport {
        var report = ReconciliationReport()
        var registries: [RegistryID] = []
        if let only { registries = [only] } else { registries = try await registry.registriesWithReplicationConfiguration() }
        for source in registries {
            let configuration = try await registry.replicationConfiguration(of: source)
            guard !configuration.rules.isEmpty else { continue }
            report.registries += 1
            for name in try await registry.allRepositoryNames(in: source) {
                let destinations = configuration.destinations(for: name)
                guard !destinations.isEmpty, let repository = try? RepositoryName(name) else { continue }
                report.repositories += 1
                try await reconcile(RepositoryKey(registry: source, name: repository), repository, destinations: destinations, into: &report)
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
            logger.info("replication reconciled, no drift", metadata: ["checked": "\(report.checked)"])
        }
        observer?.reconciled(report)
        return report
    }

    func reconcile(_ key: RepositoryKey, _ name: RepositoryName, destinations: [ReplicationDestination],
                   into report: inout ReconciliationReport) async throws {
        let targets = destinations.map { (destination: $0, target: checkTarget($0, repository: name)) }
        var unreadable = Set<ReplicationDestination>()
        var after: String? = nil
        while true {
            let images = try await registry.replicationImages(in: key, after: after, limit: 200)
            let page = images.prefix(200)
            var repairs: [ReplicationJobKey] = []
            for image in page {
                let jobs = try await registry.replicationJobs(of: key, digest: image.digest)
                for (d, target) in targets {
                    if jobs.contains(where: { $0.key.destination == d && $0.state == .inProgress }) {
                        report.alreadyQueued += 1
                        continue
                    }
                    guard let target, !unreadable.contains(d) else {
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
                        repairs.append(ReplicationJobKey(sourceRegistry: key.registryID, repository: key.name, digest: image.digest, destination: d))
                    } catch {
                        // A peer that does not answer: its other images are not tried in this pass.
                        report.checked -= 1
                        report.unchecked += 1
                        unreadable.insert(d)
                        logger.info("replication destination unreadable, not reconciled", metadata: [
                            "region": "\(d.region)", "registryId": "\(d.registryId)", "error": "\(error)",
                        ])
                    }
                }
            }
            if !repairs.isEmpty {
                try await registry.enqueueReplication(repairs)
                report.enqueued += repairs.count
                wake.signal()
            }
            guard images.count > 200, let last = page.last else { break }
            after = last.digest.description
        }
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
