import BerthCore
@testable import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import NIOCore
import Testing

/// The collector's protocol (docs/gc.md) through the domain service, on both kinds of stores; races are
/// played step by step: the interleavings a concurrent push, mount or HEAD can produce.
@Suite struct GarbageCollectionTests {
    enum Stores: String, CaseIterable, CustomTestStringConvertible {
        case memory, filesystemAndSQLite
        var testDescription: String { rawValue }
    }

    struct Fixture {
        let registry: Registry
        let clock: ManualWallClock
        let directory: String?
    }

    static let grace = 3_600.0

    func make(_ stores: Stores, clock: ManualWallClock = ManualWallClock(), keyring: (any BlobKeyring)? = nil) throws -> Fixture {
        try make(stores, clock: clock as any WallClock, manual: clock, keyring: keyring)
    }

    /// With a `keyring`, blobs are encrypted at rest (the default of `berth serve`).
    func make(_ stores: Stores, clock: any WallClock, manual: ManualWallClock, keyring: (any BlobKeyring)? = nil) throws -> Fixture {
        let clock = clock
        let settings = RegistrySettings(writeBufferSize: 8, blobLinkCacheSeconds: 60)
        switch stores {
        case .memory:
            return Fixture(registry: Registry(blobs: InMemoryBlobStore(clock: clock), metadata: InMemoryMetadataStore(),
                                              settings: settings, clock: clock, keyring: keyring), clock: manual, directory: nil)
        case .filesystemAndSQLite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-gc-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return Fixture(registry: Registry(blobs: try FileSystemBlobStore(root: dir), metadata: try SQLiteMetadataStore(path: dir + "/berth.db"),
                                              settings: settings, clock: clock, keyring: keyring), clock: manual, directory: dir)
        }
    }

    let app = key("team/app"), web = key("team/web")

