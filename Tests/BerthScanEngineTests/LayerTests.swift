import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct GzipInflaterTests {
    @Test func inflatesInSmallChunksAndConcatenatedMembers() throws {
        let payload = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 / 7) }
        let compressed = gzip(payload) + gzip(Array("tail".utf8))
        let inflater = try GzipInflater(chunkSize: 1000)
        var out: [UInt8] = []
        var chunks = 0
        for start in stride(from: 0, to: compressed.count, by: 333) {
            try inflater.feed(Array(compressed[start..<min(start + 333, compressed.count)])) { out += $0; chunks += 1 }
        }
        try inflater.finish()
        #expect(out == payload + Array("tail".utf8))
        #expect(chunks > 200)
    }

    @Test func highlyCompressibleInputDrainsFully() throws {
        let payload = [UInt8](repeating: 7, count: 5_000_000)
        let compressed = gzip(payload)
        let inflater = try GzipInflater(chunkSize: 4096)
        var count = 0
        try inflater.feed(compressed) { count += $0.count }
        try inflater.finish()
        #expect(count == payload.count)
    }

    @Test func corruptAndTruncatedInputFailCleanly() throws {
        let compressed = gzip(Array(repeating: 1, count: 10_000))
        var corrupt = compressed
        corrupt[12] ^= 0xff
        corrupt[13] ^= 0xff
        #expect(throws: (any Error).self) {
            let i = try GzipInflater()
            try i.feed(corrupt) { _ in }
            try i.finish()
        }
        #expect(throws: InflateError.truncated) {
            let i = try GzipInflater()
            try i.feed(Array(compressed.prefix(compressed.count / 2))) { _ in }
            try i.finish()
        }
        #expect(throws: InflateError.self) {
            let i = try GzipInflater()
            try i.feed(Array("not gzip at all, just text".utf8)) { _ in }
        }
    }

    @Test func outputLimitStopsBombs() throws {
        let bomb = gzip([UInt8](repeating: 0, count: 10_000_000))
        #expect(throws: InflateError.outputLimitExceeded(1_000_000)) {
            let i = try GzipInflater(maxOutputBytes: 1_000_000)
            try i.feed(bomb) { _ in }
        }
    }
}

@Suite struct TarStreamParserTests {
    func entries(_ bytes: [UInt8], chunk: Int = 13, want: @escaping (TarEntryHeader) -> Bool = { _ in true })
        throws -> [TarEntry]
    {
        var parser = TarStreamParser(wantsContents: want)
        var out: [TarEntry] = []
        for start in stride(from: 0, to: bytes.count, by: chunk) {
            try parser.feed(Array(bytes[start..<min(start + chunk, bytes.count)])) { out.append($0) }
        }
        try parser.finish()
        return out
    }

    @Test func readsUstarGnuAndPaxNames() throws {
        var t = TarBuilder()
        t.directory("etc/")
        t.file("etc/a", "hello")
        let long = String(repeating: "d/", count: 80) + "file"
        t.gnuLongName(long, "gnu")
        t.paxPath("pax/" + long, "pax")
        t.symlink("etc/link", to: "a")
        t.end()
        let e = try entries(t.bytes)
        #expect(e.map(\.header.path) == ["etc/", "etc/a", long, "pax/" + long, "etc/link"])
        #expect(e[1].contents == Array("hello".utf8))
        #expect(e[2].contents == Array("gnu".utf8))
        #expect(e[3].contents == Array("pax".utf8))
        #expect(e[4].header.type == .symbolicLink && e[4].header.linkName == "a")
    }

    @Test func skipsUnwantedContentsAndBoundsCaptures() throws {
        var t = TarBuilder()
        t.file("big", [UInt8](repeating: 1, count: 5000))
        t.file("small", "x")
        t.end()
        var parser = TarStreamParser(limits: .init(maxCaptureBytes: 100), wantsContents: { _ in true })
        var out: [TarEntry] = []
        try parser.feed(t.bytes) { out.append($0) }
        #expect(out[0].contents == nil && out[0].exceededCaptureLimit)
        #expect(out[1].contents == [UInt8(ascii: "x")])
    }

    @Test func truncatedArchivesThrow() throws {
        var t = TarBuilder()
        t.file("a", String(repeating: "z", count: 2000))
        t.end()
        for cut in [100, 512, 700, 1500] {
            #expect(throws: TarError.truncated) { try entries(Array(t.bytes.prefix(cut))) }
        }
        // Ending cleanly between entries without the end marker is accepted.
        #expect(try entries(Array(t.bytes.prefix(512 + 2048))).count == 1)
    }

