import BerthCore
import BerthHTTP
import BerthPostgres
import BerthStorage
import Foundation

/// Every Berth setting, in one tree. Sources, lowest precedence first: defaults, the JSON config
/// file, `BERTH_*` environment variables, command-line flags. Parsed and validated here only.
public struct BerthConfiguration: Codable, Sendable, Equatable {
    /// Directory for the embedded storage (blobs and the SQLite database).
    public var dataDir: String = "./berth-data"
    public var host: String = "127.0.0.1"
    public var port: Int = 5000
    /// The account (12-digit registry id) that owns this registry by default.
    public var accountId: String = "000000000000"
    /// The AWS region name this deployment presents by default (requests that name no region), and the
    /// home region whose registries earlier versions wrote (see `RegionSet`).
    public var region: String = "us-east-1"
    /// Further regions this deployment presents besides `region` (each account × region a separate
    /// registry); `["*"]` accepts any well-formed region name, as AWS emulators do for CI.
    public var regions: [String] = []
    /// The account root's access key; generated on first start (and written to
    /// `<dataDir>/root-credentials.json`, mode 0600) when not given.
    public var rootAccessKeyId: String? = nil
    public var rootSecretAccessKey: String? = nil
    /// The URL clients reach this registry at (`proxyEndpoint`); default `http://<host>:<port>`
    /// (`https://` when the TLS files are set).
    public var publicEndpoint: String? = nil
    /// When set, repository URIs are `<account>.dkr.ecr.<region>.<registryDomain>[:port]/<name>` as with ECR.
    public var registryDomain: String? = nil
    /// The key that seals secret access keys at rest, kept outside the database; default `<dataDir>/master.key`.
    public var secretKeyFile: String? = nil
    /// A push to a missing repository creates it (with a matching `CREATE_ON_PUSH` repository creation
    /// template's settings, if any); false: only a matching `CREATE_ON_PUSH` template lets it (as ECR).
    public var createOnPush: Bool = true
    /// trace, debug, info, notice, warning, error, critical.
    public var logLevel: String = "info"
    /// `json` (one object per line) or `text`.
    public var logFormat: String = "json"
    /// Seconds after which an untouched upload session is purged.
    public var uploadTTLSeconds: Int = 86_400
    /// How often stale uploads are purged, in seconds.
    public var uploadPurgeIntervalSeconds: Int = 3_600
    /// Seconds a request's claim on an upload holds without renewal before another request may write the
    /// upload at the same offset (the writer's node died or stalled; docs/s3.md). A live writer renews its
    /// claim every fifth of it and gives up after half of it without a renewal, so this bounds the wait of an
    /// upload resumed after a node's death, and half of it is the clock skew between nodes that is tolerated.
    public var uploadWriterTimeoutSeconds: Int = 30
    /// How often lifecycle policies are applied, in seconds (plus up to a tenth at random); 0 turns the schedule off.
    public var lifecycleIntervalSeconds: Int = 86_400
    /// How often the scanner checks for a newly imported vulnerability database and for queued scans, in seconds.
    public var scanPollSeconds: Int = 5
    /// How often noted pulls are written as `lastRecordedPullTime` and download counts, in seconds (also at
    /// shutdown and before every DescribeImages, so the API is exact; this bounds what a crash loses and what
    /// other readers, the gallery and other nodes, see).
    public var pullTimeFlushSeconds: Int = 5
    /// Where the bytes of blobs that only archived images use are moved (another directory or disk); off
    /// (nil) by default: archived images then keep their bytes where they are.
    public var archiveDirectory: String? = nil
    /// Send blob downloads from the filesystem with `sendfile` (zero-copy) instead of through buffers:
    /// less CPU and memory per download, and the fastest for clients that read in large pieces (see README).
    public var zeroCopyDownloads: Bool = true
    /// How long a tag cached through a pull through cache rule is served before the upstream is asked
    /// again (ECR: 24 hours).
    public var pullThroughTagTTLSeconds: Int = 86_400
    /// Allow `http://` upstreams in pull through cache rules (loopback tests); off: only `https://`.
    public var pullThroughAllowInsecureUpstreams: Bool = false
    /// TCP congestion control for connections from this host (loopback peers), first accepted wins;
    /// empty (`BERTH_LOOPBACK_CONGESTION_CONTROL=system`) keeps the system's. BBR paces loopback transfers at about half of what cubic/reno reach.
    public var loopbackCongestionControl: [String] = ["cubic", "reno"]
    /// How the filesystem blob store writes uploads: `buffered` (page cache with early write-back; a blob
    /// just pushed is pulled from memory) or `direct` (O_DIRECT for large spans).
    public var blobWrites: String = "buffered"
    /// Seal the blobs of `AES256` repositories with a registry-managed key (docs/encryption.md); off for
    /// deployments that encrypt at the disk or object-store layer. KMS repositories' blobs are always sealed.
    public var encryptBlobs: Bool = true
    /// Threads for the filesystem blob store's blocking I/O (open, write, fsync, rename). Mostly waiting on
    /// the disk, not the CPU: enough of them let concurrent pushes' fsyncs overlap.
    public var blobIOThreads: Int = 16
    /// Metadata backend: `sqlite` (default), `postgres` (at `postgresURL`) or `memory`.
    public var metadataBackend: String = "sqlite"
    /// Blob backend: `filesystem` (default), `s3` (settings in `s3`) or `memory`.
    public var blobBackend: String = "filesystem"
    /// The PostgreSQL server of `metadataBackend: postgres`, as a libpq URL; what it leaves out comes from
    /// the `PG*` variables (see `PostgresConnectionSettings`). Nil: the `PG*` variables alone.
    public var postgresURL: String? = nil

