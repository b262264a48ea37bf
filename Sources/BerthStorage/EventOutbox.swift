import BerthCore

/// The transactional outbox of events (migration 7, `event_outbox` and `event_deliveries`). Events are
/// written by the change's own write (`ManifestPut.events`, `deleteImage(_:in:events:)`,
/// `deleteTag(_:in:events:)`, `putScan(_:ifState:events:)`) or by `appendEvents`; the delivery service
/// routes them to targets, claims due deliveries (a lease column, so several processes never send the
/// same delivery at once) and records each attempt.
public protocol EventOutboxMetadata: Sendable {
    /// Appends events on their own (one transaction).
    func appendEvents(_ events: [OutboxEvent]) async throws
    /// Takes up to `limit` events not yet routed, oldest first, and in one transaction creates a pending
    /// delivery (due at `at`) for each target `route` names and marks them routed. Returns how many events it routed.
    func routeEvents(limit: Int, at: Double, route: @escaping @Sendable (OutboxEvent) -> [String]) async throws -> Int
    /// Claims up to `limit` pending deliveries due at `at` that nobody holds (or whose claim ended), until
    /// `until`: no other call returns them before then. Oldest due first.
    func claimDeliveries(at: Double, until: Double, limit: Int) async throws -> [EventDelivery]
    /// Routes up to `routeLimit` new events (as `routeEvents`, due at `at`), then claims up to `limit` due
    /// deliveries (as `claimDeliveries`), in one transaction: a delivery pass writes once before it sends
    /// instead of twice. Returns how many events it routed and what it claimed.
    func routeAndClaimDeliveries(routeLimit: Int, at: Double, until: Double, limit: Int,
                                 route: @escaping @Sendable (OutboxEvent) -> [String]) async throws
        -> (routed: Int, claimed: [EventDelivery])
    /// Records attempts of deliveries (counting each) and releases their claims, in one transaction.
    /// Returns how many were recorded: a delivery gone or no longer pending is not.
    @discardableResult
    func finishDeliveries(_ results: [DeliveryResult]) async throws -> Int
    /// Deliveries (with their events) in outbox order after `after`, optionally in one state, up to `limit`.
    func deliveries(state: DeliveryState?, after: Int64?, limit: Int) async throws -> [EventDelivery]
    /// Makes dead deliveries pending again (attempts back to 0, due at `at`): all of them, or those of one
    /// event and/or one target. Returns how many.
    func retryDeliveries(sequence: Int64?, target: String?, at: Double) async throws -> Int
    /// The outbox's counts. Without `includingDelivered` the delivered deliveries are not counted (absent
    /// from `deliveries`): the others stay few and are counted through indexes, while the delivered ones
    /// grow with the retention and take a scan.
    func outboxCounts(includingDelivered: Bool) async throws -> OutboxCounts
    /// Deletes routed events older than `before` none of whose deliveries is pending (delivered and dead ones
    /// go with them). Returns how many events.
    func purgeEvents(before: Double) async throws -> Int
}

extension EventOutboxMetadata {
    /// Every count, the delivered deliveries' too.
    public func outboxCounts() async throws -> OutboxCounts { try await outboxCounts(includingDelivered: true) }

    /// Records one attempt; false when the delivery is gone or no longer pending.
    @discardableResult
    public func finishDelivery(sequence: Int64, target: String, outcome: DeliveryOutcome) async throws -> Bool {
        try await finishDeliveries([DeliveryResult(sequence: sequence, target: target, outcome: outcome)]) == 1
    }
}
