import BerthCore
import BerthStorage
import Testing

/// The archive storage class and pull time update exclusions, on every backend.
@Suite struct ArchiveConformance {
    let layer = Digest.sha256(of: Array("layer".utf8))
    let child = Digest.sha256(of: Array("child".utf8))
    let index = Digest.sha256(of: Array("index".utf8))

    func record(_ d: Digest, _ mediaType: String = MediaType.ociManifest, at: Double = 2) -> ManifestRecord {
        ManifestRecord(digest: d, mediaType: mediaType, artifactType: nil, bytes: Array("{}".utf8),
                       subject: nil, annotationsJSON: nil, pushedAt: at, imageSize: 5)
    }

    /// Repository `r` with `child` (tagged `v1`, one layer) and `index` listing it.
    func world(_ backend: Backend) async throws -> any MetadataStore {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.recordBlob(layer, size: 5, linkTo: k("r"), at: 0)
        _ = try await m.putManifest(ManifestPut(record: record(child), blobs: [layer], manifests: [], tag: "v1"), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: record(index, MediaType.ociIndex), blobs: [], manifests: [child], tag: nil), in: k("r"))
        return m
    }

    @Test(arguments: Backend.allCases)
    func archiveAndRestore(_ backend: Backend) async throws {
        let m = try await world(backend)
        let fresh = try #require(try await m.image(child, in: k("r")))
        #expect(fresh.status == .active && fresh.lastArchivedAt == nil && fresh.lastActivatedAt == nil)
        #expect(try await m.manifest(child, in: k("r"))?.status == .active)

        // An image an ACTIVE index lists is not archived alone.
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 10) == .referenced(by: [index]))
        #expect(try await m.image(child, in: k("r"))?.status == .active)

        #expect(try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10) == .updated(.archived, changed: true))
        // Now the only index listing it is archived: the child may go too.
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 11) == .updated(.archived, changed: true))
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 12) == .updated(.archived, changed: false))
        let archived = try #require(try await m.image(child, in: k("r")))
        #expect(archived.status == .archived && archived.lastArchivedAt == 11 && archived.lastActivatedAt == nil)
        #expect(archived.tags == ["v1"], "an archived image keeps its tags")
        #expect(try await m.manifest(child, in: k("r"))?.status == .archived)
        #expect(try await m.images(in: k("r"), after: nil, limit: 10).map(\.status) == [.archived, .archived])

        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 20) == .updated(.active, changed: true))
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 21) == .updated(.active, changed: false))
        let restored = try #require(try await m.image(child, in: k("r")))
        #expect(restored.status == .active && restored.lastArchivedAt == 11 && restored.lastActivatedAt == 20)
        #expect(try await m.manifest(child, in: k("r"))?.status == .active)

        #expect(try await m.updateImageStorageClass(layer, in: k("r"), to: .archive, at: 30) == .notFound)
        #expect(try await m.updateImageStorageClass(child, in: k("nope"), to: .archive, at: 30) == .notFound)
    }

    @Test(arguments: Backend.allCases)
    func aRestoreThroughActivating(_ backend: Backend) async throws {
        let m = try await world(backend)
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10)
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 11)
        #expect(try await m.activatingImages(after: nil, limit: 10).isEmpty)

        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 20, activating: true)
                == .updated(.activating, changed: true))
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 21, activating: true)
                == .updated(.activating, changed: false))
        let activating = try #require(try await m.image(child, in: k("r")))
        #expect(activating.status == .activating && activating.lastActivatedAt == nil)
        #expect(try await m.manifest(child, in: k("r"))?.status.isPullable == false)
        #expect(try await m.activatingImages(after: nil, limit: 10) == [ImageRef(repository: k("r"), digest: child)])
        #expect(try await m.activatingImages(after: ImageRef(repository: k("r"), digest: child), limit: 10).isEmpty)

        #expect(try await m.finishActivation(child, in: k("r"), at: 25))
        #expect(try await !m.finishActivation(child, in: k("r"), at: 26), "done once")
        let restored = try #require(try await m.image(child, in: k("r")))
        #expect(restored.status == .active && restored.lastActivatedAt == 25 && restored.lastArchivedAt == 11)
        #expect(try await m.activatingImages(after: nil, limit: 10).isEmpty)

        // Archived again while ACTIVATING: the restore is called off.
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 30)
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 31, activating: true)
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 32) == .updated(.archived, changed: true))
        #expect(try await !m.finishActivation(child, in: k("r"), at: 33))
        #expect(try await m.image(child, in: k("r"))?.status == .archived)
        // A restore without an archive tier completes an ACTIVATING one at once.
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 40, activating: true)
        #expect(try await m.updateImageStorageClass(child, in: k("r"), to: .standard, at: 41) == .updated(.active, changed: true))
        #expect(try await m.image(child, in: k("r"))?.lastActivatedAt == 41)
    }

    @Test(arguments: Backend.allCases)
    func aBlobOnlyArchivedImagesUseIsArchivedOnly(_ backend: Backend) async throws {
        let m = try await world(backend)
        let loose = Digest.sha256(of: Array("loose".utf8))
        try await m.recordBlob(loose, size: 3, linkTo: k("r"), at: 0)
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == false)
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10)
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == false, "the child is still ACTIVE")
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 11)
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == true)
        #expect(try await m.linkedBlob(loose, in: k("r"))?.archivedOnly == false, "no image uses it: a push in progress")
        // Another ACTIVE image using the layer makes it pullable again.
        let other = Digest.sha256(of: Array("other".utf8))
        _ = try await m.putManifest(ManifestPut(record: record(other), blobs: [layer], manifests: [], tag: "v2"), in: k("r"))
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == false)
        _ = try await m.updateImageStorageClass(other, in: k("r"), to: .archive, at: 12)
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == true)
        _ = try await m.updateImageStorageClass(other, in: k("r"), to: .standard, at: 13, activating: true)
        #expect(try await m.linkedBlob(layer, in: k("r"))?.archivedOnly == true, "ACTIVATING is not pullable yet")
    }

    @Test(arguments: Backend.allCases)
    func archivingDropsTheScan(_ backend: Backend) async throws {
        let m = try await world(backend)
        #expect(try await m.putScan(ImageScanRecord(repository: k("r"), digest: index, state: .complete, trigger: "PUSH", requestedAt: 1),
                                    ifState: nil))
        #expect(try await m.scan(index, in: k("r")) != nil)
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10)
        #expect(try await m.scan(index, in: k("r")) == nil, "ECR: earlier scan results are not available after a restore")
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .standard, at: 11)
        #expect(try await m.scan(index, in: k("r")) == nil)
    }

    @Test(arguments: Backend.allCases)
    func pushingAnArchivedImageAgainRestoresIt(_ backend: Backend) async throws {
        let m = try await world(backend)
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10)
        // PutImage's checks do not refuse an archived image as existing: the push restores it.
        let put = ManifestPut(record: record(index, MediaType.ociIndex, at: 40), blobs: [], manifests: [child], tag: nil, imageChecks: true)
        let result = try await m.putManifest(put, in: k("r"))
        #expect(result == ManifestPutResult(created: false, previousTagDigest: nil, restored: true))
        let image = try #require(try await m.image(index, in: k("r")))
        #expect(image.status == .active && image.lastActivatedAt == 40 && image.pushedAt == 2)
        // An ACTIVE image pushed again is what it was.
        await #expect(throws: ImagePutRefusal.imageAlreadyExists(digest: index, tag: nil)) { _ = try await m.putManifest(put, in: k("r")) }
        let again = ManifestPut(record: record(child, at: 50), blobs: [layer], manifests: [], tag: "v2")
        #expect(try await m.putManifest(again, in: k("r")) == ManifestPutResult(created: false, previousTagDigest: nil, restored: false))
    }

    @Test(arguments: Backend.allCases)
    func deletingAnArchivedImage(_ backend: Backend) async throws {
        let m = try await world(backend)
        _ = try await m.updateImageStorageClass(index, in: k("r"), to: .archive, at: 10)
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 10)
        #expect(try await m.deleteImage(.digest(index), in: k("r")) == .deleted(tags: [], imageDeleted: true))
        #expect(try await m.deleteImage(.tag("v1", of: child), in: k("r")) == .deleted(tags: ["v1"], imageDeleted: true))
        // Pushed anew, it starts ACTIVE with no archive history.
        _ = try await m.putManifest(ManifestPut(record: record(child, at: 60), blobs: [layer], manifests: [], tag: nil), in: k("r"))
        let image = try #require(try await m.image(child, in: k("r")))
        #expect(image.status == .active && image.lastArchivedAt == nil && image.lastActivatedAt == nil && image.lastPulledAt == nil)
    }

    @Test(arguments: Backend.allCases)
    func pullTimeExclusions(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let a = "arn:aws:iam::111111111111:role/scanner"
        let b = "arn:aws:iam::111111111111:user/ci/bot"
        #expect(try await m.pullTimeExclusions(of: registry).isEmpty)
        #expect(try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: b, createdAt: 1), to: registry, limit: 2)
                == .added(PullTimeExclusion(principalARN: b, createdAt: 1)))
        #expect(try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: b, createdAt: 2), to: registry, limit: 2) == .alreadyExists)
        #expect(try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: a, createdAt: 3), to: registry, limit: 2)
                == .added(PullTimeExclusion(principalARN: a, createdAt: 3)))
        #expect(try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: "arn:aws:iam::111111111111:role/x", createdAt: 4),
                                                 to: registry, limit: 2) == .limitExceeded)
        // Per account.
        #expect(try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: a, createdAt: 5), to: "222222222222", limit: 2)
                == .added(PullTimeExclusion(principalARN: a, createdAt: 5)))
        #expect(try await m.pullTimeExclusions(of: registry) == [PullTimeExclusion(principalARN: a, createdAt: 3),
                                                               PullTimeExclusion(principalARN: b, createdAt: 1)])
        #expect(try await m.removePullTimeExclusion(a, from: registry))
        #expect(try await !m.removePullTimeExclusion(a, from: registry))
        #expect(try await m.pullTimeExclusions(of: registry).map(\.principalARN) == [b])
        #expect(try await m.pullTimeExclusions(of: "222222222222").map(\.principalARN) == [a])
    }

    @Test(arguments: Backend.persistent)
    func archiveStateAndExclusionsSurviveReopen(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await m.putManifest(ManifestPut(record: record(child), blobs: [], manifests: [], tag: nil), in: k("r"))
        _ = try await m.updateImageStorageClass(child, in: k("r"), to: .archive, at: 10)
        _ = try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: "arn:aws:iam::111111111111:role/r", createdAt: 1), to: registry, limit: 100)
        let (_, again) = try await s.reopen!()
        #expect(try await again.image(child, in: k("r"))?.status == .archived)
        #expect(try await again.image(child, in: k("r"))?.lastArchivedAt == 10)
        #expect(try await again.pullTimeExclusions(of: registry).count == 1)
    }
}
