import Synchronization

/// One piece of upstream work that concurrent requests share: the first request (the leader) does it,
/// the others wait for its outcome.
final class Flight<Value: Sendable>: Sendable {
    enum State {
        case running([CheckedContinuation<Result<Value, any Error>, Never>])
        case done(Result<Value, any Error>)
    }
    let state = Mutex<State>(.running([]))

    func wait() async -> Result<Value, any Error> {
        await withCheckedContinuation { continuation in
            let done: Result<Value, any Error>? = state.withLock { s in
                switch s {
                case .running(var waiters):
                    waiters.append(continuation)
                    s = .running(waiters)
                    return nil
                case .done(let r):
                    return r
                }
            }
            if let done { continuation.resume(returning: done) }
        }
    }

    /// Settles the flight once; later calls do nothing.
    func finish(_ result: Result<Value, any Error>) {
        let waiters: [CheckedContinuation<Result<Value, any Error>, Never>] = state.withLock { s in
            guard case .running(let w) = s else { return [] }
            s = .done(result)
            return w
        }
        for w in waiters { w.resume(returning: result) }
    }
}

/// The flights in progress, by key.
final class Flights<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    let inProgress = Mutex<[Key: Flight<Value>]>([:])

    /// The flight for `key` and whether the caller leads it (a new one) or follows.
    func join(_ key: Key) -> (Flight<Value>, leader: Bool) {
        inProgress.withLock { m in
            if let f = m[key] { return (f, false) }
            let f = Flight<Value>()
            m[key] = f
            return (f, true)
        }
    }

    /// Ends the leader's flight: removed first, so a request arriving afterwards starts anew.
    func finish(_ key: Key, _ flight: Flight<Value>, _ result: Result<Value, any Error>) {
        inProgress.withLock { m in if m[key] === flight { m[key] = nil } }
        flight.finish(result)
    }

    /// Runs `work` once for concurrent callers of the same key.
    func run(_ key: Key, _ work: () async throws -> Value) async throws -> Value {
        let (flight, leader) = join(key)
        guard leader else { return try await flight.wait().get() }
        do {
            let value = try await work()
            finish(key, flight, .success(value))
            return value
        } catch {
            finish(key, flight, .failure(error))
            throw error
        }
    }
}
