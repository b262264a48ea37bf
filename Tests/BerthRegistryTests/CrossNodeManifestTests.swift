import BerthCore
import BerthRegistry
import BerthStorage
import Testing

/// Manifest GETs where several nodes share the metadata (`RegistrySettings.sharedMetadata`): each node keeps
/// manifest bodies in its cache, and checks on every request what the reference names now
/// (`Registry.checkedManifest`), so a change made through another node is seen at once — before any change
/// notification could arrive (here there is none).
@Suite struct CrossNodeManifestTests {
    let repo = key("nodes/app")

    func nodes() -> (Registry, Registry) {
        let blobs = InMemoryBlobStore()
        let metadata = InMemoryMetadataStore()
        return (Registry(blobs: blobs, metadata: metadata), Registry(blobs: blobs, metadata: metadata))
    }

    func manifest(_ layer: Digest) -> [UInt8] {
        Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha("c"))","size":1},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":1}]}
            """.utf8)
    }

    @Test func changesThroughOneNodeAreSeenAtOnceOnTheOther() async throws {
        let (a, b) = nodes()
        for s in ["c", "l1", "l2"] {
            try await a.monolithicUpload(repo, digest: sha(s), contentLength: nil, body: Body(s))
        }
        let tag = Reference.tag(try Tag("v1"))
        let first = try await a.putManifest(repo, reference: tag, contentType: nil, bytes: manifest(sha("l1"))).digest
        #expect(try await b.manifest(repo, reference: tag).digest == first)  // now in b's cache
        // The tag moves through a.
        let second = try await a.putManifest(repo, reference: tag, contentType: nil, bytes: manifest(sha("l2"))).digest
        #expect(try await b.manifest(repo, reference: tag).digest == second)
        #expect(try await b.manifest(repo, reference: tag).bytes == manifest(sha("l2")))
        #expect(try await b.manifest(repo, reference: .digest(first)).digest == first)
        // Archived through a: b refuses the pull.
        _ = try await a.updateImageStorageClass(first, in: repo, to: .archive, at: 100)
        await #expect(throws: BerthError.imageArchived(first.description)) {
            _ = try await b.manifest(self.repo, reference: .digest(first))
        }
        // Deleted through a: gone on b.
        try await a.deleteManifest(repo, reference: .digest(second))
        await #expect(throws: BerthError.manifestUnknown("v1")) { _ = try await b.manifest(self.repo, reference: tag) }
        await #expect(throws: BerthError.manifestUnknown(second.description)) {
            _ = try await b.manifest(self.repo, reference: .digest(second))
        }
        // Pushed again: found, with its new push.
        _ = try await a.putManifest(repo, reference: tag, contentType: nil, bytes: manifest(sha("l2")))
        #expect(try await b.manifest(repo, reference: tag).digest == second)
    }
}
