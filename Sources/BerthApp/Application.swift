import BerthAuth
import Crypto
import BerthAudit
import BerthCore
import BerthDirectory
import BerthECR
import BerthEvents
import BerthHTTP
import BerthIAM
import BerthKMS
import BerthReplication
import BerthSecrets
import BerthRegistry
import BerthS3
import BerthScanService
import BerthPostgres
import BerthStorage
import BerthSupport
import Foundation
import NIOPosix
import Hummingbird
import Logging
import Metrics
import Prometheus
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
        case "s3":
            guard let s3 = config.s3.configuration else { throw ConfigurationError(problems: config.s3.problems(blobBackend: "s3")) }
            blobs = try S3BlobStore(s3)
        default:
            // Its own pool: the shared one has a thread per core, which caps concurrent fsyncs at that.
            let pool = NIOThreadPool(numberOfThreads: config.blobIOThreads)
            pool.start()
            blobs = try FileSystemBlobStore(root: config.dataDir, threadPool: pool,
                                            writeMode: BlobWriteMode(rawValue: config.blobWrites) ?? .buffered,
                                            archiveRoot: config.archiveDirectory)
        }
        switch config.metadataBackend {
        case "memory": metadata = InMemoryMetadataStore()
        case "postgres": metadata = try PostgresMetadataStore(url: config.postgresURL, environment: ProcessInfo.processInfo.environment)
        default: metadata = try SQLiteMetadataStore(path: "\(config.dataDir)/berth.db")
        }
        return StorageBackends(blobs: blobs, metadata: metadata)
    }
}

/// The services behind both doors, built once from configuration.
public struct BerthServices: Sendable {
    public let config: BerthConfiguration
    public let registry: Registry
    /// Accounts, access keys and IAM identities: what `berth admin` and the bootstrap write.
    public let directory: Directory
    public let identity: IdentityService
    public let ecr: ECRService
    public let authorizer: any Authorizer
    public let clock: any WallClock
    public let scanner: ScanService
    public let ecrPublic: ECRService
    public let iam: IAMService
    public let sts: STSService
    /// KMS keys (`TrentService`), and the API over them.
    public let keys: KeyService
    public let kms: KMSService
    /// Secrets Manager (`secretsmanager.`): upstream credentials of pull through cache rules.
    public let secrets: SecretsManagerService
    /// The pull through cache: its rules (ECR operations) and the filling of cached repositories.
    public let pullThrough: PullThroughCache
    /// The request metrics (`GET /metrics`), in a Prometheus registry of their own.
    public let metrics: BerthMetrics
    /// Replaces the registry's own storage class change for lifecycle `transition` actions (nil: the registry's).
    public var lifecycleTransition: LifecycleTransitionHook? = nil
    /// The HTTPS server's certificate, when the TLS files are set.
    public var tls: ReloadableTLSServer? = nil
    /// The audit trail, when `auditEnabled`.
    public var audit: AuditTrail? = nil
    /// Event delivery from the outbox (docs/events.md), when event targets are configured.
    public var eventDeliverer: EventDeliverer? = nil
    /// The worker of the replication queue (docs/replication.md).
    public var replication: ReplicationService? = nil
    /// Identifies the master key (a value derived from it, never the key): recorded in the metadata
    /// database, so a process started with another key — a second node with its own `master.key` — is
    /// refused instead of failing to open every secret and sealed blob.
    public var masterKeyFingerprint: String = ""

