import BerthStorage
import Foundation

/// Copying an embedded registry's metadata (its SQLite database) into PostgreSQL, for `berth admin migrate`
/// (docs/moving-up.md). One generic copier, driven by the two schemas rather than by a list of tables: the
/// versioned schemas are the same tables and columns in two dialects (`PostgresSchemaTests`), so every table
/// SQLite has is copied column by column, each value converted to the type PostgreSQL declares. A table
/// added by a later schema version is copied without touching this file; a table or column on one side only
/// stops the copy before it starts.
///
/// Rows are copied verbatim, in foreign-key order, in batches read in primary-key order (keyset pagination).
/// Each batch is one transaction that also records the batch's last key (the table's high-water mark, in
/// `berth_import_tables`), so a copy killed at any point resumes after the last committed batch; inserts
/// are `ON CONFLICT DO NOTHING` besides. Row triggers (the storage accounting of the GC schema) are disabled
/// inside each batch's transaction: the derived tables (`blob_usage`, `repository_usage`, …) are copied as
/// SQLite computed them, not counted a second time. `ALTER TABLE … DISABLE TRIGGER` is transactional, so no
/// other session ever sees a table without its triggers, and a killed copy leaves none disabled.
public enum MetadataImport {
    /// One table, as the copy left it.
    public struct Table: Sendable, Equatable, Codable {
        public let name: String
        public let sourceRows: Int
        public let targetRows: Int
        /// Rows inserted by this run (fewer than `sourceRows` when it resumed an earlier one).
        public let copied: Int
    }

    public struct Outcome: Sendable {
        public let schemaVersion: Int
        public let tables: [Table]
        /// An earlier, interrupted run of this copy was continued.
        public let resumed: Bool
        /// An earlier run had completed it: nothing was copied, the counts were checked again.
        public let alreadyComplete: Bool
    }

    /// Where the copy is: `table` (the `index`th of `count`) has `copied` of its `rows` rows in the target.
    public struct Progress: Sendable {
        public let index: Int
        public let count: Int
        public let table: String
        public let copied: Int
        public let rows: Int
    }

    /// A table of the source as the copy reads it: columns in order, primary key, tables it references.
    struct SourceTable: Sendable, Equatable {
        var name: String
        var columns: [String]
        var key: [String]
        var references: Set<String>
    }

    /// How a value goes to a PostgreSQL column, by the column's declared type.
    enum ColumnKind: Sendable, Equatable {
        case integer, real, text, bytes

        init?(postgresType t: String) {
            switch t {
            case "bigint", "integer", "smallint": self = .integer
            case "double precision", "real": self = .real
            case "text", "character varying", "character": self = .text
            case "bytea": self = .bytes
            default: return nil
            }
        }
    }

    /// The bookkeeping of a copy in the target database (outside the versioned schema: it belongs to the copy).
    static let bookkeeping = """
        CREATE TABLE berth_import(
            id INTEGER PRIMARY KEY CHECK(id = 1), source TEXT NOT NULL, schema_version INTEGER NOT NULL,
            started_at DOUBLE PRECISION NOT NULL, completed_at DOUBLE PRECISION);
        CREATE TABLE berth_import_tables(
            name TEXT PRIMARY KEY, last_key TEXT, copied BIGINT NOT NULL DEFAULT 0, done BOOLEAN NOT NULL DEFAULT FALSE);
        """

    /// Tables the schema migrations seed with a row (the all-zero storage totals): empty for the copy's purposes
    /// while that row is all zeros, and replaced by the source's row.
    static let seeded = ["storage_totals": "blobs <> 0 OR bytes <> 0 OR unreferenced_blobs <> 0 OR unreferenced_bytes <> 0"]

    /// The source's tables (SQLite's own and the migration history left out), parents before the tables referencing them.
    static func sourceTables(_ s: SQLiteConnection) throws -> [SourceTable] {
        let names = try s.query("""
            SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name != 'schema_migrations'
            ORDER BY name
            """) { $0.text(0) }
        var tables: [SourceTable] = []
        for name in names {
            let info = try s.query("SELECT name, pk FROM pragma_table_info(?) ORDER BY cid", [.text(name)]) { ($0.text(0), $0.int(1)) }
            let key = info.filter { $0.1 > 0 }.sorted { $0.1 < $1.1 }.map(\.0)
            let references = try s.query("SELECT \"table\" FROM pragma_foreign_key_list(?)", [.text(name)]) { $0.text(0) }
            tables.append(SourceTable(name: name, columns: info.map(\.0), key: key, references: Set(references).subtracting([name])))
        }
        return try dependencyOrder(tables)
    }

