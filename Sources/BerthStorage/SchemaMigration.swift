import Foundation

/// One step of a metadata schema: its version (1, 2, 3, … with no gap), a name saying what it does,
/// and the change, as SQL or as a closure over the connection (for data rewrites SQL cannot express).
public struct SchemaMigration: Sendable {
    public let version: Int
    public let name: String
    /// The statements, when the migration is plain SQL (the baseline must be: adoption compares with it).
    public let sql: String?
    let body: @Sendable (SQLiteConnection) throws -> Void

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.body = { try $0.exec(sql) }
    }

    public init(version: Int, name: String, apply: @escaping @Sendable (SQLiteConnection) throws -> Void) {
        self.version = version
        self.name = name
        self.sql = nil
        self.body = apply
    }
}

/// The database was written by a newer Berth: this binary refuses it rather than write to a schema it does not know.
public struct SchemaTooNewError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let found: Int
    public let supported: Int

    public var description: String {
        "\(path) has metadata schema version \(found), but this berth knows versions up to \(supported): "
            + "it was written by a newer Berth; run that release or a later one (the database was not changed)"
    }
}

/// An unversioned database whose tables are not the ones the baseline creates: not adopted, not changed.
public struct SchemaMismatchError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let detail: String

    public var description: String {
        "\(path) has no schema version and does not match schema version 1, so it is not adopted (the database was not changed): \(detail)"
    }
}

/// Applies an ordered list of `SchemaMigration`s and records each in `schema_migrations`
/// (version, name, applied_at): one `BEGIN IMMEDIATE` transaction per migration, so a failing one
/// leaves the database at the previous version and two processes opening the same database never
/// both apply one (the second waits for the write lock, then sees the version already recorded).
///
/// A database from before versioning (tables, no `schema_migrations`) is adopted as version 1 when
/// every object it shares with the baseline is defined exactly as the baseline defines it; objects
/// it lacks are created. Objects the baseline does not know are left alone.
public enum SchemaMigrator {
    static let bookkeeping = """
        CREATE TABLE IF NOT EXISTS schema_migrations(
            version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)
        """

    /// The highest version recorded in the database; 0 when none is (a new or unversioned database). Writes nothing.
    public static func recordedVersion(_ c: SQLiteConnection) throws -> Int {
        let versioned = try c.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'") { _ in true }
        guard !versioned.isEmpty else { return 0 }
        return Int(try c.query("SELECT coalesce(max(version), 0) FROM schema_migrations") { $0.int(0) }.first ?? 0)
    }

    /// The recorded migrations, oldest first.
    public static func history(_ c: SQLiteConnection) throws -> [(version: Int, name: String, appliedAt: Double)] {
        guard try recordedVersion(c) > 0 else { return [] }
        return try c.query("SELECT version, name, applied_at FROM schema_migrations ORDER BY version") {
            (version: Int($0.int(0)), name: $0.text(1), appliedAt: $0.double(2))
        }
    }

    /// Brings the database to the last version of `migrations`; returns the versions applied (empty when it was current).
    @discardableResult
    public static func migrate(_ c: SQLiteConnection, path: String, migrations: [SchemaMigration],
                               now: () -> Double = { Date().timeIntervalSince1970 }) throws -> [Int] {
        precondition(migrations.enumerated().allSatisfy { $0.offset + 1 == $0.element.version },
                     "schema migrations must be numbered 1, 2, 3, … in order")
        let latest = migrations.last?.version ?? 0
        // Quick path, no write lock: already current (every open after the first).
        let seen = try recordedVersion(c)
        if seen > latest { throw SchemaTooNewError(path: path, found: seen, supported: latest) }
        if seen == latest { return [] }

        // Table rebuilds (SQLite's 12-step ALTER) need foreign keys off; they are checked before each commit instead.
        let foreignKeys = try c.query("PRAGMA foreign_keys") { $0.int(0) }.first ?? 0
        try c.exec("PRAGMA foreign_keys=OFF")
        defer { if foreignKeys != 0 { try? c.exec("PRAGMA foreign_keys=ON") } }

        var applied: [Int] = []
        for m in migrations {
            let done = try c.transaction { () -> Bool in
                let current = try recordedVersion(c)
                if current > latest { throw SchemaTooNewError(path: path, found: current, supported: latest) }
                if current >= m.version { return false }  // another process applied it while we waited
                if m.version == 1, let missing = try adoptionPlan(c, path: path, baseline: m) {
                    for sql in missing { try c.exec(sql) }  // an unversioned database, adopted as version 1
                } else {
                    try m.body(c)
                }
                let broken = try c.query("PRAGMA foreign_key_check") { $0.text(0) }
                if !broken.isEmpty {
                    throw StorageError("schema migration \(m.version) (\(m.name)) leaves rows breaking foreign keys in \(Set(broken).sorted())")
                }
                try c.exec(bookkeeping)
                try c.execute("INSERT INTO schema_migrations(version, name, applied_at) VALUES(?, ?, ?)",
                              [.integer(Int64(m.version)), .text(m.name), .real(now())])
                return true
            }
            if done { applied.append(m.version) }
        }
        return applied
    }

    /// Schema objects (tables, indexes, triggers, views) with their SQL, in creation order; SQLite's own are left out.
    static func objects(_ c: SQLiteConnection) throws -> [(type: String, name: String, sql: String)] {
        try c.query("""
            SELECT type, name, sql FROM sqlite_master
            WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations' ORDER BY rowid
            """) { (type: $0.text(0), name: $0.text(1), sql: $0.text(2)) }
    }

    /// SQL compared without regard to layout (SQLite keeps a statement's text as written).
    static func normalized(_ sql: String) -> String {
        sql.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
            .replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")")
    }

    /// For an unversioned database holding tables: the baseline objects it lacks, after checking that the
    /// ones it has are defined exactly as the baseline defines them. Nil for an empty database. Writes nothing.
    static func adoptionPlan(_ c: SQLiteConnection, path: String, baseline: SchemaMigration) throws -> [String]? {
        let existing = try objects(c)
        guard !existing.isEmpty else { return nil }
        guard let sql = baseline.sql else {
            throw SchemaMismatchError(path: path, detail: "the baseline migration is not plain SQL, so it cannot be compared")
        }
        let scratch = try SQLiteConnection(path: ":memory:")
        try scratch.exec(sql)
        let have = Dictionary(existing.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var missing: [String] = []
        for want in try objects(scratch) {
            if let got = have[want.name] {
                guard got.type == want.type, normalized(got.sql) == normalized(want.sql) else {
                    throw SchemaMismatchError(path: path, detail: "\(got.type) \(got.name) is `\(got.sql)`, the baseline's is `\(want.sql)`")
                }
            } else {
                missing.append(want.sql)
            }
        }
        return missing
    }

    /// Checks, without writing, that `migrate` may open the database: not newer than `migrations`, and
    /// when unversioned, adoptable. Run before anything touches the file (even the journal mode).
    public static func checkOpenable(_ c: SQLiteConnection, path: String, migrations: [SchemaMigration]) throws {
        let latest = migrations.last?.version ?? 0
        let found = try recordedVersion(c)
        if found > latest { throw SchemaTooNewError(path: path, found: found, supported: latest) }
        if found == 0, let baseline = migrations.first { _ = try adoptionPlan(c, path: path, baseline: baseline) }
    }
}
