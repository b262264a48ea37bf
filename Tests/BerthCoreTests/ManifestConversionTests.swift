import BerthCore
import Foundation
import Testing

@Suite struct ManifestConversionTests {
    static let c = "sha256:" + String(repeating: "c", count: 64)
    static let l1 = "sha256:" + String(repeating: "1", count: 64)
    static let l2 = "sha256:" + String(repeating: "2", count: 64)
    static let l3 = "sha256:" + String(repeating: "3", count: 64)

    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
    func text(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }

    func convert(_ s: String, from: String, to: String) throws -> ManifestConversion.Converted {
        try ManifestConversion.convert(bytes(s), from: from, to: to).get()
    }

    func refusal(_ s: String, from: String, to: String) -> String? {
        if case .failure(let r) = ManifestConversion.convert(bytes(s), from: from, to: to) { return r.reason }
        return nil
    }

    /// An OCI image as a client might write it: spaces, another key order, no top-level mediaType.
    var ociImage: String {
        """
        { "layers": [
            {"size": 20, "digest": "\(Self.l1)", "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "\(Self.l2)", "size": 30},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", "digest": "\(Self.l3)", "size": 40,
             "urls": ["https://example.com/l3?a=\\"b\\"&c=\\u0001"]}],
          "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 10, "digest": "\(Self.c)"},
          "schemaVersion": 2 }
        """
    }

    var expectedDocker: String {
        #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","#
            + #""config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":10,"digest":"\#(Self.c)"},"#
            + #""layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":20,"digest":"\#(Self.l1)"},"#
            + #"{"mediaType":"application/vnd.docker.image.rootfs.diff.tar","size":30,"digest":"\#(Self.l2)"},"#
            + #"{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":40,"digest":"\#(Self.l3)","#
            + #""urls":["https://example.com/l3?a=\"b\"&c=\u0001"]}]}"#
    }

    var expectedOCI: String {
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#
            + #""config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Self.c)","size":10},"#
            + #""layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Self.l1)","size":20},"#
            + #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(Self.l2)","size":30},"#
            + #"{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"\#(Self.l3)","size":40,"#
            + #""urls":["https://example.com/l3?a=\"b\"&c=\u0001"]}]}"#
    }

    @Test func ociToDockerMapsEveryTypeIntoCanonicalBytes() throws {
        let d = try convert(ociImage, from: MediaType.ociManifest, to: MediaType.dockerManifest)
        #expect(text(d.bytes) == expectedDocker)
        #expect(d.mediaType == MediaType.dockerManifest)
        #expect(d.digest == Digest.sha256(of: d.bytes))
        // The result is a valid Docker manifest for Berth's own parser, with the same blobs.
        let parsed = try ManifestParser.parse(d.bytes, contentType: MediaType.dockerManifest)
        #expect(parsed.mediaType == MediaType.dockerManifest)
        #expect(parsed.config?.mediaType == MediaType.dockerConfig)
        #expect(parsed.layers.map(\.digest) == [Self.l1, Self.l2, Self.l3])
        // The urls survive JSON decoding unchanged.
        #expect(parsed.layers[2].urls == ["https://example.com/l3?a=\"b\"&c=\u{01}"])
    }

    @Test func dockerToOCIAndRoundTrips() throws {
        let d = try convert(ociImage, from: MediaType.ociManifest, to: MediaType.dockerManifest)
        let o = try convert(text(d.bytes), from: MediaType.dockerManifest, to: MediaType.ociManifest)
        #expect(text(o.bytes) == expectedOCI)
        #expect(o.digest == Digest.sha256(of: Array(expectedOCI.utf8)))
        #expect(try ManifestParser.parse(o.bytes, contentType: MediaType.ociManifest).mediaType == MediaType.ociManifest)
        // Canonical forms round-trip byte for byte, both ways.
        #expect(try convert(text(o.bytes), from: MediaType.ociManifest, to: MediaType.dockerManifest) == d)
        #expect(try convert(expectedOCI, from: MediaType.ociManifest, to: MediaType.dockerManifest).bytes == d.bytes)
        #expect(try convert(expectedDocker, from: MediaType.dockerManifest, to: MediaType.ociManifest).bytes == o.bytes)
    }

    @Test func deterministic() throws {
        let a = try convert(ociImage, from: MediaType.ociManifest, to: MediaType.dockerManifest)
        for _ in 0..<20 {
            #expect(try convert(ociImage, from: MediaType.ociManifest, to: MediaType.dockerManifest) == a)
        }
    }

    @Test func dockerManifestAsDockerWritesIt() throws {
        // Docker's own formatting (3-space indent) converts to the same canonical OCI bytes.
        let docker = """
            {
               "schemaVersion": 2,
               "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
               "config": {
                  "mediaType": "application/vnd.docker.container.image.v1+json",
                  "size": 10,
                  "digest": "\(Self.c)"
               },
               "layers": [
                  {
                     "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                     "size": 20,
                     "digest": "\(Self.l1)"
                  }
               ]
            }
            """
        let o = try convert(docker, from: MediaType.dockerManifest, to: MediaType.ociManifest)
        #expect(text(o.bytes) == #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#
                + #""config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Self.c)","size":10},"#
                + #""layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Self.l1)","size":20}]}"#)
    }

