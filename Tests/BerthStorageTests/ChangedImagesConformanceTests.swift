import BerthCore
import BerthStorage
import Testing

/// `imagesChanged` on every backend: what an incremental reconciliation pass reads — images pushed, or
/// that a tag was set on (created or moved there), at or after a time, in one registry, in (repository,
/// digest) order, paged.
@Suite struct ChangedImagesConformance {
    func put(_ m: any MetadataStore, _ key: RepositoryKey, _ name: String, tag: String?, at: Double) async throws -> Digest {
        let d = Digest.sha256(of: Array(name.utf8))
        let rec = ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                                 subject: nil, annotationsJSON: nil, pushedAt: at)
        _ = try await m.putManifest(ManifestPut(record: rec, blobs: [], manifests: [], tag: tag), in: key)
        return d
    }

    func changed(_ m: any MetadataStore, since: Double, limit: Int = 100) async throws -> [String] {
        try await m.imagesChanged(in: registry, since: since, after: nil, limit: limit).map { "\($0.repository)@\($0.image.digest)" }
    }

    @Test(arguments: Backend.allCases)
    func pushedOrTaggedSinceInRepositoryAndDigestOrder(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let other = RepositoryKey(storedRegistryID: "222222222222", name: "a")
        for key in [k("a"), k("b"), other] { try await m.createRepository(key, at: 0) }
        let x = try await put(m, k("a"), "x", tag: "v1", at: 10)
        let y = try await put(m, k("a"), "y", tag: nil, at: 20)
        let z = try await put(m, k("b"), "z", tag: "t", at: 30)
        _ = try await put(m, other, "w", tag: "t", at: 40)

        #expect(try await changed(m, since: 0).count == 3)  // never another registry's
        #expect(try await changed(m, since: 15) == ["a@\(y)", "b@\(z)"])
        #expect(try await changed(m, since: 30) == ["b@\(z)"])
        #expect(try await changed(m, since: 31).isEmpty)

        // A tag moved to an older image (v1 to y at 50): y changed; x (pushed at 10, now untagged) did not.
        _ = try await put(m, k("a"), "y", tag: "v1", at: 50)
        let moved = try await m.imagesChanged(in: registry, since: 45, after: nil, limit: 10)
        #expect(moved.map(\.repository) == ["a"] && moved.map(\.image.digest) == [y] && moved.first?.image.tags == ["v1"])
        #expect(moved.first?.image.pushedAt == 20)
        // The same tag put again on the same image is no change.
        _ = try await put(m, k("a"), "y", tag: "v1", at: 60)
        #expect(try await changed(m, since: 55).isEmpty)
        // A new tag on an old image is one.
        _ = try await put(m, k("a"), "x", tag: "old", at: 70)
        #expect(try await changed(m, since: 65) == ["a@\(x)"])

        // Paged: `limit + 1` rows tell that more follow; `after` is the last one read.
        let first = try await m.imagesChanged(in: registry, since: 0, after: nil, limit: 1)
        #expect(first.count == 2)
        let all = [first[0]] + (try await m.imagesChanged(in: registry, since: 0, after: first[0], limit: 10))
        #expect(all.map { "\($0.repository)@\($0.image.digest)" } == ["a@\(min(x, y))", "a@\(max(x, y))", "b@\(z)"])
        let last = try await m.imagesChanged(in: registry, since: 0, after: all[1], limit: 10)
        #expect(last.map(\.repository) == ["b"])
    }
}
