import BerthStorage
import BerthSupport
import Synchronization

/// What `LookupEvents` may filter on: one attribute (CloudTrail allows one), a time range, a page.
public struct AuditQuery: Sendable, Equatable {
    public enum Attribute: String, Sendable, CaseIterable {
        case eventID = "EventId", eventName = "EventName", readOnly = "ReadOnly", username = "Username"
        case resourceType = "ResourceType", resourceName = "ResourceName", eventSource = "EventSource"
        case accessKeyID = "AccessKeyId"
    }
    public var attribute: (key: Attribute, value: String)?
    /// Only events addressed to this account's registry or made by its principals.
    public var account: String?
    public var startTime: Double?
    public var endTime: Double?
    public var limit: Int
    /// The page after this cursor (newest first): the `(eventTime, eventID)` of the last event returned.
    public var after: (time: Double, id: String)?

    public init(attribute: (key: Attribute, value: String)? = nil, startTime: Double? = nil, endTime: Double? = nil,
                limit: Int = 50, after: (time: Double, id: String)? = nil) {
        self.attribute = attribute
        self.startTime = startTime
        self.endTime = endTime
        self.limit = limit
        self.after = after
    }

    public static func == (a: AuditQuery, b: AuditQuery) -> Bool {
        a.attribute?.key == b.attribute?.key && a.attribute?.value == b.attribute?.value && a.startTime == b.startTime
            && a.endTime == b.endTime && a.limit == b.limit && a.after?.time == b.after?.time && a.after?.id == b.after?.id
    }
}

/// An event as stored: the fields `LookupEvents` returns beside the full record text.
public struct StoredAuditEvent: Sendable, Equatable {
    public var eventID: String
    public var eventTime: Double
    public var eventName: String
    public var eventSource: String
    public var readOnly: Bool
    public var username: String?
    public var accessKeyID: String?
    public var resources: [AuditEvent.Resource]
    /// The CloudTrail record, as JSON text.
    public var record: String
}

/// Where the audit trail is kept: append-only (events are never changed; only retention removes them).
public protocol AuditStore: Sendable {
    func append(_ events: [AuditEvent]) async throws
    /// Newest first.
    func lookup(_ query: AuditQuery) async throws -> [StoredAuditEvent]
    /// Oldest first, from `since`, in pages of `limit` after `(time, id)`.
    func export(since: Double, after: (time: Double, id: String)?, limit: Int) async throws -> [StoredAuditEvent]
    /// Removes events older than `cutoff`; returns how many.
    func removeEvents(before cutoff: Double) async throws -> Int
}

/// The embedded audit store: its own SQLite file (`audit.db` beside `berth.db`), so that recording
/// requests never waits for the metadata database's write lock, nor holds it.
public final class SQLiteAuditStore: AuditStore {
    let database: SQLiteDatabase

    static let schema = """
        CREATE TABLE IF NOT EXISTS events(
            event_id TEXT PRIMARY KEY, event_time REAL NOT NULL, event_name TEXT NOT NULL,
            event_source TEXT NOT NULL, read_only INTEGER NOT NULL, username TEXT, access_key_id TEXT,
            recipient_account TEXT, principal_account TEXT, record TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS events_time ON events(event_time, event_id);
        CREATE INDEX IF NOT EXISTS events_name ON events(event_name, event_time);
        CREATE INDEX IF NOT EXISTS events_source ON events(event_source, event_time);
        CREATE INDEX IF NOT EXISTS events_username ON events(username, event_time) WHERE username IS NOT NULL;
        CREATE INDEX IF NOT EXISTS events_access_key ON events(access_key_id, event_time) WHERE access_key_id IS NOT NULL;
        CREATE TABLE IF NOT EXISTS event_resources(
            event_id TEXT NOT NULL REFERENCES events(event_id) ON DELETE CASCADE,
            type TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY(event_id, type, name)) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS event_resources_name ON event_resources(name);
        CREATE INDEX IF NOT EXISTS event_resources_type ON event_resources(type);
        """

    /// Opens (or creates) the file and its tables. The audit database has one schema version so far
    /// (`PRAGMA user_version` 1); a later change is a migration, as for `berth.db`.
    public init(path: String) throws {
        database = try SQLiteDatabase(path: path) { c in
            let version = try c.query("PRAGMA user_version") { $0.int(0) }.first ?? 0
            guard version <= 1 else { throw StorageError("\(path) has audit schema version \(version), newer than this berth knows (1)") }
            try c.exec(Self.schema + "PRAGMA user_version = 1;")
        }
    }

