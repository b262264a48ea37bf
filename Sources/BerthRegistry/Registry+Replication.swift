import BerthCore
import BerthStorage
import Foundation
import NIOCore

/// Replication (docs/replication.md): the registry's configuration, the durable job queue the pushes
/// feed, and the writes a copy makes at a destination of this deployment.
extension Registry {
    /// Where a registry's configuration is kept among the account settings, keyed by the registry's
    /// stored id (`RegistryID.storedValue`).
    static let replicationConfigurationSetting = "replicationConfiguration"

    /// A registry's replication configuration (no rules when none was put).
    public func replicationConfiguration(of registry: RegistryID) async throws -> ReplicationConfiguration {
        guard let text = try await metadata.accountSetting(registry.storedValue, Self.replicationConfigurationSetting),
              !text.isEmpty else { return ReplicationConfiguration() }
        do {
            return try JSONDecoder().decode(ReplicationConfiguration.self, from: Data(text.utf8))
        } catch {
            throw BerthError.internalError("the stored replication configuration of \(registry) cannot be read: \(error)")
        }
    }

    /// Replaces a registry's replication configuration (validated by the caller).
    public func putReplicationConfiguration(_ configuration: ReplicationConfiguration, of registry: RegistryID) async throws {
        let text = String(decoding: try JSONEncoder().encode(configuration), as: UTF8.self)
        try await metadata.putAccountSetting(registry.storedValue, Self.replicationConfigurationSetting, text)
    }

    /// The jobs a push of `digest` to `name` enqueues: one per destination of the rules matching the repository.
    func replicationJobs(for name: RepositoryKey, digest: Digest) async throws -> [ReplicationJobKey] {
        let configuration = try await replicationConfiguration(of: name.registry)
        guard !configuration.rules.isEmpty else { return [] }
        return configuration.destinations(for: name.name).map {
            ReplicationJobKey(sourceRegistry: name.registryID, repository: name.name, digest: digest, destination: $0)
        }
    }

    // MARK: the queue

    public func enqueueReplication(_ keys: [ReplicationJobKey]) async throws {
        try await metadata.enqueueReplicationJobs(keys, at: clock.now())
    }

    public func dueReplicationJobs(limit: Int) async throws -> [ReplicationJob] {
        try await metadata.dueReplicationJobs(at: clock.now(), limit: limit)
    }

    /// Records an attempt's outcome; a COMPLETE or FAILED job writes its `ECR Replication Action` events
    /// (one per tag in `tags`, the image's tags the copy saw) in the same transaction, when events are on.
    @discardableResult
    public func finishReplicationJob(_ job: ReplicationJob, _ outcome: ReplicationOutcome, tags: [String] = []) async throws -> Bool {
        let now = clock.now()
        var events: [OutboxEvent] = []
        if let eventSource {
            switch outcome {
            case .complete: events = eventSource.replicationFinished(job.key, succeeded: true, tags: tags, time: now)
            case .failed: events = eventSource.replicationFinished(job.key, succeeded: false, tags: tags, time: now)
            case .retry: break
            }
        }
        return try await metadata.finishReplicationJob(id: job.id, generation: job.generation, outcome: outcome, at: now, events: events)
    }

    /// Deletes COMPLETE jobs finished more than `completeRetention` seconds ago and FAILED ones more than
    /// `failedRetention` seconds ago (nil: FAILED jobs are kept). Returns how many.
    public func purgeReplicationJobs(completeRetention: Double, failedRetention: Double?) async throws -> Int {
        let now = clock.now()
        return try await metadata.purgeReplicationJobs(completeBefore: now - completeRetention, failedBefore: failedRetention.map { now - $0 })
    }

    /// The registries that have a replication configuration (possibly with no rules).
    public func registriesWithReplicationConfiguration() async throws -> [RegistryID] {
        try await metadata.accountsWithSetting(Self.replicationConfigurationSetting).map(RegistryID.init(storedValue:))
    }

    /// Every repository name of a registry, in name order.
    public func allRepositoryNames(in registry: RegistryID) async throws -> [String] {
        var names: [String] = []
        var after: String? = nil
        while true {
            let rows = try await metadata.listRepositories(in: registry.storedValue, after: after, limit: 1_000)
            names += rows.prefix(1_000)
            guard rows.count > 1_000, let last = rows.prefix(1_000).last else { break }
            after = last
        }
        return names
    }

    /// Where a registry's reconciliation mark is kept among the account settings (docs/replication.md,
    /// "Reconciliation"); written only by the holder of the lease `replication-reconcile`.
    static let reconciliationMarkSetting = "berth:replicationReconciliationMark"

    /// A registry's replication configuration as stored (empty when none was put): what a reconciliation
    /// mark compares to see that the rules changed.
    public func storedReplicationConfiguration(of registry: RegistryID) async throws -> String {
        try await metadata.accountSetting(registry.storedValue, Self.replicationConfigurationSetting) ?? ""
    }

    /// The mark the last completed reconciliation pass of a registry left (nil: none, or unreadable).
    public func reconciliationMark(of registry: RegistryID) async throws -> ReconciliationMark? {
        guard let text = try await metadata.accountSetting(registry.storedValue, Self.reconciliationMarkSetting), !text.isEmpty else { return nil }
        return try? JSONDecoder().decode(ReconciliationMark.self, from: Data(text.utf8))
    }

