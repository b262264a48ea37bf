import BerthCore
import BerthStorage
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Cross-node cache coherence for `PostgresMetadataStore` (issue #14 §3): writes that can leave another
/// node's caches stale send `NOTIFY berth_changes` inside their transaction (delivered at commit, dropped on
/// rollback), with the payload `<schema> <node> <StoreChange.payload>`; every node `LISTEN`s on a connection
/// of its own and applies what other nodes of the same schema sent: an authorization change advances its
/// `AuthorizationGeneration` (key, identity and policy caches reload on the next request), the others go to
/// the observers (the registry's manifest and blob caches). When the listening connection is lost it is
/// re-established after a second, and everything is forgotten once, since notifications may have been
/// missed meanwhile. The caches' age limits (`authCacheSeconds`, `blobLinkCacheSeconds`, the manifest
/// cache's 5 s) stay the bound on staleness if the server drops notifications (its queue is full).
final class PostgresChangeListener: Sendable {
    static let channel = "berth_changes"

    /// This store's id in notifications: its own are not applied twice.
    let node = UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(16).description
    private let observers = Mutex<[@Sendable (StoreChange) -> Void]>([])
    private let generation: AuthorizationGeneration
    private let logger: Logger
    private let task = Mutex<Task<Void, Never>?>(nil)
    /// How many notifications from other nodes were applied (tests, diagnostics).
    let applied = Atomic<Int>(0)
    /// True while the LISTEN connection is up.
    let listening = Atomic<Bool>(false)

    init(generation: AuthorizationGeneration, logger: Logger) {
        self.generation = generation
        self.logger = logger
    }

    func observe(_ observer: @escaping @Sendable (StoreChange) -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// The statement a write runs in its transaction to tell the other nodes.
    func notify(_ c: PGConnection, _ change: StoreChange) async throws {
        try await c.execute("SELECT pg_notify('\(Self.channel)', current_schema() || ' ' || $1)", [.text("\(node) \(change.payload)")])
    }

    /// Starts listening once `ready` (the migration) has succeeded; does nothing if already started.
    func start(client: PostgresClient, ready: Task<Void, any Error>) {
        task.withLock { current in
            guard current == nil else { return }
            current = listen(client: client, ready: ready)
        }
    }

    private func listen(client: PostgresClient, ready: Task<Void, any Error>) -> Task<Void, Never> {
        Task { [weak self] in
            guard (try? await ready.value) != nil else { return }
            while !Task.isCancelled {
                do {
                    try await client.withConnection { connection in
                        guard let self else { return }
                        let c = PGConnection(connection: connection, logger: self.logger)
                        let schema = try await c.query("SELECT current_schema()") { try $0.text(0) }.first ?? ""
                        try await connection.listen(on: Self.channel) { notifications in
                            self.listening.store(true, ordering: .releasing)
                            // Whatever was sent while no connection listened is unknown.
                            self.apply(.everything)
                            for try await n in notifications { self.received(n.payload, schema: schema) }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    self?.logger.warning("listening for other nodes' changes failed; retrying", metadata: ["error": "\(error)"])
                }
                self?.listening.store(false, ordering: .releasing)
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    func stop() { task.withLock { $0?.cancel() } }

    func received(_ payload: String, schema: String) {
        let parts = payload.split(separator: " ", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == schema, parts[1] != node, let change = StoreChange(payload: parts[2]) else { return }
        applied.add(1, ordering: .relaxed)
        apply(change)
    }

    private func apply(_ change: StoreChange) {
        if change == .authorization || change == .everything { generation.advance() }
        for o in observers.withLock({ $0 }) { o(change) }
    }
}
