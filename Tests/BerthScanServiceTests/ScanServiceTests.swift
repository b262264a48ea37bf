import BerthCore
import BerthRegistry
import BerthScanEngine
@testable import BerthScanService
import BerthStorage
import Foundation
import NIOCore
import NIOPosix
import Testing

/// The shared fixtures (`../shared/fixtures` next to the package, or `$BERTH_FIXTURES`).
enum Fixtures {
    static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["BERTH_FIXTURES"] { return URL(fileURLWithPath: env) }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()
    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }
    static let database: VulnerabilityDatabase = try! VulnerabilityDatabase.load(directory: url("vulndb"))
}

struct OneShot: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [UInt8]?
        mutating func next() async throws -> ByteBuffer? {
            defer { rest = nil }
            return rest.map { ByteBuffer(bytes: $0) }
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: bytes) }
}

let account = "111111111111"
func repo(_ name: String) -> RepositoryKey { RepositoryKey(registryID: account, name: try! RepositoryName(name)) }

/// Pushes an OCI image layout's tagged image (all its blobs and the manifest) into a registry.
@discardableResult
func push(layout: URL, tag: String, to registry: Registry, _ key: RepositoryKey, as reference: String) async throws -> Digest {
    let index = try JSONSerialization.jsonObject(with: Data(contentsOf: layout.appendingPathComponent("index.json"))) as! [String: Any]
    let manifests = index["manifests"] as! [[String: Any]]
    let entry = manifests.first { ($0["annotations"] as? [String: String])?["org.opencontainers.image.ref.name"] == tag } ?? manifests[0]
    let digest = entry["digest"] as! String
    func blob(_ d: String) throws -> [UInt8] {
        let parts = d.split(separator: ":")
        return [UInt8](try Data(contentsOf: layout.appendingPathComponent("blobs/\(parts[0])/\(parts[1])")))
    }
    let manifestBytes = try blob(digest)
    let manifest = try JSONSerialization.jsonObject(with: Data(manifestBytes)) as! [String: Any]
    var blobs = (manifest["layers"] as! [[String: Any]]).map { $0["digest"] as! String }
    blobs.append((manifest["config"] as! [String: Any])["digest"] as! String)
    for d in blobs {
        let bytes = try blob(d)
        try await registry.monolithicUpload(key, digest: Digest.parse(d)!, contentLength: Int64(bytes.count), body: OneShot(bytes: bytes))
    }
    let pushed = try await registry.putManifest(key, reference: try Reference(parsing: reference),
                                                contentType: manifest["mediaType"] as? String, bytes: manifestBytes)
    return pushed.digest
}

/// Waits (bounded) until the image's scan has finished.
func finishedScan(_ registry: Registry, _ key: RepositoryKey, _ digest: Digest) async throws -> ImageScanRecord? {
    for _ in 0..<400 {
        if let s = try await registry.scan(digest, in: key), s.state.isFinal { return s }
        try await Task.sleep(for: .milliseconds(25))
    }
    return nil
}

func withScanner<T: Sendable>(
    database: VulnerabilityDatabase? = Fixtures.database, dataDirectory: URL? = nil,
    _ body: @Sendable (Registry, ScanService) async throws -> T
) async throws -> T {
    let store = InMemoryMetadataStore()
    let registry = Registry(blobs: InMemoryBlobStore(), metadata: store)
    try await store.createAccount(account, at: 0)
    let scanner = ScanService(registry: registry, dataDirectory: dataDirectory, pollInterval: .milliseconds(50))
    if let database { scanner.install(database: database) }
    let task = Task { await scanner.run() }
    defer { task.cancel() }
    try await Task.sleep(for: .milliseconds(20))  // let the service subscribe to events
    return try await body(registry, scanner)
}

struct Expected: Decodable {
    struct F: Decodable {
        var package: String
        var installed_version: String
        var id: String
    }
    var findings: [F]
    static func load() throws -> Expected {
        try JSONDecoder().decode(Expected.self, from: Data(contentsOf: Fixtures.url("expected/debian-tiny-vuln.json")))
    }
}

