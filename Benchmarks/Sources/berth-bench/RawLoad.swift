import Foundation
import NIOCore
import NIOPosix

/// A wrk-style load generator for the request-rate measures: `concurrency` keep-alive connections on one
/// event-loop thread, each sending one pre-encoded request, reading the response with a minimal parser
/// (status line, `Content-Length`, body), and sending the next one.
///
/// Why not AsyncHTTPClient: on this 2-core machine, at c=64 against a server doing ~7,000 req/s it spent as
/// much CPU as the server did (≈1 core each), so the figure was half the client's. This one costs a few
/// microseconds per request, so the server gets the machine, as with `wrk`. Responses are checked: status
/// 200 and the expected `Content-Length`, else the request counts as an error. `http://` only.
enum RawLoad {
    struct Target: Sendable {
        var host: String
        var port: Int
        /// The whole request, headers and the blank line.
        var request: [UInt8]
        /// HEAD responses carry a Content-Length but no body.
        var isHead: Bool
        var expectedLength: Int
    }

    /// `GET|HEAD <path>` on `base` (an `http://host:port` URL) with `headers`.
    static func target(base: String, method: String, path: String, headers: [(String, String)], expectedLength: Int) throws -> Target {
        guard base.hasPrefix("http://") else { throw BenchError("raw load supports http:// only") }
        let authority = String(base.dropFirst(7).prefix { $0 != "/" })
        var host = authority
        var port = 80
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { throw BenchError("bad port in \(base)") }
            port = p
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        var text = "\(method) \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: berth-bench\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Target(host: host, port: port, request: Array(text.utf8), isHead: method == "HEAD", expectedLength: expectedLength)
    }

    /// Same contract as ``runLoad``: no request starts after `duration`; throughput is completed
    /// requests over the time until the last connection finished.
    static func run(_ target: Target, concurrency: Int, duration: Double, maxOpsPerWorker: Int,
                    group: any EventLoopGroup) async throws -> LoadResult {
        let start = NIODeadline.now()
        let deadline = start + .milliseconds(Int64(duration * 1000))
        let loop = group.next()
        var futures: [EventLoopFuture<LoadResult>] = []
        for _ in 0..<concurrency {
            let promise = loop.makePromise(of: LoadResult.self)
            let connect = ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            Connection(target: target, deadline: deadline, maxOps: maxOpsPerWorker, done: promise))
                    }
                }
                .connect(host: target.host, port: target.port)
            connect.whenFailure { error in
                var r = LoadResult()
                r.errors = 1
                r.firstError = "connect: \(error)"
                promise.succeed(r)
            }
            futures.append(promise.futureResult)
        }
        var total = LoadResult()
        for f in futures {
            let r = try await f.get()
            total.ok += r.ok
            total.errors += r.errors
            total.hist.add(r.hist)
            if total.firstError == nil { total.firstError = r.firstError }
        }
        total.elapsed = Double((NIODeadline.now() - start).nanoseconds) / 1e9
        return total
    }

    final class Connection: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        enum State { case headers, body(remaining: Int, status: Int, length: Int) }

        let target: Target
        let deadline: NIODeadline
        let maxOps: Int
        let done: EventLoopPromise<LoadResult>
        var result = LoadResult()
        var pending: ByteBuffer?
        var state = State.headers
        var sentAt = NIODeadline.now()
        var ops = 0
        var finished = false

        init(target: Target, deadline: NIODeadline, maxOps: Int, done: EventLoopPromise<LoadResult>) {
            self.target = target
            self.deadline = deadline
            self.maxOps = maxOps
            self.done = done
        }

        func channelActive(context: ChannelHandlerContext) {
            send(context)
        }

        func send(_ context: ChannelHandlerContext) {
            guard NIODeadline.now() < deadline, ops < maxOps else { return finish(context) }
            var buf = context.channel.allocator.buffer(capacity: target.request.count)
            buf.writeBytes(target.request)
            state = .headers
            sentAt = NIODeadline.now()
            context.writeAndFlush(NIOAny(buf), promise: nil)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var incoming = unwrapInboundIn(data)
            if pending == nil { pending = incoming } else { pending!.writeBuffer(&incoming) }
            while !finished, var buf = pending {
                switch state {
                case .headers:
                    guard let (status, length, headerBytes) = Self.parseHead(buf) else {
                        if buf.readableBytes > 65_536 { fail(context, "response headers over 64 KiB") }
                        return
                    }
                    buf.moveReaderIndex(forwardBy: headerBytes)
                    pending = buf
                    guard let length else { return fail(context, "response without Content-Length (status \(status))") }
                    state = .body(remaining: target.isHead ? 0 : length, status: status, length: length)
                case let .body(remaining, status, length):
                    let take = min(remaining, buf.readableBytes)
                    buf.moveReaderIndex(forwardBy: take)
                    pending = buf.readableBytes > 0 ? buf : nil
                    if remaining - take > 0 {
                        state = .body(remaining: remaining - take, status: status, length: length)
                        return
                    }
                    ops += 1
                    if status == 200 && length == target.expectedLength {
                        result.ok += 1
                        _ = result.hist.record(UInt64(max(0, (NIODeadline.now() - sentAt).nanoseconds / 1000)))
                    } else {
                        result.errors += 1
                        if result.firstError == nil { result.firstError = "status \(status), Content-Length \(length), expected 200 and \(target.expectedLength)" }
                    }
                    if pending != nil { return fail(context, "bytes after a complete response") }
                    send(context)
                    return
                }
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !finished { fail(context, "connection closed by the server") }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            fail(context, "\(error)")
        }

        func fail(_ context: ChannelHandlerContext, _ message: String) {
            guard !finished else { return }
            result.errors += 1
            if result.firstError == nil { result.firstError = message }
            finish(context)
        }

        func finish(_ context: ChannelHandlerContext) {
            guard !finished else { return }
            finished = true
            done.succeed(result)
            context.close(promise: nil)
        }

        /// Status, Content-Length and the size of the head (through CRLFCRLF), once the head is complete.
        static func parseHead(_ buf: ByteBuffer) -> (Int, Int?, Int)? {
            buf.withUnsafeReadableBytes { RawLoad.parseHead($0) }
        }
    }

    /// Status, Content-Length and the size of the head (through CRLFCRLF) of the response in `b`, once
    /// the head is complete; nil while it is not. Shared with ``RawGet``.
    static func parseHead(_ b: UnsafeRawBufferPointer) -> (Int, Int?, Int)? {
        guard b.count >= 16 else { return nil }
        var end = -1
        var i = 0
        while i + 3 < b.count {
            if b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { end = i; break }
            i += 1
        }
        guard end >= 12 else { return nil }
        // "HTTP/1.1 200 ..."
        var status = 0
        for k in 9..<12 { status = status * 10 + Int(b[k]) - 48 }
        var length: Int?
        let name = Array("content-length:".utf8)
        var line = 0
        while line < end {
            var next = line
            while next < end && !(b[next] == 13 && b[next + 1] == 10) { next += 1 }
            if next - line > name.count {
                var match = true
                for k in 0..<name.count where (b[line + k] | 0x20) != name[k] {
                    match = false
                    break
                }
                if match {
                    var v = 0
                    var digits = 0
                    for k in (line + name.count)..<next where b[k] >= 48 && b[k] <= 57 {
                        v = v * 10 + Int(b[k]) - 48
                        digits += 1
                    }
                    if digits > 0 { length = v }
                }
            }
            line = next + 2
        }
        return (status, length, end + 4)
    }
}