    public static func make(_ config: BerthConfiguration, storage: StorageBackends? = nil,
                            clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth")) throws -> BerthServices {
        let backends = try storage ?? StorageBackends.make(config)
        let key: SymmetricKey
        if config.metadataBackend == "memory" && config.secretKeyFile == nil {
            key = SecretBox.generateKey()
        } else {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            key = try SecretBox.loadOrCreateKey(atPath: config.secretKeyFile ?? "\(config.dataDir)/master.key")
        }
        let directory = Directory(store: backends.metadata, homeRegion: config.region)
        let policyAuthorizer = PolicyAuthorizer(directory: directory, region: config.region, clock: clock,
                                                cacheSeconds: config.authCacheSeconds, logger: logger)
        let keys = KeyService(store: backends.metadata, masterKey: key, region: config.region, regions: config.regionSet,
                              authorizer: policyAuthorizer, clock: clock, logger: logger)
        let registry = Registry(
            blobs: backends.blobs, metadata: backends.metadata,
            settings: RegistrySettings(createOnPush: config.createOnPush, uploadTTL: Double(config.uploadTTLSeconds),
                                       blobLinkCacheSeconds: config.blobLinkCacheSeconds,
                                       redirectDownloads: config.blobBackend == "s3" && config.s3.redirect,
                                       uploadWriterTimeout: Double(config.uploadWriterTimeoutSeconds),
                                       sharedMetadata: config.metadataBackend == "postgres"),
            clock: clock, logger: logger,
            keyring: KeyServiceBlobKeyring(keys: keys, masterKey: key), encryptBlobs: config.encryptBlobs,
            eventSource: config.events.targets.isEmpty ? nil : ECREventSource(region: config.region))
        let endpoint = config.effectivePublicEndpoint
        let identity = IdentityService(directory: directory, secrets: try SecretBox(key: key),
                                       tokens: try RegistryTokenIssuer(serverKey: key), region: config.region, clock: clock,
                                       secureTransport: endpoint.hasPrefix("https://"), cacheSeconds: config.authCacheSeconds,
                                       regions: config.regionSet)
        let authorizer: any Authorizer = policyAuthorizer
        // Repository URIs and proxy endpoints name the region of the request being served.
        var env = ECREnvironment(
            region: config.region,
            repositoryURI: { account, name in
                "\(config.registryHost(account: account, region: RequestRegion.current?.name))/\(name)"
            },
            proxyEndpoint: { account in
                let scheme = endpoint.hasPrefix("https://") ? "https" : "http"
                return "\(scheme)://\(config.registryHost(account: account, region: RequestRegion.current?.name))"
            },
            issueToken: { p, now in try identity.issueToken(for: p, now: now) },
            downloadURL: { p, repo, digest, now in
                // With `s3Redirect`, a blob stored as pushed is downloaded from the bucket directly.
                if let url = try await registry.openBlob(repo, digest).redirectURL { return url }
                return try await identity.presignedBlobURL(base: endpoint, host: config.publicHost, repository: repo, digest: digest,
                                                    principal: p, now: now)
            },
            publicRegistryURI: { account in "\(config.publicHost)/public/\(PublicRegistry.alias(of: account))" },
            publicLogoURL: { account, name in "\(endpoint)/gallery/\(PublicRegistry.alias(of: account))/\(name)/logo" })
        env.regions = config.regionSet
        let secrets = SecretsManagerService(store: backends.metadata, box: try SecretBox(key: key), region: config.region,
                                            authorizer: authorizer, clock: clock, logger: logger)
        let pullThrough = PullThroughCache(
            store: backends.metadata, registry: registry,
            settings: PullThroughSettings(tagTTL: Double(config.pullThroughTagTTLSeconds),
                                          allowInsecureUpstreams: config.pullThroughAllowInsecureUpstreams),
            credentials: { arn throws(PullThroughRuleError) in
                do throws(SecretsManagerService.CredentialFailure) {
                    let c = try await secrets.upstreamCredentials(arn: arn)
                    return UpstreamCredentials(username: c.username, password: c.accessToken)
                } catch {
                    switch error {
                    case .notFound: throw .secretNotFound(arn)
                    case .cannotDecrypt: throw .unableToDecryptSecret(arn)
                    case .malformed: throw .unableToAccessSecret(arn)
                    }
                }
            },
            clock: clock, logger: logger)
        let metrics = BerthMetrics()
        let replication = ReplicationService(
            registry: registry, settings: config.replication.settings(regions: config.regionSet),
            observer: ReplicationMetrics(registry: metrics.registry), logger: logger)
        let ecr = ECRService(registry: registry, authorizer: authorizer, environment: env, clock: clock, logger: logger,
                             pullThrough: pullThrough, replication: replication)
        let ecrPublic = ECRService(registry: registry, authorizer: authorizer, environment: env, clock: clock, logger: logger,
                                   flavor: .public)
        let scanner = ScanService(registry: registry, dataDirectory: URL(fileURLWithPath: config.dataDir),
                                  pollInterval: .seconds(config.scanPollSeconds), logger: logger)
        let iam = IAMService(directory: directory, authorizer: authorizer, clock: clock, logger: logger) { secret, id in
            try identity.seal(secret: secret, accessKeyID: id)
        }
        let sts = STSService(directory: directory, authorizer: policyAuthorizer, sessions: identity.sessions, clock: clock,
                             logger: logger,
                             webIdentityKeys: JWKSDirectory(directory: config.effectiveOIDCJwksDirectory, clock: clock))
        let storageMetrics = StorageMetrics(registry: metrics.registry, now: { clock.now() }) {
            try await registry.storageUsage(repositories: false)
        }
        metrics.storage.withLock { $0 = storageMetrics }
        var services = BerthServices(config: config, registry: registry, directory: directory, identity: identity, ecr: ecr,
                                     authorizer: authorizer, clock: clock,
                                     scanner: scanner, ecrPublic: ecrPublic, iam: iam, sts: sts, keys: keys,
                                     kms: KMSService(keys: keys, logger: logger), secrets: secrets, pullThrough: pullThrough,
                                     metrics: metrics,
                                     tls: try tlsServer(config), audit: try auditTrail(config, clock: clock, logger: logger))
        services.replication = replication
        services.masterKeyFingerprint = Self.fingerprint(of: key)
        if !config.events.targets.isEmpty {
            let delivery = try config.events.delivery()
            services.eventDeliverer = EventDeliverer(
                registry: registry, settings: delivery,
                metrics: EventMetrics(registry: metrics.registry, targets: delivery.targets.map(\.name)), logger: logger)
        }
        return services
    }