@Suite struct ScanServiceTests {
    @Test func scanOnPushFindsExactlyTheExpectedVulnerabilities() async throws {
        try await withScanner { registry, _ in
            let key = repo("tiny")
            _ = try await registry.createRepository(key, settings: RepositorySettings(scanOnPush: true))
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            let scan = try #require(try await finishedScan(registry, key, digest))
            #expect(scan.state == .complete)
            #expect(scan.trigger == "PUSH")
            #expect(scan.statusDescription == "The scan was completed successfully.")
            let got = scan.findings.map { "\($0.name) \($0.packageName) \($0.packageVersion)" }.sorted()
            let want = try Expected.load().findings.map { "\($0.id) \($0.package) \($0.installed_version)" }.sorted()
            #expect(got == want)
            #expect(scan.findings == scan.findings.sorted(by: ScanFinding.reportOrder))
            #expect(scan.vulnerabilitySourceUpdatedAt == Fixtures.database.newestModified?.date.timeIntervalSince1970)
            let attrs = try #require(scan.findings.first { $0.name == "CVE-2023-38545" }).attributes.map(\.key)
            #expect(attrs == ["package_name", "package_version", "CVSS3_SCORE", "CVSS3_VECTOR"])
        }
    }

    /// ECR: a restored image is scanned when the repository scans on push; its earlier results went with the archive.
    @Test func aRestoredImageIsScannedAgain() async throws {
        try await withScanner { registry, _ in
            let key = repo("restored")
            _ = try await registry.createRepository(key, settings: RepositorySettings(scanOnPush: true))
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            let first = try #require(try await finishedScan(registry, key, digest))
            try await registry.updateImageStorageClass(digest, in: key, to: .archive, at: first.requestedAt + 10)
            #expect(try await registry.scan(digest, in: key) == nil)
            try await registry.updateImageStorageClass(digest, in: key, to: .standard, at: first.requestedAt + 20)
            let again = try #require(try await finishedScan(registry, key, digest))
            #expect(again.state == .complete && again.trigger == "PUSH")
            #expect(again.findings.count == first.findings.count)
        }
    }

