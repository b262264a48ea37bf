import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A plain blocking HTTP/1.1 GET over a POSIX socket that reads the body into one 1 MiB buffer and
/// throws it away: the download client for the pull measure.
///
/// Why not AsyncHTTPClient: on this 2-core machine it consumes at most ~1–2 GB/s (64 KiB reads, one
/// async-sequence element per read, backpressure that stops and restarts the socket), so it measures
/// itself, and its stop-and-go reading interacts with the sender's TCP in ways that make runs bimodal.
/// Fast real clients (curl, Go's net/http in docker/containerd/skopeo) read with large buffers; this one
/// does too, on its own thread, so the figure is the server's. The AsyncHTTPClient pull is still reported
/// beside it. Only `http://`; the caller falls back to AsyncHTTPClient for `https://`.
enum RawGet {
    struct Result { var status: Int; var bodyBytes: Int }

    /// Runs `get` on a dedicated thread (never on the cooperative pool).
    static func run(url: String, authorization: String?, timeoutSeconds: Int = 120) async throws -> Result {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Result, any Error>) in
            let thread = Thread {
                do { cont.resume(returning: try get(url: url, authorization: authorization, timeoutSeconds: timeoutSeconds)) }
                catch { cont.resume(throwing: error) }
            }
            thread.start()
        }
    }

    static func get(url: String, authorization: String?, timeoutSeconds: Int) throws -> Result {
        guard url.hasPrefix("http://") else { throw BenchError("raw GET supports http:// only: \(url)") }
        let rest = url.dropFirst(7)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = String(rest[..<slash])
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        var host = authority
        var port = "80"
        if let colon = authority.lastIndex(of: ":"), !authority.hasSuffix("]") {
            host = String(authority[..<colon])
            port = String(authority[authority.index(after: colon)...])
        }
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }

        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, port, &hints, &res) == 0, let ai = res else { throw BenchError("cannot resolve \(authority)") }
        defer { freeaddrinfo(res) }
        let fd = socket(ai.pointee.ai_family, ai.pointee.ai_socktype, ai.pointee.ai_protocol)
        guard fd >= 0 else { throw BenchError("socket: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        guard connect(fd, ai.pointee.ai_addr, ai.pointee.ai_addrlen) == 0 else { throw BenchError("connect \(authority): errno \(errno)") }

        var request = "GET \(path) HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: berth-bench\r\n"
        if let authorization { request += "Authorization: \(authorization)\r\n" }
        request += "Connection: close\r\n\r\n"
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw BenchError("send: errno \(errno)") }
            sent += n
        }

        let capacity = 1 << 20
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity, alignment: 64)
        defer { buf.deallocate() }
        // Headers: read until CRLFCRLF (at most 64 KiB of them).
        var filled = 0
        var head: (status: Int, length: Int?, size: Int)?
        while head == nil {
            let n = recv(fd, buf.baseAddress! + filled, capacity - filled, 0)
            guard n > 0 else { throw BenchError("connection closed before the response headers (errno \(errno))") }
            filled += n
            head = RawLoad.parseHead(UnsafeRawBufferPointer(rebasing: buf[0..<filled]))
            guard head != nil || filled < 65_536 else { throw BenchError("response headers over 64 KiB") }
        }
        let (status, contentLength, bodyStart) = head!
        guard let length = contentLength else {
            throw BenchError("raw GET expects a Content-Length body (status \(status))")
        }
        var got = filled - bodyStart
        while got < length {
            let n = recv(fd, buf.baseAddress!, min(capacity, length - got), 0)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw BenchError("body ended after \(got) of \(length) bytes (errno \(errno))") }
            got += n
        }
        return Result(status: status, bodyBytes: got)
    }
}
