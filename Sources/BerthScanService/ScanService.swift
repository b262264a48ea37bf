import BerthCore
import BerthRegistry
import BerthScanEngine
import BerthSupport
import Foundation
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// ECR basic scanning: scans queued images (on push, on request, continuously after a database update)
/// in the background, one at a time, and stores their status and findings.
///
/// The queue is the metadata store itself (`PENDING` scans), so a push never waits for a scan, the
/// queue is bounded by the images that exist, and scans survive a restart.
public final class ScanService: Sendable {
    let registry: Registry
    let bundle: VulnerabilityBundle?
    let logger: Logger
    let limits: LayerWalker.Limits
    let pollInterval: Duration
    let threadPool: NIOThreadPool
    let loaded = Mutex<LoadedDatabase?>(nil)
    let wake = WakeSignal()

    struct LoadedDatabase: Sendable {
        var bundleID: String
        var matcher: Matcher
        var updatedAt: Double?
    }

    public init(registry: Registry, dataDirectory: URL?, limits: LayerWalker.Limits = .init(),
                pollInterval: Duration = .seconds(5), threadPool: NIOThreadPool = .singleton,
                logger: Logger = Logger(label: "berth.scan")) {
        self.registry = registry
        self.bundle = dataDirectory.map { VulnerabilityBundle(dataDirectory: $0) }
        self.limits = limits
        self.pollInterval = pollInterval
        self.threadPool = threadPool
        self.logger = logger
    }

    /// An in-memory database, for tests and embedders (the data directory's bundle is then not polled).
    public func install(database: VulnerabilityDatabase, id: String = "memory") {
        let updated = database.newestModified?.date.timeIntervalSince1970
        loaded.withLock { $0 = LoadedDatabase(bundleID: id, matcher: Matcher(database: database), updatedAt: updated) }
    }

    /// The id of the loaded database, if any.
    public var databaseID: String? { loaded.withLock { $0?.bundleID } }

    // MARK: running

