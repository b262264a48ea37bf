import BerthCore
import BerthStorage
import BerthSupport
import Foundation
import Logging
import NIOCore
import Synchronization

/// Settings of the registry domain service.
public struct RegistrySettings: Sendable, Equatable {
    /// A push to a missing repository creates it; false: only when a `CREATE_ON_PUSH` repository creation
    /// template covers its name (ECR's behaviour). See `createRepositoryAutomatically`.
    public var createOnPush: Bool
    /// Uploads untouched this long are purged.
    public var uploadTTL: Double
    /// Size of the buffers streamed to storage.
    public var writeBufferSize: Int
    /// How long this process answers a blob `HEAD` from memory. The garbage collector's grace period
    /// must be longer (see docs/gc.md): a collector in another process cannot empty this cache.
    public var blobLinkCacheSeconds: Double
    /// Send blob downloads to the blob store's presigned URLs when it makes them (S3, `s3Redirect`) and the
    /// blob is stored as pushed; sealed blobs are always decrypted here.
    public var redirectDownloads: Bool
    /// How long a request's claim on an upload (`UploadMetadata.claimUpload`) holds without being renewed,
    /// before another request may take the upload over. A live writer renews it every fifth of this and
    /// stops after half of it without a renewal (`UploadClaimHeartbeat`, docs/s3.md).
    public var uploadWriterTimeout: Double
    /// Whether other processes write the same metadata (PostgreSQL: several nodes). Then chunks take the
    /// cross-node claim on their upload, and manifests are read from the store on every request rather than
    /// from this process's `ManifestCache`, so a manifest deleted or archived through one node is gone on the
    /// next request to any other (a change notification arrives some time after the writer's answer). On
    /// one process (SQLite) the in-process guard already admits one writer per upload, and a claim left by a
    /// process killed mid-chunk would refuse the resumed upload after a restart until `uploadWriterTimeout`
    /// passed; there a request checks in its turn that the offset it read has not moved (`checkUnmoved`).
    public var sharedMetadata: Bool
    /// How long a redirect URL is valid (Distribution's: 20 minutes).
    public static let redirectValiditySeconds = 1200

    public init(createOnPush: Bool = true, uploadTTL: Double = 24 * 3600, writeBufferSize: Int = 4 << 20,
                blobLinkCacheSeconds: Double = 60, redirectDownloads: Bool = false, uploadWriterTimeout: Double = 30,
                sharedMetadata: Bool = true) {
        self.uploadWriterTimeout = uploadWriterTimeout
        self.sharedMetadata = sharedMetadata
        self.redirectDownloads = redirectDownloads
        self.createOnPush = createOnPush
        self.uploadTTL = uploadTTL
        self.writeBufferSize = writeBufferSize
        self.blobLinkCacheSeconds = blobLinkCacheSeconds
    }
}

/// The outcome of starting an upload: either a blob mounted from elsewhere or a new session.
public enum UploadStart: Sendable, Equatable {
    case mounted(Digest)
    case session(UploadSession)
}

/// The registry domain service: push, pull, tags, referrers, deletes. Both front doors call it.
public final class Registry: Sendable {
    /// The stores are the domain's own: doors, the scanner and the CLI call `Registry`'s operations.
    let blobs: any BlobStore
    let metadata: any MetadataStore
    /// Envelope encryption of blobs over `blobs` (docs/encryption.md); nil: blobs are stored as pushed.
    let sealer: BlobSealer?
    public let settings: RegistrySettings
    public let events: RegistryEventBus
    /// Makes the EventBridge-shaped events written to the metadata store's outbox with each change
    /// (docs/events.md); nil: no event is written (no delivery target is configured).
    let eventSource: ECREventSource?
    public let clock: any WallClock
    let logger: Logger
    let manifestCache: ManifestCache
    let blobLinks: BlobLinkCache
    let conversions = ConversionAliases()
    /// Repository records (and absences) by key, for the several lookups a push makes (authorization,
    /// `repositoryForPush`, the manifest put). An entry is used only while the store's
    /// `authorizationGeneration` — which every repository creation, deletion and settings write advances
    /// — is the one it was read at, so this process's writes take effect at once; the age limit bounds
    /// what another process could change (`berth admin` writes no repository; several nodes are #14's).
    let repositories: BoundedCache<RepositoryKey, RepositoryRecord?>

    /// Pulls not yet written to the database, and the principals whose pulls do not count (Registry+Pulls.swift).
    let pulls = PullRecorder()

    /// Incremental hash state of uploads this process is writing, so chunks are hashed only once.
    private let hashers = Mutex<[String: UploadHashState]>([:])

    struct UploadHashState {
        var hasher: DigestHasher
        var offset: Int64
        var busy: Bool
    }

    /// - Parameters:
    ///   - keyring: wraps blob data keys (docs/encryption.md); without one, blobs are stored as pushed.
    ///   - encryptBlobs: seal the blobs of `AES256` repositories too (KMS repositories' always are).
    public init(blobs: any BlobStore, metadata: any MetadataStore, settings: RegistrySettings = .init(),
                events: RegistryEventBus = .init(), clock: any WallClock = SystemWallClock(),
                logger: Logger = Logger(label: "berth.registry"), keyring: (any BlobKeyring)? = nil, encryptBlobs: Bool = true,
                eventSource: ECREventSource? = nil) {
        self.eventSource = eventSource
        self.blobs = blobs
        self.metadata = metadata
        self.sealer = keyring.map { BlobSealer(inner: blobs, keyring: $0, sealsAES256: encryptBlobs, clock: clock) }
        self.settings = settings
        self.events = events
        self.clock = clock
        self.logger = logger
        self.manifestCache = ManifestCache(clock: clock)
        self.blobLinks = BlobLinkCache(timeToLive: settings.blobLinkCacheSeconds, clock: clock)
        self.repositories = BoundedCache(capacity: 10_000, timeToLive: 1.0, clock: clock)
        // Other nodes on the same metadata tell of their changes (PostgreSQL): the caches forget what they
        // made stale. (Authorization changes advance the store's generation, which `repositories` checks.)
        if let feed = metadata as? any StoreChangeFeed {
            let (manifests, links, bus) = (manifestCache, blobLinks, events)
            feed.observeRemoteChanges { change in
                switch change {
                case .authorization: break
                case .events: bus.publish(.outboxWrittenElsewhere)
                case .repository(let key):
                    manifests.removeRepository(key)
                    links.removeRepository(key)
                case .blobs(let digests): links.removeDigests(Set(digests))
                case .everything:
                    manifests.removeAll()
                    links.removeAll()
                }
            }
        }
    }

