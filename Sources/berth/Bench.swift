import ArgumentParser
import BerthRegistry
import Foundation

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench", abstract: "Micro-benchmarks of Berth's own code paths (no server needed).",
        subcommands: [BenchCrypto.self])
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
