import AsyncHTTPClient
import BerthCore
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// Settings of the pull through cache.
public struct PullThroughSettings: Sendable, Equatable {
    /// How long a cached tag is served before the upstream is asked again (ECR: 24 hours).
    public var tagTTL: Double
    /// Allow `http://` upstreams (loopback tests).
    public var allowInsecureUpstreams: Bool
    /// How long an upstream that was down or answered 429 is not asked again when cached content exists.
    public var backoff: Double
    /// How long after a manifest is first served the layers no client asked for are fetched.
    public var completionDelay: Double

    public init(tagTTL: Double = 86_400, allowInsecureUpstreams: Bool = false, backoff: Double = 30, completionDelay: Double = 5) {
        self.tagTTL = tagTTL
        self.allowInsecureUpstreams = allowInsecureUpstreams
        self.backoff = backoff
        self.completionDelay = completionDelay
    }
}

/// A manifest as the cache serves it.
public struct CachedManifest: Sendable, Equatable {
    public var digest: Digest
    public var mediaType: String
    public var bytes: [UInt8]
}

/// The pull through cache (ECR's pull through cache rules): the rules (stored), and the filling of
/// repositories `<ecrRepositoryPrefix>/<name>` from their upstream on pulls that miss.
///
/// - A manifest pulled by tag is taken from the upstream when Berth does not have the tag or its last
///   check is older than `tagTTL`; when the upstream is down, throttles (429) or fails, the cached
///   manifest is served and the upstream is left alone for `backoff` seconds.
/// - A manifest is stored once every blob (and, for an index, every child manifest) it references is
///   in the repository; until then it is served from memory. Blobs no client asked for are fetched
///   `completionDelay` seconds after the manifest was first served.
/// - A blob that is missing is streamed to the client while it is stored (digest verified before it is
///   committed); concurrent pulls of it wait for that one upstream fetch, then read the stored blob.
public final class PullThroughCache: Sendable {
    let store: any PullThroughMetadata
    let registry: Registry
    public let client: OCIUpstreamClient
    let settings: PullThroughSettings
    /// The credentials of a rule's `credentialArn` (Secrets Manager).
    public let credentials: @Sendable (String) async throws(PullThroughRuleError) -> UpstreamCredentials
    let clock: any WallClock
    let logger: Logger

    /// Rules per registry, read again after a second (and at once after this process changed them).
    let ruleCache = Mutex<[String: (rules: [PullThroughCacheRuleRecord], at: Double)]>([:])
    struct TagKey: Hashable, Sendable { var repository: RepositoryKey; var tag: String }
    /// When each cached tag was last checked against the upstream.
    let tagChecks = Mutex<[TagKey: Double]>([:])
    /// Upstreams (by authority) not to ask until the time given.
    let backoffs = Mutex<[String: Double]>([:])
    struct BlobKey: Hashable, Sendable { var repository: RepositoryKey; var digest: Digest }
    let blobFlights = Flights<BlobKey, Void>()
    struct ManifestKey: Hashable, Sendable { var repository: RepositoryKey; var reference: String }
    let manifestFlights = Flights<ManifestKey, CachedManifest?>()
    /// Manifests served but not stored yet, with what they still wait for.
    struct Pending: Sendable {
        var manifest: CachedManifest
        var tag: String?
        var blobs: Set<Digest>
        var manifests: Set<Digest>
    }
    let pending = Mutex<[RepositoryKey: [Digest: Pending]]>([:])
    /// Upstream requests made (manifests and blobs), for tests and metrics.
    public let upstreamRequests = Atomic<Int>(0)

