import BerthSupport
import Logging
import Synchronization

/// Records events without slowing requests: `record` only appends to a bounded buffer in memory, and
/// `flush` (which `berth serve` runs every `flushInterval`, and once more when it stops) writes the
/// buffer to the store in one transaction. A crash (`kill -9`, power loss) loses at most the events of the last interval;
/// past `maximumBuffered` unwritten events (a store that cannot keep up or fails) the oldest are
/// dropped and counted (`dropped`), never the request.
public final class AuditTrail: Sendable {
    public let store: any AuditStore
    /// Events older than this many days are removed (CloudTrail's event history keeps 90).
    public let retentionDays: Int
    public let flushInterval: Duration
    public static let maximumBuffered = 100_000
    let clock: any WallClock
    let logger: Logger
    private let buffer = Mutex<[AuditEvent]>([])
    private let droppedCount = Atomic<Int>(0)

    public init(store: any AuditStore, retentionDays: Int, flushInterval: Duration = .seconds(1),
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth.audit")) {
        self.store = store
        self.retentionDays = retentionDays
        self.flushInterval = flushInterval
        self.clock = clock
        self.logger = logger
    }

    /// Events dropped because the buffer was full.
    public var dropped: Int { droppedCount.load(ordering: .relaxed) }

    public var now: Double { clock.now() }

    public func record(_ event: AuditEvent) {
        let overflow = buffer.withLock { b -> Bool in
            b.append(event)
            guard b.count > Self.maximumBuffered else { return false }
            b.removeFirst(b.count - Self.maximumBuffered)
            return true
        }
        if overflow { droppedCount.add(1, ordering: .relaxed) }
    }

    /// Writes what is buffered. On a store failure the events go back to the front of the buffer.
    public func flush() async {
        let events = buffer.withLock { b -> [AuditEvent] in
            defer { b.removeAll(keepingCapacity: true) }
            return b
        }
        guard !events.isEmpty else { return }
        do {
            try await store.append(events)
        } catch {
            logger.error("audit events could not be written; kept for the next attempt", metadata: ["error": "\(error)", "events": "\(events.count)"])
            buffer.withLock { b in
                b.insert(contentsOf: events, at: 0)
                if b.count > Self.maximumBuffered {
                    let extra = b.count - Self.maximumBuffered
                    b.removeFirst(extra)
                    droppedCount.add(extra, ordering: .relaxed)
                }
            }
        }
    }

    /// Removes events past the retention.
    @discardableResult
    public func applyRetention() async throws -> Int {
        try await store.removeEvents(before: clock.now() - Double(retentionDays) * 86_400)
    }
}
