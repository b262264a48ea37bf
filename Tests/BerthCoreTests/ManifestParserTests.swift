import BerthCore
import Foundation
import Testing

@Suite struct ManifestParserTests {
    static let d1 = "sha256:" + String(repeating: "1", count: 64)
    static let d2 = "sha256:" + String(repeating: "2", count: 64)

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    var ociImage: String {
        """
        {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
         "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(Self.d1)","size":10},
         "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(Self.d2)","size":20}]}
        """
    }

    @Test func parsesOCIImage() throws {
        let m = try ManifestParser.parse(bytes(ociImage), contentType: MediaType.ociManifest)
        #expect(m.mediaType == MediaType.ociManifest)
        #expect(!m.isIndex)
        #expect(m.requiredBlobs.map(\.description) == [Self.d1, Self.d2])
        #expect(m.effectiveArtifactType == MediaType.ociConfig)
    }

    @Test func infersMediaTypeFromContentTypeWhenFieldAbsent() throws {
        let body = """
            {"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(Self.d1)","size":1},"layers":[]}
            """
        let m = try ManifestParser.parse(bytes(body), contentType: MediaType.ociManifest)
        #expect(m.mediaType == MediaType.ociManifest)
        let inferred = try ManifestParser.parse(bytes(body), contentType: nil)
        #expect(inferred.mediaType == MediaType.ociManifest)
    }

    @Test func parsesArtifactWithSubject() throws {
        let body = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sbom",
             "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(Self.d1)","size":2},
             "layers":[{"mediaType":"text/plain","digest":"\(Self.d2)","size":3}],
             "subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(Self.d2)","size":100},
             "annotations":{"org.example":"x"}}
            """
        let m = try ManifestParser.parse(bytes(body), contentType: MediaType.ociManifest)
        #expect(m.effectiveArtifactType == "application/vnd.example.sbom")
        #expect(m.subject?.digest == Self.d2)
        #expect(m.annotations == ["org.example": "x"])
    }

    @Test func parsesIndexAndDockerList() throws {
        let index = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
              {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(Self.d1)","size":5,"platform":{"architecture":"amd64","os":"linux"}}]}
            """
        let m = try ManifestParser.parse(bytes(index), contentType: MediaType.ociIndex)
        #expect(m.isIndex)
        #expect(m.requiredManifests.map(\.description) == [Self.d1])
        #expect(m.requiredBlobs.isEmpty)
        let list = index.replacingOccurrences(of: MediaType.ociIndex, with: MediaType.dockerManifestList)
        #expect(try ManifestParser.parse(bytes(list), contentType: MediaType.dockerManifestList).isIndex)
    }

    @Test func skipsForeignLayers() throws {
        let body = """
            {"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
             "config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\(Self.d1)","size":1},
             "layers":[{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"\(Self.d2)","size":1,"urls":["https://example.com/l"]}]}
            """
        let m = try ManifestParser.parse(bytes(body), contentType: MediaType.dockerManifest)
        #expect(m.requiredBlobs.map(\.description) == [Self.d1])
    }

    @Test func refusesSchema1() {
        let body = #"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[],"history":[]}"#
        #expect(throws: BerthError.self) { try ManifestParser.parse(bytes(body), contentType: MediaType.dockerSchema1Signed) }
        #expect(throws: BerthError.self) { try ManifestParser.parse(bytes(body), contentType: "application/json") }
    }

    @Test(arguments: [
        "not json", "[]", "{}", #"{"schemaVersion":"2"}"#, #"{"schemaVersion":3,"config":{},"layers":[]}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:zz","size":1},"layers":[]}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":-1},"layers":[]}"#,
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json"}"#,
        #"{"schemaVersion":2,"mediaType":"application/x-unknown","manifests":[]}"#,
    ])
    func rejectsInvalid(_ body: String) {
        #expect(throws: BerthError.self) { try ManifestParser.parse(Array(body.utf8), contentType: nil) }
    }

    @Test func rejectsContentTypeMismatch() {
        #expect(throws: BerthError.self) {
            try ManifestParser.parse(bytes(ociImage), contentType: MediaType.dockerManifest)
        }
        #expect(throws: BerthError.self) {
            try ManifestParser.parse(bytes(ociImage), contentType: "text/plain")
        }
    }

    @Test func rejectsOversized() {
        let big = [UInt8](repeating: 0x20, count: ManifestParser.maxSize + 1)
        #expect(throws: BerthError.manifestTooLarge(limit: ManifestParser.maxSize)) {
            try ManifestParser.parse(big, contentType: MediaType.ociManifest)
        }
    }
}
