@testable import BerthS3
import NIOCore
import Synchronization
import Testing

/// `ReadAhead`, the S3 store's read path, without a store: chunking, its bound on memory, and failures on
/// either side.
@Suite struct S3ReadAheadTests {
    /// A body of `count` buffers of `size` bytes (byte i of the body is `i % 251`), made as they are asked
    /// for; it counts what it produced, fails after `failAfter` buffers, and notes being cancelled.
    struct Body: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let count: Int
        let size: Int
        var failAfter: Int? = nil
        let produced = Counter()

        final class Counter: Sendable {
            let bytes = Atomic<Int>(0)
            let cancelled = Atomic<Bool>(false)
        }

        struct Broken: Error {}

        struct AsyncIterator: AsyncIteratorProtocol {
            let body: Body
            var index = 0
            mutating func next() async throws -> ByteBuffer? {
                if Task.isCancelled {
                    body.produced.cancelled.store(true, ordering: .relaxed)
                    throw CancellationError()
                }
                if let failAfter = body.failAfter, index == failAfter { throw Broken() }
                guard index < body.count else { return nil }
                let start = index * body.size
                index += 1
                await Task.yield()
                body.produced.bytes.add(body.size, ordering: .relaxed)
                return ByteBuffer(bytes: (start..<(start + body.size)).map { UInt8($0 % 251) })
            }
        }

        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(body: self) }
    }

    func expected(_ count: Int) -> [UInt8] { (0..<count).map { UInt8($0 % 251) } }

    @Test func smallBuffersArriveAsWholeChunksInOrder() async throws {
        let body = Body(count: 40, size: 10_000)
        var chunks: [Int] = []
        var bytes: [UInt8] = []
        let handed = try await ReadAhead.stream(body, chunkSize: 64 << 10, limit: 256 << 10) { chunk in
            chunks.append(chunk.readableBytes)
            bytes += chunk.readableBytesView
        }
        #expect(handed == 400_000)
        #expect(bytes == expected(400_000))
        // Whole chunks (socket reads cut where a chunk is full), then the rest.
        #expect(chunks == Array(repeating: 64 << 10, count: 6) + [400_000 - 6 * (64 << 10)])
    }

    @Test func largeBuffersPassAsTheyAre() async throws {
        let body = Body(count: 3, size: 100_000)
        var chunks: [Int] = []
        var bytes: [UInt8] = []
        _ = try await ReadAhead.stream(body, chunkSize: 64 << 10, limit: 256 << 10) {
            chunks.append($0.readableBytes)
            bytes += $0.readableBytesView
        }
        #expect(chunks == [100_000, 100_000, 100_000])
        #expect(bytes == expected(300_000))
    }

    @Test func aSlowConsumerBoundsHowFarTheBodyIsRead() async throws {
        let body = Body(count: 200, size: 16 << 10)
        let chunk = 64 << 10, limit = 256 << 10
        var consumed = 0
        var mostAhead = 0
        _ = try await ReadAhead.stream(body, chunkSize: chunk, limit: limit) { c in
            try await Task.sleep(for: .milliseconds(2))
            mostAhead = max(mostAhead, body.produced.bytes.load(ordering: .relaxed) - consumed)
            consumed += c.readableBytes
        }
        #expect(consumed == 200 * (16 << 10))
        // Ahead: the consumer's chunk, at most `limit` plus one chunk handed over and not taken, and the chunk
        // being filled.
        #expect(mostAhead <= limit + 3 * chunk, "read \(mostAhead) bytes ahead")
        #expect(mostAhead >= chunk, "no read-ahead at all")
    }

    @Test func aFailingBodyFailsTheReadAfterTheBytesBeforeIt() async throws {
        let body = Body(count: 100, size: 16 << 10, failAfter: 10)
        var bytes = 0
        await #expect(throws: Body.Broken.self) {
            _ = try await ReadAhead.stream(body, chunkSize: 64 << 10, limit: 256 << 10) { bytes += $0.readableBytes }
        }
        #expect(bytes == 8 * (16 << 10))  // the two full chunks; the partial third is dropped with the error
    }

    struct ClientGone: Error {}

    @Test func aFailingConsumerStopsTheReading() async throws {
        // A body longer than any test: only a cancelled reading ends it.
        let body = Body(count: .max / (1 << 20), size: 16 << 10)
        var calls = 0
        await #expect(throws: ClientGone.self) {
            _ = try await ReadAhead.stream(body, chunkSize: 64 << 10, limit: 256 << 10) { _ in
                calls += 1
                if calls == 3 { throw ClientGone() }
            }
        }
        // Nothing runs on after the read returned: the body is read no further.
        let after = body.produced.bytes.load(ordering: .relaxed)
        try await Task.sleep(for: .milliseconds(50))
        #expect(body.produced.bytes.load(ordering: .relaxed) == after)
        #expect(after <= 3 * (64 << 10) + (256 << 10) + 2 * (64 << 10))
    }
}
