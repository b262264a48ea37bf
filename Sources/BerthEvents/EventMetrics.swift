import BerthCore
import Prometheus
import Synchronization

/// Event delivery on `GET /metrics` (docs/events.md):
///
/// - `berth_events_delivered_total{target}`, `berth_events_failed_attempts_total{target}`,
///   `berth_events_dead_lettered_total{target}`: attempts of this process, by outcome;
/// - `berth_events_delivery_latency_seconds{target}`: from the change to its delivery (histogram);
/// - `berth_events_deliveries{target,state}` (`pending`, `delivered`, `dead`), `berth_events_unrouted`
///   and `berth_events_oldest_pending_age_seconds`: the outbox as stored (every process sees the same).
public final class EventMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    struct PerTarget: Sendable {
        let delivered, failed, dead: Counter
        let latency: ValueHistogram
        let states: [DeliveryState: Gauge]
    }
    private let perTarget: [String: PerTarget]
    private let unrouted: Gauge
    private let oldest: Gauge

    static let latencyBuckets: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1_800, 7_200]

    public init(registry: PrometheusCollectorRegistry, targets: [String]) {
        self.registry = registry
        func name(_ metric: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: "berth", subsystem: "events", metricName: metric, unitName: unit, helpText: help)
        }
        var perTarget: [String: PerTarget] = [:]
        for t in targets {
            let labels = [("target", t)]
            perTarget[t] = PerTarget(
                delivered: registry.makeCounter(descriptor: name("delivered", "total", "Events delivered (2xx)"), labels: labels),
                failed: registry.makeCounter(descriptor: name("failed_attempts", "total", "Delivery attempts that failed"), labels: labels),
                dead: registry.makeCounter(descriptor: name("dead_lettered", "total", "Deliveries given up"), labels: labels),
                latency: registry.makeValueHistogram(
                    descriptor: name("delivery_latency", "seconds", "From the change to its delivery"), labels: labels,
                    buckets: Self.latencyBuckets),
                states: Dictionary(uniqueKeysWithValues: DeliveryState.allCases.map { s in
                    (s, registry.makeGauge(descriptor: name("deliveries", "", "Deliveries in the outbox by state"),
                                           labels: [("target", t), ("state", s.rawValue)]))
                }))
        }
        self.perTarget = perTarget
        unrouted = registry.makeGauge(descriptor: name("unrouted", "", "Events not yet routed to targets"))
        oldest = registry.makeGauge(descriptor: name("oldest_pending_age", "seconds", "Age of the oldest undelivered event"))
    }

    func record(_ delivery: EventDelivery, _ outcome: DeliveryOutcome) {
        guard let m = perTarget[delivery.target] else { return }
        switch outcome {
        case .delivered(let at):
            m.delivered.increment()
            m.latency.record(Swift.max(0, at - delivery.event.time))
        case .retry: m.failed.increment()
        case .dead:
            m.failed.increment()
            m.dead.increment()
        }
    }

    /// `delivered`: whether `counts` counted the delivered deliveries (else their gauge keeps its value).
    func update(_ counts: OutboxCounts, now: Double, delivered: Bool = true) {
        unrouted.set(Double(counts.unrouted))
        oldest.set(counts.oldestPending.map { Swift.max(0, now - $0) } ?? 0)
        for (target, m) in perTarget {
            for (state, gauge) in m.states where delivered || state != .delivered {
                gauge.set(Double(counts.deliveries[target]?[state] ?? 0))
            }
        }
    }
}
