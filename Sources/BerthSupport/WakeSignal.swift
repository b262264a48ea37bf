import Synchronization

/// Wakes one waiting task; a signal with nobody waiting is remembered until the next wait (the scan
/// workers' queue, the event delivery loop).
public final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)? = nil
        var nextID = 0
    }
    private let state = Mutex(State())

    public init() {}

    public func signal() {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter else {
                s.pending = true
                return nil
            }
            s.waiter = nil
            return w.continuation
        }
        c?.resume()
    }

    /// Returns after a signal or after `timeout`, whichever comes first.
    public func wait(timeout: Duration) async {
        let id = state.withLock { s -> Int in
            s.nextID += 1
            return s.nextID
        }
        let timer = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            self?.expire(id)
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.pending || Task.isCancelled {
                        s.pending = false
                        return true
                    }
                    s.waiter = (id, c)
                    return false
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            self.expire(id)
        }
        timer.cancel()
    }

    private func expire(_ id: Int) {
        let c = state.withLock { s -> CheckedContinuation<Void, Never>? in
            guard let w = s.waiter, w.id == id else { return nil }
            s.waiter = nil
            return w.continuation
        }
        c?.resume()
    }
}
