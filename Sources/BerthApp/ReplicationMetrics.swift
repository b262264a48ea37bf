import BerthCore
import BerthReplication
import Prometheus

/// Replication on `GET /metrics` (docs/replication.md):
///
/// - `berth_replication_jobs{state}`: the queue as stored (every process sees the same);
/// - `berth_replication_lag_seconds`: how long the oldest unfinished job has waited (0 when none);
/// - `berth_replication_completed_total`, `berth_replication_failed_attempts_total`, `berth_replication_failed_total`,
///   `berth_replication_bytes_total`: this process's attempts and the blob bytes it sent;
/// - `berth_replication_reconcile_runs_total`, `berth_replication_drift_total` (image × destination pairs
///   found absent or differing by this process's reconciliation passes), `berth_replication_drift` (the
///   last pass's), `berth_replication_purged_total` (finished jobs deleted past their retention).
final class ReplicationMetrics: ReplicationObserver {
    let states: [ReplicationJobState: Gauge]
    let lag: Gauge
    let completed, failedAttempts, failed, bytes: Counter
    let reconcileRuns, driftTotal, purgedTotal: Counter
    let lastDrift: Gauge

    init(registry: PrometheusCollectorRegistry) {
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "berth", subsystem: "replication", metricName: metric, unitName: unit, helpText: help)
        }
        states = Dictionary(uniqueKeysWithValues: ReplicationJobState.allCases.map { s in
            (s, registry.makeGauge(descriptor: name("jobs", "", "Replication jobs by state"), labels: [("state", s.rawValue)]))
        })
        lag = registry.makeGauge(descriptor: name("lag", "seconds", "Age of the oldest unfinished replication job"))
        completed = registry.makeCounter(descriptor: name("completed", "total", "Replication jobs completed"))
        failedAttempts = registry.makeCounter(descriptor: name("failed_attempts", "total", "Replication attempts that will be retried"))
        failed = registry.makeCounter(descriptor: name("failed", "total", "Replication jobs given up (FAILED)"))
        bytes = registry.makeCounter(descriptor: name("bytes", "total", "Blob bytes copied by replication"))
        reconcileRuns = registry.makeCounter(descriptor: name("reconcile_runs", "total", "Replication reconciliation passes"))
        driftTotal = registry.makeCounter(descriptor: name("drift", "total", "Images found absent or differing at a replication destination"))
        lastDrift = registry.makeGauge(descriptor: name("drift", "", "Images absent or differing at a destination in the last reconciliation"))
        purgedTotal = registry.makeCounter(descriptor: name("purged", "total", "Finished replication jobs deleted past their retention"))
    }

    func reconciled(_ report: ReconciliationReport) {
        reconcileRuns.increment()
        if report.drift > 0 { driftTotal.increment(by: Int64(report.drift)) }
        lastDrift.set(Double(report.drift))
    }

    func purged(_ count: Int) {
        if count > 0 { purgedTotal.increment(by: Int64(count)) }
    }

    func finished(_ job: ReplicationJob, _ outcome: ReplicationOutcome, bytes sent: Int64, at: Double) {
        switch outcome {
        case .complete: completed.increment()
        case .retry: failedAttempts.increment()
        case .failed: failed.increment()
        }
        if sent > 0 { bytes.increment(by: Int64(sent)) }
    }

    func queue(_ summary: ReplicationQueueSummary, at now: Double) {
        states[.inProgress]?.set(Double(summary.inProgress))
        states[.complete]?.set(Double(summary.complete))
        states[.failed]?.set(Double(summary.failed))
        lag.set(summary.oldestInProgress.map { max(0, now - $0) } ?? 0)
    }
}