    @Test func withoutScanOnPushNothingIsScannedUntilRequested() async throws {
        try await withScanner { registry, _ in
            let key = repo("manual")
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            try await Task.sleep(for: .milliseconds(150))
            #expect(try await registry.scan(digest, in: key) == nil)
            let queued = try await registry.requestScan(key, digest, trigger: "MANUAL", manual: true)
            #expect(queued.state == .pending)
            let scan = try #require(try await finishedScan(registry, key, digest))
            #expect(scan.state == .complete)
            #expect(scan.manualRequestedAt == queued.requestedAt)
            await #expect(throws: BerthError.self) {
                try await registry.requestScan(key, digest, trigger: "MANUAL", manual: true)
            }
        }
    }

    @Test func registryRulesTurnOnScanOnPush() async throws {
        try await withScanner { registry, _ in
            try await registry.putScanningConfiguration(account, RegistryScanningConfiguration(
                rules: [.init(scanFrequency: "SCAN_ON_PUSH", repositoryFilters: ["team/*"])]))
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, repo("team/a"), as: "1")
            #expect(try await finishedScan(registry, repo("team/a"), digest)?.state == .complete)
            let other = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, repo("solo"), as: "1")
            try await Task.sleep(for: .milliseconds(150))
            #expect(try await registry.scan(other, in: repo("solo")) == nil)
        }
    }

    @Test func artifactsAreUnsupportedImages() async throws {
        try await withScanner { registry, _ in
            let key = repo("art")
            let config = Array("{}".utf8)
            let layer = Array("hello".utf8)
            for b in [config, layer] {
                try await registry.monolithicUpload(key, digest: Digest.sha256(of: b), contentLength: Int64(b.count), body: OneShot(bytes: b))
            }
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example+type",
                "config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\(Digest.sha256(of: config))","size":2},
                "layers":[{"mediaType":"text/plain","digest":"\(Digest.sha256(of: layer))","size":5}]}
                """
            let pushed = try await registry.putManifest(key, reference: try Reference(parsing: "v1"), contentType: MediaType.ociManifest,
                                                        bytes: Array(manifest.utf8))
            try await registry.requestScan(key, pushed.digest, trigger: "MANUAL")
            let scan = try #require(try await finishedScan(registry, key, pushed.digest))
            #expect(scan.state == .unsupportedImage)
            #expect(scan.statusDescription?.hasPrefix("UnsupportedImageError:") == true)
        }
    }

    @Test func corruptLayersFailCleanly() async throws {
        try await withScanner { registry, _ in
            let key = repo("bad")
            let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
            let layer: [UInt8] = [0x1f, 0x8b, 0x08, 0x00] + Array(repeating: 0x41, count: 300)
            for b in [config, layer] {
                try await registry.monolithicUpload(key, digest: Digest.sha256(of: b), contentLength: Int64(b.count), body: OneShot(bytes: b))
            }
            let manifest = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
                "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(Digest.sha256(of: config))","size":\(config.count)},
                "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(Digest.sha256(of: layer))","size":\(layer.count)}]}
                """
            let pushed = try await registry.putManifest(key, reference: try Reference(parsing: "v1"), contentType: MediaType.ociManifest,
                                                        bytes: Array(manifest.utf8))
            try await registry.requestScan(key, pushed.digest, trigger: "MANUAL")
            let scan = try #require(try await finishedScan(registry, key, pushed.digest))
            #expect(scan.state == .failed)
            #expect(scan.statusDescription?.contains("could not be read") == true)
        }
    }

    @Test func anIndexIsScannedPlatformByPlatform() async throws {
        try await withScanner { registry, _ in
            let key = repo("multi")
            let child = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            let size = try await registry.storedManifest(child, in: key)!.bytes.count
            let index = """
                {"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
                {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\(child)","size":\(size),
                 "platform":{"architecture":"amd64","os":"linux"}}]}
                """
            let pushed = try await registry.putManifest(key, reference: try Reference(parsing: "multi"), contentType: MediaType.ociIndex,
                                                        bytes: Array(index.utf8))
            try await registry.requestScan(key, pushed.digest, trigger: "MANUAL")
            let scan = try #require(try await finishedScan(registry, key, pushed.digest))
            #expect(scan.state == .complete)
            #expect(scan.findings.count == 64)
            #expect(try await registry.scan(child, in: key)?.findings.count == 64, "the platform image got its own scan")
        }
    }

    @Test func withoutADatabaseScansFailWithAReason() async throws {
        try await withScanner(database: nil) { registry, _ in
            let key = repo("nodb")
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            try await registry.requestScan(key, digest, trigger: "MANUAL")
            let scan = try #require(try await finishedScan(registry, key, digest))
            #expect(scan.state == .failed)
            #expect(scan.statusDescription?.contains("berth vulndb import") == true)
        }
    }

    @Test func anImportedBundleIsLoadedAndContinuousRepositoriesAreRescanned() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-scan-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = dir.appendingPathComponent("source/Debian")
        try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
        // A tiny database: one advisory for curl, then a second import that adds one for zlib.
        for id in ["CVE-2023-38545"] {
            try FileManager.default.copyItem(at: Fixtures.url("vulndb/Debian/\(id).json"), to: source.appendingPathComponent("\(id).json"))
        }
        let bundle = VulnerabilityBundle(dataDirectory: dir)
        _ = try bundle.importRecords(from: dir.appendingPathComponent("source"))
        try await withScanner(database: nil, dataDirectory: dir) { registry, scanner in
            try await registry.putScanningConfiguration(account, RegistryScanningConfiguration(
                rules: [.init(scanFrequency: "CONTINUOUS_SCAN", repositoryFilters: ["*"])]))
            let key = repo("cont")
            let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
            let first = try #require(try await finishedScan(registry, key, digest))
            #expect(first.state == .complete)
            #expect(first.findings.map(\.name) == ["CVE-2023-38545"])
            try FileManager.default.copyItem(at: Fixtures.url("vulndb/Debian/CVE-2023-45853.json"),
                                             to: source.appendingPathComponent("CVE-2023-45853.json"))
            let second = try bundle.importRecords(from: dir.appendingPathComponent("source"))
            for _ in 0..<200 {
                if scanner.databaseID == second.metadata.bundle,
                   let s = try await registry.scan(digest, in: key), s.state == .complete, s.findings.count == 2 { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            let rescanned = try #require(try await registry.scan(digest, in: key))
            #expect(rescanned.trigger == "CONTINUOUS")
            #expect(Set(rescanned.findings.map(\.name)) == ["CVE-2023-38545", "CVE-2023-45853"])
        }
    }
}

