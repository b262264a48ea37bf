import BerthCore
import BerthStorage

/// The event outbox (`EventOutboxMetadata`, docs/events.md) in PostgreSQL: the same tables as SQLite's.
/// Events are routed by the `routed` flag, not by a sequence cursor: a transaction may commit a smaller
/// `seq` after a larger one is visible, and a cursor would skip it. Deliveries are claimed with
/// `FOR UPDATE SKIP LOCKED` and a lease column, so nodes share the work without sending one twice at once.
extension PostgresMetadataStore {
    /// Writes events inside the caller's transaction (one statement, whatever their number), and tells the
    /// other nodes at commit, so the one delivering starts at once (`StoreChange.events`).
    func insertEvents(_ c: PGConnection, _ events: [OutboxEvent]) async throws {
        guard !events.isEmpty else { return }
        try await changes.notify(c, .events)
        try await c.execute("""
            INSERT INTO event_outbox(event_id, created_at, detail_type, account_id, body)
            SELECT * FROM unnest($1::text[], $2::float8[], $3::text[], $4::text[], $5::text[])
            """, [.texts(events.map(\.id)), .reals(events.map(\.time)), .texts(events.map(\.detailType)),
                  .texts(events.map(\.account)), .texts(events.map(\.body))])
    }

    static let deliveryColumns = """
        d.event_seq, d.target, d.state, d.attempts, d.next_attempt_at, d.last_attempt_at, d.last_error, d.delivered_at,
        e.event_id, e.created_at, e.detail_type, e.account_id, e.body
        """

    static func delivery(_ r: PGRow) throws -> EventDelivery {
        let stateText = try r.text(2)
        guard let state = DeliveryState(rawValue: stateText) else {
            throw StorageError("event_deliveries has an unknown state \(stateText)")
        }
        return EventDelivery(sequence: try r.int(0), target: try r.text(1), state: state, attempts: Int(try r.int(3)),
                             nextAttemptAt: try r.double(4), lastAttemptAt: try r.optionalDouble(5), lastError: try r.optionalText(6),
                             deliveredAt: try r.optionalDouble(7),
                             event: OutboxEvent(id: try r.text(8), time: try r.double(9), detailType: try r.text(10),
                                                account: try r.text(11), body: try r.text(12)))
    }

    public func appendEvents(_ events: [OutboxEvent]) async throws {
        guard !events.isEmpty else { return }
        try await transaction { c in try await insertEvents(c, events) }
    }

    public func routeEvents(limit: Int, at: Double, route: @escaping @Sendable (OutboxEvent) -> [String]) async throws -> Int {
        try await transaction { c in try await Self.route(c, limit: limit, at: at, route: route) }
    }

    public func claimDeliveries(at: Double, until: Double, limit: Int) async throws -> [EventDelivery] {
        // READ COMMITTED with SKIP LOCKED: concurrent claimers pass over each other's rows instead of failing.
        try await transaction("READ COMMITTED") { c in try await Self.claim(c, at: at, until: until, limit: limit) }
    }

    public func routeAndClaimDeliveries(routeLimit: Int, at: Double, until: Double, limit: Int,
                                        route: @escaping @Sendable (OutboxEvent) -> [String]) async throws
        -> (routed: Int, claimed: [EventDelivery]) {
        // READ COMMITTED as the claim needs; routing is safe there too: its rows are locked (SKIP LOCKED) and
        // re-checked (`routed = 0`) against the latest committed version, and deliveries insert ON CONFLICT DO NOTHING.
        try await transaction("READ COMMITTED") { c in
            let routed = try await Self.route(c, limit: routeLimit, at: at, route: route)
            return (routed, try await Self.claim(c, at: at, until: until, limit: limit))
        }
    }

    /// Routing inside the caller's transaction.
    static func route(_ c: PGConnection, limit: Int, at: Double, route: (OutboxEvent) -> [String]) async throws -> Int {
        let rows = try await c.query("""
            SELECT seq, event_id, created_at, detail_type, account_id, body FROM event_outbox WHERE routed = 0
            ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED
            """, [.integer(Int64(limit))]) {
            (try $0.int(0), OutboxEvent(id: try $0.text(1), time: try $0.double(2), detailType: try $0.text(3),
                                        account: try $0.text(4), body: try $0.text(5)))
        }
        guard !rows.isEmpty else { return 0 }
        var seqs: [String] = [], targets: [String] = []
        for (seq, event) in rows {
            for target in Set(route(event)).sorted() {
                seqs.append(String(seq))
                targets.append(target)
            }
        }
        if !seqs.isEmpty {
            try await c.execute("""
                INSERT INTO event_deliveries(event_seq, target, state, attempts, next_attempt_at)
                SELECT s::bigint, t, 'pending', 0, $3 FROM unnest($1::text[], $2::text[]) AS x(s, t) ON CONFLICT DO NOTHING
                """, [.texts(seqs), .texts(targets), .real(at)])
        }
        try await c.execute("UPDATE event_outbox SET routed = 1 WHERE seq = ANY($1::text[]::bigint[])",
                            [.texts(rows.map { String($0.0) })])
        return rows.count
    }

