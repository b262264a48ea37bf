import Foundation
import Testing
@testable import BerthScanEngine

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
        #expect(reasons["bzip.json"]?.contains("compression method") == true)
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
            #expect(throws: ZipError.self) { try db.addArchive(feed: "f", data: Data(bad), in: dir) }
        }
        // A flipped byte inside an entry's data: that entry is skipped (CRC or deflate error), the other is kept.
        var flipped = [UInt8](data)
        let at = try #require(flipped.firstRange(of: Array("ALSA-2099:2".utf8))).lowerBound
        flipped[at + 2] ^= 0x01
        var db = VulnerabilityDatabase()
        try db.addArchive(feed: "f", data: Data(flipped), in: dir)
        #expect(db.advisories.map(\.record.id) == ["ALSA-2099:1"])
        #expect(db.issues.map(\.reason) == ["corrupt zip: CRC-32 mismatch"])
        // A central directory whose sizes lie: bounded, no crash.
        var lying = [UInt8](data)
        if let cd = lying.firstRange(of: [0x50, 0x4b, 0x01, 0x02])?.lowerBound {
            for k in 20..<28 { lying[cd + k] = 0xfe }  // compressed and uncompressed size
        }
        var db2 = VulnerabilityDatabase()
        try? db2.addArchive(feed: "f", data: Data(lying), in: dir)
        #expect(db2.advisories.count <= 2)
        #expect(OSVArchive.isSafeEntryName("a/b.json"))
        #expect(!OSVArchive.isSafeEntryName("a/../../b.json"))
        #expect(!OSVArchive.isSafeEntryName("C:x.json"))
        #expect(!OSVArchive.isSafeEntryName(""))
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
            try clean.addArchive(feed: "f", data: Data(original), in: dir)
            #expect(clean.advisories.count >= 1)
            for _ in 0..<1500 {
                var bytes = original
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    bytes[Int.random(in: 0..<bytes.count, using: &rng)] = [0x00, 0xff, 0xfe, 0x7f, 0x80, UInt8.random(in: 0...255, using: &rng)]
                        .randomElement(using: &rng)!
                }
                var db = VulnerabilityDatabase()
                try? db.addArchive(feed: "f", data: Data(bytes), in: dir)
            }
        }
    }
}


/// ZIPFoundation reads the archive; Berth's limits hold against archives built to break them.
@Suite struct OSVArchiveLimitTests {
    static let good1 = OSVArchiveTests.good1
    static let good2 = OSVArchiveTests.good2

    func records(_ url: URL, limits: OSVArchive.Limits = .init()) throws -> [(String, String)] {
        var out: [(String, String)] = []
        try OSVArchive(url: url).forEachRecord(limits: limits) { name, record in
            switch record {
            case .contents(let bytes): out.append((name, "\(bytes.count) bytes"))
            case .skipped(let reason): out.append((name, reason))
            }
        }
        return out
    }

