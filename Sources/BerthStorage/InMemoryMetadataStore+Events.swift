import BerthCore

/// The event outbox of the in-memory store: the same rules as the SQLite tables, under the store's lock.
struct OutboxState {
    struct Row {
        var event: OutboxEvent
        var routed = false
    }
    struct Delivery {
        var state: DeliveryState = .pending
        var attempts = 0
        var nextAttemptAt: Double
        var claimedUntil: Double? = nil
        var lastAttemptAt: Double? = nil
        var lastError: String? = nil
        var deliveredAt: Double? = nil
    }
    struct Key: Hashable, Comparable {
        var sequence: Int64
        var target: String
        static func < (a: Key, b: Key) -> Bool { (a.sequence, a.target) < (b.sequence, b.target) }
    }
    var nextSequence: Int64 = 1
    var rows: [Int64: Row] = [:]
    var deliveries: [Key: Delivery] = [:]

    mutating func append(_ events: [OutboxEvent]) {
        for e in events {
            rows[nextSequence] = Row(event: e)
            nextSequence += 1
        }
    }

    mutating func route(limit: Int, at: Double, route: (OutboxEvent) -> [String]) -> Int {
        let due = rows.filter { !$0.value.routed }.keys.sorted().prefix(limit)
        for seq in due {
            guard let event = rows[seq]?.event else { continue }
            for target in Set(route(event)) {
                let key = Key(sequence: seq, target: target)
                if deliveries[key] == nil { deliveries[key] = Delivery(nextAttemptAt: at) }
            }
            rows[seq]?.routed = true
        }
        return due.count
    }

    mutating func claim(at: Double, until: Double, limit: Int) -> [EventDelivery] {
        let due = deliveries.filter { _, d in
            d.state == .pending && d.nextAttemptAt <= at && (d.claimedUntil.map { $0 <= at } ?? true)
        }.sorted { ($0.value.nextAttemptAt, $0.key) < ($1.value.nextAttemptAt, $1.key) }.prefix(limit)
        var out: [EventDelivery] = []
        for (key, d) in due {
            deliveries[key]?.claimedUntil = until
            if let r = record(key, d) { out.append(r) }
        }
        return out
    }

    func record(_ key: Key, _ d: Delivery) -> EventDelivery? {
        guard let row = rows[key.sequence] else { return nil }
        return EventDelivery(sequence: key.sequence, target: key.target, state: d.state, attempts: d.attempts,
                             nextAttemptAt: d.nextAttemptAt, lastAttemptAt: d.lastAttemptAt, lastError: d.lastError,
                             deliveredAt: d.deliveredAt, event: row.event)
    }
}

extension InMemoryMetadataStore {
    public func appendEvents(_ events: [OutboxEvent]) async throws {
        state.withLock { $0.outbox.append(events) }
    }

    public func routeEvents(limit: Int, at: Double, route: @escaping @Sendable (OutboxEvent) -> [String]) async throws -> Int {
        state.withLock { s in s.outbox.route(limit: limit, at: at, route: route) }
    }

    public func claimDeliveries(at: Double, until: Double, limit: Int) async throws -> [EventDelivery] {
        state.withLock { s in s.outbox.claim(at: at, until: until, limit: limit) }
    }

    public func routeAndClaimDeliveries(routeLimit: Int, at: Double, until: Double, limit: Int,
                                        route: @escaping @Sendable (OutboxEvent) -> [String]) async throws
        -> (routed: Int, claimed: [EventDelivery]) {
        state.withLock { s in
            let routed = s.outbox.route(limit: routeLimit, at: at, route: route)
            return (routed, s.outbox.claim(at: at, until: until, limit: limit))
        }
    }

    public func finishDeliveries(_ results: [DeliveryResult]) async throws -> Int {
        state.withLock { s in
            var n = 0
            for r in results {
                let key = OutboxState.Key(sequence: r.sequence, target: r.target)
                guard var d = s.outbox.deliveries[key], d.state == .pending else { continue }
                d.attempts += 1
                d.claimedUntil = nil
                switch r.outcome {
                case .delivered(let at):
                    d.lastAttemptAt = at
                    d.state = .delivered
                    d.deliveredAt = at
                    d.lastError = nil
                case .retry(let at, let next, let error):
                    d.lastAttemptAt = at
                    d.nextAttemptAt = next
                    d.lastError = error
                case .dead(let at, let error):
                    d.lastAttemptAt = at
                    d.state = .dead
                    d.lastError = error
                }
                s.outbox.deliveries[key] = d
                n += 1
            }
            return n
        }
    }

    public func deliveries(state wanted: DeliveryState?, after: Int64?, limit: Int) async throws -> [EventDelivery] {
        state.withLock { s in
            s.outbox.deliveries.filter { $0.key.sequence > (after ?? 0) && (wanted == nil || $0.value.state == wanted) }
                .sorted { $0.key < $1.key }.prefix(limit).compactMap { s.outbox.record($0.key, $0.value) }
        }
    }

    public func retryDeliveries(sequence: Int64?, target: String?, at: Double) async throws -> Int {
        state.withLock { s in
            var n = 0
            for (key, d) in s.outbox.deliveries where d.state == .dead
                && (sequence == nil || key.sequence == sequence) && (target == nil || key.target == target) {
                s.outbox.deliveries[key] = OutboxState.Delivery(nextAttemptAt: at, lastAttemptAt: d.lastAttemptAt, lastError: d.lastError)
                n += 1
            }
            return n
        }
    }

    public func outboxCounts(includingDelivered: Bool) async throws -> OutboxCounts {
        state.withLock { s in
            var counts: [String: [DeliveryState: Int]] = [:]
            var oldest: Double? = nil
            for (key, d) in s.outbox.deliveries where includingDelivered || d.state != .delivered {
                counts[key.target, default: [:]][d.state, default: 0] += 1
                if d.state == .pending, let t = s.outbox.rows[key.sequence]?.event.time { oldest = min(oldest ?? t, t) }
            }
            let unrouted = s.outbox.rows.values.filter { !$0.routed }
            for r in unrouted { oldest = min(oldest ?? r.event.time, r.event.time) }
            return OutboxCounts(unrouted: unrouted.count, deliveries: counts, oldestPending: oldest)
        }
    }

    public func purgeEvents(before: Double) async throws -> Int {
        state.withLock { s in
            let pending = Set(s.outbox.deliveries.filter { $0.value.state == .pending }.map(\.key.sequence))
            let doomed = s.outbox.rows.filter { $0.value.routed && $0.value.event.time < before && !pending.contains($0.key) }.keys
            for seq in doomed { s.outbox.rows[seq] = nil }
            let gone = Set(doomed)
            s.outbox.deliveries = s.outbox.deliveries.filter { !gone.contains($0.key.sequence) }
            return gone.count
        }
    }
}
