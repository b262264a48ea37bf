import CSQLite
import NIOPosix
import Synchronization

/// A value bound to or read from a SQLite statement.
public enum SQLiteValue: Sendable, Equatable {
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])
    case null
}

public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public let code: Int32
    public let message: String
    public var description: String { "sqlite error \(code): \(message)" }
}

private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection with a prepared-statement cache. Not thread-safe: guard it.
public final class SQLiteConnection: @unchecked Sendable {
    let db: OpaquePointer
    private var statements: [String: OpaquePointer] = [:]

    public init(path: String, readOnly: Bool = false) throws {
        var handle: OpaquePointer?
        let flags = (readOnly ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let msg = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "open failed"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(code: rc, message: msg)
        }
        db = handle
        sqlite3_busy_timeout(db, 10_000)
        sqlite3_extended_result_codes(db, 1)
    }

    private var closed = false

    deinit { close() }

    /// Closes the connection now rather than when it is released (a tool that must know its files are let go);
    /// it must not be used afterwards.
    public func close() {
        guard !closed else { return }
        closed = true
        for (_, s) in statements { sqlite3_finalize(s) }
        statements = [:]
        sqlite3_close_v2(db)
    }

    func error(_ rc: Int32) -> SQLiteError {
        SQLiteError(code: rc, message: String(cString: sqlite3_errmsg(db)))
    }

    /// Runs one or more statements without parameters.
    public func exec(_ sql: String) throws {
        var err: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(db, sql, nil, nil, &err)
        if rc != SQLITE_OK {
            let msg = err.map { String(cString: $0) } ?? "exec failed"
            sqlite3_free(err)
            throw SQLiteError(code: rc, message: msg)
        }
    }

    private func prepared(_ sql: String) throws -> OpaquePointer {
        if let s = statements[sql] { return s }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc) }
        statements[sql] = stmt
        return stmt
    }

    private func bind(_ stmt: OpaquePointer, _ values: [SQLiteValue]) throws {
        for (i, v) in values.enumerated() {
            let idx = Int32(i + 1)
            let rc: Int32
            switch v {
            case .integer(let x): rc = sqlite3_bind_int64(stmt, idx, x)
            case .real(let x): rc = sqlite3_bind_double(stmt, idx, x)
            case .text(let x): rc = sqlite3_bind_text(stmt, idx, x, -1, SQLITE_TRANSIENT)
            case .blob(let x):
                rc = x.withUnsafeBytes { sqlite3_bind_blob(stmt, idx, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
            case .null: rc = sqlite3_bind_null(stmt, idx)
            }
            guard rc == SQLITE_OK else { throw error(rc) }
        }
    }

    /// Runs a statement, calling `row` for each result row.
    public func query<T>(_ sql: String, _ values: [SQLiteValue] = [], row: (SQLiteRow) throws -> T) throws -> [T] {
        let stmt = try prepared(sql)
        defer { sqlite3_reset(stmt); sqlite3_clear_bindings(stmt) }
        try bind(stmt, values)
        var out: [T] = []
        while true {
            let rc = sqlite3_step(stmt)
            if rc == SQLITE_ROW {
                out.append(try row(SQLiteRow(stmt: stmt)))
            } else if rc == SQLITE_DONE {
                return out
            } else {
                throw error(rc)
            }
        }
    }

    /// Runs a statement that returns no rows; returns the number of rows changed.
    @discardableResult
    public func execute(_ sql: String, _ values: [SQLiteValue] = []) throws -> Int {
        _ = try query(sql, values) { _ in () }
        return Int(sqlite3_changes(db))
    }

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction, rolling back when it throws.
    public func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            _ = try? execute("ROLLBACK")
            throw error
        }
    }
}

extension SQLiteConnection {
    /// Registers `name(…)`, an SQL function of `argumentCount` arguments on this connection only, that calls
    /// `body` with its arguments and returns NULL; used by `TEMP` triggers to tell Swift of a row change.
    /// `body` runs on the thread that runs the statement.
    public func createFunction(_ name: String, argumentCount: Int32,
                               _ body: @escaping ([SQLiteValue]) -> Void) throws {
        final class Box { let body: ([SQLiteValue]) -> Void; init(_ b: @escaping ([SQLiteValue]) -> Void) { body = b } }
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let rc = sqlite3_create_function_v2(
            db, name, argumentCount, SQLITE_UTF8, box,
            { ctx, argc, argv in
                let box = Unmanaged<Box>.fromOpaque(sqlite3_user_data(ctx)!).takeUnretainedValue()
                var args: [SQLiteValue] = []
                for i in 0..<Int(argc) { args.append(SQLiteValue(argv![i])) }
                box.body(args)
                sqlite3_result_null(ctx)
            }, nil, nil,
            { p in p.map { Unmanaged<Box>.fromOpaque($0).release() } })
        guard rc == SQLITE_OK else { throw error(rc) }
    }
}

extension SQLiteValue {
    /// A function argument's value (copied).
    init(_ v: OpaquePointer?) {
        switch sqlite3_value_type(v) {
        case SQLITE_INTEGER: self = .integer(sqlite3_value_int64(v))
        case SQLITE_FLOAT: self = .real(sqlite3_value_double(v))
        case SQLITE_TEXT: self = .text(sqlite3_value_text(v).map { String(cString: $0) } ?? "")
        case SQLITE_BLOB:
            let n = Int(sqlite3_value_bytes(v))
            self = .blob(n > 0 ? Array(UnsafeRawBufferPointer(start: sqlite3_value_blob(v), count: n)) : [])
        default: self = .null
        }
    }
}