    @Test func forcedZIP64ArchivesAreRead() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("z64.zip", "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("A.json", "w", force_zip64=True) as f:
                f.write('''\(Self.good1)'''.encode())
            with z.open("B.json", "w", force_zip64=True) as f:
                f.write('''\(Self.good2)'''.encode())
        """, in: dir)
        let bytes = try Data(contentsOf: dir.path("z64.zip"))
        // The entries carry ZIP64 extra fields (id 1, 16 bytes of sizes).
        #expect(bytes.range(of: Data([0x01, 0x00, 0x10, 0x00])) != nil)
        let db = try VulnerabilityDatabase.load(osvArchive: dir.path("z64.zip"), feed: "AlmaLinux")
        #expect(db.advisories.map(\.record.id) == ["ALSA-2099:1", "ALSA-2099:2"])
        #expect(db.issues.isEmpty)
        var inMemory = VulnerabilityDatabase()
        try inMemory.addArchive(feed: "AlmaLinux", data: bytes, in: dir)
        #expect(inMemory.advisories.map(\.record.id) == ["ALSA-2099:1", "ALSA-2099:2"])
    }

    /// Archives written to a stream (as Go's archive/zip and zipfile on a pipe write them) carry each entry's sizes
    /// and CRC in a data descriptor after its data, with zeros in the local header: read by the directory's values.
    @Test func streamedArchivesWithDataDescriptorsAreRead() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import io, zipfile
        class Stream(io.RawIOBase):
            def __init__(self): self.out = bytearray()
            def writable(self): return True
            def seekable(self): return False
            def write(self, b): self.out += b; return len(b)
        s = Stream()
        with zipfile.ZipFile(s, "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("A.json", "w") as f: f.write('''\(Self.good1)'''.encode())
            with z.open("B.json", "w") as f: f.write('''\(Self.good2)'''.encode())
        assert s.out[6] & 8  # general purpose flag bit 3: a data descriptor follows the data
        open("all.zip", "wb").write(s.out)
        """, in: dir)
        #expect(try records(dir.path("all.zip")).map(\.1) == ["\(Self.good1.utf8.count) bytes", "\(Self.good2.utf8.count) bytes"])
    }

    @Test func entryCountTotalAndNameLimits() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("A.json", '''\(Self.good1)''')
            z.writestr("B.json", '''\(Self.good2)''')
            z.writestr("x" * 300 + ".json", '''\(Self.good2)''')
        """, in: dir)
        let url = dir.path("all.zip")
        #expect(try records(url).map(\.1) == Array(repeating: "\(Self.good1.utf8.count) bytes", count: 1)
            + ["\(Self.good2.utf8.count) bytes", "\(Self.good2.utf8.count) bytes"])
        #expect(throws: ZipError.limitExceeded("3 entries, more than 2")) { try records(url, limits: .init(maxEntries: 2)) }
        #expect(throws: ZipError.self) { try records(url, limits: .init(maxTotalBytes: Self.good1.utf8.count + 10)) }
        let named = try records(url, limits: .init(maxNameBytes: 100))
        #expect(named.last?.1 == "entry name longer than 100 bytes")
        #expect(named.count == 3)
    }

    /// A bomb (an entry that inflates far beyond the size it declares), a deflate stream that never ends and runs
    /// into the central directory, a compressed size that lies, a local header beyond the file: each is skipped or
    /// refused, in bounded time and memory, and the good records are still read.
    @Test func hostileEntriesAreSkippedInBoundedTime() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import struct, zipfile, zlib
        def patch_sizes(data, name, compressed=None, uncompressed=None, method=None):
            # Both the local header and the central directory entry of `name`.
            out = bytearray(data)
            for sig, off_c, off_u, off_m, name_at in ((b"PK\\x03\\x04", 18, 22, 8, 30), (b"PK\\x01\\x02", 20, 24, 10, 46)):
                i = 0
                while True:
                    i = out.find(sig, i)
                    if i < 0: break
                    n = struct.unpack_from("<H", out, i + name_at - 4 if sig == b"PK\\x03\\x04" else i + 28)[0]
                    if out[i + name_at:i + name_at + n] == name.encode():
                        if compressed is not None: struct.pack_into("<I", out, i + off_c, compressed)
                        if uncompressed is not None: struct.pack_into("<I", out, i + off_u, uncompressed)
                        if method is not None: struct.pack_into("<H", out, i + off_m, method)
                    i += 4
            return bytes(out)

        with zipfile.ZipFile("all.zip", "w") as z:
            z.writestr("A.json", '''\(Self.good1)''', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("bomb.json", b"\\0" * (1 << 20), compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("liar.json", '''\(Self.good2)''', compress_type=zipfile.ZIP_DEFLATED)
            z.writestr("B.json", '''\(Self.good2)''', compress_type=zipfile.ZIP_DEFLATED)
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            endless = c.compress(b'{"id": "never-ends"}' * 50) + c.flush(zlib.Z_SYNC_FLUSH)
            z.writestr("endless.json", endless, compress_type=zipfile.ZIP_STORED)
        data = open("all.zip", "rb").read()
        data = patch_sizes(data, "bomb.json", uncompressed=1000)
        data = patch_sizes(data, "liar.json", compressed=10)
        data = patch_sizes(data, "endless.json", uncompressed=1000, method=8)
        open("all.zip", "wb").write(data)
        """, in: dir)
        let start = ContinuousClock.now
        let got = Dictionary(uniqueKeysWithValues: try records(dir.path("all.zip")))
        #expect(ContinuousClock.now - start < .seconds(10))
        #expect(got["A.json"] == "\(Self.good1.utf8.count) bytes")
        #expect(got["B.json"] == "\(Self.good2.utf8.count) bytes")
        #expect(got["bomb.json"] == "corrupt zip: entry inflates beyond its declared size")
        #expect(got["liar.json"]?.hasPrefix("corrupt zip:") == true)
        #expect(got["endless.json"]?.hasPrefix("corrupt zip:") == true)
    }

    /// ZIPFoundation 0.9.20's Linux inflate loop spins forever once a deflate stream that has not ended reaches the end
    /// of the file (weichsel/ZIPFoundation#389). The entry here is deflate data that never ends, placed at the very
    /// end of the file (in the end record's comment, after the central directory), with a compressed size of its data
    /// less one byte (so the first piece read is full of real data and the next comes back empty) or of all of it:
    /// it is skipped, in bounded time, and the good record is read. Run on a thread of its own, so that a regression
    /// fails the test instead of hanging the suite.
    @Test(arguments: [-1, 0]) func deflateDataEndingAtTheEndOfTheFileIsSkipped(sizeDelta: Int) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import struct, zlib
        good = '''\(Self.good1)'''.encode()
        tail = '''\(Self.good2)'''.encode() * 20
        def local(name, method, crc, csize, usize):
            return struct.pack("<IHHHHHIIIHH", 0x04034b50, 20, 0, method, 0, 0, crc, csize, usize, len(name), 0) + name
        def central(name, method, crc, csize, usize, offset):
            return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 20, 20, 0, method, 0, 0, crc, csize, usize,
                               len(name), 0, 0, 0, 0, 0, offset) + name
        def deflate(data, end):
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            return c.compress(data) + c.flush(zlib.Z_FINISH if end else zlib.Z_SYNC_FLUSH)
        a = deflate(good, True)
        first = local(b"A.json", 8, zlib.crc32(good), len(a), len(good)) + a
        endless = deflate(tail, False)
        directory_at = len(first)
        tail_at = directory_at + 2 * 46 + len(b"A.json") + len(b"tail.json") + 22
        directory = central(b"A.json", 8, zlib.crc32(good), len(a), len(good), 0) \\
            + central(b"tail.json", 8, zlib.crc32(tail), len(endless) + \(sizeDelta), len(tail), tail_at)
        comment = local(b"tail.json", 8, zlib.crc32(tail), len(endless) + \(sizeDelta), len(tail)) + endless
        assert b"PK\\x05\\x06" not in comment
        eocd = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 2, 2, len(directory), directory_at, len(comment))
        data = first + directory + eocd + comment
        assert data.index(comment) == tail_at and data.endswith(endless)
        open("all.zip", "wb").write(data)
        """, in: dir)
        let url = dir.path("all.zip")
        let got = try #require(try finishing(within: .seconds(20)) { try records(url) }, "the archive read hangs")
        #expect(got.map(\.0) == ["A.json", "tail.json"])
        #expect(got.first?.1 == "\(Self.good1.utf8.count) bytes")
        #expect(got.last?.1.hasPrefix("corrupt zip:") == true)
    }

    /// ZIPFoundation stops walking the directory at an entry it cannot read; the walk is checked against the count
    /// the end record declares, so a cut directory fails instead of losing the records after it in silence.
    @Test func aDirectoryCutShortFails() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        try python("""
        import zipfile
        with zipfile.ZipFile("all.zip", "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("A.json", '''\(Self.good1)''')
            z.writestr("B.json", '''\(Self.good2)''')
        """, in: dir)
        var bytes = [UInt8](try Data(contentsOf: dir.path("all.zip")))
        let second = try #require(bytes.ranges(of: [0x50, 0x4b, 0x01, 0x02]).dropFirst().first).lowerBound
        bytes[second + 3] = 0x09  // the second directory entry's signature
        #expect(throws: ZipError.corrupt("central directory entry 2 of 2 unreadable (damaged or encrypted)")) {
            var db = VulnerabilityDatabase()
            try db.addArchive(feed: "f", data: Data(bytes), in: dir)
        }
    }
}

/// `bytes` in a file of `dir` (the archive reader reads files), removed after `body`.
func withTemporaryZip<T>(_ bytes: Data, in dir: TempDir, _ body: (URL) throws -> T) throws -> T {
    let url = dir.path("bytes-\(UUID().uuidString).zip")
    try bytes.write(to: url)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

extension VulnerabilityDatabase {
    /// Adds the records of an archive held in memory, written to a file of `dir` first.
    mutating func addArchive(feed: String, data: Data, in dir: TempDir) throws {
        try withTemporaryZip(data, in: dir) { try addArchive(feed: feed, url: $0) }
    }
}

/// Runs `body` on a thread of its own and waits at most `limit` for it: nil when it has not finished by then (the
/// thread is left running), so that a hang fails a test instead of hanging the suite.
func finishing<T: Sendable>(within limit: Duration, _ body: @escaping @Sendable () throws -> T) throws -> T? {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        box.result = Result { try body() }
        done.signal()
    }
    let (seconds, attoseconds) = limit.components
    guard done.wait(timeout: .now() + Double(seconds) + Double(attoseconds) / 1e18) == .success else { return nil }
    return try box.result!.get()
}

/// The result of `finishing`'s thread, written before the semaphore is signalled and read after it is waited on.
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}