    /// The repository `key`, or nil when it does not exist; through `repositories`.
    func storedRepository(_ key: RepositoryKey) async throws -> RepositoryRecord? {
        // Read the generation before the store: a write landing during the read leaves the entry stale.
        let generation = metadata.authorizationGeneration.current
        if let hit = repositories.value(forKey: key, generation: generation) { return hit }
        let record = try await metadata.repository(key)
        repositories.set(record, forKey: key, generation: generation)
        return record
    }

    /// A registry on in-memory stores (tests, ephemeral registries): nothing outlives the process.
    public static func inMemory(settings: RegistrySettings = .init(), clock: any WallClock = SystemWallClock()) -> Registry {
        Registry(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore(), settings: settings, clock: clock)
    }

    // MARK: repositories

    /// Makes sure a repository exists for a push, creating it (`createRepositoryAutomatically` for
    /// `.createOnPush`) when `createOnPush` or a repository creation template allows.
    public func repositoryForPush(_ name: RepositoryKey) async throws {
        if try await storedRepository(name) != nil { return }
        _ = try await createRepositoryAutomatically(name, for: .createOnPush)
    }

    func requireRepository(_ name: RepositoryKey) async throws {
        guard try await storedRepository(name) != nil else { throw BerthError.nameUnknown(name.name) }
    }

    /// The names of one registry's repositories.
    public func catalog(_ registryID: String, _ page: PageRequest) async throws -> Page<String> {
        guard page.limit > 0 else { return Page(items: [], next: nil) }
        let rows = try await metadata.listRepositories(in: registryID, after: page.last, limit: page.limit)
        return Page.from(rows: rows, limit: page.limit) { $0 }
    }

    /// A page of the catalog with each repository's record, in one store read.
    public func catalogRecords(_ registryID: String, _ page: PageRequest) async throws -> Page<RepositoryRecord> {
        guard page.limit > 0 else { return Page(items: [], next: nil) }
        let rows = try await metadata.repositoryRecords(in: registryID, after: page.last, limit: page.limit)
        return Page.from(rows: rows, limit: page.limit) { $0.key.name }
    }

    public func tags(_ name: RepositoryKey, _ page: PageRequest) async throws -> Page<String> {
        try await requireRepository(name)
        guard page.limit > 0 else { return Page(items: [], next: nil) }
        let rows = try await metadata.listTags(in: name, after: page.last, limit: page.limit)
        return Page.from(rows: rows, limit: page.limit) { $0 }
    }

    // MARK: blobs

    /// The size of a blob in a repository, for a pull (`HEAD`/`GET` on `/v2/`); `blobUnknown` (or
    /// `nameUnknown`) otherwise — also when only archived images use it (ECR: a pull of an archived image
    /// is a 404 until it is restored).
    public func blobSize(_ name: RepositoryKey, _ digest: Digest) async throws -> Int64 {
        if let blob = try await linkedBlob(digest, in: name) {
            guard !blob.archivedOnly else { throw BerthError.blobUnknown(digest.description) }
            return blob.size
        }
        try await requireRepository(name)
        throw BerthError.blobUnknown(digest.description)
    }

    /// A blob of a repository, opened for reading: its plaintext size, and its data key unwrapped when it
    /// is sealed — so a disabled key or a damaged header fails here, before a response starts.
    public struct BlobSource: Sendable {
        public let digest: Digest
        public let size: Int64
        let opened: BlobSealer.OpenedBlob
        /// The repository it was opened through (whose key domain reads it).
        let repository: RepositoryKey
        /// The blob's file on the local filesystem when its bytes are the plaintext (for `sendfile`); nil otherwise.
        public let localFilePath: String?
        /// Where to send the client instead (`redirectDownloads`, a blob stored as pushed); nil otherwise.
        public var redirectURL: String? = nil
    }

    /// Opens a blob linked to a repository (`blobUnknown` otherwise) for `readBlob`.
    public func openBlob(_ name: RepositoryKey, _ digest: Digest) async throws -> BlobSource {
        try await openBlob(name, digest, size: try await blobSize(name, digest))
    }

    /// Opens a blob whose size `blobSize` just gave.
    public func openBlob(_ name: RepositoryKey, _ digest: Digest, size: Int64) async throws -> BlobSource {
        guard let sealer else { return try plainSource(name, digest, size: size, opened: .plain) }
        let opened = try await sealing { try await sealer.open(digest, size: size, in: try await keyDomain(name)) }
        if case .plain = opened { return try plainSource(name, digest, size: size, opened: opened) }
        return BlobSource(digest: digest, size: size, opened: opened, repository: name, localFilePath: nil)
    }

    func plainSource(_ name: RepositoryKey, _ digest: Digest, size: Int64, opened: BlobSealer.OpenedBlob) throws -> BlobSource {
        var source = BlobSource(digest: digest, size: size, opened: opened, repository: name, localFilePath: blobs.localFilePath(of: digest))
        if settings.redirectDownloads {
            source.redirectURL = try blobs.presignedDownloadURL(of: digest, expiresIn: RegistrySettings.redirectValiditySeconds,
                                                                now: clock.now())
        }
        return source
    }

