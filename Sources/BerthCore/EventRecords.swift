/// An event to deliver, written to the metadata store's outbox in the transaction of the change it
/// reports, so a committed change never loses its event (docs/events.md). The store keeps the text as
/// given; what it says is the domain's (EventBridge's envelope with ECR's `detail`).
public struct OutboxEvent: Sendable, Equatable {
    /// The event's `id` (a UUID), unique in the outbox.
    public var id: String
    /// When the change happened, seconds since 1970.
    public var time: Double
    /// EventBridge's `detail-type`, e.g. `ECR Image Action`.
    public var detailType: String
    /// The account the event is addressed to.
    public var account: String
    /// The whole event as EventBridge delivers it (JSON text).
    public var body: String

    public init(id: String, time: Double, detailType: String, account: String, body: String) {
        self.id = id
        self.time = time
        self.detailType = detailType
        self.account = account
        self.body = body
    }
}

/// The events of an image deletion, made from its outcome inside the deletion's transaction
/// (which tags went is known only there). Called only for `.deleted` outcomes.
public typealias ImageDeletionEvents = @Sendable (ImageDeletion) -> [OutboxEvent]
/// The events of a tag deletion, made from the digest the tag named, inside the deletion's transaction.
public typealias TagDeletionEvents = @Sendable (Digest) -> [OutboxEvent]

/// Where a delivery of an event to one target is.
public enum DeliveryState: String, Sendable, CaseIterable, Codable {
    /// Not delivered yet: due at `nextAttemptAt`.
    case pending
    case delivered
    /// Given up after the last attempt allowed (the dead-letter list); `retryDeliveries` makes it pending again.
    case dead
}

/// One event's delivery to one target, with the event.
public struct EventDelivery: Sendable, Equatable {
    /// The event's place in the outbox (increasing in commit order within one process; unique).
    public var sequence: Int64
    public var target: String
    public var state: DeliveryState
    /// Attempts made so far.
    public var attempts: Int
    public var nextAttemptAt: Double
    public var lastAttemptAt: Double?
    public var lastError: String?
    public var deliveredAt: Double?
    public var event: OutboxEvent

    public init(sequence: Int64, target: String, state: DeliveryState, attempts: Int, nextAttemptAt: Double,
                lastAttemptAt: Double? = nil, lastError: String? = nil, deliveredAt: Double? = nil, event: OutboxEvent) {
        self.sequence = sequence
        self.target = target
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastAttemptAt = lastAttemptAt
        self.lastError = lastError
        self.deliveredAt = deliveredAt
        self.event = event
    }
}

/// How an attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered(at: Double)
    /// Failed; try again at `next`.
    case retry(at: Double, next: Double, error: String)
    /// Failed for the last time: the delivery goes to the dead-letter list.
    case dead(at: Double, error: String)
}

/// An attempt's outcome for one delivery (an event and a target).
public struct DeliveryResult: Sendable, Equatable {
    public var sequence: Int64
    public var target: String
    public var outcome: DeliveryOutcome

    public init(sequence: Int64, target: String, outcome: DeliveryOutcome) {
        self.sequence = sequence
        self.target = target
        self.outcome = outcome
    }
}

/// The outbox at a glance, for metrics and `berth admin events stats`.
public struct OutboxCounts: Sendable, Equatable {
    /// Events not yet routed to their targets.
    public var unrouted: Int
    /// Deliveries by target and state.
    public var deliveries: [String: [DeliveryState: Int]]
    /// When the oldest pending delivery's event happened (nil: none pending).
    public var oldestPending: Double?

    public init(unrouted: Int, deliveries: [String: [DeliveryState: Int]], oldestPending: Double?) {
        self.unrouted = unrouted
        self.deliveries = deliveries
        self.oldestPending = oldestPending
    }
}