    /// Runs until cancelled: follows registry events, polls the database bundle, and works the queue.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followEvents() }
            group.addTask { await self.pollDatabase() }
            group.addTask { await self.work() }
        }
    }

    func followEvents() async {
        for await event in registry.events.subscribe() {
            if Task.isCancelled { return }
            switch event {
            case .manifestPushed(let repository, let digest, _, _, _), .imageRestored(let repository, let digest):
                // A restored image is scanned like a newly pushed one (its earlier results went with the archive).
                await onPush(repository, digest)
            case .scanRequested:
                wake.signal()
            default:
                continue
            }
        }
    }

    /// Scan on push: when the repository's effective frequency says so and the image has no scan yet.
    func onPush(_ key: RepositoryKey, _ digest: Digest) async {
        do {
            let record = try await registry.repository(key)
            let frequency = try await registry.scanFrequency(record).frequency
            guard frequency == "SCAN_ON_PUSH" || frequency == "CONTINUOUS_SCAN" else { return }
            guard try await registry.scan(digest, in: key) == nil else { return }
            try await registry.requestScan(key, digest, trigger: "PUSH")
        } catch {
            logger.warning("scan on push not queued", metadata: ["repository": "\(key)", "digest": "\(digest)", "error": "\(error)"])
        }
    }

    func pollDatabase() async {
        guard let bundle else { return }
        while !Task.isCancelled {
            if let current = bundle.currentBundle(), current != databaseID {
                await loadBundle(current, bundle: bundle)
            }
            try? await Task.sleep(for: pollInterval)
        }
    }

    func loadBundle(_ id: String, bundle: VulnerabilityBundle) async {
        let started = ContinuousClock.now
        do {
            let (db, meta) = try await threadPool.runIfActive { try bundle.load(bundle: id) }
            let previous = databaseID
            loaded.withLock {
                $0 = LoadedDatabase(bundleID: id, matcher: Matcher(database: db), updatedAt: meta.newestModifiedAt)
            }
            logger.info("vulnerability database loaded", metadata: [
                "bundle": "\(id)", "records": "\(db.advisories.count)",
                "seconds": "\(started.duration(to: .now).components.seconds)",
            ])
            wake.signal()
            if previous != nil { await rescanContinuous() }
        } catch {
            logger.error("vulnerability database not loaded", metadata: ["bundle": "\(id)", "error": "\(error)"])
            // Do not retry a broken bundle every poll.
            if databaseID == nil { try? await Task.sleep(for: pollInterval * 6) }
        }
    }

    /// After a database update: queue every image of every repository whose frequency is `CONTINUOUS_SCAN`.
    public func rescanContinuous() async {
        var queued = 0
        do {
            // Every private registry: each account × region has its own scanning configuration.
            for account in try await registry.registryIDs() where !RegistryID(storedValue: account).isPublic {
                let config = try await registry.scanningConfiguration(account)
                guard config.rules.contains(where: { $0.scanFrequency == "CONTINUOUS_SCAN" }) else { continue }
                var last: String? = nil
                while true {
                    let names = try await registry.catalog(account, PageRequest(limit: 500, last: last))
                    for name in names.items {
                        guard let rn = try? RepositoryName(name) else { continue }
                        let key = RepositoryKey(registryID: account, name: rn)
                        guard let record = try await registry.findRepository(key),
                              try await registry.scanFrequency(record).frequency == "CONTINUOUS_SCAN" else { continue }
                        var after: String? = nil
                        while true {
                            let images = try await registry.images(in: key, after: after, limit: 500)
                            for image in images.prefix(500) {
                                try await registry.requestScan(key, image.digest, trigger: "CONTINUOUS")
                                queued += 1
                            }
                            guard images.count > 500, let l = images.prefix(500).last else { break }
                            after = l.digest.description
                        }
                    }
                    guard let next = names.next else { break }
                    last = next
                }
            }
        } catch {
            logger.error("continuous rescan stopped", metadata: ["error": "\(error)"])
        }
        if queued > 0 { logger.info("continuous rescan queued", metadata: ["images": "\(queued)"]) }
    }

    /// Works the queue: every unfinished scan, oldest first; sleeps until woken or the poll interval passes.
    func work() async {
        while !Task.isCancelled {
            do {
                let batch = try await registry.unfinishedScans(limit: 16)
                if batch.isEmpty || databaseID == nil && bundle?.currentBundle() != nil {
                    // Nothing to do, or a database is about to load: wait for a wake-up or a timeout.
                    await wake.wait(timeout: pollInterval)
                    continue
                }
                for scan in batch {
                    if Task.isCancelled { return }
                    await run(scan)
                }
            } catch {
                logger.error("scan queue unreadable", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: pollInterval)
            }
        }
    }

    /// Runs one queued scan to its end and stores the outcome.
    func run(_ queued: ImageScanRecord) async {
        var record = queued
        record.state = .inProgress
        record.startedAt = registry.clock.now()
        record.statusDescription = nil
        do {
            guard try await registry.recordScan(record, ifState: queued.state) else { return }
        } catch {
            logger.error("scan not started", metadata: ["error": "\(error)"])
            return
        }
        let started = ContinuousClock.now
        let outcome = await scanImage(record.repository, record.digest, trigger: record.trigger)
        let elapsed = started.duration(to: .now)
        record.state = outcome.state
        record.statusDescription = outcome.description
        record.findings = outcome.findings
        record.completedAt = registry.clock.now()
        record.vulnerabilitySourceUpdatedAt = outcome.sourceUpdatedAt
        do {
            // A newer request (e.g. StartImageScan meanwhile) replaced the record: keep that one.
            if try await registry.recordScan(record, ifState: .inProgress) {
                registry.events.publish(.scanCompleted(repository: record.repository, digest: record.digest, state: record.state))
            }
        } catch {
            logger.error("scan result not stored", metadata: ["error": "\(error)"])
        }
        logger.info("image scanned", metadata: [
            "repository": "\(record.repository)", "digest": "\(record.digest)", "status": "\(record.state.rawValue)",
            "findings": "\(record.findings.count)",
            "milliseconds": "\(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)",
        ])
    }

    struct Outcome {
        var state: ImageScanState
        var description: String?
        var findings: [ScanFinding] = []
        var sourceUpdatedAt: Double? = nil

        static func unsupported(_ why: String) -> Outcome {
            Outcome(state: .unsupportedImage, description: "UnsupportedImageError: \(why)")
        }

        static func failed(_ why: String) -> Outcome { Outcome(state: .failed, description: why) }
    }

    static let completeDescription = "The scan was completed successfully."
    static let unsupportedOS = "The operating system and/or package manager are not supported."

    /// Scans an image; an index is scanned platform by platform and reports the union of their findings.
    func scanImage(_ key: RepositoryKey, _ digest: Digest, trigger: String) async -> Outcome {
        guard let db = loaded.withLock({ $0 }) else {
            return .failed("No vulnerability database is installed; import one with `berth vulndb import`.")
        }
        let manifest: ParsedManifest
        let bytes: [UInt8]
        do {
            guard let record = try await registry.storedManifest(digest, in: key) else {
                return .failed("The image no longer exists.")
            }
            bytes = record.bytes
            manifest = try ManifestParser.parse(record.bytes, contentType: record.mediaType)
        } catch {
            return .failed("The image manifest could not be read: \(error)")
        }
        guard manifest.isIndex else { return await scanSingle(key, manifest, db) }
        let children: [PlatformManifest]
        do { children = try PlatformManifests.select(fromIndex: Data(bytes)).manifests } catch {
            return .failed("The image index could not be read: \(error.description)")
        }
        guard !children.isEmpty else { return .unsupported("The image index lists no platform images.") }
        var merged: [ScanFinding] = []
        var seen = Set<String>()
        var anyComplete = false
        var reasons: [String] = []
        for child in children {
            guard let childDigest = Digest.parse(child.digest) else { continue }
            var outcome: Outcome
            if let existing = try? await registry.scan(childDigest, in: key), existing.state == .complete,
               existing.vulnerabilitySourceUpdatedAt == db.updatedAt {
                outcome = Outcome(state: .complete, description: existing.statusDescription, findings: existing.findings,
                                  sourceUpdatedAt: existing.vulnerabilitySourceUpdatedAt)
            } else {
                do {
                    guard let m = try await registry.storedManifest(childDigest, in: key) else { continue }
                    outcome = await scanSingle(key, try ManifestParser.parse(m.bytes, contentType: m.mediaType), db)
                } catch {
                    outcome = .failed("The image manifest could not be read: \(error)")
                }
                let now = registry.clock.now()
                let childRecord = ImageScanRecord(
                    repository: key, digest: childDigest, state: outcome.state, statusDescription: outcome.description,
                    trigger: trigger, requestedAt: now, startedAt: now, completedAt: now,
                    vulnerabilitySourceUpdatedAt: outcome.sourceUpdatedAt, findings: outcome.findings)
                _ = try? await registry.recordScan(childRecord, ifState: nil)
            }
            if outcome.state == .complete { anyComplete = true } else if let d = outcome.description { reasons.append(d) }
            for f in outcome.findings where seen.insert("\(f.name)\u{0}\(f.packageName)\u{0}\(f.packageVersion)").inserted {
                merged.append(f)
            }
        }
        guard anyComplete else {
            return Outcome(state: .unsupportedImage, description: reasons.first ?? "UnsupportedImageError: \(Self.unsupportedOS)")
        }
        merged.sort(by: ScanFinding.reportOrder)
        return Outcome(state: .complete, description: Self.completeDescription, findings: merged, sourceUpdatedAt: db.updatedAt)
    }

    /// The walker of one image, handed from one thread-pool task to the next as the layers' chunks arrive.
    /// Its lock is never contended (a scan pushes one chunk at a time) but lets the compiler check the handing over.
    final class ImageWalk: Sendable {
        let walker: Mutex<LayerWalker>
        init(limits: LayerWalker.Limits) { walker = Mutex(LayerWalker(limits: limits)) }
    }

    func scanSingle(_ key: RepositoryKey, _ manifest: ParsedManifest, _ db: LoadedDatabase) async -> Outcome {
        guard let config = manifest.config, MediaType.isImageConfig(config.mediaType) else {
            return .unsupported("The artifact is not a container image.")
        }
        let walk = ImageWalk(limits: limits)
        for layer in manifest.layers {
            guard LayerMediaTypes.isScannable(layer.mediaType) else {
                if LayerMediaTypes.isForeign(layer.mediaType) { continue }
                return .unsupported("The layer media type \(layer.mediaType) is not supported.")
            }
            guard let digest = Digest.parse(layer.digest) else { return .failed("Invalid layer digest \(layer.digest).") }
            if let failure = await apply(layer: digest, in: key, mediaType: layer.mediaType, to: walk) {
                return .failed("Layer \(digest) could not be read: \(failure)")
            }
        }
        let matcher = db.matcher
        let limits = self.limits
        let report: ScanReport
        do {
            report = try await threadPool.runIfActive {
                let (index, issues) = walk.walker.withLock { ($0.index, $0.issues) }
                return ImageScanner(matcher: matcher, limits: limits).scan(index: index, layerIssues: issues)
            }
        } catch {
            return .failed("The scan was interrupted: \(error)")
        }
        // Supported: the OS packages were matched in a known distribution, or there are language packages.
        let languageKinds: Set<InstalledPackage.Kind> = [.pypi, .npm, .golang]
        if report.osEcosystems.isEmpty && !report.packages.contains(where: { languageKinds.contains($0.kind) }) {
            return .unsupported(Self.unsupportedOS)
        }
        let findings = report.findings.map(ScanFinding.init(finding:)).sorted(by: ScanFinding.reportOrder)
        return Outcome(state: .complete, description: Self.completeDescription, findings: findings, sourceUpdatedAt: db.updatedAt)
    }

    /// Streams one layer blob into the walker; returns a failure reason.
    ///
    /// The blob is read asynchronously and every chunk read is pushed through decompression, the tar parser and
    /// the catalogers on the thread pool as it arrives: no thread waits for the next chunk, and the next read
    /// starts once the walker has taken the chunk.
    func apply(layer digest: Digest, in repository: RepositoryKey, mediaType: String, to walk: ImageWalk) async -> String? {
        let threadPool = self.threadPool
        do {
            try walk.walker.withLock { walker throws(LayerError) in try walker.beginLayer(mediaType: mediaType) }
            do {
                try await registry.readBlob(repository, digest, range: nil) { buffer in
                    var buffer = buffer
                    while buffer.readableBytes > 0 {
                        let piece = buffer.readSlice(length: min(buffer.readableBytes, Self.pushChunkBytes))!
                        let wantsMore = try await threadPool.runIfActive {
                            try walk.walker.withLock { walker throws(LayerError) in try walker.feed(Array(piece.readableBytesView)) }
                        }
                        guard wantsMore else { throw LayerRead.complete }
                    }
                }
            } catch LayerRead.complete {
                // A plain tar ended with its end marker: what follows is not read.
            } catch let e as LayerError {
                throw e
            } catch {
                throw LayerError.unreadable("\(error)")
            }
            try await threadPool.runIfActive {
                try walk.walker.withLock { walker throws(LayerError) in try walker.finishLayer() }
            }
            return nil
        } catch {
            walk.walker.withLock { $0.abandonLayer() }
            return "\(error)"
        }
    }

    /// The most bytes pushed to the walker in one thread-pool task.
    static let pushChunkBytes = 256 << 10

    private enum LayerRead: Error { case complete }
}

