import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

@main
struct BerthBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "berth-bench",
        abstract: "Benchmark any OCI distribution-spec registry (anonymous, or HTTP Basic with --basic-auth).",
        subcommands: [Run.self, Compare.self, SelfTest.self],
        defaultSubcommand: Run.self
    )
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the benchmark against a registry base URL, e.g. http://127.0.0.1:5000 (the default command)."
    )

    @Argument(help: "Registry base URL, e.g. http://127.0.0.1:5000")
    var url: String

    @Flag(help: "Smoke-test sizes: blobs 1/16/64 MiB, 2,500 tags, 250 repos, 1 s per level.")
    var quick = false

    @Option(help: "Write the results as JSON to this file.")
    var json: String?

    @Option(name: .customLong("server-pid"), help: "PID of the registry process; sample its VmRSS/VmHWM from /proc.")
    var serverPID: Int32?

    @Option(help: "Comma-separated sections to run: \(Section.allCases.map(\.rawValue).joined(separator: ",")).")
    var only: String?

    @Option(help: "Seconds per concurrency level for the rate/latency tests (default 5, quick 1).")
    var duration: Double?

    @Option(help: "Blob sizes in MiB, comma-separated (default 1,64,512; quick 1,16,64).")
    var sizes: String?

    @Option(help: "Number of tags for the tag-list test (default 10000; quick 2500).")
    var tags: Int?

    @Option(help: "Number of repositories for the catalog test (default 1000; quick 250).")
    var repos: Int?

    @Option(help: "Timed repetitions for pull and list walks (median reported).")
    var repeats = 5

    @Option(help: "Concurrency used for untimed setup (tagging, catalog repos).")
    var setupConcurrency = 16

    @Option(help: "Repository name prefix; a random run id is appended.")
    var repoPrefix = "berth-bench"

    @Flag(help: "Skip the untimed digest verification pass of the pulled blob.")
    var noVerifyDigest = false

    @Option(name: .customLong("basic-auth"),
            help: ArgumentHelp("Send 'Authorization: Basic base64(USER:PASSWORD)' on every request, e.g. AWS:<token>. Falls back to $\(Run.basicAuthEnv); anonymous when neither is set.",
                               valueName: "USER:PASSWORD"))
    var basicAuth: String?

    static let basicAuthEnv = "BERTH_BENCH_BASIC_AUTH"

    @Option(name: .customLong("ca-file"),
            help: ArgumentHelp("For an https:// URL: trust the CA certificates in this PEM file (the chain is verified; nothing is skipped).",
                               valueName: "PEM"))
    var caFile: String?

    @Option(name: .customLong("contention-command"),
            help: ArgumentHelp("Shell command run again and again during the contention measure, e.g. a write by another process.",
                               valueName: "COMMAND"))
    var contentionCommand: String?

    @Option(name: .customLong("gc-command"),
            help: ArgumentHelp("Shell command run once during the gc measure (small pushes and manifest GETs at c=8 while it runs vs idle), e.g. `berth gc --data-dir D`.",
                               valueName: "COMMAND"))
    var gcCommand: String?

    /// `--basic-auth`, else a non-empty `$BERTH_BENCH_BASIC_AUTH`, else nil (anonymous).
    var credentials: String? {
        if let basicAuth { return basicAuth }
        if let v = ProcessInfo.processInfo.environment[Run.basicAuthEnv], !v.isEmpty { return v }
        return nil
    }

    mutating func validate() throws {
        if let only {
            for s in only.split(separator: ",") where Section(rawValue: String(s)) == nil {
                throw ValidationError("unknown section '\(s)'; known: \(Section.allCases.map(\.rawValue).joined(separator: ","))")
            }
        }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) {
            throw ValidationError("--ca-file \(caFile) is not a readable file")
        }
        if let pid = serverPID, !FileManager.default.fileExists(atPath: "/proc/\(pid)/status") {
            throw ValidationError("no such process: /proc/\(pid)/status does not exist")
        }
        if let sizes, sizes.split(separator: ",").contains(where: { Int($0) == nil || Int($0)! <= 0 }) {
            throw ValidationError("--sizes must be positive integers (MiB), comma-separated")
        }
        if repeats < 1 || repeats > 50 { throw ValidationError("--repeats must be 1…50") }
        if let d = duration, d <= 0 || d > 600 { throw ValidationError("--duration must be in (0, 600]") }
        if let t = tags, t < 1 || t > 200_000 { throw ValidationError("--tags must be 1…200000") }
        if let r = repos, r < 1 || r > 100_000 { throw ValidationError("--repos must be 1…100000") }
        if let c = credentials, (try? Registry.basicAuthorization(c)) == nil {
            let source = basicAuth != nil ? "--basic-auth" : "$\(Run.basicAuthEnv)"
            throw ValidationError("\(source) must be USER:PASSWORD with a non-empty USER")
        }
    }

    func run() async throws {
        _ = processStart
        let dur = duration ?? (quick ? 1 : 5)
        let config = BenchConfig(
            url: url,
            quick: quick,
            blobSizesMiB: sizes.map { $0.split(separator: ",").compactMap { Int($0) } } ?? (quick ? [1, 16, 64] : [1, 64, 512]),
            chunkMiB: 8,
            imageConcurrency: [1, 8, 32],
            latencyConcurrency: [1, 16, 64],
            duration: dur,
            warmup: min(1, dur / 2),
            tagCount: tags ?? (quick ? 2500 : 10_000),
            tagPageSize: 1000,
            repoCount: repos ?? (quick ? 250 : 1000),
            catalogPageSizes: [100, 1000],
            repeats: repeats,
            verifyDigest: !noVerifyDigest,
            serverPID: serverPID,
            sections: only.map { $0.split(separator: ",").compactMap { Section(rawValue: String($0)) } } ?? Section.defaults,
            setupConcurrency: setupConcurrency,
            repoPrefix: repoPrefix,
            smallLayerBytes: 2048,
            maxImagesPerLevel: quick ? 5_000 : 20_000,
            maxRequestsPerLevel: 2_000_000,
            authorization: try credentials.map(Registry.basicAuthorization),
            authDescription: credentials.map { "HTTP Basic, user \(Registry.basicAuthUser($0))" } ?? "anonymous",
            contentionCommand: contentionCommand,
            gcCommand: gcCommand
        )

        var httpConfig = HTTPClient.Configuration()
        httpConfig.httpVersion = .http1Only
        httpConfig.decompression = .disabled
        httpConfig.redirectConfiguration = .follow(max: 5, allowCycles: false)
        httpConfig.timeout = .init(connect: .seconds(10), read: .seconds(300))
        httpConfig.connectionPool = .init(idleTimeout: .seconds(120), concurrentHTTP1ConnectionsPerHostSoftLimit: config.poolSize)
        if let caFile {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(caFile)
            httpConfig.tlsConfiguration = tls
        }
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: httpConfig)

        let report: Report
        do {
            let bench = try Bench(config: config, client: client)
            report = await bench.run()
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()

        print(renderReport(report))
        if let json {
            try writeJSON(report, to: json)
            log("wrote \(json)")
        }
        if report.metrics.isEmpty && !report.errors.isEmpty { throw ExitCode(2) }
    }
}

struct Compare: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print two JSON reports side by side: measure | A | B | B/A."
    )

    @Argument(help: "Baseline report (JSON from --json).")
    var a: String

    @Argument(help: "Report to compare against the baseline.")
    var b: String

    @Option(help: "Column label for the baseline.")
    var labelA = "A"

    @Option(help: "Column label for the second report.")
    var labelB = "B"

    func run() async throws {
        let ra = try readReport(a)
        let rb = try readReport(b)
        print(renderComparison(ra, rb, labelA: labelA, labelB: labelB))
    }
}
