@testable import BerthApp
@testable import BerthHTTP
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

@Suite struct LoopbackCongestionControlTests {
    @Test func namesAreLinuxCongestionControlNames() {
        for ok in ["cubic", "reno", "bbr", "htcp", "dctcp", "illinois", "a_1"] { #expect(LoopbackCongestionControl.isValidName(ok)) }
        for bad in ["", "Cubic", "cu bic", "../x", "bbr\u{0}", String(repeating: "a", count: 16), "ré"] {
            #expect(!LoopbackCongestionControl.isValidName(bad), "\(bad)")
        }
        #expect(LoopbackCongestionControl(algorithms: ["cubic", "BAD", "reno"]).algorithms == ["cubic", "reno"])
    }

    @Test func onlyLoopbackPeersAreLocal() throws {
        for local in ["127.0.0.1", "127.45.6.7", "::1", "::ffff:127.0.0.1"] {
            #expect(LoopbackCongestionControl.isLoopback(try SocketAddress(ipAddress: local, port: 1)), "\(local)")
        }
        for remote in ["10.0.0.1", "192.168.1.127", "::2", "fe80::1", "::ffff:10.0.0.1", "128.0.0.1"] {
            #expect(!LoopbackCongestionControl.isLoopback(try SocketAddress(ipAddress: remote, port: 1)), "\(remote)")
        }
        #expect(!LoopbackCongestionControl.isLoopback(nil))
    }

    /// A real accepted loopback connection: the algorithm is set and reads back from the socket.
    @Test func setsTheFirstAcceptedAlgorithmOnAcceptedLoopbackConnections() async throws {
        #if os(Linux)
        let control = LoopbackCongestionControl(algorithms: ["nosuchalgorithm", "reno", "cubic"])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let result = group.next().makePromise(of: (String?, String).self)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                let chosen = control.apply(to: channel)
                let provider = channel as! any SocketOptionProvider
                return provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_TCP), name: SocketOptionName(TCP_CONGESTION))
                    .map { (name: CongestionName) -> Void in
                        let text = withUnsafeBytes(of: name.raw) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                        result.succeed((chosen, text))
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: group).connect(to: server.localAddress!).get()
        let (chosen, readBack) = try await result.futureResult.get()
        #expect(chosen == "reno" || chosen == "cubic")
        #expect(readBack == chosen)
        // The working choice is remembered: the unknown name is not tried first again.
        #expect(control.algorithms[control.preferred.load(ordering: .relaxed)] != "nosuchalgorithm")
        try await client.close()
        try await server.close()
        try await group.shutdownGracefully()
        #endif
    }

    @Test func configurationDefaultsParsingAndValidation() throws {
        let d = try BerthConfiguration.load(file: nil, environment: [:])
        #expect(d.loopbackCongestionControl == ["cubic", "reno"])
        #expect(d.zeroCopyDownloads)
        let off = try BerthConfiguration.load(file: nil, environment: ["BERTH_LOOPBACK_CONGESTION_CONTROL": "system"])
        #expect(off.loopbackCongestionControl.isEmpty)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-cc-\(UUID()).json").path
        try #"{"loopbackCongestionControl": []}"#.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try BerthConfiguration.load(file: path, environment: [:]).loopbackCongestionControl.isEmpty)
        let two = try BerthConfiguration.load(file: nil, environment: ["BERTH_LOOPBACK_CONGESTION_CONTROL": " reno , bbr "])
        #expect(two.loopbackCongestionControl == ["reno", "bbr"])
        #expect(throws: ConfigurationError.self) {
            try BerthConfiguration.load(file: nil, environment: ["BERTH_LOOPBACK_CONGESTION_CONTROL": "cubic,../x"])
        }
        #expect(connectionHandlers(loopback: nil, zeroCopy: false).isEmpty)
        #expect(connectionHandlers(loopback: LoopbackCongestionControl(algorithms: ["cubic"]), zeroCopy: true).count == 2)
    }
}
