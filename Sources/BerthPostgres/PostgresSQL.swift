import BerthStorage
import Foundation
import Logging
import NIOCore
import PostgresNIO

/// A value bound to a statement: the same cases as `SQLiteValue`, plus text arrays (bound as `text[]`,
/// for `= ANY($n)` and `unnest($n)`, so a batch is one statement instead of one per item).
enum PGValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case texts([String])
    case reals([Double])
    case null

    static func optional(_ s: String?) -> PGValue { s.map(PGValue.text) ?? .null }
    static func optional(_ d: Double?) -> PGValue { d.map(PGValue.real) ?? .null }
    static func optional(_ i: Int?) -> PGValue { i.map { .integer(Int64($0)) } ?? .null }
}

/// One row of a result, read by column index (as `SQLiteRow`). A value of the wrong type is an error, not a default.
struct PGRow {
    let row: PostgresRandomAccessRow

    func isNull(_ i: Int) -> Bool { row[i].bytes == nil }
    func text(_ i: Int) throws -> String { try row[i].decode(String.self, context: .default) }
    func optionalText(_ i: Int) throws -> String? { try row[i].decode(String?.self, context: .default) }
    func int(_ i: Int) throws -> Int64 { try row[i].decode(Int64.self, context: .default) }
    func optionalInt(_ i: Int) throws -> Int? { try row[i].decode(Int64?.self, context: .default).map { Int($0) } }
    func double(_ i: Int) throws -> Double { try row[i].decode(Double.self, context: .default) }
    func optionalDouble(_ i: Int) throws -> Double? { try row[i].decode(Double?.self, context: .default) }
    func bool(_ i: Int) throws -> Bool { try row[i].decode(Bool.self, context: .default) }
    func blob(_ i: Int) throws -> [UInt8] {
        guard var buffer = try row[i].decode(ByteBuffer?.self, context: .default) else { return [] }
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}

/// A leased connection, with the `query`/`execute` shape of `SQLiteConnection`: `?` placeholders are
/// numbered `$1, $2, …` in order (`$n` may also be written directly).
struct PGConnection {
    let connection: PostgresConnection
    let logger: Logger

    static func numbered(_ sql: String) -> String {
        guard sql.contains("?") else { return sql }
        var out = ""
        out.reserveCapacity(sql.count + 8)
        var n = 0
        var inLiteral = false
        for ch in sql {
            if ch == "'" { inLiteral.toggle() }
            if ch == "?", !inLiteral {
                n += 1
                out += "$\(n)"
            } else {
                out.append(ch)
            }
        }
        return out
    }

    static func bindings(_ values: [PGValue]) throws -> PostgresBindings {
        var b = PostgresBindings(capacity: values.count)
        for v in values {
            switch v {
            case .integer(let i): try b.append(i)
            case .real(let d): try b.append(d)
            case .text(let s): try b.append(s)
            case .blob(let bytes): try b.append(ByteBuffer(bytes: bytes))
            case .texts(let list): try b.append(list)
            case .reals(let list): try b.append(list)
            case .null: b.appendNull()
            }
        }
        return b
    }

    private func run(_ sql: String, _ values: [PGValue]) async throws -> PostgresQueryResult {
        let query = PostgresQuery(unsafeSQL: Self.numbered(sql), binds: try Self.bindings(values))
        do {
            return try await connection.query(query, logger: logger).get()
        } catch let error as PSQLError {
            throw PostgresError(error, sql: sql)
        }
    }

    /// Rows of a statement, each made by `row`.
    func query<T>(_ sql: String, _ values: [PGValue] = [], row: (PGRow) throws -> T) async throws -> [T] {
        try await run(sql, values).rows.map { try row(PGRow(row: $0.makeRandomAccess())) }
    }

    /// Runs a statement; returns the number of rows it inserted, updated or deleted.
    @discardableResult
    func execute(_ sql: String, _ values: [PGValue] = []) async throws -> Int {
        try await run(sql, values).metadata.rows ?? 0
    }