    @Test func corruptHeadersThrow() {
        #expect(throws: TarError.corruptHeader("checksum mismatch")) {
            try entries(TarBuilder.header(name: "a", size: 0, corruptChecksum: true))
        }
        #expect(throws: TarError.self) {
            try entries([UInt8](repeating: 0x41, count: 512))
        }
        #expect(throws: TarError.self) {
            var t = TarBuilder()
            t.raw([UInt8](repeating: 0, count: 512))
            t.file("after-end-marker", "x")
            _ = try entries(t.bytes)
        }
    }

    @Test func hugeSizesDoNotAllocateOrHang() throws {
        // Base-256 size of 2^62 bytes: skipped without buffering, then reported as truncated.
        var field = [UInt8](repeating: 0, count: 12)
        field[0] = 0x80
        field[4] = 0x40
        var t = TarBuilder()
        t.raw(TarBuilder.header(name: "huge", size: 0, sizeField: field))
        t.raw([UInt8](repeating: 0, count: 4096))
        #expect(throws: TarError.truncated) { try entries(t.bytes) }
        // A negative base-256 size is rejected.
        var negative = field
        negative[0] = 0xff
        #expect(throws: TarError.self) { try entries(TarBuilder.header(name: "neg", size: 0, sizeField: negative)) }
        // A pax header claiming 1 GiB is rejected before reading it.
        #expect(throws: TarError.metadataTooLarge(1 << 30)) {
            try entries(TarBuilder.header(name: "p", size: 1 << 30, type: UInt8(ascii: "x")))
        }
    }

    @Test func malformedPaxRecordsThrow() {
        for body in ["5 path=x\n", "abc\n", "99 path=x\n", "12 pathx\n   "] {
            var t = TarBuilder()
            let data = Array(body.utf8)
            t.raw(TarBuilder.header(name: "p", size: data.count, type: UInt8(ascii: "x")) + TarBuilder.padded(data))
            t.file("a", "x")
            t.end()
            #expect(throws: TarError.self, "\(body)") { try entries(t.bytes) }
        }
    }
}

@Suite struct LayerWalkerTests {
    static let statusA = "Package: a\nStatus: install ok installed\nVersion: 1\n"
    static let statusB = "Package: b\nStatus: install ok installed\nVersion: 2\n"