    /// A name for the master key: HKDF-SHA256 of it for this purpose, hex. It identifies the key and
    /// reveals nothing of it.
    static func fingerprint(of key: SymmetricKey) -> String {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, info: Array("berth master key fingerprint v1".utf8),
                                             outputByteCount: 16)
        return derived.withUnsafeBytes { Array($0) }.map { String(format: "%02x", $0) }.joined()
    }

    /// The audit trail: `audit.db` in the data directory (in memory with the `memory` metadata backend).
    static func auditTrail(_ config: BerthConfiguration, clock: any WallClock, logger: Logger) throws -> AuditTrail? {
        guard config.auditEnabled else { return nil }
        let store: any AuditStore
        if config.metadataBackend == "memory" {
            store = InMemoryAuditStore()
        } else {
            try FileManager.default.createDirectory(atPath: config.dataDir, withIntermediateDirectories: true)
            store = try SQLiteAuditStore(path: "\(config.dataDir)/audit.db")
        }
        return AuditTrail(store: store, retentionDays: config.auditRetentionDays, clock: clock, logger: logger)
    }

    /// Sends swift-metrics of every library in the process (Hummingbird's, for one) to the registry that
    /// `GET /metrics` serves. Once per process: `berth serve` calls it; tests, which run many servers in
    /// one process, do not (each server's own metrics never go through the global system).
    public func bootstrapMetricsSystem() {
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics.registry))
    }

    /// Makes sure the default account exists with a root key: the configured one, or a generated one
    /// that is written once to `<dataDir>/root-credentials.json` (mode 0600). Returns a generated key.
    @discardableResult
    public func bootstrap(logger: Logger) async throws -> (accessKeyID: String, secret: String)? {
        try await checkHomeRegion()
        try await checkMasterKey()
        let account = config.accountId
        try await directory.createAccount(account, at: clock.now())
        if let id = config.rootAccessKeyId, let secret = config.rootSecretAccessKey {
            do {
                try await directory.putConfiguredRootKey(id: id, account: account,
                                                         sealedSecret: try identity.seal(secret: secret, accessKeyID: id), at: clock.now())
            } catch DirectoryError.accessKeyOfAnotherAccount(_, let other) {
                throw ConfigurationError(problems: ["rootAccessKeyId \(id) belongs to account \(other)"])
            }
            return nil
        }
        // Only the account's first key: a key made meanwhile by another process (or an earlier start) wins.
        let (record, secret) = try Self.newRootKey(account: account, identity: identity, now: clock.now())
        guard try await directory.addFirstAccessKey(record) else { return nil }
        let created = (accessKeyID: record.accessKeyID, secret: secret)
        if config.metadataBackend != "memory" {
            let path = "\(config.dataDir)/root-credentials.json"
            let json = Self.credentialsJSON(account: account, id: created.accessKeyID, secret: created.secret)
            FileManager.default.createFile(atPath: path, contents: Data(json.utf8), attributes: [.posixPermissions: 0o600])
            logger.notice("generated root credentials", metadata: ["account": "\(account)", "accessKeyId": "\(created.accessKeyID)", "file": "\(path)"])
        }
        return created
    }

    /// Refuses a `region` setting other than the home region this database records: repositories stored
    /// under bare account ids belong to it, and would otherwise change region silently.
    func checkHomeRegion() async throws {
        let home = try await registry.recordedHomeRegion(default: config.region)
        guard home == config.region else {
            throw ConfigurationError(problems: [
                "region is \(config.region), but this registry's data belongs to \(home) (its home region); set region to \(home) and list other regions in regions"])
        }
    }

    /// Refuses a master key other than the one this metadata's secrets and sealed blobs were made with (the
    /// first start records it): every node of a fleet, and every `berth admin` run, must use the same key.
    func checkMasterKey() async throws {
        guard config.metadataBackend != "memory" else { return }
        let recorded = try await registry.recordedDeploymentSetting(Registry.masterKeyFingerprintSetting, default: masterKeyFingerprint)
        guard recorded == masterKeyFingerprint else {
            throw ConfigurationError(problems: [
                "the master key (\(config.secretKeyFile ?? "\(config.dataDir)/master.key")) is not the key this registry's secrets and encrypted blobs were sealed with; every node must use the same key (copy it, or point secretKeyFile at it)"])
        }
    }

    /// A new root access key for an account.
    public static func createRootKey(account: String, directory: Directory, identity: IdentityService,
                                     now: Double) async throws -> (accessKeyID: String, secret: String) {
        let (record, secret) = try newRootKey(account: account, identity: identity, now: now)
        try await directory.addAccessKey(record)
        return (record.accessKeyID, secret)
    }

    /// A root key record with a fresh id and sealed secret, and the secret.
    static func newRootKey(account: String, identity: IdentityService, now: Double) throws -> (AccessKeyRecord, String) {
        let id = AccessKeyGenerator.accessKeyID()
        let secret = AccessKeyGenerator.secretAccessKey()
        return (AccessKeyRecord(accessKeyID: id, accountID: account, principalARN: Principal.rootARN(account),
                                sealedSecret: try identity.seal(secret: secret, accessKeyID: id), createdAt: now), secret)
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
/// `verifier` replaces the credential checks of `services.identity` (tests count them with it).
public func buildApplication(_ services: BerthServices, logger: Logger = Logger(label: "berth"),
                             verifier: (any CredentialVerifier)? = nil) -> some ApplicationProtocol {
    let config = services.config
    let authenticator = Authenticator(verifier: verifier ?? services.identity)
    let oci = OCIHandler(registry: services.registry, defaultRegistryID: config.accountId, authenticator: authenticator,
                         authorizer: services.authorizer, realm: config.effectivePublicEndpoint + "/", metrics: services.metrics,
                         pullThrough: services.pullThrough)
    let router = BerthRouter.make(
        oci: oci,
        ecr: ECRHandler(ecr: services.ecr, authenticator: authenticator, ecrPublic: services.ecrPublic, kms: services.kms,
                        secrets: services.secrets,
                        cloudTrail: services.audit.map { CloudTrailService(trail: $0, authorizer: services.authorizer) },
                        metrics: services.metrics),
        query: QueryHandler(iam: services.iam, sts: services.sts, authenticator: authenticator), metrics: services.metrics,
        audit: services.audit, region: config.region, auditRegistryReads: config.auditRegistryReads,
        gallery: GalleryHandler(registry: services.registry, host: config.publicHost, pagesEnabled: config.galleryEnabled,
                                summaryTTL: .seconds(config.galleryCacheSeconds)))
    let loopback = config.loopbackControl
    var background: [any Service] = [
        PeriodicService.uploadPurge(services.registry, every: .seconds(config.uploadPurgeIntervalSeconds), logger: logger),
        PeriodicService.pullRecorder(services.registry, every: .seconds(config.pullTimeFlushSeconds), logger: logger),
        ScanWorkerService(scanner: services.scanner),
        PeriodicService.keyMaintenance(services.keys, registry: services.registry, every: .seconds(60), logger: logger),
        // Restores (ACTIVATING) left unfinished by a restart or a dead node; new ones start at once.
        PeriodicService(name: "archive restores", interval: { .seconds(300) }, runsAtStart: true,
                        lease: (services.registry, Registry.activationLease), logger: logger) {
            let n = try await services.registry.finishActivations()
            if n > 0 { logger.info("archived images restored", metadata: ["count": "\(n)"]) }
        },
    ]
    if config.gcIntervalSeconds > 0 {
        background.append(PeriodicService.garbageCollection(services.registry, every: .seconds(config.gcIntervalSeconds),
                                                            options: GarbageCollectionOptions(grace: Double(config.gcGraceSeconds),
                                                                                             waitForOtherCollection: false),
                                                            logger: logger))
    }
    if config.lifecycleIntervalSeconds > 0 {
        background.append(PeriodicService.lifecycle(services, every: .seconds(config.lifecycleIntervalSeconds), logger: logger))
    }
    if let tls = services.tls { background.append(TLSReloadService(server: tls, pollInterval: .seconds(3), logger: logger)) }
    if let events = services.eventDeliverer { background.append(EventDeliveryService(deliverer: events)) }
    if let replication = services.replication {
        background.append(ReplicationWorkerService(worker: replication))
        // Fleet-wide once: each pass runs under its lease (docs/replication.md, "Reconciliation").
        if replication.settings.reconcileIntervalSeconds > 0 {
            background.append(PeriodicService(name: "replication reconciliation",
                                              interval: { .milliseconds(Int64(replication.settings.reconcileIntervalSeconds * 1000)) },
                                              lease: (services.registry, ReplicationService.reconcileLease), logger: logger) {
                _ = try await replication.reconcile()
            })
        }
        background.append(PeriodicService(name: "replication job purge", interval: { .seconds(3_600) }, runsAtStart: true,
                                          lease: (services.registry, ReplicationService.purgeLease), logger: logger) {
            try await replication.purgeFinishedJobs()
        })
    }
    if let audit = services.audit {
        background.append(PeriodicService.auditFlush(audit, logger: logger))
        background.append(PeriodicService(name: "audit retention", interval: { .seconds(3_600) }, runsAtStart: true, logger: logger) {
            try await audit.applyRetention()
        })
    }
    let server = services.tls?.builder
        ?? .http1(additionalChannelHandlers: connectionHandlers(loopback: loopback, zeroCopy: config.zeroCopyDownloads))
    return Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "berth"),
        services: background,
        logger: logger)
}

