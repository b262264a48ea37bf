import NIOCore
import Synchronization
import Testing
@testable import BerthReplication

/// The hand-off from the upstream to the store in a first pull through the cache (`UpstreamBlob.run`).
@Suite struct BoundedFeedTests {
    final class Counter: Sendable { let value = Atomic<Int>(0) }

    @Test func theProducerWaitsWhileTheConsumerIsTheLimitBehind() async throws {
        let chunk = 1 << 20
        var feed = BoundedFeed(limit: 4 << 20)
        let (chunks, ended) = (feed.chunks, feed.consumerEnded)
        let (gate, opener) = AsyncStream<Void>.makeStream()
        let consumer = Task {
            defer { ended() }
            var g = gate.makeAsyncIterator()
            var order: [UInt8] = []
            for try await c in chunks {
                _ = await g.next()  // a store that takes a chunk only when the test lets it
                order.append(c.getInteger(at: c.readerIndex, as: UInt8.self)!)
            }
            return order
        }
        let sent = Counter()
        // The store takes nothing for a while: the producer gets at most the limit ahead of it, plus the one
        // chunk the store pulled and holds (its credit was returned when it was pulled).
        let observer = Task {
            try await Task.sleep(for: .milliseconds(300))
            let early = sent.value.load(ordering: .relaxed)
            for _ in 0..<40 { opener.yield() }
            return early
        }
        for i in 0..<40 {
            await feed.send(ByteBuffer(repeating: UInt8(i), count: chunk))
            #expect(feed.ahead <= 4 << 20)
            sent.value.add(1, ordering: .relaxed)
        }
        feed.finish()
        let early = try await observer.value
        #expect(early >= 4 && early <= 5, "\(early) chunks sent while the store took none")
        #expect(try await consumer.value == (0..<40).map { UInt8($0) })
    }

    @Test func aConsumerThatEndedNeitherHoldsTheProducerNorGetsMoreChunks() async throws {
        var feed = BoundedFeed(limit: 1 << 20)
        let (chunks, ended) = (feed.chunks, feed.consumerEnded)
        let failing = Task {
            defer { ended() }
            var n = 0
            for try await _ in chunks {
                n += 1
                if n == 2 { throw CancellationError() }  // the store failed after two chunks
            }
        }
        // Far more than the limit: without the consumer's end this would wait forever.
        for _ in 0..<64 { await feed.send(ByteBuffer(repeating: 7, count: 256 << 10)) }
        feed.finish()
        await #expect(throws: CancellationError.self) { try await failing.value }
        #expect(feed.consumerGone)
        #expect(feed.ahead <= (1 << 20) + (256 << 10))
    }

    @Test func aFailureOfTheProducerReachesTheConsumer() async throws {
        struct UpstreamBroke: Error {}
        var feed = BoundedFeed(limit: 1 << 20)
        let (chunks, ended) = (feed.chunks, feed.consumerEnded)
        let task = Task {
            defer { ended() }
            var total = 0
            for try await c in chunks { total += c.readableBytes }
            return total
        }
        await feed.send(ByteBuffer(repeating: 1, count: 100))
        feed.finish(throwing: UpstreamBroke())
        await #expect(throws: UpstreamBroke.self) { try await task.value }
    }
}
