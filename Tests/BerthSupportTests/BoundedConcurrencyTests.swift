import BerthSupport
import Synchronization
import Testing

@Suite struct BoundedConcurrencyTests {
    final class InFlight: Sendable {
        let state = Mutex((now: 0, peak: 0))
        func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
        func leave() { state.withLock { $0.now -= 1 } }
        var peak: Int { state.withLock { $0.peak } }
    }

    @Test(arguments: [1, 3, 8])
    func runsEveryElementWithAtMostTheLimitInFlight(limit: Int) async throws {
        let flight = InFlight()
        var seen: [Int: Int] = [:]
        try await BoundedConcurrency.forEach(Array(0..<20), concurrency: limit) { n in
            flight.enter()
            defer { flight.leave() }
            try await Task.sleep(for: .milliseconds(5 + (n % 3) * 5))
            return n * n
        } completed: { n, square in
            seen[n] = square
        }
        #expect(seen == Dictionary(uniqueKeysWithValues: (0..<20).map { ($0, $0 * $0) }))
        #expect(flight.peak == limit, "the limit is reached and never passed")
    }

    struct Boom: Error {}

    @Test func theFirstErrorStopsTheRest() async {
        let started = Mutex(0)
        await #expect(throws: Boom.self) {
            try await BoundedConcurrency.forEach(Array(0..<100), concurrency: 2) { n in
                started.withLock { $0 += 1 }
                if n == 3 { throw Boom() }
                try await Task.sleep(for: .milliseconds(2))
            } completed: { _, _ in }
        }
        #expect(started.withLock { $0 } < 10, "no new work starts after the failure")
    }

    @Test func anEmptyListAndAZeroLimitAreFine() async throws {
        var count = 0
        try await BoundedConcurrency.forEach([Int](), concurrency: 4) { $0 } completed: { _, _ in count += 1 }
        try await BoundedConcurrency.forEach([1, 2], concurrency: 0) { $0 } completed: { _, _ in count += 1 }
        #expect(count == 2)
    }
}
