import ArgumentParser
import BerthApp
import Foundation

/// `berth admin migrate --to-config FILE`: moving an embedded registry up to PostgreSQL + S3 (docs/moving-up.md).
struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Copy this embedded registry (SQLite + filesystem) into the backends FILE names (PostgreSQL, S3); verified, resumable.",
        discussion: """
            The source is the registry of --config/--data-dir; it is opened read-only and left as it was. Stop every berth \
            process using it first (the migration refuses to start while one has it open, and they refuse to start during it). \
            FILE is a Berth configuration (metadataBackend: postgres + postgresURL and/or blobBackend: s3 + s3*); besides it, \
            only the secret-carrying variables apply to the target (BERTH_POSTGRES_URL, BERTH_S3_ACCESS_KEY_ID, \
            BERTH_S3_SECRET_ACCESS_KEY, AWS_*, PG*). The target must use the source's master key file. Progress goes to \
            stderr, a JSON summary to stdout. Run it again after an interruption: it continues where it stopped.
            """)
    @OptionGroup var options: CommonOptions
    @Option(name: .customLong("to-config"), help: "The target's Berth configuration file.")
    var toConfig: String
    @Option(name: .long, help: "Metadata rows copied per transaction (default 500).")
    var batchSize: Int = 500
    @Option(name: .long, help: "Blobs copied at the same time (default 4, at most 64).")
    var blobConcurrency: Int = 4

    /// The variables that apply to the target: the secrets people keep out of files.
    static func targetEnvironment(_ env: [String: String]) -> [String: String] {
        let kept: Set<String> = ["BERTH_POSTGRES_URL", "BERTH_S3_ACCESS_KEY_ID", "BERTH_S3_SECRET_ACCESS_KEY"]
        return env.filter { kept.contains($0.key) || $0.key.hasPrefix("AWS_") || $0.key.hasPrefix("PG") }
    }

    func run() async throws {
        let env = ProcessInfo.processInfo.environment
        let source: BerthConfiguration, target: BerthConfiguration
        do {
            source = try options.load()
            target = try BerthConfiguration.load(file: toConfig, environment: Self.targetEnvironment(env))
        } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        }
        guard batchSize > 0 else {
            FileHandle.standardError.write(Data("--batch-size must be at least 1\n".utf8))
            throw ExitCode(2)
        }
        guard (1...64).contains(blobConcurrency) else {
            FileHandle.standardError.write(Data("--blob-concurrency must be 1–64, got \(blobConcurrency)\n".utf8))
            throw ExitCode(2)
        }
        var migration = EmbeddedMigration.Options()
        migration.batchSize = batchSize
        migration.blobConcurrency = blobConcurrency
        do {
            let summary = try await EmbeddedMigration.run(source: source, target: target, options: migration,
                                                          environment: Self.targetEnvironment(env)) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(summary), as: UTF8.self))
            FileHandle.standardError.write(Data("migration complete: start berth with --config \(toConfig)\n".utf8))
        } catch {
            FileHandle.standardError.write(Data("migration failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}
