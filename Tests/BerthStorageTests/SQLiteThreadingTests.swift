import BerthCore
import Dispatch
import Foundation
import Synchronization
import Testing

@testable import BerthStorage

@Suite struct SQLiteThreadingTests {
    struct ReadTime: Sendable {
        let took: Duration
        let end: ContinuousClock.Instant
    }

    /// Another process (here a second connection on the same file) holds the write lock for 2 s or more. Writes
    /// through the store wait for it, on the store's writer thread; reads need no lock in WAL mode and
    /// must all finish promptly meanwhile. More writes than cores wait, and more reads than cores run:
    /// were the waits on Swift's cooperative pool (one thread per core), they would take all its
    /// threads and every read would stall until the lock is released.
    ///
    /// The test's tasks run on as many threads of its own (`ThreadsExecutor`) as the cooperative pool has:
    /// in a full parallel test run, other suites can keep that pool busy for seconds, which would start the
    /// reads too late.
    @Test func readsProceedWhileAnotherConnectionHoldsTheWriteLock() async throws {
        let threads = max(2, ProcessInfo.processInfo.activeProcessorCount)
        try await withTaskExecutorPreference(ThreadsExecutor(threads: threads)) { try await readsProceedWhileLocked() }
    }

    func readsProceedWhileLocked() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/berth.db"
        let store = try SQLiteMetadataStore(path: path)
        let key = RepositoryKey(storedRegistryID: "111111111111", name: "app")
        #expect(try await store.createRepository(key, at: 1))

        // The lock is held for 2 s, and longer (up to 8 s, under the 10 s busy timeout) until the reads
        // are done, so a test run that keeps the cooperative pool busy cannot start them too late.
        // It is released from a thread of its own, never waiting for the cooperative pool.
        let clock = ContinuousClock()
        let holder = try SQLiteConnection(path: path)
        try holder.exec("BEGIN IMMEDIATE")
        let heldAt = clock.now
        let readsDone = DispatchSemaphore(value: 0)
        let releasedAt = Mutex<ContinuousClock.Instant?>(nil)
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(2)) {
            _ = readsDone.wait(timeout: .now() + .seconds(6))
            releasedAt.withLock { $0 = clock.now }  // before COMMIT: no write can finish earlier
            try? holder.exec("COMMIT")
        }

        let writers = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let reads = 16
        async let writeEnds = withThrowingTaskGroup(of: ContinuousClock.Instant.self) { group in
            for i in 0..<writers {
                group.addTask {
                    let created = try await store.createRepository(RepositoryKey(storedRegistryID: "111111111111", name: "w\(i)"), at: 2)
                    #expect(created)
                    return clock.now
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Give the writes time to reach the busy handler before the reads start.
        try await Task.sleep(for: .milliseconds(100))
        let readTimes = try await withThrowingTaskGroup(of: ReadTime.self) { group in
            for _ in 0..<reads {
                group.addTask {
                    let start = clock.now
                    let record = try await store.repository(key)
                    #expect(record?.key == key)
                    let end = clock.now
                    return ReadTime(took: end - start, end: end)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        readsDone.signal()
        let writesEnded = try await writeEnds

        #expect(readTimes.count == reads)
        let released = try #require(releasedAt.withLock { $0 })
        #expect(readTimes.allSatisfy { $0.took < .milliseconds(500) }, "reads took \(readTimes.map(\.took))")
        #expect(readTimes.allSatisfy { $0.end < released }, "the reads finished while the lock was held")
        #expect(released - heldAt >= .seconds(2))
        #expect(writesEnded.count == writers)
        #expect(writesEnded.allSatisfy { $0 >= released }, "the writes finished after the lock was released")
        #expect(try await store.listRepositories(in: "111111111111", after: nil, limit: 100).count == writers + 1)
    }
}

/// A task executor with a fixed number of threads of its own, as Swift's cooperative pool has one per core,
/// so that a store which blocked its caller's thread would still stall the reads here. Its threads stay
/// parked when the test is over.
final class ThreadsExecutor: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    init(threads: Int) {
        for _ in 0..<threads {
            Thread.detachNewThread { [self] in
                while true {
                    ready.wait()
                    let job = jobs.withLock { $0.removeFirst() }
                    job.runSynchronously(on: asUnownedTaskExecutor())
                }
            }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }
}
