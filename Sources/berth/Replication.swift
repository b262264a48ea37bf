import ArgumentParser
import BerthApp
import BerthCore
import BerthRegistry
import BerthReplication
import Foundation

/// `berth replication …` (docs/replication.md): enqueue existing images, and the queue's state and lag.
/// Works beside a running server (which copies what is enqueued).
struct ReplicationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replication", abstract: "Image replication: backfill existing images, repair drift, show the queue and its lag.",
        subcommands: [ReplicationBackfill.self, ReplicationReconcile.self, ReplicationPurge.self, ReplicationStatus.self])
}

/// The private registry `--account` and `--region` name (the configured region when none is given).
func privateRegistry(account: String, region: String?, _ config: BerthConfiguration) throws -> RegistryID {
    guard AccountID.isValid(account) else { throw ValidationError("--account must be 12 digits") }
    let regions = config.regionSet
    let region = region ?? config.region
    guard regions.accepts(region) else { throw ValidationError("--region \(region) is not a region this deployment serves (\(regions))") }
    return .private(account, region: regions.storageRegion(region))
}

struct ReplicationBackfill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Enqueue the images already in a registry's repositories for the destinations of its replication rules.")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "The registry (account id); default: the configured accountId.")
    var account: String?
    @Option(name: .long, help: "The registry's region; default: the configured region.")
    var region: String?
    @Option(name: .long, help: "Only this repository.")
    var repository: String?

    func run() async throws {
        let services = try await adminServices(options)
        if let repository, (try? RepositoryName(repository)) == nil { throw ValidationError("--repository is not a valid repository name") }
        let source = try privateRegistry(account: account ?? services.config.accountId, region: region, services.config)
        let n = try await services.registry.backfillReplication(of: source, repository: repository)
        print("{\"enqueued\": \(n)}")
    }
}

struct ReplicationReconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile",
        abstract: "Check replicated images at their destinations (those changed since the last pass, or all with --full) and enqueue a repair for those absent or differing there (one pass).")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "Only this registry (account id); default: every registry with a replication configuration.")
    var account: String?
    @Option(name: .long, help: "With --account: the registry's region; default: the configured region.")
    var region: String?
    @Flag(name: .long, help: "Check every covered image, not only those changed since the last pass (a full pass).")
    var full = false

    func run() async throws {
        if region != nil && account == nil { throw ValidationError("--region needs --account") }
        let services = try await adminServices(options)
        guard let replication = services.replication else { throw ValidationError("replication is not available") }
        let only = try account.map { try privateRegistry(account: $0, region: region, services.config) }
        let full = full
        guard let report = try await services.registry.withLease(ReplicationService.reconcileLease, {
            try await replication.reconcile(only: only, full: full)
        }) else {
            throw ValidationError("another process is reconciling now (it holds the lease \(ReplicationService.reconcileLease)); try again later")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }
}

struct ReplicationPurge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge",
        abstract: "Delete finished jobs past replicationCompleteRetentionDays / replicationFailedRetentionDays now (the server does it hourly).")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let services = try await adminServices(options)
        guard let replication = services.replication else { throw ValidationError("replication is not available") }
        print("{\"purged\": \(try await replication.purgeFinishedJobs())}")
    }
}

struct ReplicationStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Jobs by state and the replication lag; with --list, the jobs, one JSON object a line.")
    @OptionGroup var options: CommonOptions
    @Flag(name: .long, help: "List the jobs too.")
    var list = false
    @Option(name: .long, help: "Only jobs in this state: IN_PROGRESS, COMPLETE or FAILED.")
    var state: String?
    @Option(name: .long, help: "At most this many jobs.")
    var limit: Int = 1_000

    func run() async throws {
        var wanted: ReplicationJobState? = nil
        if let state {
            guard let s = ReplicationJobState(rawValue: state) else { throw ValidationError("--state must be IN_PROGRESS, COMPLETE or FAILED") }
            wanted = s
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        let services = try await adminServices(options)
        let s = try await services.registry.replicationQueueSummary()
        let now = Date().timeIntervalSince1970
        var o: [String: Any] = ["inProgress": s.inProgress, "complete": s.complete, "failed": s.failed,
                                "lagSeconds": s.oldestInProgress.map { max(0, now - $0) } ?? 0]
        if let t = s.oldestInProgress { o["oldestInProgress"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
        print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        guard list else { return }
        for j in try await services.registry.replicationJobs(state: wanted, after: nil, limit: limit) {
            var line: [String: Any] = [
                "id": j.id, "registryId": RegistryID(storedValue: j.key.sourceRegistry).account, "repository": j.key.repository,
                "digest": j.key.digest.description, "destinationRegion": j.key.destination.region,
                "destinationRegistryId": j.key.destination.registryId, "status": j.state.rawValue, "attempts": j.attempts,
                "enqueuedAt": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: j.enqueuedAt)),
            ]
            if let r = j.failureReason { line["failureReason"] = r }
            print(String(decoding: try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        }
    }
}
