import CSQLite
import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct ApkCatalogTests {
    static let installed = """
    C:Q1abc=
    P:musl
    V:1.2.4_git20230717-r4
    A:x86_64
    S:383152
    o:musl
    F:lib
    R:ld-musl-x86_64.so.1

    C:Q1def=
    P:libcrypto3
    V:3.1.7-r0
    A:x86_64
    o:openssl

    P:libssl3
    V:3.1.7-r0
    A:x86_64
    o:openssl

    """

    @Test func readsRecordsWithOrigin() {
        let r = Catalogers.catalog([CatalogFile(path: "lib/apk/db/installed", contents: Array(Self.installed.utf8))])
        #expect(r.packages == [
            InstalledPackage(kind: .apk, name: "musl", version: "1.2.4_git20230717-r4", architecture: "x86_64",
                             sourceName: "musl", path: "lib/apk/db/installed"),
            InstalledPackage(kind: .apk, name: "libcrypto3", version: "3.1.7-r0", architecture: "x86_64",
                             sourceName: "openssl", path: "lib/apk/db/installed"),
            InstalledPackage(kind: .apk, name: "libssl3", version: "3.1.7-r0", architecture: "x86_64",
                             sourceName: "openssl", path: "lib/apk/db/installed"),
        ])
        #expect(r.issues.isEmpty)
        #expect(Catalogers.wants("lib/apk/db/installed"))
        #expect(!Catalogers.wants("lib/apk/db/triggers"))
    }

    @Test func malformedDatabasesNeverCrash() {
        let inputs: [String] = [
            "", "\n\n\n", "garbage without colons\nP\n:x\n", "P:only-name\n\nV:1.0\n", "P:\nV:\n",
            String(repeating: "P:a\nV:1\n\n", count: 2000), "P:x\r\nV:1-r0\r\no:\r\n\r\n", "\u{0}\u{1}P:z",
        ]
        for input in inputs {
            let r = Catalogers.catalog([CatalogFile(path: "lib/apk/db/installed", contents: Array(input.utf8))])
            #expect(r.packages.allSatisfy { !$0.name.isEmpty && !$0.version.isEmpty && !$0.sourceName.isEmpty })
        }
        let r = Catalogers.catalog([CatalogFile(path: "lib/apk/db/installed",
                                                contents: Array("P:x\r\nV:1-r0\r\no:\r\n\r\nnot a field\nP:y\n".utf8))])
        #expect(r.packages.map(\.sourceName) == ["x"])
        #expect(r.issues.count == 2)  // record without V, and the malformed line
        let binary = Catalogers.catalog([CatalogFile(path: "lib/apk/db/installed", contents: [0xff, 0xfe, 0, 10, 0x50, 0x3a])])
        #expect(binary.packages.isEmpty)
    }

    @Test func ecosystemsFromOSRelease() {
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "alpine", "VERSION_ID": "3.19.1"]) == "Alpine:v3.19")
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "alpine", "VERSION_ID": "3.21.0_alpha20240807"]) == "Alpine:v3.21")
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "alpine", "VERSION_ID": "edge"]) == nil)
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "alpine"]) == nil)
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "wolfi", "VERSION_ID": "20230201"]) == "Wolfi")
        #expect(Matcher.apkEcosystem(osRelease: ["ID": "debian", "VERSION_ID": "12"]) == nil)
        #expect(Matcher.rpmEcosystem(osRelease: ["ID": "rocky", "VERSION_ID": "9.3"]) == "Rocky Linux:9")
        #expect(Matcher.rpmEcosystem(osRelease: ["ID": "almalinux", "VERSION_ID": "8.10"]) == "AlmaLinux:8")
        #expect(Matcher.rpmEcosystem(osRelease: ["ID": "rhel", "VERSION_ID": "9.4"]) == nil)
        #expect(Matcher.rpmEcosystem(osRelease: ["ID": "rocky", "VERSION_ID": "x"]) == nil)
        #expect(Matcher.osEcosystems(osRelease: ["ID": "debian", "VERSION_ID": "12"]) == [.deb: "Debian:12"])
    }

    @Test func alpineFixtureAdvisoriesMatchByOrigin() throws {
        // cyrus-sasl < 2.1.26-r7 in every Alpine release of the fixture (CVE-2013-4122).
        let record = osvRecord(id: "CVE-2013-4122", ecosystem: "Alpine:v3.19", name: "cyrus-sasl", fixed: "2.1.26-r7")
        let db = database(feed: "Alpine", [record])
        let packages = [
            InstalledPackage(kind: .apk, name: "libsasl", version: "2.1.26-r6", sourceName: "cyrus-sasl", path: "lib/apk/db/installed"),
            InstalledPackage(kind: .apk, name: "cyrus-sasl", version: "2.1.26-r7", path: "lib/apk/db/installed"),
        ]
        let findings = Matcher(database: db).findings(for: packages, osEcosystems: [.apk: "Alpine:v3.19"])
        #expect(findings.map(\.package.name) == ["libsasl"])
        #expect(findings.first?.fixedVersion == "2.1.26-r7")
        #expect(Matcher(database: db).findings(for: packages, osEcosystems: [.apk: "Alpine:v3.20"]).isEmpty)
        #expect(Matcher(database: db).findings(for: packages, dpkgEcosystem: "Debian:12").isEmpty)
    }

    @Test(.enabled(if: Fixtures.available, "shared fixtures not found; set BERTH_FIXTURES"))
    func realAlpineRecordsMatch() throws {
        let db = try #require(Fixtures.database)
        let packages = [InstalledPackage(kind: .apk, name: "libsasl", version: "2.1.26-r6", sourceName: "cyrus-sasl",
                                         path: "lib/apk/db/installed")]
        let findings = Matcher(database: db).findings(for: packages, osEcosystems: [.apk: "Alpine:v3.19"])
        #expect(findings.contains { $0.name == "CVE-2013-4122" && $0.feed == "Alpine" && $0.fixedVersion == "2.1.26-r7" })
    }
}