    @Test func counterparts() {
        #expect(ManifestConversion.counterpart(of: MediaType.ociManifest) == MediaType.dockerManifest)
        #expect(ManifestConversion.counterpart(of: MediaType.dockerManifest) == MediaType.ociManifest)
        #expect(ManifestConversion.counterpart(of: MediaType.ociIndex) == nil)
        #expect(ManifestConversion.counterpart(of: MediaType.dockerManifestList) == nil)
        #expect(ManifestConversion.counterpart(of: MediaType.dockerSchema1Signed) == nil)
    }

    func oci(layers: String = #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Self.l1)","size":1}]"#,
             config: String = #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Self.c)","size":1}"#,
             extra: String = "") -> String {
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":\#(config),"layers":\#(layers)\#(extra)}"#
    }

    @Test func refusesWhatDockerCannotExpress() {
        let to = MediaType.dockerManifest, from = MediaType.ociManifest
        #expect(refusal(oci(extra: #","annotations":{"a":"b"}"#), from: from, to: to) == "field annotations has no equivalent in \(to)")
        #expect(refusal(oci(extra: #","subject":{"mediaType":"x","digest":"\#(Self.l2)","size":1}"#), from: from, to: to)
                == "field subject has no equivalent in \(to)")
        #expect(refusal(oci(extra: #","artifactType":"application/vnd.example""#), from: from, to: to)
                == "field artifactType has no equivalent in \(to)")
        // An artifact: empty config.
        #expect(refusal(oci(config: #"{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\#(Self.c)","size":2}"#),
                        from: from, to: to) == "config media type application/vnd.oci.empty.v1+json is not an image config")
        // Helm chart config.
        #expect(refusal(oci(config: #"{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"\#(Self.c)","size":2}"#),
                        from: from, to: to) != nil)
        // zstd has no Docker schema 2 type.
        #expect(refusal(oci(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"\#(Self.l1)","size":1}]"#),
                        from: from, to: to)
                == "layers[0] media type application/vnd.oci.image.layer.v1.tar+zstd has no equivalent in \(to)")
        // Layer annotations (e.g. estargz TOC digests) would be lost.
        #expect(refusal(oci(layers: #"[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(Self.l1)","size":1,"annotations":{"k":"v"}}]"#),
                        from: from, to: to) == "layers[0] field annotations has no equivalent in \(to)")
        #expect(refusal(oci(config: #"{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(Self.c)","size":1,"annotations":{"k":"v"}}"#),
                        from: from, to: to) == "config field annotations has no equivalent in \(to)")
        // Schema 2 needs a layer.
        #expect(refusal(oci(layers: "[]"), from: from, to: to) == "a Docker image manifest must have at least one layer")
    }

    @Test func refusesOtherShapes() {
        let docker = #"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","#
            + #""config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"\#(Self.c)","size":1},"#
            + #""layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"\#(Self.l1)","size":1}]}"#
        // Indexes and lists, schema 1, and same-format "conversions" are not offered.
        #expect(refusal(#"{"schemaVersion":2,"manifests":[]}"#, from: MediaType.ociIndex, to: MediaType.dockerManifestList) != nil)
        #expect(refusal(docker, from: MediaType.dockerManifest, to: MediaType.dockerSchema1Signed) != nil)
        #expect(refusal(docker, from: MediaType.dockerManifest, to: MediaType.dockerManifest) != nil)
        // The body must be what the stored type says.
        #expect(refusal(docker, from: MediaType.ociManifest, to: MediaType.dockerManifest)
                == "the manifest's mediaType \(MediaType.dockerManifest) is not \(MediaType.ociManifest)")
        // Unknown Docker layer types (containerd's non-standard zstd) and unknown fields are refused.
        #expect(refusal(docker.replacingOccurrences(of: "rootfs.diff.tar.gzip", with: "rootfs.diff.tar.zstd"),
                        from: MediaType.dockerManifest, to: MediaType.ociManifest) != nil)
        #expect(refusal(docker.replacingOccurrences(of: #""schemaVersion":2,"#, with: #""schemaVersion":2,"extra":1,"#),
                        from: MediaType.dockerManifest, to: MediaType.ociManifest) == "field extra has no equivalent in \(MediaType.ociManifest)")
        // Garbage is a refusal, not a crash.
        #expect(refusal("not json", from: MediaType.dockerManifest, to: MediaType.ociManifest) != nil)
        #expect(refusal(#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"x","size":1.5},"layers":[]}"#,
                        from: MediaType.dockerManifest, to: MediaType.ociManifest) != nil)
        #expect(refusal(#"{"schemaVersion":1}"#, from: MediaType.dockerManifest, to: MediaType.ociManifest) != nil)
    }

    @Test func acceptHeaderParsing() {
        #expect(AcceptedMediaTypes(acceptHeaders: []) == .any)
        #expect(AcceptedMediaTypes(acceptHeaders: ["*/*"]) == .any)
        #expect(AcceptedMediaTypes(acceptHeaders: [MediaType.dockerManifest, "*/*;q=0.1"]) == .any)
        let a = AcceptedMediaTypes(acceptHeaders: ["\(MediaType.dockerManifest), application/vnd.docker.distribution.manifest.v1+prettyjws;q=0.5",
                                                   "\(MediaType.ociManifest);q=0"])
        #expect(a.accepts(MediaType.dockerManifest))
        #expect(a.accepts(MediaType.dockerSchema1Signed))
        #expect(!a.accepts(MediaType.ociManifest))
        #expect(AcceptedMediaTypes(list: nil) == .any)
        #expect(!AcceptedMediaTypes(list: [MediaType.ociManifest]).accepts(MediaType.dockerManifest))
    }
}