    public init(store: any PullThroughMetadata, registry: Registry, settings: PullThroughSettings,
                credentials: @escaping @Sendable (String) async throws(PullThroughRuleError) -> UpstreamCredentials,
                client: OCIUpstreamClient? = nil, clock: any WallClock = SystemWallClock(),
                logger: Logger = Logger(label: "berth.pullthrough")) {
        self.store = store
        self.registry = registry
        self.settings = settings
        self.credentials = credentials
        self.client = client ?? OCIUpstreamClient(allowInsecure: settings.allowInsecureUpstreams, clock: clock, logger: logger)
        self.clock = clock
        self.logger = logger
    }

    // MARK: rules

    public func createRule(_ rule: PullThroughCacheRuleRecord) async throws -> PullThroughCacheRuleRecord {
        let result = try await store.createPullThroughCacheRule(rule, limit: PullThroughRules.maxRules)
        forgetRules(rule.registryID)
        switch result {
        case .created: return rule
        case .alreadyExists: throw PullThroughRuleError.alreadyExists(prefix: rule.ecrRepositoryPrefix, registry: RegistryID(storedValue: rule.registryID).account)
        case .limitExceeded: throw PullThroughRuleError.limitExceeded(PullThroughRules.maxRules)
        }
    }

    public func rules(of registryID: String) async throws -> [PullThroughCacheRuleRecord] {
        try await store.pullThroughCacheRules(of: registryID)
    }

    public func updateRule(registryID: String, prefix: String,
                           _ update: @escaping @Sendable (inout PullThroughCacheRuleRecord) throws -> Void) async throws -> PullThroughCacheRuleRecord {
        defer { forgetRules(registryID) }
        guard let rule = try await store.updatePullThroughCacheRule(registryID: registryID, prefix: prefix, update) else {
            throw PullThroughRuleError.notFound(prefix: prefix, registry: RegistryID(storedValue: registryID).account)
        }
        return rule
    }

    public func deleteRule(registryID: String, prefix: String) async throws -> PullThroughCacheRuleRecord {
        defer { forgetRules(registryID) }
        guard let rule = try await store.deletePullThroughCacheRule(registryID: registryID, prefix: prefix) else {
            throw PullThroughRuleError.notFound(prefix: prefix, registry: RegistryID(storedValue: registryID).account)
        }
        return rule
    }

    func forgetRules(_ registryID: String) { ruleCache.withLock { $0[registryID] = nil } }