    /// `tables` with every table after the ones it references (ties by name, so the order is always the same).
    static func dependencyOrder(_ tables: [SourceTable]) throws -> [SourceTable] {
        var pending = tables.sorted { $0.name < $1.name }
        var placed: Set<String> = [], ordered: [SourceTable] = []
        let known = Set(tables.map(\.name))
        while !pending.isEmpty {
            guard let next = pending.firstIndex(where: { $0.references.intersection(known).isSubset(of: placed) }) else {
                throw MetadataImportError("the foreign keys of \(pending.map(\.name)) form a cycle")
            }
            placed.insert(pending[next].name)
            ordered.append(pending.remove(at: next))
        }
        return ordered
    }

    /// A SQLite value as a value of a PostgreSQL column of `kind`; a value that does not fit is an error, never a guess.
    static func convert(_ v: SQLiteValue, to kind: ColumnKind, at place: @autoclosure () -> String) throws -> PGValue {
        switch (v, kind) {
        case (.null, _): return .null
        case (.integer(let i), .integer): return .integer(i)
        case (.integer(let i), .real): return .real(Double(i))
        case (.real(let d), .real): return .real(d)
        case (.real(let d), .integer) where d.rounded() == d && abs(d) < 9.2e18: return .integer(Int64(d))
        case (.text(let s), .text): return .text(s)
        case (.text(let s), .integer) where Int64(s) != nil: return .integer(Int64(s)!)
        case (.text(let s), .real) where Double(s) != nil: return .real(Double(s)!)
        case (.text(let s), .bytes): return .blob(Array(s.utf8))
        case (.blob(let b), .bytes): return .blob(b)
        case (.blob(let b), .text) where String(validating: b, as: UTF8.self) != nil && !b.contains(0):
            return .text(String(decoding: b, as: UTF8.self))
        case (.integer(let i), .text): return .text(String(i))
        default: throw MetadataImportError("\(place()): the value \(v) does not fit a PostgreSQL column of type \(kind)")
        }
    }

    /// A primary key as stored in `berth_import_tables.last_key` (typed, so the next batch compares like SQLite does).
    static func encodeKey(_ key: [SQLiteValue]) throws -> String {
        let parts: [[String]] = key.map {
            switch $0 {
            case .integer(let i): ["i", String(i)]
            case .real(let d): ["r", String(d.bitPattern)]
            case .text(let s): ["t", s]
            case .blob(let b): ["b", Data(b).base64EncodedString()]
            case .null: ["n", ""]
            }
        }
        return String(decoding: try JSONEncoder().encode(parts), as: UTF8.self)
    }

    static func decodeKey(_ text: String) throws -> [SQLiteValue] {
        try JSONDecoder().decode([[String]].self, from: Data(text.utf8)).map { (part: [String]) throws -> SQLiteValue in
            guard part.count == 2 else { throw MetadataImportError("unreadable high-water mark \(text)") }
            switch part[0] {
            case "i": if let i = Int64(part[1]) { return .integer(i) }
            case "r": if let bits = UInt64(part[1]) { return .real(Double(bitPattern: bits)) }
            case "t": return .text(part[1])
            case "b": if let d = Data(base64Encoded: part[1]) { return .blob(Array(d)) }
            case "n": return .null
            default: break
            }
            throw MetadataImportError("unreadable high-water mark \(text)")
        }
    }

