import BerthCore
import Synchronization
import Testing
@testable import BerthHTTP

/// The gallery's shared read of the public repositories: reused within its lifetime, read anew after it
/// (or every time with 0), and a failed read is not kept.
@Suite struct GallerySummaryCacheTests {
    final class Counter: Sendable {
        let reads = Mutex(0)
        func read() async throws -> [PublicRepositorySummary] {
            reads.withLock { $0 += 1 }
            return []
        }
    }

    struct Failure: Error {}

    @Test func reusesOneReadWithinItsLifetime() async throws {
        let cache = GalleryHandler.SummaryCache(ttl: .seconds(3600))
        let counter = Counter()
        await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<16 { group.addTask { _ = try await cache.get { try await counter.read() } } }
        }
        _ = try await cache.get { try await counter.read() }
        #expect(counter.reads.withLock { $0 } == 1)
    }

    @Test func zeroReadsEveryTime() async throws {
        let cache = GalleryHandler.SummaryCache(ttl: .zero)
        let counter = Counter()
        for _ in 0..<3 { _ = try await cache.get { try await counter.read() } }
        #expect(counter.reads.withLock { $0 } == 3)
    }

    @Test func aFailedReadIsNotKept() async throws {
        let cache = GalleryHandler.SummaryCache(ttl: .seconds(3600))
        await #expect(throws: Failure.self) { _ = try await cache.get { throw Failure() } }
        let counter = Counter()
        _ = try await cache.get { try await counter.read() }
        #expect(counter.reads.withLock { $0 } == 1)
    }
}
