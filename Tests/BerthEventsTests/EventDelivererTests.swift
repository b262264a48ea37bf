import BerthCore
import BerthEvents
import BerthRegistry
import BerthStorage
import BerthSupport
import Prometheus
import Synchronization
import Testing

/// A receiver in memory: answers each request with the next status of `statuses` (then 200), and keeps them.
final class RecordingSender: EventSender {
    struct Request: Sendable {
        let url: String
        let headers: [String: String]
        let body: [UInt8]
    }
    let state: Mutex<(statuses: [Int], requests: [Request])>

    init(statuses: [Int] = []) { state = Mutex((statuses, [])) }

    var requests: [Request] { state.withLock { $0.requests } }

    func send(url: String, headers: [(String, String)], body: [UInt8], timeout: Double) async throws -> Int {
        let status = state.withLock { s -> Int in
            s.requests.append(Request(url: url, headers: Dictionary(headers, uniquingKeysWith: { a, _ in a }), body: body))
            return s.statuses.isEmpty ? 200 : s.statuses.removeFirst()
        }
        if status == 0 { throw EventPatternError("connection refused") }
        return status
    }
}

@Suite struct EventDelivererTests {
    let clock = ManualWallClock()
    let store = InMemoryMetadataStore()
    let repo = RepositoryKey(storedRegistryID: "123456789012", name: "app")

    func registry() -> Registry {
        Registry(blobs: InMemoryBlobStore(), metadata: store, clock: clock, eventSource: ECREventSource(region: "us-east-1"))
    }