@Suite struct VulnerabilityBundleTests {
    @Test func importWritesAnIndexedBundleThatLoadsTheSameRecords() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bundle-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let bundle = VulnerabilityBundle(dataDirectory: dir)
        #expect(bundle.currentBundle() == nil)
        let result = try bundle.importRecords(from: Fixtures.url("vulndb"))
        #expect(bundle.currentBundle() == result.metadata.bundle)
        let (db, meta) = try bundle.load(bundle: result.metadata.bundle)
        #expect(meta == result.metadata)
        #expect(db.advisories.count == Fixtures.database.advisories.count)
        #expect(db.countsByFeed == Fixtures.database.countsByFeed)
        #expect(meta.recordsByEcosystem == Fixtures.database.countsByEcosystem)
        #expect(meta.newestModified == Fixtures.database.newestModified?.modified)
        #expect(meta.repaired == Fixtures.database.issues.filter { $0.disposition == .repaired }.count)
    }

    @Test func malformedRecordsAreSkippedAndOldBundlesPruned() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-bundle-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let feed = dir.appendingPathComponent("src/PyPI")
        try FileManager.default.createDirectory(at: feed, withIntermediateDirectories: true)
        try Data("{not json".utf8).write(to: feed.appendingPathComponent("bad.json"))
        try Data(#"{"id":"X-1"}"#.utf8).write(to: feed.appendingPathComponent("incomplete.json"))
        try FileManager.default.copyItem(at: Fixtures.url("vulndb/PyPI/PYSEC-2005-1.json"), to: feed.appendingPathComponent("ok.json"))
        let bundle = VulnerabilityBundle(dataDirectory: dir)
        var names: [String] = []
        for _ in 0..<3 {
            let r = try bundle.importRecords(from: dir.appendingPathComponent("src"))
            #expect(r.metadata.recordsByFeed == ["PyPI": 1])
            #expect(r.metadata.skipped == 2)
            names.append(r.metadata.bundle)
        }
        let kept = try FileManager.default.contentsOfDirectory(atPath: bundle.root.path).filter { VulnerabilityBundle.isBundleName($0) }
        #expect(Set(kept) == Set(names.suffix(2)), "the current and the previous bundle are kept")
        #expect(throws: VulnerabilityBundle.BundleError.self) { try bundle.importRecords(from: dir.appendingPathComponent("nowhere")) }
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("empty"), withIntermediateDirectories: true)
        #expect(throws: VulnerabilityBundle.BundleError.self) { try bundle.importRecords(from: dir.appendingPathComponent("empty")) }
        #expect(bundle.currentBundle() == names.last)
    }
}

