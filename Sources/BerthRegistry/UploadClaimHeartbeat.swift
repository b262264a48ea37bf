import BerthSupport
import Synchronization

/// Keeps one request's claim on an upload (`UploadMetadata.claimUpload`) alive while the request works, so
/// the claim's timeout can be short (docs/s3.md "Claims renewed while their writer lives").
///
/// A heartbeat renews the claim every `interval`. When a renewal finds the claim taken over, or no renewal
/// has succeeded for `abandonAfter` (the store unreachable, this process stalled), the work is cancelled
/// and the claim is reported lost: the writer stops before any other node may take the upload over.
struct UploadClaimHeartbeat: Sendable {
    let clock: any WallClock
    /// How long a claim holds without renewal, judged by the node that would take it over.
    let timeout: Double

    /// Seconds between renewals.
    var interval: Double { timeout / 5 }
    /// Seconds after its last successful renewal a writer gives up. Another node takes the claim over only
    /// `timeout` after that renewal by its own clock, so clocks up to `timeout - abandonAfter` apart are safe.
    var abandonAfter: Double { timeout / 2 }

    enum Loss: Error, Equatable {
        /// A renewal found another writer holding the claim.
        case takenOver
        /// No renewal succeeded for `abandonAfter`.
        case expired
    }

    /// Runs `work` holding the claim taken at `claimedAt`, renewed with `renew(now)` (true: renewed; false:
    /// another writer holds it; a throw: the store failed, tried again at the next beat). Throws `Loss` (and
    /// cancels `work`) when the claim is lost before `work` ends; the heartbeat ends with `work`.
    func holding<T: Sendable>(
        since claimedAt: Double, renew: @escaping @Sendable (Double) async throws -> Bool,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let lastRenewal = Renewal(claimedAt)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            defer { group.cancelAll() }
            group.addTask { try await work() }
            group.addTask {
                var next = claimedAt + interval
                while true {
                    try await clock.sleep(until: next)
                    let now = clock.now()
                    do {
                        guard try await renew(now) else { throw Loss.takenOver }
                        lastRenewal.time.withLock { $0 = max($0, now) }
                    } catch let e as Loss {
                        throw e
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        // The store failed: the watchdog below decides when to give up.
                    }
                    next = now + interval
                }
            }
            // The watchdog, apart from the renewals: a renewal that hangs must not keep the writer going.
            group.addTask {
                while true {
                    let deadline = lastRenewal.time.withLock { $0 } + abandonAfter
                    try await clock.sleep(until: deadline)
                    if clock.now() >= lastRenewal.time.withLock({ $0 }) + abandonAfter { throw Loss.expired }
                }
            }
            while let finished = try await group.next() {
                if let value = finished { return value }
            }
            throw CancellationError()  // unreachable: the heartbeat and the watchdog end only by throwing
        }
    }

    /// The time of the last successful renewal, shared by the heartbeat and the watchdog.
    final class Renewal: Sendable {
        let time: Mutex<Double>
        init(_ time: Double) { self.time = Mutex(time) }
    }
}
