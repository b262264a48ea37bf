import BerthCore
import BerthRegistry
import BerthStorage
import Foundation
import Testing

@Suite struct ManifestNegotiationTests {
    let repo = key("team/convert")
    let dockerOnly = AcceptedMediaTypes(list: [MediaType.dockerManifest])
    let ociOnly = AcceptedMediaTypes(list: [MediaType.ociManifest])

    func pushed(_ r: Registry, _ body: String, tag: String, contentType: String) async throws -> Digest {
        try await r.monolithicUpload(repo, digest: sha("c"), contentLength: nil, body: Body("c"))
        try await r.monolithicUpload(repo, digest: sha("l"), contentLength: nil, body: Body("l"))
        return try await r.putManifest(repo, reference: .tag(try Tag(tag)), contentType: contentType, bytes: Array(body.utf8)).digest
    }

    var oci: String {
        """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha("c"))","size":1},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(sha("l"))","size":1}]}
        """
    }

    var docker: String {
        oci.replacingOccurrences(of: MediaType.ociManifest, with: MediaType.dockerManifest)
            .replacingOccurrences(of: MediaType.ociConfig, with: MediaType.dockerConfig)
            .replacingOccurrences(of: "application/vnd.oci.image.layer.v1.tar+gzip", with: "application/vnd.docker.image.rootfs.diff.tar.gzip")
    }

    @Test func storedFormatAcceptedIsServedUnchanged() async throws {
        let r = makeRegistry()
        let d = try await pushed(r, oci, tag: "v1", contentType: MediaType.ociManifest)
        for accepting in [AcceptedMediaTypes.any, ociOnly, AcceptedMediaTypes(list: [MediaType.ociManifest, MediaType.dockerManifest])] {
            let m = try await r.manifest(repo, reference: .tag(try Tag("v1")), accepting: accepting)
            #expect(m.bytes == Array(oci.utf8))
            #expect(m.digest == d && m.mediaType == MediaType.ociManifest && m.acceptable && !m.isConverted)
        }
    }

    @Test func ociPulledByTagAsDockerIsConvertedAndResolvableByItsDigest() async throws {
        let r = makeRegistry()
        let stored = try await pushed(r, oci, tag: "v1", contentType: MediaType.ociManifest)
        let expected = try ManifestConversion.convert(Array(oci.utf8), from: MediaType.ociManifest, to: MediaType.dockerManifest).get()
        // Not served under the converted digest before the conversion was ever served.
        await #expect(throws: BerthError.manifestUnknown(expected.digest.description)) {
            _ = try await r.manifest(self.repo, reference: .digest(expected.digest), accepting: .any)
        }
        let m = try await r.manifest(repo, reference: .tag(try Tag("v1")), accepting: dockerOnly)
        #expect(m.isConverted && m.acceptable)
        #expect(m.mediaType == MediaType.dockerManifest)
        #expect(m.bytes == expected.bytes)
        #expect(m.digest == Digest.sha256(of: m.bytes))
        #expect(m.stored.digest == stored)
        // By digest: no conversion of the stored manifest (as ECR documents) ...
        let byStored = try await r.manifest(repo, reference: .digest(stored), accepting: dockerOnly)
        #expect(!byStored.acceptable && !byStored.isConverted && byStored.bytes == Array(oci.utf8))
        // ... but the digest the client was given resolves to the same bytes.
        let byConverted = try await r.manifest(repo, reference: .digest(m.digest), accepting: dockerOnly)
        #expect(byConverted.bytes == m.bytes && byConverted.digest == m.digest && byConverted.stored.digest == stored)
        // Once the image is deleted, its conversion is gone too.
        try await r.deleteManifest(repo, reference: .digest(stored))
        await #expect(throws: BerthError.manifestUnknown(m.digest.description)) {
            _ = try await r.manifest(self.repo, reference: .digest(m.digest), accepting: .any)
        }
    }

    @Test func dockerPulledByTagAsOCIIsConverted() async throws {
        let r = makeRegistry()
        let stored = try await pushed(r, docker, tag: "d", contentType: MediaType.dockerManifest)
        let m = try await r.manifest(repo, reference: .tag(try Tag("d")), accepting: ociOnly)
        #expect(m.isConverted && m.mediaType == MediaType.ociManifest && m.stored.digest == stored)
        let parsed = try ManifestParser.parse(m.bytes, contentType: MediaType.ociManifest)
        #expect(parsed.config?.mediaType == MediaType.ociConfig)
        #expect(parsed.layers.map(\.mediaType) == ["application/vnd.oci.image.layer.v1.tar+gzip"])
        #expect(parsed.requiredBlobs == [sha("c"), sha("l")])
    }

    @Test func notConvertibleIsMarkedNotAcceptable() async throws {
        let r = makeRegistry()
        let artifact = oci.replacingOccurrences(of: MediaType.ociConfig, with: "application/vnd.example.config.v1+json")
        let stored = try await pushed(r, artifact, tag: "a", contentType: MediaType.ociManifest)
        let m = try await r.manifest(repo, reference: .tag(try Tag("a")), accepting: dockerOnly)
        #expect(!m.acceptable && !m.isConverted && m.digest == stored && m.bytes == Array(artifact.utf8))
        // Neither format accepted: nothing to convert to.
        let none = try await r.manifest(repo, reference: .tag(try Tag("a")), accepting: AcceptedMediaTypes(list: ["application/json"]))
        #expect(!none.acceptable && none.digest == stored)
    }
}
