#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Wall-clock time in seconds since 1970, injected wherever time matters.
public protocol WallClock: Sendable {
    func now() -> Double
    /// Suspends until `now()` reaches `deadline`; throws `CancellationError` when the task is cancelled.
    func sleep(until deadline: Double) async throws
}

extension WallClock {
    public func sleep(until deadline: Double) async throws {
        let left = deadline - now()
        if left > 0 { try await Task.sleep(for: .seconds(left)) } else { try Task.checkCancellation() }
    }
}

public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// A clock tests move by hand: its sleepers wake when `advance` reaches their deadline.
public final class ManualWallClock: WallClock {
    private struct State {
        var time: Double
        var sleepers: [Int: (deadline: Double, wake: CheckedContinuation<Void, any Error>)] = [:]
        var nextSleeper = 0
        /// Sleepers cancelled before they registered.
        var cancelled: Set<Int> = []
    }
    private let state: Mutex<State>
    public init(_ start: Double = 1_700_000_000) { state = Mutex(State(time: start)) }
    public func now() -> Double { state.withLock { $0.time } }

    public func advance(by seconds: Double) {
        let due = state.withLock { s in
            s.time += seconds
            let due = s.sleepers.filter { $0.value.deadline <= s.time }
            for id in due.keys { s.sleepers[id] = nil }
            return due.values.map(\.wake)
        }
        for wake in due { wake.resume() }
    }

    /// How many tasks sleep on this clock (a test waits for a sleeper before it advances the clock).
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    public func sleep(until deadline: Double) async throws {
        let id = state.withLock { s in
            s.nextSleeper += 1
            return s.nextSleeper
        }
        defer { _ = state.withLock { $0.cancelled.remove(id) } }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (wake: CheckedContinuation<Void, any Error>) in
                let now: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled.contains(id) { return .failure(CancellationError()) }
                    if s.time >= deadline { return .success(()) }
                    s.sleepers[id] = (deadline, wake)
                    return nil
                }
                if let now { wake.resume(with: now) }
            }
        } onCancel: {
            let wake = state.withLock { s -> CheckedContinuation<Void, any Error>? in
                if let sleeper = s.sleepers.removeValue(forKey: id) { return sleeper.wake }
                s.cancelled.insert(id)
                return nil
            }
            wake?.resume(throwing: CancellationError())
        }
    }
}
