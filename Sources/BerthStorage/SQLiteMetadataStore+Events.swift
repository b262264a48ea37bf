import BerthCore

/// The event outbox (`EventOutboxMetadata`, docs/events.md) in SQLite.
extension SQLiteMetadataStore {
    /// Writes events inside the caller's transaction.
    static func insertEvents(_ c: SQLiteConnection, _ events: [OutboxEvent]) throws {
        for e in events {
            try c.execute("""
                INSERT INTO event_outbox(event_id, created_at, detail_type, account_id, body) VALUES(?, ?, ?, ?, ?)
                """, [.text(e.id), .real(e.time), .text(e.detailType), .text(e.account), .text(e.body)])
        }
    }

    static let deliveryColumns = """
        d.event_seq, d.target, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_error, d.delivered_at,
        e.event_id, e.created_at, e.detail_type, e.account_id, e.body
        """

    static func delivery(_ r: SQLiteRow) throws -> EventDelivery {
        guard let state = DeliveryState(rawValue: r.text(2)) else {
            throw StorageError("event_deliveries has an unknown state \(r.text(2))")
        }
        func opt(_ i: Int32) -> Double? { r.isNull(i) ? nil : r.double(i) }
        return EventDelivery(sequence: r.int(0), target: r.text(1), state: state, attempts: Int(r.int(3)),
                             nextAttemptAt: r.double(4), lastAttemptAt: opt(5), lastError: r.optionalText(6), deliveredAt: opt(7),
                             event: OutboxEvent(id: r.text(8), time: r.double(9), detailType: r.text(10), account: r.text(11),
                                                body: r.text(12)))
    }

    public func appendEvents(_ events: [OutboxEvent]) async throws {
        guard !events.isEmpty else { return }
        try await db.write { c in try c.transaction { try Self.insertEvents(c, events) } }
    }

    public func routeEvents(limit: Int, at: Double, route: @escaping @Sendable (OutboxEvent) -> [String]) async throws -> Int {
        try await db.write { c in try c.transaction { try Self.route(c, limit: limit, at: at, route: route) } }
    }

    public func claimDeliveries(at: Double, until: Double, limit: Int) async throws -> [EventDelivery] {
        try await db.write { c in try c.transaction { try Self.claim(c, at: at, until: until, limit: limit) } }
    }

    public func routeAndClaimDeliveries(routeLimit: Int, at: Double, until: Double, limit: Int,
                                        route: @escaping @Sendable (OutboxEvent) -> [String]) async throws
        -> (routed: Int, claimed: [EventDelivery]) {
        try await db.write { c in
            try c.transaction {
                let routed = try Self.route(c, limit: routeLimit, at: at, route: route)
                return (routed, try Self.claim(c, at: at, until: until, limit: limit))
            }
        }
    }

    /// Routing inside the caller's (write) transaction.
    static func route(_ c: SQLiteConnection, limit: Int, at: Double, route: (OutboxEvent) -> [String]) throws -> Int {
        let rows = try c.query("""
            SELECT seq, event_id, created_at, detail_type, account_id, body FROM event_outbox WHERE routed = 0 ORDER BY seq LIMIT ?
            """, [.integer(Int64(limit))]) {
            ($0.int(0), OutboxEvent(id: $0.text(1), time: $0.double(2), detailType: $0.text(3), account: $0.text(4), body: $0.text(5)))
        }
        guard let last = rows.last?.0 else { return 0 }
        for (seq, event) in rows {
            for target in Set(route(event)).sorted() {
                try c.execute("""
                    INSERT OR IGNORE INTO event_deliveries(event_seq, target, state, attempts, next_attempt_at)
                    VALUES(?, ?, 'pending', 0, ?)
                    """, [.integer(seq), .text(target), .real(at)])
            }
        }
        // One statement for the batch: the writer is alone, so the unrouted events up to the last one read
        // are exactly those read.
        try c.execute("UPDATE event_outbox SET routed = 1 WHERE routed = 0 AND seq <= ?", [.integer(last)])
        return rows.count
    }

    /// Claiming inside the caller's (write) transaction: one statement marks the claimed rows (the same
    /// query picks them, in the same transaction of the only writer: the same rows).
    static func claim(_ c: SQLiteConnection, at: Double, until: Double, limit: Int) throws -> [EventDelivery] {
        let due = """
            FROM event_deliveries d WHERE d.state = 'pending' AND d.next_attempt_at <= ?1
            AND (d.claimed_until IS NULL OR d.claimed_until <= ?1) ORDER BY d.next_attempt_at, d.event_seq, d.target LIMIT ?2
            """
        let claimed = try c.query("""
            SELECT \(Self.deliveryColumns) FROM (SELECT d.* \(due)) d JOIN event_outbox e ON e.seq = d.event_seq
            ORDER BY d.next_attempt_at, d.event_seq, d.target
            """, [.real(at), .integer(Int64(limit))], row: Self.delivery)
        guard !claimed.isEmpty else { return [] }
        try c.execute("UPDATE event_deliveries SET claimed_until = ?3 WHERE (event_seq, target) IN (SELECT d.event_seq, d.target \(due))",
                      [.real(at), .integer(Int64(limit)), .real(until)])
        return claimed
    }