    /// Streams an opened blob's plaintext (or one inclusive range of it). A sealed blob whose bytes were
    /// changed on disk fails with `internalError` at the first damaged segment: never wrong bytes.
    public func readBlob(_ source: BlobSource, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard let sealer else { return try await blobs.read(source.digest, range: range, into: consumer) }
        if case .plain = source.opened {
            do {
                return try await blobs.read(source.digest, range: range, storedSize: source.size, into: consumer)
            } catch is BlobSizeChanged {
                // Opened (and cached) as plaintext, but sealed since — by `berth admin encrypt-existing`, perhaps in
                // another process: open it again rather than send its ciphertext as the blob.
                sealer.forgetOpened(source.digest)
                let fresh = try await openBlob(source.repository, source.digest, size: source.size)
                guard case .sealed = fresh.opened else { throw BerthError.internalError("blob \(source.digest) changed size on disk") }
                return try await readBlob(fresh, range: range, into: consumer)
            }
        }
        try await sealing {
            try await sealer.read(source.digest, size: source.size, opened: source.opened, range: range, into: consumer)
        }
    }

    /// Streams a blob's stored bytes by digest alone, for registries without encryption (tests, tools);
    /// with a keyring a blob is read only through a repository (`openBlob`), whose key opens it.
    public func readBlob(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard sealer == nil else { throw BerthError.unsupported("blobs of an encrypting registry are read through a repository") }
        try await blobs.read(digest, range: range, into: consumer)
    }

    /// Streams a blob of a repository: `openBlob` then `readBlob`.
    public func readBlob(_ name: RepositoryKey, _ digest: Digest, range: ByteRange?,
                         into consumer: (ByteBuffer) async throws -> Void) async throws {
        try await readBlob(try await openBlob(name, digest), range: range, into: consumer)
    }

    /// The key domain of a repository's blobs (its encryption configuration).
    func keyDomain(_ name: RepositoryKey) async throws -> BlobKeyDomain {
        guard let record = try await storedRepository(name) else { throw BerthError.nameUnknown(name.name) }
        return keyDomain(of: record)
    }

    func keyDomain(of record: RepositoryRecord) -> BlobKeyDomain {
        let registry = RegistryID(storedValue: record.key.registryID)
        return BlobKeyDomain(account: registry.account, region: registry.region,
                             encryptionType: record.settings.encryptionType, kmsKey: record.settings.kmsKey)
    }

    /// Runs a sealed-blob operation, turning format failures into domain errors (logged: they mean the
    /// stored bytes were changed).
    /// Runs `body` holding the lease that orders sealed writes of `digest` (commits, and `encrypt-existing`
    /// rewriting a stored copy) across every process sharing the metadata. Leases are striped by the
    /// digest's first two hex digits (256 names), so unrelated blobs rarely wait and no lease name is
    /// made per blob.
    func withBlobCommitLease<T: Sendable>(_ digest: Digest, _ body: @Sendable () async throws -> T) async throws -> T {
        try await metadata.waitForLease("blob-commit-\(digest.encoded.prefix(2))", poll: .milliseconds(5), body)
    }