    public func append(_ events: [AuditEvent]) async throws {
        guard !events.isEmpty else { return }
        let rows = events.map { e in
            (e, String(decoding: e.encodedRecord(), as: UTF8.self))
        }
        try await database.write { c in
            try c.transaction {
                for (e, record) in rows {
                    let username = e.userIdentity?.lookupName
                    try c.execute("""
                        INSERT OR IGNORE INTO events(event_id, event_time, event_name, event_source, read_only, username,
                                                     access_key_id, recipient_account, principal_account, record)
                        VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """, [.text(e.eventID), .real(e.eventTime), .text(e.eventName), .text(e.eventSource),
                              .integer(e.readOnly ? 1 : 0), username.map { .text($0) } ?? .null,
                              e.userIdentity?.accessKeyID.map { .text($0) } ?? .null,
                              e.recipientAccountID.map { .text($0) } ?? .null,
                              e.userIdentity?.accountID.map { .text($0) } ?? .null, .text(record)])
                    for r in e.resources {
                        try c.execute("INSERT OR IGNORE INTO event_resources(event_id, type, name) VALUES(?, ?, ?)",
                                      [.text(e.eventID), .text(r.type), .text(r.name)])
                    }
                }
            }
        }
    }

    public func lookup(_ query: AuditQuery) async throws -> [StoredAuditEvent] {
        var conditions: [String] = []
        var values: [SQLiteValue] = []
        if let (key, value) = query.attribute {
            switch key {
            case .eventID: conditions.append("e.event_id = ?"); values.append(.text(value))
            case .eventName: conditions.append("e.event_name = ?"); values.append(.text(value))
            case .eventSource: conditions.append("e.event_source = ?"); values.append(.text(value))
            case .username: conditions.append("e.username = ?"); values.append(.text(value))
            case .accessKeyID: conditions.append("e.access_key_id = ?"); values.append(.text(value))
            case .readOnly: conditions.append("e.read_only = ?"); values.append(.integer(value == "true" ? 1 : 0))
            case .resourceName:
                conditions.append("e.event_id IN (SELECT event_id FROM event_resources WHERE name = ?)"); values.append(.text(value))
            case .resourceType:
                conditions.append("e.event_id IN (SELECT event_id FROM event_resources WHERE type = ?)"); values.append(.text(value))
            }
        }
        if let account = query.account {
            conditions.append("(e.recipient_account = ? OR e.principal_account = ?)")
            values += [.text(account), .text(account)]
        }
        if let s = query.startTime { conditions.append("e.event_time >= ?"); values.append(.real(s)) }
        if let t = query.endTime { conditions.append("e.event_time <= ?"); values.append(.real(t)) }
        if let (time, id) = query.after {
            conditions.append("(e.event_time < ? OR (e.event_time = ? AND e.event_id < ?))")
            values += [.real(time), .real(time), .text(id)]
        }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT \(Self.columns) FROM events e \(whereClause) ORDER BY e.event_time DESC, e.event_id DESC LIMIT ?"
        values.append(.integer(Int64(query.limit)))
        let bound = values
        return try await database.read { c in try Self.rows(c, sql, bound) }
    }

    public func export(since: Double, after: (time: Double, id: String)?, limit: Int) async throws -> [StoredAuditEvent] {
        var values: [SQLiteValue] = [.real(since)]
        var condition = "e.event_time >= ?"
        if let (time, id) = after {
            condition += " AND (e.event_time > ? OR (e.event_time = ? AND e.event_id > ?))"
            values += [.real(time), .real(time), .text(id)]
        }
        values.append(.integer(Int64(limit)))
        let sql = "SELECT \(Self.columns) FROM events e WHERE \(condition) ORDER BY e.event_time, e.event_id LIMIT ?"
        let bound = values
        return try await database.read { c in try Self.rows(c, sql, bound) }
    }

    public func removeEvents(before cutoff: Double) async throws -> Int {
        try await database.write { c in
            try c.transaction {
                try c.execute("DELETE FROM event_resources WHERE event_id IN (SELECT event_id FROM events WHERE event_time < ?)", [.real(cutoff)])
                return try c.execute("DELETE FROM events WHERE event_time < ?", [.real(cutoff)])
            }
        }
    }