    /// `postgresURL` with its password hidden (for printing the settings).
    public var postgresURLRedacted: String? { postgresURL.map(PostgresConnectionSettings.redacted) }
    /// The S3 blob backend's settings (`s3Endpoint`, `s3Bucket`, … / `BERTH_S3_*`).
    public var s3 = S3Settings()
    /// Event notifications (`eventTargets`, `eventMaxAttempts`, … / `BERTH_EVENT_*`; docs/events.md).
    public var events = EventSettings()
    /// Replication to peer deployments and the queue's retries (`replicationPeers`, … / `BERTH_REPLICATION_*`; docs/replication.md).
    public var replication = ReplicationConfigurationSettings()
    /// Where OIDC issuers' JWKS files are (`<issuer host and path, "/" as "_">.json`); default `<dataDir>/oidc-jwks`.
    public var oidcJwksDirectory: String? = nil
    /// How long cached access keys and policies may be used before they are read again, in seconds. Writes
    /// made through this server take effect on the next request regardless (they invalidate the caches);
    /// this bounds only how late a change written by another process sharing the database is seen. 0 disables the caches.
    public var authCacheSeconds: Double = 1
    /// How often `berth serve` collects garbage (docs/gc.md), in seconds; 0 turns the schedule off
    /// (`berth gc` still works).
    public var gcIntervalSeconds: Int = 3_600
    /// How long a blob stays unreferenced and untouched before the collector deletes it, and the age
    /// under which orphaned files are kept, in seconds. Longer than any push (layers to manifest).
    public var gcGraceSeconds: Int = 3_600
    /// Record every request in the audit trail (`audit.db` in the data directory; read with CloudTrail's
    /// `LookupEvents` or `berth audit export`).
    public var auditEnabled: Bool = true
    /// Days audit events are kept (CloudTrail's event history keeps 90).
    public var auditRetentionDays: Int = 90
    /// Also record successful `/v2/` reads (manifest and blob GET/HEAD, tag and catalog lists). Off by
    /// default: they are the registry's hot path, and recording each one costs about as much CPU as
    /// serving it (measured: manifest GET c=64 54 → 103 µs of server CPU per request). Failed and
    /// denied reads, pushes, deletes and every API call are recorded either way.
    public var auditRegistryReads: Bool = false
    /// Serve the public gallery's pages (`/gallery/`, search, registry and repository pages). ECR Public
    /// logos (`logoUrl`, under `/gallery/`) are served either way.
    public var galleryEnabled: Bool = true
    /// How long the gallery's list and search pages reuse one read of every public repository (0–60 s;
    /// 0 reads on every request). A page is at most that much behind a push or a catalog change.
    public var galleryCacheSeconds: Int = 2

