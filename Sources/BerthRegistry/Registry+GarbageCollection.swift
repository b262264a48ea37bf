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

    public init(grace: Double = 3600, dryRun: Bool = false, batchSize: Int = 64) {
        self.grace = grace
        self.dryRun = dryRun
        self.batchSize = max(1, batchSize)
    }
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
        let started = clock.now()
        let cutoff = started - options.grace
        var report = GarbageCollectionReport()
        report.dryRun = options.dryRun
        let clock = self.clock
        func tell(_ phase: GarbageCollectionProgress.Phase, _ r: GarbageCollectionReport) {
            progress?(GarbageCollectionProgress(phase: phase, items: r.totalItems, bytes: r.totalBytes,
                                                elapsed: clock.now() - started))
        }
        tell(.mark, report)
        if !options.dryRun {
            report.staleUploadSessions = try await purgeStaleUploads()
            report.newlyMarked = try await metadata.markUnreferencedBlobs(at: started)
        }
        try await sweep(options, cutoff: cutoff, into: &report, tell: { tell(.sweep, $0) })
        if let inventory = blobs as? any BlobInventory {
            try await collectOrphanBlobs(inventory, options, cutoff: cutoff, into: &report, tell: { tell(.orphans, $0) })
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

    /// Deletes the blobs whose grace period is over: doom (links removed, nothing can reference them
    /// again), then delete bytes and rows in one transaction that skips any an upload revived.
    private func sweep(_ options: GarbageCollectionOptions, cutoff: Double, into report: inout GarbageCollectionReport,
                       tell: (GarbageCollectionReport) -> Void) async throws {
        var after: Digest? = nil
        let remove = fileRemover()
        while true {
            let batch = try await metadata.collectableBlobs(markedBefore: cutoff, after: after, limit: options.batchSize)
            guard let last = batch.last else { break }
            after = last.digest
            if options.dryRun {
                report.blobsDeleted += batch.count
                report.bytesFreed += batch.reduce(0) { $0 + $1.size }
                tell(report)
                continue
            }
            let digests = Set(batch.map(\.digest))
            blobLinks.removeDigests(digests)
            let doomed = try await metadata.doomBlobs(batch.map(\.digest), markedBefore: cutoff)
            blobLinks.removeDigests(digests)
            let gone = try await metadata.removeDoomedBlobs(doomed.map(\.digest)) { blobs in
                try remove(blobs.map(\.digest))
            }
            report.blobsDeleted += gone.count
            report.bytesFreed += gone.reduce(0) { $0 + $1.size }
            tell(report)
        }
    }

    /// Blob files with no row at all (a crash between an upload's rename and its metadata write, or data
    /// copied in by hand), older than the grace period.
    private func collectOrphanBlobs(_ inventory: any BlobInventory, _ options: GarbageCollectionOptions, cutoff: Double,
                                    into report: inout GarbageCollectionReport, tell: (GarbageCollectionReport) -> Void) async throws {
        let old = try await inventory.storedBlobs().filter { $0.changedAt <= cutoff }
        let sizes = Dictionary(old.map { ($0.name, $0.size) }, uniquingKeysWith: { a, _ in a })
        let remove = fileRemover()
        var start = 0
        while start < old.count {
            let slice = old[start ..< min(old.count, start + 512)].map(\.name)
            start += 512
            let unknown = try await metadata.unknownBlobs(slice)
            guard !unknown.isEmpty else { continue }
            for part in stride(from: 0, to: unknown.count, by: options.batchSize) {
                let chunk = Array(unknown[part ..< min(unknown.count, part + options.batchSize)])
                let removed = options.dryRun ? chunk : try await metadata.removeOrphanBlobFiles(chunk, removeFiles: remove)
                report.orphanBlobFiles += removed.count
                report.orphanBlobBytes += removed.reduce(0) { $0 + (sizes[$1] ?? 0) }
                tell(report)
            }
        }
    }

    /// Staged upload files without a session (monolithic uploads have none while they stream, hence the age).
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

    /// Deletes blob bytes on the thread of the metadata transaction that decides it.
    private func fileRemover() -> @Sendable ([Digest]) throws -> Void {
        let store = blobs
        return { digests in
            if let inventory = store as? any BlobInventory {
                for d in digests { try inventory.deleteImmediately(d) }
            } else {
                for d in digests { try Self.waitFor { try await store.delete(d) } }
            }
        }
    }

    /// Runs an async deletion to completion from a thread that may block (the metadata store's writer).
    private static func waitFor(_ body: @escaping @Sendable () async throws -> Void) throws {
        let done = DispatchSemaphore(value: 0)
        let outcome = LockedBox<(any Error)?>(nil)
        Task.detached {
            do { try await body() } catch { outcome.set(error) }
            done.signal()
        }
        done.wait()
        if let error = outcome.get() { throw error }
    }

    /// Storage usage for all accounts or one (`berth usage`, `/metrics`), from counters the metadata store
    /// keeps current in the transactions that change references.
    public func storageUsage(account: String? = nil, repositories: Bool = true) async throws -> StorageUsage {
        try await metadata.storageUsage(account: account, repositories: repositories)
    }
}

/// A value shared with a detached task.
private final class LockedBox<T: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: T
    init(_ value: T) { self.value = value }
    func set(_ v: T) { lock.withLock { value = v } }
    func get() -> T { lock.withLock { value } }
}
