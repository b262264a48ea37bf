import BerthHTTP
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import Synchronization
import UnixSignals
import X509

/// A server certificate chain and its private key, read from PEM files and checked: the chain parses
/// (leaf first), the key parses and is the leaf's.
public struct TLSCertificateBundle: Sendable {
    public let chain: [NIOSSLCertificate]
    public let key: NIOSSLPrivateKey
    /// The leaf, as swift-certificates reads it (serial number, names, validity for logs and tests).
    public let leaf: Certificate
    /// What identifies the files' version on disk: they are re-read when it changes.
    let stamp: FileStamp

    public struct LoadError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads and checks the two files; the error says which file is wrong and how.
    public static func load(certificateFile: String, keyFile: String) throws -> TLSCertificateBundle {
        let stamp = FileStamp(paths: [certificateFile, keyFile])
        func read(_ path: String, _ what: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw LoadError(description: "cannot read the TLS \(what) file \(path)")
            }
            return String(decoding: data, as: UTF8.self)
        }
        let certPEM = try read(certificateFile, "certificate")
        let keyPEM = try read(keyFile, "key")
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: certPEM).filter { $0.discriminator == "CERTIFICATE" }
        } catch {
            throw LoadError(description: "TLS certificate file \(certificateFile) is not PEM: \(error)")
        }
        guard !documents.isEmpty else {
            throw LoadError(description: "TLS certificate file \(certificateFile) holds no CERTIFICATE block")
        }
        let certificates: [Certificate]
        do {
            certificates = try documents.map { try Certificate(pemDocument: $0) }
        } catch {
            throw LoadError(description: "TLS certificate file \(certificateFile) holds an invalid certificate: \(error)")
        }
        let privateKey: Certificate.PrivateKey
        do {
            privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw LoadError(description: "TLS key file \(keyFile) is not a PEM private key (PKCS#8, SEC1 or RSA): \(error)")
        }
        guard privateKey.publicKey == certificates[0].publicKey else {
            throw LoadError(description: "TLS key file \(keyFile) does not belong to the first certificate of \(certificateFile)")
        }
        do {
            let chain = try documents.map { try NIOSSLCertificate(bytes: Array($0.derBytes), format: .der) }
            let key = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem)
            return TLSCertificateBundle(chain: chain, key: key, leaf: certificates[0], stamp: stamp)
        } catch {
            throw LoadError(description: "TLS files \(certificateFile), \(keyFile): \(error)")
        }
    }

    /// The server's TLS settings: TLS 1.2 at least, NIO's default (forward-secret, AEAD) cipher suites,
    /// HTTP/2 and HTTP/1.1 offered by ALPN (Hummingbird's HTTP/2 channel sets that).
    public func serverConfiguration() -> TLSConfiguration {
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                           privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        return tls
    }

    /// The leaf's serial number as hex, and its expiry, for logs.
    var logMetadata: Logger.Metadata {
        let serial = leaf.serialNumber.bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
        return ["serial": "\(serial)", "subject": "\(leaf.subject)", "notAfter": "\(leaf.notValidAfter)"]
    }
}

/// A file's identity and version (device, inode, size, modification time); a symlink is followed, so
/// swapping a link (as Kubernetes does with mounted secrets) changes it too.
struct FileStamp: Equatable, Sendable {
    var parts: [[Int]]

    init(paths: [String]) {
        parts = paths.map { path in
            var st = stat()
            guard stat(path, &st) == 0 else { return [] }
            #if os(Linux)
            let mtime = [Int(st.st_mtim.tv_sec), Int(st.st_mtim.tv_nsec)]
            #else
            let mtime = [Int(st.st_mtimespec.tv_sec), Int(st.st_mtimespec.tv_nsec)]
            #endif
            return [Int(st.st_dev), Int(st.st_ino), Int(st.st_size)] + mtime
        }
    }
}

extension BerthConfiguration {
    /// Both TLS files or neither; when given, they are read and checked now, so a bad file stops the start.
    func validateTLS() -> [String] {
        switch (tlsCertificateFile, tlsKeyFile) {
        case (nil, nil): return []
        case (.some, nil), (nil, .some): return ["tlsCertificateFile and tlsKeyFile must be given together"]
        case (.some(let cert), .some(let key)):
            do {
                _ = try TLSCertificateBundle.load(certificateFile: cert, keyFile: key)
                return []
            } catch {
                return ["\(error)"]
            }
        }
    }
}

/// The HTTPS server's child channels: Hummingbird's own HTTP/2-upgrade channel (ALPN picks HTTP/2 or
/// HTTP/1.1), rebuilt around a new `NIOSSLContext` when the certificate changes. Each new connection is
/// set up by the channel current at its accept; a connection keeps the TLS handler (and context) it
/// was given, so open connections continue undisturbed across a reload.
public final class ReloadableTLSServer: Sendable {
    struct State {
        var bundle: TLSCertificateBundle
        var responder: HTTPChannelHandler.Responder?
        var channel: HTTP2UpgradeChannel?
    }

    let state: Mutex<State>
    let certificateFile: String
    let keyFile: String
    let channelConfiguration: HTTP2UpgradeChannel.Configuration
    /// Set on each TCP connection before TLS (with HTTP/2, the stream handlers never see the socket).
    let loopback: LoopbackCongestionControl?