    /// How long a server answers blob `HEAD`s from memory: well within the collector's grace period, so
    /// a collector in another process never deletes a blob a cached answer still vouches for.
    public var blobLinkCacheSeconds: Double { min(60, Double(gcGraceSeconds) / 2) }
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this PEM certificate chain (leaf first) and
    /// `tlsKeyFile`'s PEM private key; both or neither. Re-read on SIGHUP and when the files change.
    public var tlsCertificateFile: String? = nil
    public var tlsKeyFile: String? = nil

    public init() {}

    /// Whether the server speaks TLS itself (both TLS files are set).
    public var servesTLS: Bool { tlsCertificateFile != nil && tlsKeyFile != nil }

    /// `publicEndpoint`, or `http://<host>:<port>`, as URLs are built from it: without the scheme's
    /// default port (443 for https, 80 for http; a URI never carries it) and without a trailing slash.
    public var effectivePublicEndpoint: String {
        let scheme = servesTLS ? "https" : "http"
        let e = Self.splitEndpoint(publicEndpoint ?? "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(port)")
        return "\(e.scheme)://\(e.authority)\(e.path)"
    }

    /// `oidcJwksDirectory`, or `<dataDir>/oidc-jwks`.
    public var effectiveOIDCJwksDirectory: String { oidcJwksDirectory ?? "\(dataDir)/oidc-jwks" }

    /// The public endpoint without its scheme: what clients put in image references (`host[:port]`,
    /// never with the scheme's default port).
    public var publicHost: String { Self.splitEndpoint(effectivePublicEndpoint).authority }

    /// The host of a registry's repository URIs: `<account>.dkr.ecr.<region>.<registryDomain>[:port]`
    /// when `registryDomain` is set (the port only if the public endpoint has a non-default one).
    public func registryHost(account: String, region: String? = nil) -> String {
        guard let domain = registryDomain else { return publicHost }
        let authority = publicHost
        var port = ""
        if let colon = authority.lastIndex(of: ":"), !authority[colon...].contains("]") { port = String(authority[colon...]) }
        return "\(account).dkr.ecr.\(region ?? self.region).\(domain)\(port)"
    }

    /// The regions requests may address: `region` (the default and home region) and `regions`.
    public var regionSet: RegionSet {
        RegionSet(home: region, listed: regions.filter { $0 != "*" }, acceptsAny: regions.contains("*"))
    }

    /// An `http(s)://authority/path` endpoint, split; the authority loses the scheme's default port
    /// (`:443` for https, `:80` for http) and the path its trailing slashes.
    static func splitEndpoint(_ endpoint: String) -> (scheme: String, authority: String, path: String) {
        let https = endpoint.lowercased().hasPrefix("https://")
        let rest = endpoint.dropFirst(https ? 8 : endpoint.lowercased().hasPrefix("http://") ? 7 : 0)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        var authority = String(rest[..<slash])
        var path = String(rest[slash...])
        while path.hasSuffix("/") { path.removeLast() }
        let defaultPort = https ? ":443" : ":80"
        if authority.hasSuffix(defaultPort) { authority.removeLast(defaultPort.count) }
        return (https ? "https" : "http", authority, path)
    }

