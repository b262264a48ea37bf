import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Memory figures of a process from /proc/PID/status, in KiB.
struct ProcMemory: Sendable {
    var rssKiB: Int
    var hwmKiB: Int

    static func sample(pid: Int32) -> ProcMemory? {
        // procfs files report size 0, so read until EOF rather than trusting stat().
        let fd = open("/proc/\(pid)/status", O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 1 << 20 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        let text = String(decoding: bytes, as: UTF8.self)
        var rss: Int?
        var hwm: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("VmRSS:") {
                rss = Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
            } else if line.hasPrefix("VmHWM:") {
                hwm = Int(line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
            }
        }
        guard let rss, let hwm else { return nil }
        return ProcMemory(rssKiB: rss, hwmKiB: hwm)
    }
}

/// Samples VmRSS of a process every `interval` in a background task; tracks the run-wide peak and the peak
/// inside named windows (e.g. "during the 512 MiB push").
final class RSSSampler: Sendable {
    let pid: Int32
    private struct State {
        var overallPeak = 0
        var windowPeak: Int? = nil
        var samples = 0
    }
    private let state = NIOLockedValueBox(State())
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)

    init(pid: Int32) { self.pid = pid }

    func start(interval: Duration = .milliseconds(50)) {
        let pid = self.pid
        let t = Task.detached { [state] in
            while !Task.isCancelled {
                if let m = ProcMemory.sample(pid: pid) {
                    state.withLockedValue { s in
                        s.samples += 1
                        s.overallPeak = max(s.overallPeak, m.rssKiB)
                        if let w = s.windowPeak { s.windowPeak = max(w, m.rssKiB) }
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
        task.withLockedValue { $0 = t }
    }

    func stop() {
        task.withLockedValue { $0?.cancel(); $0 = nil }
    }

    func beginWindow() {
        let now = ProcMemory.sample(pid: pid)?.rssKiB
        state.withLockedValue { $0.windowPeak = now ?? 0 }
    }

    /// Ends the current window; returns its peak VmRSS in KiB.
    func endWindow() -> Int? {
        let now = ProcMemory.sample(pid: pid)?.rssKiB
        return state.withLockedValue { s in
            var p = s.windowPeak
            if let now, let cur = p { p = max(cur, now) }
            s.windowPeak = nil
            return p == 0 ? nil : p
        }
    }

    var overallPeakKiB: Int { state.withLockedValue { $0.overallPeak } }
    var sampleCount: Int { state.withLockedValue { $0.samples } }
}
