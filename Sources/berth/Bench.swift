import ArgumentParser
import BerthRegistry
import Foundation
#if canImport(Glibc)
import Glibc
#endif

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Micro-benchmarks of Berth's own code paths (no server needed).",
        subcommands: [BenchCrypto.self, BenchDisk.self])
}

struct BenchCrypto: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crypto",
        abstract: "AES-256-GCM seal/open and SHA-256 on this CPU, and the decrypting read path built on them (MiB/s, one thread).")
    @Option(help: "Content size in MiB.")
    var megabytes = 256
    @Option(help: "Size of the reads fed to the decrypting read path, in KiB (the file reader's is 2048).")
    var chunkKib = 2048
    @Option(help: "Repetitions of each measure (the fastest is reported).")
    var repeats = 3
    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func run() throws {
        guard megabytes > 0, chunkKib > 0, repeats > 0 else { throw ValidationError("sizes and repeats must be positive") }
        let results = try SealingBenchmark.run(megabytes: megabytes, chunk: chunkKib << 10, repeats: repeats)
        if json {
            let rows = results.map { ["name": $0.name, "mib_per_s": String(format: "%.0f", $0.mibPerSecond)] }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for r in results { print(String(format: "%8.0f MiB/s  %@", r.mibPerSecond, r.name)) }
        }
    }
}

/// What the data directory's filesystem itself allows: the ceiling of any push that stores its bytes there
/// (a registry writes every byte through the page cache, Distribution as Berth), and of reads from it.
struct BenchDisk: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disk",
        abstract: "Write and read throughput of a directory's filesystem with plain pwrite/pread (one thread, no hashing or encryption): the bound on push and pull there.")
    @Option(help: "Directory to write the test file in (the data directory's filesystem).")
    var dir = "."
    @Option(help: "File size in MiB.")
    var megabytes = 512
    @Option(help: "Size of each write and read, in KiB.")
    var chunkKib = 4096
    @Option(help: "Repetitions of each measure (the median is reported, with the range).")
    var repeats = 5

    struct Measure { var seconds: Double; var cpu: Double }

    /// Linux's O_DIRECT (a _GNU_SOURCE macro Swift does not import): its value differs by architecture.
    #if arch(arm64)
    static let oDirect: Int32 = 0o200000
    #else
    static let oDirect: Int32 = 0o40000
    #endif

    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }

    static func time(_ body: () throws -> Void) rethrows -> Measure {
        let (c0, t0) = (cpuSeconds(), DispatchTime.now().uptimeNanoseconds)
        try body()
        return Measure(seconds: Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9, cpu: cpuSeconds() - c0)
    }

    func run() throws {
        guard megabytes > 0, chunkKib > 0, chunkKib % 4 == 0, repeats > 0 else {
            throw ValidationError("sizes and repeats must be positive; --chunk-kib a multiple of 4 (O_DIRECT)")
        }
        let chunk = chunkKib << 10
        let total = megabytes << 20
        // Every write is a new file, and all are kept until the end: as uploads, each run needs fresh page-cache
        // pages (rewriting one file would reuse the pages its last run just freed, which are cheaper: in a VM
        // that returns free pages to the host, a fresh page costs a host fault on its first touch).
        var files: [String] = []
        func newPath() -> String {
            let p = (dir as NSString).appendingPathComponent(".berth-bench-disk-\(getpid())-\(files.count)")
            files.append(p)
            return p
        }
        var raw: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&raw, 4096, chunk) == 0, let buffer = raw else { throw ValidationError("out of memory") }
        defer { free(buffer); for f in files { unlink(f) } }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15  // incompressible bytes, so no layer below can cheat
        for i in 0..<(chunk / 8) {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17
            buffer.storeBytes(of: state, toByteOffset: i * 8, as: UInt64.self)
        }
        func writeFile(direct: Bool) throws -> Measure {
            let path = newPath()
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (direct ? Self.oDirect : 0), 0o600)
            guard fd >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
            defer { close(fd) }
            return try Self.time {
                var offset = 0
                while offset < total {
                    let n = pwrite(fd, buffer, min(chunk, total - offset), off_t(offset))
                    guard n > 0 else { throw ValidationError("write failed: \(String(cString: strerror(errno)))") }
                    offset += n
                }
            }
        }
        func readFile() throws -> Measure {
            let fd = open(files.last!, O_RDONLY)
            guard fd >= 0 else { throw ValidationError("cannot open \(files.last!)") }
            defer { close(fd) }
            return try Self.time {
                var offset = 0
                while offset < total {
                    let n = pread(fd, buffer, chunk, off_t(offset))
                    guard n > 0 else { throw ValidationError("read failed") }
                    offset += n
                }
            }
        }
        // Every run is kept: the page cache's cost swings with what the kernel must reclaim to find pages.
        var rows: [(String, [Measure])] = []
        func measure(_ name: String, _ run: () throws -> Measure) rethrows {
            var runs: [Measure] = []
            for _ in 0..<repeats { runs.append(try run()) }
            rows.append((name, runs.sorted { $0.seconds < $1.seconds }))
        }
        try measure("write through the page cache (a new file, as an upload)") { try writeFile(direct: false) }
        try measure("read from the page cache (the file just written)") { try readFile() }
        try measure("write with O_DIRECT (the device, no page cache)") { try writeFile(direct: true) }
        let mib = Double(total) / Double(1 << 20)
        print("   median MiB/s (fastest–slowest)   CPU s/GiB (median)")
        for (name, runs) in rows {
            let median = runs[runs.count / 2]
            print(String(format: "%8.0f (%5.0f–%5.0f)  %6.2f  %@", mib / median.seconds, mib / runs.first!.seconds,
                         mib / runs.last!.seconds, median.cpu / (mib / 1024), name))
        }
    }
}