/// Which layer media types the scanner reads.
enum LayerMediaTypes {
    static let scannable: Set<String> = [
        "application/vnd.oci.image.layer.v1.tar",
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.docker.image.rootfs.diff.tar",
    ]
    static func isScannable(_ t: String) -> Bool { scannable.contains(t) }
    /// Layers that are not pushed to registries (Windows base layers): skipped.
    static func isForeign(_ t: String) -> Bool { t.contains("foreign") || t.contains("nondistributable") }
}

extension ScanFinding {
    /// The stored form of a scanner finding.
    public init(finding f: Finding) {
        var score: Double? = nil
        var vector: String? = nil
        if case .cvssV3(let s, let v) = f.severitySource {
            score = s
            vector = v
        }
        let manager: String
        switch f.package.kind.rawValue {
        case "pypi": manager = "PYTHONPKG"
        case "npm": manager = "NODEPKG"
        case "go": manager = "GOBINARY"
        default: manager = "OS"
        }
        self.init(
            name: f.name, description: f.description, uri: f.uri, severity: ScanSeverity(rawValue: f.severity.rawValue) ?? .undefined,
            attributes: f.attributes.map { Attribute(key: $0.key, value: $0.value) }, packageName: f.package.name,
            packageVersion: f.package.version, packageManager: manager, arch: f.package.architecture, filePath: f.package.path,
            fixedInVersion: f.fixedVersion, cvssScore: score, cvssVector: vector ?? f.cvssVectors.first, source: f.feed,
            vendorSeverity: f.urgency, relatedVulnerabilities: f.aliases)
    }
}
