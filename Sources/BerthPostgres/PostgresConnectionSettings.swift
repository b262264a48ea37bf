import BerthStorage
import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL metadata store connects: a libpq-style URL
/// (`postgres://user:password@host:5432/database?sslmode=disable`; a unix socket directory as
/// `postgres:///database?host=/var/run/postgresql`), with what the URL leaves out taken from libpq's
/// variables (`PGHOST`, `PGPORT`, `PGUSER`, `PGPASSWORD`, `PGDATABASE`, `PGSSLMODE`), then libpq's defaults
/// (localhost, 5432, the user's name as user and database, `sslmode=prefer`).
public struct PostgresConnectionSettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: String

    public static let sslModes = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]

    /// A URL that does not parse, or a setting out of range.
    public struct Invalid: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(url: String?, environment: [String: String]) throws {
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        var host = env("PGHOST"), port = env("PGPORT"), user = env("PGUSER"), password = env("PGPASSWORD")
        var database = env("PGDATABASE"), sslMode = env("PGSSLMODE")
        if let url, !url.isEmpty {
            guard let c = URLComponents(string: url), let scheme = c.scheme, ["postgres", "postgresql"].contains(scheme) else {
                throw Invalid(description: "postgresURL must look like postgres://user:password@host:5432/database, got \(Self.redacted(url))")
            }
            if let h = c.percentEncodedHost, !h.isEmpty { host = h.removingPercentEncoding ?? h }
            if let p = c.port { port = String(p) }
            if let u = c.user, !u.isEmpty { user = u }
            if let p = c.password { password = p }
            let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
            if !path.isEmpty { database = path }
            for item in c.queryItems ?? [] {
                switch item.name {
                case "host": host = item.value
                case "port": port = item.value
                case "user": user = item.value
                case "password": password = item.value
                case "dbname": database = item.value
                case "sslmode": sslMode = item.value
                default: throw Invalid(description: "postgresURL: unknown parameter \(item.name) (known: host, port, user, password, dbname, sslmode)")
                }
            }
        }
        let defaultUser = env("USER") ?? env("LOGNAME") ?? "postgres"
        self.host = host ?? "localhost"
        guard let p = Int(port ?? "5432"), (1...65535).contains(p) else {
            throw Invalid(description: "PostgreSQL port must be 1–65535, got \(port ?? "")")
        }
        self.port = p
        self.user = user ?? defaultUser
        self.password = password
        self.database = database ?? self.user
        self.sslMode = sslMode ?? "prefer"
        guard Self.sslModes.contains(self.sslMode) else {
            throw Invalid(description: "sslmode must be one of \(Self.sslModes.joined(separator: ", ")), got \(self.sslMode)")
        }
    }

    /// A URL with its password hidden, for messages.
    public static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url), c.password != nil else { return url }
        c.password = "redacted"
        return c.string ?? "(unparsable URL)"
    }

    /// A host starting with `/` is a directory holding the server's socket (as in libpq).
    public var socketPath: String? { host.hasPrefix("/") ? "\(host)/.s.PGSQL.\(port)" : nil }

    public var clientConfiguration: PostgresClient.Configuration {
        if let socketPath {
            return PostgresClient.Configuration(unixSocketPath: socketPath, username: user, password: password, database: database)
        }
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case "disable": tls = .disable
        case "allow", "prefer": tls = .prefer(.makeClientConfiguration())
        case "require":
            // libpq's `require` encrypts without checking the certificate; verify-ca/verify-full check it.
            var t = TLSConfiguration.makeClientConfiguration()
            t.certificateVerification = .none
            tls = .require(t)
        default: tls = .require(.makeClientConfiguration())
        }
        return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
    }
}

extension PostgresMetadataStore {
    /// A store on the server `url` (or the `PG*` variables of `environment`) names.
    public convenience init(url: String?, environment: [String: String], maximumConnections: Int = 20,
                            logger: Logger = Logger(label: "berth.postgres")) throws {
        let settings = try PostgresConnectionSettings(url: url, environment: environment)
        self.init(configuration: settings.clientConfiguration, maximumConnections: maximumConnections, logger: logger)
    }
}

extension PostgresMetadataStore {
    /// Connects to the server `url` (or `PG*`) names and says what would stop a berth from using it, one
    /// sentence per problem (`berth verify-config`, `berth admin migrate`): no connection, no right to create
    /// tables in the schema, a schema written by a newer Berth. Writes nothing.
    public static func probe(url: String?, environment: [String: String], timeout: Double = 10) async -> [String] {
        let settings: PostgresConnectionSettings
        do { settings = try PostgresConnectionSettings(url: url, environment: environment) } catch { return ["\(error)"] }
        let logger = Logger(label: "berth.postgres.probe")
        let client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
        let running = Task { await client.run() }
        defer { running.cancel() }
        let server = settings.socketPath ?? "\(settings.host):\(settings.port)"
        do {
            return try await withThrowingTaskGroup(of: [String].self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        let c = PGConnection(connection: connection, logger: logger)
                        var problems: [String] = []
                        let (schema, canCreate) = try await c.query(
                            "SELECT current_schema()::text, has_schema_privilege(current_schema(), 'CREATE')") {
                                (try $0.optionalText(0), try $0.bool(1))
                            }.first ?? (nil, false)
                        if schema == nil {
                            problems.append("no schema to work in: the search_path of user \(settings.user) names no existing schema")
                        } else if !canCreate {
                            problems.append("user \(settings.user) may not create tables in schema \(schema!) (GRANT CREATE ON SCHEMA \(schema!) TO \(settings.user))")
                        }
                        let version = try await PostgresSchemaMigrator.recordedVersion(c)
                        if version > migrations.count {
                            problems.append("\(PostgresSchemaTooNewError(found: version, supported: migrations.count))")
                        }
                        return problems
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .seconds(timeout))
                    return ["no connection to PostgreSQL at \(server) within \(Int(timeout)) s (is the server running, are postgresURL or PG* right?)"]
                }
                let first = try await group.next() ?? []
                group.cancelAll()
                return first
            }
        } catch let error as PSQLError {
            return ["\(PostgresError(error, sql: "(connecting to \(server) as \(settings.user))"))"]
        } catch {
            return ["PostgreSQL at \(server): \(error)"]
        }
    }
}