    static func quoted(_ identifier: String) -> String { "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// The batch after `last` (the first when nil), in primary-key order: each row's values and its key.
    static func batch(_ s: SQLiteConnection, _ t: SourceTable, after last: [SQLiteValue]?, limit: Int) throws
        -> [(values: [SQLiteValue], key: [SQLiteValue])] {
        let key = t.key.isEmpty ? ["rowid"] : t.key
        let keyList = key.map(quoted).joined(separator: ", ")
        var sql = "SELECT \(t.columns.map(quoted).joined(separator: ", ")), \(keyList) FROM \(quoted(t.name))"
        if last != nil { sql += " WHERE (\(keyList)) > (\(key.map { _ in "?" }.joined(separator: ", ")))" }
        sql += " ORDER BY \(keyList) LIMIT \(limit)"
        let n = Int32(t.columns.count)
        return try s.query(sql, last ?? []) { row in
            (values: (0..<n).map { row.value($0) }, key: (0..<Int32(key.count)).map { row.value(n + $0) })
        }
    }
}

public struct MetadataImportError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension PostgresMetadataStore {
    /// Copies every table of the embedded database `source` (opened read-only; never written) into this
    /// database, which must be empty or hold an unfinished copy of the same `source` (named by `label`,
    /// e.g. the database's path), which is then continued. Both must be at this Berth's latest schema
    /// version. Checks every table's row count at the end. `stopAfterBatches` ends the run early, as if it
    /// had been killed (tests).
    public func importEmbedded(from source: SQLiteConnection, label: String, batchSize: Int = 500,
                               stopAfterBatches: Int? = nil,
                               progress: @escaping @Sendable (MetadataImport.Progress) -> Void = { _ in }) async throws -> MetadataImport.Outcome {
        try await waitUntilReady()
        let run: @Sendable () async throws -> MetadataImport.Outcome = {
            try await self.runImport(from: source, label: label, batchSize: max(1, batchSize),
                                     stopAfterBatches: stopAfterBatches, progress: progress)
        }
        guard let outcome = try await withLease("berth metadata import", run) else {
            throw MetadataImportError("another `berth admin migrate` is copying into this database: wait for it to finish")
        }
        return outcome
    }

