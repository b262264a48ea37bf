import BerthCore
import BerthStorage

/// The event outbox as the delivery service and `berth admin events` see it (docs/events.md): the
/// events are written by the changes themselves (`ECREventSource`); these operations route, claim,
/// record and list their deliveries.
extension Registry {
    /// Routes up to `limit` new events: a pending delivery for each target `route` names.
    public func routeEvents(limit: Int, route: @escaping @Sendable (OutboxEvent) -> [String]) async throws -> Int {
        try await metadata.routeEvents(limit: limit, at: clock.now(), route: route)
    }

    /// Claims up to `limit` due deliveries for `lease` seconds (no other process gets them meanwhile).
    public func claimEventDeliveries(limit: Int, lease: Double) async throws -> [EventDelivery] {
        let now = clock.now()
        return try await metadata.claimDeliveries(at: now, until: now + lease, limit: limit)
    }

    /// Routes up to `routeLimit` new events, then claims up to `limit` due deliveries for `lease` seconds,
    /// in one transaction (a delivery pass's one write before it sends).
    public func routeAndClaimEventDeliveries(routeLimit: Int, limit: Int, lease: Double,
                                             route: @escaping @Sendable (OutboxEvent) -> [String]) async throws
        -> (routed: Int, claimed: [EventDelivery]) {
        let now = clock.now()
        return try await metadata.routeAndClaimDeliveries(routeLimit: routeLimit, at: now, until: now + lease, limit: limit, route: route)
    }

    /// Records attempts' outcomes, in one transaction.
    @discardableResult
    public func finishEventDeliveries(_ results: [DeliveryResult]) async throws -> Int {
        try await metadata.finishDeliveries(results)
    }

    /// Deliveries in outbox order after `after`, optionally in one state.
    public func eventDeliveries(state: DeliveryState?, after: Int64?, limit: Int) async throws -> [EventDelivery] {
        try await metadata.deliveries(state: state, after: after, limit: limit)
    }

    /// Makes dead-lettered deliveries pending again, due now.
    public func retryEventDeliveries(sequence: Int64?, target: String?) async throws -> Int {
        try await metadata.retryDeliveries(sequence: sequence, target: target, at: clock.now())
    }

    public func outboxCounts(includingDelivered: Bool = true) async throws -> OutboxCounts {
        try await metadata.outboxCounts(includingDelivered: includingDelivered)
    }

    /// Deletes events older than `seconds` that have nothing left to deliver.
    public func purgeEvents(olderThan seconds: Double) async throws -> Int {
        try await metadata.purgeEvents(before: clock.now() - seconds)
    }
}