/// The one loop of Berth's periodic background jobs (upload purge, pull times, KMS key maintenance,
/// garbage collection, lifecycle runs): `work` every `interval()` until graceful shutdown (after a first
/// wait, or at once with `runsAtStart`), a failure logged and the loop kept; `atShutdown` runs once after.
struct PeriodicService: Service {
    let name: String
    let interval: @Sendable () -> Duration
    var runsAtStart = false
    var atShutdown: (@Sendable () async -> Void)? = nil
    /// Work shared by every node on the same metadata: each round runs under this lease (`WorkLeases`)
    /// and is skipped while another process holds it.
    var lease: (registry: Registry, name: String)? = nil
    let logger: Logger
    let work: @Sendable () async throws -> Void

    /// One round: the work, under the lease when there is one.
    func round() async throws {
        guard let lease else { return try await work() }
        if try await lease.registry.withLease(lease.name, work) == nil {
            logger.debug("\(name) skipped: another process holds its lease", metadata: ["lease": "\(lease.name)"])
        }
    }

    func run() async throws {
        // Timers stop at graceful shutdown, not only on cancellation.
        await cancelWhenGracefulShutdown {
            var wait = !runsAtStart
            while !Task.isCancelled {
                if wait {
                    do { try await Task.sleep(for: interval()) } catch { break }
                }
                wait = true
                do {
                    try await round()
                } catch {
                    logger.error("\(name) failed", metadata: ["error": "\(error)"])
                }
            }
        }
        await atShutdown?()
    }
}

