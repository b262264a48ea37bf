import ArgumentParser
import BerthApp
import BerthCore
import BerthRegistry
import Foundation

/// `berth gc`: one garbage collection on the configured data directory. Safe beside a running
/// `berth serve` on the same data (docs/gc.md): every deletion is decided in a SQLite write transaction
/// that re-checks it, exactly as the server's own scheduled collection does.
struct GC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc", abstract: "Delete unreferenced blobs and orphaned files (works while the server runs).")
    @OptionGroup var options: CommonOptions
    @Flag(name: .long, help: "Report what would be deleted; delete nothing.")
    var dryRun = false
    @Option(name: .long, help: "Grace period in seconds (default: the gcGraceSeconds setting).")
    var grace: Int?
    @Flag(name: .long, help: "Print the summary as JSON.")
    var json = false
    @Option(name: .long, help: "Blobs decided per metadata transaction (default 64; smaller holds the write lock for less time).")
    var batchSize: Int = GarbageCollectionOptions().batchSize

    func run() async throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be 1 or more") }
        let services = try await adminServices(options)
        let graceSeconds = grace ?? services.config.gcGraceSeconds
        guard graceSeconds >= 0 else { throw ValidationError("--grace must be 0 or more") }
        let display = ProgressDisplay(enabled: isatty(STDERR_FILENO) == 1)
        let report = try await services.registry.collectGarbage(
            GarbageCollectionOptions(grace: Double(graceSeconds), dryRun: dryRun, batchSize: batchSize)) { display.show($0) }
        display.finish()
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try enc.encode(report), as: UTF8.self))
            return
        }
        let verb = dryRun ? "would delete" : "deleted"
        print("""
            \(dryRun ? "dry run: " : "")\(verb) \(report.blobsDeleted) blobs (\(ByteText.format(report.bytesFreed))), \
            \(report.orphanBlobFiles) orphaned blob files (\(ByteText.format(report.orphanBlobBytes))), \
            \(report.orphanUploads) orphaned uploads (\(ByteText.format(report.orphanUploadBytes)))
            stale upload sessions purged: \(report.staleUploadSessions); newly unreferenced blobs: \(report.newlyMarked)
            waiting out the grace period (\(graceSeconds) s): \(report.waitingBlobs) blobs (\(ByteText.format(report.waitingBytes)))
            total freed: \(ByteText.format(report.totalBytes)) in \(String(format: "%.2f", report.seconds)) s
            """)
    }
}

/// A one-line progress display on a terminal (standard error), redrawn at most ten times a second.
final class ProgressDisplay: @unchecked Sendable {
    private let enabled: Bool
    private let lock = NSLock()
    private var lastDraw = 0.0
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func show(_ p: GarbageCollectionProgress) {
        guard enabled else { return }
        lock.withLock {
            let now = Date().timeIntervalSince1970
            guard p.phase == .done || now - lastDraw >= 0.1 else { return }
            lastDraw = now
            let rate = p.elapsed > 0 ? Double(p.items) / p.elapsed : 0
            let bytesRate = p.elapsed > 0 ? Int64(Double(p.bytes) / p.elapsed) : 0
            let line = "\r\u{1B}[2K\(p.phase.rawValue): \(p.items) items, \(ByteText.format(p.bytes)), "
                + String(format: "%.0f items/s, ", rate) + "\(ByteText.format(bytesRate))/s, " + String(format: "%.1f s", p.elapsed)
            FileHandle.standardError.write(Data(line.utf8))
            drawn = true
        }
    }

    func finish() {
        lock.withLock { if drawn { FileHandle.standardError.write(Data("\n".utf8)) } }
    }
}

enum ByteText {
    static func format(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(bytes)
        var i = 0
        while abs(v) >= 1024 && i < units.count - 1 {
            v /= 1024
            i += 1
        }
        return i == 0 ? "\(bytes) B" : String(format: "%.1f ", v) + units[i]
    }
}

/// `berth usage`: storage figures per account and repository, from the counters the metadata keeps.
struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print storage usage per account and repository (works while the server runs).")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "Only this account (12 digits).")
    var account: String?
    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() async throws {
        let services = try await adminServices(options)
        let usage = try await services.registry.storageUsage(account: account, repositories: true)
        let keys = try await services.registry.storageUsageByKey(account: account, usage: usage)
        if json {
            print(Self.json(usage, keys: keys))
            return
        }
        print("on disk: \(usage.blobs) blobs, \(ByteText.format(usage.bytes)) (\(usage.bytes) bytes); "
              + "unreferenced: \(usage.unreferencedBlobs) blobs, \(ByteText.format(usage.unreferencedBytes))")
        let header = ["", "images", "stored", "unique", "shared", "reclaimable"]
        var rows: [[String]] = [header]
        func row(_ name: String, _ f: UsageFigures) -> [String] {
            [name, "\(f.images)", ByteText.format(f.storedBytes), ByteText.format(f.uniqueBytes), ByteText.format(f.sharedBytes),
             ByteText.format(f.reclaimableBytes)]
        }
        for (a, f) in usage.accounts.sorted(by: { $0.key < $1.key }) {
            rows.append(row("account \(a)", f))
            let repos = usage.repositories.filter { $0.key.registry.account == a }
            for (k, rf) in repos.sorted(by: { ($0.key.registryID, $0.key.name) < ($1.key.registryID, $1.key.name) }) {
                let prefix = k.registry.isPublic ? "public/" : ""
                rows.append(row("  \(prefix)\(k.name)", rf))
            }
        }
        Self.printTable(rows)
        guard !keys.isEmpty else { return }
        print("\nby encryption key:")
        var keyRows = [["key", "repositories", "images", "stored", "blobs", "on disk"]]
        for k in keys {
            keyRows.append([k.key, "\(k.repositories)", "\(k.images)", ByteText.format(k.storedBytes), "\(k.blobs)",
                            ByteText.format(k.bytes)])
        }
        Self.printTable(keyRows)
    }

    /// Rows in columns: the first left-aligned, the others right-aligned.
    static func printTable(_ rows: [[String]]) {
        guard let header = rows.first else { return }
        let widths = header.indices.map { i in rows.map { $0[i].count }.max() ?? 0 }
        for r in rows {
            print(r.indices.map { i in
                i == 0 ? r[i].padding(toLength: widths[i], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[i] - r[i].count) + r[i]
            }.joined(separator: "  "))
        }
    }

    static func figures(_ f: UsageFigures) -> [String: Any] {
        ["images": f.images, "storedBytes": f.storedBytes, "uniqueBytes": f.uniqueBytes, "sharedBytes": f.sharedBytes,
         "reclaimableBytes": f.reclaimableBytes]
    }

    static func json(_ u: StorageUsage, keys: [KeyUsage]) -> String {
        var accounts: [String: Any] = [:]
        for (a, f) in u.accounts {
            var entry = figures(f)
            var repos: [String: Any] = [:]
            for (k, rf) in u.repositories where k.registry.account == a {
                let prefix = k.registry.isPublic ? "public/" : ""
                repos[prefix + k.name] = figures(rf)
            }
            entry["repositories"] = repos
            accounts[a] = entry
        }
        let doc: [String: Any] = ["blobs": u.blobs, "bytes": u.bytes, "unreferencedBlobs": u.unreferencedBlobs,
                                  "unreferencedBytes": u.unreferencedBytes, "accounts": accounts,
                                  "keys": keys.map { ["key": $0.key, "repositories": $0.repositories, "images": $0.images,
                                                      "storedBytes": $0.storedBytes, "blobs": $0.blobs, "bytes": $0.bytes] as [String: Any] }]
        let data = (try? JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}
