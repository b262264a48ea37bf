import Foundation

/// Exclusive leases on named background work (a garbage collection, a lifecycle run): at most one holder
/// at a time across every process that shares the metadata, released when the holder's work ends or when
/// its process dies (`kill -9` included), so the next holder knows that whatever an earlier holder left
/// half done is abandoned, and takes it over at once instead of waiting out a timeout.
///
/// The embedded store holds a lease with `flock` on a file beside its database; PostgreSQL with a
/// session advisory lock on a connection kept for the work (the server drops it when the connection
/// goes); the in-memory store in a table of its own.
public protocol WorkLeases: Sendable {
    /// Runs `body` while holding the lease on `name`. Returns nil, without running `body`, when another
    /// holder has it.
    func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T?
}

extension WorkLeases {
    /// Runs `body` under the lease on `name`, waiting (polling every `poll`) while another holder has it.
    public func waitForLease<T: Sendable>(_ name: String, poll: Duration = .milliseconds(200),
                                          _ body: @Sendable () async throws -> T) async throws -> T {
        while true {
            if let value = try await withLease(name, body) { return value }
            try await Task.sleep(for: poll)
        }
    }
}

/// Leases held within one process (the in-memory store; a SQLite database without a file).
final class ProcessLeaseTable: @unchecked Sendable {
    private let lock = NSLock()
    private var held: Set<String> = []

    func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        guard lock.withLock({ held.insert(name).inserted }) else { return nil }
        defer { lock.withLock { _ = held.remove(name) } }
        return try await body()
    }
}

/// Leases held with `flock` on one file per lease name beside a database file: exclusive across
/// processes (and across opens within one process), dropped by the kernel when the holder dies.
struct FileLeases: Sendable {
    /// The database file the lease files sit beside (`<database>-lease-<name>`).
    let databasePath: String

    func path(of name: String) -> String {
        let safe = String(name.unicodeScalars.map { c -> Character in
            CharacterSet.alphanumerics.contains(c) || c == "-" || c == "_" ? Character(c) : "_"
        })
        return "\(databasePath)-lease-\(safe)"
    }

    func withLease<T: Sendable>(_ name: String, _ body: @Sendable () async throws -> T) async throws -> T? {
        let file = path(of: name)
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file,
                                                          NSLocalizedDescriptionKey: "cannot open lease file \(file): errno \(errno)"])
        }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if errno == EWOULDBLOCK { return nil }
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: file,
                                                          NSLocalizedDescriptionKey: "cannot lock lease file \(file): errno \(errno)"])
        }
        return try await body()
    }
}

/// Who has an embedded database open: every `SQLiteMetadataStore` on a file holds a shared `flock` on
/// `<database>-lease-open` for as long as it lives (servers and `berth admin` commands alike, any number
/// at once), and `berth admin migrate` holds it exclusively while it copies the database, so neither starts
/// while the other runs. The kernel drops the lock with its process (`kill -9` included).
public final class DatabaseOpenLock: Sendable {
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }

    public static func path(database: String) -> String { FileLeases(databasePath: database).path(of: "open") }

    /// Takes the lock shared, for a store opening the database; throws while a copy holds it. Nil when the
    /// lock file cannot be made (a read-only directory): the store opens without it, as before locks existed.
    static func shared(database: String) throws -> DatabaseOpenLock? {
        let fd = open(path(database: database), O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return nil }
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            close(fd)
            throw StorageError("\(database) is being copied by `berth admin migrate`: wait for it to finish "
                               + "(then run berth on the configuration the registry was copied to)")
        }
        return DatabaseOpenLock(fd: fd)
    }

    /// Takes the lock exclusively, for a copy of the database; nil while any Berth process has it open.
    public static func exclusive(database: String) throws -> DatabaseOpenLock? {
        let file = path(database: database)
        let fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StorageError("cannot open lock file \(file): errno \(errno)") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return DatabaseOpenLock(fd: fd)
    }
}
