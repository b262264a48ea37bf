import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Blob downloads sent with `sendfile` (a `FileRegion`) instead of being copied through user space.
///
/// Hummingbird's response writer takes only `ByteBuffer`s, so a download writes a 24-byte *ticket*:
/// a per-process random prefix and the id of a file registered here. ``ZeroCopyHandler``, which sits
/// between Hummingbird's HTTP codec and NIO's `HTTPResponseEncoder`, swaps a ticket it can redeem for
/// the `FileRegion`; any other body bytes pass untouched. A ticket's bytes could only collide with
/// content if a blob contained the random prefix and a live id, which nothing exposes. Tickets are
/// issued only on channels that have the handler (see ``BerthRequestContext``), and the encoder rejects
/// a `FileRegion` below a TLS handler rather than sending plaintext, so the scheme never leaks bytes.
public final class ZeroCopyDownloads: Sendable {
    public static let shared = ZeroCopyDownloads()

    struct Entry {
        var fd: CInt
        var offset: Int64
        var length: Int64
        var issuedAt: NIODeadline
    }

    let prefix: [UInt8] = (0..<16).map { _ in UInt8.random(in: 0...255) }
    let entries = Mutex<[UInt64: Entry]>([:])
    let nextID = Atomic<UInt64>(UInt64.random(in: 1...(1 << 40)))
    /// Channels whose pipeline has the handler.
    let channels = Mutex<Set<ObjectIdentifier>>([])
    static let ticketSize = 24
    /// Bytes per `sendfile` write.
    static let sliceSize = 4 << 20

    /// Whether responses on `channel` may carry tickets.
    func isInstalled(on channel: any Channel) -> Bool {
        channels.withLock { $0.contains(ObjectIdentifier(channel)) }
    }

    /// Opens `path` and returns a ticket for `length` bytes at `offset`; nil when the file cannot be opened.
    /// `fileSize`: the size the file must have (a blob's plaintext size); another size means the file is
    /// not the plaintext (sealed since it was opened), and nil sends the caller to the decrypting path.
    func ticket(path: String, offset: Int64, length: Int64, fileSize: Int64? = nil) -> ByteBuffer? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        if let fileSize {
            var st = stat()
            guard fstat(fd, &st) == 0, Int64(st.st_size) == fileSize else {
                close(fd)
                return nil
            }
        }
        let id = nextID.add(1, ordering: .relaxed).newValue
        let stale: [CInt] = entries.withLock { e in
            e[id] = Entry(fd: fd, offset: offset, length: length, issuedAt: .now())
            // Tickets never redeemed (the connection went away first) are closed after a minute.
            guard e.count > 64 else { return [] }
            let cutoff = NIODeadline.now() - .seconds(60)
            let old = e.filter { $0.value.issuedAt < cutoff }
            for k in old.keys { e[k] = nil }
            return old.values.map(\.fd)
        }
        for fd in stale { close(fd) }
        var buffer = ByteBufferAllocator().buffer(capacity: Self.ticketSize)
        buffer.writeBytes(prefix)
        buffer.writeInteger(id)
        return buffer
    }

    /// The file region a ticket stands for (the caller closes the handle), or nil for any other bytes.
    func redeem(_ buffer: ByteBuffer) -> (FileRegion, NIOFileHandle)? {
        guard buffer.readableBytes == Self.ticketSize,
              buffer.readableBytesView.prefix(16).elementsEqual(prefix),
              let id = buffer.getInteger(at: buffer.readerIndex + 16, as: UInt64.self),
              let entry = entries.withLock({ $0.removeValue(forKey: id) }) else { return nil }
        let handle = NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: entry.fd)
        let region = FileRegion(fileHandle: handle, readerIndex: Int(entry.offset), endIndex: Int(entry.offset + entry.length))
        return (region, handle)
    }

    /// The handler to give Hummingbird's HTTP/1 channel (`additionalChannelHandlers`).
    public func installer() -> any RemovableChannelHandler { ZeroCopyInstaller(downloads: self) }
}

/// Added by Hummingbird after its HTTP codec; puts ``ZeroCopyHandler`` right after NIO's response
/// encoder and marks the channel as able to redeem tickets.
final class ZeroCopyInstaller: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny
    let downloads: ZeroCopyDownloads

    init(downloads: ZeroCopyDownloads) { self.downloads = downloads }

    func handlerAdded(context: ChannelHandlerContext) {
        let ops = context.pipeline.syncOperations
        guard let encoder = try? ops.handler(type: HTTPResponseEncoder.self),
              (try? ops.addHandler(ZeroCopyHandler(downloads: downloads), position: .after(encoder))) != nil else { return }
        let id = ObjectIdentifier(context.channel)
        downloads.channels.withLock { _ = $0.insert(id) }
        context.channel.closeFuture.whenComplete { [downloads] _ in
            downloads.channels.withLock { _ = $0.remove(id) }
        }
    }
}

/// Replaces a redeemable ticket in a response body by the file region it stands for.
final class ZeroCopyHandler: ChannelOutboundHandler, RemovableChannelHandler, Sendable {
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart
    let downloads: ZeroCopyDownloads

    init(downloads: ZeroCopyDownloads) { self.downloads = downloads }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .body(.byteBuffer(let buffer)) = unwrapOutboundIn(data), buffer.readableBytes == ZeroCopyDownloads.ticketSize,
              let (region, handle) = downloads.redeem(buffer) else {
            context.write(data, promise: promise)
            return
        }
        // Sent in slices, as Go's net/http does (4 MiB per sendfile): one huge sendfile keeps a
        // loopback receiver from draining while the sender holds the socket.
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.whenComplete { _ in try? handle.close() }
        var start = region.readerIndex
        let end = region.endIndex
        while start < end {
            let sliceEnd = min(end, start + ZeroCopyDownloads.sliceSize)
            let slice = FileRegion(fileHandle: handle, readerIndex: start, endIndex: sliceEnd)
            context.write(wrapOutboundOut(.body(.fileRegion(slice))), promise: sliceEnd == end ? written : nil)
            start = sliceEnd
        }
        if region.readableBytes == 0 { context.write(wrapOutboundOut(.body(.fileRegion(region))), promise: written) }
    }
}

/// The request context of the live server: knows whether its channel can send files directly.
/// It also knows the peer address (`aws:SourceIp` of policy conditions, read through `RemoteAddressRequestContext`),
/// who the request comes from once its door has authenticated it (`identity`), and what the door
/// found out for the access log and the metrics (`record`).
public struct BerthRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel
    public let remoteAddress: SocketAddress?
    /// Set once per request by the door's authentication (``Authenticator``); handlers read it. Kept in
    /// `record`, which every copy of the context shares, so the audit middleware sees it too.
    public var identity: RequestIdentity {
        get { record.identity }
        nonmutating set { record.identity = newValue }
    }
    /// The door and operation, reported back to the middleware.
    public let record = RequestRecord()

    /// Whether blob downloads may be sent as file regions on this request's connection (asked only by
    /// blob GETs, so other requests never take the lock).
    public var canSendFiles: Bool { ZeroCopyDownloads.shared.isInstalled(on: channel) }

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
        remoteAddress = source.channel.remoteAddress
    }
}