    /// Command-line values; nil means not given.
    public struct Overrides: Sendable {
        public var dataDir: String?
        public var host: String?
        public var port: Int?
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        public init(dataDir: String? = nil, host: String? = nil, port: Int? = nil,
                    tlsCertificateFile: String? = nil, tlsKeyFile: String? = nil) {
            self.dataDir = dataDir
            self.host = host
            self.port = port
            self.tlsCertificateFile = tlsCertificateFile
            self.tlsKeyFile = tlsKeyFile
        }
    }

    /// Loads and validates the configuration.
    public static func load(file: String?, environment: [String: String], overrides: Overrides = .init()) throws -> BerthConfiguration {
        var config = BerthConfiguration()
        if let file {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw ConfigurationError(problems: ["cannot read config file \(file)"])
            }
            do {
                config = try JSONDecoder().decode(BerthConfiguration.self, from: data)
            } catch {
                throw ConfigurationError(problems: ["config file \(file): \(error)"])
            }
        }
        var problems: [String] = []
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ name: String, _ apply: (Int) -> Void) {
            guard let v = env(name) else { return }
            if let i = Int(v) { apply(i) } else { problems.append("\(name) must be an integer, got \(v)") }
        }
        func bool(_ name: String, _ apply: (Bool) -> Void) {
            guard let v = env(name)?.lowercased() else { return }
            switch v {
            case "1", "true", "yes", "on": apply(true)
            case "0", "false", "no", "off": apply(false)
            default: problems.append("\(name) must be true or false, got \(v)")
            }
        }
        if let v = env("BERTH_DATA_DIR") { config.dataDir = v }
        if let v = env("BERTH_ACCOUNT_ID") { config.accountId = v }
        if let v = env("BERTH_REGION") { config.region = v }
        if let v = env("BERTH_REGIONS") {
            config.regions = v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = env("BERTH_ROOT_ACCESS_KEY_ID") { config.rootAccessKeyId = v }
        if let v = env("BERTH_ROOT_SECRET_ACCESS_KEY") { config.rootSecretAccessKey = v }
        if let v = env("BERTH_PUBLIC_ENDPOINT") { config.publicEndpoint = v }
        if let v = env("BERTH_REGISTRY_DOMAIN") { config.registryDomain = v }
        if let v = env("BERTH_SECRET_KEY_FILE") { config.secretKeyFile = v }
        if let v = env("BERTH_HOST") { config.host = v }
        int("BERTH_PORT") { config.port = $0 }
        bool("BERTH_CREATE_ON_PUSH") { config.createOnPush = $0 }
        if let v = env("BERTH_LOG_LEVEL") { config.logLevel = v }
        if let v = env("BERTH_LOG_FORMAT") { config.logFormat = v }
        int("BERTH_UPLOAD_TTL_SECONDS") { config.uploadTTLSeconds = $0 }
        int("BERTH_UPLOAD_PURGE_INTERVAL_SECONDS") { config.uploadPurgeIntervalSeconds = $0 }
        int("BERTH_UPLOAD_WRITER_TIMEOUT_SECONDS") { config.uploadWriterTimeoutSeconds = $0 }
        int("BERTH_LIFECYCLE_INTERVAL_SECONDS") { config.lifecycleIntervalSeconds = $0 }
        int("BERTH_SCAN_POLL_SECONDS") { config.scanPollSeconds = $0 }
        int("BERTH_PULL_TIME_FLUSH_SECONDS") { config.pullTimeFlushSeconds = $0 }
        if let v = env("BERTH_ARCHIVE_DIRECTORY") { config.archiveDirectory = v }
        bool("BERTH_ZERO_COPY_DOWNLOADS") { config.zeroCopyDownloads = $0 }
        int("BERTH_PULL_THROUGH_TAG_TTL_SECONDS") { config.pullThroughTagTTLSeconds = $0 }
        bool("BERTH_PULL_THROUGH_ALLOW_INSECURE_UPSTREAMS") { config.pullThroughAllowInsecureUpstreams = $0 }
        if let v = env("BERTH_LOOPBACK_CONGESTION_CONTROL") {
            // `system`: leave every connection to the system's algorithm (an empty variable means unset).
            config.loopbackCongestionControl = v == "system" ? []
                : v.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let v = env("BERTH_BLOB_WRITES") { config.blobWrites = v }
        bool("BERTH_ENCRYPT_BLOBS") { config.encryptBlobs = $0 }
        int("BERTH_BLOB_IO_THREADS") { config.blobIOThreads = $0 }
        int("BERTH_GC_INTERVAL_SECONDS") { config.gcIntervalSeconds = $0 }
        int("BERTH_GC_GRACE_SECONDS") { config.gcGraceSeconds = $0 }
        bool("BERTH_AUDIT_ENABLED") { config.auditEnabled = $0 }
        int("BERTH_AUDIT_RETENTION_DAYS") { config.auditRetentionDays = $0 }
        bool("BERTH_AUDIT_REGISTRY_READS") { config.auditRegistryReads = $0 }
        bool("BERTH_GALLERY_ENABLED") { config.galleryEnabled = $0 }
        int("BERTH_GALLERY_CACHE_SECONDS") { config.galleryCacheSeconds = $0 }
        if let v = env("BERTH_METADATA_BACKEND") { config.metadataBackend = v }
        if let v = env("BERTH_BLOB_BACKEND") { config.blobBackend = v }
        if let v = env("BERTH_POSTGRES_URL") { config.postgresURL = v }
        config.s3.apply(env: env, bool: bool)
        config.events.apply(env: env, problems: &problems)
        config.replication.apply(env: env, problems: &problems)
        if let v = env("BERTH_OIDC_JWKS_DIRECTORY") { config.oidcJwksDirectory = v }
        if let v = env("BERTH_AUTH_CACHE_SECONDS") {
            if let d = Double(v) { config.authCacheSeconds = d } else { problems.append("BERTH_AUTH_CACHE_SECONDS must be a number, got \(v)") }
        }
        if let v = overrides.dataDir { config.dataDir = v }
        if let v = overrides.host { config.host = v }
        if let v = overrides.port { config.port = v }
        if let v = env("BERTH_TLS_CERTIFICATE_FILE") { config.tlsCertificateFile = v }
        if let v = env("BERTH_TLS_KEY_FILE") { config.tlsKeyFile = v }
        if let v = overrides.tlsCertificateFile { config.tlsCertificateFile = v }
        if let v = overrides.tlsKeyFile { config.tlsKeyFile = v }
        problems += config.validate()
        if !problems.isEmpty { throw ConfigurationError(problems: problems) }
        return config
    }

    /// Every problem with the settings, empty when they are valid.
    public func validate() -> [String] {
        var p: [String] = []
        if dataDir.isEmpty { p.append("dataDir must not be empty") }
        if host.isEmpty { p.append("host must not be empty") }
        if accountId.utf8.count != 12 || !accountId.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            p.append("accountId must be 12 digits, got \(accountId)")
        }
        if region.isEmpty || !region.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }) {
            p.append("region must look like us-east-1, got \(region)")
        }
        if !(0...65535).contains(port) { p.append("port must be 0–65535, got \(port)") }
        if !RegionSet.isWellFormed(region) { p.append("region must be a region name such as us-east-1, got \(region)") }
        for r in regions where r != "*" && !RegionSet.isWellFormed(r) {
            p.append("regions must hold region names such as eu-central-1 (or \"*\" for any), got \(r)")
        }
        if !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            p.append("logLevel must be one of trace, debug, info, notice, warning, error, critical; got \(logLevel)")
        }
        if !["json", "text"].contains(logFormat) { p.append("logFormat must be json or text, got \(logFormat)") }
        if (rootAccessKeyId == nil) != (rootSecretAccessKey == nil) {
            p.append("rootAccessKeyId and rootSecretAccessKey must be given together")
        }
        if let id = rootAccessKeyId, !(16...128).contains(id.utf8.count) || !id.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) }) {
            p.append("rootAccessKeyId must be 16–128 upper-case letters and digits")
        }
        if let secret = rootSecretAccessKey, secret.utf8.count < 16 { p.append("rootSecretAccessKey must be at least 16 characters") }
        if let e = publicEndpoint, !(e.hasPrefix("http://") || e.hasPrefix("https://")) {
            p.append("publicEndpoint must start with http:// or https://, got \(e)")
        }
        if uploadTTLSeconds < 60 { p.append("uploadTTLSeconds must be at least 60") }
        if uploadPurgeIntervalSeconds < 1 { p.append("uploadPurgeIntervalSeconds must be at least 1") }
        if uploadWriterTimeoutSeconds < 10 { p.append("uploadWriterTimeoutSeconds must be at least 10") }
        if lifecycleIntervalSeconds < 0 { p.append("lifecycleIntervalSeconds must be 0 (off) or more") }
        if !(1...3_600).contains(scanPollSeconds) { p.append("scanPollSeconds must be between 1 and 3600") }
        if !(1...86_400).contains(pullTimeFlushSeconds) { p.append("pullTimeFlushSeconds must be between 1 and 86400") }
        if let d = archiveDirectory, d.isEmpty || d.contains("\u{0}") { p.append("archiveDirectory must be a directory path") }
        if archiveDirectory != nil && blobBackend == "s3" {
            p.append("archiveDirectory is the filesystem store's archive tier: with blobBackend s3 use s3ArchiveBucket and/or s3ArchivePrefix")
        }
        if !["sqlite", "postgres", "memory"].contains(metadataBackend) {
            p.append("metadataBackend must be sqlite, postgres or memory, got \(metadataBackend)")
        }
        if let url = postgresURL {
            do { _ = try PostgresConnectionSettings(url: url, environment: [:]) } catch { p.append("\(error)") }
        }
        if BlobWriteMode(rawValue: blobWrites) == nil { p.append("blobWrites must be buffered or direct, got \(blobWrites)") }
        if !(1...256).contains(blobIOThreads) { p.append("blobIOThreads must be between 1 and 256, got \(blobIOThreads)") }
        if !["filesystem", "s3", "memory"].contains(blobBackend) { p.append("blobBackend must be filesystem, s3 or memory, got \(blobBackend)") }
        p += s3.problems(blobBackend: blobBackend)
        p += events.problems()
        p += replication.problems()
        for name in loopbackCongestionControl where !LoopbackCongestionControl.isValidName(name) {
            p.append("loopbackCongestionControl entries must be 1–15 of a-z, 0-9 and _ (e.g. cubic), got \(name)")
        }
        if let d = oidcJwksDirectory, d.isEmpty || d.contains("\u{0}") { p.append("oidcJwksDirectory must be a directory path") }
        if !(0...300).contains(authCacheSeconds) { p.append("authCacheSeconds must be between 0 and 300, got \(authCacheSeconds)") }
        if gcIntervalSeconds < 0 { p.append("gcIntervalSeconds must be 0 (off) or more, got \(gcIntervalSeconds)") }
        if pullThroughTagTTLSeconds < 0 { p.append("pullThroughTagTTLSeconds must not be negative, got \(pullThroughTagTTLSeconds)") }
        if gcGraceSeconds < 2 { p.append("gcGraceSeconds must be at least 2, got \(gcGraceSeconds)") }
        if !(1...3_650).contains(auditRetentionDays) { p.append("auditRetentionDays must be between 1 and 3650, got \(auditRetentionDays)") }
        if !(0...60).contains(galleryCacheSeconds) { p.append("galleryCacheSeconds must be between 0 and 60, got \(galleryCacheSeconds)") }
        p += validateTLS()
        return p
    }

    enum CodingKeys: String, CodingKey {
        case dataDir, host, port, accountId, region, regions, rootAccessKeyId, rootSecretAccessKey, publicEndpoint, registryDomain,
             secretKeyFile, createOnPush, logLevel, logFormat, uploadTTLSeconds, uploadPurgeIntervalSeconds, uploadWriterTimeoutSeconds,
             lifecycleIntervalSeconds, scanPollSeconds, zeroCopyDownloads, loopbackCongestionControl, blobWrites, blobIOThreads, metadataBackend, blobBackend, postgresURL, oidcJwksDirectory,
             encryptBlobs, authCacheSeconds, pullTimeFlushSeconds, archiveDirectory, gcIntervalSeconds, gcGraceSeconds, tlsCertificateFile, tlsKeyFile,
             auditEnabled, auditRetentionDays, auditRegistryReads, pullThroughTagTTLSeconds, pullThroughAllowInsecureUpstreams, galleryEnabled,
             galleryCacheSeconds
    }

    /// Unknown keys in the file are an error, missing keys keep their defaults.
    public init(from decoder: any Decoder) throws {
        let known = Set(CodingKeys.allKeys + S3Settings.keys + EventSettings.keys + ReplicationConfigurationSettings.keys)
        let any = try decoder.container(keyedBy: AnyKey.self)
        for k in any.allKeys where !known.contains(k.stringValue) {
            throw DecodingError.dataCorruptedError(forKey: k, in: any, debugDescription: "unknown setting \(k.stringValue)")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = BerthConfiguration()
        dataDir = try c.decodeIfPresent(String.self, forKey: .dataDir) ?? d.dataDir
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? d.host
        port = try c.decodeIfPresent(Int.self, forKey: .port) ?? d.port
        accountId = try c.decodeIfPresent(String.self, forKey: .accountId) ?? d.accountId
        region = try c.decodeIfPresent(String.self, forKey: .region) ?? d.region
        regions = try c.decodeIfPresent([String].self, forKey: .regions) ?? d.regions
        rootAccessKeyId = try c.decodeIfPresent(String.self, forKey: .rootAccessKeyId)
        rootSecretAccessKey = try c.decodeIfPresent(String.self, forKey: .rootSecretAccessKey)
        publicEndpoint = try c.decodeIfPresent(String.self, forKey: .publicEndpoint)
        registryDomain = try c.decodeIfPresent(String.self, forKey: .registryDomain)
        secretKeyFile = try c.decodeIfPresent(String.self, forKey: .secretKeyFile)
        createOnPush = try c.decodeIfPresent(Bool.self, forKey: .createOnPush) ?? d.createOnPush
        logLevel = try c.decodeIfPresent(String.self, forKey: .logLevel) ?? d.logLevel
        logFormat = try c.decodeIfPresent(String.self, forKey: .logFormat) ?? d.logFormat
        uploadTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .uploadTTLSeconds) ?? d.uploadTTLSeconds
        uploadPurgeIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .uploadPurgeIntervalSeconds) ?? d.uploadPurgeIntervalSeconds
        uploadWriterTimeoutSeconds = try c.decodeIfPresent(Int.self, forKey: .uploadWriterTimeoutSeconds) ?? d.uploadWriterTimeoutSeconds
        lifecycleIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .lifecycleIntervalSeconds) ?? d.lifecycleIntervalSeconds
        scanPollSeconds = try c.decodeIfPresent(Int.self, forKey: .scanPollSeconds) ?? d.scanPollSeconds
        pullTimeFlushSeconds = try c.decodeIfPresent(Int.self, forKey: .pullTimeFlushSeconds) ?? d.pullTimeFlushSeconds
        archiveDirectory = try c.decodeIfPresent(String.self, forKey: .archiveDirectory)
        zeroCopyDownloads = try c.decodeIfPresent(Bool.self, forKey: .zeroCopyDownloads) ?? d.zeroCopyDownloads
        loopbackCongestionControl = try c.decodeIfPresent([String].self, forKey: .loopbackCongestionControl) ?? d.loopbackCongestionControl
        blobWrites = try c.decodeIfPresent(String.self, forKey: .blobWrites) ?? d.blobWrites
        encryptBlobs = try c.decodeIfPresent(Bool.self, forKey: .encryptBlobs) ?? d.encryptBlobs
        blobIOThreads = try c.decodeIfPresent(Int.self, forKey: .blobIOThreads) ?? d.blobIOThreads
        metadataBackend = try c.decodeIfPresent(String.self, forKey: .metadataBackend) ?? d.metadataBackend
        blobBackend = try c.decodeIfPresent(String.self, forKey: .blobBackend) ?? d.blobBackend
        postgresURL = try c.decodeIfPresent(String.self, forKey: .postgresURL)
        s3 = try S3Settings(from: decoder)
        events = try EventSettings(from: decoder)
        replication = try ReplicationConfigurationSettings(from: decoder)
        oidcJwksDirectory = try c.decodeIfPresent(String.self, forKey: .oidcJwksDirectory)
        authCacheSeconds = try c.decodeIfPresent(Double.self, forKey: .authCacheSeconds) ?? d.authCacheSeconds
        gcIntervalSeconds = try c.decodeIfPresent(Int.self, forKey: .gcIntervalSeconds) ?? d.gcIntervalSeconds
        gcGraceSeconds = try c.decodeIfPresent(Int.self, forKey: .gcGraceSeconds) ?? d.gcGraceSeconds
        tlsCertificateFile = try c.decodeIfPresent(String.self, forKey: .tlsCertificateFile)
        tlsKeyFile = try c.decodeIfPresent(String.self, forKey: .tlsKeyFile)
        auditEnabled = try c.decodeIfPresent(Bool.self, forKey: .auditEnabled) ?? d.auditEnabled
        auditRetentionDays = try c.decodeIfPresent(Int.self, forKey: .auditRetentionDays) ?? d.auditRetentionDays
        auditRegistryReads = try c.decodeIfPresent(Bool.self, forKey: .auditRegistryReads) ?? d.auditRegistryReads
        pullThroughTagTTLSeconds = try c.decodeIfPresent(Int.self, forKey: .pullThroughTagTTLSeconds) ?? d.pullThroughTagTTLSeconds
        pullThroughAllowInsecureUpstreams = try c.decodeIfPresent(Bool.self, forKey: .pullThroughAllowInsecureUpstreams)
            ?? d.pullThroughAllowInsecureUpstreams
        galleryEnabled = try c.decodeIfPresent(Bool.self, forKey: .galleryEnabled) ?? d.galleryEnabled
        galleryCacheSeconds = try c.decodeIfPresent(Int.self, forKey: .galleryCacheSeconds) ?? d.galleryCacheSeconds
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

