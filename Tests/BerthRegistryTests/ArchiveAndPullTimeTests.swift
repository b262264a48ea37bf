import BerthCore
@testable import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Testing

/// The archive storage class and pull time tracking of the domain service, on the in-memory and SQLite stores.
@Suite struct ArchiveTests {
    let repo = key("team/app")
    let fx = RegistryManifestTests()

    /// A registry with `v1` (an image) pushed; returns its digest.
    func world(_ metadata: any MetadataStore = InMemoryMetadataStore(), clock: ManualWallClock = ManualWallClock(1_000))
        async throws -> (Registry, Digest) {
        let r = Registry(blobs: InMemoryBlobStore(), metadata: metadata, clock: clock)
        try await fx.pushBlobs(r)
        let d = try await r.putManifest(repo, reference: .tag(try Tag("v1")), contentType: nil,
                                        bytes: fx.image(config: sha("c"), layer: sha("l"))).digest
        return (r, d)
    }

    static func stores() throws -> [any MetadataStore] {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-archive-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return [InMemoryMetadataStore(), try SQLiteMetadataStore(path: dir + "/berth.db")]
    }

    @Test func anArchivedImageCannotBePulledUntilRestored() async throws {
        for store in try Self.stores() {
            let (r, d) = try await world(store)
            // Cached by a pull first: the archive must not be hidden by the manifest cache.
            _ = try await r.manifest(repo, reference: .tag(try Tag("v1")))
            #expect(try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 2_000) == .archived)
            await #expect(throws: BerthError.imageArchived("v1")) { _ = try await r.manifest(self.repo, reference: .tag(try Tag("v1"))) }
            await #expect(throws: BerthError.imageArchived(d.description)) {
                _ = try await r.manifest(self.repo, reference: .digest(d), accepting: AcceptedMediaTypes(list: nil))
            }
            // Still listed and described, with its tag.
            let image = try #require(try await r.image(d, in: repo))
            #expect(image.status == .archived && image.lastArchivedAt == 2_000 && image.tags == ["v1"])
            #expect(try await r.storedManifest(d, in: repo)?.status == .archived)

            #expect(try await r.updateImageStorageClass(d, in: repo, to: .standard, at: 3_000) == .active)
            #expect(try await r.manifest(repo, reference: .tag(try Tag("v1"))).digest == d)
            let restored = try #require(try await r.image(d, in: repo))
            #expect(restored.status == .active && restored.lastArchivedAt == 2_000 && restored.lastActivatedAt == 3_000)
        }
    }

    @Test func pushingAnArchivedImageAgainRestoresIt() async throws {
        let clock = ManualWallClock(1_000)
        let (r, d) = try await world(clock: clock)
        _ = try await r.manifest(repo, reference: .digest(d))
        try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 2_000)
        clock.advance(by: 500)
        let pushed = try await r.putManifest(repo, reference: .tag(try Tag("v2")), contentType: nil, bytes: fx.image(config: sha("c"), layer: sha("l")))
        #expect(pushed.digest == d && !pushed.created)
        #expect(try await r.manifest(repo, reference: .tag(try Tag("v1"))).digest == d)
        #expect(try await r.image(d, in: repo)?.lastActivatedAt == 1_500)
        // ECR PutImage of the same image: restores instead of ImageAlreadyExists.
        try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 2_000)
        _ = try await r.putImage(repo, tag: nil, contentType: nil, bytes: fx.image(config: sha("c"), layer: sha("l")))
        #expect(try await r.image(d, in: repo)?.status == .active)
    }

    @Test func archivesAndRestoresArePublished() async throws {
        let (r, d) = try await world()
        let events = r.events.subscribe()
        try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 1)
        try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 2)  // no change: no event
        try await r.updateImageStorageClass(d, in: repo, to: .standard, at: 3)
        try await r.updateImageStorageClass(d, in: repo, to: .archive, at: 4)
        _ = try await r.putManifest(repo, reference: .tag(try Tag("again")), contentType: nil, bytes: fx.image(config: sha("c"), layer: sha("l")))
        var seen: [RegistryEvent] = []
        for await e in events {
            if case .manifestPushed = e { continue }
            seen.append(e)
            if seen.count == 4 { break }
        }
        #expect(seen == [.imageArchived(repository: repo, digest: d), .imageRestored(repository: repo, digest: d),
                         .imageArchived(repository: repo, digest: d), .imageRestored(repository: repo, digest: d)])
    }

    @Test func refusalsAndMissingImages() async throws {
        let (r, d) = try await world()
        let list = try await r.putManifest(repo, reference: .tag(try Tag("list")), contentType: nil, bytes: fx.index([d])).digest
        await #expect(throws: ImageStorageClassRefusal.referencedByIndexes([list])) {
            try await r.updateImageStorageClass(d, in: self.repo, to: .archive, at: 1)
        }
        #expect(try await r.image(d, in: repo)?.status == .active)
        await #expect(throws: BerthError.manifestUnknown(sha("nope").description)) {
            try await r.updateImageStorageClass(sha("nope"), in: self.repo, to: .archive, at: 1)
        }
        await #expect(throws: BerthError.nameUnknown("team/none")) {
            try await r.updateImageStorageClass(d, in: key("team/none"), to: .archive, at: 1)
        }
        // Deleting an archived image works as for any other.
        try await r.updateImageStorageClass(list, in: repo, to: .archive, at: 1)
        try await r.deleteManifest(repo, reference: .digest(list))
        #expect(try await r.image(list, in: repo) == nil)
    }
}