/// Builds rpm header blobs for tests.
struct RPMHeaderBuilder {
    enum Value { case string(String), int32(Int32), stringArray([String]), raw(type: UInt32, bytes: [UInt8], count: UInt32) }
    var tags: [(Int32, Value)] = []

    static func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }

    func blob(magic: Bool = false) -> [UInt8] {
        var index: [UInt8] = []
        var data: [UInt8] = []
        for (tag, value) in tags {
            let type: UInt32
            let count: UInt32
            var bytes: [UInt8]
            switch value {
            case .string(let s): type = 6; count = 1; bytes = Array(s.utf8) + [0]
            case .stringArray(let a): type = 8; count = UInt32(a.count); bytes = a.flatMap { Array($0.utf8) + [0] }
            case .int32(let v):
                type = 4; count = 1; bytes = Self.be(UInt32(bitPattern: v))
                while data.count % 4 != 0 { data.append(0) }
            case .raw(let t, let b, let c): type = t; count = c; bytes = b
            }
            index += Self.be(UInt32(bitPattern: tag)) + Self.be(type) + Self.be(UInt32(data.count)) + Self.be(count)
            data += bytes
        }
        let head: [UInt8] = magic ? [0x8e, 0xad, 0xe8, 0x01, 0, 0, 0, 0] : []
        return head + Self.be(UInt32(tags.count)) + Self.be(UInt32(data.count)) + index + data
    }

    static func package(_ name: String, _ version: String, _ release: String, epoch: Int32? = nil,
                        arch: String = "x86_64", srpm: String? = nil) -> [UInt8] {
        var b = RPMHeaderBuilder()
        // rpm stores an immutable-region tag first; readers must skip tags they do not know.
        b.tags.append((63, .raw(type: 7, bytes: Array(repeating: 0, count: 16), count: 16)))
        b.tags.append((RPMHeader.Tag.name, .string(name)))
        b.tags.append((RPMHeader.Tag.version, .string(version)))
        b.tags.append((RPMHeader.Tag.release, .string(release)))
        if let epoch { b.tags.append((RPMHeader.Tag.epoch, .int32(epoch))) }
        b.tags.append((RPMHeader.Tag.arch, .string(arch)))
        b.tags.append((1004, .stringArray(["summary", "other"])))
        if let srpm { b.tags.append((RPMHeader.Tag.sourceRPM, .string(srpm))) }
        return b.blob()
    }
}

/// Creates an rpmdb.sqlite-like database file with the given `Packages` blobs and returns its bytes.
func makeRpmDatabase(_ blobs: [[UInt8]], in dir: TempDir, wal: Bool = false, schema: String? = nil) throws -> [UInt8] {
    let file = dir.path("rpmdb-\(UUID().uuidString).sqlite")
    var db: OpaquePointer?
    guard sqlite3_open(file.path, &db) == SQLITE_OK, let db else { throw NSError(domain: "sqlite", code: 1) }
    func exec(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
            throw NSError(domain: "sqlite", code: 2, userInfo: [NSLocalizedDescriptionKey: String(cString: sqlite3_errmsg(db))])
        }
    }
    if wal { try exec("PRAGMA journal_mode=WAL") }
    try exec(schema ?? "CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    if schema == nil {
        // rpm's other tables, to look like the real thing.
        try exec("CREATE TABLE Name (key TEXT NOT NULL, hnum INTEGER NOT NULL, idx INTEGER NOT NULL, UNIQUE(key, hnum, idx))")
        for blob in blobs {
            var stmt: OpaquePointer?
            guard sqlite3_prepare_v2(db, "INSERT INTO Packages (blob) VALUES (?)", -1, &stmt, nil) == SQLITE_OK else {
                throw NSError(domain: "sqlite", code: 3)
            }
            _ = blob.withUnsafeBytes { b in
                sqlite3_bind_blob(stmt, 1, b.baseAddress, Int32(b.count), unsafeBitCast(-1, to: sqlite3_destructor_type.self))
            }
            guard sqlite3_step(stmt) == SQLITE_DONE else { throw NSError(domain: "sqlite", code: 4) }
            sqlite3_finalize(stmt)
        }
    }
    if wal { try exec("PRAGMA wal_checkpoint(TRUNCATE)") }
    sqlite3_close(db)
    return [UInt8](try Data(contentsOf: file))
}

