import ArgumentParser
import BerthApp
import Foundation
import Hummingbird
import Logging

@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A self-hosted, ECR-compatible container registry.",
        subcommands: [Serve.self, VerifyConfig.self])
}

struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Data directory for embedded storage (default ./berth-data).")
    var dataDir: String?
    @Option(name: .long, help: "Address to listen on (default 127.0.0.1).")
    var host: String?
    @Option(name: .long, help: "Port to listen on (default 5000).")
    var port: Int?
    @Option(name: .long, help: "JSON configuration file.")
    var config: String?

    func load() throws -> BerthConfiguration {
        try BerthConfiguration.load(
            file: config, environment: ProcessInfo.processInfo.environment,
            overrides: .init(dataDir: dataDir, host: host, port: port))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the registry.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let config: BerthConfiguration
        do { config = try options.load() } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        }
        let level = Logger.Level(rawValue: config.logLevel) ?? .info
        let json = config.logFormat == "json"
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, level: level) }
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "berth")
        logger.info("starting berth", metadata: [
            "host": "\(config.host)", "port": "\(config.port)", "dataDir": "\(config.dataDir)",
            "metadata": "\(config.metadataBackend)", "blobs": "\(config.blobBackend)",
        ])
        let app = try buildApplication(config, logger: logger)
        try await app.runService()
        logger.info("berth stopped")
    }
}

struct VerifyConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-config", abstract: "Check the configuration and print the effective settings.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        do {
            let config = try options.load()
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try enc.encode(config), as: UTF8.self))
        } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        }
    }
}
