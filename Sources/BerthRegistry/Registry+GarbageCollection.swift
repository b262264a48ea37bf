import BerthCore
import BerthStorage
import Foundation

/// How a collection runs.
public struct GarbageCollectionOptions: Sendable, Equatable {
    /// How long a blob must stay unreferenced and untouched, after the collector first saw it so, before
    /// it is deleted; also the age under which orphaned files are left alone. It must exceed the time a
    /// client takes between uploading a layer and putting its manifest, and the blob `HEAD` cache of
    /// every server on the data (`RegistrySettings.blobLinkCacheSeconds`).
    public var grace: Double
    /// Report what would be deleted; write and delete nothing.
    public var dryRun: Bool
    /// Blobs decided per metadata transaction.
    public var batchSize: Int
    /// When another collection holds the collector's lease: wait for it to end (the command line), or
    /// give up at once with `GarbageCollectionBusy` (the server's scheduled run, which comes again).
    public var waitForOtherCollection: Bool

    public init(grace: Double = 3600, dryRun: Bool = false, batchSize: Int = 64, waitForOtherCollection: Bool = true) {
        self.grace = grace
        self.dryRun = dryRun
        self.batchSize = max(1, batchSize)
        self.waitForOtherCollection = waitForOtherCollection
    }
}

/// Another garbage collection (in this process or another one on the same metadata) is running.
public struct GarbageCollectionBusy: Error, CustomStringConvertible {
    public var description: String { "another garbage collection is running on this registry's data" }
}

/// Where a running collection is, for a progress display.
public struct GarbageCollectionProgress: Sendable, Equatable {
    public enum Phase: String, Sendable { case mark, sweep, orphans, uploads, done }
    public var phase: Phase
    /// Blobs and files deleted (or, dry, that would be) so far.
    public var items: Int
    public var bytes: Int64
    /// Seconds since the collection started.
    public var elapsed: Double
}

/// What a collection did (or, dry, would do).
public struct GarbageCollectionReport: Sendable, Equatable, Codable {
    public var dryRun = false
    /// Stale upload sessions purged (untouched for the upload TTL).
    public var staleUploadSessions = 0
    /// Blobs newly seen unreferenced (their grace period starts now).
    public var newlyMarked = 0
    public var blobsDeleted = 0
    public var bytesFreed: Int64 = 0
    /// Blob files without a metadata row, older than the grace period.
    public var orphanBlobFiles = 0
    public var orphanBlobBytes: Int64 = 0
    /// Staged upload files without a session, older than the grace period.
    public var orphanUploads = 0
    public var orphanUploadBytes: Int64 = 0
    /// Unreferenced blobs still inside their grace period (collected by a later run).
    public var waitingBlobs: Int64 = 0
    public var waitingBytes: Int64 = 0
    public var seconds: Double = 0

    public init() {}

    public var totalItems: Int { blobsDeleted + orphanBlobFiles + orphanUploads }
    public var totalBytes: Int64 { bytesFreed + orphanBlobBytes + orphanUploadBytes }
}

extension Registry {
    /// Online garbage collection (docs/gc.md): deletes blobs no manifest references once they have been
    /// unreferenced and untouched for `options.grace`, orphaned blob files and orphaned staged uploads,
    /// while the registry keeps serving. Every deletion is decided in a metadata write transaction that
    /// re-checks it, so a concurrent push, mount or manifest put either keeps the blob or sees it gone.
    /// Idempotent; after an interruption (even `kill -9`) the next run finishes what was decided.
    public func collectGarbage(_ options: GarbageCollectionOptions = .init(),
                               progress: (@Sendable (GarbageCollectionProgress) -> Void)? = nil) async throws
        -> GarbageCollectionReport {
        let run: @Sendable () async throws -> GarbageCollectionReport = { try await self.collectHoldingTheLease(options, progress: progress) }
        if options.waitForOtherCollection { return try await metadata.waitForLease(Self.collectorLease, run) }
        guard let report = try await metadata.withLease(Self.collectorLease, run) else { throw GarbageCollectionBusy() }
        return report
    }

