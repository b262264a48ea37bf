import BerthAuth
import Crypto
import BerthCore
import BerthECR
import BerthHTTP
import BerthIAM
import BerthRegistry
import BerthScanning
import BerthStorage
import BerthSupport
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
        default: blobs = try FileSystemBlobStore(root: config.dataDir, writeMode: BlobWriteMode(rawValue: config.blobWrites) ?? .buffered)
        }
        switch config.metadataBackend {
        case "memory": metadata = InMemoryMetadataStore()
        default: metadata = try SQLiteMetadataStore(path: "\(config.dataDir)/berth.db")
        }
        return StorageBackends(blobs: blobs, metadata: metadata)
    }
}

/// The services behind both doors, built once from configuration.
public struct BerthServices: Sendable {
    public let config: BerthConfiguration
    public let registry: Registry
    public let identity: IdentityService
    public let ecr: ECRService
    public let authorizer: any Authorizer
    public let clock: any WallClock
    public let scanner: ScanService
    public let ecrPublic: ECRService
    public let iam: IAMService
    public let sts: STSService

    public static func make(_ config: BerthConfiguration, storage: StorageBackends? = nil,
                            clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth")) throws -> BerthServices {
        let backends = try storage ?? StorageBackends.make(config)
        let registry = Registry(
            blobs: backends.blobs, metadata: backends.metadata,
            settings: RegistrySettings(createOnPush: config.createOnPush, uploadTTL: Double(config.uploadTTLSeconds)),
            clock: clock, logger: logger)
        let key: SymmetricKey
        if config.metadataBackend == "memory" && config.secretKeyFile == nil {
            key = SecretBox.generateKey()
        } else {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            key = try SecretBox.loadOrCreateKey(atPath: config.secretKeyFile ?? "\(config.dataDir)/master.key")
        }
        let endpoint = config.effectivePublicEndpoint
        let identity = IdentityService(accounts: backends.metadata, secrets: try SecretBox(key: key),
                                       tokens: try RegistryTokenIssuer(serverKey: key), region: config.region, clock: clock,
                                       secureTransport: endpoint.hasPrefix("https://"), cacheSeconds: config.authCacheSeconds)
        let policyAuthorizer = PolicyAuthorizer(store: backends.metadata, region: config.region, clock: clock,
                                                cacheSeconds: config.authCacheSeconds, logger: logger)
        let authorizer: any Authorizer = policyAuthorizer
        let env = ECREnvironment(
            region: config.region,
            repositoryURI: { account, name in "\(config.registryHost(account: account))/\(name)" },
            proxyEndpoint: { account in
                let scheme = endpoint.hasPrefix("https://") ? "https" : "http"
                return "\(scheme)://\(config.registryHost(account: account))"
            },
            issueToken: { p, now in try identity.issueToken(for: p, now: now) },
            downloadURL: { p, repo, digest, now in
                try await identity.presignedBlobURL(base: endpoint, host: config.publicHost, repository: repo, digest: digest,
                                                    principal: p, now: now)
            },
            publicRegistryURI: { account in "\(config.publicHost)/public/\(PublicRegistry.alias(of: account))" },
            publicLogoURL: { account, name in "\(endpoint)/gallery/\(PublicRegistry.alias(of: account))/\(name)/logo" })
        let ecr = ECRService(registry: registry, authorizer: authorizer, environment: env, clock: clock, logger: logger)
        let ecrPublic = ECRService(registry: registry, authorizer: authorizer, environment: env, clock: clock, logger: logger,
                                   flavor: .public)
        let scanner = ScanService(registry: registry, dataDirectory: URL(fileURLWithPath: config.dataDir),
                                  pollInterval: .seconds(config.scanPollSeconds), logger: logger)
        let iam = IAMService(store: backends.metadata, authorizer: authorizer, clock: clock, logger: logger) { secret, id in
            try identity.seal(secret: secret, accessKeyID: id)
        }
        let sts = STSService(store: backends.metadata, authorizer: policyAuthorizer, sessions: identity.sessions, clock: clock,
                             logger: logger,
                             webIdentityKeys: JWKSDirectory(directory: config.effectiveOIDCJwksDirectory, clock: clock))
        return BerthServices(config: config, registry: registry, identity: identity, ecr: ecr, authorizer: authorizer, clock: clock,
                             scanner: scanner, ecrPublic: ecrPublic, iam: iam, sts: sts)
    }