    /// Claiming inside the caller's (READ COMMITTED) transaction, in one statement.
    static func claim(_ c: PGConnection, at: Double, until: Double, limit: Int) async throws -> [EventDelivery] {
        try await c.query("""
            WITH due AS (
                SELECT event_seq, target FROM event_deliveries
                WHERE state = 'pending' AND next_attempt_at <= $1 AND (claimed_until IS NULL OR claimed_until <= $1)
                ORDER BY next_attempt_at, event_seq, target LIMIT $3 FOR UPDATE SKIP LOCKED),
            claimed AS (
                UPDATE event_deliveries d SET claimed_until = $2 FROM due
                WHERE d.event_seq = due.event_seq AND d.target = due.target RETURNING d.*)
            SELECT \(Self.deliveryColumns) FROM claimed d JOIN event_outbox e ON e.seq = d.event_seq
            ORDER BY d.next_attempt_at, d.event_seq, d.target
            """, [.real(at), .real(until), .integer(Int64(limit))], row: Self.delivery)
    }

    public func finishDeliveries(_ results: [DeliveryResult]) async throws -> Int {
        guard !results.isEmpty else { return 0 }
        var seqs: [String] = [], targets: [String] = [], states: [String] = [], at: [Double] = [], next: [Double] = []
        var errors: [String] = []
        for r in results {
            seqs.append(String(r.sequence))
            targets.append(r.target)
            switch r.outcome {
            case .delivered(let t): states.append("delivered"); at.append(t); next.append(t); errors.append("")
            case .retry(let t, let n, let e): states.append("pending"); at.append(t); next.append(n); errors.append(e)
            case .dead(let t, let e): states.append("dead"); at.append(t); next.append(t); errors.append(e)
            }
        }
        // One statement for the batch: each row's outcome from the arrays, in one transaction.
        return try await transaction { c in
            try await c.execute("""
                UPDATE event_deliveries d SET attempts = d.attempts + 1, claimed_until = NULL, last_attempt_at = x.at,
                    state = x.state, next_attempt_at = CASE WHEN x.state = 'pending' THEN x.next ELSE d.next_attempt_at END,
                    delivered_at = CASE WHEN x.state = 'delivered' THEN x.at ELSE d.delivered_at END,
                    last_error = CASE WHEN x.state = 'delivered' THEN NULL ELSE x.error END
                FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[]) AS x(seq, target, state, at, next, error)
                WHERE d.event_seq = x.seq::bigint AND d.target = x.target AND d.state = 'pending'
                """, [.texts(seqs), .texts(targets), .texts(states), .reals(at), .reals(next), .texts(errors)])
        }
    }

    public func deliveries(state: DeliveryState?, after: Int64?, limit: Int) async throws -> [EventDelivery] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.deliveryColumns) FROM event_deliveries d JOIN event_outbox e ON e.seq = d.event_seq
                WHERE d.event_seq > $1 AND ($2::text IS NULL OR d.state = $2::text) ORDER BY d.event_seq, d.target LIMIT $3
                """, [.integer(after ?? 0), .optional(state?.rawValue), .integer(Int64(limit))], row: Self.delivery)
        }
    }

    public func retryDeliveries(sequence: Int64?, target: String?, at: Double) async throws -> Int {
        try await transaction { c in
            try await c.execute("""
                UPDATE event_deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, claimed_until = NULL
                WHERE state = 'dead' AND ($2::bigint IS NULL OR event_seq = $2::bigint) AND ($3::text IS NULL OR target = $3::text)
                """, [.real(at), sequence.map { .integer($0) } ?? .null, .optional(target)])
        }
    }

    public func outboxCounts(includingDelivered: Bool) async throws -> OutboxCounts {
        try await read { c in
            let unrouted = try await c.query("SELECT count(*) FROM event_outbox WHERE routed = 0") { try $0.int(0) }.first ?? 0
            var counts: [String: [DeliveryState: Int]] = [:]
            // Pending and dead through the state index; delivered only when asked.
            let byState = includingDelivered ? "SELECT target, state, count(*) FROM event_deliveries GROUP BY target, state"
                : "SELECT target, state, count(*) FROM event_deliveries WHERE state IN ('pending', 'dead') GROUP BY target, state"
            for (target, state, n) in try await c.query(byState, row: { (try $0.text(0), try $0.text(1), Int(try $0.int(2))) }) {
                if let s = DeliveryState(rawValue: state) { counts[target, default: [:]][s] = n }
            }
            let oldest = try await c.query("""
                SELECT least((SELECT min(e.created_at) FROM event_deliveries d JOIN event_outbox e ON e.seq = d.event_seq
                              WHERE d.state = 'pending'),
                             (SELECT min(created_at) FROM event_outbox WHERE routed = 0))
                """) { try $0.optionalDouble(0) }.first ?? nil
            return OutboxCounts(unrouted: Int(unrouted), deliveries: counts, oldestPending: oldest)
        }
    }

    public func purgeEvents(before: Double) async throws -> Int {
        try await transaction { c in
            try await c.execute("""
                DELETE FROM event_outbox e WHERE seq < \(EventOutboxIndexSchema.purgeBoundary("$1"))
                AND routed = 1 AND NOT EXISTS (SELECT 1 FROM event_deliveries d WHERE d.event_seq = e.seq AND d.state = 'pending')
                """, [.real(before)])
        }
    }
}
