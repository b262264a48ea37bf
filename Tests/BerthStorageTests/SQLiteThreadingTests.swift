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

    /// Another process (here a second connection on the same file) holds the write lock for 2 s. Writes
    /// through the store wait for it, on the store's writer thread; reads need no lock in WAL mode and
    /// must all finish promptly meanwhile. More writes than cores wait, and more reads than cores run:
    /// were the waits on Swift's cooperative pool (one thread per core), they would take all its
    /// threads and every read would stall until the lock is released.
    @Test func readsProceedWhileAnotherConnectionHoldsTheWriteLock() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-lock-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/berth.db"
        let store = try SQLiteMetadataStore(path: path)
        let key = RepositoryKey(storedRegistryID: "111111111111", name: "app")
        #expect(try await store.createRepository(key, at: 1))

        let hold = Duration.seconds(2)
        let clock = ContinuousClock()
        let holder = try SQLiteConnection(path: path)
        try holder.exec("BEGIN IMMEDIATE")
        let heldAt = clock.now
        let releasedAt = Mutex<ContinuousClock.Instant?>(nil)
        // Released from a thread of its own, so the release never waits for the cooperative pool.
        DispatchQueue.global().asyncAfter(deadline: .now() + .seconds(2)) {
            releasedAt.withLock { $0 = clock.now }  // before COMMIT: nothing can finish a write earlier
            try? holder.exec("COMMIT")
        }

        let writers = max(2, ProcessInfo.processInfo.activeProcessorCount)
        let reads = 16
        let (readTimes, writeEnds) = try await withThrowingTaskGroup(of: (ReadTime?, ContinuousClock.Instant?).self) { group in
            for i in 0..<writers {
                group.addTask {
                    let created = try await store.createRepository(RepositoryKey(storedRegistryID: "111111111111", name: "w\(i)"), at: 2)
                    #expect(created)
                    return (nil, clock.now)
                }
            }
            // Give the writes time to reach the busy handler before the reads start.
            try await Task.sleep(for: .milliseconds(100))
            for _ in 0..<reads {
                group.addTask {
                    let start = clock.now
                    let record = try await store.repository(key)
                    #expect(record?.key == key)
                    let end = clock.now
                    return (ReadTime(took: end - start, end: end), nil)
                }
            }
            var readTimes: [ReadTime] = [], writeEnds: [ContinuousClock.Instant] = []
            for try await (read, write) in group {
                if let read { readTimes.append(read) }
                if let write { writeEnds.append(write) }
            }
            return (readTimes, writeEnds)
        }

        #expect(readTimes.count == reads)
        let released = try #require(releasedAt.withLock { $0 })
        #expect(readTimes.allSatisfy { $0.took < .milliseconds(500) }, "reads took \(readTimes.map(\.took))")
        #expect(readTimes.allSatisfy { $0.end < released }, "the reads finished while the lock was held")
        #expect(released - heldAt >= hold)
        #expect(writeEnds.count == writers)
        #expect(writeEnds.allSatisfy { $0 >= released }, "the writes finished after the lock was released")
        #expect(try await store.listRepositories(in: "111111111111", after: nil, limit: 100).count == writers + 1)
    }
}
