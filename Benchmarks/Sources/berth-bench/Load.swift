import Foundation
import Histogram

let benchClock = ContinuousClock()

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }
    var microseconds: UInt64 {
        let c = components
        return UInt64(max(0, c.seconds)) * 1_000_000 + UInt64(max(0, c.attoseconds) / 1_000_000_000_000)
    }
}

struct LoadResult: Sendable {
    var ok = 0
    var errors = 0
    var elapsed = 0.0
    /// Latencies of successful operations, in microseconds.
    var hist = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
    var firstError: String?

    var rate: Double { elapsed > 0 ? Double(ok) / elapsed : 0 }
    func percentileMs(_ p: Double) -> Double? {
        ok > 0 ? Double(hist.valueAtPercentile(p)) / 1000 : nil
    }
}

/// Runs `concurrency` workers, each calling `op(worker, seq)` back to back until `duration` seconds have passed
/// (no new operation starts after the deadline) or it has done `maxOpsPerWorker` operations, or `op` returns
/// false (no more work for this worker; that call is not counted)
/// Throughput is completed operations over the wall time until the last worker finished.
func runLoad(
    concurrency: Int,
    duration: Double,
    maxOpsPerWorker: Int,
    _ op: @escaping @Sendable (_ worker: Int, _ seq: Int) async throws -> Bool
) async -> LoadResult {
    let start = benchClock.now
    let deadline = start + .milliseconds(Int64(duration * 1000))
    let merged = await withTaskGroup(of: LoadResult.self) { group in
        for w in 0..<concurrency {
            group.addTask {
                var r = LoadResult()
                var seq = 0
                while benchClock.now < deadline && seq < maxOpsPerWorker && !Task.isCancelled {
                    let t0 = benchClock.now
                    do {
                        guard try await op(w, seq) else { break }
                        _ = r.hist.record((benchClock.now - t0).microseconds)
                        r.ok += 1
                    } catch {
                        r.errors += 1
                        if r.firstError == nil { r.firstError = String(describing: error) }
                    }
                    seq += 1
                }
                return r
            }
        }
        var total = LoadResult()
        for await r in group {
            total.ok += r.ok
            total.errors += r.errors
            total.hist.add(r.hist)
            if total.firstError == nil { total.firstError = r.firstError }
        }
        return total
    }
    var result = merged
    result.elapsed = (benchClock.now - start).seconds
    return result
}

/// Runs `op(i)` for every i in 0..<count with at most `concurrency` in flight; throws the first error.
func forEachConcurrently(
    _ count: Int,
    concurrency: Int,
    _ op: @escaping @Sendable (Int) async throws -> Void
) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let workers = max(1, min(concurrency, count))
        for w in 0..<workers {
            group.addTask {
                var i = w
                while i < count {
                    try Task.checkCancellation()
                    try await op(i)
                    i += workers
                }
            }
        }
        try await group.waitForAll()
    }
}

func median(_ xs: [Double]) -> Double? {
    guard !xs.isEmpty else { return nil }
    let s = xs.sorted()
    let n = s.count
    return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

func log(_ message: String) {
    let t = String(format: "%8.1fs", (benchClock.now - processStart).seconds)
    FileHandle.standardError.write(Data("[\(t)] \(message)\n".utf8))
}

let processStart = benchClock.now
