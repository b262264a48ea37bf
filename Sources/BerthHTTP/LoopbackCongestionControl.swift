import Hummingbird
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Chooses the TCP congestion control of connections whose peer is on this host (127.0.0.0/8, ::1,
/// IPv4-mapped loopback). BBR, which many distributions default to, paces every connection at its
/// estimate of the path's bandwidth; on loopback there is no path to estimate, and pacing caps a
/// single download at about half of what the host moves with cubic or reno (measured on the 2-core
/// bench machine: ~3.0 GB/s against ~5 GB/s with the same trivial sendfile server). Remote peers keep the
/// system's algorithm. The first algorithm of `algorithms` the kernel accepts is used (unprivileged
/// processes may only pick those in `net.ipv4.tcp_allowed_congestion_control`); if none is accepted the
/// connection is left as it is. Linux only; elsewhere this does nothing.
public final class LoopbackCongestionControl: Sendable {
    public let algorithms: [String]
    /// Index into `algorithms` of the first one known to work, or of the first to try.
    let preferred = Atomic<Int>(0)

    public init(algorithms: [String]) {
        self.algorithms = algorithms.filter(Self.isValidName)
    }

    /// A Linux congestion-control name: 1–15 of `[a-z0-9_]`.
    public static func isValidName(_ s: String) -> Bool {
        (1...15).contains(s.utf8.count) && s.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5f }
    }

    /// Whether `address` is a loopback address.
    public static func isLoopback(_ address: SocketAddress?) -> Bool {
        guard let address, let ip = address.ipAddress else { return false }
        switch address.protocol {
        case .inet: return ip.hasPrefix("127.")
        case .inet6: return ip == "::1" || ip.lowercased().hasPrefix("::ffff:127.")
        default: return false
        }
    }

    public func handler() -> any RemovableChannelHandler { Installer(control: self) }

    /// Sets the algorithm on `channel` when its peer is local; returns the algorithm set, if any.
    @discardableResult
    func apply(to channel: any Channel) -> String? {
        #if os(Linux)
        guard !algorithms.isEmpty, Self.isLoopback(channel.remoteAddress),
              let provider = channel as? any SocketOptionProvider else { return nil }
        let start = preferred.load(ordering: .relaxed)
        for step in 0..<algorithms.count {
            let i = (start + step) % algorithms.count
            let name = algorithms[i]
            // TCP_CONGESTION takes the name as a char array of up to TCP_CA_NAME_MAX (16) bytes.
            var raw: (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
                      CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
            withUnsafeMutableBytes(of: &raw) { dst in
                for (k, b) in name.utf8.enumerated() { dst[k] = b }
            }
            let value = CongestionName(raw: raw)
            let future = provider.unsafeSetSocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_CONGESTION), value: value)
            // On the channel's own event loop the option is set before the call returns.
            var ok = false
            future.assumeIsolated().whenSuccess { ok = true }
            if ok {
                if i != start { preferred.store(i, ordering: .relaxed) }
                return name
            }
        }
        #endif
        return nil
    }

    /// Runs once per connection, when Hummingbird builds its pipeline, then leaves it.
    final class Installer: ChannelInboundHandler, RemovableChannelHandler, Sendable {
        typealias InboundIn = NIOAny
        let control: LoopbackCongestionControl
        init(control: LoopbackCongestionControl) { self.control = control }

        func handlerAdded(context: ChannelHandlerContext) {
            control.apply(to: context.channel)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}

/// The 16-byte value `setsockopt(TCP_CONGESTION)` reads.
struct CongestionName: @unchecked Sendable {
    var raw: (CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar,
              CChar, CChar, CChar, CChar, CChar, CChar, CChar, CChar)
}

/// Per-connection handlers for Hummingbird to add after its HTTP codec (it evaluates this for every connection).
public func connectionHandlers(loopback: LoopbackCongestionControl?, zeroCopy: Bool) -> [any RemovableChannelHandler] {
    var handlers: [any RemovableChannelHandler] = []
    if let loopback { handlers.append(loopback.handler()) }
    if zeroCopy { handlers.append(ZeroCopyDownloads.shared.installer()) }
    return handlers
}
