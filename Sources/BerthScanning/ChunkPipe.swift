import Foundation
import Synchronization

/// Carries chunks from an async producer (a blob read) to a blocking consumer on another thread
/// (the layer walker), holding at most `capacity` chunks in between.
final class ChunkPipe: Sendable {
    struct State {
        var queue: [[UInt8]] = []
        var finished = false
        var failure: String? = nil
        var cancelled = false
        var producerWaiting: CheckedContinuation<Void, Never>? = nil
    }
    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)
    let capacity: Int

    init(capacity: Int = 4) { self.capacity = capacity }

    /// Hands one chunk to the consumer, waiting while the pipe is full. False once the consumer gave up.
    func send(_ chunk: [UInt8]) async -> Bool {
        while true {
            enum Step { case sent, cancelled, wait }
            let step: Step = state.withLock { s in
                if s.cancelled { return .cancelled }
                if s.queue.count < capacity {
                    s.queue.append(chunk)
                    return .sent
                }
                return .wait
            }
            switch step {
            case .sent:
                available.signal()
                return true
            case .cancelled:
                return false
            case .wait:
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let resumeNow = state.withLock { s -> Bool in
                        if s.cancelled || s.queue.count < capacity { return true }
                        s.producerWaiting = c
                        return false
                    }
                    if resumeNow { c.resume() }
                }
            }
        }
    }

    /// Ends the stream, with a failure when the read failed.
    func finish(failure: String? = nil) {
        state.withLock { s in
            s.finished = true
            s.failure = failure
        }
        available.signal()
    }

    /// The next chunk, blocking until one arrives; nil at the end. Call from a thread that may block.
    func next() throws(PipeError) -> [UInt8]? {
        while true {
            enum Step { case chunk([UInt8], CheckedContinuation<Void, Never>?), end, failed(String), wait }
            let step: Step = state.withLock { s in
                if !s.queue.isEmpty {
                    let c = s.producerWaiting
                    s.producerWaiting = nil
                    return .chunk(s.queue.removeFirst(), c)
                }
                if s.finished { return s.failure.map { .failed($0) } ?? .end }
                return .wait
            }
            switch step {
            case .chunk(let bytes, let waiter):
                waiter?.resume()
                return bytes
            case .end:
                available.signal()  // keep later calls from blocking
                return nil
            case .failed(let m):
                available.signal()
                throw PipeError(message: m)
            case .wait:
                available.wait()
            }
        }
    }

    /// The consumer stops reading; a waiting producer is released.
    func cancel() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.cancelled = true
            let c = s.producerWaiting
            s.producerWaiting = nil
            return c
        }
        waiter?.resume()
    }

    struct PipeError: Error {
        var message: String
    }
}

/// Wakes one waiting task; a signal with nobody waiting is remembered until the next wait.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: (id: Int, continuation: CheckedContinuation<Void, Never>)? = nil
        var nextID = 0
    }
    private let state = Mutex(State())

    func signal() {
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
    func wait(timeout: Duration) async {
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