@Suite struct VulnerabilityArchiveImportTests {
    /// osv.dev's per-ecosystem export (`<Ecosystem>/all.zip`), built with Python's zipfile (deflate).
    @Test func anOSVAllZipImportsAsItsEcosystemFeed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-zip-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let feed = dir.appendingPathComponent("src/Debian")
        try FileManager.default.createDirectory(at: feed, withIntermediateDirectories: true)
        let zip = feed.appendingPathComponent("all.zip")
        let records = ["CVE-2023-38545", "CVE-2023-45853"].map { Fixtures.url("vulndb/Debian/\($0).json").path }
        let script = """
            import sys, zipfile
            with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as z:
                for p in sys.argv[2:]:
                    z.write(p, p.rsplit("/", 1)[1])
                z.writestr("../evil.json", "{}")
                z.writestr("README.txt", "not a record")
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script, zip.path] + records
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0)
        let bundle = VulnerabilityBundle(dataDirectory: dir)
        let direct = try bundle.importRecords(from: zip)
        #expect(direct.metadata.recordsByFeed == ["Debian": 2])
        #expect(direct.metadata.skipped == 1, "the entry escaping with .. is refused")
        let viaFolder = try bundle.importRecords(from: dir.appendingPathComponent("src"))
        #expect(viaFolder.metadata.recordsByFeed == ["Debian": 2])
        let (db, _) = try bundle.load(bundle: viaFolder.metadata.bundle)
        #expect(Set(db.advisories.map(\.record.id)) == ["CVE-2023-38545", "CVE-2023-45853"])
    }
}

@Suite struct PushedLayerTests {
    /// The layers are pushed chunk by chunk into the walker: nothing waits on a thread for the next chunk, so a scan
    /// completes even when the blob reads and the walker share a pool of one thread (a walker blocking that thread
    /// while it waits for a read queued behind it would never finish).
    @Test func aScanCompletesOnOneThreadSharedWithTheBlobReads() async throws {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do { try await scanOnOneThread(pool) } catch {
            try await pool.shutdownGracefully()
            throw error
        }
        try await pool.shutdownGracefully()
    }

    func scanOnOneThread(_ pool: NIOThreadPool) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-push-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let blobs = try FileSystemBlobStore(root: dir.path, threadPool: pool, readChunkSize: 4096)
        let store = InMemoryMetadataStore()
        let registry = Registry(blobs: blobs, metadata: store)
        try await store.createAccount(account, at: 0)
        let scanner = ScanService(registry: registry, dataDirectory: nil, pollInterval: .milliseconds(50), threadPool: pool)
        scanner.install(database: Fixtures.database)
        let task = Task { await scanner.run() }
        defer { task.cancel() }
        try await Task.sleep(for: .milliseconds(20))  // let the service subscribe to events
        let key = repo("pushed")
        let digest = try await push(layout: Fixtures.url("images/debian-tiny-vuln"), tag: "1", to: registry, key, as: "1")
        try await registry.requestScan(key, digest, trigger: "MANUAL")
        let scan = try #require(try await finishedScan(registry, key, digest))
        #expect(scan.state == .complete)
        let got = scan.findings.map { "\($0.name) \($0.packageName) \($0.packageVersion)" }.sorted()
        let want = try Expected.load().findings.map { "\($0.id) \($0.package) \($0.installed_version)" }.sorted()
        #expect(got == want)
    }

    /// A layer that fails half-way leaves the walker as it was, ready for the next layer.
    @Test func aFailedLayerLeavesTheWalkUnchanged() async throws {
        try await withScanner { registry, scanner in
            let key = repo("halfway")
            let layout = Fixtures.url("images/debian-tiny-vuln")
            _ = try await push(layout: layout, tag: "1", to: registry, key, as: "1")
            let good = try #require(try FileManager.default.contentsOfDirectory(atPath: layout.appendingPathComponent("blobs/sha256").path)
                .map { try Data(contentsOf: layout.appendingPathComponent("blobs/sha256/\($0)")) }
                .filter { $0.starts(with: [0x1f, 0x8b]) }.max { $0.count < $1.count })
            let cut = [UInt8](good.prefix(good.count / 2))
            try await registry.monolithicUpload(key, digest: Digest.sha256(of: cut), contentLength: Int64(cut.count), body: OneShot(bytes: cut))
            let walk = ScanService.ImageWalk(limits: .init())
            let goodDigest = Digest.sha256(of: [UInt8](good))
            let gzip = "application/vnd.oci.image.layer.v1.tar+gzip"
            #expect(await scanner.apply(layer: goodDigest, in: key, mediaType: gzip, to: walk) == nil)
            let before = walk.walker.withLock { ($0.index, $0.layersApplied) }
            #expect(!before.0.catalogFiles().isEmpty)
            let failure = await scanner.apply(layer: Digest.sha256(of: cut), in: key, mediaType: gzip, to: walk)
            #expect(failure?.contains("the compressed data ends early") == true)
            let after = walk.walker.withLock { ($0.index, $0.layersApplied) }
            #expect(after.0 == before.0 && after.1 == before.1)
            #expect(await scanner.apply(layer: goodDigest, in: key, mediaType: gzip, to: walk) == nil)
            #expect(walk.walker.withLock { $0.layersApplied } == 2)
        }
    }
}
