import CSQLite

/// Reads rpm's SQLite database (`var/lib/rpm/rpmdb.sqlite`, `usr/lib/sysimage/rpm/rpmdb.sqlite`).
///
/// The database is opened from the captured bytes with `sqlite3_deserialize`, read-only, so nothing is written to
/// disk. Every row of table `Packages` (`hnum INTEGER PRIMARY KEY, blob BLOB`) is an rpm header; NAME, VERSION,
/// RELEASE, EPOCH, ARCH and SOURCERPM are read from it. The source name (what OSV's Rocky Linux and AlmaLinux
/// advisories are keyed by) comes from SOURCERPM (`openssl-3.0.7-27.el9.src.rpm` → `openssl`), the version is
/// `[epoch:]version-release`. `gpg-pubkey` pseudo-packages are skipped. A hostile database cannot make the query run
/// unbounded: a progress handler stops it after a fixed number of virtual-machine steps, and `Packages` must be a
/// table (not a view). The Berkeley DB (`Packages`) and NDB (`Packages.db`) formats of older rpm are not read.
public enum RpmDatabaseCataloger {
    /// Upper bound of SQLite virtual-machine steps (in thousands) spent on one database.
    static let maxProgressTicks = 200_000

    public static func catalog(_ file: CatalogFile, into result: inout CatalogResult) {
        switch readHeaders(file.contents) {
        case .failure(let problem):
            result.issues.append(CatalogIssue(path: file.path, reason: problem.description))
        case .success(let blobs):
            var bad = 0
            var firstProblem: String?
            for blob in blobs {
                do {
                    let header = try RPMHeader(parsing: blob)
                    guard let package = package(from: header, path: file.path) else {
                        if header.string(RPMHeader.Tag.name) == "gpg-pubkey" { continue }
                        bad += 1
                        if firstProblem == nil { firstProblem = "header without NAME, VERSION or RELEASE" }
                        continue
                    }
                    result.packages.append(package)
                } catch {
                    bad += 1
                    if firstProblem == nil { firstProblem = error.description }
                }
            }
            if bad > 0 {
                result.issues.append(CatalogIssue(
                    path: file.path, reason: "skipped \(bad) unreadable package header(s): \(firstProblem ?? "")"))
            }
        }
    }

    /// The package an rpm header describes, or `nil` without NAME, VERSION and RELEASE (or for `gpg-pubkey`).
    public static func package(from header: RPMHeader, path: String) -> InstalledPackage? {
        guard let name = header.string(RPMHeader.Tag.name), !name.isEmpty, name != "gpg-pubkey",
              let version = header.string(RPMHeader.Tag.version), !version.isEmpty,
              let release = header.string(RPMHeader.Tag.release), !release.isEmpty
        else { return nil }
        let epoch = header.int32(RPMHeader.Tag.epoch).flatMap { $0 > 0 ? "\($0):" : nil } ?? ""
        let evr = epoch + version + "-" + release
        var sourceName = name
        var sourceVersion = evr
        if let srpm = header.string(RPMHeader.Tag.sourceRPM), let parsed = parseSourceRPM(srpm) {
            sourceName = parsed.name
            sourceVersion = epoch + parsed.version + "-" + parsed.release
        }
        return InstalledPackage(
            kind: .rpm, name: name, version: evr, architecture: header.string(RPMHeader.Tag.arch),
            sourceName: sourceName, sourceVersion: sourceVersion, path: path)
    }

    /// Splits `name-version-release.src.rpm` (or `.nosrc.rpm`).
    public static func parseSourceRPM(_ file: String) -> (name: String, version: String, release: String)? {
        var base = Substring(file)
        if base.hasSuffix(".src.rpm") { base = base.dropLast(8) } else if base.hasSuffix(".nosrc.rpm") { base = base.dropLast(10) } else {
            return nil
        }
        guard let r = base.lastIndex(of: "-") else { return nil }
        let release = base[base.index(after: r)...]
        let rest = base[..<r]
        guard let v = rest.lastIndex(of: "-") else { return nil }
        let version = rest[rest.index(after: v)...]
        let name = rest[..<v]
        guard !name.isEmpty, !version.isEmpty, !release.isEmpty else { return nil }
        return (String(name), String(version), String(release))
    }