    /// Checks a rule's credentials against its upstream (ValidatePullThroughCacheRule): nil when the
    /// upstream accepts them, else why not.
    public func validate(_ rule: PullThroughCacheRuleRecord) async -> String? {
        guard let endpoint = UpstreamEndpoint.parse(rule.upstreamRegistryURL) else { return "Invalid upstreamRegistryUrl" }
        var creds: UpstreamCredentials? = nil
        if let arn = rule.credentialARN {
            do { creds = try await credentials(arn) } catch { return "Unable to read the secret \(arn): \(error)" }
        }
        do {
            let response = try await client.get(endpoint, path: "/v2/", scope: "registry:catalog:*", credentials: creds)
            _ = try? await response.body.collect(upTo: 1 << 20)
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// The rule that covers a private repository, nil when none does.
    public func rule(for key: RepositoryKey) async throws -> PullThroughCacheRuleRecord? {
        let registry = RegistryID(storedValue: key.registryID)
        guard !registry.isPublic else { return nil }
        let now = clock.now()
        let rules: [PullThroughCacheRuleRecord]
        if let cached = ruleCache.withLock({ $0[key.registryID] }), now - cached.at < 1 {
            rules = cached.rules
        } else {
            rules = try await store.pullThroughCacheRules(of: key.registryID)
            ruleCache.withLock { $0[key.registryID] = (rules, now) }
        }
        guard !rules.isEmpty else { return nil }
        return PullThroughRules.rule(for: key.name, among: rules)
    }

    // MARK: upstream access

    struct Upstream: Sendable {
        var endpoint: UpstreamEndpoint
        var repository: String
        var credentials: UpstreamCredentials?
        var scope: String { "repository:\(repository):pull" }
    }

    func upstream(_ key: RepositoryKey, _ rule: PullThroughCacheRuleRecord) async throws -> Upstream {
        guard let endpoint = UpstreamEndpoint.parse(rule.upstreamRegistryURL),
              let repository = PullThroughRules.upstreamRepository(of: key.name, rule: rule)
        else { throw BerthError.nameUnknown(key.name) }
        var creds: UpstreamCredentials? = nil
        if let arn = rule.credentialARN {
            do { creds = try await credentials(arn) } catch {
                logger.warning("pull through cache credentials unusable", metadata: ["secret": "\(arn)", "error": "\(error)"])
                throw BerthError.unauthorized("the pull through cache rule's credentials are unusable")
            }
        }
        return Upstream(endpoint: endpoint, repository: repository, credentials: creds)
    }

    func isBackedOff(_ endpoint: UpstreamEndpoint) -> Bool {
        backoffs.withLock { ($0[endpoint.authority] ?? 0) > clock.now() }
    }

    func noteFailure(_ error: UpstreamError, _ endpoint: UpstreamEndpoint) {
        guard error.isUnavailable else { return }
        let until = clock.now() + settings.backoff
        backoffs.withLock { $0[endpoint.authority] = until }
        logger.warning("upstream unavailable, backing off", metadata: ["upstream": "\(endpoint.authority)", "error": "\(error)"])
    }

    /// The domain error a pull that could not be served from the upstream gets.
    func pullError(_ error: UpstreamError, missing: BerthError) -> BerthError {
        switch error {
        case .notFound: return missing
        case .throttled: return .tooManyRequests("the upstream registry is throttling requests; try again later")
        case .unauthorized(let m): return .denied("the upstream registry refused access: \(m)")
        default: return missing
        }
    }

    /// Creates the repository a pull fills when it does not exist, with the settings of the matching
    /// `PULL_THROUGH_CACHE` repository creation template (the defaults without one).
    func ensureRepository(_ key: RepositoryKey) async throws {
        if try await registry.findRepository(key) != nil { return }
        _ = try await registry.createRepositoryAutomatically(key, for: .pullThroughCache)
    }

    // MARK: manifests

    static let accept = [MediaType.ociIndex, MediaType.ociManifest, MediaType.dockerManifestList, MediaType.dockerManifest]

    /// A manifest pull of a repository under `rule`: nil when the stored manifest is to be served (it is
    /// there and fresh, or the upstream cannot be asked), else the manifest to serve (from the upstream,
    /// or from memory until its content is stored).
    public func manifest(_ key: RepositoryKey, _ reference: Reference, rule: PullThroughCacheRuleRecord,
                         authorizeImport: () async throws -> Void) async throws -> CachedManifest? {
        let now = clock.now()
        var localDigest: Digest? = nil
        switch reference {
        case .digest(let d):
            if try await hasManifest(key, d) { return nil }
            if let p = pending.withLock({ $0[key]?[d] }) { return p.manifest }
        case .tag(let t):
            localDigest = try await registry.findRepository(key) == nil ? nil : try? await registry.manifest(key, reference: reference).digest
            // Fetched from the upstream within the time to live: what it answered (stored, or pending).
            let checked = tagChecks.withLock { $0[TagKey(repository: key, tag: t.value)] }
            if let checked, now - checked < settings.tagTTL {
                if let p = pending.withLock({ $0[key]?.values.first(where: { $0.tag == t.value }) }) { return p.manifest }
                if localDigest != nil { return nil }
            }
        }
        // Asking the upstream is an import (ecr:BatchImportUpstreamImage); without it, what is cached is served.
        do { try await authorizeImport() } catch { if localDigest != nil { return nil } else { throw error } }
        let upstream = try await upstream(key, rule)
        if localDigest != nil, isBackedOff(upstream.endpoint) { return nil }
        let fetched: CachedManifest?
        do {
            fetched = try await manifestFlights.run(ManifestKey(repository: key, reference: reference.description)) {
                try await self.fetchManifest(key, reference, upstream)
            }
        } catch let e as UpstreamError {
            noteFailure(e, upstream.endpoint)
            if localDigest != nil { return nil }
            throw pullError(e, missing: .manifestUnknown(reference.description))
        }
        guard let fetched else { return nil }
        if case .tag(let t) = reference { tagChecks.withLock { $0[TagKey(repository: key, tag: t.value)] = clock.now() } }
        if fetched.digest == localDigest { return nil }
        return fetched
    }

    func hasManifest(_ key: RepositoryKey, _ digest: Digest) async throws -> Bool {
        guard try await registry.findRepository(key) != nil else { return false }
        do {
            _ = try await registry.manifest(key, reference: .digest(digest))
            return true
        } catch BerthError.manifestUnknown {
            return false
        }
    }

    /// GET of the manifest upstream; it is kept as pending and stored as soon as its content is here.
    func fetchManifest(_ key: RepositoryKey, _ reference: Reference, _ upstream: Upstream) async throws -> CachedManifest? {
        upstreamRequests.add(1, ordering: .relaxed)
        let response = try await client.get(upstream.endpoint, path: "/v2/\(upstream.repository)/manifests/\(reference)",
                                            accept: Self.accept, scope: upstream.scope, credentials: upstream.credentials)
        let limit = ManifestParser.maxSize
        if let length = response.headers.first(name: "Content-Length").flatMap(Int.init), length > limit {
            throw UpstreamError.invalid("manifest larger than \(limit) bytes")
        }
        let body: ByteBuffer
        do { body = try await response.body.collect(upTo: limit) } catch { throw UpstreamError.unreachable("\(error)") }
        let bytes = Array(body.readableBytesView)
        let contentType = response.headers.first(name: "Content-Type")
        var digest = Digest.sha256(of: bytes)
        if case .digest(let d) = reference {
            if d.algorithm != .sha256 {
                var h = DigestHasher(d.algorithm)
                h.update(data: bytes)
                digest = h.finalize()
            }
            guard d == digest else { throw UpstreamError.invalid("manifest digest \(digest) is not the \(d) asked for") }
        }
        let parsed: ParsedManifest
        do { parsed = try ManifestParser.parse(bytes, contentType: contentType) } catch {
            throw UpstreamError.invalid("manifest refused: \(error)")
        }
        let manifest = CachedManifest(digest: digest, mediaType: parsed.mediaType, bytes: bytes)
        if case .tag = reference, let local = try? await registry.manifest(key, reference: reference), local.digest == digest {
            return manifest
        }
        try await ensureRepository(key)
        var tag: String? = nil
        if case .tag(let t) = reference { tag = t.value }
        var missingBlobs: Set<Digest> = []
        for b in parsed.requiredBlobs where try await registry.linkedBlobSize(b, in: key) == nil { missingBlobs.insert(b) }
        var missingManifests: Set<Digest> = []
        for m in parsed.requiredManifests where try await !hasManifest(key, m) { missingManifests.insert(m) }
        pending.withLock { p in
            // A tag names one manifest: an older pending one loses it.
            if let tag { for d in (p[key] ?? [:]).keys where p[key]?[d]?.tag == tag { p[key]?[d]?.tag = nil } }
            p[key, default: [:]][digest] = Pending(manifest: manifest, tag: tag ?? p[key]?[digest]?.tag,
                                                   blobs: missingBlobs, manifests: missingManifests)
        }
        await storeCompleted(key)
        if !missingBlobs.isEmpty || !missingManifests.isEmpty {
            scheduleCompletion(key, upstream: upstream, blobs: missingBlobs, manifests: missingManifests)
        }
        return manifest
    }

    /// Stores every pending manifest of the repository that waits for nothing any more.
    func storeCompleted(_ key: RepositoryKey, blob: Digest? = nil, manifest stored: Digest? = nil) async {
        var ready: [Pending] = pending.withLock { p in
            guard var forRepo = p[key] else { return [] }
            for d in forRepo.keys {
                if let blob { forRepo[d]?.blobs.remove(blob) }
                if let stored { forRepo[d]?.manifests.remove(stored) }
            }
            let ready = forRepo.values.filter { $0.blobs.isEmpty && $0.manifests.isEmpty }
            for r in ready { forRepo[r.manifest.digest] = nil }
            p[key] = forRepo.isEmpty ? nil : forRepo
            return ready
        }
        // Children before the indexes that list them.
        ready.sort { !MediaType.isIndex($0.manifest.mediaType) && MediaType.isIndex($1.manifest.mediaType) }
        for r in ready {
            do {
                let reference: Reference = try r.tag.map { .tag(try Tag($0)) } ?? .digest(r.manifest.digest)
                _ = try await registry.putManifest(key, reference: reference, contentType: r.manifest.mediaType, bytes: r.manifest.bytes)
                if let t = r.tag { tagChecks.withLock { $0[TagKey(repository: key, tag: t)] = clock.now() } }
                await storeCompleted(key, manifest: r.manifest.digest)
            } catch {
                logger.warning("caching a manifest failed", metadata: ["repository": "\(key.name)", "digest": "\(r.manifest.digest)",
                                                                      "error": "\(error)"])
            }
        }
    }

    /// Fetches, after `completionDelay`, the blobs of a manifest no client has asked for meanwhile.
    func scheduleCompletion(_ key: RepositoryKey, upstream: Upstream, blobs: Set<Digest>, manifests: Set<Digest> = []) {
        let delay = settings.completionDelay
        Task { [self] in
            try? await Task.sleep(for: .seconds(delay))
            // An index is stored once all its manifests are: those no client pulled are fetched too.
            for digest in manifests.sorted(by: { $0.description < $1.description }) {
                do {
                    if pending.withLock({ $0[key]?[digest] != nil }) { continue }
                    if try await hasManifest(key, digest) { continue }
                    _ = try await manifestFlights.run(ManifestKey(repository: key, reference: digest.description)) {
                        try await self.fetchManifest(key, .digest(digest), upstream)
                    }
                } catch {
                    logger.info("completing a cached index failed", metadata: ["repository": "\(key.name)", "digest": "\(digest)",
                                                                               "error": "\(error)"])
                }
            }
            for digest in blobs.sorted(by: { $0.description < $1.description }) {
                do {
                    if try await registry.linkedBlobSize(digest, in: key) != nil { continue }
                    if let stream = try await blob(key, digest, upstream: upstream) {
                        try await stream.run { _ in }
                    }
                } catch {
                    logger.info("completing a cached image failed", metadata: ["repository": "\(key.name)", "digest": "\(digest)",
                                                                               "error": "\(error)"])
                }
            }
        }
    }

    // MARK: blobs

    /// A blob pull of a repository under `rule`: nil when the stored blob is to be served (it is there,
    /// or another request just fetched it), else the upstream stream to serve while it is stored.
    public func blob(_ key: RepositoryKey, _ digest: Digest, rule: PullThroughCacheRuleRecord,
                     authorizeImport: () async throws -> Void) async throws -> UpstreamBlob? {
        if try await registry.linkedBlobSize(digest, in: key) != nil { return nil }
        try await authorizeImport()
        return try await blob(key, digest, upstream: try await upstream(key, rule))
    }

    func blob(_ key: RepositoryKey, _ digest: Digest, upstream: Upstream) async throws -> UpstreamBlob? {
        let flightKey = BlobKey(repository: key, digest: digest)
        for _ in 0..<2 {
            let (flight, leader) = blobFlights.join(flightKey)
            if !leader {
                // Another request is fetching it: serve the stored blob once it is in.
                if case .success = await flight.wait(), try await registry.linkedBlobSize(digest, in: key) != nil { return nil }
                continue
            }
            do {
                if try await registry.linkedBlobSize(digest, in: key) != nil {
                    blobFlights.finish(flightKey, flight, .success(()))
                    return nil
                }
                try await ensureRepository(key)
                upstreamRequests.add(1, ordering: .relaxed)
                let response = try await client.get(upstream.endpoint, path: "/v2/\(upstream.repository)/blobs/\(digest)",
                                                    scope: upstream.scope, credentials: upstream.credentials)
                let size = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
                return UpstreamBlob(cache: self, key: key, digest: digest, size: size, response: response,
                                    finish: { [blobFlights] result in blobFlights.finish(flightKey, flight, result) })
            } catch {
                blobFlights.finish(flightKey, flight, .failure(error))
                if let e = error as? UpstreamError {
                    noteFailure(e, upstream.endpoint)
                    throw pullError(e, missing: .blobUnknown(digest.description))
                }
                throw error
            }
        }
        throw BerthError.blobUnknown(digest.description)
    }

    func blobStored(_ key: RepositoryKey, _ digest: Digest) async {
        await storeCompleted(key, blob: digest)
    }
}

/// A blob coming from the upstream: ``run(_:)`` streams it to a consumer (the client) while it is
/// stored. If it is dropped without being run, its flight ends as failed, so no request waits forever.
public final class UpstreamBlob: Sendable {
    /// How far the upstream may be read ahead of the store (bytes handed over, not yet taken).
    static let storeLag = 16 << 20
    let cache: PullThroughCache
    let key: RepositoryKey
    public let digest: Digest
    /// The upstream's Content-Length, when it sent one.
    public let size: Int64?
    let response: HTTPClientResponse
    let finish: @Sendable (Result<Void, any Error>) -> Void
    let settled = Atomic<Bool>(false)

    init(cache: PullThroughCache, key: RepositoryKey, digest: Digest, size: Int64?, response: HTTPClientResponse,
         finish: @escaping @Sendable (Result<Void, any Error>) -> Void) {
        self.cache = cache
        self.key = key
        self.digest = digest
        self.size = size
        self.response = response
        self.finish = finish
    }

    deinit {
        if !settled.load(ordering: .relaxed) { finish(.failure(BerthError.blobUnknown(digest.description))) }
    }

    func settle(_ result: Result<Void, any Error>) {
        if !settled.exchange(true, ordering: .relaxed) { finish(result) }
    }

    /// Streams the blob to `consumer` while the registry stores it (digest and size verified before it is
    /// committed). A consumer that fails (the client went away) stops getting bytes, but the blob is
    /// still fetched and stored for the requests waiting on it.
    public func run(_ consumer: (ByteBuffer) async throws -> Void) async throws {
        // Back-pressure from the store: the upstream is read no further than `Self.storeLag` bytes ahead of
        // what the store has taken (unbounded, a store slower than the upstream and the client would make the
        // difference pile up in memory); a store that failed is handed nothing more.
        var feed = BoundedFeed(limit: Self.storeLag)
        let (body, ended) = (feed.chunks, feed.consumerEnded)
        let registry = cache.registry
        let key = self.key
        let digest = self.digest
        let size = self.size
        let upload = Task {
            defer { ended() }
            try await registry.monolithicUpload(key, digest: digest, contentLength: size, body: body)
        }
        var clientGone = false
        do {
            for try await chunk in response.body {
                await feed.send(chunk)
                if !clientGone {
                    do { try await consumer(chunk) } catch { clientGone = true }
                }
            }
            feed.finish()
        } catch {
            feed.finish(throwing: error)
            _ = await upload.result
            settle(.failure(error))
            throw error
        }
        do {
            try await upload.value
        } catch {
            settle(.failure(error))
            throw error
        }
        settle(.success(()))
        await cache.blobStored(key, digest)
    }
}
