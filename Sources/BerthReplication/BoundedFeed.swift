import NIOCore

/// Chunks handed from one producer to a consumer task (`chunks`) with back-pressure in bytes: the consumer
/// returns a credit for every chunk it takes, and `send` waits while more than `limit` bytes are handed
/// over and not yet taken. When the consumer ends (`consumerEnded`, from its task's `defer`) nothing more
/// is handed to it and `send` never waits again, so a consumer that failed neither holds the producer up
/// nor makes it buffer for nobody. One producer task calls `send` and `finish`.
struct BoundedFeed {
    typealias Chunks = AsyncMapSequence<AsyncThrowingStream<ByteBuffer, any Error>, ByteBuffer>
    /// The consumer's side.
    let chunks: Chunks
    let limit: Int
    private let continuation: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    private let creditor: AsyncStream<Int>.Continuation
    private var credits: AsyncStream<Int>.Iterator
    /// Bytes handed over and not yet taken.
    private(set) var ahead = 0
    /// The consumer ended: chunks are no longer handed to it.
    private(set) var consumerGone = false

    init(limit: Int) {
        self.limit = limit
        let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        let (credits, creditor) = AsyncStream<Int>.makeStream()
        self.continuation = continuation
        self.creditor = creditor
        self.credits = credits.makeAsyncIterator()
        chunks = stream.map { @Sendable chunk in
            creditor.yield(chunk.readableBytes)
            return chunk
        }
    }

    /// Hands `chunk` over, then waits until at most `limit` bytes are not yet taken (or the consumer ended).
    mutating func send(_ chunk: ByteBuffer) async {
        guard !consumerGone else { return }
        continuation.yield(chunk)
        ahead += chunk.readableBytes
        while ahead > limit {
            guard let n = await credits.next() else {
                consumerGone = true
                return
            }
            ahead -= n
        }
    }

    /// The end of the chunks, or a failure the consumer sees as its sequence's error.
    func finish(throwing error: (any Error)? = nil) {
        continuation.finish(throwing: error)
    }

    /// For the consumer's task, to call when it stops taking chunks, whether it finished or failed.
    var consumerEnded: @Sendable () -> Void { { [creditor] in creditor.finish() } }
}