    /// Makes sure the default account exists with a root key: the configured one, or a generated one
    /// that is written once to `<dataDir>/root-credentials.json` (mode 0600). Returns a generated key.
    @discardableResult
    public func bootstrap(logger: Logger) async throws -> (accessKeyID: String, secret: String)? {
        let account = config.accountId
        let metadata = registry.metadata
        try await metadata.createAccount(account, at: clock.now())
        if let id = config.rootAccessKeyId, let secret = config.rootSecretAccessKey {
            let existing = try await metadata.accessKey(id)
            if let existing, existing.accountID != account {
                throw ConfigurationError(problems: ["rootAccessKeyId \(id) belongs to account \(existing.accountID)"])
            }
            try await metadata.putAccessKey(AccessKeyRecord(
                accessKeyID: id, accountID: account, principalARN: Principal.rootARN(account),
                sealedSecret: try identity.seal(secret: secret, accessKeyID: id), status: existing?.status ?? "Active",
                createdAt: existing?.createdAt ?? clock.now()))
            return nil
        }
        if try await !metadata.accessKeys(ofAccount: account).isEmpty { return nil }
        let created = try await Self.createRootKey(account: account, metadata: metadata, identity: identity, now: clock.now())
        if config.metadataBackend != "memory" {
            let path = "\(config.dataDir)/root-credentials.json"
            let json = Self.credentialsJSON(account: account, id: created.accessKeyID, secret: created.secret)
            FileManager.default.createFile(atPath: path, contents: Data(json.utf8), attributes: [.posixPermissions: 0o600])
            logger.notice("generated root credentials", metadata: ["account": "\(account)", "accessKeyId": "\(created.accessKeyID)", "file": "\(path)"])
        }
        return created
    }

    /// A new root access key for an account.
    public static func createRootKey(account: String, metadata: any MetadataStore, identity: IdentityService,
                                     now: Double) async throws -> (accessKeyID: String, secret: String) {
        let id = AccessKeyGenerator.accessKeyID()
        let secret = AccessKeyGenerator.secretAccessKey()
        try await metadata.putAccessKey(AccessKeyRecord(
            accessKeyID: id, accountID: account, principalARN: Principal.rootARN(account),
            sealedSecret: try identity.seal(secret: secret, accessKeyID: id), createdAt: now))
        return (id, secret)
    }

    public static func credentialsJSON(account: String, id: String, secret: String) -> String {
        #"{"AccountId":"\#(account)","AccessKeyId":"\#(id)","SecretAccessKey":"\#(secret)"}"#
    }
}

/// Builds the whole application: storage, registry service, both doors and background services.
public func buildApplication(
    _ config: BerthConfiguration, storage: StorageBackends? = nil, clock: any WallClock = SystemWallClock(),
    logger: Logger = Logger(label: "berth")
) async throws -> some ApplicationProtocol {
    let services = try BerthServices.make(config, storage: storage, clock: clock, logger: logger)
    try await services.bootstrap(logger: logger)
    return buildApplication(services, logger: logger)
}

/// Builds the application around already-made services (tests use this to reach them).
public func buildApplication(_ services: BerthServices, logger: Logger = Logger(label: "berth")) -> some ApplicationProtocol {
    let config = services.config
    let oci = OCIHandler(registry: services.registry, defaultRegistryID: config.accountId, identity: services.identity,
                         authorizer: services.authorizer, realm: config.effectivePublicEndpoint + "/")
    let responder = BerthResponder<BerthRequestContext>(
        oci: oci, ecr: ECRHandler(ecr: services.ecr, identity: services.identity, ecrPublic: services.ecrPublic),
        query: QueryHandler(iam: services.iam, sts: services.sts, identity: services.identity))
    let loopback = config.loopbackCongestionControl.isEmpty ? nil : LoopbackCongestionControl(algorithms: config.loopbackCongestionControl)
    let purger = UploadPurgeService(registry: services.registry, interval: .seconds(config.uploadPurgeIntervalSeconds), logger: logger)
    return Application(
        responder: responder,
        server: .http1(additionalChannelHandlers: connectionHandlers(loopback: loopback, zeroCopy: config.zeroCopyDownloads)),
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "berth"),
        services: [purger, PullRecorderService(registry: services.registry, interval: .seconds(5), logger: logger),
                   ScanWorkerService(scanner: services.scanner)],
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

/// Runs image scans in the background until graceful shutdown.
struct ScanWorkerService: Service {
    let scanner: ScanService

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await scanner.run()
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
