import BerthCore
import BerthStorage
import Testing

/// Download counts (`recordPulls` with `ImagePulls`), on every backend: additive, by tag always, by digest
/// unless the image is a child of an index of its repository, summed per repository for the gallery.
@Suite struct DownloadCountConformance {
    func key(_ name: String, public: Bool = true) -> RepositoryKey {
        RepositoryKey(registry: `public` ? .public("111111111111") : .private("111111111111"), name: try! RepositoryName(name))
    }

    func manifest(_ text: String, at: Double = 1) -> ManifestRecord {
        ManifestRecord(digest: Digest.sha256(of: Array(text.utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                       bytes: Array(text.utf8), subject: nil, annotationsJSON: nil, pushedAt: at, imageSize: 5)
    }

    func count(_ m: any MetadataStore, _ d: Digest, in k: RepositoryKey) async throws -> Int64? {
        try await m.image(d, in: k)?.downloadCount
    }

    @Test(arguments: Backend.allCases)
    func pullsByTagAndDigestAddUp(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let app = key("app")
        try await m.createRepository(app, at: 0)
        let one = manifest("one")
        _ = try await m.putManifest(ManifestPut(record: one, blobs: [], manifests: [], tag: "v1"), in: app)
        #expect(try await count(m, one.digest, in: app) == 0)
        try await m.recordPulls([ImagePulls(repository: app, digest: one.digest, lastPulledAt: 10, byTag: 3, byDigest: 2)])
        #expect(try await count(m, one.digest, in: app) == 5)
        // Only excluded principals pulled: the time stays, the downloads count.
        try await m.recordPulls([ImagePulls(repository: app, digest: one.digest, lastPulledAt: nil, byTag: 1)])
        let image = try #require(try await m.image(one.digest, in: app))
        #expect(image.downloadCount == 6 && image.lastPulledAt == 10)
        // An older time never moves the pull time back; the count is still added.
        try await m.recordPulls([ImagePulls(repository: app, digest: one.digest, lastPulledAt: 4, byDigest: 1)])
        #expect(try await m.image(one.digest, in: app)?.lastPulledAt == 10)
        #expect(try await count(m, one.digest, in: app) == 7)
        // Pushing the same manifest again (another tag) keeps its count; an image that is not there is skipped.
        _ = try await m.putManifest(ManifestPut(record: one, blobs: [], manifests: [], tag: "v1-again"), in: app)
        try await m.recordPulls([ImagePulls(repository: app, digest: manifest("absent").digest, lastPulledAt: 11, byTag: 1),
                                 ImagePulls(repository: key("nope"), digest: one.digest, lastPulledAt: 11, byTag: 1)])
        #expect(try await count(m, one.digest, in: app) == 7)
        #expect(try await m.images(in: app, after: nil, limit: 10).map(\.downloadCount) == [7])
        // A deleted image takes its downloads with it: pushed again, it starts from 0.
        guard case .deleted = try await m.deleteImage(.digest(one.digest), in: app, events: { _ in [] }) else {
            Issue.record("the image was not deleted"); return
        }
        _ = try await m.putManifest(ManifestPut(record: one, blobs: [], manifests: [], tag: "v1"), in: app)
        #expect(try await count(m, one.digest, in: app) == 0)
    }

    /// A pull of an index is a GET of the index (by tag or digest) and then one of a child, by digest:
    /// one download, the index's. The child GET by digest is not counted; a child pulled by tag is.
    @Test(arguments: Backend.allCases)
    func indexChildrenCountOnlyByTag(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let app = key("multi")
        try await m.createRepository(app, at: 0)
        let amd = manifest("amd64"), arm = manifest("arm64"), alone = manifest("alone")
        let index = ManifestRecord(digest: Digest.sha256(of: Array("index".utf8)), mediaType: MediaType.ociIndex, artifactType: nil,
                                   bytes: Array("index".utf8), subject: nil, annotationsJSON: nil, pushedAt: 2)
        _ = try await m.putManifest(ManifestPut(record: amd, blobs: [], manifests: [], tag: "amd64-only"), in: app)
        _ = try await m.putManifest(ManifestPut(record: arm, blobs: [], manifests: [], tag: nil), in: app)
        _ = try await m.putManifest(ManifestPut(record: alone, blobs: [], manifests: [], tag: nil), in: app)
        _ = try await m.putManifest(ManifestPut(record: index, blobs: [], manifests: [amd.digest, arm.digest], tag: "latest"), in: app)
        try await m.recordPulls([
            ImagePulls(repository: app, digest: index.digest, lastPulledAt: 5, byTag: 2, byDigest: 1),
            ImagePulls(repository: app, digest: amd.digest, lastPulledAt: 5, byTag: 1, byDigest: 2),
            ImagePulls(repository: app, digest: arm.digest, lastPulledAt: 5, byDigest: 1),
            ImagePulls(repository: app, digest: alone.digest, lastPulledAt: 5, byDigest: 4),
        ])
        #expect(try await count(m, index.digest, in: app) == 3)
        #expect(try await count(m, amd.digest, in: app) == 1, "its own tag counts, the GETs by digest of an index's pull do not")
        #expect(try await count(m, arm.digest, in: app) == 0)
        #expect(try await count(m, alone.digest, in: app) == 4, "a manifest no index lists counts by digest")
        #expect(try await m.image(arm.digest, in: app)?.lastPulledAt == 5, "the pull time is recorded for children all the same")
        // The same child manifest in another repository, where no index lists it, counts there.
        let other = key("other")
        try await m.createRepository(other, at: 0)
        _ = try await m.putManifest(ManifestPut(record: arm, blobs: [], manifests: [], tag: nil), in: other)
        try await m.recordPulls([ImagePulls(repository: other, digest: arm.digest, lastPulledAt: 6, byDigest: 1)])
        #expect(try await count(m, arm.digest, in: other) == 1)
        #expect(try await count(m, arm.digest, in: app) == 0)
    }

    /// The gallery's summary sums a repository's images; private repositories are counted but never listed.
    @Test(arguments: Backend.allCases)
    func repositorySummariesSumTheirImages(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let web = key("web"), quiet = key("quiet"), hidden = key("web", public: false)
        for k in [web, quiet, hidden] { try await m.createRepository(k, at: 0) }
        let a = manifest("a"), b = manifest("b")
        _ = try await m.putManifest(ManifestPut(record: a, blobs: [], manifests: [], tag: "a"), in: web)
        _ = try await m.putManifest(ManifestPut(record: b, blobs: [], manifests: [], tag: "b"), in: web)
        _ = try await m.putManifest(ManifestPut(record: a, blobs: [], manifests: [], tag: "a"), in: hidden)
        try await m.recordPulls([ImagePulls(repository: web, digest: a.digest, lastPulledAt: 3, byTag: 4),
                                 ImagePulls(repository: web, digest: b.digest, lastPulledAt: 4, byDigest: 5),
                                 ImagePulls(repository: hidden, digest: a.digest, lastPulledAt: 9, byTag: 100)])
        let all = try await m.publicRepositorySummaries(includingTexts: false)
        #expect(all.map(\.key) == [quiet, web])
        #expect(all.map(\.downloadCount) == [0, 9])
        #expect(try await count(m, a.digest, in: hidden) == 100)
    }

    /// Two nodes sharing the database flush at once: every increment survives (no read-modify-write).
    @Test(arguments: Backend.persistent)
    func nodesFlushingTogetherAddUp(_ backend: Backend) async throws {
        let stores = try await backend.make()
        let first = stores.metadata
        let (_, second) = try #require(try await stores.reopen?())
        let app = key("shared")
        try await first.createRepository(app, at: 0)
        let one = manifest("one"), two = manifest("two")
        for r in [one, two] { _ = try await first.putManifest(ManifestPut(record: r, blobs: [], manifests: [], tag: nil), in: app) }
        let rounds = 20
        try await withThrowingTaskGroup(of: Void.self) { group in
            for node in [first, second] {
                group.addTask {
                    for i in 0..<rounds {
                        try await node.recordPulls([ImagePulls(repository: app, digest: one.digest, lastPulledAt: Double(i), byTag: 1, byDigest: 2),
                                                    ImagePulls(repository: app, digest: two.digest, lastPulledAt: Double(i), byTag: 3)])
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await count(first, one.digest, in: app) == Int64(2 * rounds * 3))
        #expect(try await count(second, two.digest, in: app) == Int64(2 * rounds * 3))
        #expect(try await first.image(one.digest, in: app)?.lastPulledAt == Double(rounds - 1))
    }
}