    @Test func whiteoutsOpaqueDirectoriesAndReplacement() throws {
        var l1 = TarBuilder()
        l1.file("var/lib/dpkg/status", Self.statusA)
        l1.file("usr/lib/python3/dist-packages/x-1.dist-info/METADATA", "Name: x\nVersion: 1\n")
        l1.file("usr/lib/python3/dist-packages/y-1.dist-info/METADATA", "Name: y\nVersion: 1\n")
        l1.file("app/node_modules/ms/package.json", #"{"name":"ms","version":"1.0.0"}"#)
        l1.file("app/node_modules/keep/package.json", #"{"name":"keep","version":"1.0.0"}"#)
        l1.file("etc/unwanted", "not tracked")
        l1.end()
        var l2 = TarBuilder()
        l2.file("var/lib/dpkg/status", Self.statusB)
        l2.whiteout("usr/lib/python3/dist-packages/.wh.x-1.dist-info")
        l2.file("app/node_modules/.wh..wh..opq", "")
        // Same-layer entries are not hidden by the layer's own opaque marker.
        l2.file("app/node_modules/new/package.json", #"{"name":"new","version":"2.0.0"}"#)
        // A file replacing a directory hides everything below it.
        l2.file("usr/lib/python3/dist-packages/y-1.dist-info", "now a file")
        l2.end()
        var walker = LayerWalker()
        try walker.apply(bytes: l1.gzipped)
        try walker.apply(bytes: l2.gzipped, chunk: 100)
        let paths = walker.index.catalogFiles().map(\.path)
        #expect(paths == ["app/node_modules/new/package.json", "var/lib/dpkg/status"])
        #expect(walker.index["var/lib/dpkg/status"] == .file(Array(Self.statusB.utf8)))
        #expect(walker.layersApplied == 2)
    }

    @Test func unsafePathsAreIgnored() throws {
        var t = TarBuilder()
        t.file("/var/lib/dpkg/status", Self.statusA)
        t.file("../var/lib/dpkg/status", Self.statusA)
        t.file("var/lib/../../var/lib/dpkg/status", Self.statusA)
        t.file("./var//lib/./dpkg/status", Self.statusB)
        t.end()
        var walker = LayerWalker()
        try walker.apply(bytes: t.bytes)
        #expect(walker.index.catalogFiles().map(\.path) == ["var/lib/dpkg/status"])
        #expect(walker.index["var/lib/dpkg/status"] == .file(Array(Self.statusB.utf8)))
        #expect(walker.issues.count == 3)
    }

    @Test func symlinksResolveAndLoopsDoNot() throws {
        var t = TarBuilder()
        t.file("usr/lib/os-release", "ID=debian\nVERSION_ID=12\n")
        t.symlink("etc/os-release", to: "../usr/lib/os-release")
        t.symlink("var/lib/dpkg/status", to: "/var/lib/dpkg/status.d/loop")
        t.symlink("var/lib/dpkg/status.d/loop", to: "../status")
        t.end()
        var walker = LayerWalker()
        try walker.apply(bytes: t.bytes)
        let files = walker.index.catalogFiles()
        #expect(files.map(\.path) == ["etc/os-release", "usr/lib/os-release"])
        #expect(walker.index.resolve("var/lib/dpkg/status") == nil)
    }

    @Test func hardLinksCopyTheirTarget() throws {
        var t = TarBuilder()
        t.file("var/lib/dpkg/status.d/a", Self.statusA)
        t.hardlink("var/lib/dpkg/status", to: "var/lib/dpkg/status.d/a")
        t.end()
        var walker = LayerWalker()
        try walker.apply(bytes: t.bytes)
        #expect(walker.index["var/lib/dpkg/status"] == .file(Array(Self.statusA.utf8)))
    }

    @Test func oversizedCatalogFilesAreSkipped() throws {
        var t = TarBuilder()
        t.file("var/lib/dpkg/status", [UInt8](repeating: UInt8(ascii: "a"), count: 3000))
        t.end()
        var walker = LayerWalker(limits: .init(maxCatalogFileBytes: 1024))
        try walker.apply(bytes: t.gzipped)
        #expect(walker.index.nodes.isEmpty)
        #expect(walker.issues.count == 1)
    }

    @Test func brokenLayersFailWithoutChangingTheIndex() throws {
        var good = TarBuilder()
        good.file("var/lib/dpkg/status", Self.statusA)
        good.end()
        var walker = LayerWalker()
        try walker.apply(bytes: good.gzipped)
        let before = walker.index

        var bad = TarBuilder()
        bad.file("var/lib/dpkg/status", Self.statusB)
        bad.end()
        let gz = bad.gzipped
        #expect(throws: LayerError.inflate(.truncated)) { try walker.apply(bytes: Array(gz.prefix(gz.count - 6))) }
        var flipped = gz
        flipped[gz.count / 2] ^= 0x55
        #expect(throws: LayerError.self) { try walker.apply(bytes: flipped) }
        #expect(throws: LayerError.tar(.truncated)) { try walker.apply(bytes: gzip(Array(bad.bytes.prefix(700)))) }
        #expect(throws: LayerError.tar(.truncated)) { try walker.apply(bytes: []) }
        // zstd is read now; a damaged frame fails like damaged gzip.
        #expect(throws: LayerError.self) { try walker.apply(bytes: [0x28, 0xb5, 0x2f, 0xfd, 0]) }
        #expect(throws: LayerError.self) { try walker.apply(bytes: Array(repeating: 0x42, count: 2000)) }
        #expect(walker.index == before)
        #expect(walker.layersApplied == 1)
    }
}

@Suite(.enabled(if: Fixtures.available, "shared fixtures not found; set BERTH_FIXTURES"))
struct TinyImageLayerTests {
    @Test func walksTheTwoLayers() throws {
        let layout = OCIImageLayout(root: Fixtures.url("images/debian-tiny-vuln"))
        let layers = try layout.layers(tag: "1")
        #expect(layers.count == 2)
        var walker = LayerWalker()
        for layer in layers { try walker.apply(layerFile: layer.url) }
        #expect(walker.index.catalogFiles().map(\.path) == [
            "etc/os-release",
            "usr/lib/os-release",
            "usr/local/lib/node_modules/ms/package.json",
            "usr/local/lib/python3.11/dist-packages/requests-2.19.1.dist-info/METADATA",
            "var/lib/dpkg/status",
            "var/lib/dpkg/status.d/libgcc-s1",
        ])
        #expect(walker.issues.isEmpty)
        #expect(throws: OCILayoutError.self) { try layout.layers(tag: "nope") }
        #expect(throws: OCILayoutError.self) { try layout.blobURL("sha256:../../etc/passwd") }
    }
}

@Suite struct PushedLayerWalkerTests {
    static func layer() -> TarBuilder {
        var t = TarBuilder()
        t.file("var/lib/dpkg/status", LayerWalkerTests.statusA)
        t.file("app/node_modules/ms/package.json", #"{"name":"ms","version":"1.0.0"}"#)
        t.end()
        return t
    }

    /// Pushing chunks of any size, down to single bytes (the compression is told from the first 4 bytes however
    /// they arrive), gives the same index as reading the layer whole.
    @Test(arguments: [1, 3, 4, 512, 1 << 20])
    func pushedChunksOfAnySizeGiveTheSameIndex(chunk: Int) throws {
        for bytes in [Self.layer().gzipped, zstd(Self.layer().bytes), Self.layer().bytes] {
            var whole = LayerWalker()
            try whole.apply(bytes: bytes, chunk: 1 << 30)
            var pushed = LayerWalker()
            try pushed.beginLayer(mediaType: nil)
            for start in stride(from: 0, to: bytes.count, by: chunk) {
                try pushed.feed(Array(bytes[start..<min(start + chunk, bytes.count)]))
            }
            try pushed.finishLayer()
            #expect(pushed.index == whole.index)
            #expect(pushed.issues == whole.issues)
            #expect(pushed.layersApplied == 1)
            #expect(pushed.index.catalogFiles().map(\.path) == ["app/node_modules/ms/package.json", "var/lib/dpkg/status"])
        }
    }

    @Test func aPlainTarWantsNothingAfterItsEndMarkerButACompressedLayerIsReadToItsTrailer() throws {
        let t = Self.layer()
        var w = LayerWalker()
        try w.beginLayer(mediaType: "application/vnd.oci.image.layer.v1.tar")
        #expect(try w.feed(Array(t.bytes.prefix(512))))
        #expect(try w.feed(Array(t.bytes.dropFirst(512)) + [UInt8](repeating: 0x41, count: 4096)) == false)
        #expect(try w.feed([1, 2, 3]) == false)
        try w.finishLayer()
        #expect(w.index.catalogFiles().count == 2)
        var g = LayerWalker()
        try g.beginLayer(mediaType: nil)
        let gz = t.gzipped
        #expect(try g.feed(Array(gz.dropLast(8))))
        #expect(throws: LayerError.inflate(.truncated)) { try g.finishLayer() }
    }

    /// A failing push abandons the layer: the index and counters stay as before, and the walker takes the next layer.
    @Test func aFailedOrAbandonedLayerChangesNothing() throws {
        var w = LayerWalker()
        try w.apply(bytes: Self.layer().gzipped)
        let before = w.index
        var other = TarBuilder()
        other.file("var/lib/dpkg/status", LayerWalkerTests.statusB)
        other.end()
        let gz = other.gzipped
        try w.beginLayer(mediaType: nil)
        try w.feed(Array(gz.prefix(gz.count - 20)))
        var flipped = Array(gz.suffix(20))
        flipped[0] ^= 0xff
        #expect(throws: LayerError.self) { try w.feed(flipped); try w.finishLayer() }
        #expect(w.index == before && w.layersApplied == 1)
        #expect(throws: LayerError.unreadable("no layer in progress")) { try w.feed([0]) }
        try w.beginLayer(mediaType: nil)
        try w.feed(gz)
        w.abandonLayer()
        #expect(w.index == before && w.layersApplied == 1)
        #expect(throws: LayerError.unreadable("no layer in progress")) { try w.finishLayer() }
        try w.beginLayer(mediaType: nil)
        #expect(throws: LayerError.tar(.truncated)) { try w.finishLayer() }
        try w.apply(bytes: gz)
        #expect(w.index["var/lib/dpkg/status"] == .file(Array(LayerWalkerTests.statusB.utf8)))
        #expect(w.layersApplied == 2)
    }

    /// The limits hold for pushed bytes too: decompressed size and plain-tar size.
    @Test func limitsHoldWhenPushed() throws {
        var t = TarBuilder()
        t.file("blob", [UInt8](repeating: 0x41, count: 3_000_000))
        t.end()
        let big = t.bytes
        var w = LayerWalker(limits: .init(maxLayerBytes: 1_000_000))
        try w.beginLayer(mediaType: nil)
        #expect(throws: LayerError.inflate(.outputLimitExceeded(1_000_000))) {
            for start in stride(from: 0, to: big.count, by: 65_536) { try w.feed(Array(big[start..<min(start + 65_536, big.count)])) }
        }
        try w.beginLayer(mediaType: nil)
        let gz = gzip(big)
        #expect(throws: LayerError.inflate(.outputLimitExceeded(1_000_000))) { try w.feed(gz) }
        #expect(w.layersApplied == 0)
    }
}
