import ArgumentParser
#if canImport(Glibc)
import CBerthShims
#endif
import BerthApp
import BerthCore
import BerthScanEngine
import BerthScanService
import Foundation
import Hummingbird
import Logging

@main
struct Berth: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth",
        abstract: "A self-hosted, ECR-compatible container registry.",
        subcommands: [Serve.self, VerifyConfig.self, Admin.self, Scan.self, VulnDB.self, LifecycleCommand.self, GC.self, Usage.self,
                      ReplicationCommand.self, BenchCommand.self,
                      AuditCommand.self])
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
    @Option(name: .long, help: "Serve HTTPS with this PEM certificate chain (with --tls-key-file).")
    var tlsCertificateFile: String?
    @Option(name: .long, help: "The PEM private key of --tls-certificate-file.")
    var tlsKeyFile: String?

    func load() throws -> BerthConfiguration {
        try BerthConfiguration.load(
            file: config, environment: ProcessInfo.processInfo.environment,
            overrides: .init(dataDir: dataDir, host: host, port: port, tlsCertificateFile: tlsCertificateFile, tlsKeyFile: tlsKeyFile))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the registry.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        tuneAllocator()
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
        let services = try BerthServices.make(config, logger: logger)
        if let created = try await services.bootstrap(logger: logger) {
            // Printed once: the secret is only recoverable from the 0600 file in the data directory.
            print(BerthServices.credentialsJSON(account: config.accountId, id: created.accessKeyID, secret: created.secret))
        }
        services.bootstrapMetricsSystem()
        let app = buildApplication(services, logger: logger)
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
            var config = try options.load()
            if config.rootSecretAccessKey != nil { config.rootSecretAccessKey = "(redacted)" }
            config.postgresURL = config.postgresURLRedacted
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var json = try enc.encode(config)
            if config.blobBackend == "s3" {
                // The S3 settings are flat keys of the file, kept in their own value: print them alongside.
                var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
                for (key, value) in config.s3.effectiveEntries { object[key] = value }
                json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            }
            if !config.events.targets.isEmpty {
                // The event settings too (each target's secret printed as "(hidden)").
                var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
                object["eventTargets"] = try JSONSerialization.jsonObject(with: enc.encode(config.events.targets))
                object["eventMaxAttempts"] = config.events.maxAttempts
                object["eventRetryBaseSeconds"] = config.events.retryBaseSeconds
                object["eventRetryMaxSeconds"] = config.events.retryMaxSeconds
                object["eventPollSeconds"] = config.events.pollSeconds
                object["eventRetentionDays"] = config.events.retentionDays
                json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            }
            if !config.replication.peers.isEmpty {
                // The replication peers (each secret printed as "(hidden)").
                var object = try JSONSerialization.jsonObject(with: json) as? [String: Any] ?? [:]
                object["replicationPeers"] = try JSONSerialization.jsonObject(with: enc.encode(config.replication.peers))
                json = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            }
            print(String(decoding: json, as: UTF8.self))
            let problems = await config.probeBackends()
            guard problems.isEmpty else {
                let text = problems.map { "  - \($0)" }.joined(separator: "\n")
                FileHandle.standardError.write(Data("invalid configuration:\n\(text)\n".utf8))
                throw ExitCode(2)
            }
            for line in config.probedBackends { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data((e.description + "\n").utf8))
            throw ExitCode(2)
        }
    }
}

/// Allocator settings for streaming large blobs.
///
/// Multi-MiB buffers (4 MiB upload buffers, the read and decrypt buffers of downloads) come from the
/// heap's arenas, so a freed buffer's pages are reused warm by the next one. A buffer handed to NIO is
/// usually still referenced by the channel when the next read wants it back, so "reuse its two
/// buffers" does not happen on its own: with a 1 MiB mmap threshold every 2 MiB chunk
/// was a fresh mapping, faulted in page by page and unmapped again, and `perf` put a third of the
/// server's time in page faults. Warm pull of a 512 MiB blob, server CPU per GiB sent: buffered
/// 1,600 → 600 ms, decrypting 3,000 → about 1,000 ms. Buffers of 8 MiB and more still get their own
/// mapping. Two arenas keep fragmentation bounded; a long transfer ends with `malloc_trim`
/// (`FileSystemBlobStore.releaseFreedMemory`), so the resident set returns to its idle size between
/// transfers (berth-bench `--server-pid` reports VmRSS/VmHWM).
func tuneAllocator() {
    #if canImport(Glibc)
    _ = mallopt(M_ARENA_MAX, 2)
    _ = mallopt(M_MMAP_THRESHOLD, 8 << 20)
    _ = mallopt(M_TRIM_THRESHOLD, 32 << 20)
    #endif
}

struct Admin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bootstrap tasks that must work before any API key exists.",
        subcommands: [CreateAccount.self, CreateRootKey.self, ListPrincipals.self, TLSInit.self, EncryptExisting.self,
                      EventsCommand.self, Migrate.self])
}