    func manifest(_ config: String, _ layers: [String]) -> [UInt8] {
        let ls = layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(sha($0))","size":\#($0.utf8.count)}"# }
        return Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha(config))","size":\(config.utf8.count)},
            "layers":[\(ls.joined(separator: ","))]}
            """.utf8)
    }

    /// Pushes blobs and a manifest tagged `tag`; returns the manifest digest.
    @discardableResult
    func push(_ r: Registry, _ repo: RepositoryKey, tag: String, config: String, layers: [String]) async throws -> Digest {
        for b in [config] + layers {
            try await r.monolithicUpload(repo, digest: sha(b), contentLength: nil, body: Body(b))
        }
        return try await r.putManifest(repo, reference: .tag(try Tag(tag)), contentType: MediaType.ociManifest,
                                       bytes: manifest(config, layers)).digest
    }

    func stored(_ r: Registry, _ content: String) async throws -> Bool {
        try await r.blobs.size(of: sha(content)) != nil
    }

    func gc(_ f: Fixture, dryRun: Bool = false) async throws -> GarbageCollectionReport {
        try await f.registry.collectGarbage(GarbageCollectionOptions(grace: Self.grace, dryRun: dryRun, batchSize: 2))
    }

    @Test(arguments: Stores.allCases)
    func deletedImagesFreeTheirOwnBlobsAfterTheGracePeriod(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        try await push(r, app, tag: "v1", config: "cfg-1", layers: ["base", "only-v1"])
        try await push(r, web, tag: "v1", config: "cfg-2", layers: ["base", "only-web"])
        let v1 = try await r.manifest(app, reference: .tag(try Tag("v1"))).digest
        guard case .deleted = try await r.deleteImage(app, .tag("v1", of: v1)) else { Issue.record("not deleted"); return }

        let first = try await gc(f)
        #expect(first.newlyMarked == 2 && first.blobsDeleted == 0)
        #expect(first.waitingBlobs == 2 && first.waitingBytes == Int64("cfg-1".utf8.count + "only-v1".utf8.count))
        #expect(try await stored(r, "only-v1"))

        f.clock.advance(by: Self.grace + 1)
        let dry = try await gc(f, dryRun: true)
        #expect(dry.blobsDeleted == 2 && dry.bytesFreed == 12)
        #expect(try await stored(r, "only-v1"), "a dry run deletes nothing")
        let seen = ProgressLog()
        let second = try await f.registry.collectGarbage(GarbageCollectionOptions(grace: Self.grace, batchSize: 1)) { seen.add($0) }
        #expect(second.blobsDeleted == 2 && second.bytesFreed == 12)
        #expect(seen.all.first?.phase == .mark && seen.all.last?.phase == .done)
        #expect(seen.all.last?.items == 2 && seen.all.last?.bytes == 12)
        #expect(seen.all.filter { $0.phase == .sweep }.map(\.items) == [1, 2])
        #expect(try await !stored(r, "only-v1"))
        #expect(try await !stored(r, "cfg-1"))
        // Shared and other images' blobs stay, and pull back intact.
        #expect(try await read(r, sha("base")) == "base")
        #expect(try await read(r, sha("only-web")) == "only-web")
        #expect(try await r.blobSize(web, sha("base")) == 4)
        await #expect(throws: BerthError.self) { _ = try await r.blobSize(self.app, sha("only-v1")) }
        // Idempotent.
        f.clock.advance(by: Self.grace + 1)
        #expect(try await gc(f).blobsDeleted == 0)
        let usage = try await r.storageUsage()
        #expect(usage.unreferencedBlobs == 0 && usage.blobs == 3)
    }

    @Test(arguments: Stores.allCases)
    func deletingARepositoryFeedsTheCollector(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        try await push(r, app, tag: "v1", config: "cfg-1", layers: ["base", "only-v1"])
        try await push(r, web, tag: "v1", config: "cfg-2", layers: ["base"])
        _ = try await r.deleteRepository(app, force: true)
        _ = try await gc(f)
        f.clock.advance(by: Self.grace + 1)
        let report = try await gc(f)
        #expect(report.blobsDeleted == 2)
        #expect(try await stored(r, "base"))
    }

    @Test(arguments: Stores.allCases)
    func aHeadOfACandidateKeepsItForAnotherGracePeriod(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        try await r.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        _ = try await gc(f)  // marks it: no manifest references it yet
        f.clock.advance(by: Self.grace - 10)
        // A client checks the layer before putting the manifest that needs it: the mark is cleared.
        #expect(try await r.blobSize(app, sha("layer")) == 5)
        f.clock.advance(by: 20)
        #expect(try await gc(f).blobsDeleted == 0)
        try await r.monolithicUpload(app, digest: sha("cfg"), contentLength: nil, body: Body("cfg"))
        _ = try await r.putManifest(app, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest,
                                    bytes: manifest("cfg", ["layer"]))
        f.clock.advance(by: Self.grace * 3)
        #expect(try await gc(f).blobsDeleted == 0)
        #expect(try await read(r, sha("layer")) == "layer")
    }

    /// The collector's claim, made the way `collectGarbage` makes it.
    func claim(_ f: Fixture) -> BlobClaim {
        BlobClaim(at: f.clock.now(), staleBefore: f.clock.now())
    }

    /// Waits (real time) until `condition` holds; false after `seconds`. The bound only matters on a loaded
    /// machine (the full suite runs hundreds of tests at once on two cores), where 5 s was not always enough
    /// for an upload's bytes to land.
    func eventually(_ seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test(arguments: Stores.allCases)
    func theSweepAndAManifestPutSerialize(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        try await r.monolithicUpload(app, digest: sha("cfg"), contentLength: nil, body: Body("cfg"))
        try await r.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        _ = try await gc(f)
        f.clock.advance(by: Self.grace + 1)
        // The collector claims the blobs (links gone) before the client's manifest put arrives.
        let c = claim(f)
        let doomed = try await r.metadata.doomBlobs([sha("cfg"), sha("layer")], markedBefore: f.clock.now() - Self.grace, claim: c)
        #expect(doomed.count == 2)
        await #expect(throws: BerthError.self) {
            _ = try await r.putManifest(self.app, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest,
                                        bytes: self.manifest("cfg", ["layer"]))
        }
        await #expect(throws: BerthError.self) { _ = try await r.blobSize(self.app, sha("layer")) }
        // A mount of a claimed blob opens an upload session instead.
        let start = try await r.startUpload(web, mount: sha("layer"), from: app) { _ in true }
        guard case .session = start else { Issue.record("mounted a doomed blob"); return }
        // The next run finishes what this one claimed (it holds the collector's lease: this one is gone).
        let report = try await gc(f)
        #expect(report.blobsDeleted == 2 && report.bytesFreed == 8)
        try await r.monolithicUpload(app, digest: sha("cfg"), contentLength: nil, body: Body("cfg"))
        try await r.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        _ = try await r.putManifest(app, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest,
                                    bytes: manifest("cfg", ["layer"]))
        #expect(try await read(r, sha("cfg")) == "cfg")
        #expect(try await read(r, sha("layer")) == "layer")
    }

    /// The layer pushed, left unreferenced past the grace period and claimed by a collection.
    func claimedLayer(_ f: Fixture) async throws -> (claim: BlobClaim, doomed: [CollectableBlob]) {
        try await f.registry.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        _ = try await gc(f)
        f.clock.advance(by: Self.grace + 1)
        let c = claim(f)
        return (c, try await f.registry.metadata.doomBlobs([sha("layer")], markedBefore: f.clock.now() - Self.grace, claim: c))
    }

    /// An upload of the layer, started once its bytes are in place (it then waits for the collection).
    func uploadWaitingForTheCollection(_ r: Registry) async throws -> Task<Void, any Error> {
        let upload = Task { try await r.monolithicUpload(self.app, digest: sha("layer"), contentLength: nil, body: Body("layer")) }
        #expect(try await eventually { try await r.blobs.size(of: sha("layer")) != nil })
        return upload
    }

    @Test(arguments: Stores.allCases)
    func anUploadRacingTheDeletionWaitsForItAndKeepsBytesPutAfterIt(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        let (c, doomed) = try await claimedLayer(f)
        // The collector deletes the bytes (outside any transaction) ...
        try await r.blobs.delete(sha("layer"))
        // ... and an upload of the same bytes commits before the collector removes the row: it puts its
        // bytes in place and waits for the collection.
        let upload = try await uploadWaitingForTheCollection(r)
        try await Task.sleep(for: .milliseconds(30))
        #expect(try await r.metadata.blobSize(sha("layer")) == nil)
        #expect(try await r.metadata.removeDoomedBlobs(doomed.map(\.digest), claim: c) == doomed)
        // The row gone (a tombstone left), the upload finds its bytes in place and records them.
        try await upload.value
        #expect(try await read(r, sha("layer")) == "layer")
        _ = try await r.putManifest(app, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest,
                                    bytes: manifest("layer", ["layer"]))
        #expect(try await r.metadata.blobSize(sha("layer")) == 5)
    }

    @Test(arguments: Stores.allCases)
    func anUploadWhoseBytesTheDeletionRemovedIsRefusedNotRecorded(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        let (c, doomed) = try await claimedLayer(f)
        try await r.blobs.delete(sha("layer"))
        // An upload puts its bytes in place and waits; the collector's deletion (a second one, or a slow
        // first one) comes after the upload's rename and takes them.
        let upload = try await uploadWaitingForTheCollection(r)
        try await r.blobs.delete(sha("layer"))
        _ = try await r.metadata.removeDoomedBlobs(doomed.map(\.digest), claim: c)
        // The upload finds the tombstone and no bytes: refused (upload again), nothing recorded.
        await #expect(throws: BerthError.self) { try await upload.value }
        await #expect(throws: BerthError.self) { _ = try await r.blobSize(self.app, sha("layer")) }
        #expect(try await r.metadata.blobSize(sha("layer")) == nil)
        // The client's retry succeeds.
        try await r.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        #expect(try await read(r, sha("layer")) == "layer")
    }

    @Test(arguments: Stores.allCases)
    func aRunInterruptedAfterClaimingIsFinishedByTheNext(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        _ = try await claimedLayer(f)
        // (killed here, its lease gone with it) The next run finishes the blob at once, whatever its grace
        // period.
        let report = try await r.collectGarbage(GarbageCollectionOptions(grace: 1_000_000))
        #expect(report.blobsDeleted == 1)
        #expect(try await !stored(r, "layer"))
    }

    @Test(arguments: Stores.allCases)
    func aCollectionRunsAloneAndNeverTakesOverALiveOnesClaims(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        try await r.monolithicUpload(app, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        _ = try await gc(f)
        f.clock.advance(by: Self.grace + 1)
        // A live collection (it holds the lease) has claimed the layer and is deleting its bytes.
        let (entered, leave) = (AsyncStream<Void>.makeStream(), AsyncStream<Void>.makeStream())
        let live = Task {
            try await r.metadata.withLease("garbage-collection") {
                _ = try await r.metadata.doomBlobs([sha("layer")], markedBefore: f.clock.now() - Self.grace, claim: self.claim(f))
                entered.continuation.yield()
                for await _ in leave.stream { break }
                return true
            }
        }
        for await _ in entered.stream { break }
        // A scheduled run gives up; it does not touch the claim.
        await #expect(throws: GarbageCollectionBusy.self) {
            _ = try await r.collectGarbage(GarbageCollectionOptions(grace: 0, waitForOtherCollection: false))
        }
        // A waiting run starts when the live one ends, and finishes its claim.
        let waiting = Task { try await r.collectGarbage(GarbageCollectionOptions(grace: 0)) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await stored(r, "layer"))
        leave.continuation.yield()
        #expect(try await live.value == true)
        #expect(try await waiting.value.blobsDeleted == 1)
        #expect(try await !stored(r, "layer"))
    }

    @Test(arguments: Stores.allCases)
    func aStalledSessionlessUploadKeepsItsStagedBytes(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        // A monolithic upload (no session row) whose client stalls far longer than the grace period.
        let writer = try await r.blobs.openUpload(id: "mono-stalled", at: 0)
        try await writer.write(ByteBuffer(string: "first half "))
        f.clock.advance(by: Double(Date().timeIntervalSince1970) - f.clock.now() + 10 * Self.grace)
        let report = try await r.collectGarbage(GarbageCollectionOptions(grace: 1))
        #expect(report.orphanUploads == 0)
        #expect(try await r.blobs.uploadedSize(id: "mono-stalled") == 11)
        // The client goes on; the upload commits intact.
        try await writer.write(ByteBuffer(string: "second half"))
        try await writer.close()
        try await r.blobs.commitUpload(id: "mono-stalled", as: sha("first half second half"))
        #expect(try await read(r, sha("first half second half")) == "first half second half")
        // Once no request writes it, an abandoned staged file is an orphan like any other.
        let abandoned = try await r.blobs.openUpload(id: "mono-abandoned", at: 0)
        try await abandoned.write(ByteBuffer(string: "x"))
        try await abandoned.close()
        f.clock.advance(by: 10)
        #expect(try await r.collectGarbage(GarbageCollectionOptions(grace: 1)).orphanUploads == 1)
    }

    /// With encryption at rest the collector works on the store under the sealer (docs/gc.md): sealed
    /// unreferenced blobs and orphan files go, and a blob pushed again after a collection (a tombstone:
    /// `isStored` on the store) is recorded and pulls back intact.
    @Test(arguments: Stores.allCases)
    func theCollectorWorksUnderEncryptionAtRest(_ stores: Stores) async throws {
        let f = try make(stores, keyring: TestKeyring())
        let r = f.registry
        #expect(r.sealer != nil)
        let v1 = try await push(r, app, tag: "v1", config: "cfg-enc", layers: ["enc-layer"])
        guard case .deleted = try await r.deleteImage(app, .tag("v1", of: v1)) else { Issue.record("not deleted"); return }
        // A file with no row, as a crash between an upload's rename and its metadata write leaves.
        let w = try await r.blobs.openUpload(id: "crashed", at: 0)
        try await w.write(ByteBuffer(string: "sealed orphan"))
        try await w.close()
        try await r.blobs.commitUpload(id: "crashed", as: sha("sealed orphan"))
        _ = try await gc(f)
        f.clock.advance(by: Double(Date().timeIntervalSince1970) - f.clock.now() + Self.grace + 10)
        let report = try await gc(f)
        #expect(report.blobsDeleted == 2 && report.bytesFreed == Int64("cfg-enc".utf8.count + "enc-layer".utf8.count))
        #expect(report.orphanBlobFiles == 1)
        #expect(try await !stored(r, "enc-layer"))
        #expect(try await !stored(r, "sealed orphan"))
        // Pushed again: the upload meets the tombstone, finds its bytes in place, records them.
        try await push(r, app, tag: "v2", config: "cfg-enc", layers: ["enc-layer"])
        var back = [UInt8]()
        try await r.readBlob(app, sha("enc-layer"), range: nil) { back += $0.readableBytesView }
        #expect(String(decoding: back, as: UTF8.self) == "enc-layer")
    }

    @Test(arguments: Stores.allCases)
    func orphanedFilesAreCollectedOnlyWhenOld(_ stores: Stores) async throws {
        let f = try make(stores)
        let r = f.registry
        // A blob file with no row (a crash between an upload's rename and its metadata write) and a staged
        // upload with no session.
        let writer = try await r.blobs.openUpload(id: "crashed-upload", at: 0)
        try await writer.write(ByteBuffer(string: "staged"))
        try await writer.close()
        let w2 = try await r.blobs.openUpload(id: "to-commit", at: 0)
        try await w2.write(ByteBuffer(string: "orphan"))
        try await w2.close()
        try await r.blobs.commitUpload(id: "to-commit", as: sha("orphan"))
        // Young: kept (they may belong to a push in progress).
        let young = try await r.collectGarbage(GarbageCollectionOptions(grace: 3_600))
        #expect(young.orphanBlobFiles == 0 && young.orphanUploads == 0)
        // Old enough (the files' times are real; a negative grace puts the cutoff after them).
        f.clock.advance(by: Double(Date().timeIntervalSince1970) - f.clock.now() + 10)
        let dry = try await r.collectGarbage(GarbageCollectionOptions(grace: 1, dryRun: true))
        #expect(dry.orphanBlobFiles == 1 && dry.orphanUploads == 1)
        let report = try await r.collectGarbage(GarbageCollectionOptions(grace: 1))
        #expect(report.orphanBlobFiles == 1 && report.orphanBlobBytes == 6)
        #expect(report.orphanUploads == 1 && report.orphanUploadBytes == 6)
        #expect(try await !stored(r, "orphan"))
        #expect(try await r.blobs.uploadedSize(id: "crashed-upload") == nil)
    }

    @Test(arguments: Stores.allCases)
    func concurrentPushesOfSharedLayersSurviveCollectionsInALoop(_ stores: Stores) async throws {
        // The real clock and a one-second grace period (a push here takes milliseconds; one that takes
        // longer may be refused and is pushed again, as a client would); every push must pull back intact.
        let f = try make(stores, clock: SystemWallClock(), manual: ManualWallClock())
        let r = f.registry
        let stop = Flag()
        let collector = Task {
            var runs = 0
            while !stop.isSet {
                _ = try await r.collectGarbage(GarbageCollectionOptions(grace: 1, batchSize: 1))
                runs += 1
                await Task.yield()
            }
            return runs
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0 ..< 4 {
                group.addTask {
                    for i in 0 ..< 15 {
                        let repo = key("race/r\(worker)")
                        let layers = ["shared-base", "shared-\(i % 3)", "own-\(worker)-\(i)"]
                        var lastError: (any Error)? = nil
                        // A push whose blob was collected between upload and manifest put is refused
                        // (MANIFEST_BLOB_UNKNOWN, or its upload asked to be repeated): the client pushes again.
                        for _ in 0 ..< 20 {
                            do {
                                try await self.push(r, repo, tag: "t\(i)", config: "cfg-\(worker)-\(i)", layers: layers)
                                lastError = nil
                                break
                            } catch {
                                lastError = error
                            }
                        }
                        if let lastError { throw lastError }
                        let m = try await r.manifest(repo, reference: .tag(try Tag("t\(i)")))
                        #expect(m.bytes == self.manifest("cfg-\(worker)-\(i)", layers))
                        for l in layers { #expect(try await read(r, sha(l)) == l) }
                    }
                }
            }
            try await group.waitForAll()
        }
        stop.set()
        #expect(try await collector.value > 0)
        // Every image still pulls back intact after a final collection.
        _ = try await r.collectGarbage(GarbageCollectionOptions(grace: 0, batchSize: 1))
        for worker in 0 ..< 4 {
            for i in 0 ..< 15 {
                for l in ["shared-base", "shared-\(i % 3)", "own-\(worker)-\(i)", "cfg-\(worker)-\(i)"] {
                    #expect(try await read(r, sha(l)) == l)
                }
            }
        }
    }
}

/// Progress reports, in order.
final class ProgressLog: Sendable {
    private let items = Mutex<[GarbageCollectionProgress]>([])
    func add(_ p: GarbageCollectionProgress) { items.withLock { $0.append(p) } }
    var all: [GarbageCollectionProgress] { items.withLock { $0 } }
}

/// A flag set once, read from other tasks.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    func set() { value.withLock { $0 = true } }
}

import Synchronization
