import BerthPostgres
import BerthStorage
import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the `postgres` backend of the conformance suites runs on: the one
/// `BERTH_TEST_POSTGRES_URL` names (`scripts/test` starts a throwaway cluster and sets it). Each store gets
/// a schema of its own, so tests run in parallel on one database and never see each other's rows.
enum PostgresTestDatabase {
    static let environment = ProcessInfo.processInfo.environment
    static let url: String? = environment["BERTH_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    /// In CI a missing server fails the PostgreSQL cases; elsewhere they are left out, with a message.
    static let required = environment["CI"].map { !$0.isEmpty && $0 != "0" && $0 != "false" } ?? false

    static let available: Bool = {
        if url == nil && !required {
            print("note: BERTH_TEST_POSTGRES_URL is not set: the storage conformance suites skip PostgreSQL (scripts/test sets it)")
        }
        return url != nil || required
    }()

    struct Unavailable: Error, CustomStringConvertible {
        var description: String { "BERTH_TEST_POSTGRES_URL is not set (CI requires PostgreSQL: scripts/test starts a cluster)" }
    }

    static func settings() throws -> PostgresConnectionSettings {
        guard let url else { throw Unavailable() }
        return try PostgresConnectionSettings(url: url, environment: [:])
    }

    /// A client for creating schemas, running for the whole test process.
    static let admin: Result<PostgresClient, any Error> = Result {
        let client = PostgresClient(configuration: try settings().clientConfiguration, backgroundLogger: Logger(label: "test.postgres"))
        Task.detached { await client.run() }
        return client
    }

    /// A fresh, empty schema.
    static func newSchema() async throws -> String {
        let schema = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await admin.get().query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: Logger(label: "test.postgres"))
        return schema
    }

    /// A store on `schema` (migrated, ready).
    static func store(schema: String, migrations: [PostgresSchemaMigration] = PostgresMetadataStore.migrations) async throws
        -> PostgresMetadataStore {
        var configuration = try settings().clientConfiguration
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        // A generous bound: hundreds of suites migrate their schemas at once on a loaded 2-core machine.
        let store = PostgresMetadataStore(configuration: configuration, maximumConnections: 4, migrations: migrations,
                                          connectTimeout: 180)
        try await store.waitUntilReady()
        return store
    }
}
