import Foundation
import NIOCore
import NIOPosix

extension Bench {
    // MARK: 8. Pushes and pulls during garbage collection

    /// Small-image pushes and manifest GETs by tag, both at c=8 and at the same time, first for `duration`
    /// seconds on a quiet server, then while `--gc-command` runs (started once; the measure lasts until it
    /// exits, at least `duration` seconds and at most ten minutes). Reports p50, p99 and max of each,
    /// failed requests, and the command's wall time and exit status. `http://` only (raw GET client).
    func garbageCollection() async throws {
        guard let command = config.gcCommand else { throw BenchError("gc: needs --gc-command") }
        guard registry.base.hasPrefix("http://") else { throw BenchError("gc: http:// only (raw load client)") }
        let sec = "during garbage collection"
        let repo = self.repo("gc")
        let target = try await manifestGetTarget(repo: repo)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await measureDuringGC(sec, command: command, repo: repo, target: target, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    private func measureDuringGC(_ sec: String, command: String, repo: String, target: RawLoad.Target,
                                 group: MultiThreadedEventLoopGroup) async throws {
        let c = 8
        let registry = self.registry

        /// Both loads for at least `seconds`, and until `until` says stop.
        func measure(_ label: String, seconds: Double, until: @escaping @Sendable () -> Bool) async throws {
            let images = makeImages(min(config.maxImagesPerLevel, 20_000))
            let start = benchClock.now
            let stop = StopFlag()
            async let pushes = runLoad(concurrency: c, duration: 600, maxOpsPerWorker: (images.count + c - 1) / c) { w, seq in
                let i = seq * c + w
                guard i < images.count, !stop.isSet else { return false }
                try await images[i].push(to: registry, repo: repo, tag: "\(label.replacingOccurrences(of: " ", with: "-"))-\(i)")
                return true
            }
            var gets = LoadResult()
            repeat {
                let r = try await RawLoad.run(target, concurrency: c, duration: 1, maxOpsPerWorker: 1_000_000, group: group)
                gets.ok += r.ok
                gets.errors += r.errors
                gets.elapsed += r.elapsed
                gets.hist.add(r.hist)
                if gets.firstError == nil { gets.firstError = r.firstError }
            } while (benchClock.now - start).seconds < seconds || !until()
            stop.set()
            let pushed = await pushes
            for (name, r, unit) in [("small image push", pushed, "images/s"), ("manifest GET by tag", gets, "req/s")] {
                let warning = r.errors > 0 ? "\(r.errors) failed, first: \(r.firstError ?? "")" : nil
                add(sec, "\(name), \(label), c=\(c)", unit, r.ok > 0 ? r.rate : nil, .higher,
                    note: "\(r.ok) ok, \(r.errors) failed in \(String(format: "%.1f", r.elapsed)) s", warning: warning)
                add(sec, "\(name), \(label), c=\(c) p50", "ms", r.percentileMs(50), .lower)
                add(sec, "\(name), \(label), c=\(c) p99", "ms", r.percentileMs(99), .lower)
                add(sec, "\(name), \(label), c=\(c) max", "ms", r.percentileMs(100), .lower)
            }
        }

        await warmConnections(c)
        try await measure("idle", seconds: config.duration, until: { true })
        let run = OneCommand(command: command)
        run.start()
        try await measure("during gc", seconds: config.duration, until: { run.finished })
        let (status, seconds) = await run.wait()
        add(sec, "gc command wall time", "s", seconds, .lower, note: "exit status \(status)",
            warning: status == 0 ? nil : "the gc command failed")
    }
}

/// Runs `/bin/sh -c command` once on a thread of its own.
final class OneCommand: @unchecked Sendable {
    let command: String
    private let lock = NSLock()
    private var result: (Int32, Double)?
    private let done = DispatchSemaphore(value: 0)

    init(command: String) { self.command = command }

    var finished: Bool { lock.withLock { result != nil } }

    func start() {
        Thread.detachNewThread { [self] in
            let t0 = benchClock.now
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            var status: Int32 = -1
            do {
                try p.run()
                p.waitUntilExit()
                status = p.terminationStatus
            } catch {}
            lock.withLock { result = (status, (benchClock.now - t0).seconds) }
            done.signal()
        }
    }

    func wait() async -> (Int32, Double) {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { self.done.wait(); c.resume() }
        }
        return lock.withLock { result! }
    }
}