    public func putReconciliationMark(_ mark: ReconciliationMark, of registry: RegistryID) async throws {
        let text = String(decoding: try JSONEncoder().encode(mark), as: UTF8.self)
        try await metadata.putAccountSetting(registry.storedValue, Self.reconciliationMarkSetting, text)
    }

    /// The images of a registry pushed, or that a tag was set on, at or after `since`, `limit` at a time
    /// in (repository, digest) order after `after`.
    public func imagesChanged(in registry: RegistryID, since: Double, after: ChangedImage?, limit: Int) async throws -> [ChangedImage] {
        try await metadata.imagesChanged(in: registry.storedValue, since: since, after: after, limit: limit)
    }

    /// The images of a repository, `limit` at a time after `after` (a digest), with their tags.
    public func replicationImages(in key: RepositoryKey, after: String?, limit: Int) async throws -> [ImageSummary] {
        try await metadata.images(in: key, after: after, limit: limit)
    }

    /// The replication jobs of one image, one per destination.
    public func replicationJobs(of name: RepositoryKey, digest: Digest) async throws -> [ReplicationJob] {
        try await metadata.replicationJobs(of: name, digest: digest)
    }

    public func replicationJobs(state: ReplicationJobState?, after: Int64?, limit: Int) async throws -> [ReplicationJob] {
        try await metadata.replicationJobs(state: state, after: after, limit: limit)
    }

    public func replicationQueueSummary() async throws -> ReplicationQueueSummary {
        try await metadata.replicationQueueSummary()
    }

    /// Enqueues every image already in the registry's repositories (or in the one named) for the
    /// destinations of the rules matching them: `berth replication backfill`. Returns how many jobs.
    public func backfillReplication(of registry: RegistryID, repository: String? = nil) async throws -> Int {
        let configuration = try await replicationConfiguration(of: registry)
        var names: [String] = []
        if let repository { names = [repository] } else { names = try await allRepositoryNames(in: registry) }
        var total = 0
        for name in names {
            let destinations = configuration.destinations(for: name)
            guard !destinations.isEmpty else { continue }
            let key = RepositoryKey(storedRegistryID: registry.storedValue, name: name)
            var after: String? = nil
            while true {
                let images = try await metadata.images(in: key, after: after, limit: 500)
                let page = images.prefix(500)
                let keys = page.flatMap { image in
                    destinations.map { ReplicationJobKey(sourceRegistry: key.registryID, repository: name, digest: image.digest, destination: $0) }
                }
                try await enqueueReplication(keys)
                total += keys.count
                guard images.count > 500, let last = page.last else { break }
                after = last.digest.description
            }
        }
        return total
    }

    // MARK: writes at a destination of this deployment

    /// Stores a manifest copied by replication: like a push, except that it enqueues no replication of
    /// its own (ECR does not replicate a replicated image again).
    public func putReplicatedManifest(_ name: RepositoryKey, reference: Reference, contentType: String?,
                                      bytes: [UInt8]) async throws -> PushedManifest {
        guard try await storedRepository(name) != nil else { throw BerthError.nameUnknown(name.name) }
        return try await storeManifest(name, reference: reference, contentType: contentType, bytes: bytes, imageChecks: false,
                                       replicate: false)
    }

    /// Makes a blob of `source` present in `destination` (both of this deployment): linked when both keep
    /// their blobs under the same key, otherwise its plaintext is read and stored again under the
    /// destination's key. Returns the bytes copied (0 when it was linked or already there).
    @discardableResult
    public func copyBlob(_ digest: Digest, from source: RepositoryKey, to destination: RepositoryKey) async throws -> Int64 {
        if try await linkedBlobSize(digest, in: destination) != nil { return 0 }
        guard let size = try await linkedBlobSize(digest, in: source) else { throw BerthError.blobUnknown(digest.description) }
        if try await sameKeyDomain(source, destination), try await metadata.linkBlob(digest, to: destination, at: clock.now()) {
            return 0
        }
        let opened = try await openBlob(source, digest, size: size)
        try await monolithicUpload(destination, digest: digest, contentLength: size,
                                   body: BlobChunks(registry: self, source: opened, size: size))
        return size
    }
}

/// A blob's plaintext as a sequence of buffers, read one range at a time (at most `chunkSize` bytes in
/// memory): the body of a copy, to this deployment or to a peer.
public struct BlobChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    let registry: Registry
    let source: Registry.BlobSource
    let size: Int64
    let chunkSize: Int64

    public init(registry: Registry, source: Registry.BlobSource, size: Int64, chunkSize: Int64 = 4 << 20) {
        self.registry = registry
        self.source = source
        self.size = size
        self.chunkSize = chunkSize
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let chunks: BlobChunks
        var offset: Int64 = 0

        public mutating func next() async throws -> ByteBuffer? {
            guard offset < chunks.size else { return nil }
            let end = Swift.min(chunks.size, offset + chunks.chunkSize) - 1
            var buffer = ByteBuffer()
            buffer.reserveCapacity(Int(end - offset + 1))
            try await chunks.registry.readBlob(chunks.source, range: ByteRange(start: offset, end: end)) { piece in
                var piece = piece
                buffer.writeBuffer(&piece)
            }
            guard Int64(buffer.readableBytes) == end - offset + 1 else {
                throw BerthError.internalError("blob \(chunks.source.digest) ended early at \(offset + Int64(buffer.readableBytes))")
            }
            offset = end + 1
            return buffer
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(chunks: self) }
}