@Suite struct PullTimeTests {
    let repo = key("team/app")
    let fx = RegistryManifestTests()
    static let account = "111111111111"
    static let scanner = Principal(accountID: account, arn: "arn:aws:sts::111111111111:assumed-role/scanner/session-1", accessKeyID: "ASIASCANNER")
    static let ci = Principal(accountID: account, arn: "arn:aws:iam::111111111111:user/build/ci", accessKeyID: "AKIACI")

    @Test func matchKeysJoinRolesAndTheirSessions() {
        #expect(PullRecorder.matchKey(arn: "arn:aws:iam::111111111111:role/scanner") == "111111111111:role:scanner")
        #expect(PullRecorder.matchKey(arn: "arn:aws:iam::111111111111:role/tools/scanner") == "111111111111:role:scanner")
        #expect(PullRecorder.matchKey(arn: "arn:aws:sts::111111111111:assumed-role/scanner/s") == "111111111111:role:scanner")
        #expect(PullRecorder.matchKey(arn: "arn:aws:iam::111111111111:user/build/ci") == "111111111111:user:ci")
        #expect(PullRecorder.matchKey(arn: "arn:aws:iam::111111111111:root") == nil)
        #expect(PullRecorder.matchKey(arn: "arn:aws:iam::111111111111:group/devs") == nil)
        #expect(PullRecorder.matchKey(arn: "not an arn") == nil)
    }

    @Test func pullsAreCoalescedAndWrittenOnFlush() async throws {
        for store in try ArchiveTests.stores() {
            let clock = ManualWallClock(1_000)
            let (r, d) = try await ArchiveTests().world(store, clock: clock)
            for _ in 0..<50 {
                clock.advance(by: 1)
                await r.notePull(repo, d, byTag: true, by: Self.ci)
            }
            #expect(r.pendingPullCount == 1)
            #expect(try await store.image(d, in: repo)?.lastPulledAt == nil, "no store write per pull")
            try await r.flushPulls()
            #expect(r.pendingPullCount == 0)
            #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_050, "the time of the last pull, not of the flush")
            clock.advance(by: 100)
            try await r.flushPulls()
            #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_050)
        }
    }

    /// Download counts ride on the same batches: no store write per pull, every pull counted at the flush,
    /// by tag always and by digest unless the image is an index's child.
    @Test func downloadsAreCountedInMemoryAndAddedOnFlush() async throws {
        for store in try ArchiveTests.stores() {
            let clock = ManualWallClock(1_000)
            let (r, d) = try await ArchiveTests().world(store, clock: clock)
            for i in 0..<30 {
                clock.advance(by: 1)
                await r.notePull(repo, d, byTag: i % 3 != 0, by: Self.ci)
            }
            #expect(r.pendingPullCount == 1)
            #expect(try await store.image(d, in: repo)?.downloadCount == 0, "no store write per pull")
            try await r.flushPulls()
            #expect(try await store.image(d, in: repo)?.downloadCount == 30)
            try await r.flushPulls()
            #expect(try await store.image(d, in: repo)?.downloadCount == 30, "a flush with nothing noted adds nothing")
            await r.notePull(repo, d, byTag: false, by: nil)
            try await r.flushPulls()
            #expect(try await store.image(d, in: repo)?.downloadCount == 31)
        }
    }

