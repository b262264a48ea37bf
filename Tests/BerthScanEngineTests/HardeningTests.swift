import Foundation
import Testing
@testable import BerthScanEngine

/// Hostile and damaged input: every case either fails with a reason or is skipped; none crashes, hangs or writes.
@Suite struct HardeningTests {
    static let status = "Package: a\nStatus: install ok installed\nVersion: 1\n"

    static func layer() -> TarBuilder {
        var t = TarBuilder()
        t.file("etc/os-release", "ID=debian\nVERSION_ID=12\n")
        t.file("var/lib/dpkg/status", Self.status)
        t.file("usr/lib/python3/dist-packages/x-1.dist-info/METADATA", "Name: x\nVersion: 1\n")
        t.symlink("usr/lib/os-release", to: "../../etc/os-release")
        t.end()
        return t
    }

    /// Random byte flips, truncations and insertions in gzip, zstd and plain layers.
    @Test(arguments: ["gzip", "zstd", "tar"])
    func mutatedLayersNeverCrash(kind: String) throws {
        let tar = Self.layer().bytes
        let original: [UInt8] = kind == "gzip" ? gzip(tar) : kind == "zstd" ? zstd(tar) : tar
        var rng = SystemRandomNumberGenerator()
        var failures = 0
        for round in 0..<300 {
            var bytes = original
            switch round % 3 {
            case 0:
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:
                bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &rng)))
            default:
                bytes.insert(contentsOf: (0..<Int.random(in: 1...600, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) },
                             at: Int.random(in: 0..<bytes.count, using: &rng))
            }
            var walker = LayerWalker()
            do {
                try walker.apply(bytes: bytes, chunk: Int.random(in: 1...4096, using: &rng))
                _ = ImageScanner(matcher: Matcher(database: VulnerabilityDatabase())).scan(index: walker.index)
            } catch {
                failures += 1
                #expect(walker.index == VirtualFileIndex())
                #expect(walker.layersApplied == 0)
            }
        }
        #expect(failures > 0)
    }

    @Test func decompressionBombsStopAtTheLayerLimit() throws {
        var t = TarBuilder()
        t.file("big", [UInt8](repeating: 0, count: 3_000_000))
        t.end()
        let limits = LayerWalker.Limits(maxLayerBytes: 1_000_000)
        for bytes in [gzip(t.bytes), zstd(t.bytes)] {
            var w = LayerWalker(limits: limits)
            #expect(throws: LayerError.inflate(.outputLimitExceeded(1_000_000))) { try w.apply(bytes: bytes, chunk: 65_536) }
        }
        var w = LayerWalker(limits: limits)
        #expect(throws: LayerError.inflate(.outputLimitExceeded(1_000_000))) { try w.apply(bytes: t.bytes, chunk: 65_536) }
    }

    @Test func hugeDeclaredSizesAreNotAllocated() throws {
        // A wanted file claiming 8 GiB: not captured (so never allocated), then the stream ends: truncated.
        var t = TarBuilder()
        t.raw(TarBuilder.header(name: "var/lib/dpkg/status", size: (8 << 30) - 1))
        t.raw([UInt8](repeating: 0x41, count: 10_000))
        var w = LayerWalker()
        #expect(throws: LayerError.tar(.truncated)) { try w.apply(bytes: gzip(t.bytes), chunk: 4096) }
        // The same for an executable that would be searched for Go build information.
        var g = TarBuilder()
        g.raw(TarBuilder.header(name: "usr/bin/x", size: 1 << 29, mode: 0o755))
        g.raw([0x7f, 0x45, 0x4c, 0x46] + [UInt8](repeating: 0xff, count: 100_000))
        #expect(throws: LayerError.tar(.truncated)) { try w.apply(bytes: g.bytes, chunk: 8192) }
        #expect(w.layersApplied == 0)
    }

    @Test func deepPathsAndManyEntries() throws {
        var t = TarBuilder()
        // 400 KB path in a pax header (below the 1 MiB metadata limit), and a GNU long name of 20,000 components.
        t.paxPath(String(repeating: "d/", count: 200_000) + "var/lib/dpkg/status", Self.status)
        t.gnuLongName(String(repeating: "a/", count: 20_000) + "lib/apk/db/installed", "P:x\nV:1\n")
        for k in 0..<30_000 { t.raw(TarBuilder.header(name: "f/\(k)", size: 0)) }
        t.file("var/lib/dpkg/status", Self.status)
        t.end()
        var w = LayerWalker()
        try w.apply(bytes: gzip(t.bytes), chunk: 65_536)
        #expect(w.index.catalogFiles().map(\.path) == ["var/lib/dpkg/status"])
        // Past the metadata limit: a clean failure.
        var u = TarBuilder()
        u.paxPath(String(repeating: "d/", count: 600_000) + "x", "x")
        u.end()
        #expect(throws: LayerError.tar(.metadataTooLarge(1_200_015))) { try w.apply(bytes: u.bytes, chunk: 65_536) }
    }

    @Test func symlinkLoopsChainsAndEscapes() throws {
        var t = TarBuilder()
        t.symlink("var/lib/dpkg/status", to: "status")  // a link to itself
        t.symlink("lib/apk/db/installed", to: "../../../../../../../../etc/apk-db")  // climbs above the root: clamped
        t.file("etc/apk-db", "P:x\nV:1-r0\n")
        t.symlink("etc/os-release", to: "/a")
        for k in 0..<20 { t.symlink(k == 19 ? "z" : (k == 0 ? "a" : "l\(k)"), to: "/l\(k + 1)") }
        t.symlink("usr/lib/os-release", to: "/usr/lib/os-release")
        t.end()
        var w = LayerWalker()
        try w.apply(bytes: t.bytes)
        #expect(w.index.resolve("var/lib/dpkg/status") == nil)
        #expect(w.index.resolve("etc/os-release") == nil)  // longer than 16 hops
        #expect(w.index.resolve("usr/lib/os-release") == nil)
        // etc/apk-db is not a catalog file, so it is not tracked: the escaping link resolves to nothing.
        #expect(w.index.resolve("lib/apk/db/installed") == nil)
        let report = ImageScanner(matcher: Matcher(database: VulnerabilityDatabase())).scan(index: w.index)
        #expect(report.packages.isEmpty)
    }

    @Test func absoluteAndDotDotPathsNeverLeaveTheImage() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let victim = dir.path("victim")
        var t = TarBuilder()
        t.file(victim.path, "absolute")
        t.file("../../../../../../.." + victim.path, "dotdot")
        t.hardlink("var/lib/dpkg/status", to: victim.path)
        t.symlink("etc/os-release", to: victim.path)
        t.file("lib/apk/db/.wh...", "")
        t.file(".wh..wh..opq", "")
        t.end()
        var w = LayerWalker()
        try w.apply(bytes: t.gzipped)
        #expect(!FileManager.default.fileExists(atPath: victim.path))
        #expect(w.index["var/lib/dpkg/status"] == nil)
        #expect(w.issues.count == 3)  // two unsafe paths, one hard link to an untracked file
        // The rpm cataloger opens its database in memory: scanning it creates no file.
        // Other tests running in parallel create and remove their own temporary files meanwhile, so one
        // look can see a stranger's file: a cataloger that leaves files behind leaves one on every scan,
        // so the test fails only when each of three scans is followed by a new entry.
        func entries() throws -> Set<String> {
            Set(try FileManager.default.contentsOfDirectory(atPath: FileManager.default.temporaryDirectory.path))
        }
        let db = try makeRpmDatabase(RpmCatalogTests.blobs, in: dir)
        var leftovers: [Set<String>] = []
        for _ in 0..<3 {
            let before = try entries()
            _ = Catalogers.catalog([CatalogFile(path: "var/lib/rpm/rpmdb.sqlite", contents: db)])
            leftovers.append(try entries().subtracting(before))
            if leftovers.last!.isEmpty { break }
        }
        #expect(leftovers.contains { $0.isEmpty }, "each scan left new temporary files: \(leftovers)")
    }

    @Test func malformedOSVRecordsAreSkipped() {
        var db = VulnerabilityDatabase()
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        let cases = [
            deep, #"{"id":"A","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Alpine:v3.19","name":"x"},"ranges":[{"type":"ECOSYSTEM","events":[]}]}]}"#,
            #"{"id":"B","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Alpine:v3.19"}}]}"#,
            #"{"id":"C","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"x"},"ranges":[{"type":"SEMVER","events":[{"introduced":"not-semver"},{"fixed":"1.0.0"}]}]}]}"#,
            #"{"id":5,"modified":"2024-01-01T00:00:00Z"}"#, "\u{feff}{}", "null",
        ]
        for (k, c) in cases.enumerated() { db.add(feed: "t", file: "\(k).json", data: Data(c.utf8)) }
        #expect(db.advisories.map(\.record.id) == ["A", "C"])
        #expect(db.issues.filter { $0.disposition == .skipped }.count == 5)
        // A range whose versions cannot be compared never matches, and never traps.
        let pkg = InstalledPackage(kind: .golang, name: "x", version: "v0.5.0", path: "bin/x")
        #expect(Matcher(database: db).findings(for: [pkg], osEcosystems: [:]).isEmpty)
    }

    @Test func malformedCatalogFilesThroughTheWholeScan() throws {
        var t = TarBuilder()
        t.file("etc/os-release", [0xff, 0xfe, 0x3d, 0x0a, 0x3d, 0x3d])
        t.file("var/lib/dpkg/status", [UInt8](repeating: 0x3a, count: 50_000))
        t.file("lib/apk/db/installed", [0x50, 0x3a] + [UInt8](repeating: 0xff, count: 1000))
        t.file("var/lib/rpm/rpmdb.sqlite", Array("SQLite format 3\0".utf8) + [UInt8](repeating: 0xff, count: 4096))
        t.file("app/node_modules/x/package.json", "{\"name\": [}")
        t.end()
        var w = LayerWalker()
        try w.apply(bytes: t.gzipped)
        let report = ImageScanner(matcher: Matcher(database: VulnerabilityDatabase())).scan(index: w.index)
        #expect(report.findings.isEmpty)
        #expect(report.catalogIssues.contains { $0.path == "var/lib/rpm/rpmdb.sqlite" })
        #expect(report.catalogIssues.contains { $0.path == "app/node_modules/x/package.json" })
    }

    @Test func manyFakeGoBuildInfoHeadersStayLinear() {
        // 20,000 plausible headers, each claiming a version string longer than the window: each is rejected at once.
        var block = Array(GoBinaryBuilder.buildInfo().prefix(32)) + GoBinaryBuilder.uvarint(900_000)
        block += Array("go1.22".utf8)
        var binary: [UInt8] = [0x7f, 0x45, 0x4c, 0x46] + [UInt8](repeating: 0, count: 60)
        for _ in 0..<20_000 { binary += block }
        let start = ContinuousClock.now
        let scanner = GoBuildInfoScanner(maxBuildInfoBytes: 1 << 20)
        for k in stride(from: 0, to: binary.count, by: 65_536) { scanner.consume(binary[k..<min(k + 65_536, binary.count)]) }
        #expect(scanner.result == nil)
        #expect(ContinuousClock.now - start < .seconds(20))
    }

    @Test func zipCentralDirectoryCountsThatLieAreRejected() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        // An end-of-central-directory record claiming 65,534 entries in a 0-byte directory.
        var eocd: [UInt8] = [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xfe, 0xff, 0xfe, 0xff]
        eocd += [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        #expect(throws: ZipError.self) { try withTemporaryZip(Data(eocd), in: dir) { try OSVArchive(url: $0) } }
        // A ZIP64 locator pointing outside the archive.
        var z64: [UInt8] = [0x50, 0x4b, 0x06, 0x07, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0, 0, 0]
        z64 += [0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0]
        #expect(throws: ZipError.self) { try withTemporaryZip(Data(z64), in: dir) { try OSVArchive(url: $0) } }
    }

    @Test func layoutIndexesSkipAttestationManifests() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        var t = TarBuilder()
        t.file("var/lib/dpkg/status", Self.status)
        t.end()
        try writeOCILayout(at: dir.url, tag: "x", layers: [("application/vnd.oci.image.layer.v1.tar", t.bytes)])
        // Wrap the manifest in an index whose first entry is an attestation manifest.
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.path("index.json"))) as! [String: Any]
        let image = (index["manifests"] as! [[String: Any]])[0]
        let digest = image["digest"] as! String
        let inner: [String: Any] = ["schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
             "platform": ["os": "unknown", "architecture": "unknown"],
             "annotations": ["vnd.docker.reference.type": "attestation-manifest"]],
            ["mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
             "platform": ["os": "linux", "architecture": "arm64"]],
        ]]
        let innerData = try JSONSerialization.data(withJSONObject: inner)
        let hex = String(try run("sha256sum", ["-"], in: nil, input: innerData).prefix(64))
        try innerData.write(to: dir.path("blobs/sha256/\(hex)"))
        let outer: [String: Any] = ["schemaVersion": 2, "manifests": [
            ["mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:\(hex)", "size": innerData.count,
             "annotations": ["org.opencontainers.image.ref.name": "multi"]],
        ]]
        try JSONSerialization.data(withJSONObject: outer).write(to: dir.path("index.json"))
        let layers = try OCIImageLayout(root: dir.url).layers(tag: "multi")
        #expect(layers.count == 1)
    }

    /// A wanted file with a base-256 size near `Int.max` (the capture-budget sum must not overflow).
    @Test func wantedFileWithAnEnormousSize() throws {
        var field = [UInt8](repeating: 0xff, count: 12)
        field[0] = 0x80 | 0x3f
        var t = TarBuilder()
        t.raw(TarBuilder.header(name: "var/lib/dpkg/status", size: 0, sizeField: field))
        t.raw([UInt8](repeating: 0, count: 2048))
        var w = LayerWalker()
        #expect(throws: LayerError.self) { try w.apply(bytes: t.bytes) }
        // The same through a pax size record.
        let body = " size=9223372036854775807\n"
        let record = Array("\(body.utf8.count + 2)\(body)".utf8)
        var p = TarBuilder()
        p.raw(TarBuilder.header(name: "x", size: record.count, type: UInt8(ascii: "x")) + TarBuilder.padded(record))
        p.raw(TarBuilder.header(name: "lib/apk/db/installed", size: 1, mode: 0o755))
        p.raw([UInt8](repeating: 0, count: 2048))
        #expect(throws: LayerError.self) { try w.apply(bytes: p.bytes) }
    }

    @Test func mutatedRpmHeadersAndGoBlocksNeverCrash() {
        var rng = SystemRandomNumberGenerator()
        let header = RPMHeaderBuilder.package("openssl-libs", "3.0.7", "24.el9", epoch: 1, srpm: "openssl-3.0.7-24.el9.src.rpm")
        let go = GoBinaryBuilder.binary(fillerBytes: 100)
        for _ in 0..<2000 {
            var h = header
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                h[Int.random(in: 0..<h.count, using: &rng)] = [0x00, 0xff, 0x7f, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            if let parsed = try? RPMHeader(parsing: h) { _ = RpmDatabaseCataloger.package(from: parsed, path: "p") }
            var g = go
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                g[Int.random(in: 64..<g.count, using: &rng)] = [0x00, 0xff, 0x7f, 0x80, UInt8.random(in: 0...255, using: &rng)].randomElement(using: &rng)!
            }
            _ = GoBuildInfoScanner.scan(Array(g.prefix(Int.random(in: 0...g.count, using: &rng))))?.packages(path: "x")
        }
    }
}

