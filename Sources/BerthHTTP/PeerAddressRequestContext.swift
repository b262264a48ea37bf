import Hummingbird
import NIOCore

/// A request context that knows the peer address (`aws:SourceIp` of policy conditions). Handlers read it
/// through `RemoteAddressRequestContext`, so any context type conforming to that protocol works.
public struct PeerAddressRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress
    }
}
