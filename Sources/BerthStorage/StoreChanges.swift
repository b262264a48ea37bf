import BerthCore

/// A change another process made to shared metadata that this process's caches may hold stale: told by
/// stores that several nodes share (PostgreSQL's `LISTEN/NOTIFY`), so a change made on one node takes
/// effect on the others within milliseconds instead of after the caches' age limits (which remain the
/// bound when a notification is lost).
public enum StoreChange: Sendable, Equatable {
    /// An authorization-relevant write (keys, IAM, policies, repository settings): the store has advanced
    /// its `authorizationGeneration`.
    case authorization
    /// A repository's images, statuses or blob links changed (a delete, an archive or restore, an unlink).
    case repository(RepositoryKey)
    /// The collector claimed these blobs: no repository links them any more.
    case blobs([Digest])
    /// Another node wrote events to the event outbox: the delivery loop, on whichever node holds its lease,
    /// can start at once instead of at its next poll.
    case events
    /// Notifications may have been missed (the listening connection was re-established): forget everything.
    case everything

    /// The notification text: a kind and its arguments, separated by spaces (names and digests have none).
    public var payload: String {
        switch self {
        case .authorization: "auth"
        case .repository(let key): "repo \(key.registryID) \(key.name)"
        case .blobs(let digests): (["blobs"] + digests.map(\.description)).joined(separator: " ")
        case .events: "events"
        case .everything: "all"
        }
    }

    public init?(payload: String) {
        let parts = payload.split(separator: " ").map(String.init)
        switch parts.first {
        case "auth" where parts.count == 1: self = .authorization
        case "all" where parts.count == 1: self = .everything
        case "events" where parts.count == 1: self = .events
        case "repo" where parts.count == 3: self = .repository(RepositoryKey(storedRegistryID: parts[1], name: parts[2]))
        case "blobs":
            let digests = parts.dropFirst().compactMap(Digest.parse)
            guard digests.count == parts.count - 1 else { return nil }
            self = .blobs(digests)
        default: return nil
        }
    }

    /// How many digests one `.blobs` notification carries (PostgreSQL's payload limit is 8,000 bytes).
    public static let digestsPerNotification = 64
}

/// A store that tells of changes other processes made (see `StoreChange`).
public protocol StoreChangeFeed: Sendable {
    /// Calls `observer` for every change another process makes from now on (on the store's own task;
    /// it must return quickly).
    func observeRemoteChanges(_ observer: @escaping @Sendable (StoreChange) -> Void)
}
