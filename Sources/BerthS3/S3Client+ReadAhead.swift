import NIOCore

/// A bounded read-ahead for object bodies (docs/s3.md, "Performance").
///
/// async-http-client hands a response body over one socket read at a time (at most 64 KiB) and reads
/// the next only when the consumer asks for it, so a consumer that decrypts and sends each buffer before
/// taking the next keeps the store's socket idle meanwhile and pays a task switch, a decryption call and
/// a response write per 64 KiB. `readAhead` runs the body in a child task that coalesces those buffers into
/// chunks of `chunkSize` bytes and stays at most `limit` bytes ahead of the consumer: receiving, and
/// whatever the consumer does with the previous chunk, run at once, and memory stays bounded per read.
enum ReadAhead {
    /// What a read hands its consumer at a time (below `tuneAllocator`'s mmap threshold, so the buffers
    /// are recycled by the heap).
    static let chunkSize = 1 << 20
    /// How many bytes a read may have taken from the store and not yet handed over.
    static let limit = 4 << 20

    /// Streams `body` to `consumer` in chunks of `chunkSize` bytes (the last one may be shorter; a buffer of
    /// a whole chunk or more that arrives between chunks is handed on as it is),
    /// reading up to `limit` bytes ahead of it. Returns the number of bytes handed over. A failing body fails
    /// the read after the chunks before the failure; a failing consumer cancels the reading (nothing is
    /// left running when this returns).
    static func stream<Body: AsyncSequence & Sendable>(
        _ body: Body, chunkSize: Int = chunkSize, limit: Int = limit, into consumer: (ByteBuffer) async throws -> Void
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let (chunks, chunkSink) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream()
        // One credit per chunk the consumer took: the reader waits for them once `limit` bytes are out.
        let (credits, creditSink) = AsyncStream<Int>.makeStream()
        return try await withThrowingTaskGroup(of: Void.self, returning: Int64.self) { group in
            group.addTask {
                do {
                    try await read(body, chunkSize: chunkSize, limit: limit, credits: credits, into: chunkSink)
                    chunkSink.finish()
                } catch {
                    chunkSink.finish(throwing: error)
                }
            }
            var handed: Int64 = 0
            do {
                for try await chunk in chunks {
                    creditSink.yield(chunk.readableBytes)
                    handed += Int64(chunk.readableBytes)
                    try await consumer(chunk)
                }
            } catch {
                creditSink.finish()
                group.cancelAll()
                throw error
            }
            creditSink.finish()
            return handed
        }
    }

    /// The reading side: coalesces `body`'s buffers into chunks for `sink`, waiting for credits while more
    /// than `limit` bytes are out. Returns early, without error, when the consumer went (no credits left).
    private static func read<Body: AsyncSequence & Sendable>(
        _ body: Body, chunkSize: Int, limit: Int, credits: AsyncStream<Int>,
        into sink: AsyncThrowingStream<ByteBuffer, any Error>.Continuation
    ) async throws where Body.Element == ByteBuffer {
        var returned = credits.makeAsyncIterator()
        var out = 0
        var pending = ByteBuffer()
        // Hands `chunk` over; false when the consumer is gone.
        func hand(_ chunk: ByteBuffer) async -> Bool {
            sink.yield(chunk)
            out += chunk.readableBytes
            while out > limit {
                guard let taken = await returned.next() else { return false }
                out -= taken
            }
            return true
        }
        for try await buffer in body {
            var buffer = buffer
            if pending.readableBytes == 0 && buffer.readableBytes >= chunkSize {
                // Already a whole chunk: handed on as it is, without a copy.
                guard await hand(buffer) else { return }
                continue
            }
            while buffer.readableBytes > 0 {
                if pending.capacity == 0 { pending = ByteBufferAllocator().buffer(capacity: chunkSize) }
                var piece = buffer.readSlice(length: min(buffer.readableBytes, chunkSize - pending.readableBytes))!
                pending.writeBuffer(&piece)
                if pending.readableBytes == chunkSize {
                    guard await hand(pending) else { return }
                    pending = ByteBuffer()
                }
            }
        }
        if pending.readableBytes > 0 { _ = await hand(pending) }
    }
}
