import BerthCore
import Synchronization

/// What happened in the registry; side effects (audit, webhooks, scanning, metrics) subscribe to these.
public enum RegistryEvent: Sendable, Equatable {
    case repositoryCreated(repository: RepositoryKey)
    case repositoryDeleted(repository: RepositoryKey)
    case blobPushed(repository: RepositoryKey, digest: Digest, size: Int64)
    case blobMounted(repository: RepositoryKey, from: RepositoryKey?, digest: Digest)
    case manifestPushed(repository: RepositoryKey, digest: Digest, mediaType: String, tag: String?, previousTagDigest: Digest?)
    case manifestDeleted(repository: RepositoryKey, digest: Digest)
    case tagDeleted(repository: RepositoryKey, tag: String)
    case blobUnlinked(repository: RepositoryKey, digest: Digest)
    /// A scan of an image was asked for (on push, by StartImageScan, or by a continuous rescan).
    case scanRequested(repository: RepositoryKey, digest: Digest)
    case scanCompleted(repository: RepositoryKey, digest: Digest, state: ImageScanState)
    /// An image went to the ARCHIVE storage class (its scan results are gone with it, as in ECR).
    case imageArchived(repository: RepositoryKey, digest: Digest)
    /// An archived image was restored to STANDARD (by UpdateImageStorageClass or by a push): like a newly
    /// pushed image, it is scanned when the repository scans on push.
    case imageRestored(repository: RepositoryKey, digest: Digest)
    /// Another node wrote events to the event outbox (told through the store's change feed).
    case outboxWrittenElsewhere
}

/// Fans registry events out to subscribers. Publishing never blocks: slow subscribers drop the oldest events.
public final class RegistryEventBus: Sendable {
    private let subscribers = Mutex<[Int: AsyncStream<RegistryEvent>.Continuation]>([:])
    private let nextID = Atomic<Int>(0)
    private let bufferSize: Int

    public init(bufferSize: Int = 10_000) { self.bufferSize = bufferSize }

    public func publish(_ event: RegistryEvent) {
        let subs = subscribers.withLock { Array($0.values) }
        for s in subs { s.yield(event) }
    }

    /// A stream of every event published from now on.
    public func subscribe() -> AsyncStream<RegistryEvent> {
        let id = nextID.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<RegistryEvent>.makeStream(bufferingPolicy: .bufferingNewest(bufferSize))
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }
}
