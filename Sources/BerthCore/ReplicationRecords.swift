/// One destination of a replication rule (ECR `ReplicationDestination`): a region and a registry (account).
public struct ReplicationDestination: Sendable, Hashable, Codable {
    public var region: String
    public var registryId: String

    public init(region: String, registryId: String) {
        self.region = region
        self.registryId = registryId
    }
}

/// One replication rule (ECR `ReplicationRule`): its destinations and, optionally, the repository name
/// prefixes it covers (`PREFIX_MATCH` filters; none: every repository).
public struct ReplicationRule: Sendable, Hashable, Codable {
    public var destinations: [ReplicationDestination]
    /// The `PREFIX_MATCH` filter values; empty when the rule has no `repositoryFilters`.
    public var prefixes: [String]

    public init(destinations: [ReplicationDestination], prefixes: [String] = []) {
        self.destinations = destinations
        self.prefixes = prefixes
    }

    /// Whether the rule covers a repository: no filter, or one whose prefix starts its name.
    public func matches(repository name: String) -> Bool {
        prefixes.isEmpty || prefixes.contains { name.hasPrefix($0) }
    }
}

/// A registry's replication configuration (ECR `ReplicationConfiguration`), stored per registry
/// (keyed by `RegistryID.storedValue`).
public struct ReplicationConfiguration: Sendable, Hashable, Codable {
    public var rules: [ReplicationRule]

    public init(rules: [ReplicationRule] = []) { self.rules = rules }

    /// The destinations a push to `repository` goes to: those of every matching rule, each once, in rule order.
    public func destinations(for repository: String) -> [ReplicationDestination] {
        var seen = Set<ReplicationDestination>()
        var out: [ReplicationDestination] = []
        for rule in rules where rule.matches(repository: repository) {
            for d in rule.destinations where seen.insert(d).inserted { out.append(d) }
        }
        return out
    }
}

/// ECR's `ReplicationStatus`.
public enum ReplicationJobState: String, Sendable, Hashable, Codable, CaseIterable {
    case inProgress = "IN_PROGRESS"
    case complete = "COMPLETE"
    case failed = "FAILED"
}

/// What a replication job copies: one image (manifest digest) of a source repository to one destination.
public struct ReplicationJobKey: Sendable, Hashable {
    /// The source registry's stored id (`RegistryID.storedValue`).
    public var sourceRegistry: String
    public var repository: String
    public var digest: Digest
    public var destination: ReplicationDestination

    public init(sourceRegistry: String, repository: String, digest: Digest, destination: ReplicationDestination) {
        self.sourceRegistry = sourceRegistry
        self.repository = repository
        self.digest = digest
        self.destination = destination
    }

    public var source: RepositoryKey { RepositoryKey(storedRegistryID: sourceRegistry, name: repository) }
}

/// A replication job as stored in the durable queue.
public struct ReplicationJob: Sendable, Equatable {
    public var id: Int64
    public var key: ReplicationJobKey
    public var state: ReplicationJobState
    /// Failed attempts since the job was last enqueued.
    public var attempts: Int
    /// Advanced by every enqueue of the same key: an attempt's outcome is recorded only when the job was
    /// not enqueued again meanwhile (a new tag, a backfill), so that push is copied too.
    public var generation: Int64
    /// When the replication was requested (the last enqueue that found the job finished).
    public var enqueuedAt: Double
    public var updatedAt: Double
    public var nextAttemptAt: Double
    /// Why the last attempt failed (kept while retrying, final when FAILED).
    public var failureReason: String?

    public init(id: Int64, key: ReplicationJobKey, state: ReplicationJobState, attempts: Int, generation: Int64,
                enqueuedAt: Double, updatedAt: Double, nextAttemptAt: Double, failureReason: String?) {
        self.id = id
        self.key = key
        self.state = state
        self.attempts = attempts
        self.generation = generation
        self.enqueuedAt = enqueuedAt
        self.updatedAt = updatedAt
        self.nextAttemptAt = nextAttemptAt
        self.failureReason = failureReason
    }
}

/// The outcome of one attempt at a job.
public enum ReplicationOutcome: Sendable, Equatable {
    case complete
    /// Try again at `at`; the job stays IN_PROGRESS with the reason recorded.
    case retry(at: Double, reason: String)
    case failed(reason: String)
}

/// The queue at a glance (lag and backlog for operators).
public struct ReplicationQueueSummary: Sendable, Equatable {
    public var inProgress: Int
    public var failed: Int
    public var complete: Int
    /// `enqueuedAt` of the oldest IN_PROGRESS job, nil when none is.
    public var oldestInProgress: Double?

    public init(inProgress: Int, failed: Int, complete: Int, oldestInProgress: Double?) {
        self.inProgress = inProgress
        self.failed = failed
        self.complete = complete
        self.oldestInProgress = oldestInProgress
    }
}

/// What the last completed reconciliation pass of a registry left (docs/replication.md, "Reconciliation"):
/// when it started, how many incremental passes ran since the last full one, and the replication
/// configuration it worked with (as stored), so that new rules make the next pass full.
public struct ReconciliationMark: Sendable, Equatable, Codable {
    /// When the pass started: the next incremental pass checks the images changed since then (less an overlap).
    public var since: Double
    /// Incremental passes since the last full pass (0 after a full pass).
    public var incrementalPasses: Int
    public var configuration: String

    public init(since: Double, incrementalPasses: Int, configuration: String) {
        self.since = since
        self.incrementalPasses = incrementalPasses
        self.configuration = configuration
    }
}

/// An image of a registry with its repository's name (`ReplicationMetadata.imagesChanged`).
public struct ChangedImage: Sendable, Equatable {
    public var repository: String
    public var image: ImageSummary

    public init(repository: String, image: ImageSummary) {
        self.repository = repository
        self.image = image
    }
}