    public func finishDeliveries(_ results: [DeliveryResult]) async throws -> Int {
        guard !results.isEmpty else { return 0 }
        return try await db.write { c in
            try c.transaction {
                var n = 0
                for r in results {
                    let (sql, values) = Self.finishStatement(r.outcome)
                    n += try c.execute(sql, values.map(Self.sqliteValue) + [.integer(r.sequence), .text(r.target)])
                }
                return n
            }
        }
    }

    public func deliveries(state: DeliveryState?, after: Int64?, limit: Int) async throws -> [EventDelivery] {
        try await db.read { c in
            try c.query("""
                SELECT \(Self.deliveryColumns) FROM event_deliveries d JOIN event_outbox e ON e.seq = d.event_seq
                WHERE d.event_seq > ? AND (? IS NULL OR d.state = ?) ORDER BY d.event_seq, d.target LIMIT ?
                """, [.integer(after ?? 0), Self.optional(state?.rawValue), Self.optional(state?.rawValue), .integer(Int64(limit))],
                row: Self.delivery)
        }
    }

    public func retryDeliveries(sequence: Int64?, target: String?, at: Double) async throws -> Int {
        try await db.write { c in
            try c.execute("""
                UPDATE event_deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?, claimed_until = NULL
                WHERE state = 'dead' AND (? IS NULL OR event_seq = ?) AND (? IS NULL OR target = ?)
                """, [.real(at), sequence.map { .integer($0) } ?? .null, sequence.map { .integer($0) } ?? .null,
                      Self.optional(target), Self.optional(target)])
        }
    }

    public func outboxCounts(includingDelivered: Bool) async throws -> OutboxCounts {
        try await db.read { c in
            let unrouted = try c.query("SELECT count(*) FROM event_outbox WHERE routed = 0") { $0.int(0) }.first ?? 0
            var counts: [String: [DeliveryState: Int]] = [:]
            // Pending and dead through the state index (a range each); delivered only when asked.
            let byState = includingDelivered ? "SELECT target, state, count(*) FROM event_deliveries GROUP BY target, state"
                : "SELECT target, state, count(*) FROM event_deliveries WHERE state IN ('pending', 'dead') GROUP BY target, state"
            for (target, state, n) in try c.query(byState, row: { ($0.text(0), $0.text(1), Int($0.int(2))) }) {
                if let s = DeliveryState(rawValue: state) { counts[target, default: [:]][s] = n }
            }
            let oldest = try c.query("""
                SELECT min(e.created_at) FROM event_deliveries d JOIN event_outbox e ON e.seq = d.event_seq WHERE d.state = 'pending'
                """) { $0.isNull(0) ? nil : $0.double(0) }.first ?? nil
            // Through the unrouted events' partial index (a few rows), not a walk of `created_at`'s index.
            let oldestUnrouted = try c.query("SELECT min(created_at) FROM event_outbox INDEXED BY event_outbox_unrouted WHERE routed = 0") {
                $0.isNull(0) ? nil : $0.double(0)
            }.first ?? nil
            return OutboxCounts(unrouted: Int(unrouted), deliveries: counts,
                                oldestPending: [oldest, oldestUnrouted].compactMap { $0 }.min())
        }
    }

    public func purgeEvents(before: Double) async throws -> Int {
        try await db.write { c in
            try c.transaction {
                // In `seq` order up to the first young event (`EventOutboxIndexSchema.purgeBoundary`).
                let doomed = """
                    SELECT seq FROM event_outbox e WHERE seq < \(EventOutboxIndexSchema.purgeBoundary("?")) AND routed = 1
                    AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending')
                    """
                try c.execute("DELETE FROM event_deliveries WHERE event_seq IN (\(doomed))", [.real(before)])
                return try c.execute("DELETE FROM event_outbox WHERE seq IN (\(doomed))", [.real(before)])
            }
        }
    }

    /// The statement recording an attempt (its values, then the delivery's sequence and target).
    static func finishStatement(_ outcome: DeliveryOutcome) -> (String, [OutboxValue]) {
        let head = "UPDATE event_deliveries SET attempts = attempts + 1, claimed_until = NULL, last_attempt_at = ?, "
        let tail = " WHERE event_seq = ? AND target = ? AND state = 'pending'"
        switch outcome {
        case .delivered(let at):
            return (head + "state = 'delivered', delivered_at = ?, last_error = NULL" + tail, [.real(at), .real(at)])
        case .retry(let at, let next, let error):
            return (head + "next_attempt_at = ?, last_error = ?" + tail, [.real(at), .real(next), .text(error)])
        case .dead(let at, let error):
            return (head + "state = 'dead', last_error = ?" + tail, [.real(at), .text(error)])
        }
    }

    static func sqliteValue(_ v: OutboxValue) -> SQLiteValue {
        switch v {
        case .real(let d): return .real(d)
        case .text(let s): return .text(s)
        }
    }
}

/// A value bound by `SQLiteMetadataStore.finishStatement`.
enum OutboxValue: Sendable, Equatable {
    case real(Double)
    case text(String)
}