@Suite struct RpmCatalogTests {
    static let blobs = [
        RPMHeaderBuilder.package("openssl-libs", "3.0.7", "24.el9", epoch: 1, srpm: "openssl-3.0.7-24.el9.src.rpm"),
        RPMHeaderBuilder.package("bash", "5.1.8", "9.el9", srpm: "bash-5.1.8-9.el9.src.rpm"),
        RPMHeaderBuilder.package("gpg-pubkey", "350d275d", "6279464b", arch: "(none)"),
        RPMHeaderBuilder.package("tzdata", "2024a", "1.el9", arch: "noarch", srpm: "tzdata-2024a-1.el9.src.rpm"),
    ]

    @Test func headerParsing() throws {
        let h = try RPMHeader(parsing: RPMHeaderBuilder.package("a", "1", "2", epoch: 3, srpm: "a-1-2.src.rpm"))
        #expect(h.string(RPMHeader.Tag.name) == "a")
        #expect(h.int32(RPMHeader.Tag.epoch) == 3)
        #expect(h.string(RPMHeader.Tag.epoch) == nil)
        #expect(h.int32(RPMHeader.Tag.name) == nil)
        #expect(h.string(1004) == "summary")
        var withMagic = RPMHeaderBuilder()
        withMagic.tags = [(RPMHeader.Tag.name, .string("m"))]
        #expect(try RPMHeader(parsing: withMagic.blob(magic: true)).string(RPMHeader.Tag.name) == "m")
        #expect(RpmDatabaseCataloger.parseSourceRPM("openssl-3.0.7-24.el9.src.rpm")! == ("openssl", "3.0.7", "24.el9"))
        #expect(RpmDatabaseCataloger.parseSourceRPM("python3.11-pip-22.3.1-4.el9.noarch.rpm") == nil)
        #expect(RpmDatabaseCataloger.parseSourceRPM("x-1.src.rpm") == nil)
    }