    /// Pushes a small image by tag; returns its digest.
    func push(_ registry: Registry, tag: String, config: String = #"{"architecture":"amd64"}"#) async throws -> Digest {
        try await store.createRepository(repo, at: 0)
        let configDigest = Digest.sha256(of: Array(config.utf8))
        try await store.recordBlob(configDigest, size: Int64(config.utf8.count), linkTo: repo, at: 0)
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",\
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(configDigest)","size":\(config.utf8.count)},\
            "layers":[]}
            """
        return try await registry.putManifest(repo, reference: .tag(try Tag(tag)), contentType: MediaType.ociManifest,
                                              bytes: Array(manifest.utf8)).digest
    }

    func settings(_ targets: [EventTarget], maxAttempts: Int = 3) -> EventDeliverySettings {
        EventDeliverySettings(targets: targets, maxAttempts: maxAttempts, retryBaseSeconds: 10, retryMaxSeconds: 60)
    }

    @Test func signedEventsGoToTheTargetsWhosePatternsMatch() async throws {
        let registry = registry()
        let sender = RecordingSender()
        let pushes = EventTarget(name: "pushes", url: "http://hooks/pushes", format: .eventbridge,
                                 pattern: try EventPattern(parsing: #"{"detail":{"action-type":["PUSH"]}}"#), secret: "k1")
        let deletes = EventTarget(name: "deletes", url: "http://hooks/deletes", format: .cloudevents,
                                  pattern: try EventPattern(parsing: #"{"detail":{"action-type":["DELETE"]}}"#))
        let metricsRegistry = PrometheusCollectorRegistry()
        let deliverer = EventDeliverer(registry: registry, settings: settings([pushes, deletes]), sender: sender,
                                       metrics: EventMetrics(registry: metricsRegistry, targets: ["pushes", "deletes"]))
        let digest = try await push(registry, tag: "v1")
        #expect(try await deliverer.runOnce() == (routed: 1, attempted: 1))
        let sent = try #require(sender.requests.first)
        #expect(sender.requests.count == 1 && sent.url == "http://hooks/pushes")
        #expect(sent.headers["Content-Type"] == "application/json" && sent.headers["X-Berth-Delivery-Attempt"] == "1")
        #expect(EventSignature.verify(try #require(sent.headers["X-Berth-Signature"]), secret: "k1", body: sent.body))
        guard case .object(let event) = try JSONValue.parse(sent.body), case .object(let detail)? = event["detail"] else {
            Issue.record("not an event"); return
        }
        #expect(sent.headers["X-Berth-Event-Id"].map(JSONValue.string) == event["id"])
        #expect(detail["image-digest"] == .string(digest.description) && detail["image-tag"] == .string("v1"))

        try await registry.deleteManifest(repo, reference: .tag(try Tag("v1")))
        #expect(try await deliverer.runOnce() == (routed: 1, attempted: 1))
        let ce = try #require(sender.requests.last)
        #expect(ce.url == "http://hooks/deletes" && ce.headers["Content-Type"] == "application/cloudevents+json")
        #expect(ce.headers["X-Berth-Signature"] == nil, "no secret, no signature")
        #expect(try await deliverer.runOnce() == (routed: 0, attempted: 0))
        let counts = try await registry.outboxCounts()
        #expect(counts.deliveries == ["pushes": [.delivered: 1], "deletes": [.delivered: 1]] && counts.unrouted == 0)
        var exposition: [UInt8] = []
        metricsRegistry.emit(into: &exposition)
        #expect(String(decoding: exposition, as: UTF8.self).contains(#"berth_events_delivered_total{target="pushes"} 1"#))
    }

    @Test func failuresBackOffThenDeadLetterAndComeBackOnRetry() async throws {
        let registry = registry()
        // Refused, 503, then (third and last attempt) 500: dead. After `retry`: 200.
        let sender = RecordingSender(statuses: [0, 503, 500])
        let deliverer = EventDeliverer(registry: registry, settings: settings([EventTarget(name: "t", url: "http://t")]), sender: sender)
        _ = try await push(registry, tag: "v1")
        #expect(try await deliverer.runOnce().attempted == 1)
        var d = try #require(try await registry.eventDeliveries(state: nil, after: nil, limit: 10).first)
        #expect(d.state == .pending && d.attempts == 1 && d.nextAttemptAt > clock.now())
        #expect(try await deliverer.runOnce().attempted == 0, "not due before its backoff")
        clock.advance(by: 13)
        #expect(try await deliverer.runOnce().attempted == 1)
        d = try #require(try await registry.eventDeliveries(state: nil, after: nil, limit: 10).first)
        #expect(d.attempts == 2 && d.lastError == "HTTP 503")
        clock.advance(by: 25)
        #expect(try await deliverer.runOnce().attempted == 1)
        d = try #require(try await registry.eventDeliveries(state: .dead, after: nil, limit: 10).first)
        #expect(d.attempts == 3 && d.lastError == "HTTP 500")
        clock.advance(by: 1_000)
        #expect(try await deliverer.runOnce().attempted == 0, "dead letters wait for a retry")
        #expect(try await registry.retryEventDeliveries(sequence: nil, target: "t") == 1)
        #expect(try await deliverer.runOnce().attempted == 1)
        #expect(try await registry.eventDeliveries(state: .delivered, after: nil, limit: 10).count == 1)
        #expect(sender.requests.count == 4 && sender.requests.map { $0.headers["X-Berth-Delivery-Attempt"] } == ["1", "2", "3", "1"])
    }

    @Test func answersEventBridgeDoesNotRetryDeadLetterAtOnce() async throws {
        let registry = registry()
        let sender = RecordingSender(statuses: [400])
        let deliverer = EventDeliverer(registry: registry, settings: settings([EventTarget(name: "t", url: "http://t")], maxAttempts: 10),
                                       sender: sender)
        _ = try await push(registry, tag: "v1")
        try await deliverer.runOnce()
        #expect(try await registry.eventDeliveries(state: .dead, after: nil, limit: 10).first?.attempts == 1)
        #expect(EventDeliverer.retries(status: 429) && EventDeliverer.retries(status: 503) && !EventDeliverer.retries(status: 404))
    }

    @Test func aRemovedTargetsDeliveriesAreDeadLettered() async throws {
        let registry = registry()
        let old = EventDeliverer(registry: registry, settings: settings([EventTarget(name: "gone", url: "http://g")]),
                                 sender: RecordingSender(statuses: [503]))
        _ = try await push(registry, tag: "v1")
        try await old.runOnce()
        clock.advance(by: 100)
        let sender = RecordingSender()
        let now = EventDeliverer(registry: registry, settings: settings([EventTarget(name: "new", url: "http://n")]), sender: sender)
        try await now.runOnce()
        #expect(sender.requests.isEmpty)
        #expect(try await registry.eventDeliveries(state: .dead, after: nil, limit: 10).first?.lastError == "target gone is not configured")
    }

    @Test func lifecycleExpirationsAreDeleteEvents() async throws {
        let registry = registry()
        let sender = RecordingSender()
        let deliverer = EventDeliverer(registry: registry, settings: settings([EventTarget(
            name: "deletes", url: "http://d", pattern: try EventPattern(parsing: #"{"detail":{"action-type":["DELETE"]}}"#))]),
            sender: sender)
        let old = try await push(registry, tag: "old", config: #"{"n":1}"#)
        clock.advance(by: 60)
        _ = try await push(registry, tag: "new", config: #"{"n":2}"#)
        try await registry.putLifecyclePolicy(repo, """
            {"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},
                       "action":{"type":"expire"}}]}
            """)
        let report = try #require(try await registry.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(report.count(.expire, .applied) == 1)
        try await deliverer.runOnce()
        #expect(sender.requests.count == 1)
        guard case .object(let event) = try JSONValue.parse(try #require(sender.requests.first).body),
              case .object(let detail)? = event["detail"] else { Issue.record("not an event"); return }
        #expect(detail == ["result": .string("SUCCESS"), "repository-name": .string("app"), "image-digest": .string(old.description),
                           "action-type": .string("DELETE"), "image-tag": .string("old")])
    }

    @Test func backoffDoublesUpToTheCap() {
        #expect((1...6).map { EventDeliverer.backoff(afterAttempts: $0, base: 1, max: 20, jitter: 1) } == [1, 2, 4, 8, 16, 20])
        #expect(EventDeliverer.backoff(afterAttempts: 3, base: 2, max: 100, jitter: 0.8) == 6.4)
    }

    @Test func noEventSourceNoEvents() async throws {
        let registry = Registry(blobs: InMemoryBlobStore(), metadata: store, clock: clock)
        _ = try await push(registry, tag: "v1")
        #expect(try await store.outboxCounts() == OutboxCounts(unrouted: 0, deliveries: [:], oldestPending: nil))
    }
}