/// A result row; valid only inside the `row` closure.
public struct SQLiteRow {
    let stmt: OpaquePointer

    public func int(_ i: Int32) -> Int64 { sqlite3_column_int64(stmt, i) }
    public func double(_ i: Int32) -> Double { sqlite3_column_double(stmt, i) }
    public func isNull(_ i: Int32) -> Bool { sqlite3_column_type(stmt, i) == SQLITE_NULL }
    public func text(_ i: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, i) else { return "" }
        return String(cString: p)
    }
    public func optionalText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
    public func blob(_ i: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(stmt, i))
        guard n > 0, let p = sqlite3_column_blob(stmt, i) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
    /// The column's value with the type SQLite stored it as (for copying rows whatever their table).
    public func value(_ i: Int32) -> SQLiteValue {
        switch sqlite3_column_type(stmt, i) {
        case SQLITE_INTEGER: return .integer(int(i))
        case SQLITE_FLOAT: return .real(double(i))
        case SQLITE_TEXT:
            // The stored bytes, exactly: text that is not UTF-8 comes back as bytes rather than repaired.
            guard let p = sqlite3_column_text(stmt, i) else { return .text("") }
            let bytes = Array(UnsafeRawBufferPointer(start: p, count: Int(sqlite3_column_bytes(stmt, i))))
            if let s = String(validating: bytes, as: UTF8.self) { return .text(s) }
            return .blob(bytes)
        case SQLITE_BLOB: return .blob(blob(i))
        default: return .null
        }
    }
}

/// A SQLite database in WAL mode: one writer connection and a small pool of readers.
///
/// Every statement runs on the database's own threads, never on the caller's: a read or write that
/// waits (in the busy handler, for a lock another process holds, or on disk) blocks one of those
/// threads, not a thread of Swift's cooperative pool (one per core), which would stall every other
/// request of the server. Reads run on `readerThreads` threads; writes run one at a time on a single
/// writer thread, so they queue in that thread's work queue instead of holding threads on a lock.
/// The threads start with the database and stop when it is released.
public final class SQLiteDatabase: Sendable {
    /// Threads that run reads: enough for reads to pass one that waits, few enough to stay cheap.
    public static let readerThreads = 4

    public let path: String
    private let writer: Mutex<SQLiteConnection>
    private let readers: Mutex<[SQLiteConnection]>
    private let maxIdleReaders = 8
    private let readPool: NIOThreadPool
    private let writePool: NIOThreadPool
    private let afterWrite: @Sendable () -> Void

    /// Opens the database; `check` runs on the writer connection before anything is written
    /// (before the journal mode is set), so it can refuse a database without touching it.
    /// `afterWrite` runs on the writer's thread after every write, once it has committed or rolled back.
    public init(path: String, check: (SQLiteConnection) throws -> Void = { _ in },
                afterWrite: @escaping @Sendable () -> Void = {}) throws {
        self.path = path
        self.afterWrite = afterWrite
        let w = try SQLiteConnection(path: path)
        try check(w)
        try w.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
        writer = Mutex(w)
        readers = Mutex([])
        readPool = NIOThreadPool(numberOfThreads: Self.readerThreads)
        writePool = NIOThreadPool(numberOfThreads: 1)
        readPool._start(threadNamePrefix: "sqlite-r-")
        writePool._start(threadNamePrefix: "sqlite-w-")
    }

    deinit {
        // Queued work holds the database, so nothing is left to run here; the threads exit on their own.
        readPool.shutdownGracefully { _ in }
        writePool.shutdownGracefully { _ in }
    }

    /// Runs `body` with exclusive use of the writer connection, on the writer thread.
    public func write<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await run(on: writePool) { try self.writeOnCallingThread(body) }
    }

    /// Runs `body` with a reader connection (sees the last committed state), on a reader thread.
    public func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await run(on: readPool) {
            let conn = try self.readers.withLock { $0.popLast() } ?? SQLiteConnection(path: self.path)
            defer { self.readers.withLock { if $0.count < self.maxIdleReaders { $0.append(conn) } } }
            return try body(conn)
        }
    }

    /// Runs `body` with the writer connection on the calling thread: only for opening (migrations),
    /// before the database serves anyone.
    func writeOnCallingThread<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try writer.withLock { conn in
            defer { afterWrite() }
            return try body(conn)
        }
    }

    /// Runs `work` on `pool`. Unlike `NIOThreadPool.runIfActive`, a task cancelled while its work is
    /// queued still has it run, as when the work ran on the calling thread: a write is never dropped
    /// half-way through a request. The pools stop only when the database is released, which no
    /// queued work allows, so the `.cancelled` branch is for safety.
    private func run<T: Sendable>(on pool: NIOThreadPool, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, Error>) in
            pool.submit { state in
                switch state {
                case .active: cont.resume(with: Result(catching: work))
                case .cancelled: cont.resume(throwing: NIOThreadPoolError.ThreadPoolInactive())
                }
            }
        }
    }
}
