import BerthCore
import BerthStorage
import Foundation
import Synchronization
import Testing

/// Reference tracking, storage accounting and the collector's transactions, the same in every store.
@Suite struct GarbageCollectionConformance {
    static func blob(_ name: String) -> Digest { Digest.sha256(of: Array(name.utf8)) }
    let l1 = blob("layer-1"), l2 = blob("layer-2"), l3 = blob("layer-3"), cfg = blob("config")

    func put(_ m: any MetadataStore, _ repo: RepositoryKey, _ name: String, blobs: [Digest], size: Int64, tag: String? = nil)
        async throws -> Digest {
        let d = Self.blob("manifest-" + name)
        let r = ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{\(name)}".utf8),
                               subject: nil, annotationsJSON: nil, pushedAt: 1, imageSize: size)
        _ = try await m.putManifest(ManifestPut(record: r, blobs: blobs, manifests: [], tag: tag), in: repo)
        return d
    }

    /// Blobs of sizes l1 100, l2 200, l3 400, cfg 10, recorded into `repos`.
    func seed(_ m: any MetadataStore, _ repos: [RepositoryKey]) async throws {
        for r in repos {
            try await m.createRepository(r, at: 0)
            for (d, size) in [(l1, Int64(100)), (l2, 200), (l3, 400), (cfg, 10)] {
                try await m.recordBlob(d, size: size, linkTo: r, at: 0)
            }
        }
    }

    /// A collection's claim at `at`, respecting other claims for `lease` seconds.
    func claim(at: Double, lease: Double = 600, token: Int64 = 7) -> BlobClaim {
        BlobClaim(token: token, at: at, staleBefore: at - lease)
    }

    func figures(_ m: any MetadataStore, _ repo: RepositoryKey) async throws -> UsageFigures {
        try await m.storageUsage(account: nil, repositories: true).repositories[repo] ?? UsageFigures()
    }

    func account(_ m: any MetadataStore, _ a: String) async throws -> UsageFigures {
        try await m.storageUsage(account: a, repositories: false).accounts[a] ?? UsageFigures()
    }

    @Test(arguments: Backend.allCases)
    func distinctBlobUsageCountsEachBlobOnce(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let pub = RepositoryKey(storedRegistryID: "public:" + registry, name: "p")
        try await seed(m, [k("a"), k("b"), pub])
        let extra = Self.blob("extra")
        try await m.recordBlob(extra, size: 5, linkTo: k("b"), at: 0)
        #expect(try await m.distinctBlobUsage(of: []) == (0, 0))
        #expect(try await m.distinctBlobUsage(of: [k("a")]) == (4, 710))
        #expect(try await m.distinctBlobUsage(of: [k("a"), k("b")]) == (5, 715))
        #expect(try await m.distinctBlobUsage(of: [pub, k("nope")]) == (4, 710))
    }

    @Test(arguments: Backend.allCases)
    func accountingFollowsPutsAndDeletes(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let other = RepositoryKey(storedRegistryID: "222222222222", name: "c")
        let pub = RepositoryKey(storedRegistryID: "public:" + registry, name: "p")
        try await seed(m, [k("a"), k("b"), other, pub])
        var usage = try await m.storageUsage(account: nil, repositories: true)
        #expect(usage.blobs == 4 && usage.bytes == 710)
        #expect(usage.unreferencedBlobs == 4 && usage.unreferencedBytes == 710)
        #expect(try await figures(m, k("a")).reclaimableBytes == 710)

        let m1 = try await put(m, k("a"), "1", blobs: [cfg, l1, l2], size: 310, tag: "v1")
        #expect(try await figures(m, k("a")) == UsageFigures(images: 1, storedBytes: 310, uniqueBytes: 310, sharedBytes: 0,
                                                              reclaimableBytes: 400))
        _ = try await put(m, k("b"), "2", blobs: [cfg, l1], size: 110)
        _ = try await put(m, other, "3", blobs: [l1], size: 100)
        _ = try await put(m, pub, "4", blobs: [l1], size: 100)
        #expect(try await figures(m, k("a")) == UsageFigures(images: 1, storedBytes: 310, uniqueBytes: 200, sharedBytes: 110,
                                                              reclaimableBytes: 400))
        #expect(try await figures(m, k("b")) == UsageFigures(images: 1, storedBytes: 110, uniqueBytes: 0, sharedBytes: 110,
                                                              reclaimableBytes: 400))
        // The account counts its public registry: l1 is shared with account 222, cfg and l2 are its own.
        #expect(try await account(m, registry) == UsageFigures(images: 3, storedBytes: 520, uniqueBytes: 210, sharedBytes: 100,
                                                                reclaimableBytes: 400))
        #expect(try await account(m, "222222222222") == UsageFigures(images: 1, storedBytes: 100, uniqueBytes: 0, sharedBytes: 100,
                                                                      reclaimableBytes: 400))
        usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.unreferencedBlobs == 1 && usage.unreferencedBytes == 400)

        // Deleting the last tag deletes the image: a's blobs become b's (cfg, l1 shared) or unreferenced (l2).
        _ = try await m.deleteImage(.tag("v1", of: m1), in: k("a"))
        #expect(try await figures(m, k("a")) == UsageFigures(reclaimableBytes: 600))
        #expect(try await figures(m, k("b")) == UsageFigures(images: 1, storedBytes: 110, uniqueBytes: 10, sharedBytes: 100,
                                                              reclaimableBytes: 600))
        usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.unreferencedBlobs == 2 && usage.unreferencedBytes == 600)

        // Deleting a repository drops its references (the cascade feeds the counts too).
        #expect(try await m.deleteRepository(other))
        #expect(try await account(m, "222222222222") == UsageFigures())
        #expect(try await account(m, registry).uniqueBytes == 110)
        #expect(try await m.deleteRepository(k("b")))
        #expect(try await m.deleteRepository(pub))
        usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.unreferencedBlobs == 4 && usage.unreferencedBytes == 710)
        #expect(try await account(m, registry) == UsageFigures(reclaimableBytes: 710))
    }

    @Test(arguments: Backend.allCases)
    func candidatesWaitOutTheGracePeriod(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await seed(m, [k("a")])
        _ = try await put(m, k("a"), "1", blobs: [cfg, l1], size: 110)
        #expect(try await m.markUnreferencedBlobs(at: 100) == 2)  // l2, l3
        #expect(try await m.markUnreferencedBlobs(at: 200) == 0)  // already marked: the first time counts
        #expect(try await m.collectableBlobs(markedBefore: 99, claim: claim(at: 99), after: nil, limit: 10).isEmpty)
        let due = try await m.collectableBlobs(markedBefore: 100, claim: claim(at: 100), after: nil, limit: 10)
        #expect(Set(due.map(\.digest)) == [l2, l3])
        let pending = try await m.pendingCandidates(markedBefore: 99)
        #expect(pending.count == 2 && pending.bytes == 600)
        #expect(try await m.linkedBlob(l2, in: k("a")) == LinkedBlob(size: 200, isCandidate: true))
        #expect(try await m.linkedBlob(l1, in: k("a")) == LinkedBlob(size: 100, isCandidate: false))

        // A new reference, a new link (mount) or a HEAD's touch clears the mark.
        _ = try await put(m, k("a"), "2", blobs: [l2], size: 200)
        try await m.createRepository(k("b"), at: 0)
        #expect(try await m.linkBlob(l3, to: k("b"), at: 1))
        #expect(try await m.collectableBlobs(markedBefore: 1_000, claim: claim(at: 1_000), after: nil, limit: 10).isEmpty)
        #expect(try await m.markUnreferencedBlobs(at: 300) == 1)  // l3 again
        #expect(try await m.touchBlob(l3))
        #expect(try await m.collectableBlobs(markedBefore: 1_000, claim: claim(at: 1_000), after: nil, limit: 10).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func claiming_thenRemoving_deletesRowsAndLinksAndLeavesTombstones(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        try await seed(m, [k("a"), k("b")])
        _ = try await put(m, k("a"), "1", blobs: [cfg, l1], size: 110)
        _ = try await m.markUnreferencedBlobs(at: 10)
        let c = claim(at: 20)
        let doomed = try await m.doomBlobs([l1, l2, l3], markedBefore: 10, claim: c)
        #expect(Set(doomed) == [CollectableBlob(digest: l2, size: 200), CollectableBlob(digest: l3, size: 400)])
        // Claimed: unlinked everywhere, not mountable, not touchable, not a HEAD answer.
        #expect(try await m.linkedBlobSize(l2, in: k("a")) == nil)
        #expect(try await m.linkedBlobSize(l2, in: k("b")) == nil)
        #expect(try await !m.linkBlob(l2, to: k("a"), at: 11))
        #expect(try await !m.touchBlob(l2))
        #expect(try await m.blobSize(l2) == nil)
        await #expect(throws: BerthError.self) { _ = try await put(m, k("a"), "2", blobs: [l2], size: 200) }
        // Not another collection's to take (its claim is fresh), nor revived by an upload: it waits.
        #expect(try await m.doomBlobs([l2], markedBefore: 1_000, claim: claim(at: 30, token: 8)).isEmpty)
        #expect(try await m.collectableBlobs(markedBefore: 1_000, claim: claim(at: 30, token: 8), after: nil, limit: 10).isEmpty)
        #expect(try await m.recordBlob(l3, size: 400, linkTo: k("b"), at: 12, finishingUpload: nil, bytesVerified: true)
                == .beingCollected)
        #expect(try await m.blobSize(l3) == nil)
        // Another collection's claim leaves the rows alone; the owner's removes them.
        #expect(try await m.removeDoomedBlobs([l2, l3], claim: claim(at: 30, token: 8)).isEmpty)
        let gone = try await m.removeDoomedBlobs([l2, l3], claim: c)
        #expect(Set(gone) == Set(doomed))
        let usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.blobs == 2 && usage.bytes == 110)
        #expect(Set(try await m.unknownBlobs([l1, l2, l3])) == [l2, l3])
        // A removed blob is recorded again only once its bytes are verified.
        #expect(try await m.recordBlob(l3, size: 400, linkTo: k("b"), at: 40, finishingUpload: nil, bytesVerified: false)
                == .collected)
        #expect(try await m.blobSize(l3) == nil)
        #expect(try await m.recordBlob(l3, size: 400, linkTo: k("b"), at: 40, finishingUpload: nil, bytesVerified: true)
                == .recorded)
        #expect(try await m.linkedBlobSize(l3, in: k("b")) == 400)
        // The tombstone went with it; l2's stays until purged.
        #expect(try await m.recordBlob(l3, size: 400, linkTo: k("a"), at: 41, finishingUpload: nil, bytesVerified: false)
                == .recorded)
        #expect(try await m.purgeBlobTombstones(removedBefore: 20) == 0)
        #expect(try await m.purgeBlobTombstones(removedBefore: 21) == 1)
        #expect(try await m.recordBlob(l2, size: 200, linkTo: k("a"), at: 50, finishingUpload: nil, bytesVerified: false)
                == .recorded)
    }

    @Test(arguments: Backend.allCases)
    func anAbandonedClaimIsTakenOverAfterItsLease(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await seed(m, [k("a")])
        _ = try await m.markUnreferencedBlobs(at: 10)
        _ = try await m.doomBlobs([l1], markedBefore: 10, claim: claim(at: 20, token: 1))
        // (that collection was killed before removing the row) Within the lease, nobody else takes it.
        #expect(try await m.collectableBlobs(markedBefore: 1_000, claim: claim(at: 619, token: 2), after: nil, limit: 10)
                .map(\.digest) != [l1])
        let later = claim(at: 620, token: 2)
        #expect(try await m.collectableBlobs(markedBefore: 10, claim: later, after: nil, limit: 10).map(\.digest).contains(l1))
        #expect(try await m.doomBlobs([l1], markedBefore: 10, claim: later) == [CollectableBlob(digest: l1, size: 100)])
        #expect(try await !m.linkBlob(l1, to: k("a"), at: 621))
        // The first collection, if it was only stalled, no longer owns the row.
        #expect(try await m.removeDoomedBlobs([l1], claim: claim(at: 20, token: 1)).isEmpty)
        #expect(try await m.removeDoomedBlobs([l1], claim: later) == [CollectableBlob(digest: l1, size: 100)])
    }

    @Test(arguments: Backend.allCases)
    func recordingABlobLeavesAnUploadSessionAloneWhileItWaits(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await seed(m, [k("a")])
        try await m.createUpload(UploadSession(id: "u1", repository: k("a"), offset: 0, startedAt: 0, updatedAt: 0))
        _ = try await m.markUnreferencedBlobs(at: 10)
        _ = try await m.doomBlobs([l1], markedBefore: 10, claim: claim(at: 20))
        #expect(try await m.recordBlob(l1, size: 100, linkTo: k("a"), at: 21, finishingUpload: "u1", bytesVerified: false)
                == .beingCollected)
        #expect(try await m.existingUploads(["u1"]) == ["u1"])
    }

    @Test(arguments: Backend.allCases)
    func orphanFilesAreClaimedOnlyWithoutARow(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await seed(m, [k("a")])
        let stray = Self.blob("stray")
        let c = claim(at: 5)
        let claimed = try await m.claimOrphanBlobs([CollectableBlob(digest: l1, size: 100), CollectableBlob(digest: stray, size: 3)],
                                                   claim: c)
        #expect(claimed == [CollectableBlob(digest: stray, size: 3)])
        #expect(try await m.blobSize(stray) == nil)
        #expect(try await m.recordBlob(stray, size: 3, linkTo: k("a"), at: 6, finishingUpload: nil, bytesVerified: true)
                == .beingCollected)
        #expect(try await m.removeDoomedBlobs([stray], claim: c) == claimed)
        #expect(try await m.unknownBlobs([l1, stray]) == [stray])
        let usage = try await m.storageUsage(account: nil, repositories: false)
        #expect(usage.blobs == 4 && usage.bytes == 710)
        #expect(try await m.existingUploads(["nope"]).isEmpty)
    }
}

/// Digests a closure handed over, for the assertions.
final class DigestLog: Sendable {
    private let digests = Mutex<[Digest]>([])
    func add(_ d: [Digest]) { digests.withLock { $0 += d } }
    var all: [Digest] { digests.withLock { $0 } }
}
