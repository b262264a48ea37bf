import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct ZstdDecompressorTests {
    @Test func decompressesInSmallChunksAndConcatenatedFrames() throws {
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 7) }
        let compressed = zstd(payload) + zstd(Array("tail".utf8))
        let d = try ZstdDecompressor(chunkSize: 1000)
        var out: [UInt8] = []
        for start in stride(from: 0, to: compressed.count, by: 333) {
            try d.feed(Array(compressed[start..<min(start + 333, compressed.count)])) { out += $0 }
        }
        try d.finish()
        #expect(out == payload + Array("tail".utf8))
    }

    @Test func highlyCompressibleInputDrainsFully() throws {
        let compressed = zstd([UInt8](repeating: 7, count: 5_000_000))
        let d = try ZstdDecompressor(chunkSize: 4096)
        var count = 0
        try d.feed(compressed) { count += $0.count }
        try d.finish()
        #expect(count == 5_000_000)
    }

    @Test func corruptTruncatedAndBombsFailCleanly() throws {
        let compressed = zstd((0..<100_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(throws: InflateError.truncated) {
            let d = try ZstdDecompressor()
            try d.feed(Array(compressed.prefix(compressed.count / 2))) { _ in }
            try d.finish()
        }
        var corrupt = compressed
        for k in stride(from: 20, to: corrupt.count - 8, by: 50) { corrupt[k] ^= 0x5a }
        #expect(throws: InflateError.self) {
            let d = try ZstdDecompressor()
            try d.feed(corrupt) { _ in }
            try d.finish()
        }
        #expect(throws: InflateError.self) {
            let d = try ZstdDecompressor()
            try d.feed([0x28, 0xb5, 0x2f, 0xfd] + Array(repeating: 0xff, count: 64)) { _ in }
            try d.finish()
        }
        #expect(throws: InflateError.truncated) { try ZstdDecompressor().finish() }
        let bomb = zstd([UInt8](repeating: 0, count: 20_000_000))
        #expect(throws: InflateError.outputLimitExceeded(1_000_000)) {
            let d = try ZstdDecompressor(maxOutputBytes: 1_000_000)
            try d.feed(bomb) { _ in }
        }
    }

    @Test func compressionFromMediaTypeAndMagic() {
        #expect(LayerCompression(mediaType: "application/vnd.oci.image.layer.v1.tar+zstd") == .zstd)
        #expect(LayerCompression(mediaType: "application/vnd.oci.image.layer.v1.tar+gzip") == .gzip)
        #expect(LayerCompression(mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip") == .gzip)
        #expect(LayerCompression(mediaType: "application/vnd.oci.image.layer.v1.tar") == LayerCompression.none)
        #expect(LayerCompression(mediaType: "application/vnd.oci.image.config.v1+json") == nil)
        #expect(LayerCompression(sniffing: [0x28, 0xb5, 0x2f, 0xfd, 1]) == .zstd)
        #expect(LayerCompression(sniffing: [0x1f, 0x8b, 8]) == .gzip)
        #expect(LayerCompression(sniffing: Array("etc/".utf8)) == LayerCompression.none)
        #expect(LayerCompression(sniffing: []) == LayerCompression.none)
    }
}

@Suite struct ZstdLayerWalkerTests {
    static let status = "Package: a\nStatus: install ok installed\nVersion: 1\n"

    @Test func appliesZstdLayersChunkedAndReportsMediaTypeMismatch() throws {
        var t = TarBuilder()
        t.file("var/lib/dpkg/status", Self.status)
        t.end()
        var walker = LayerWalker()
        try walker.apply(bytes: zstd(t.bytes), chunk: 7)
        #expect(walker.index["var/lib/dpkg/status"] == .file(Array(Self.status.utf8)))
        #expect(walker.issues.isEmpty)

        // A layer labelled gzip that is zstd is read as zstd, and the mismatch reported.
        var w2 = LayerWalker()
        let bytes = zstd(t.bytes)
        var offset = 0
        try w2.apply(mediaType: "application/vnd.oci.image.layer.v1.tar+gzip") { () throws(LayerError) -> [UInt8]? in
            guard offset < bytes.count else { return nil }
            defer { offset = bytes.count }
            return bytes
        }
        #expect(w2.index["var/lib/dpkg/status"] != nil)
        #expect(w2.issues.count == 1)
        #expect(w2.issues.first?.reason.contains("media type says gzip") == true)
    }