    private func runImport(from source: SQLiteConnection, label: String, batchSize: Int, stopAfterBatches: Int?,
                           progress: @Sendable (MetadataImport.Progress) -> Void) async throws -> MetadataImport.Outcome {
        typealias M = MetadataImport
        // Both schemas at this Berth's latest version, the same migrations applied on both sides.
        let sourceHistory = try SchemaMigrator.history(source).map { "\($0.version) \($0.name)" }
        let latest = SQLiteMetadataStore.migrations.map { "\($0.version) \($0.name)" }
        guard sourceHistory == latest else {
            throw M.error("the embedded database has metadata schema version \(sourceHistory.count), this berth's is \(latest.count): "
                          + (sourceHistory.count < latest.count
                             ? "upgrade it first (run this berth on it once, e.g. `berth admin list-principals --data-dir DIR`, then stop it)"
                             : "it was written by a newer Berth; migrate with that release"))
        }
        let targetHistory = try await read { c in try await PostgresSchemaMigrator.history(c) }.map { "\($0.version) \($0.name)" }
        guard targetHistory == sourceHistory else {
            throw M.error("the PostgreSQL schema (version \(targetHistory.count)) differs from the embedded one "
                          + "(version \(sourceHistory.count)): run the same Berth release on both")
        }

        // The same tables and columns on both sides.
        let tables = try M.sourceTables(source)
        let targetColumns = try await read { c in
            try await c.query("""
                SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name NOT IN ('schema_migrations', 'berth_import', 'berth_import_tables')
                ORDER BY table_name, ordinal_position
                """) { (try $0.text(0), try $0.text(1), try $0.text(2)) }
        }
        let byTable = Dictionary(grouping: targetColumns, by: \.0)
        let onlySource = Set(tables.map(\.name)).subtracting(byTable.keys).sorted()
        let onlyTarget = Set(byTable.keys).subtracting(tables.map(\.name)).sorted()
        guard onlySource.isEmpty, onlyTarget.isEmpty else {
            throw M.error("the schemas differ: tables only in SQLite \(onlySource), only in PostgreSQL \(onlyTarget)")
        }
        var kinds: [String: [M.ColumnKind]] = [:]
        for t in tables {
            let columns = Dictionary(byTable[t.name]!.map { ($0.1, $0.2) }, uniquingKeysWith: { a, _ in a })
            guard Set(columns.keys) == Set(t.columns) else {
                throw M.error("the columns of \(t.name) differ: SQLite \(t.columns), PostgreSQL \(columns.keys.sorted())")
            }
            kinds[t.name] = try t.columns.map { name in
                guard let kind = M.ColumnKind(postgresType: columns[name]!) else {
                    throw M.error("\(t.name).\(name) has PostgreSQL type \(columns[name]!), which the copy does not convert to")
                }
                return kind
            }
        }

        // Start, continue or re-check a copy.
        let (resumed, complete) = try await startImport(label: label, version: sourceHistory.count, tables: tables.map(\.name))
        var results: [M.Table] = []
        var batches = 0
        for (index, t) in tables.enumerated() {
            let rows = Int(try source.query("SELECT count(*) FROM \(M.quoted(t.name))") { $0.int(0) }.first ?? 0)
            var state: (lastKey: String?, copied: Int, done: Bool) = try await read { c in
                try await c.query("SELECT last_key, copied, done FROM berth_import_tables WHERE name = ?", [.text(t.name)]) {
                    (lastKey: try $0.optionalText(0), copied: Int(try $0.int(1)), done: try $0.bool(2))
                }.first
            } ?? (lastKey: nil, copied: 0, done: false)
            var copiedNow = 0
            if !complete && !state.done {
                let columns = t.columns.map(M.quoted).joined(separator: ", ")
                let perRow = "(" + t.columns.map { _ in "?" }.joined(separator: ", ") + ")"
                let limit = max(1, min(batchSize, 30_000 / max(1, t.columns.count)))
                let hasTriggers = try await read { c in
                    try await c.exists("SELECT 1 FROM pg_trigger WHERE tgrelid = ?::regclass AND NOT tgisinternal", [.text(t.name)])
                }
                var last = try state.lastKey.map(M.decodeKey)
                while true {
                    if let stop = stopAfterBatches, batches >= stop { throw M.error("stopped after \(stop) batches, as asked") }
                    let batch = try M.batch(source, t, after: last, limit: limit)
                    if batch.isEmpty { break }
                    var values: [PGValue] = []
                    values.reserveCapacity(batch.count * t.columns.count)
                    for row in batch {
                        for (i, v) in row.values.enumerated() {
                            values.append(try M.convert(v, to: kinds[t.name]![i], at: "\(t.name).\(t.columns[i])"))
                        }
                    }
                    let lastKey = try M.encodeKey(batch.last!.key)
                    let bound = values
                    let sql = "INSERT INTO \(M.quoted(t.name))(\(columns)) VALUES "
                        + Array(repeating: perRow, count: batch.count).joined(separator: ", ") + " ON CONFLICT DO NOTHING"
                    let inserted = try await withConnection { c in
                        try await c.execute("BEGIN")
                        do {
                            if hasTriggers { try await c.execute("ALTER TABLE \(M.quoted(t.name)) DISABLE TRIGGER USER") }
                            let n = try await c.execute(sql, bound)
                            try await c.execute("""
                                INSERT INTO berth_import_tables(name, last_key, copied) VALUES(?, ?, ?)
                                ON CONFLICT(name) DO UPDATE SET last_key = excluded.last_key,
                                    copied = berth_import_tables.copied + excluded.copied
                                """, [.text(t.name), .text(lastKey), .integer(Int64(n))])
                            if hasTriggers { try await c.execute("ALTER TABLE \(M.quoted(t.name)) ENABLE TRIGGER USER") }
                            try await c.execute("COMMIT")
                            return n
                        } catch {
                            _ = try? await c.execute("ROLLBACK")
                            throw error
                        }
                    }
                    batches += 1
                    copiedNow += inserted
                    state.copied += inserted
                    last = batch.last!.key
                    progress(M.Progress(index: index + 1, count: tables.count, table: t.name, copied: state.copied, rows: rows))
                    if batch.count < limit { break }
                }
                try await withConnection { c in
                    // Serial columns continue after the copied values.
                    let sequences = try await c.query("""
                        SELECT column_name::text, pg_get_serial_sequence(?, column_name::text) FROM information_schema.columns
                        WHERE table_schema = current_schema() AND table_name = ?
                        """, [.text(M.quoted(t.name)), .text(t.name)]) { (try $0.text(0), try $0.optionalText(1)) }
                    for case let (column, sequence?) in sequences {
                        _ = try await c.query("SELECT setval(?::regclass, max(\(M.quoted(column)))) FROM \(M.quoted(t.name)) "
                                              + "HAVING max(\(M.quoted(column))) IS NOT NULL", [.text(sequence)]) { _ in () }
                    }
                    try await c.execute("""
                        INSERT INTO berth_import_tables(name, done) VALUES(?, TRUE) ON CONFLICT(name) DO UPDATE SET done = TRUE
                        """, [.text(t.name)])
                }
                progress(M.Progress(index: index + 1, count: tables.count, table: t.name, copied: state.copied, rows: rows))
            }
            let target = try await read { c in try await c.count("SELECT count(*) FROM \(M.quoted(t.name))", []) }
            results.append(M.Table(name: t.name, sourceRows: rows, targetRows: target, copied: copiedNow))
        }
        // (After a completed copy the target may have moved on: its counts are reported, not checked.)
        let wrong = results.filter { $0.sourceRows != $0.targetRows }
        guard wrong.isEmpty || complete else {
            throw M.error("row counts differ after the copy: "
                          + wrong.map { "\($0.name) \($0.sourceRows) in SQLite, \($0.targetRows) in PostgreSQL" }.joined(separator: "; "))
        }
        if !complete {
            _ = try await read { c in
                try await c.execute("UPDATE berth_import SET completed_at = ? WHERE id = 1", [.real(Date().timeIntervalSince1970)])
            }
        }
        return M.Outcome(schemaVersion: sourceHistory.count, tables: results, resumed: resumed, alreadyComplete: complete)
    }

