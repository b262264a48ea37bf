import ArgumentParser
import BerthApp
import BerthCore
import BerthRegistry
import Foundation

/// `berth admin events …`: the event outbox's deliveries (docs/events.md). Works beside a running server.
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events", abstract: "Event notification deliveries: list them, retry dead-lettered ones, count them.",
        subcommands: [EventsList.self, EventsRetry.self, EventsStats.self])
}

struct EventsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "Deliveries in outbox order, one JSON object a line.")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "Only deliveries in this state: pending, delivered or dead.")
    var state: String?
    @Option(name: .long, help: "Start after this event sequence number.")
    var after: Int64?
    @Option(name: .long, help: "At most this many deliveries.")
    var limit: Int = 1_000
    @Flag(name: .long, help: "Include each event's body.")
    var body = false

    func run() async throws {
        var wanted: DeliveryState? = nil
        if let state {
            guard let s = DeliveryState(rawValue: state) else { throw ValidationError("--state must be pending, delivered or dead") }
            wanted = s
        }
        guard (1...100_000).contains(limit) else { throw ValidationError("--limit must be between 1 and 100000") }
        let services = try await adminServices(options)
        for d in try await services.registry.eventDeliveries(state: wanted, after: after, limit: limit) {
            var o: [String: Any] = [
                "sequence": d.sequence, "target": d.target, "state": d.state.rawValue, "attempts": d.attempts,
                "eventId": d.event.id, "detailType": d.event.detailType, "account": d.event.account,
                "time": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: d.event.time)),
            ]
            if d.state == .pending { o["nextAttemptAt"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: d.nextAttemptAt)) }
            if let e = d.lastError { o["lastError"] = e }
            if let t = d.deliveredAt { o["deliveredAt"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
            if body, let event = try? JSONSerialization.jsonObject(with: Data(d.event.body.utf8)) { o["event"] = event }
            let line = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: line, as: UTF8.self))
        }
    }
}

struct EventsRetry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "retry", abstract: "Make dead-lettered deliveries pending again (all, or one event's, or one target's).")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "Only this event (its sequence number, from `list`).")
    var sequence: Int64?
    @Option(name: .long, help: "Only this target.")
    var target: String?

    func run() async throws {
        let services = try await adminServices(options)
        let n = try await services.registry.retryEventDeliveries(sequence: sequence, target: target)
        print("{\"retried\": \(n)}")
    }
}

struct EventsStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Deliveries by target and state, events not yet routed, the oldest undelivered event.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let services = try await adminServices(options)
        let c = try await services.registry.outboxCounts()
        var targets: [String: [String: Int]] = [:]
        for (t, states) in c.deliveries {
            targets[t] = Dictionary(uniqueKeysWithValues: DeliveryState.allCases.map { ($0.rawValue, states[$0] ?? 0) })
        }
        var o: [String: Any] = ["unrouted": c.unrouted, "targets": targets]
        if let t = c.oldestPending { o["oldestPending"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: t)) }
        print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
    }
}