    func sealing<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as SealedBlobError {
            logger.error("encrypted blob unreadable", metadata: ["error": "\(e)"])
            throw BerthError.internalError(e.description)
        }
    }

    /// The size of a blob linked to a repository, or nil (also when the repository does not exist).
    public func linkedBlobSize(_ digest: Digest, in name: RepositoryKey) async throws -> Int64? {
        try await linkedBlob(digest, in: name)?.size
    }

    /// A blob linked to a repository, through the cache, which holds only blobs an ACTIVE image (or no
    /// image yet) uses: an archived-only blob is looked up each time, so a restore shows at once.
    func linkedBlob(_ digest: Digest, in name: RepositoryKey) async throws -> (size: Int64, archivedOnly: Bool)? {
        if let size = blobLinks.get(name, digest) { return (size, false) }
        let generation = blobLinks.generation
        guard let blob = try await metadata.linkedBlob(digest, in: name) else { return nil }
        // A blob no manifest references is a collection candidate: an answer saying it is here may be
        // followed by a manifest put, so the mark is cleared first (a write, for unreferenced blobs only),
        // or the blob is reported absent if the collector got there first (docs/gc.md).
        if blob.isCandidate, try await !metadata.touchBlob(digest) { return nil }
        if !blob.archivedOnly { blobLinks.put(name, digest, size: blob.size, ifGeneration: generation) }
        return (blob.size, blob.archivedOnly)
    }

    public func deleteBlob(_ name: RepositoryKey, _ digest: Digest) async throws {
        blobLinks.remove(name, digest)
        defer { blobLinks.remove(name, digest) }
        guard try await metadata.unlinkBlob(digest, from: name) else {
            try await requireRepository(name)
            throw BerthError.blobUnknown(digest.description)
        }
        events.publish(.blobUnlinked(repository: name, digest: digest))
    }

    /// Whether the caller may read blobs of a repository: the door's answer, the very decision a blob
    /// GET in that repository makes (IAM, repository and registry policies). A denial is `false`.
    public typealias PullPermission = @Sendable (RepositoryKey) async throws -> Bool

    /// How many repositories an automatic mount (no `from`) considers as its source.
    public static let maxMountCandidates = 16

    /// POST /blobs/uploads/ (and ECR InitiateLayerUpload): a new, empty upload session.
    public func startUpload(_ name: RepositoryKey) async throws -> UploadSession {
        try await repositoryForPush(name)
        return try await newSession(name)
    }

    private func newSession(_ name: RepositoryKey) async throws -> UploadSession {
        let now = clock.now()
        let session = UploadSession(id: UploadID.generate(), repository: name, offset: 0,
                                    startedAt: now, updatedAt: now)
        try await metadata.createUpload(session)
        return session
    }

    /// POST /blobs/uploads/?mount=<digest>[&from=<repository>]: links the blob when a source repository
    /// of the same registry holds it and the caller may pull it from there (`mayPull`); with `from` that
    /// repository is the only candidate, without it up to `maxMountCandidates` repositories holding the
    /// blob are. Knowing a digest is never enough. When the account's `BLOB_MOUNTING` setting is
    /// `DISABLED`, or no source qualifies, a normal upload session is opened and nothing is linked.
    public func startUpload(_ name: RepositoryKey, mount: Digest?, from: RepositoryKey?,
                            mayPull: PullPermission) async throws -> UploadStart {
        try await repositoryForPush(name)
        if let mount, let source = try await mountSource(of: mount, into: name, from: from, mayPull: mayPull),
           try await metadata.linkBlob(mount, to: name, at: clock.now()) {
            events.publish(.blobMounted(repository: name, from: source, digest: mount))
            return .mounted(mount)
        }
        return .session(try await newSession(name))
    }

    /// Whether the account lets blobs be mounted across its repositories (`BLOB_MOUNTING`).
    public func blobMountingEnabled(_ registryID: String) async throws -> Bool {
        // A private registry's own setting (each account × region has its own); a public registry follows
        // its account's home-region private registry.
        let registry = RegistryID(storedValue: registryID)
        return try await accountSetting(.blobMounting, of: registry.isPublic ? RegistryID.private(registry.account).storedValue : registryID)
            != BlobMounting.disabled
    }

    /// The repository a mount may take `digest` from, or nil: one in the same registry as `name`
    /// that has the blob linked and that the caller may pull from.
    func mountSource(of digest: Digest, into name: RepositoryKey, from: RepositoryKey?,
                     mayPull: PullPermission) async throws -> RepositoryKey? {
        guard try await blobMountingEnabled(name.registryID) else { return nil }
        let candidates: [RepositoryKey]
        if let from {
            // Another registry (another account, or public and private) is never a source.
            guard from.registryID == name.registryID,
                  try await metadata.linkedBlobSize(digest, in: from) != nil else { return nil }
            candidates = [from]
        } else {
            candidates = try await metadata.repositoriesLinking(digest, in: name.registryID, limit: Self.maxMountCandidates)
        }
        for candidate in candidates {
            // ECR's rule: a mount needs the same encryption configuration (docs/encryption.md, key domains).
            guard try await sameKeyDomain(candidate, name) else { continue }
            if try await mayPull(candidate) { return candidate }
        }
        return nil
    }

    /// Whether two repositories' blobs are kept under the same key (the same encryption type and key).
    func sameKeyDomain(_ a: RepositoryKey, _ b: RepositoryKey) async throws -> Bool {
        guard let ra = try await storedRepository(a), let rb = try await storedRepository(b) else { return false }
        let da = keyDomain(of: ra)
        let db = keyDomain(of: rb)
        if da == db { return true }
        guard let sealer, da.account == db.account, da.encryptionType == db.encryptionType, !da.isAES256 else { return false }
        // The same key may be named by an alias in one configuration and by its ARN in the other.
        return try await sealer.domain(da) == sealer.domain(db)
    }

    /// POST /blobs/uploads/?digest=: the whole blob in one request.
    public func monolithicUpload<Body: AsyncSequence>(
        _ name: RepositoryKey, digest: Digest, contentLength: Int64?, body: Body
    ) async throws where Body.Element == ByteBuffer {
        try await repositoryForPush(name)
        if let direct = directBlobWrites {
            _ = try await writeDirect(body, to: direct, digest: digest, expectedLength: contentLength, repository: name, session: nil)
            return
        }
        let id = "mono-" + UUID().uuidString.lowercased()
        do {
            var hasher = DigestHasher(digest.algorithm)
            let writer = try await openUploadWriter(id, at: 0, repository: name)
            let written: Int64
            do {
                written = try await stream(body, to: writer, hasher: &hasher, sizeHint: contentLength)
                try await writer.close()
            } catch {
                try? await writer.close()
                throw error
            }
            if let contentLength, contentLength != written {
                throw BerthError.sizeInvalid("received \(written) bytes, Content-Length was \(contentLength)")
            }
            let computed = hasher.finalize()
            guard computed == digest else {
                throw BerthError.digestMismatch(expected: digest.description, computed: computed.description)
            }
            try await commit(id: id, digest: digest, size: written, repository: name)
        } catch {
            sealer?.forget(upload: id)
            try? await blobs.deleteUpload(id: id)
            throw error
        }
    }

    /// The session of an upload in this repository, or `blobUploadUnknown`.
    public func uploadSession(_ name: RepositoryKey, _ id: String) async throws -> UploadSession {
        guard UploadID.isCanonical(id), let s = try await metadata.upload(id), s.repository == name else {
            throw BerthError.blobUploadUnknown(id)
        }
        return s
    }

    /// Appends one chunk (OCI PATCH, ECR UploadLayerPart); returns the new committed size. `range`, when
    /// given, is where the chunk claims to go (it must start where the upload ends); `contentLength`, when
    /// given, how many bytes the body holds.
    public func appendChunk<Body: AsyncSequence & Sendable>(
        _ name: RepositoryKey, upload id: String, range: ByteRange?, contentLength: Int64?, body: Body
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let session = try await uploadSession(name, id)
        switch UploadStateMachine.chunk(offset: session.offset, range: range, contentLength: contentLength) {
        case .reject(let e):
            throw e
        case .append(let at, let expected):
            return try await append(session, at: at, expected: expected, body: body)
        }
    }

    /// Closes an upload (OCI PUT ?digest=, ECR CompleteLayerUpload): an optional last chunk (`range`,
    /// `contentLength` and `body` as in `appendChunk`), then the digest check and the commit.
    public func completeUpload<Body: AsyncSequence & Sendable>(
        _ name: RepositoryKey, upload id: String, digest wanted: Digest, range: ByteRange?,
        contentLength: Int64?, body: Body
    ) async throws -> Digest where Body.Element == ByteBuffer {
        var session = try await uploadSession(name, id)
        let writer = Self.newUploadWriter()
        // This process's turn is held from the last chunk to the commit: a chunk written meanwhile by this
        // process would land in the blob under a digest computed without it (claims do it across nodes).
        var state = try takeTurn(session)
        do {
            try await checkUnmoved(session, at: session.offset)
            if contentLength != 0 || range != nil {
                switch UploadStateMachine.chunk(offset: session.offset, range: range, contentLength: contentLength) {
                case .reject(let e):
                    throw e
                case .append(let at, let expected):
                    if at == 0, let direct = directBlobWrites {
                        // The whole blob in the request that names its digest: straight under its key.
                        let d = try await completeDirect(session, digest: wanted, expected: expected, body: body,
                                                         to: direct, writer: writer)
                        endTurn(id, leaving: nil)
                        return d
                    }
                    session.offset = try await writeChunk(session, at: at, expected: expected, body: body, writer: writer, state: &state)
                }
            }
            let d = try await commitCompleted(session, digest: wanted, writer: writer, state: state)
            endTurn(id, leaving: nil)
            return d
        } catch {
            endTurn(id, leaving: state)
            throw error
        }
    }

    /// The blob store, when it writes monolithic pushes straight under their digest (`DirectBlobWriting`).
    var directBlobWrites: (any DirectBlobWriting)? {
        guard let direct = blobs as? any DirectBlobWriting, direct.writesBlobsDirectly else { return nil }
        return direct
    }

    /// Completes an upload with nothing staged whose completing request carries the whole blob, on a store that
    /// writes blobs under their key (`DirectBlobWriting`): holding the upload's claim, as a chunk does.
    private func completeDirect<Body: AsyncSequence & Sendable>(
        _ session: UploadSession, digest: Digest, expected: Int64?, body: Body, to direct: any DirectBlobWriting, writer: String
    ) async throws -> Digest where Body.Element == ByteBuffer {
        let claimedAt = try await claimUpload(session, at: 0, writer: writer)
        do {
            return try await holdingClaim(session, at: 0, writer: writer, since: claimedAt) { [self] in
                try await writeDirect(body, to: direct, digest: digest, expectedLength: expected,
                                      repository: session.repository, session: session.id)
            }
        } catch {
            await releaseClaim(session.id, writer: writer)
            throw error
        }
    }

    /// A monolithic push written straight under its digest's key (docs/s3.md, "Monolithic pushes"): hashed as
    /// it streams, sealed as a committed blob is when the repository's key domain seals, and published only
    /// when it hashed to `digest` and no copy is stored yet (a stored copy is kept, as a staged commit keeps
    /// it); then recorded like any commit, `session` deleted with it. Nothing is left when any step fails.
    func writeDirect<Body: AsyncSequence>(
        _ body: Body, to direct: any DirectBlobWriting, digest: Digest, expectedLength: Int64?,
        repository: RepositoryKey, session: String?
    ) async throws -> Digest where Body.Element == ByteBuffer {
        var domain: BlobKeyDomain? = nil
        if let sealer {
            let d = try await keyDomain(repository)
            if sealer.seals(d) { domain = d }
        }
        let target = try await direct.openBlob(digest)
        let writer: any DirectBlobWriter
        if let sealer, let domain {
            do {
                writer = try await sealing { try await sealer.openDirect(digest, in: domain, target: target) }
            } catch {
                await target.discard()
                throw error
            }
        } else {
            writer = target
        }
        let size: Int64
        do {
            var hasher = DigestHasher(digest.algorithm)
            size = try await stream(body, to: writer, hasher: &hasher, sizeHint: expectedLength)
            try Task.checkCancellation()
            if let expectedLength, expectedLength != size {
                // The monolithic POST's wording; a completing PUT's body is a chunk (`UploadStateMachine.afterChunk`).
                if session == nil { throw BerthError.sizeInvalid("received \(size) bytes, Content-Length was \(expectedLength)") }
                _ = try UploadStateMachine.afterChunk(at: 0, written: size, expectedLength: expectedLength).get()
            }
            _ = try UploadStateMachine.complete(expected: digest, computed: hasher.finalize()).get()
            try await writer.close()
            if let sealer, let domain {
                try await withBlobCommitLease(digest) {
                    try await self.sealing { try await sealer.publishDirect(writer, as: digest, size: size, in: domain) }
                }
            } else if try await blobs.size(of: digest) != nil {
                await writer.discard()  // the same bytes are stored already
            } else {
                try await writer.publish()
            }
        } catch {
            // Not cancelled with this task, so that an object store's unfinished upload is aborted.
            await Task { await writer.discard() }.value
            throw error
        }
        try await recordCommittedBlob(digest, size: size, repository: repository, session: session)
        events.publish(.blobPushed(repository: repository, digest: digest, size: size))
        return digest
    }

    /// The digest check and commit of a completed upload during this process's turn on it (`state`: the
    /// hash state cached for it).
    private func commitCompleted(_ session: UploadSession, digest wanted: Digest, writer: String,
                                 state: UploadHashState?) async throws -> Digest {
        // The staged bytes stay this request's until the commit deletes the session: a chunk written meanwhile
        // on another node would land in the blob under a digest computed without it. The claim is renewed
        // while the digest check (a read back of the whole upload on a node without its hash) and the commit run.
        let claimedAt = try await claimUpload(session, at: session.offset, writer: writer)
        do {
            return try await holdingClaim(session, at: session.offset, writer: writer, since: claimedAt) { [self] in
                if session.offset == 0 {
                    // An empty blob: make sure a (zero-length) staged file exists to commit.
                    try await openUploadWriter(session.id, at: 0, repository: session.repository).close()
                }
                let computed = try await finalDigest(session, algorithm: wanted.algorithm, cached: state)
                switch UploadStateMachine.complete(expected: wanted, computed: computed) {
                case .failure(let e): throw e
                case .success(let d):
                    try await commit(id: session.id, digest: d, size: session.offset, repository: session.repository,
                                     session: session.id)
                    return d
                }
            }
        } catch {
            await releaseClaim(session.id, writer: writer)
            throw error
        }
    }

    /// Takes this process's turn on an upload: one request at a time per upload in a process (the claims do
    /// it across nodes); a second is refused as a concurrent chunk. Returns the hash state cached for it.
    private func takeTurn(_ session: UploadSession) throws -> UploadHashState? {
        try hashers.withLock { h in
            let state = h[session.id]
            if let state, state.busy {
                throw BerthError.rangeNotSatisfiable(offset: session.offset, detail: "another chunk of this upload is in progress")
            }
            h[session.id] = UploadHashState(hasher: state?.hasher ?? DigestHasher(), offset: state?.offset ?? -1, busy: true)
            return state
        }
    }

    /// Ends a turn taken with `takeTurn`, leaving `state` (nil: nothing) cached for the next request.
    private func endTurn(_ id: String, leaving state: UploadHashState?) {
        hashers.withLock { h in
            h[id] = state.map { UploadHashState(hasher: $0.hasher, offset: $0.offset, busy: false) }
        }
    }

    /// Within a turn, without claims: the committed offset must still be `offset`, the one this request read
    /// before its turn; a request of this process that held the turn meanwhile may have moved it, and writing
    /// at the old offset would overwrite that request's bytes. With claims, taking the claim checks it.
    private func checkUnmoved(_ session: UploadSession, at offset: Int64) async throws {
        guard !settings.sharedMetadata else { return }
        guard let current = try await metadata.upload(session.id) else { throw BerthError.blobUploadUnknown(session.id) }
        guard current.offset == offset else {
            throw BerthError.rangeNotSatisfiable(offset: current.offset, detail: "the upload moved concurrently")
        }
    }

    /// A token naming one request's claim on an upload.
    static func newUploadWriter() -> String { UUID().uuidString.lowercased() }

    /// Claims (or, claimed already by `writer`, renews) the right to write `session`'s bytes from `offset`,
    /// across nodes: refused as one node refuses a second concurrent chunk when another request holds it.
    /// Returns the time the claim was taken at (nil: claims are not used, `RegistrySettings.sharedMetadata`).
    @discardableResult
    private func claimUpload(_ session: UploadSession, at offset: Int64, writer: String, renewing: Bool = false) async throws -> Double? {
        guard settings.sharedMetadata else { return nil }
        let now = clock.now()
        guard try await metadata.claimUpload(session.id, at: offset, writer: writer, now: now,
                                             staleBefore: now - settings.uploadWriterTimeout) else {
            throw BerthError.rangeNotSatisfiable(offset: offset, detail: renewing
                ? Self.takenOver : "another chunk of this upload is in progress")
        }
        return now
    }

    static let takenOver = "another request took this upload over while this one stalled"

    /// Runs `work` while `writer`'s claim on `session`'s upload at `offset` (taken at `claimedAt`) is renewed
    /// by an `UploadClaimHeartbeat`: `work` is cancelled and the request refused (416, as a concurrent chunk
    /// is) when the claim is lost, before another node may take the upload over. Without claims, just `work`.
    private func holdingClaim<T: Sendable>(
        _ session: UploadSession, at offset: Int64, writer: String, since claimedAt: Double?,
        _ work: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard let claimedAt else { return try await work() }
        let (metadata, id, timeout) = (self.metadata, session.id, settings.uploadWriterTimeout)
        do {
            return try await UploadClaimHeartbeat(clock: clock, timeout: timeout).holding(since: claimedAt, renew: { now in
                try await metadata.claimUpload(id, at: offset, writer: writer, now: now, staleBefore: now - timeout)
            }, work)
        } catch UploadClaimHeartbeat.Loss.takenOver {
            throw BerthError.rangeNotSatisfiable(offset: offset, detail: Self.takenOver)
        } catch UploadClaimHeartbeat.Loss.expired {
            throw BerthError.rangeNotSatisfiable(offset: offset, detail: "this request could not renew its claim on the upload in time")
        }
    }

    /// Gives up `writer`'s claim after a failed chunk or completion (nothing to give up without claims).
    private func releaseClaim(_ id: String, writer: String) async {
        guard settings.sharedMetadata else { return }
        try? await metadata.releaseUpload(id, writer: writer)
    }

    public func cancelUpload(_ name: RepositoryKey, upload id: String) async throws {
        _ = try await uploadSession(name, id)
        try await metadata.deleteUpload(id)
        try await blobs.deleteUpload(id: id)
        sealer?.forget(upload: id)
        _ = hashers.withLock { $0.removeValue(forKey: id) }
    }

    /// Removes uploads untouched for `uploadTTL`, and the unpublished direct writes (`DirectBlobWriting`) of
    /// processes that died, begun as long ago.
    public func purgeStaleUploads() async throws -> Int {
        if let direct = directBlobWrites {
            let n = try await direct.abandonBlobWrites(before: clock.now() - settings.uploadTTL)
            if n > 0 { logger.info("abandoned blob writes aborted", metadata: ["count": "\(n)"]) }
        }
        let stale = try await metadata.staleUploads(before: clock.now() - settings.uploadTTL)
        for s in stale {
            try await metadata.deleteUpload(s.id)
            try await blobs.deleteUpload(id: s.id)
            sealer?.forget(upload: s.id)
            _ = hashers.withLock { $0.removeValue(forKey: s.id) }
        }
        return stale.count
    }

    /// Writes one chunk (a PATCH) at the committed offset `start`, in a turn of its own. `session` is the
    /// upload as the request read it, before its turn: possibly stale (internal for the tests that show it).
    func append<Body: AsyncSequence & Sendable>(
        _ session: UploadSession, at start: Int64, expected: Int64?, body: Body
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        var state = try takeTurn(session)
        do {
            try await checkUnmoved(session, at: start)
            let offset = try await writeChunk(session, at: start, expected: expected, body: body,
                                              writer: Self.newUploadWriter(), state: &state)
            endTurn(session.id, leaving: state)
            return offset
        } catch {
            endTurn(session.id, leaving: state)
            throw error
        }
    }

    /// Writes one chunk at the committed offset `start` as `writer`, during this process's turn on the
    /// upload. `state` is the hash state cached for the upload, and is left as the next request may use it,
    /// whether the chunk is written or fails.
    private func writeChunk<Body: AsyncSequence & Sendable>(
        _ session: UploadSession, at start: Int64, expected: Int64?, body: Body, writer: String,
        state: inout UploadHashState?
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let cached = state.flatMap { $0.offset == start ? $0.hasher : nil }
        // Without the hash of the bytes before `start` (another node or process wrote them), hashing is left
        // to the completion, which reads the staged bytes back once: never once per chunk (docs/s3.md).
        let hashing = cached != nil || start == 0
        var hasher = cached ?? DigestHasher()
        // What holds if this chunk fails: the bytes before `start` are as they were.
        state = hashing ? UploadHashState(hasher: hasher, offset: start, busy: false) : nil
        // Across nodes: no byte is written before this request holds the upload's claim, the claim is
        // renewed while the request streams and closes (a lost claim cancels both), and the bytes become
        // visible only while it still holds (checked again at the writer's fence), so no other request's
        // bytes can replace them before the advance below releases it (docs/s3.md).
        let claimedAt = try await claimUpload(session, at: start, writer: writer)
        let newOffset: Int64
        do {
            let blobWriter = try await openUploadWriter(session.id, at: start, repository: session.repository)
            let written: Int64
            (written, hasher) = try await holdingClaim(session, at: start, writer: writer, since: claimedAt) { [self, hasher] in
                var hasher = hasher
                do {
                    let written = try await stream(body, to: blobWriter, hasher: &hasher, sizeHint: expected, hashing: hashing)
                    try Task.checkCancellation()  // a body cut short by the cancellation is not a chunk
                    try await blobWriter.close(fence: { try await self.claimUpload(session, at: start, writer: writer, renewing: true) })
                    return (written, hasher)
                } catch {
                    // Abandoned: nothing of a failed chunk becomes visible (an object store's writer aborts at
                    // the failing fence). Not cancelled with this task, so that the abort is sent.
                    await Task { try? await blobWriter.close(fence: { throw CancellationError() }) }.value
                    throw error
                }
            }
            newOffset = try UploadStateMachine.afterChunk(at: start, written: written, expectedLength: expected).get()
            guard try await metadata.advanceUpload(session.id, from: start, to: newOffset, at: clock.now(),
                                                   writer: settings.sharedMetadata ? writer : nil) else {
                throw BerthError.rangeNotSatisfiable(offset: start, detail: "the upload moved concurrently")
            }
        } catch {
            await releaseClaim(session.id, writer: writer)
            throw error
        }
        state = hashing ? UploadHashState(hasher: hasher, offset: newOffset, busy: false) : nil
        return newOffset
    }

    /// Opens an upload's staged bytes for appending at (plaintext) offset `start`: sealed when the
    /// repository's key domain seals.
    private func openUploadWriter(_ id: String, at start: Int64, repository: RepositoryKey) async throws -> any BlobUploadWriter {
        guard let sealer else { return try await blobs.openUpload(id: id, at: start) }
        let domain = try await keyDomain(repository)
        return try await sealing { try await sealer.openUpload(id: id, at: start, in: domain) }
    }

    /// Rebuilds the hash of the first `length` staged bytes (after a restart, or for another algorithm).
    private func rehash(_ id: String, length: Int64, algorithm: Digest.Algorithm, repository: RepositoryKey) async throws -> DigestHasher {
        var hasher = DigestHasher(algorithm)
        if length == 0 { return hasher }
        if let sealer {
            let domain = try await keyDomain(repository)
            do {
                try await sealer.readUpload(id: id, length: length, in: domain) { buf in
                    buf.withUnsafeReadableBytes { hasher.update($0) }
                }
            } catch let e as SealedBlobError {
                throw BerthError.blobUploadInvalid("staged data of upload \(id) is damaged (\(e)); restart the upload")
            }
            return hasher
        }
        guard let staged = try await blobs.uploadedSize(id: id), staged >= length else {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing")
        }
        try await blobs.readUpload(id: id, length: length) { buf in
            buf.withUnsafeReadableBytes { hasher.update($0) }
        }
        return hasher
    }

    private func finalDigest(_ session: UploadSession, algorithm: Digest.Algorithm, cached: UploadHashState?) async throws -> Digest {
        if algorithm == .sha256, let h = cached, h.offset == session.offset {
            return h.hasher.finalize()
        }
        return try await rehash(session.id, length: session.offset, algorithm: algorithm, repository: session.repository).finalize()
    }

    /// Moves the staged bytes into place and records the blob; `session`, when the upload has one, is
    /// deleted in the same store write.
    private func commit(id: String, digest: Digest, size: Int64, repository: RepositoryKey, session: String? = nil) async throws {
        if let sealer {
            let domain = try await keyDomain(repository)
            if sealer.seals(domain) {
                // One sealed commit of a digest at a time, across processes: two key domains committing the
                // same digest at once would otherwise each replace the other's copy, losing a key slot.
                try await withBlobCommitLease(digest) { [self] in
                    try await sealing { try await sealer.commitUpload(id: id, as: digest, size: size, in: domain) }
                }
            } else {
                try await sealing { try await sealer.commitUpload(id: id, as: digest, size: size, in: domain) }
            }
        } else {
            try await blobs.commitUpload(id: id, as: digest)
        }
        try await recordCommittedBlob(digest, size: size, repository: repository, session: session)
        events.publish(.blobPushed(repository: repository, digest: digest, size: size))
    }

    /// Streams a request body to storage in large buffers, hashing each piece as it arrives while
    /// the previous buffer is being written. Two buffers alternate, so a long upload allocates
    /// (and page-faults) only twice. Returns the number of bytes written.
    /// `sizeHint` (the declared length, when there is one) keeps small bodies from taking a whole
    /// write buffer (at least 64 KiB is used); a body longer than its hint still streams correctly (the
    /// length check is the caller's).
    func stream<Body: AsyncSequence>(
        _ body: Body, to writer: any BlobUploadWriter, hasher: inout DigestHasher, sizeHint: Int64? = nil,
        hashing: Bool = true
    ) async throws -> Int64 where Body.Element == ByteBuffer {
        let target = sizeHint.map { Int(max(64 << 10, min(Int64(settings.writeBufferSize), $0))) } ?? settings.writeBufferSize
        var pending: Task<Void, any Error>? = nil
        var total: Int64 = 0
        var current = ByteBuffer()
        var spare: ByteBuffer? = nil
        var inFlight: ByteBuffer? = nil
        func flush(_ full: ByteBuffer) async throws {
            if let p = pending {
                pending = nil
                try await p.value
                spare = inFlight  // written: free for reuse
            }
            inFlight = full
            pending = Task { try await writer.write(full) }
        }
        do {
            for try await chunk in body {
                total += Int64(chunk.readableBytes)
                if hashing { chunk.withUnsafeReadableBytes { hasher.update($0) } }
                var c = chunk
                while c.readableBytes > 0 {
                    if current.capacity == 0 {
                        if var s = spare {
                            spare = nil
                            s.clear()
                            current = s
                        } else {
                            current = writer.makeBuffer(capacity: target)
                        }
                    }
                    let n = min(c.readableBytes, target - current.readableBytes)
                    var piece = c.readSlice(length: n)!
                    current.writeBuffer(&piece)
                    if current.readableBytes >= target {
                        let full = current
                        current = ByteBuffer()
                        try await flush(full)
                    }
                }
            }
            if current.readableBytes > 0 { try await flush(current) }
            if let p = pending {
                pending = nil
                try await p.value
            }
        } catch {
            if let p = pending { _ = try? await p.value }
            throw error
        }
        return total
    }
}

