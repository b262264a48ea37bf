import AsyncHTTPClient
import BerthCore
import BerthRegistry
import BerthSupport
import Foundation
import Logging
import NIOCore

/// Sends one request to a target; returns the HTTP status. Throws when no answer came (connection
/// refused, timeout).
public protocol EventSender: Sendable {
    func send(url: String, headers: [(String, String)], body: [UInt8], timeout: Double) async throws -> Int
}

/// `EventSender` over async-http-client: pooled keep-alive connections, a 5 s connect timeout, no
/// redirects, and no retried connection attempts: a receiver that is down fails the attempt at once (the
/// outbox retries it with its own backoff) instead of holding requests in the pool's queue until their
/// deadline, connection after connection.
public struct HTTPEventSender: EventSender {
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5), read: .seconds(60)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 16
        configuration.connectionPool.retryConnectionEstablishment = false
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
    let client: HTTPClient

    public init() { client = Self.sharedHTTPClient }

    public func send(url: String, headers: [(String, String)], body: [UInt8], timeout: Double) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        // The answer's body is read (up to 64 KiB) and dropped, so the connection can be reused.
        _ = try await response.body.collect(upTo: 1 << 16)
        return Int(response.status.code)
    }
}

/// How event delivery behaves (`eventTargets`, `eventMaxAttempts`, … in the settings; docs/events.md).
public struct EventDeliverySettings: Sendable {
    public var targets: [EventTarget]
    /// Attempts per delivery before it is dead-lettered.
    public var maxAttempts: Int
    /// The first retry's delay; each next one doubles, up to `retryMaxSeconds` (±20 % jitter).
    public var retryBaseSeconds: Double
    public var retryMaxSeconds: Double
    /// How often an idle loop looks for work another process wrote (this process's changes wake it at once).
    public var pollSeconds: Double
    /// How long delivered and dead events are kept.
    public var retentionSeconds: Double
    /// Deliveries claimed per pass, and sent at once.
    public var batchSize: Int
    public var concurrency: Int
    /// How long a woken loop waits for more changes before a pass.
    public var batchWindowSeconds: Double

    public init(targets: [EventTarget], maxAttempts: Int = 12, retryBaseSeconds: Double = 1, retryMaxSeconds: Double = 300,
                pollSeconds: Double = 1, retentionSeconds: Double = 7 * 86_400, batchSize: Int = 256, concurrency: Int = 16,
                batchWindowSeconds: Double = 0.02) {
        self.targets = targets
        self.maxAttempts = maxAttempts
        self.retryBaseSeconds = retryBaseSeconds
        self.retryMaxSeconds = retryMaxSeconds
        self.pollSeconds = pollSeconds
        self.retentionSeconds = retentionSeconds
        self.batchSize = batchSize
        self.concurrency = concurrency
        self.batchWindowSeconds = batchWindowSeconds
    }
}

/// Delivers the outbox's events to the configured targets (docs/events.md): routes new events by each
/// target's pattern, claims due deliveries (a lease, so two processes never send one at once), POSTs
/// each in its target's format and signed with its secret, and records the outcome: delivered on a 2xx;
/// otherwise retried with exponential backoff, and dead-lettered after `maxAttempts` or at once on an
/// answer EventBridge does not retry either (a 4xx other than 401, 407, 409 and 429). At least once: a
/// crash between a send and its record sends it again.
public final class EventDeliverer: Sendable {
    let registry: Registry
    public let settings: EventDeliverySettings
    let sender: any EventSender
    let metrics: EventMetrics?
    let logger: Logger
    let targets: [String: EventTarget]
    let wake = WakeSignal()
    /// No target has a pattern: routing needs no parsing.
    let everyTargetTakesAll: Bool