    /// Why a database could not be read.
    public struct DatabaseProblem: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    /// The `blob` column of every row of table `Packages`, in `hnum` order.
    public static func readHeaders(_ bytes: [UInt8]) -> Result<[[UInt8]], DatabaseProblem> {
        func fail(_ s: String) -> Result<[[UInt8]], DatabaseProblem> { .failure(DatabaseProblem(description: s)) }
        // An SQLite file is whole pages of 512 bytes or more and starts with "SQLite format 3\0".
        guard bytes.count >= 512, bytes.starts(with: Array("SQLite format 3\0".utf8)) else {
            return fail("not an SQLite database")
        }
        var db: OpaquePointer?
        guard sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nil) == SQLITE_OK, let db else {
            sqlite3_close(db)
            return fail("cannot open an in-memory SQLite database")
        }
        defer { sqlite3_close(db) }
        guard let buffer = sqlite3_malloc64(UInt64(bytes.count))?.assumingMemoryBound(to: UInt8.self) else {
            return fail("out of memory")
        }
        bytes.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: $0.count) }
        // A WAL-mode file (format bytes 2/2) cannot be read from memory; what was checkpointed is in the file,
        // so read it as a rollback-journal database.
        if buffer[18] == 2 { buffer[18] = 1 }
        if buffer[19] == 2 { buffer[19] = 1 }
        let flags = UInt32(SQLITE_DESERIALIZE_FREEONCLOSE | SQLITE_DESERIALIZE_READONLY)
        let size = sqlite3_int64(bytes.count)
        guard sqlite3_deserialize(db, "main", buffer, size, size, flags) == SQLITE_OK else {
            return fail("cannot load the database: \(String(cString: sqlite3_errmsg(db)))")
        }
        sqlite3_limit(db, SQLITE_LIMIT_LENGTH, Int32(RPMHeader.maxData + 1024))
        let ticks = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        ticks.initialize(to: 0)
        defer { ticks.deallocate() }
        sqlite3_progress_handler(db, 1000, { context in
            let counter = context!.assumingMemoryBound(to: Int.self)
            counter.pointee += 1
            return counter.pointee > RpmDatabaseCataloger.maxProgressTicks ? 1 : 0
        }, ticks)
        sqlite3_exec(db, "PRAGMA trusted_schema=OFF", nil, nil, nil)

        func query(_ sql: String, _ row: (OpaquePointer) -> Void) -> String? {
            var stmt: OpaquePointer?
            guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let stmt else {
                sqlite3_finalize(stmt)
                return String(cString: sqlite3_errmsg(db))
            }
            defer { sqlite3_finalize(stmt) }
            while true {
                let rc = sqlite3_step(stmt)
                if rc == SQLITE_ROW { row(stmt); continue }
                if rc == SQLITE_DONE { return nil }
                return rc == SQLITE_INTERRUPT ? "query interrupted after too many steps" : String(cString: sqlite3_errmsg(db))
            }
        }
        var type: String?
        if let error = query("SELECT type FROM sqlite_master WHERE name = 'Packages'", { stmt in
            if type == nil, let t = sqlite3_column_text(stmt, 0) { type = String(cString: t) }
        }) {
            return fail("unreadable database: \(error)")
        }
        guard type == "table" else { return fail(type == nil ? "no Packages table" : "Packages is a \(type!), not a table") }
        var blobs: [[UInt8]] = []
        if let error = query("SELECT blob FROM Packages ORDER BY hnum", { stmt in
            let n = Int(sqlite3_column_bytes(stmt, 0))
            if n > 0, let p = sqlite3_column_blob(stmt, 0) {
                blobs.append(Array(UnsafeRawBufferPointer(start: p, count: n)))
            } else {
                blobs.append([])
            }
        }) {
            return fail("unreadable Packages table: \(error)")
        }
        return .success(blobs)
    }
}
