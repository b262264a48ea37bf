import BerthStorage
import Foundation
import Testing

/// `WorkLeases`: one holder at a time per name, across store objects on the same data (as across
/// processes), released when the work ends however it ends.
@Suite struct WorkLeaseConformance {
    struct Failure: Error {}

    /// A second store on the same data where the backend has one (another process), else the same store.
    func twoStores(_ backend: Backend) async throws -> (any MetadataStore, any MetadataStore) {
        let s = try await backend.make()
        guard let reopen = s.reopen else { return (s.metadata, s.metadata) }
        return (s.metadata, try await reopen().1)
    }

    @Test(arguments: Backend.allCases)
    func oneHolderAtATime(_ backend: Backend) async throws {
        let (a, b) = try await twoStores(backend)
        let outer = try await a.withLease("gc") { () -> [String] in
            var seen: [String] = []
            if try await a.withLease("gc", { "inner" }) == nil { seen.append("a: held") }
            if try await b.withLease("gc", { "other" }) == nil { seen.append("b: held") }
            if let other = try await b.withLease("lifecycle", { "lifecycle" }) { seen.append(other) }
            return seen
        }
        #expect(outer == ["a: held", "b: held", "lifecycle"])
        // Released when the work ended.
        #expect(try await b.withLease("gc") { 2 } == 2)
    }

    @Test(arguments: Backend.allCases)
    func releasedWhenTheWorkThrows(_ backend: Backend) async throws {
        let (a, b) = try await twoStores(backend)
        await #expect(throws: Failure.self) { _ = try await a.withLease("gc") { () -> Int in throw Failure() } }
        #expect(try await b.withLease("gc") { 3 } == 3)
        #expect(try await a.withLease("gc") { 4 } == 4)
    }

    @Test(arguments: Backend.allCases)
    func aWaiterGetsTheLeaseWhenItIsReleased(_ backend: Backend) async throws {
        let (a, b) = try await twoStores(backend)
        let (entered, leave) = (AsyncStream<Void>.makeStream(), AsyncStream<Void>.makeStream())
        let holder = Task {
            try await a.withLease("gc") { () -> Int in
                entered.continuation.yield()
                for await _ in leave.stream { break }
                return 1
            }
        }
        for await _ in entered.stream { break }
        let waiter = Task { try await b.waitForLease("gc", poll: .milliseconds(20)) { Date() } }
        try await Task.sleep(for: .milliseconds(150))
        let released = Date()
        leave.continuation.yield()
        #expect(try await holder.value == 1)
        #expect(try await waiter.value >= released)
    }
}
