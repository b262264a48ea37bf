import Foundation
import Testing
@testable import BerthScanner

/// Runs a Python script (zipfile is in the standard library) to build zips the way osv.dev's tooling would.
func python(_ script: String, in dir: TempDir) throws {
    try dir.write("make.py", script)
    try run("python3", [dir.path("make.py").path], in: dir.url)
}

@Suite  // needs python3 (zipfile builds the archives): fails rather than skips without it
struct OSVArchiveTests {
    static let good1 = osvRecord(id: "ALSA-2099:1", ecosystem: "AlmaLinux:9", name: "openssl", fixed: "1:3.0.7-25.el9")
    static let good2 = osvRecord(id: "ALSA-2099:2", ecosystem: "AlmaLinux:9", name: "bash", fixed: "5.2-1.el9")

    @Test func loadsStoredAndDeflatedRecordsAndSkipsTheRest() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w") as z:
            z.writestr(zipfile.ZipInfo("ALSA-2099:1.json"), '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("ALSA-2099:2.json", '''\(Self.good2)''', compress_type=zipfile.ZIP_STORED)
            z.writestr("bad.json", '{"id": "X", "modified": "nope"}', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("notjson.json", 'garbage', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("../../evil.json", '''\(Self.good1)''')
            z.writestr("/abs.json", '''\(Self.good1)''')
            z.writestr("dir\\\\win.json", '''\(Self.good1)''')
            z.writestr("big.json", "[" + "1," * 5000 + "1]", compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("README.txt", "not a record")
            z.writestr("sub/", "")
            z.writestr("bzip.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_BZIP2)
        """, in: dir)
        let db = try VulnerabilityDatabase.load(osvArchive: dir.path("all.zip"), feed: "AlmaLinux",
                                                limits: .init(maxRecordBytes: 4096))
        #expect(db.advisories.map(\.record.id) == ["ALSA-2099:1", "ALSA-2099:2"])
        #expect(db.countsByFeed == ["AlmaLinux": 2])
        let reasons = Dictionary(uniqueKeysWithValues: db.issues.map { ($0.file, $0.reason) })
        #expect(Set(reasons.keys) == ["bad.json", "notjson.json", "../../evil.json", "/abs.json", "dir\\win.json", "big.json", "bzip.json"])
        #expect(reasons["../../evil.json"] == "unsafe entry name")
        #expect(reasons["big.json"]?.contains("exceeds") == true)
        #expect(reasons["bzip.json"]?.contains("compression method 12") == true)
        #expect(db.issues.allSatisfy { $0.disposition == .skipped })
        // Nothing was written next to the archive.
        #expect(!FileManager.default.fileExists(atPath: dir.url.deletingLastPathComponent().appendingPathComponent("evil.json").path))

        // The records match AlmaLinux rpm packages by source name.
        let pkg = InstalledPackage(kind: .rpm, name: "openssl-libs", version: "1:3.0.7-24.el9", sourceName: "openssl",
                                   path: "var/lib/rpm/rpmdb.sqlite")
        #expect(Matcher(database: db).findings(for: [pkg], osEcosystems: [.rpm: "AlmaLinux:9"]).map(\.name) == ["ALSA-2099:1"])
    }

    @Test func zip64ArchivesWithManyEntries() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w") as z:
            for i in range(66000):
                z.writestr("x/%d.txt" % i, "")
            z.writestr("ALSA-2099:1.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
        """, in: dir)
        let db = try VulnerabilityDatabase.load(osvArchive: dir.path("all.zip"), feed: "AlmaLinux")
        #expect(db.advisories.map(\.record.id) == ["ALSA-2099:1"])
        #expect(db.issues.isEmpty)
    }

    @Test func damagedArchivesFailOrSkipCleanly() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w") as z:
            z.writestr("A.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("B.json", '''\(Self.good2)''', compress_type=zipfile.ZIP_STORED)
        """, in: dir)
        let data = try Data(contentsOf: dir.path("all.zip"))
        // Not a zip, truncated, central directory cut.
        for bad in [Data(), Data("PK".utf8), data.prefix(data.count - 10), data.prefix(60), Data(repeating: 0x50, count: 100)] {
            var db = VulnerabilityDatabase()
            #expect(throws: ZipError.self) { try db.addArchive(feed: "f", data: Data(bad)) }
        }
        // A flipped byte inside an entry's data: that entry is skipped (CRC or deflate error), the other is kept.
        var flipped = [UInt8](data)
        let at = try #require(flipped.firstRange(of: Array("ALSA-2099:2".utf8))).lowerBound
        flipped[at + 2] ^= 0x01
        var db = VulnerabilityDatabase()
        try db.addArchive(feed: "f", data: Data(flipped))
        #expect(db.advisories.map(\.record.id) == ["ALSA-2099:1"])
        #expect(db.issues.map(\.reason) == ["corrupt zip: CRC-32 mismatch"])
        // A central directory whose sizes lie: bounded, no crash.
        var lying = [UInt8](data)
        if let cd = lying.firstRange(of: [0x50, 0x4b, 0x01, 0x02])?.lowerBound {
            for k in 20..<28 { lying[cd + k] = 0xfe }  // compressed and uncompressed size
        }
        var db2 = VulnerabilityDatabase()
        try? db2.addArchive(feed: "f", data: Data(lying))
        #expect(db2.advisories.count <= 2)
        #expect(ZipArchive.isSafeEntryName("a/b.json"))
        #expect(!ZipArchive.isSafeEntryName("a/../../b.json"))
        #expect(!ZipArchive.isSafeEntryName("C:x.json"))
        #expect(!ZipArchive.isSafeEntryName(""))
    }

    @Test func directoryLoadPicksUpArchives() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try FileManager.default.createDirectory(at: dir.path("AlmaLinux"), withIntermediateDirectories: true)
        try python("""
        import zipfile
        with zipfile.ZipFile("AlmaLinux/all.zip", "w") as z:
            z.writestr("A.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
        open("AlmaLinux/broken.zip", "w").write("nope")
        """, in: dir)
        try? FileManager.default.removeItem(at: dir.path("make.py"))
        let db = try VulnerabilityDatabase.load(directory: dir.url)
        #expect(db.countsByFeed == ["AlmaLinux": 1])
        #expect(db.issues.map(\.file) == ["broken.zip"])
    }

    @Test func mutatedArchivesNeverCrash() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w") as z:
            z.writestr("A.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("B.json", '''\(Self.good2)''', compress_type=zipfile.ZIP_STORED)
            z.writestr("C.json", "{}" * 100, compress_type=zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile("z64.zip", "w") as z:
            with z.open("A.json", "w", force_zip64=True) as f:
                f.write('''\(Self.good1)'''.encode())
        """, in: dir)
        var rng = SystemRandomNumberGenerator()
        for name in ["all.zip", "z64.zip"] {
            let original = [UInt8](try Data(contentsOf: dir.path(name)))
            var clean = VulnerabilityDatabase()
            try clean.addArchive(feed: "f", data: Data(original))
            #expect(clean.advisories.count >= 1)
            for _ in 0..<1500 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = [0x00, 0xff, 0xfe, 0x7f, 0x80, UInt8.random(in: 0...255, using: &rng)]
                        .randomElement(using: &rng)!
                }
                var db = VulnerabilityDatabase()
                try? db.addArchive(feed: "f", data: Data(bytes))
            }
        }
    }
}