    public init(certificateFile: String, keyFile: String,
                channelConfiguration: HTTP2UpgradeChannel.Configuration = .init(),
                loopback: LoopbackCongestionControl? = nil) throws {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.channelConfiguration = channelConfiguration
        self.loopback = loopback
        state = Mutex(State(bundle: try TLSCertificateBundle.load(certificateFile: certificateFile, keyFile: keyFile)))
    }

    /// The certificate new connections get.
    public var current: TLSCertificateBundle { state.withLock { $0.bundle } }

    /// The builder to give Hummingbird's `Application(server:)`.
    public var builder: HTTPServerBuilder {
        HTTPServerBuilder { responder in
            try self.state.withLock { s in
                let channel = try HTTP2UpgradeChannel(tlsConfiguration: s.bundle.serverConfiguration(),
                                                      configuration: self.channelConfiguration, responder: responder)
                s.responder = responder
                s.channel = channel
                return SwappableChannel(server: self)
            }
        }
    }

    /// Switches new connections to `bundle`; throws (and keeps the current one) when BoringSSL refuses it.
    func install(_ bundle: TLSCertificateBundle) throws {
        // Built before taking the lock: making a context reads no files but is not free.
        let responder = state.withLock { $0.responder }
        let channel = try responder.map {
            try HTTP2UpgradeChannel(tlsConfiguration: bundle.serverConfiguration(), configuration: channelConfiguration,
                                    responder: $0)
        }
        state.withLock { s in
            s.bundle = bundle
            if let channel { s.channel = channel }
        }
    }

    public enum ReloadResult: Sendable, Equatable {
        case unchanged
        case reloaded
        case failed(String)
    }

    /// Reads the files again and installs them if they are valid; with `onlyIfChanged`, only when the
    /// files' stamp differs from the installed one. Invalid files leave the current certificate in place.
    @discardableResult
    public func reload(onlyIfChanged: Bool, logger: Logger) -> ReloadResult {
        if onlyIfChanged, FileStamp(paths: [certificateFile, keyFile]) == state.withLock({ $0.bundle.stamp }) {
            return .unchanged
        }
        do {
            let bundle = try TLSCertificateBundle.load(certificateFile: certificateFile, keyFile: keyFile)
            try install(bundle)
            logger.notice("TLS certificate reloaded", metadata: bundle.logMetadata)
            return .reloaded
        } catch {
            // Remember the stamp of the bad files, so the poll does not report them again until they change.
            let stamp = FileStamp(paths: [certificateFile, keyFile])
            state.withLock { s in
                s.bundle = TLSCertificateBundle(chain: s.bundle.chain, key: s.bundle.key, leaf: s.bundle.leaf, stamp: stamp)
            }
            var metadata = current.logMetadata
            metadata["error"] = "\(error)"
            logger.error("TLS certificate reload failed; still serving the previous certificate", metadata: metadata)
            return .failed("\(error)")
        }
    }

    fileprivate var channel: HTTP2UpgradeChannel {
        state.withLock { $0.channel! }
    }
}

/// The child channel Hummingbird runs: delegates each new connection to the current HTTP/2-upgrade channel.
struct SwappableChannel: HTTPChannelHandler {
    typealias Value = HTTP2UpgradeChannel.Value
    let server: ReloadableTLSServer

    var responder: HTTPChannelHandler.Responder { server.channel.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        if let loopback = server.loopback {
            // Its handler sets the socket option when added, then removes itself.
            do { try channel.pipeline.syncOperations.addHandler(loopback.handler()) } catch {
                return channel.eventLoop.makeFailedFuture(error)
            }
        }
        return server.channel.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        // Any instance handles any value: they differ only in the TLS context, used in `setup`.
        await server.channel.handle(value: value, logger: logger)
    }
}

/// Re-reads the certificate and key on SIGHUP and when the files change (checked every `pollInterval`).
struct TLSReloadService: Service {
    let server: ReloadableTLSServer
    let pollInterval: Duration
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        logger.info("serving HTTPS (HTTP/2 and HTTP/1.1 by ALPN); SIGHUP or a change of the files reloads the certificate",
                    metadata: server.current.logMetadata)
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in signals {
                        logger.info("SIGHUP: reloading the TLS certificate")
                        server.reload(onlyIfChanged: false, logger: logger)
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        do { try await Task.sleep(for: pollInterval) } catch { return }
                        server.reload(onlyIfChanged: true, logger: logger)
                    }
                }
            }
        }
    }
}

extension BerthConfiguration {
    /// The loopback congestion control the settings ask for, if any.
    var loopbackControl: LoopbackCongestionControl? {
        loopbackCongestionControl.isEmpty ? nil : LoopbackCongestionControl(algorithms: loopbackCongestionControl)
    }
}

/// The HTTPS server for the settings' TLS files, or nil when they are not set. Zero-copy downloads are
/// off under TLS (a `sendfile` region cannot pass through the TLS handler): blobs go through buffers.
func tlsServer(_ config: BerthConfiguration) throws -> ReloadableTLSServer? {
    guard let certificateFile = config.tlsCertificateFile, let keyFile = config.tlsKeyFile else { return nil }
    let stream = HTTP1Channel.Configuration(additionalChannelHandlers: connectionHandlers(loopback: nil, zeroCopy: false))
    return try ReloadableTLSServer(certificateFile: certificateFile, keyFile: keyFile,
                                   channelConfiguration: .init(streamConfiguration: stream), loopback: config.loopbackControl)
}