extension PeriodicService {
    /// Writes the audit trail's buffered events every `flushInterval`, and once more at shutdown.
    static func auditFlush(_ audit: AuditTrail, logger: Logger) -> PeriodicService {
        PeriodicService(name: "audit flush", interval: { audit.flushInterval }, atShutdown: { await audit.flush() }, logger: logger) {
            await audit.flush()
        }
    }

    /// Purges abandoned upload sessions.
    static func uploadPurge(_ registry: Registry, every interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "upload purge", interval: { interval }, lease: (registry, "upload-purge"), logger: logger) {
            let n = try await registry.purgeStaleUploads()
            if n > 0 { logger.info("purged stale uploads", metadata: ["count": "\(n)"]) }
        }
    }

    /// Writes noted pull times to the database every few seconds, and once more at shutdown.
    static func pullRecorder(_ registry: Registry, every interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "recording pulls", interval: { interval }, atShutdown: {
            do { try await registry.flushPulls() } catch { logger.error("recording pulls failed", metadata: ["error": "\(error)"]) }
        }, logger: logger) {
            try await registry.flushPulls()
        }
    }

    /// Completes due KMS key deletions and automatic rotations (a key is also checked whenever it is
    /// used, so a deletion never waits for this).
    static func keyMaintenance(_ keys: KeyService, registry: Registry, every interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(name: "KMS key maintenance", interval: { interval }, runsAtStart: true,
                        lease: (registry, "kms-key-maintenance"), logger: logger) {
            let done = try await keys.runDueWork()
            if done.deleted + done.rotated > 0 {
                logger.info("KMS key maintenance", metadata: ["deleted": "\(done.deleted)", "rotated": "\(done.rotated)"])
            }
        }
    }

    /// Collects garbage (docs/gc.md) while the server serves; skips a round while another collection (a
    /// `berth gc`, another node) holds the collector's lease.
    static func garbageCollection(_ registry: Registry, every interval: Duration, options: GarbageCollectionOptions,
                                  logger: Logger) -> PeriodicService {
        PeriodicService(name: "garbage collection", interval: { interval }, logger: logger) {
            let r: GarbageCollectionReport
            do { r = try await registry.collectGarbage(options) } catch let busy as GarbageCollectionBusy {
                logger.info("garbage collection skipped", metadata: ["reason": "\(busy)"])
                return
            }
            logger.info("garbage collected", metadata: [
                "blobs": "\(r.blobsDeleted)", "bytes": "\(r.bytesFreed)", "orphanFiles": "\(r.orphanBlobFiles)",
                "orphanUploads": "\(r.orphanUploads)", "waiting": "\(r.waitingBlobs)", "seconds": "\(r.seconds)"])
        }
    }
}

/// Delivers events from the outbox in the background until graceful shutdown (what is not delivered
/// stays in the outbox for the next start).
struct EventDeliveryService: Service {
    let deliverer: EventDeliverer

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await deliverer.run()
        }
    }
}

/// Works the replication queue in the background until graceful shutdown (what is not copied stays
/// queued for the next start).
struct ReplicationWorkerService: Service {
    let worker: ReplicationService

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await worker.run()
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

