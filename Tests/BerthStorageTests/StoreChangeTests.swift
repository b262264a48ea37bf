@testable import BerthPostgres
import BerthCore
import BerthStorage
import Foundation
import Synchronization
import Testing

@Suite struct StoreChangeTests {
    @Test func payloadsRoundTrip() throws {
        let d1 = Digest.sha256(of: Array("a".utf8)), d2 = Digest.sha256(of: Array("b".utf8))
        let all: [StoreChange] = [.authorization, .everything, .events, .repository(k("team/app")),
                                  .repository(RepositoryKey(storedRegistryID: "public:" + registry, name: "p")), .blobs([d1, d2])]
        for change in all { #expect(StoreChange(payload: change.payload) == change) }
        for bad in ["", "auth x", "repo 1", "blobs sha256:zz", "drop tables", "all all"] { #expect(StoreChange(payload: bad) == nil) }
        // 64 digests fit PostgreSQL's 8,000-byte payload limit with the schema and node prefix.
        let many = StoreChange.blobs(Array(repeating: d1, count: StoreChange.digestsPerNotification))
        #expect(many.payload.utf8.count + 200 < 8_000)
    }

    /// Two stores on one schema (two nodes): each is told of the other's changes, not of its own.
    @Test(.enabled(if: PostgresTestDatabase.available))
    func nodesTellEachOtherOfTheirChanges() async throws {
        let schema = try await PostgresTestDatabase.newSchema()
        let a = try await PostgresTestDatabase.store(schema: schema)
        let b = try await PostgresTestDatabase.store(schema: schema)
        let other = try await PostgresTestDatabase.store(schema: try await PostgresTestDatabase.newSchema())
        let seenByA = Mutex<[StoreChange]>([]), seenByB = Mutex<[StoreChange]>([]), seenByOther = Mutex<[StoreChange]>([])
        a.observeRemoteChanges { c in seenByA.withLock { $0.append(c) } }
        b.observeRemoteChanges { c in seenByB.withLock { $0.append(c) } }
        other.observeRemoteChanges { c in seenByOther.withLock { $0.append(c) } }
        for s in [a, b, other] { #expect(try await eventually { s.changes.listening.load(ordering: .acquiring) }) }
        // Each was told to forget everything once, when its listening began.
        #expect(seenByA.withLock { $0 } == [StoreChange.everything] && seenByB.withLock { $0 } == [StoreChange.everything])
        seenByA.withLock { $0.removeAll() }
        seenByB.withLock { $0.removeAll() }

        let before = b.authorizationGeneration.current
        try await a.createRepository(k("r"), at: 0)
        let layer = Digest.sha256(of: Array("layer".utf8))
        try await a.recordBlob(layer, size: 5, linkTo: k("r"), at: 0)
        #expect(try await a.unlinkBlob(layer, from: k("r")))
        #expect(try await eventually { seenByB.withLock { $0.contains(.repository(k("r"))) } })
        #expect(b.authorizationGeneration.current > before, "creating a repository is an authorization change")
        #expect(seenByB.withLock { $0.contains(.authorization) })
        #expect(seenByA.withLock { $0.isEmpty }, "a node is not told of its own changes")
        #expect(seenByOther.withLock { $0.filter { $0 != .everything }.isEmpty }, "nor of another schema's")

        // Events written on one node wake the others' delivery.
        try await a.appendEvents([OutboxEvent(id: "e1", time: 1, detailType: "ECR Image Action", account: registry, body: "{}")])
        #expect(try await eventually { seenByB.withLock { $0.contains(.events) } })

        for s in [a, b, other] { s.shutdown() }
    }

    func eventually(_ seconds: Double = 10, _ condition: () async throws -> Bool) async throws -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
