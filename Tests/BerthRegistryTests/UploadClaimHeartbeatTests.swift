@testable import BerthRegistry
import BerthSupport
import Synchronization
import Testing

/// A flag and a counter tasks share.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    func add() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// The heartbeat that keeps a chunk's claim on its upload alive (docs/s3.md), on a clock the test moves.
@Suite struct UploadClaimHeartbeatTests {
    /// A timeout of 60 s: renewals every 12 s, given up 30 s after the last one.
    func heartbeat(_ clock: ManualWallClock) -> UploadClaimHeartbeat { UploadClaimHeartbeat(clock: clock, timeout: 60) }

    /// Work that runs until it is cancelled, and says so.
    func untilCancelled(_ cancelled: Tally) -> @Sendable () async throws -> Int {
        {
            do {
                try await Task.sleep(for: .seconds(3600))
            } catch {
                cancelled.add()
                throw error
            }
            return 0
        }
    }

    /// Advances `clock` by `seconds` once `sleepers` tasks sleep on it (the heartbeat's and the watchdog's).
    func advance(_ clock: ManualWallClock, by seconds: Double, sleepers: Int = 2) async throws {
        for _ in 0..<5000 where clock.sleepers < sleepers { try await Task.sleep(for: .milliseconds(1)) }
        clock.advance(by: seconds)
    }

    @Test func renewsEveryFifthOfTheTimeoutUntilTheWorkEnds() async throws {
        let clock = ManualWallClock()
        let start = clock.now()
        let renewals = Mutex<[Double]>([])
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        let result = Task { () async throws -> Int in
            try await heartbeat(clock).holding(since: start, renew: { now in
                renewals.withLock { $0.append(now) }
                return true
            }, {
                for await _ in gate { break }
                return 42
            })
        }
        for beat in 1...6 {
            try await advance(clock, by: 12)
            for _ in 0..<5000 where renewals.withLock({ $0.count }) < beat { try await Task.sleep(for: .milliseconds(1)) }
        }
        open.yield()
        #expect(try await result.value == 42, "work that outlives the timeout by far keeps its claim")
        #expect(renewals.withLock { $0 } == (1...6).map { start + 12 * Double($0) })
        #expect(clock.sleepers == 0, "the heartbeat and the watchdog end with the work")
    }

    @Test func aClaimFoundTakenCancelsTheWork() async throws {
        let clock = ManualWallClock()
        let cancelled = Tally()
        let result = Task { () async throws -> Int in
            try await heartbeat(clock).holding(since: clock.now(), renew: { _ in false }, untilCancelled(cancelled))
        }
        try await advance(clock, by: 12)
        await #expect(throws: UploadClaimHeartbeat.Loss.takenOver) { try await result.value }
        #expect(cancelled.value == 1)
        #expect(clock.sleepers == 0)
    }

    /// The store fails every renewal: the writer gives up half a timeout after its last renewal, before any
    /// other node may take the claim over (a full timeout after it).
    @Test func renewalsThatFailGiveUpAfterHalfTheTimeout() async throws {
        let clock = ManualWallClock()
        let cancelled = Tally()
        let attempts = Tally()
        struct Unreachable: Error {}
        let result = Task { () async throws -> Int in
            try await heartbeat(clock).holding(since: clock.now(), renew: { _ in
                attempts.add()
                throw Unreachable()
            }, untilCancelled(cancelled))
        }
        try await advance(clock, by: 12)
        try await advance(clock, by: 12)
        for _ in 0..<5000 where attempts.value < 2 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(cancelled.value == 0, "24 s after the last renewal: still working")
        try await advance(clock, by: 6)
        await #expect(throws: UploadClaimHeartbeat.Loss.expired) { try await result.value }
        #expect(cancelled.value == 1)
        #expect(attempts.value == 2)
    }

    /// A renewal that never answers (a partitioned database) does not keep the writer going.
    @Test func aRenewalThatHangsGivesUpAfterHalfTheTimeout() async throws {
        let clock = ManualWallClock()
        let cancelled = Tally()
        let result = Task { () async throws -> Int in
            try await heartbeat(clock).holding(since: clock.now(), renew: { _ in
                try await Task.sleep(for: .seconds(3600))
                return true
            }, untilCancelled(cancelled))
        }
        try await advance(clock, by: 12)
        try await advance(clock, by: 18, sleepers: 1)  // the heartbeat waits for its renewal; the watchdog sleeps
        await #expect(throws: UploadClaimHeartbeat.Loss.expired) { try await result.value }
        #expect(cancelled.value == 1)
    }

    @Test func toleratesClocksHalfATimeoutApart() {
        let h = UploadClaimHeartbeat(clock: ManualWallClock(), timeout: 30)
        #expect(h.interval == 6 && h.abandonAfter == 15)
    }
}
