import BerthCore
import BerthLifecycle
import BerthRegistry
import BerthSupport
import Foundation
import Logging
import ServiceLifecycle

/// What a run over several repositories did: a report per repository run, and the repositories whose
/// run failed (the others still ran).
public struct LifecycleRunResult: Sendable {
    public var reports: [LifecycleRunReport] = []
    public var failures: [(repository: RepositoryKey, error: String)] = []
}

/// Lifecycle policy runs: the schedule inside `berth serve` and `berth lifecycle run`.
public enum LifecycleRuns {
    /// The lease (`WorkLeases`) a run that applies policies holds: one at a time across the processes on
    /// the same metadata (the schedule of every node, `berth lifecycle run`).
    public static let lease = "lifecycle"

    /// Runs the policies of one repository, of one account's repositories, or of every repository with
    /// one. One repository's failure does not stop the others.
    public static func run(_ services: BerthServices, repository: String? = nil, account: String? = nil,
                           dryRun: Bool) async throws -> LifecycleRunResult {
        let registry = services.registry
        let keys: [RepositoryKey]
        if let repository {
            let name = try RepositoryName(repository)
            keys = [RepositoryKey(registryID: account ?? services.config.accountId, name: name)]
        } else {
            keys = try await registry.repositoriesWithLifecyclePolicy(account: account)
        }
        var result = LifecycleRunResult()
        for key in keys {
            let report: LifecycleRunReport?
            do {
                report = try await registry.runLifecycle(key, dryRun: dryRun, transition: services.lifecycleTransition)
            } catch where repository == nil {
                result.failures.append((key, "\(error)"))
                continue
            }
            if let report {
                result.reports.append(report)
            } else if repository != nil {
                throw BerthError.internalError("repository \(key.name) of \(key.registryID) has no lifecycle policy")
            }
        }
        return result
    }

    /// One line per image (`would expire` / `expired` / `skipped …`), one per image an index keeps, and a summary line.
    public static func lines(_ result: LifecycleRunResult, dryRun: Bool) -> [String] {
        var out: [String] = []
        var expire = 0, transition = 0, skipped = 0, failed = 0, kept = 0
        let reports = result.reports
        for failure in result.failures {
            out.append("\(failure.repository.registryID)/\(failure.repository.name)\t-\t-\trun failed (\(failure.error))")
        }
        for report in reports {
            let repo = "\(report.repository.registryID)/\(report.repository.name)"
            for outcome in report.outcomes {
                let d = outcome.decision
                let verb: String
                switch (d.action, outcome.result) {
                case (.expire, .planned): verb = "would expire"; expire += 1
                case (.expire, .applied): verb = "expired"; expire += 1
                case (.transition(let c), .planned): verb = "would transition to \(c.rawValue)"; transition += 1
                case (.transition(let c), .applied): verb = "transitioned to \(c.rawValue)"; transition += 1
                case (_, .skipped(let why)): verb = "skipped (\(why))"; skipped += 1
                case (_, .failed(let why)): verb = "failed (\(why))"; failed += 1
                }
                var line = "\(repo)\t\(d.image.digest)\t\(d.image.tags.isEmpty ? "-" : d.image.tags.joined(separator: ","))\t\(verb)\trule \(d.appliedRulePriority)"
                if case .subjectExpired(let subject) = d.cause { line += "\twith its subject \(subject)" }
                out.append(line)
            }
            for r in report.retained {
                kept += 1
                out.append("\(repo)\t\(r.digest)\t-\tkept (listed by index \(r.keptBy))\trule \(r.appliedRulePriority)")
            }
        }
        let verbs = dryRun ? ("would expire", "would transition") : ("expired", "transitioned")
        var summary = "\(reports.count) repositories: \(expire) images \(verbs.0), \(transition) \(verbs.1), \(skipped) skipped, \(failed) failed, \(kept) kept by an index"
        if !result.failures.isEmpty { summary += "; \(result.failures.count) repositories could not be run" }
        out.append(summary)
        return out
    }
}

extension PeriodicService {
    /// Runs every repository's lifecycle policy every `interval`, plus up to 10% jitter.
    static func lifecycle(_ services: BerthServices, every interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "lifecycle run", interval: { jittered(interval) }, lease: (services.registry, LifecycleRuns.lease),
                        logger: logger) {
            let result = try await LifecycleRuns.run(services, dryRun: false)
            for failure in result.failures {
                logger.error("lifecycle run failed", metadata: [
                    "repository": "\(failure.repository.registryID)/\(failure.repository.name)", "error": "\(failure.error)"])
            }
            for report in result.reports where !report.outcomes.isEmpty {
                logger.info("lifecycle policy applied", metadata: [
                    "repository": "\(report.repository.registryID)/\(report.repository.name)",
                    "expired": "\(report.count(.expire, .applied))",
                    "transitioned": "\(report.count(.transition(.archive), .applied))",
                    "skipped": "\(report.outcomes.filter { if case .skipped = $0.result { true } else { false } }.count)",
                ])
            }
        }
    }

    static func jittered(_ interval: Duration) -> Duration {
        let jitter = Double(interval.components.seconds) * 0.1 * Double.random(in: 0...1)
        return interval + .milliseconds(Int64(jitter * 1000))
    }
}