    /// Whether a query returns a row.
    func exists(_ sql: String, _ values: [PGValue]) async throws -> Bool {
        try await query("SELECT EXISTS(\(sql))", values) { try $0.bool(0) }.first ?? false
    }

    func count(_ sql: String, _ values: [PGValue]) async throws -> Int {
        Int(try await query(sql, values) { try $0.int(0) }.first ?? 0)
    }

    /// Several statements without parameters (DDL, migrations), run one after the other.
    func script(_ sql: String) async throws {
        for statement in Self.statements(sql) { try await execute(statement) }
    }

    /// `sql` cut at its semicolons, except those inside quotes ('…') and dollar-quoted bodies ($$…$$).
    /// (PostgresNIO sends every query as a prepared statement, which holds one command.)
    static func statements(_ sql: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inQuote = false, inBody = false
        var previous: Character = " "
        for ch in sql {
            if ch == "'" && !inBody { inQuote.toggle() }
            if ch == "$" && previous == "$" && !inQuote { inBody.toggle() }
            if ch == ";" && !inQuote && !inBody {
                let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
                if !trimmed.isEmpty { out.append(trimmed) }
                current = ""
            } else {
                current.append(ch)
            }
            previous = ch == "$" && previous == "$" ? " " : ch
        }
        let trimmed = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !trimmed.isEmpty { out.append(trimmed) }
        return out
    }
}

/// A failed statement, saying what PostgreSQL said (PostgresNIO's own errors print a generic text, so that
/// bound values never reach a log; this keeps that rule: the SQL, never the values).
public struct PostgresError: Error, CustomStringConvertible, Sendable {
    /// The SQLSTATE of a server error (`40001` serialization failure, `23505` unique violation, …).
    public let sqlState: String?
    public let message: String
    public let sql: String

    init(_ error: PSQLError, sql: String) {
        sqlState = error.serverInfo?[.sqlState]
        message = error.serverInfo?[.message] ?? "\(error.code)"
        self.sql = sql
    }

    /// Worth running the whole transaction again: a serialization failure or a deadlock.
    var isTransient: Bool { sqlState == "40001" || sqlState == "40P01" }

    public var description: String {
        let statement = sql.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        return "PostgreSQL: \(message)\(sqlState.map { " (SQLSTATE \($0))" } ?? "") in \(statement.prefix(160))"
    }
}

/// A statement of the hot path that PostgreSQL parses and plans once per connection instead of on every run
/// (a named prepared statement: `PostgresPreparedStatement`, which PostgresNIO prepares on each pooled
/// connection the first time it runs there). Each is a type of its own, whose name names the statement.
protocol PreparedSQL {
    /// The statement, with `$1, $2, …` placeholders.
    static var sql: String { get }
}

struct PreparedStatement<Q: PreparedSQL>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var name: String { "berth_\(Q.self)" }
    static var sql: String { Q.sql }
    let values: [PGValue]

    func makeBindings() throws -> PostgresBindings { try PGConnection.bindings(values) }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
}

extension PGConnection {
    /// Runs a prepared statement (`PreparedSQL`) that changes rows and returns one row per changed row
    /// (`RETURNING 1`); returns how many it changed. (PostgresNIO's command-tag answer for prepared statements
    /// traps unless every row was consumed, so the count is taken from the rows.)
    @discardableResult
    func execute<Q: PreparedSQL>(_ statement: Q.Type, _ values: [PGValue]) async throws -> Int {
        try await query(statement, values) { _ in () }.count
    }

    /// Rows of a prepared statement (`PreparedSQL`), each made by `row`.
    func query<Q: PreparedSQL, T>(_ statement: Q.Type, _ values: [PGValue], row: (PGRow) throws -> T) async throws -> [T] {
        do {
            var out: [T] = []
            for try await r in try await connection.execute(PreparedStatement<Q>(values: values), logger: logger) {
                out.append(try row(PGRow(row: r.makeRandomAccess())))
            }
            return out
        } catch let error as PSQLError {
            throw PostgresError(error, sql: Q.sql)
        }
    }
}