    /// A flush whose write failed puts its pulls back: added to those noted meanwhile, the latest time kept.
    @Test func restoredPullsAddToThoseNotedMeanwhile() {
        let recorder = PullRecorder()
        let d = sha("image")
        recorder.note(repo, d, at: 10, byTag: true)
        recorder.note(repo, d, at: 12, byTag: false)
        let taken = recorder.take()
        #expect(recorder.pending.withLock { $0.isEmpty })
        recorder.note(repo, d, at: 11, byTag: true)
        recorder.note(repo, d, at: nil, byTag: false)
        recorder.restore(taken)
        let noted = recorder.pending.withLock { $0[PullRecorder.PullKey(repository: repo, digest: d)] }
        #expect(noted == PullRecorder.Noted(lastPulledAt: 12, byTag: 2, byDigest: 2))
    }

    @Test func aFlushThatReturnsHasWrittenEveryEarlierPull() async throws {
        let clock = ManualWallClock(1_000)
        let store = InMemoryMetadataStore()
        let (r, d) = try await ArchiveTests().world(store, clock: clock)
        for round in 1...20 {
            clock.advance(by: 1)
            await r.notePull(repo, d, byTag: true, by: nil)
            // Two flushes at once: whichever returns, the pull is stored.
            async let a: Void = r.flushPulls()
            async let b: Void = r.flushPulls()
            try await a
            #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_000 + Double(round))
            try await b
        }
    }

    @Test func excludedPrincipalsDoNotUpdateThePullTime() async throws {
        let clock = ManualWallClock(1_000)
        let store = InMemoryMetadataStore()
        let (r, d) = try await ArchiveTests().world(store, clock: clock)
        #expect(try await r.registerPullTimeExclusion("arn:aws:iam::111111111111:role/scanning/scanner", of: Self.account)
                == .added(PullTimeExclusion(principalARN: "arn:aws:iam::111111111111:role/scanning/scanner", createdAt: 1_000)))
        #expect(try await r.registerPullTimeExclusion("arn:aws:iam::111111111111:role/scanning/scanner", of: Self.account) == .alreadyExists)
        await r.notePull(repo, d, byTag: true, by: Self.scanner)
        try await r.flushPulls()
        #expect(try await store.image(d, in: repo)?.lastPulledAt == nil, "a session of an excluded role")
        #expect(try await store.image(d, in: repo)?.downloadCount == 1, "its pull is a download all the same")
        clock.advance(by: 10)
        await r.notePull(repo, d, byTag: true, by: Self.ci)
        try await r.flushPulls()
        #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_010)

        // Deregistered: the cache is dropped at once.
        #expect(try await r.deregisterPullTimeExclusion("arn:aws:iam::111111111111:role/scanning/scanner", of: Self.account))
        #expect(try await !r.deregisterPullTimeExclusion("arn:aws:iam::111111111111:role/scanning/scanner", of: Self.account))
        clock.advance(by: 10)
        await r.notePull(repo, d, byTag: true, by: Self.scanner)
        try await r.flushPulls()
        #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_020)

        // The list is per registry: another account's exclusion of the same role does not apply here.
        _ = try await r.registerPullTimeExclusion("arn:aws:iam::111111111111:role/scanner", of: "222222222222")
        clock.advance(by: 10)
        await r.notePull(repo, d, byTag: true, by: Self.scanner)
        try await r.flushPulls()
        #expect(try await store.image(d, in: repo)?.lastPulledAt == 1_030)
    }

    @Test func theExclusionLimitIsAHundred() async throws {
        let r = Registry.inMemory()
        for i in 0..<Registry.maxPullTimeExclusions {
            guard case .added = try await r.registerPullTimeExclusion("arn:aws:iam::111111111111:role/r\(i)", of: Self.account) else {
                Issue.record("exclusion \(i) refused")
                return
            }
        }
        #expect(try await r.registerPullTimeExclusion("arn:aws:iam::111111111111:role/one-more", of: Self.account) == .limitExceeded)
        #expect(try await r.pullTimeExclusions(of: Self.account).count == 100)
    }
}