extension Registry {
    /// Creates a repository with settings; false when it already exists.
    ///
    /// With encryption (a keyring), a `KMS` configuration's key is checked — a key that does not exist, is
    /// disabled or is pending deletion is refused with `BerthError.kms` (ECR's `KmsException`) — and stored
    /// as the key's ARN (`alias/aws/ecr`'s key, created on first use, when none is named). `KMS_DSSE` is
    /// refused: Berth seals blobs in one layer (docs/encryption.md).
    public func createRepository(_ key: RepositoryKey, settings: RepositorySettings) async throws -> Bool {
        var settings = settings
        settings.kmsKey = try await checkedKMSKey(encryptionType: settings.encryptionType, kmsKey: settings.kmsKey, registryID: key.registryID)
        let created = try await metadata.createRepository(key, at: clock.now(), settings: settings)
        if created { events.publish(.repositoryCreated(repository: key)) }
        return created
    }

    /// The KMS key a repository of `registryID` with this encryption configuration uses, checked as a
    /// repository creation checks it (the key exists, is usable and belongs to the registry's account;
    /// `KMS_DSSE` is refused by an encrypting registry): the key's ARN, or `kmsKey` as given when this
    /// registry does not encrypt blobs or the type is `AES256`.
    public func checkedKMSKey(encryptionType: String, kmsKey: String?, registryID: String) async throws -> String? {
        guard let sealer, encryptionType != "AES256" else { return kmsKey }
        guard encryptionType == "KMS" else {
            throw BerthError.unsupported("Invalid parameter at 'encryptionConfiguration': encryptionType \(encryptionType) (dual-layer server-side encryption) is not supported by this registry; use KMS")
        }
        let registry = RegistryID(storedValue: registryID)
        return try await sealer.keyring.domain(encryptionType: encryptionType, kmsKey: kmsKey,
                                               account: registry.account, region: registry.region)
    }