    public init(registry: Registry, settings: EventDeliverySettings, sender: any EventSender = HTTPEventSender(),
                metrics: EventMetrics? = nil, logger: Logger = Logger(label: "berth.events")) {
        self.registry = registry
        self.settings = settings
        self.sender = sender
        self.metrics = metrics
        self.logger = logger
        targets = Dictionary(settings.targets.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        everyTargetTakesAll = settings.targets.allSatisfy { $0.pattern == nil }
    }

    /// The targets (by name) an event goes to.
    public func route(_ event: OutboxEvent) -> [String] {
        if everyTargetTakesAll { return settings.targets.map(\.name) }
        guard let value = try? JSONValue.parse(Array(event.body.utf8)) else { return [] }
        return settings.targets.filter { $0.wants(value) }.map(\.name)
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed ones: `base · 2^(attempts−1)`, at
    /// most `max`, scaled by `jitter` (0.8…1.2 at random by default).
    public static func backoff(afterAttempts attempts: Int, base: Double, max: Double,
                               jitter: Double = Double.random(in: 0.8...1.2)) -> Double {
        let exponent = Double(Swift.min(Swift.max(attempts - 1, 0), 30))
        return Swift.min(base * pow(2, exponent), max) * jitter
    }

    /// Whether an HTTP answer is worth another attempt (EventBridge API destinations' rule).
    public static func retries(status: Int) -> Bool {
        status >= 500 || [401, 407, 409, 429].contains(status) || status < 200 || (300..<400).contains(status)
    }

    /// Events routed per transaction.
    static let routeLimit = 1_000

    /// One pass: routes new events and claims the deliveries due now (one transaction), sends them, and
    /// records their outcomes (one transaction). Returns what it did.
    @discardableResult
    public func runOnce() async throws -> (routed: Int, attempted: Int) {
        let lease = (settings.targets.map(\.timeoutSeconds).max() ?? 10) + 30
        var (routed, due) = try await registry.routeAndClaimEventDeliveries(
            routeLimit: Self.routeLimit, limit: settings.batchSize, lease: lease) { [self] in route($0) }
        // A backlog of unrouted events (after a long stop): route the rest before the next claim.
        if routed == Self.routeLimit {
            var n = routed
            while n == Self.routeLimit {
                n = try await registry.routeEvents(limit: Self.routeLimit) { [self] in route($0) }
                routed += n
            }
            if due.count < settings.batchSize {
                due += try await registry.claimEventDeliveries(limit: settings.batchSize - due.count, lease: lease)
            }
        }
        let outcomes = await withTaskGroup(of: (EventDelivery, DeliveryOutcome).self) { group in
            var results: [(EventDelivery, DeliveryOutcome)] = []
            var running = 0
            for delivery in due {
                if running == settings.concurrency, let done = await group.next() {
                    results.append(done)
                    running -= 1
                }
                group.addTask { (delivery, await self.send(delivery)) }
                running += 1
            }
            for await done in group { results.append(done) }
            return results
        }
        try await record(outcomes)
        return (routed, due.count)
    }

    /// Records a pass's outcomes in one transaction (a crash before it sends them again: at least once).
    func record(_ outcomes: [(EventDelivery, DeliveryOutcome)]) async throws {
        guard !outcomes.isEmpty else { return }
        try await registry.finishEventDeliveries(outcomes.map {
            DeliveryResult(sequence: $0.0.sequence, target: $0.0.target, outcome: $0.1)
        })
        for (delivery, outcome) in outcomes {
            metrics?.record(delivery, outcome)
            switch outcome {
            case .delivered: break
            case .retry(_, let next, let error):
                logger.debug("event delivery failed, will retry", metadata: [
                    "target": "\(delivery.target)", "event": "\(delivery.event.id)", "error": "\(error)",
                    "in": "\(Int(next - registry.clock.now()))"])
            case .dead(_, let error):
                logger.warning("event delivery dead-lettered", metadata: [
                    "target": "\(delivery.target)", "event": "\(delivery.event.id)", "attempts": "\(delivery.attempts + 1)",
                    "error": "\(error)"])
            }
        }
    }

    func send(_ delivery: EventDelivery) async -> DeliveryOutcome {
        let now = registry.clock.now()
        guard let target = targets[delivery.target] else {
            return .dead(at: now, error: "target \(delivery.target) is not configured")
        }
        let body = target.body(for: delivery.event.body)
        var headers: [(String, String)] = [
            ("Content-Type", target.contentType), ("User-Agent", "berth"),
            ("X-Berth-Event-Id", delivery.event.id), ("X-Berth-Delivery-Attempt", "\(delivery.attempts + 1)"),
        ]
        if let secret = target.secret {
            headers.append((EventSignature.header, EventSignature.value(secret: secret, timestamp: Int64(now), body: body)))
        }
        let failure: String
        var retryable = true
        do {
            let status = try await sender.send(url: target.url, headers: headers, body: body, timeout: target.timeoutSeconds)
            if (200..<300).contains(status) { return .delivered(at: registry.clock.now()) }
            failure = "HTTP \(status)"
            retryable = Self.retries(status: status)
        } catch {
            failure = "\(error)"
        }
        let at = registry.clock.now()
        if !retryable || delivery.attempts + 1 >= settings.maxAttempts { return .dead(at: at, error: failure) }
        let delay = Self.backoff(afterAttempts: delivery.attempts + 1, base: settings.retryBaseSeconds, max: settings.retryMaxSeconds)
        return .retry(at: at, next: at + delay, error: failure)
    }

    /// How often the `deliveries{state="delivered"}` gauge is counted again.
    public static let deliveredGaugeSeconds: Double = 300

    /// The work lease of the delivery loop: on several nodes sharing a database, one delivers at a time.
    public static let lease = "event-delivery"

    /// Runs passes until cancelled, each under `lease` (skipped while another process holds it): at once
    /// after a change of this process (the registry's event bus wakes it) or, on PostgreSQL, after another
    /// node wrote events (its notification reaches the bus), else every `pollSeconds`
    /// (changes of other processes, retries falling due); purges old events hourly and refreshes the
    /// metrics' gauges.
    public func run() async {
        let changes = registry.events.subscribe()
        let listener = Task { [wake] in
            for await event in changes {
                switch event {
                case .manifestPushed, .manifestDeleted, .tagDeleted, .scanCompleted, .imageArchived, .imageRestored,
                     .outboxWrittenElsewhere: wake.signal()
                default: break
                }
            }
        }
        defer { listener.cancel() }
        var lastPurge = -Double.infinity
        var lastGauges = -Double.infinity
        var lastDeliveredCount = -Double.infinity
        while !Task.isCancelled {
            var busy = false
            do {
                // One process delivers at a time (`WorkLeases`); the claims' lease stays as the guard for
                // anything else that sends (and for a holder that stalls past its claims).
                // Another pass at once only when this one was full: otherwise nothing more is due now, and
                // what was written meanwhile woke `wake` (the wait below returns at once), so no empty
                // pass (two write transactions) follows every busy one.
                if let pass = try await registry.withLease(Self.lease, { try await self.runOnce() }) {
                    busy = pass.attempted >= settings.batchSize
                }
                let now = registry.clock.now()
                if now - lastPurge >= 3_600 {
                    lastPurge = now
                    let n = try await registry.purgeEvents(olderThan: settings.retentionSeconds)
                    if n > 0 { logger.info("purged old events", metadata: ["count": "\(n)"]) }
                }
                if let metrics, now - lastGauges >= 5 || (!busy && now - lastGauges >= 1) {
                    lastGauges = now
                    // The delivered deliveries grow with the retention and take a scan to count: every
                    // `deliveredGaugeSeconds`; the rest (index ranges over a few rows) each time.
                    let delivered = now - lastDeliveredCount >= Self.deliveredGaugeSeconds
                    if delivered { lastDeliveredCount = now }
                    metrics.update(try await registry.outboxCounts(includingDelivered: delivered), now: now, delivered: delivered)
                }
            } catch {
                logger.error("event delivery pass failed", metadata: ["error": "\(error)"])
            }
            if !busy {
                await wake.wait(timeout: .milliseconds(Int64(settings.pollSeconds * 1000)))
                // Let the changes arriving together share a pass: fewer write transactions beside the pushes.
                if settings.batchWindowSeconds > 0 { try? await Task.sleep(for: .milliseconds(Int64(settings.batchWindowSeconds * 1000))) }
            }
        }
    }
}
