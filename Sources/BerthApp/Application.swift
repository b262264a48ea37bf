import BerthCore
import BerthHTTP
import BerthRegistry
import BerthStorage
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The storage a registry runs on, chosen from configuration with one explicit switch.
public struct StorageBackends: Sendable {
    public let blobs: any BlobStore
    public let metadata: any MetadataStore

    public init(blobs: any BlobStore, metadata: any MetadataStore) {
        self.blobs = blobs
        self.metadata = metadata
    }

    public static func make(_ config: BerthConfiguration) throws -> StorageBackends {
        let blobs: any BlobStore
        let metadata: any MetadataStore
        if config.blobBackend != "memory" || config.metadataBackend != "memory" {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
        }
        switch config.blobBackend {
        case "memory": blobs = InMemoryBlobStore()
        default: blobs = try FileSystemBlobStore(root: config.dataDir)
        }
        switch config.metadataBackend {
        case "memory": metadata = InMemoryMetadataStore()
        default: metadata = try SQLiteMetadataStore(path: "\(config.dataDir)/berth.db")
        }
        return StorageBackends(blobs: blobs, metadata: metadata)
    }
}

/// Builds the whole application: storage, registry service, HTTP server and background services.
public func buildApplication(
    _ config: BerthConfiguration, storage: StorageBackends? = nil, clock: any WallClock = SystemWallClock(),
    logger: Logger = Logger(label: "berth")
) throws -> some ApplicationProtocol {
    let backends = try storage ?? StorageBackends.make(config)
    let registry = Registry(
        blobs: backends.blobs, metadata: backends.metadata,
        settings: RegistrySettings(createOnPush: config.createOnPush, uploadTTL: Double(config.uploadTTLSeconds)),
        clock: clock, logger: logger)
    let responder = BerthResponder<BasicRequestContext>(registry: registry, defaultRegistryID: config.accountId)
    let purger = UploadPurgeService(registry: registry, interval: .seconds(config.uploadPurgeIntervalSeconds), logger: logger)
    return Application(
        responder: responder,
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "berth"),
        services: [purger, PullRecorderService(registry: registry, interval: .seconds(5), logger: logger)],
        logger: logger)
}

/// Purges abandoned upload sessions periodically.
struct UploadPurgeService: Service {
    let registry: Registry
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Timers stop at graceful shutdown, not only on cancellation.
        try await cancelWhenGracefulShutdown {
            await self.loop()
        }
    }

    func loop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return
            }
            do {
                let n = try await registry.purgeStaleUploads()
                if n > 0 { logger.info("purged stale uploads", metadata: ["count": "\(n)"]) }
            } catch {
                logger.error("upload purge failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Writes noted pull times to the database every few seconds, and once more at shutdown.
struct PullRecorderService: Service {
    let registry: Registry
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await flush()
            }
        }
        await flush()
    }

    func flush() async {
        do {
            try await registry.flushPulls()
        } catch {
            logger.error("recording pulls failed", metadata: ["error": "\(error)"])
        }
    }
}
