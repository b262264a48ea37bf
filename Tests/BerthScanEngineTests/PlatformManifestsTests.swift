import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct PlatformManifestsTests {
    static func d(_ c: Character) -> String { "sha256:" + String(repeating: c, count: 64) }

    /// What BuildKit pushes for `docker buildx build --platform linux/amd64,linux/arm64 --provenance=true`.
    static let ociIndex = """
    {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("a"))","size":100,"platform":{"architecture":"amd64","os":"linux"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("b"))","size":101,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("c"))","size":102,"platform":{"architecture":"unknown","os":"unknown"},
      "annotations":{"vnd.docker.reference.digest":"\(d("a"))","vnd.docker.reference.type":"attestation-manifest"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("e"))","size":103,"platform":{"architecture":"amd64","os":"linux"},
      "annotations":{"vnd.docker.reference.type":"attestation-manifest"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("f"))","size":104,"artifactType":"application/vnd.example.sbom"},
     {"mediaType":"application/vnd.oci.image.index.v1+json","digest":"\(d("1"))","size":105,"platform":{"architecture":"amd64","os":"linux"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("a"))","size":100,"platform":{"architecture":"amd64","os":"linux"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../etc","size":1,"platform":{"architecture":"amd64","os":"linux"}},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("2"))","size":1},
     {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(d("3"))","size":106,"platform":{"architecture":"amd64","os":"windows","os.version":"10.0.20348.2227"}}
    ]}
    """

    @Test func ociIndexSkipsAttestationsArtifactsAndDuplicates() throws {
        let s = try PlatformManifests.select(fromIndex: Data(Self.ociIndex.utf8))
        #expect(s.manifests.map(\.digest) == [Self.d("a"), Self.d("b"), Self.d("3")])
        #expect(s.manifests.map(\.platform.description) == ["linux/amd64", "linux/arm64/v8", "windows/amd64"])
        #expect(s.manifests[2].platform.osVersion == "10.0.20348.2227")
        #expect(s.manifests[0].size == 100)
        #expect(s.skipped.map(\.reason) == [
            "attestation manifest", "attestation manifest", "artifact application/vnd.example.sbom", "nested index",
            "duplicate digest", "invalid digest", "no platform",
        ])
    }

    @Test func dockerManifestList() throws {
        let list = """
        {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
         {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\(Self.d("a"))","size":528,"platform":{"architecture":"amd64","os":"linux"}},
         {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"\(Self.d("b"))","size":528,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},
         {"mediaType":"application/vnd.docker.distribution.manifest.v1+json","digest":"\(Self.d("c"))","size":528,"platform":{"architecture":"386","os":"linux"}}
        ]}
        """
        let s = try PlatformManifests.select(fromIndex: Data(list.utf8))
        #expect(s.manifests.map(\.platform) == [ImagePlatform(os: "linux", architecture: "amd64"),
                                                ImagePlatform(os: "linux", architecture: "arm", variant: "v7")])
        #expect(s.manifests.allSatisfy { $0.mediaType == "application/vnd.docker.distribution.manifest.v2+json" })
        #expect(s.skipped.count == 1)
    }

    @Test func nonIndexesAreRejected() throws {
        let inputs = [
            "", "[]", "{}", "not json",
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"x"},"layers":[]}"#,
            #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":"x"}"#,
            #"{"schemaVersion":2,"mediaType":"text/plain","manifests":[]}"#,
        ]
        for input in inputs {
            #expect(throws: PlatformIndexError.self, "\(input)") { try PlatformManifests.select(fromIndex: Data(input.utf8)) }
        }
        // An index without mediaType (allowed by the OCI spec) and without entries is valid and empty.
        #expect(try PlatformManifests.select(fromIndex: Data(#"{"schemaVersion":2,"manifests":[]}"#.utf8)).manifests.isEmpty)
    }
}