    /// Runs `body` holding the lease `name` (`WorkLeases`): exclusive across every process on this
    /// registry's metadata, so background work scheduled on several nodes runs on one at a time. Nil,
    /// without running `body`, while another holder has it.
    public func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        try await metadata.withLease(name, body)
    }

    /// As `withLease`, waiting while another holder has the lease.
    public func waitForLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T {
        try await metadata.waitForLease(name, body)
    }

    /// The lease (`WorkLeases`) a collection holds from start to end: one collection at a time across every
    /// process on the data, so a claim this one finds was left by a collection that died.
    static let collectorLease = "garbage-collection"

    private func collectHoldingTheLease(_ options: GarbageCollectionOptions,
                                        progress: (@Sendable (GarbageCollectionProgress) -> Void)?) async throws
        -> GarbageCollectionReport {
        let started = clock.now()
        let cutoff = started - options.grace
        var report = GarbageCollectionReport()
        report.dryRun = options.dryRun
        let clock = self.clock
        func tell(_ phase: GarbageCollectionProgress.Phase, _ r: GarbageCollectionReport) {
            progress?(GarbageCollectionProgress(phase: phase, items: r.totalItems, bytes: r.totalBytes,
                                                elapsed: clock.now() - started))
        }
        // Holding the lease, every claim made before now belongs to a collection that was interrupted.
        let claim = BlobClaim(at: started, staleBefore: started)
        tell(.mark, report)
        if !options.dryRun {
            report.staleUploadSessions = try await purgeStaleUploads()
            report.newlyMarked = try await metadata.markUnreferencedBlobs(at: started)
            _ = try await metadata.purgeBlobTombstones(removedBefore: started - max(options.grace, Self.tombstoneRetention))
        }
        try await sweep(options, cutoff: cutoff, claim: claim, into: &report, tell: { tell(.sweep, $0) })
        if let inventory = blobs as? any BlobInventory {
            try await collectOrphanBlobs(inventory, options, cutoff: cutoff, claim: claim, into: &report,
                                         tell: { tell(.orphans, $0) })
            try await collectOrphanUploads(inventory, options, cutoff: cutoff, into: &report)
            tell(.uploads, report)
        }
        (report.waitingBlobs, report.waitingBytes) = try await metadata.pendingCandidates(markedBefore: cutoff)
        if options.dryRun && cutoff >= started {
            // Without a grace period a real run would mark these and delete them at once.
            report.blobsDeleted += Int(report.waitingBlobs)
            report.bytesFreed += report.waitingBytes
            (report.waitingBlobs, report.waitingBytes) = (0, 0)
        }
        report.seconds = clock.now() - started
        tell(.done, report)
        return report
    }

    /// How long the collector keeps a removed blob's tombstone (at least the grace period): longer than
    /// any upload takes between putting its bytes in place and recording them.
    static let tombstoneRetention = 3_600.0

    /// Deletes the blobs whose grace period is over, a batch at a time: claim them (links removed, nothing
    /// can reference them again), delete their bytes outside any transaction, then remove their rows.
    private func sweep(_ options: GarbageCollectionOptions, cutoff: Double, claim: BlobClaim,
                       into report: inout GarbageCollectionReport, tell: (GarbageCollectionReport) -> Void) async throws {
        var after: Digest? = nil
        while true {
            let batch = try await metadata.collectableBlobs(markedBefore: cutoff, claim: claim, after: after, limit: options.batchSize)
            guard let last = batch.last else { break }
            after = last.digest
            if options.dryRun {
                report.blobsDeleted += batch.count
                report.bytesFreed += batch.reduce(0) { $0 + $1.size }
                tell(report)
                continue
            }
            let digests = Set(batch.map(\.digest))
            let started = ContinuousClock.now
            blobLinks.removeDigests(digests)
            let doomed = try await metadata.doomBlobs(batch.map(\.digest), markedBefore: cutoff, claim: claim)
            blobLinks.removeDigests(digests)
            let gone = try await removeClaimed(doomed, claim: claim)
            report.blobsDeleted += gone.count
            report.bytesFreed += gone.reduce(0) { $0 + $1.size }
            tell(report)
            try await yieldWriteLock(since: started)
        }
    }

    /// Deletes the bytes of blobs this collection claimed, on the blob store's threads and outside any
    /// metadata transaction, then removes the rows of those deleted (leaving tombstones). A blob whose
    /// bytes could not be deleted stays claimed; the next collection takes it over.
    private func removeClaimed(_ claimed: [CollectableBlob], claim: BlobClaim) async throws -> [CollectableBlob] {
        guard !claimed.isEmpty else { return [] }
        let store = blobs
        let outcomes = await withTaskGroup(of: (CollectableBlob, (any Error)?).self) { group in
            for b in claimed {
                group.addTask {
                    do { try await store.delete(b.digest); return (b, nil) } catch { return (b, error) }
                }
            }
            var all: [(CollectableBlob, (any Error)?)] = []
            for await o in group { all.append(o) }
            return all
        }
        let deleted = outcomes.filter { $0.1 == nil }.map(\.0)
        let gone = deleted.isEmpty ? [] : try await metadata.removeDoomedBlobs(deleted.map(\.digest), claim: claim)
        if let failure = outcomes.lazy.compactMap(\.1).first { throw failure }
        return gone
    }

    /// Lets other writers of the metadata store in between two batches: pauses as long as the batch took
    /// (at most 50 ms), so a collection holds the write lock at most about half the time. A collector in
    /// another process meets the server in SQLite's busy handler, which retries after sleeps rather than
    /// queueing; without the pause it could take the lock again before a waiting push's retry comes.
    private func yieldWriteLock(since started: ContinuousClock.Instant) async throws {
        let spent = ContinuousClock.now - started
        try await Task.sleep(for: min(spent, .milliseconds(50)))
    }

    /// Blob files with no row at all (a crash between an upload's rename and its metadata write, or data
    /// copied in by hand), older than the grace period: claimed with a row of their own, then deleted like
    /// any claimed blob.
    private func collectOrphanBlobs(_ inventory: any BlobInventory, _ options: GarbageCollectionOptions, cutoff: Double,
                                    claim: BlobClaim, into report: inout GarbageCollectionReport,
                                    tell: (GarbageCollectionReport) -> Void) async throws {
        let old = try await inventory.storedBlobs().filter { $0.changedAt <= cutoff }
        let sizes = Dictionary(old.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        var start = 0
        while start < old.count {
            let slice = old[start ..< min(old.count, start + 512)].map(\.name)
            start += 512
            let unknown = try await metadata.unknownBlobs(slice)
            guard !unknown.isEmpty else { continue }
            for part in stride(from: 0, to: unknown.count, by: options.batchSize) {
                let chunk = unknown[part ..< min(unknown.count, part + options.batchSize)]
                    .map { CollectableBlob(digest: $0, size: sizes[$0] ?? 0) }
                let removed: [CollectableBlob]
                if options.dryRun {
                    removed = chunk
                } else {
                    let started = ContinuousClock.now
                    removed = try await removeClaimed(try await metadata.claimOrphanBlobs(chunk, claim: claim), claim: claim)
                    try await yieldWriteLock(since: started)
                }
                report.orphanBlobFiles += removed.count
                report.orphanBlobBytes += removed.reduce(0) { $0 + $1.size }
                tell(report)
            }
        }
    }

    /// Staged upload files without a session, older than the grace period, that no request has open
    /// (a monolithic upload has no session while it streams; the blob store leaves its open file out).
    private func collectOrphanUploads(_ inventory: any BlobInventory, _ options: GarbageCollectionOptions, cutoff: Double,
                                      into report: inout GarbageCollectionReport) async throws {
        let old = try await inventory.stagedUploads().filter { $0.changedAt <= cutoff }
        guard !old.isEmpty else { return }
        let live = try await metadata.existingUploads(old.map(\.name))
        for file in old where !live.contains(file.name) {
            if !options.dryRun { try await blobs.deleteUpload(id: file.name) }
            report.orphanUploads += 1
            report.orphanUploadBytes += file.size
        }
    }

    /// Records a blob whose bytes an upload just put in place, meeting any collection of the same digest
    /// (docs/gc.md): while a collection has the blob claimed (it is deleting the bytes, then the row) the
    /// upload waits; when the collector removed the blob recently (a tombstone), the upload checks its
    /// bytes are still in place before recording them — if the collector's deletion came after the
    /// upload's rename, they are gone and the client must upload again.
    func recordCommittedBlob(_ digest: Digest, size: Int64, repository: RepositoryKey, session: String?) async throws {
        var verified = false
        var pause = Duration.milliseconds(2)
        let deadline = ContinuousClock.now + Self.collectionWait
        while true {
            switch try await metadata.recordBlob(digest, size: size, linkTo: repository, at: clock.now(),
                                                 finishingUpload: session, bytesVerified: verified) {
            case .recorded:
                return
            case .beingCollected:
                verified = false
                guard ContinuousClock.now < deadline else {
                    throw BerthError.blobUploadInvalid("blob \(digest) is being garbage-collected; upload it again")
                }
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(100))
            case .collected:
                let present = if let inventory = blobs as? any BlobInventory {
                    try await inventory.isStored(digest)
                } else {
                    try await blobs.size(of: digest) != nil
                }
                guard present else { throw BerthError.blobUploadInvalid(BlobCollectedError(digest: digest).description) }
                verified = true
            }
        }
    }

    /// How long an upload waits for a collection that is deleting a blob of the same digest.
    static let collectionWait = Duration.seconds(5)

    /// Storage usage for all accounts or one (`berth usage`, `/metrics`), from counters the metadata store
    /// keeps current in the transactions that change references.
    public func storageUsage(account: String? = nil, repositories: Bool = true) async throws -> StorageUsage {
        try await metadata.storageUsage(account: account, repositories: repositories)
    }

    /// Usage by encryption key, for all accounts or one: the repositories' figures summed per key, and the
    /// blobs they link counted once per key (a blob two keys protect counts under each).
    public func storageUsageByKey(account: String? = nil, usage known: StorageUsage? = nil) async throws -> [KeyUsage] {
        let usage: StorageUsage
        if let known { usage = known } else { usage = try await storageUsage(account: account, repositories: true) }
        var byKey: [String: (usage: KeyUsage, repositories: [RepositoryKey])] = [:]
        for registryID in Set(usage.repositories.keys.map(\.registryID)).sorted() {
            var after: String? = nil
            while true {
                let page = try await metadata.repositoryRecords(in: registryID, after: after, limit: 500)
                guard let last = page.last else { break }
                after = last.key.name
                for record in page {
                    let key = record.settings.encryptionType == "KMS" ? (record.settings.kmsKey ?? "alias/aws/ecr") : "AES256"
                    let figures = usage.repositories[record.key] ?? UsageFigures()
                    var entry = byKey[key] ?? (KeyUsage(key: key), [])
                    entry.usage.repositories += 1
                    entry.usage.images += figures.images
                    entry.usage.storedBytes += figures.storedBytes
                    entry.repositories.append(record.key)
                    byKey[key] = entry
                }
            }
        }
        var out: [KeyUsage] = []
        for (_, entry) in byKey.sorted(by: { $0.key < $1.key }) {
            var u = entry.usage
            (u.blobs, u.bytes) = try await metadata.distinctBlobUsage(of: entry.repositories)
            out.append(u)
        }
        return out
    }
}