    static let columns = "e.event_id, e.event_time, e.event_name, e.event_source, e.read_only, e.username, e.access_key_id, e.record"

    /// Events and their resources: one query for the events, one for all their resources.
    static func rows(_ c: SQLiteConnection, _ sql: String, _ values: [SQLiteValue]) throws -> [StoredAuditEvent] {
        var events = try c.query(sql, values) { r in
            StoredAuditEvent(eventID: r.text(0), eventTime: r.double(1), eventName: r.text(2), eventSource: r.text(3),
                             readOnly: r.int(4) != 0, username: r.optionalText(5), accessKeyID: r.optionalText(6),
                             resources: [], record: r.text(7))
        }
        guard !events.isEmpty else { return events }
        let marks = Array(repeating: "?", count: events.count).joined(separator: ",")
        let resources = try c.query("SELECT event_id, type, name FROM event_resources WHERE event_id IN (\(marks))",
                                    events.map { .text($0.eventID) }) { r in (r.text(0), AuditEvent.Resource(type: r.text(1), name: r.text(2))) }
        let byEvent = Dictionary(grouping: resources, by: \.0)
        for i in events.indices { events[i].resources = byEvent[events[i].eventID]?.map(\.1) ?? [] }
        return events
    }
}

/// The audit store of the `memory` metadata backend (tests, throwaway servers): the same answers as
/// ``SQLiteAuditStore``, nothing kept past the process.
public final class InMemoryAuditStore: AuditStore {
    private let events = Mutex<[StoredAuditEvent]>([])
    private let accounts = Mutex<[String: Set<String>]>([:])

    public init() {}

    public func append(_ new: [AuditEvent]) async throws {
        let stored = new.map { e in
            StoredAuditEvent(eventID: e.eventID, eventTime: e.eventTime, eventName: e.eventName, eventSource: e.eventSource,
                             readOnly: e.readOnly, username: e.userIdentity?.lookupName, accessKeyID: e.userIdentity?.accessKeyID,
                             resources: e.resources.map { AuditEvent.Resource(type: $0.type, name: $0.name) },
                             record: String(decoding: e.encodedRecord(), as: UTF8.self))
        }
        accounts.withLock { a in
            for e in new { a[e.eventID] = Set([e.recipientAccountID, e.userIdentity?.accountID].compactMap { $0 }) }
        }
        events.withLock { all in
            // An event recorded twice is kept once, as the SQLite store's primary key keeps it.
            let known = Set(all.map(\.eventID))
            all.append(contentsOf: stored.filter { !known.contains($0.eventID) })
        }
    }

    static func newestFirst(_ a: StoredAuditEvent, _ b: StoredAuditEvent) -> Bool {
        (a.eventTime, a.eventID) > (b.eventTime, b.eventID)
    }

    public func lookup(_ q: AuditQuery) async throws -> [StoredAuditEvent] {
        let owners = accounts.withLock { $0 }
        return events.withLock { all in
            all.filter { e in
                if let account = q.account, owners[e.eventID]?.contains(account) != true { return false }
                if let s = q.startTime, e.eventTime < s { return false }
                if let t = q.endTime, e.eventTime > t { return false }
                if let (time, id) = q.after, !((e.eventTime, e.eventID) < (time, id)) { return false }
                guard let (key, value) = q.attribute else { return true }
                switch key {
                case .eventID: return e.eventID == value
                case .eventName: return e.eventName == value
                case .eventSource: return e.eventSource == value
                case .username: return e.username == value
                case .accessKeyID: return e.accessKeyID == value
                case .readOnly: return e.readOnly == (value == "true")
                case .resourceName: return e.resources.contains { $0.name == value }
                case .resourceType: return e.resources.contains { $0.type == value }
                }
            }.sorted(by: Self.newestFirst).prefix(q.limit).map { $0 }
        }
    }

    public func export(since: Double, after: (time: Double, id: String)?, limit: Int) async throws -> [StoredAuditEvent] {
        events.withLock { all in
            all.filter { e in
                e.eventTime >= since && (after.map { (e.eventTime, e.eventID) > ($0.time, $0.id) } ?? true)
            }.sorted { !Self.newestFirst($0, $1) }.prefix(limit).map { $0 }
        }
    }

    public func removeEvents(before cutoff: Double) async throws -> Int {
        events.withLock { all in
            let before = all.count
            all.removeAll { $0.eventTime < cutoff }
            return before - all.count
        }
    }
}