struct EncryptExisting: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "encrypt-existing",
        abstract: "Seal blobs stored before encryption (or with encryptBlobs off), in place; resumable.",
        discussion: "Safe while servers run: each blob is rewritten under its commit lease, and servers notice a blob sealed since they opened it.")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let services = try await adminServices(options)
        let registries = try await services.registry.registryIDs()
        let done = try await services.registry.encryptExisting(registries: registries) { p, digest in
            FileHandle.standardError.write(Data("[\(p.examined)/\(p.total)] sealed \(p.sealed) (\(p.sealedBytes) bytes), skipped \(p.skipped): \(digest)\n".utf8))
        }
        print("{\"examined\": \(done.examined), \"sealed\": \(done.sealed), \"sealedBytes\": \(done.sealedBytes), \"skipped\": \(done.skipped)}")
    }
}

/// Opens the configured storage directly (the server may be running: SQLite allows it).
func adminServices(_ options: CommonOptions) async throws -> BerthServices {
    var logger = Logger(label: "berth.admin")
    logger.logLevel = .warning
    let config = try options.load()
    let services = try BerthServices.make(config, logger: logger)
    try await services.bootstrap(logger: logger)
    return services
}

struct CreateAccount: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-account", abstract: "Create an account and print its root access key as JSON.")
    @Argument(help: "The 12-digit account id.") var accountID: String
    @OptionGroup var options: CommonOptions

    func run() async throws {
        guard accountID.count == 12, accountID.allSatisfy(\.isASCII), accountID.allSatisfy(\.isNumber) else {
            throw ValidationError("ACCOUNT_ID must be 12 digits")
        }
        let services = try await adminServices(options)
        guard try await services.directory.createAccount(accountID, at: services.clock.now()) else {
            throw ValidationError("account \(accountID) already exists (use create-root-key to add a key)")
        }
        let key = try await BerthServices.createRootKey(account: accountID, directory: services.directory,
                                                        identity: services.identity, now: services.clock.now())
        print(BerthServices.credentialsJSON(account: accountID, id: key.accessKeyID, secret: key.secret))
    }
}

struct CreateRootKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create-root-key", abstract: "Add a root access key to an account (for rotation) and print it as JSON.")
    @Argument(help: "The 12-digit account id.") var accountID: String
    @Flag(help: "Deactivate the account's other root keys.") var deactivateOthers = false
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let services = try await adminServices(options)
        let directory = services.directory
        guard try await directory.account(accountID) != nil else { throw ValidationError("unknown account \(accountID)") }
        // The root's keys only: its IAM users' keys are theirs to rotate.
        let previous = try await directory.rootAccessKeys(account: accountID)
        let key = try await BerthServices.createRootKey(account: accountID, directory: directory, identity: services.identity,
                                                        now: services.clock.now())
        if deactivateOthers {
            for k in previous { try await directory.setAccessKeyStatus(k.accessKeyID, .inactive) }
        }
        print(BerthServices.credentialsJSON(account: accountID, id: key.accessKeyID, secret: key.secret))
    }
}

struct ListPrincipals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-principals", abstract: "List accounts and their access keys (never the secrets).")
    @OptionGroup var options: CommonOptions

    func run() async throws {
        let services = try await adminServices(options)
        for a in try await services.directory.accounts() {
            for k in try await services.directory.accessKeys(account: a.id) {
                print("\(a.id)\t\(k.principalARN)\t\(k.accessKeyID)\t\(k.status)")
            }
        }
    }
}

struct LifecycleCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lifecycle", abstract: "Lifecycle policies (ECR PutLifecyclePolicy) on demand.",
        subcommands: [LifecycleRun.self])
}

struct LifecycleRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Apply lifecycle policies now and print what was done (with --dry-run, what would be done).")
    @Option(name: .long, help: "Only this repository (of --account, default the configured account).") var repository: String?
    @Option(name: .long, help: "Only this account's repositories.") var account: String?
    @Flag(name: .long, help: "Change nothing; print what would be done.") var dryRun = false
    @OptionGroup var options: CommonOptions

    func run() async throws {
        if let account, account.count != 12 || !account.allSatisfy({ $0.isASCII && $0.isNumber }) {
            throw ValidationError("--account must be 12 digits")
        }
        let services = try await adminServices(options)
        let result: LifecycleRunResult
        do {
            // A run that changes images waits for one already running (the server's schedule, another node).
            let (repository, account, dryRun) = (self.repository, self.account, self.dryRun)
            let work: @Sendable () async throws -> LifecycleRunResult = {
                try await LifecycleRuns.run(services, repository: repository, account: account, dryRun: dryRun)
            }
            result = dryRun ? try await work() : try await services.registry.waitForLease(LifecycleRuns.lease, work)
        } catch {
            FileHandle.standardError.write(Data("berth lifecycle run: \(error)\n".utf8))
            throw ExitCode(1)
        }
        for line in LifecycleRuns.lines(result, dryRun: dryRun) { print(line) }
        if !result.failures.isEmpty { throw ExitCode(1) }
    }
}

