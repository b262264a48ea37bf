import BerthCore
import Prometheus
import Synchronization

/// Storage accounting on `GET /metrics` (docs/gc.md), read from the counters the metadata store keeps
/// current (no scan of the data), at most once per `refreshSeconds`:
///
/// - `berth_storage_bytes`, `berth_storage_blobs`: the blobs on disk, each counted once;
/// - `berth_storage_unreferenced_bytes`, `berth_storage_unreferenced_blobs`: those no manifest references
///   (what collections will free once their grace period is over);
/// - `berth_storage_account_bytes{account,kind}` with `kind` `stored` (sum of image sizes, as clients see
///   them), `unique` (blobs only this account references), `shared` and `reclaimable`;
///   `berth_storage_account_images{account}`.
///
/// Per repository figures are left to `berth usage`: a label per repository would make the series
/// unbounded.
public final class StorageMetrics: Sendable {
    public typealias Source = @Sendable () async throws -> StorageUsage
    let registry: PrometheusCollectorRegistry
    let source: Source
    let refreshSeconds: Double
    let now: @Sendable () -> Double
    private let totals: (bytes: Gauge, blobs: Gauge, unreferencedBytes: Gauge, unreferencedBlobs: Gauge)

    struct AccountGauges: Sendable {
        let stored, unique, shared, reclaimable, images: Gauge
    }
    private struct State {
        var refreshedAt = -Double.infinity
        var accounts: [String: AccountGauges] = [:]
    }
    private let state = Mutex(State())

    public init(registry: PrometheusCollectorRegistry, refreshSeconds: Double = 10,
                now: @escaping @Sendable () -> Double, source: @escaping Source) {
        self.registry = registry
        self.source = source
        self.refreshSeconds = refreshSeconds
        self.now = now
        totals = (registry.makeGauge(name: "berth_storage_bytes", help: "Bytes of all blobs, each counted once"),
                  registry.makeGauge(name: "berth_storage_blobs", help: "Blobs stored"),
                  registry.makeGauge(name: "berth_storage_unreferenced_bytes", help: "Bytes of blobs no manifest references"),
                  registry.makeGauge(name: "berth_storage_unreferenced_blobs", help: "Blobs no manifest references"))
    }

    /// Reads the figures again if the last read is older than `refreshSeconds`.
    public func refresh() async throws {
        let t = now()
        let due = state.withLock { s in
            guard t - s.refreshedAt >= refreshSeconds else { return false }
            s.refreshedAt = t
            return true
        }
        guard due else { return }
        apply(try await source())
    }

    func apply(_ usage: StorageUsage) {
        totals.bytes.set(usage.bytes)
        totals.blobs.set(usage.blobs)
        totals.unreferencedBytes.set(usage.unreferencedBytes)
        totals.unreferencedBlobs.set(usage.unreferencedBlobs)
        state.withLock { s in
            for (account, f) in usage.accounts {
                let g = s.accounts[account] ?? makeGauges(account)
                s.accounts[account] = g
                g.stored.set(f.storedBytes)
                g.unique.set(f.uniqueBytes)
                g.shared.set(f.sharedBytes)
                g.reclaimable.set(f.reclaimableBytes)
                g.images.set(f.images)
            }
            // Accounts that disappeared read 0 rather than their last value.
            for (account, g) in s.accounts where usage.accounts[account] == nil {
                for gauge in [g.stored, g.unique, g.shared, g.reclaimable, g.images] { gauge.set(Int64(0)) }
            }
        }
    }

    private func makeGauges(_ account: String) -> AccountGauges {
        func bytes(_ kind: String) -> Gauge {
            registry.makeGauge(name: "berth_storage_account_bytes", labels: [("account", account), ("kind", kind)],
                               help: "Storage per account: stored (sum of image sizes), unique, shared, reclaimable")
        }
        return AccountGauges(stored: bytes("stored"), unique: bytes("unique"), shared: bytes("shared"),
                             reclaimable: bytes("reclaimable"),
                             images: registry.makeGauge(name: "berth_storage_account_images", labels: [("account", account)],
                                                        help: "Images stored per account"))
    }
}