    /// When the copy of `label` into this database was completed (nil: no completed copy of it).
    public func importCompleted(label: String) async throws -> Date? {
        try await waitUntilReady()
        return try await read { c in
            guard try await c.exists("""
                SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'berth_import'
                """, []) else { return nil }
            return try await c.query("SELECT completed_at FROM berth_import WHERE id = 1 AND source = ?", [.text(label)]) {
                try $0.optionalDouble(0)
            }.first?.map { Date(timeIntervalSince1970: $0) }
        }
    }

    /// Records a new copy (after checking the database is empty), or finds the unfinished or finished copy
    /// of the same source; refuses anything else. Returns (continuing an earlier run, that run completed).
    private func startImport(label: String, version: Int, tables: [String]) async throws -> (resumed: Bool, complete: Bool) {
        typealias M = MetadataImport
        return try await withConnection { c in
            let marked = try await c.exists("""
                SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = 'berth_import'
                """, [])
            if marked {
                guard let row = try await c.query("SELECT source, completed_at FROM berth_import WHERE id = 1", [], row: {
                    (try $0.text(0), try $0.optionalDouble(1))
                }).first else { throw M.error("the database has an empty berth_import table: not a copy this berth made") }
                let (source, completed) = row
                guard source == label else {
                    throw M.error("the PostgreSQL database holds a copy of \(source), not of \(label): use an empty database")
                }
                return (true, completed != nil)
            }
            var used: [String] = []
            for t in tables {
                let extra = M.seeded[t].map { " WHERE \($0)" } ?? ""
                if try await c.exists("SELECT 1 FROM \(M.quoted(t))\(extra)", []) { used.append(t) }
            }
            guard used.isEmpty else {
                throw M.error("the PostgreSQL database is not empty (rows in \(used.joined(separator: ", "))): "
                              + "the copy goes into an empty database only (or continues its own unfinished run)")
            }
            try await c.execute("BEGIN")
            do {
                try await c.script(M.bookkeeping)
                try await c.execute("INSERT INTO berth_import(id, source, schema_version, started_at) VALUES(1, ?, ?, ?)",
                                    [.text(label), .integer(Int64(version)), .real(Date().timeIntervalSince1970)])
                for t in M.seeded.keys.sorted() { try await c.execute("DELETE FROM \(M.quoted(t))") }
                try await c.execute("COMMIT")
            } catch {
                _ = try? await c.execute("ROLLBACK")
                throw error
            }
            return (false, false)
        }
    }
}

extension MetadataImport {
    static func error(_ text: String) -> MetadataImportError { MetadataImportError(text) }
}