struct TLSInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tls-init",
        abstract: "Make a local CA and a server certificate for HTTPS, and print how to use and trust them.",
        discussion: "Run again with the same --out to issue a new server certificate from the same CA (a rotation).")
    @Option(name: .long, parsing: .upToNextOption, help: "Host names and IP addresses the certificate is for (localhost and 127.0.0.1 are always added).")
    var host: [String] = []
    @Option(name: .long, help: "Directory for the PEM files.")
    var out: String = "./berth-tls"
    @Option(name: .long, help: "The port clients will use, for the printed instructions.")
    var port: Int = 5000

    func run() throws {
        do {
            let outcome = try LocalTLSAuthority.run(hosts: host, directory: out)
            print(LocalTLSAuthority.instructions(outcome, port: port))
        } catch let e as LocalTLSAuthority.InitError {
            throw ValidationError(e.description)
        }
    }
}

struct Scan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Scan an OCI image layout offline and print its findings as JSON (ECR finding shape).")
    @Argument(help: "The image: oci:DIR[:TAG]") var image: String
    @Option(help: "Directory of OSV advisories, one folder per ecosystem.") var vulndb: String

    func run() async throws {
        guard image.hasPrefix("oci:") else { throw ValidationError("IMAGE must be oci:DIR[:TAG]") }
        let spec = image.dropFirst(4)
        var dir = String(spec)
        var tag: String? = nil
        if let colon = spec.lastIndex(of: ":"), !spec[spec.index(after: colon)...].contains("/") {
            dir = String(spec[..<colon])
            tag = String(spec[spec.index(after: colon)...])
        }
        let database = try VulnerabilityDatabase.load(directory: URL(fileURLWithPath: vulndb))
        let report = try ImageScanner(matcher: Matcher(database: database)).scan(layout: URL(fileURLWithPath: dir), tag: tag)
        let findings: [[String: Any]] = report.findings.map { f in
            [
                "name": f.name, "uri": f.uri, "severity": f.severity.rawValue,
                "attributes": f.attributes.map { ["key": $0.key, "value": $0.value] },
            ]
        }
        let counts = Dictionary(uniqueKeysWithValues: report.severityCounts.map { ($0.key.rawValue, $0.value) })
        let out: [String: Any] = ["findings": findings, "findingSeverityCounts": counts, "packages": report.packages.count]
        let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

struct VulnDB: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vulndb", abstract: "Manage the offline vulnerability database the scanner uses.",
        subcommands: [VulnDBImport.self, VulnDBStatus.self])
}

struct VulnDBImport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import OSV advisories (one folder of *.json or osv.dev all.zip per ecosystem, or one all.zip) and make them current.",
        discussion: "A running registry on the same data directory picks the new database up within scanPollSeconds, "
            + "keeps serving meanwhile, and rescans repositories whose scan frequency is CONTINUOUS_SCAN.")
    @Argument(help: "The advisories: a directory of per-ecosystem folders of OSV JSON records or all.zip exports, or one <Ecosystem>/all.zip.") var path: String
    @OptionGroup var options: CommonOptions
    @Flag(help: "List every skipped or repaired record.") var verbose = false

    func run() async throws {
        let config = try options.load()
        let bundle = VulnerabilityBundle(dataDirectory: URL(fileURLWithPath: config.dataDir))
        let result: VulnerabilityBundle.ImportResult
        do {
            result = try bundle.importRecords(from: URL(fileURLWithPath: path))
        } catch let e as VulnerabilityBundle.BundleError {
            throw ValidationError(e.description)
        }
        let m = result.metadata
        print("imported \(m.recordsByFeed.values.reduce(0, +)) records as \(m.bundle) (skipped \(m.skipped), repaired \(m.repaired))")
        if verbose { for issue in result.issues { print("  \(issue)") } }
        VulnDBStatus.printCounts(m)
    }
}

struct VulnDBStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the current vulnerability database: records per ecosystem, newest modified.")
    @OptionGroup var options: CommonOptions
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let config = try options.load()
        let bundle = VulnerabilityBundle(dataDirectory: URL(fileURLWithPath: config.dataDir))
        guard let current = bundle.currentBundle() else {
            throw ValidationError("no vulnerability database is installed in \(config.dataDir); run `berth vulndb import PATH`")
        }
        let m = try bundle.metadata(bundle: current)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(m), as: UTF8.self))
            return
        }
        print("bundle \(m.bundle), imported \(Date(timeIntervalSince1970: m.importedAt)) from \(m.source)")
        Self.printCounts(m)
    }

    static func printCounts(_ m: VulnerabilityBundle.Metadata) {
        print("ecosystem\trecords")
        for (eco, n) in m.recordsByEcosystem.sorted(by: { $0.key < $1.key }) { print("\(eco)\t\(n)") }
        print("feeds: " + m.recordsByFeed.sorted(by: { $0.key < $1.key }).map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        print("newest modified: \(m.newestModified ?? "-") (\(m.newestModifiedID ?? "-"))")
    }
}