    @Test func malformedHeadersThrow() {
        let good = RPMHeaderBuilder.package("a", "1", "2")
        let cases: [[UInt8]] = [
            [], [0, 0, 0], Array(good.prefix(good.count - 1)), [0, 0, 0, 0, 0, 0, 0, 0],
            RPMHeaderBuilder.be(0xffff_ffff) + RPMHeaderBuilder.be(0) + Array(repeating: 0, count: 64),
            RPMHeaderBuilder.be(1) + RPMHeaderBuilder.be(0x7fff_ffff) + Array(repeating: 0, count: 64),
            // An entry whose offset points past the data.
            RPMHeaderBuilder.be(1) + RPMHeaderBuilder.be(4) + RPMHeaderBuilder.be(1000) + RPMHeaderBuilder.be(6)
                + RPMHeaderBuilder.be(99) + RPMHeaderBuilder.be(1) + [0x41, 0x41, 0x41, 0x41],
        ]
        for c in cases { #expect(throws: RPMHeaderError.self) { try RPMHeader(parsing: c) } }
        // A string without a terminating NUL and a misaligned int32 read as absent, not out of bounds.
        var b = RPMHeaderBuilder()
        b.tags = [(RPMHeader.Tag.name, .raw(type: 6, bytes: Array("abc".utf8), count: 1)),
                  (RPMHeader.Tag.epoch, .raw(type: 4, bytes: [1, 2], count: 1))]
        let h = try? RPMHeader(parsing: b.blob())
        #expect(h?.string(RPMHeader.Tag.name) == nil)
        #expect(h?.int32(RPMHeader.Tag.epoch) == nil)
    }

    @Test(arguments: [false, true])
    func readsTheSQLiteDatabase(wal: Bool) throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let bytes = try makeRpmDatabase(Self.blobs + [[1, 2, 3]], in: dir, wal: wal)
        let r = Catalogers.catalog([CatalogFile(path: "var/lib/rpm/rpmdb.sqlite", contents: bytes)])
        #expect(r.packages == [
            InstalledPackage(kind: .rpm, name: "openssl-libs", version: "1:3.0.7-24.el9", architecture: "x86_64",
                             sourceName: "openssl", sourceVersion: "1:3.0.7-24.el9", path: "var/lib/rpm/rpmdb.sqlite"),
            InstalledPackage(kind: .rpm, name: "bash", version: "5.1.8-9.el9", architecture: "x86_64",
                             sourceName: "bash", path: "var/lib/rpm/rpmdb.sqlite"),
            InstalledPackage(kind: .rpm, name: "tzdata", version: "2024a-1.el9", architecture: "noarch",
                             sourceName: "tzdata", path: "var/lib/rpm/rpmdb.sqlite"),
        ])
        #expect(r.issues.count == 1)  // the 3-byte blob
        #expect(r.issues.first?.reason.contains("skipped 1") == true)
    }

    @Test func malformedDatabasesFailWithAReason() throws {
        let dir = try TempDir()
        defer { dir.cleanup() }
        let good = try makeRpmDatabase(Self.blobs, in: dir)
        var inputs: [([UInt8], String)] = [
            ([], "not an SQLite"), (Array("SQLite format 3\0".utf8), "not an SQLite"),
            (Array(good.prefix(1024)), ""), (Array(good.prefix(good.count / 2)), ""),
            (try makeRpmDatabase([], in: dir, schema: "CREATE TABLE Other (x)"), "no Packages table"),
            (try makeRpmDatabase([], in: dir, schema: "CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT x AS hnum, x AS blob FROM c"), "not a table"),
            (try makeRpmDatabase([], in: dir, schema: "CREATE TABLE Packages (hnum INTEGER, other BLOB)"), "unreadable Packages"),
        ]
        var garbled = good
        for k in stride(from: 100, to: garbled.count, by: 97) { garbled[k] ^= 0xa5 }
        inputs.append((garbled, ""))
        for (input, reason) in inputs {
            let r = Catalogers.catalog([CatalogFile(path: "var/lib/rpm/rpmdb.sqlite", contents: input)])
            if !reason.isEmpty {
                #expect(r.packages.isEmpty)
                #expect(r.issues.first?.reason.contains(reason) == true, "\(r.issues)")
            }
            #expect(r.packages.allSatisfy { !$0.name.isEmpty })
        }
    }

    @Test func rockyPackagesMatchBySourceName() throws {
        let db = database(feed: "Rocky", [
            osvRecord(id: "RLSA-2099:1", ecosystem: "Rocky Linux:9", name: "openssl", fixed: "1:3.0.7-25.el9"),
            osvRecord(id: "RLSA-2099:2", ecosystem: "Rocky Linux:9", name: "bash", fixed: "5.1.8-9.el9"),
            osvRecord(id: "RLSA-2099:3", ecosystem: "Rocky Linux:8", name: "openssl", fixed: "1:9.0-1.el8"),
        ])
        let dir = try TempDir()
        defer { dir.cleanup() }
        var index = VirtualFileIndex()
        index.set("var/lib/rpm/rpmdb.sqlite", .file(try makeRpmDatabase(Self.blobs, in: dir)))
        index.set("etc/os-release", .file(Array("ID=\"rocky\"\nVERSION_ID=\"9.3\"\n".utf8)))
        let report = ImageScanner(matcher: Matcher(database: db)).scan(index: index)
        #expect(report.osEcosystems[.rpm] == "Rocky Linux:9")
        #expect(report.findings.map { "\($0.package.name) \($0.name)" } == ["openssl-libs RLSA-2099:1"])
        // RHEL: no ecosystem from os-release, reported.
        index.set("etc/os-release", .file(Array("ID=\"rhel\"\nVERSION_ID=\"9.4\"\n".utf8)))
        let rhel = ImageScanner(matcher: Matcher(database: db)).scan(index: index)
        #expect(rhel.findings.isEmpty)
        #expect(rhel.catalogIssues.contains { $0.reason.contains("rpm packages not matched") })
    }

    @Test func largeDatabasesUseTheirOwnLimit() throws {
        let big = [UInt8](repeating: 0, count: 3000)
        var t = TarBuilder()
        t.file("var/lib/rpm/rpmdb.sqlite", big)
        t.file("var/lib/dpkg/status", big)
        t.end()
        var walker = LayerWalker(limits: .init(maxCatalogFileBytes: 1024, maxPackageDatabaseBytes: 4096))
        try walker.apply(bytes: t.bytes)
        #expect(walker.index["var/lib/rpm/rpmdb.sqlite"] == .file(big))
        #expect(walker.index["var/lib/dpkg/status"] == nil)
        #expect(walker.issues.map(\.reason) == ["larger than the catalog file limit, skipped"])
    }
}