    /// Deletes a repository; unless `force`, only an empty one (`repositoryNotEmpty`).
    public func deleteRepository(_ key: RepositoryKey, force: Bool) async throws -> RepositoryRecord {
        guard let record = try await metadata.repository(key) else { throw BerthError.nameUnknown(key.name) }
        if !force, try await metadata.imageCount(in: key) > 0 { throw BerthError.repositoryNotEmpty(key.name) }
        blobLinks.removeRepository(key)
        defer { blobLinks.removeRepository(key) }
        guard try await metadata.deleteRepository(key) else { throw BerthError.nameUnknown(key.name) }
        manifestCache.removeRepository(key)
        events.publish(.repositoryDeleted(repository: key))
        return record
    }

    public func repository(_ key: RepositoryKey) async throws -> RepositoryRecord {
        guard let r = try await storedRepository(key) else { throw BerthError.nameUnknown(key.name) }
        return r
    }

    /// A repository, or nil when it does not exist.
    public func findRepository(_ key: RepositoryKey) async throws -> RepositoryRecord? {
        try await storedRepository(key)
    }

    /// Changes a repository's settings: reads them, applies `update` and writes them back in one store
    /// transaction, so concurrent updates of different fields (a policy and a resource tag, say) both
    /// land. An error thrown by `update` (a limit, for instance) changes nothing. `nameUnknown` when
    /// the repository does not exist.
    public func updateSettings(_ key: RepositoryKey, _ update: @escaping @Sendable (inout RepositorySettings) throws -> Void) async throws -> RepositorySettings {
        guard let settings = try await metadata.updateRepositorySettings(key, update) else { throw BerthError.nameUnknown(key.name) }
        return settings
    }
}