extension BerthConfiguration.CodingKeys {
    static var allKeys: [String] {
        ["dataDir", "host", "port", "accountId", "region", "regions", "rootAccessKeyId", "rootSecretAccessKey", "publicEndpoint",
         "registryDomain", "secretKeyFile", "createOnPush", "logLevel", "logFormat", "uploadTTLSeconds",
         "uploadPurgeIntervalSeconds", "uploadWriterTimeoutSeconds", "lifecycleIntervalSeconds", "scanPollSeconds", "zeroCopyDownloads", "loopbackCongestionControl", "blobWrites", "blobIOThreads", "metadataBackend", "blobBackend", "postgresURL",
         "oidcJwksDirectory", "encryptBlobs", "authCacheSeconds", "pullTimeFlushSeconds", "archiveDirectory", "gcIntervalSeconds", "gcGraceSeconds", "tlsCertificateFile", "tlsKeyFile",
         "auditEnabled", "auditRetentionDays", "auditRegistryReads", "pullThroughTagTTLSeconds", "pullThroughAllowInsecureUpstreams", "galleryEnabled",
         "galleryCacheSeconds"]
    }
}

public struct ConfigurationError: Error, CustomStringConvertible {
    public let problems: [String]
    public var description: String { "invalid configuration:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") }
}