    @Test func encryptedAndUnknownCompressionMediaTypesAreRejected() throws {
        var t = TarBuilder()
        t.file("a", "x")
        t.end()
        for type in ["application/vnd.oci.image.layer.v1.tar+gzip+encrypted", "application/vnd.oci.image.layer.v1.tar+bzip2"] {
            var w = LayerWalker()
            #expect(throws: LayerError.unsupportedCompression(type)) {
                try w.apply(mediaType: type) { () throws(LayerError) -> [UInt8]? in t.bytes }
            }
            #expect(w.layersApplied == 0)
        }
    }

    @Test func truncatedAndCorruptZstdLayersLeaveTheIndexUnchanged() throws {
        var good = TarBuilder()
        good.file("var/lib/dpkg/status", Self.status)
        good.end()
        var walker = LayerWalker()
        try walker.apply(bytes: zstd(good.bytes))
        let before = walker.index
        var bad = TarBuilder()
        bad.file("var/lib/dpkg/status", "Package: b\nVersion: 2\n")
        bad.end()
        let z = zstd(bad.bytes)
        #expect(throws: LayerError.inflate(.truncated)) { try walker.apply(bytes: Array(z.prefix(z.count - 4))) }
        var flipped = z
        flipped[z.count / 2] ^= 0x55
        #expect(throws: LayerError.self) { try walker.apply(bytes: flipped) }
        // A complete zstd frame holding a truncated tar.
        #expect(throws: LayerError.tar(.truncated)) { try walker.apply(bytes: zstd(Array(bad.bytes.prefix(700)))) }
        #expect(walker.index == before)
        #expect(walker.layersApplied == 1)
    }

    /// A layer made by the real `tar` and `zstd` tools, in an OCI layout, through ``ImageScanner``.
    @Test  // needs tar, zstd and sha256sum (installed by scripts/test): fails rather than skips without them
    func scansALayerMadeByTheZstdTool() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let rootfs = dir.path("rootfs")
        try dir.write("rootfs/etc/os-release", "ID=alpine\nVERSION_ID=3.19.4\n")
        try dir.write("rootfs/lib/apk/db/installed", ApkCatalogTests.installed)
        try run("tar", ["-C", rootfs.path, "-cf", dir.path("layer.tar").path, "."])
        try run("zstd", ["-q", "-19", dir.path("layer.tar").path, "-o", dir.path("layer.tar.zst").path])
        let layerBytes = [UInt8](try Data(contentsOf: dir.path("layer.tar.zst")))
        #expect(layerBytes.starts(with: [0x28, 0xb5, 0x2f, 0xfd]))
        let layout = dir.path("layout")
        try writeOCILayout(at: layout, tag: "1", layers: [("application/vnd.oci.image.layer.v1.tar+zstd", layerBytes)])
        let db = database(feed: "Alpine", [
            osvRecord(id: "CVE-2099-1", ecosystem: "Alpine:v3.19", name: "openssl", fixed: "3.1.7-r1"),
            osvRecord(id: "CVE-2099-2", ecosystem: "Alpine:v3.20", name: "openssl", fixed: "3.9.0-r0"),
            osvRecord(id: "CVE-2099-3", ecosystem: "Alpine:v3.19", name: "libcrypto3", fixed: "3.9.0-r0"),
        ])
        let report = try ImageScanner(matcher: Matcher(database: db)).scan(layout: layout, tag: "1")
        #expect(report.osEcosystems[.apk] == "Alpine:v3.19")
        #expect(report.packages.filter { $0.kind == .apk }.count == 3)
        #expect(report.layerIssues.isEmpty)
        // libcrypto3 and libssl3 come from origin openssl: both are affected through it, nothing by binary name.
        #expect(report.findings.map { "\($0.package.name) \($0.name) \($0.matchedName) \($0.fixedVersion ?? "-")" } == [
            "libcrypto3 CVE-2099-1 openssl 3.1.7-r1",
            "libssl3 CVE-2099-1 openssl 3.1.7-r1",
        ])
    }
}
