import BerthCore
import BerthReplication
import Foundation

/// A peer as written in the settings is BerthReplication's `ReplicationPeer` (Codable); its checks live here.
extension ReplicationPeer {
    func problems() -> [String] {
        var p: [String] = []
        if !ReplicationRules.isRegion(region) { p.append("replication peer region must look like us-east-1, got \(region)") }
        if let id = registryId, id.utf8.count != 12 || !id.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            p.append("replication peer registryId must be 12 digits, got \(id)")
        }
        if !(endpoint.hasPrefix("http://") || endpoint.hasPrefix("https://")) || URL(string: endpoint)?.host == nil {
            p.append("replication peer endpoint must be an http:// or https:// URL, got \(endpoint)")
        }
        if accessKeyId.isEmpty || secretAccessKey.isEmpty { p.append("replication peer \(endpoint): accessKeyId and secretAccessKey are required") }
        return p
    }
}

/// The replication settings (`replicationPeers`, `replicationMaxAttempts`, … / `BERTH_REPLICATION_*`).
public struct ReplicationConfigurationSettings: Sendable, Equatable, Decodable {
    public var peers: [ReplicationPeer] = []
    public var maxAttempts: Int = 20
    public var retryBaseSeconds: Double = 1
    public var retryMaxSeconds: Double = 300
    public var pollSeconds: Double = 1
    public var concurrency: Int = 4
    /// Seconds between reconciliation passes; 0 turns the background pass off.
    public var reconcileIntervalSeconds: Double = 3_600
    /// Every how many passes a registry's reconciliation is full; the others check what changed since the last.
    public var reconcileFullEvery: Int = 24
    /// Days a COMPLETE job is kept after it finished (then DescribeImageReplicationStatus reads the destination).
    public var completeRetentionDays: Double = 7
    /// Days a FAILED job is kept after it failed; 0 keeps FAILED jobs until they are enqueued again.
    public var failedRetentionDays: Double = 30

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case replicationPeers, replicationMaxAttempts, replicationRetryBaseSeconds, replicationRetryMaxSeconds, replicationPollSeconds,
             replicationConcurrency, replicationReconcileIntervalSeconds, replicationReconcileFullEvery, replicationCompleteRetentionDays, replicationFailedRetentionDays
    }

    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ReplicationConfigurationSettings()
        peers = try c.decodeIfPresent([ReplicationPeer].self, forKey: .replicationPeers) ?? d.peers
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .replicationMaxAttempts) ?? d.maxAttempts
        retryBaseSeconds = try c.decodeIfPresent(Double.self, forKey: .replicationRetryBaseSeconds) ?? d.retryBaseSeconds
        retryMaxSeconds = try c.decodeIfPresent(Double.self, forKey: .replicationRetryMaxSeconds) ?? d.retryMaxSeconds
        pollSeconds = try c.decodeIfPresent(Double.self, forKey: .replicationPollSeconds) ?? d.pollSeconds
        concurrency = try c.decodeIfPresent(Int.self, forKey: .replicationConcurrency) ?? d.concurrency
        reconcileIntervalSeconds = try c.decodeIfPresent(Double.self, forKey: .replicationReconcileIntervalSeconds) ?? d.reconcileIntervalSeconds
        reconcileFullEvery = try c.decodeIfPresent(Int.self, forKey: .replicationReconcileFullEvery) ?? d.reconcileFullEvery
        completeRetentionDays = try c.decodeIfPresent(Double.self, forKey: .replicationCompleteRetentionDays) ?? d.completeRetentionDays
        failedRetentionDays = try c.decodeIfPresent(Double.self, forKey: .replicationFailedRetentionDays) ?? d.failedRetentionDays
    }

    /// Applies `BERTH_REPLICATION_*` from `env` (`BERTH_REPLICATION_PEERS` is the peers' JSON array).
    mutating func apply(env: (String) -> String?, problems: inout [String]) {
        if let v = env("BERTH_REPLICATION_PEERS") {
            do { peers = try JSONDecoder().decode([ReplicationPeer].self, from: Data(v.utf8)) } catch {
                problems.append("BERTH_REPLICATION_PEERS must be a JSON array of peers: \(error)")
            }
        }
        func number(_ name: String, _ apply: (Double) -> Void) {
            guard let v = env(name) else { return }
            if let d = Double(v) { apply(d) } else { problems.append("\(name) must be a number, got \(v)") }
        }
        number("BERTH_REPLICATION_MAX_ATTEMPTS") { maxAttempts = Int($0) }
        number("BERTH_REPLICATION_RETRY_BASE_SECONDS") { retryBaseSeconds = $0 }
        number("BERTH_REPLICATION_RETRY_MAX_SECONDS") { retryMaxSeconds = $0 }
        number("BERTH_REPLICATION_POLL_SECONDS") { pollSeconds = $0 }
        number("BERTH_REPLICATION_CONCURRENCY") { concurrency = Int($0) }
        number("BERTH_REPLICATION_RECONCILE_INTERVAL_SECONDS") { reconcileIntervalSeconds = $0 }
        number("BERTH_REPLICATION_RECONCILE_FULL_EVERY") { reconcileFullEvery = Int($0) }
        number("BERTH_REPLICATION_COMPLETE_RETENTION_DAYS") { completeRetentionDays = $0 }
        number("BERTH_REPLICATION_FAILED_RETENTION_DAYS") { failedRetentionDays = $0 }
    }

    func problems() -> [String] {
        var p = peers.flatMap { $0.problems() }
        let keys = peers.map { "\($0.region)/\($0.registryId ?? "*")" }
        if Set(keys).count != keys.count { p.append("replicationPeers must not name the same region and registryId twice") }
        if !(1...1_000).contains(maxAttempts) { p.append("replicationMaxAttempts must be between 1 and 1000, got \(maxAttempts)") }
        if !(0.01...3_600).contains(retryBaseSeconds) { p.append("replicationRetryBaseSeconds must be between 0.01 and 3600") }
        if !(retryBaseSeconds...86_400).contains(retryMaxSeconds) {
            p.append("replicationRetryMaxSeconds must be between replicationRetryBaseSeconds and 86400")
        }
        if !(0.05...3_600).contains(pollSeconds) { p.append("replicationPollSeconds must be between 0.05 and 3600") }
        if !(1...64).contains(concurrency) { p.append("replicationConcurrency must be between 1 and 64, got \(concurrency)") }
        if reconcileIntervalSeconds != 0 && !(1...604_800).contains(reconcileIntervalSeconds) {
            p.append("replicationReconcileIntervalSeconds must be 0 (off) or between 1 and 604800, got \(reconcileIntervalSeconds)")
        }
        if !(1...10_000).contains(reconcileFullEvery) {
            p.append("replicationReconcileFullEvery must be between 1 (every pass full) and 10000, got \(reconcileFullEvery)")
        }
        if !(completeRetentionDays > 0 && completeRetentionDays <= 3_650) {
            p.append("replicationCompleteRetentionDays must be more than 0 and at most 3650, got \(completeRetentionDays)")
        }
        if !(0...3_650).contains(failedRetentionDays) {
            p.append("replicationFailedRetentionDays must be 0 (keep) or at most 3650, got \(failedRetentionDays)")
        } else if failedRetentionDays != 0 && failedRetentionDays < completeRetentionDays {
            p.append("replicationFailedRetentionDays must be 0 (keep) or at least replicationCompleteRetentionDays")
        }
        return p
    }

    /// The worker's settings for a deployment serving `regions`.
    public func settings(regions: RegionSet) -> ReplicationSettings {
        ReplicationSettings(regions: regions, peers: peers, maxAttempts: maxAttempts, retryBaseSeconds: retryBaseSeconds,
                            retryMaxSeconds: retryMaxSeconds, pollSeconds: pollSeconds, concurrency: concurrency,
                            reconcileIntervalSeconds: reconcileIntervalSeconds, reconcileFullEvery: reconcileFullEvery,
                            completeRetentionSeconds: completeRetentionDays * 86_400,
                            failedRetentionSeconds: failedRetentionDays == 0 ? nil : failedRetentionDays * 86_400)
    }
}
