import AsyncHTTPClient
import Foundation
import NIOPosix
import NIOCore

enum Section: String, CaseIterable, Sendable {
    case push, pull, images, latency, tags, catalog, contention, gc

    /// What a run without `--only` measures (`gc` needs `--gc-command`).
    static var defaults: [Section] { allCases.filter { $0 != .gc } }
}

struct BenchConfig: Sendable {
    var url: String
    var quick: Bool
    var blobSizesMiB: [Int]
    var chunkMiB: Int
    var imageConcurrency: [Int]
    var latencyConcurrency: [Int]
    var duration: Double
    var warmup: Double
    var tagCount: Int
    var tagPageSize: Int
    var repoCount: Int
    var catalogPageSizes: [Int]
    var repeats: Int
    var verifyDigest: Bool
    var serverPID: Int32?
    var sections: [Section]
    var setupConcurrency: Int
    var repoPrefix: String
    var smallLayerBytes: Int
    var maxImagesPerLevel: Int
    var maxRequestsPerLevel: Int
    /// `Authorization` header value for every request (never written to the report), nil = anonymous.
    var authorization: String? = nil
    /// How the run authenticates, for the report: "anonymous" or "HTTP Basic, user X" (no secret).
    var authDescription: String = "anonymous"
    /// A shell command run again and again while the contention measure runs (e.g. a `berth admin` write).
    var contentionCommand: String? = nil
    /// A shell command run once while the garbage collection measure runs (e.g. `berth gc`).
    var gcCommand: String? = nil

    var poolSize: Int {
        max((imageConcurrency + latencyConcurrency + [setupConcurrency]).max() ?? 1, 1)
    }
}

private let MiB = 1 << 20

/// Runs the benchmark sections in order and collects a `Report`.
final class Bench {
    let config: BenchConfig
    let registry: Registry
    let runID: String
    var report: Report
    let sampler: RSSSampler?
    var rng = Xoshiro256()

    /// The blob the pull section reads (the largest monolithic push), if the push section ran.
    var pullBlob: (repo: String, digest: String, size: Int)?

    init(config: BenchConfig, client: HTTPClient) throws {
        self.config = config
        self.registry = try Registry(client: client, baseURL: config.url, authorization: config.authorization)
        var r = Xoshiro256()
        self.runID = r.hex(4)
        let iso = ISO8601DateFormatter().string(from: Date())
        self.report = Report(
            meta: ReportMeta(
                url: registry.base, runID: runID, startedAt: iso, quick: config.quick,
                durationSeconds: config.duration, serverPID: config.serverPID,
                host: ProcessInfo.processInfo.hostName, auth: config.authDescription,
                parameters: [
                    "blobSizesMiB": config.blobSizesMiB.map(String.init).joined(separator: ","),
                    "chunkMiB": String(config.chunkMiB),
                    "imageConcurrency": config.imageConcurrency.map(String.init).joined(separator: ","),
                    "latencyConcurrency": config.latencyConcurrency.map(String.init).joined(separator: ","),
                    "secondsPerLevel": String(config.duration),
                    "warmupSeconds": String(config.warmup),
                    "tags": String(config.tagCount),
                    "tagPageSize": String(config.tagPageSize),
                    "repos": String(config.repoCount),
                    "catalogPageSizes": config.catalogPageSizes.map(String.init).joined(separator: ","),
                    "repeats": String(config.repeats),
                    "setupConcurrency": String(config.setupConcurrency),
                    "smallLayerBytes": String(config.smallLayerBytes),
                    "connectionPool": String(config.poolSize),
                    "sections": config.sections.map(\.rawValue).joined(separator: ","),
                ]))
        self.sampler = config.serverPID.map { RSSSampler(pid: $0) }
    }

    func repo(_ suffix: String) -> String { "\(config.repoPrefix)-\(runID)/\(suffix)" }

    func add(_ section: String, _ name: String, _ unit: String, _ value: Double?, _ better: Better, variant: String? = nil,
             note: String? = nil, warning: String? = nil) {
        let m = Metric(section: section, name: name, variant: variant, unit: unit, value: value, better: better, note: note, warning: warning)
        report.metrics.append(m)
        log("  \(section) / \(m.displayName): \(formatValue(value, unit: unit)) \(unit)\(note.map { "  [\($0)]" } ?? "")\(warning.map { "  WARNING: \($0)" } ?? "")")
    }

    func run() async -> Report {
        log("berth-bench: \(registry.base), run \(runID)\(config.quick ? " (quick)" : ""), \(config.authDescription), sections: \(config.sections.map(\.rawValue).joined(separator: ","))")
        do {
            try await registry.ping()
        } catch {
            report.errors.append("registry not reachable: \(error)")
            report.meta.finishedAt = ISO8601DateFormatter().string(from: Date())
            return report
        }
        var idle: ProcMemory?
        if let sampler {
            idle = ProcMemory.sample(pid: sampler.pid)
            if idle == nil { report.errors.append("cannot read /proc/\(sampler.pid)/status") }
            sampler.start()
        }

        for s in config.sections {
            do {
                switch s {
                case .push: try await blobPush()
                case .pull: try await blobPull()
                case .images: try await imagePush()
                case .latency: try await latency()
                case .tags: try await tagList()
                case .catalog: try await catalog()
                case .contention: try await contention()
                case .gc: try await garbageCollection()
                }
            } catch {
                log("section \(s.rawValue) failed: \(error)")
                report.errors.append("\(s.rawValue): \(error)")
            }
        }

        if let sampler {
            sampler.stop()
            let end = ProcMemory.sample(pid: sampler.pid)
            let sec = "server memory (VmRSS/VmHWM from /proc/PID/status)"
            add(sec, "VmRSS idle, before run", "MiB", idle.map { Double($0.rssKiB) / 1024 }, .lower)
            for (name, kib) in rssWindows {
                add(sec, name, "MiB", kib.map { Double($0) / 1024 }, .lower)
            }
            add(sec, "peak VmRSS sampled over whole run", "MiB", sampler.sampleCount > 0 ? Double(sampler.overallPeakKiB) / 1024 : nil, .lower,
                note: "pid \(sampler.pid), \(sampler.sampleCount) samples @50 ms")
            add(sec, "VmRSS at end", "MiB", end.map { Double($0.rssKiB) / 1024 }, .lower)
            add(sec, "VmHWM at end (kernel peak)", "MiB", end.map { Double($0.hwmKiB) / 1024 }, .lower)
        }
        report.meta.finishedAt = ISO8601DateFormatter().string(from: Date())
        log("done")
        return report
    }

    var rssWindows: [(String, Int?)] = []

    // MARK: 1. Blob push

    func blobPush() async throws {
        let sizes = config.blobSizesMiB.map { $0 * MiB }
        guard let maxSize = sizes.max() else { return }
        let reps: (Int) -> Int = { size in size <= MiB ? 10 : (size <= 64 * MiB ? 3 : 2) }
        let slots = 3 * sizes.map(reps).reduce(0, +) + 8
        log("generating \(maxSize / MiB) MiB random payload…")
        let pool = PayloadPool(maxBlobSize: maxSize, slots: slots, rng: &rng)
        var slot = 0
        let repo = self.repo("blobs")
        let sec = "blob push"
        let chunk = config.chunkMiB * MiB

        enum Mode: CaseIterable { case monolithic, chunked, singlePost }
        var singlePostSupported: Bool?

        for mode in Mode.allCases {
            if mode == .singlePost {
                // Probe with a tiny blob so an unsupporting server isn't sent hundreds of MiB for nothing.
                let probe = pool.blob(slot: slot, size: 4096)
                slot += 1
                singlePostSupported = try await registry.pushBlobSinglePost(repo, probe, digest: sha256Digest(probe))
            }
            for size in sizes {
                let label = size >= MiB ? "\(size / MiB) MiB" : "\(size / 1024) KiB"
                let name: String
                switch mode {
                case .monolithic: name = "monolithic POST+PUT, \(label)"
                case .chunked: name = "chunked \(config.chunkMiB) MiB PATCHes, \(label)"
                case .singlePost: name = "single POST ?digest=, \(label)"
                }
                if mode == .singlePost, singlePostSupported == false {
                    add(sec, name, "MiB/s", nil, .higher, warning: "unsupported (server answered 202)")
                    continue
                }
                let isLargest = size == maxSize
                if isLargest, let sampler { sampler.beginWindow() }
                var rates: [Double] = []
                for _ in 0..<reps(size) {
                    let blob = pool.blob(slot: slot, size: size)
                    slot += 1
                    let digest = sha256Digest(blob)  // untimed
                    let t0 = benchClock.now
                    switch mode {
                    case .monolithic: try await registry.pushBlobMonolithic(repo, blob, digest: digest)
                    case .chunked: try await registry.pushBlobChunked(repo, blob, digest: digest, chunkSize: chunk)
                    case .singlePost:
                        guard try await registry.pushBlobSinglePost(repo, blob, digest: digest) else {
                            throw BenchError("single POST: server answered 202 for \(label) after accepting the probe")
                        }
                    }
                    let dt = (benchClock.now - t0).seconds
                    rates.append(Double(size) / Double(MiB) / dt)
                    // Untimed check that the registry has the blob with the right size.
                    let len = try await registry.headBlob(repo, digest)
                    guard len == size else {
                        throw BenchError("after push, HEAD \(digest) gave length \(len.map(String.init) ?? "404"), expected \(size)")
                    }
                    if isLargest, mode == .monolithic, pullBlob == nil { pullBlob = (repo, digest, size) }
                }
                if isLargest, let sampler {
                    let modeName = mode == .monolithic ? "monolithic" : (mode == .chunked ? "chunked" : "single-POST")
                    rssWindows.append(("peak VmRSS during \(label) \(modeName) push", sampler.endWindow()))
                }
                let note = rates.count > 1
                    ? String(format: "median of %d, range %.1f–%.1f", rates.count, rates.min()!, rates.max()!) : nil
                add(sec, name, "MiB/s", median(rates), .higher, note: note)
            }
        }
    }

    // MARK: 2. Blob pull

    func blobPull() async throws {
        let sec = "blob pull"
        if pullBlob == nil {
            // Pull-only run: push the blob first (untimed).
            let size = (config.blobSizesMiB.max() ?? 64) * MiB
            log("pull: pushing a \(size / MiB) MiB blob first (untimed)…")
            let pool = PayloadPool(maxBlobSize: size, slots: 1, rng: &rng)
            let blob = pool.blob(slot: 0, size: size)
            let digest = sha256Digest(blob)
            let repo = self.repo("blobs")
            try await registry.pushBlobMonolithic(repo, blob, digest: digest)
            pullBlob = (repo, digest, size)
        }
        let (repo, digest, size) = pullBlob!
        let label = "\(size / MiB) MiB"
        // Warm-up pass, untimed; verifies the digest if asked to.
        let warm = try await registry.getBlob(repo, digest, hash: config.verifyDigest)
        guard warm.bytes == size else { throw BenchError("GET blob returned \(warm.bytes) bytes, expected \(size)") }
        if config.verifyDigest {
            guard warm.digest == digest else { throw BenchError("GET blob: content digest \(warm.digest ?? "?") != \(digest)") }
        }
        if let sampler { sampler.beginWindow() }
        // The measure: a large-buffer blocking reader (see RawGet), as fast clients read. Then the same
        // pulls through AsyncHTTPClient, reported beside it.
        let blobURL = registry.url("/v2/\(repo)/blobs/\(digest)")
        let raw = registry.base.hasPrefix("http://")
        var rates: [Double] = []
        if raw {
            for _ in 0..<config.repeats {
                let t0 = benchClock.now
                let got = try await RawGet.run(url: blobURL, authorization: registry.authorization)
                let dt = (benchClock.now - t0).seconds
                guard got.status == 200, got.bodyBytes == size else {
                    throw BenchError("raw GET blob: status \(got.status), \(got.bodyBytes) bytes, expected 200 and \(size)")
                }
                rates.append(Double(size) / Double(MiB) / dt)
            }
        }
        var ahcRates: [Double] = []
        for _ in 0..<config.repeats {
            let t0 = benchClock.now
            let got = try await registry.getBlob(repo, digest)
            let dt = (benchClock.now - t0).seconds
            guard got.bytes == size else { throw BenchError("GET blob returned \(got.bytes) bytes, expected \(size)") }
            ahcRates.append(Double(size) / Double(MiB) / dt)
        }
        if let sampler { rssWindows.append(("peak VmRSS during \(label) pulls", sampler.endWindow())) }
        let verified = config.verifyDigest ? "; digest verified (untimed pass)" : ""
        if raw {
            add(sec, "GET \(label), warm", "MiB/s", median(rates), .higher,
                note: String(format: "median of %d, range %.1f–%.1f; blocking reader, 1 MiB buffer%@", rates.count, rates.min()!, rates.max()!, verified))
        }
        add(sec, raw ? "GET \(label), warm, AsyncHTTPClient" : "GET \(label), warm", "MiB/s", median(ahcRates), .higher,
            note: String(format: "median of %d, range %.1f–%.1f%@", ahcRates.count, ahcRates.min()!, ahcRates.max()!, verified))
        if raw { try await pullAfterPushAndCold(repo: repo, size: size) }
    }

    /// A CI pipeline pulls what it has just pushed: each of these blobs is pulled once, at once after its own
    /// push (fresh content each time). Then the cold pull: the page cache dropped before each pull
    /// (`/proc/sys/vm/drop_caches`, root only; reported as unavailable otherwise).
    func pullAfterPushAndCold(repo: String, size: Int) async throws {
        let sec = "blob pull"
        let label = "\(size / MiB) MiB"
        let rounds = max(2, min(config.repeats, 3))
        let pool = PayloadPool(maxBlobSize: size, slots: rounds, rng: &rng)
        var afterPush: [Double] = []
        var pushed: [String] = []
        for i in 0..<rounds {
            let blob = pool.blob(slot: i, size: size)
            let digest = sha256Digest(blob)
            try await registry.pushBlobMonolithic(repo, blob, digest: digest)
            afterPush.append(try await timedRawPull(repo, digest, size: size, what: "after push"))
            pushed.append(digest)
        }
        add(sec, "GET \(label), right after its push", "MiB/s", median(afterPush), .higher,
            note: String(format: "median of %d, range %.1f–%.1f; each blob pulled once, just pushed", afterPush.count,
                         afterPush.min()!, afterPush.max()!))
        var cold: [Double] = []
        for digest in pushed {
            guard dropPageCache() else { break }
            cold.append(try await timedRawPull(repo, digest, size: size, what: "cold"))
        }
        if cold.isEmpty {
            add(sec, "GET \(label), cold page cache", "MiB/s", nil, .higher, warning: "cannot drop the page cache (needs root)")
        } else {
            add(sec, "GET \(label), cold page cache", "MiB/s", median(cold), .higher,
                note: String(format: "median of %d, range %.1f–%.1f; sync + drop_caches before each", cold.count, cold.min()!, cold.max()!))
        }
    }

    /// One pull of the whole blob with the large-buffer reader, in MiB/s.
    func timedRawPull(_ repo: String, _ digest: String, size: Int, what: String) async throws -> Double {
        let t0 = benchClock.now
        let got = try await RawGet.run(url: registry.url("/v2/\(repo)/blobs/\(digest)"), authorization: registry.authorization)
        let dt = (benchClock.now - t0).seconds
        guard got.status == 200, got.bodyBytes == size else {
            throw BenchError("raw GET blob (\(what)): status \(got.status), \(got.bodyBytes) bytes, expected 200 and \(size)")
        }
        return Double(size) / Double(MiB) / dt
    }

    /// `sync; echo 3 > /proc/sys/vm/drop_caches`; false when not permitted.
    func dropPageCache() -> Bool {
        sync()
        guard let f = fopen("/proc/sys/vm/drop_caches", "w") else { return false }
        defer { fclose(f) }
        return fputs("3\n", f) >= 0 && fflush(f) == 0
    }

    // MARK: 3. Small-image push

    func makeImages(_ n: Int) -> [SmallImage] {
        var out: [SmallImage] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(SmallImage(layerSize: config.smallLayerBytes, rng: &rng)) }
        return out
    }

    /// Opens up to `concurrency` pooled connections before a measured level.
    func warmConnections(_ concurrency: Int) async {
        let registry = self.registry
        _ = await runLoad(concurrency: concurrency, duration: 0.3, maxOpsPerWorker: 20) { _, _ in try await registry.ping(); return true }
    }

    func imagePush() async throws {
        let sec = "small image push (config + \(config.smallLayerBytes) B layer + manifest by tag)"
        let repo = self.repo("images")
        let registry = self.registry
        for c in config.imageConcurrency {
            let cap = config.maxImagesPerLevel
            log("images: generating \(cap) unique images for c=\(c)…")
            let images = makeImages(cap)
            await warmConnections(c)
            let perWorker = (cap + c - 1) / c
            let r = await runLoad(concurrency: c, duration: config.duration, maxOpsPerWorker: perWorker) { w, seq in
                let i = seq * c + w
                guard i < images.count else { return false }
                try await images[i].push(to: registry, repo: repo, tag: "c\(c)-\(i)")
                return true
            }
            let note = "\(r.ok) images in \(String(format: "%.1f", r.elapsed)) s"
            let warning = r.errors > 0 ? "\(r.errors) errors, first: \(r.firstError ?? "")" : nil
            add(sec, "c=\(c)", "images/s", r.ok > 0 ? r.rate : nil, .higher, note: note, warning: warning)
            add(sec, "c=\(c) p50 per image", "ms", r.percentileMs(50), .lower)
            add(sec, "c=\(c) p99 per image", "ms", r.percentileMs(99), .lower)
        }
    }

    // MARK: 4. Manifest GET / blob HEAD latency

    func latency() async throws {
        let repo = self.repo("latency")
        var localRng = rng
        let image = SmallImage(layerSize: config.smallLayerBytes, rng: &localRng)
        rng = localRng
        try await image.push(to: registry, repo: repo, tag: "latest")
        let registry = self.registry
        let manifestSize = image.manifest.readableBytes
        let layerDigest = image.layerDigest
        let layerSize = image.layer.count

        let kinds: [(String, @Sendable () async throws -> Void)] = [
            ("manifest GET by tag", {
                let n = try await registry.getManifest(repo, reference: "latest")
                guard n == manifestSize else { throw BenchError("manifest GET returned \(n) bytes, expected \(manifestSize)") }
            }),
            ("blob HEAD", {
                let n = try await registry.headBlob(repo, layerDigest)
                guard n == layerSize else { throw BenchError("blob HEAD gave length \(n.map(String.init) ?? "404"), expected \(layerSize)") }
            }),
        ]
        // The measure: the wrk-style client (see RawLoad), so the server gets the machine; then the same
        // levels through AsyncHTTPClient, reported beside it.
        var rawTargets: [String: RawLoad.Target] = [:]
        if registry.base.hasPrefix("http://") {
            let auth = registry.authorization.map { [("Authorization", $0)] } ?? []
            func path(_ p: String) -> String { String(registry.url(p).dropFirst(registry.origin.count)) }
            rawTargets["manifest GET by tag"] = try RawLoad.target(
                base: registry.origin, method: "GET", path: path("/v2/\(repo)/manifests/latest"),
                headers: [("Accept", MediaType.manifestAccept)] + auth, expectedLength: manifestSize)
            rawTargets["blob HEAD"] = try RawLoad.target(
                base: registry.origin, method: "HEAD", path: path("/v2/\(repo)/blobs/\(layerDigest)"),
                headers: auth, expectedLength: layerSize)
        }
        let loadGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        func report(_ kind: String, _ c: Int, _ r: LoadResult) {
            let note = "\(r.ok) requests in \(String(format: "%.1f", r.elapsed)) s"
            let warning = r.errors > 0 ? "\(r.errors) errors, first: \(r.firstError ?? "")" : nil
            add(kind, "c=\(c)", "req/s", r.ok > 0 ? r.rate : nil, .higher, note: note, warning: warning)
            add(kind, "c=\(c) p50", "ms", r.percentileMs(50), .lower)
            add(kind, "c=\(c) p99", "ms", r.percentileMs(99), .lower)
        }
        do {
            for (kind, _) in kinds {
                guard let target = rawTargets[kind] else { continue }
                for c in config.latencyConcurrency {
                    let perWorker = max(1, config.maxRequestsPerLevel / c)
                    _ = try await RawLoad.run(target, concurrency: c, duration: config.warmup, maxOpsPerWorker: perWorker, group: loadGroup)
                    report(kind, c, try await RawLoad.run(target, concurrency: c, duration: config.duration, maxOpsPerWorker: perWorker, group: loadGroup))
                }
            }
        } catch {
            try? await loadGroup.shutdownGracefully()
            throw error
        }
        try? await loadGroup.shutdownGracefully()
        for (kind, op) in kinds {
            for c in config.latencyConcurrency {
                let perWorker = max(1, config.maxRequestsPerLevel / c)
                _ = await runLoad(concurrency: c, duration: config.warmup, maxOpsPerWorker: perWorker) { _, _ in try await op(); return true }
                let r = await runLoad(concurrency: c, duration: config.duration, maxOpsPerWorker: perWorker) { _, _ in try await op(); return true }
                report(rawTargets.isEmpty ? kind : "\(kind), AsyncHTTPClient", c, r)
            }
        }
    }

    // MARK: 5. Tag list

    struct TagList: Decodable { var name: String?; var tags: [String]? }
    struct Catalog: Decodable { var repositories: [String]? }

    struct Walk {
        var pages = 0
        var totalSeconds = 0.0
        var maxPageEntries = 0
        var entries: [String] = []
    }

    /// Follows `Link: <…>; rel="next"` from `firstURL`; only the requests (head + body) are timed, JSON
    /// decoding between pages is not. Bounded by `maxPages` and by cycle detection.
    func walk(_ firstURL: String, maxPages: Int, decode: (ByteBuffer) throws -> [String]) async throws -> Walk {
        var w = Walk()
        var next: String? = firstURL
        var visited = Set<String>()
        while let u = next {
            guard w.pages < maxPages else { throw BenchError("page walk exceeded \(maxPages) pages") }
            guard visited.insert(u).inserted else { throw BenchError("page walk cycle at \(u)") }
            let t0 = benchClock.now
            let page = try await registry.getPage(u)
            w.totalSeconds += (benchClock.now - t0).seconds
            w.pages += 1
            let items = try decode(page.body)
            w.maxPageEntries = max(w.maxPageEntries, items.count)
            w.entries.append(contentsOf: items)
            next = page.next
        }
        return w
    }

    func tagList() async throws {
        let n = config.tagCount
        let sec = "tag list (\(n) tags, 1 repo)"
        let repo = self.repo("tags")
        let registry = self.registry
        var localRng = rng
        let image = SmallImage(layerSize: config.smallLayerBytes, rng: &localRng)
        rng = localRng
        try await image.push(to: registry, repo: repo, tag: "base")
        let width = String(n).count
        let tags = (0..<n).map { "t" + String(repeating: "0", count: max(0, width - String($0).count)) + String($0) }
        log("tags: tagging one manifest \(n) times (setup, c=\(config.setupConcurrency))…")
        let manifest = image.manifest
        let t0 = benchClock.now
        try await forEachConcurrently(n, concurrency: config.setupConcurrency) { i in
            try await registry.putManifest(repo, reference: tags[i], manifest)
        }
        let setup = (benchClock.now - t0).seconds
        add(sec, "setup: manifest PUT by tag, c=\(config.setupConcurrency)", "req/s", Double(n) / setup, .higher,
            note: String(format: "%d PUTs in %.1f s (not part of the list timings)", n, setup))
        let expected = Set(tags + ["base"])
        let decode: (ByteBuffer) throws -> [String] = { buf in
            try JSONDecoder().decode(TagList.self, from: Data(buf.readableBytesView)).tags ?? []
        }

        let pageN = config.tagPageSize
        var walks: [Walk] = []
        for _ in 0..<config.repeats {
            let w = try await walk(registry.url("/v2/\(repo)/tags/list?n=\(pageN)"), maxPages: expected.count / max(1, pageN) + 10, decode: decode)
            guard Set(w.entries) == expected, w.entries.count == expected.count else {
                throw BenchError("tags/list?n=\(pageN) walk returned \(w.entries.count) tags (\(Set(w.entries).count) distinct), expected \(expected.count)")
            }
            walks.append(w)
        }
        let w = walks.sorted { $0.totalSeconds < $1.totalSeconds }[walks.count / 2]
        let paginated = w.maxPageEntries <= pageN
        let pageNote = paginated ? nil : "server ignored n=\(pageN): returned \(w.maxPageEntries) tags in one page"
        add(sec, "n=\(pageN) walk: pages", "pages", Double(w.pages), .none, warning: pageNote)
        add(sec, "n=\(pageN) walk: total", "ms", w.totalSeconds * 1000, .lower, note: "median of \(walks.count) walks")
        add(sec, "n=\(pageN) walk: per page", "ms", w.totalSeconds * 1000 / Double(w.pages), .lower)

        // Without n: a single request on most servers. If the server paginates anyway, follow its Links and time
        // the whole walk (flagged), so the figure still covers the full tag set.
        var singles: [Walk] = []
        for _ in 0..<config.repeats {
            let w = try await walk(registry.url("/v2/\(repo)/tags/list"), maxPages: expected.count + 10, decode: decode)
            guard Set(w.entries) == expected, w.entries.count == expected.count else {
                throw BenchError("tags/list (no n) returned \(w.entries.count) tags (\(Set(w.entries).count) distinct), expected \(expected.count)")
            }
            singles.append(w)
        }
        // The key ("unpaginated (no n)") is the same either way so the two servers line up in a comparison; the
        // variant says which it was, in the report line itself.
        let s = singles.sorted { $0.totalSeconds < $1.totalSeconds }[singles.count / 2]
        let linkWalk = s.pages > 1
        add(sec, "unpaginated (no n)", "ms", s.totalSeconds * 1000, .lower,
            variant: linkWalk ? "Link walk, \(s.pages) pages" : "single request",
            note: "median of \(singles.count); \(s.entries.count) tags",
            warning: linkWalk ? "server paginated tags/list without n: \(s.pages) pages of up to \(s.maxPageEntries) tags; the time is the whole Link walk, not one request" : nil)
    }

    // MARK: 6. Catalog

    func catalog() async throws {
        let n = config.repoCount
        let sec = "catalog (\(n) new repos)"
        let registry = self.registry
        var localRng = rng
        let image = SmallImage(layerSize: config.smallLayerBytes, rng: &localRng)
        rng = localRng
        let width = String(n).count
        let repos = (0..<n).map { self.repo("cat/r" + String(repeating: "0", count: max(0, width - String($0).count)) + String($0)) }
        log("catalog: pushing a tiny image into \(n) repositories (setup, c=\(config.setupConcurrency))…")
        let t0 = benchClock.now
        try await forEachConcurrently(n, concurrency: config.setupConcurrency) { i in
            try await image.push(to: registry, repo: repos[i], tag: "v1")
        }
        let setup = (benchClock.now - t0).seconds
        add(sec, "setup: tiny image push to new repo, c=\(config.setupConcurrency)", "images/s", Double(n) / setup, .higher,
            note: String(format: "%d images in %.1f s (not part of the walk timings)", n, setup))
        let ours = Set(repos)
        let decode: (ByteBuffer) throws -> [String] = { buf in
            try JSONDecoder().decode(Catalog.self, from: Data(buf.readableBytesView)).repositories ?? []
        }
        var total = 0
        for pageN in config.catalogPageSizes {
            var walks: [Walk] = []
            for _ in 0..<config.repeats {
                let w = try await walk(registry.url("/v2/_catalog?n=\(pageN)"), maxPages: 1_000_000 / pageN + 100, decode: decode)
                let seen = Set(w.entries)
                let missing = ours.subtracting(seen)
                guard missing.isEmpty else {
                    throw BenchError("_catalog?n=\(pageN) walk is missing \(missing.count) of our \(n) repositories (e.g. \(missing.first!))")
                }
                guard seen.count == w.entries.count else {
                    throw BenchError("_catalog?n=\(pageN) walk returned duplicates (\(w.entries.count) entries, \(seen.count) distinct)")
                }
                walks.append(w)
            }
            let w = walks.sorted { $0.totalSeconds < $1.totalSeconds }[walks.count / 2]
            total = w.entries.count
            let note = w.maxPageEntries > pageN ? "server ignored n=\(pageN): \(w.maxPageEntries) in one page" : nil
            add(sec, "n=\(pageN) walk: pages", "pages", Double(w.pages), .none, warning: note)
            add(sec, "n=\(pageN) walk: total", "ms", w.totalSeconds * 1000, .lower, note: "median of \(walks.count) walks")
            add(sec, "n=\(pageN) walk: per page", "ms", w.totalSeconds * 1000 / Double(w.pages), .lower)
        }
        add(sec, "repositories listed in total", "repos", Double(total), .none,
            note: total > n ? "catalog also holds \(total - n) repositories from other sections/runs" : nil)
    }
}

extension Bench {
    // MARK: 7. Manifest GET under contention

    /// Manifest GET by tag at the highest latency concurrency (64), first on a quiet server, then while the
    /// largest blob size (512 MiB) is pushed back to back, each time a fresh blob, and `--contention-command`
    /// runs again and again (bench-compare gives Berth a `berth admin` write that holds SQLite's write lock,
    /// `scripts/admin-writer`). The figures are p50, p99 and the maximum of the GETs and their rate; the
    /// notes say how many pushes and commands ran meanwhile. `http://` only (the wrk-style client).
    func contention() async throws {
        guard registry.base.hasPrefix("http://") else { throw BenchError("contention: http:// only (raw load client)") }
        let sec = "manifest GET by tag under contention"
        let repo = self.repo("contention")
        let target = try await manifestGetTarget(repo: repo)
        let size = (config.blobSizesMiB.max() ?? 512) * (1 << 20)
        let maxPushes = 4
        log("contention: generating \(size >> 20) MiB random payload…")
        let pool = PayloadPool(maxBlobSize: size, slots: maxPushes, rng: &rng)
        let blobs = (0..<maxPushes).map { pool.blob(slot: $0, size: size) }
        let digests = blobs.map(sha256Digest)  // untimed

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await contention(sec, repo: repo, target: target, blobs: blobs, digests: digests, group: group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
    }

    /// Pushes a small image tagged `latest` to `repo` and returns the raw-client target of its manifest GET by tag.
    func manifestGetTarget(repo: String) async throws -> RawLoad.Target {
        var localRng = rng
        let image = SmallImage(layerSize: config.smallLayerBytes, rng: &localRng)
        rng = localRng
        try await image.push(to: registry, repo: repo, tag: "latest")
        let auth = registry.authorization.map { [("Authorization", $0)] } ?? []
        return try RawLoad.target(
            base: registry.origin, method: "GET",
            path: String(registry.url("/v2/\(repo)/manifests/latest").dropFirst(registry.origin.count)),
            headers: [("Accept", MediaType.manifestAccept)] + auth, expectedLength: image.manifest.readableBytes)
    }

    private func contention(_ sec: String, repo: String, target: RawLoad.Target, blobs: [ByteBuffer], digests: [String],
                            group: MultiThreadedEventLoopGroup) async throws {
        let c = config.latencyConcurrency.max() ?? 64
        let perWorker = max(1, config.maxRequestsPerLevel / c)
        let size = blobs[0].readableBytes
        func report(_ name: String, _ r: LoadResult, note: String) {
            let warning = r.errors > 0 ? "\(r.errors) errors, first: \(r.firstError ?? "")" : nil
            add(sec, "\(name), c=\(c)", "req/s", r.ok > 0 ? r.rate : nil, .higher, note: "\(r.ok) requests in \(String(format: "%.1f", r.elapsed)) s; \(note)", warning: warning)
            add(sec, "\(name), c=\(c) p50", "ms", r.percentileMs(50), .lower)
            add(sec, "\(name), c=\(c) p99", "ms", r.percentileMs(99), .lower)
            add(sec, "\(name), c=\(c) max", "ms", r.percentileMs(100), .lower)
        }

        _ = try await RawLoad.run(target, concurrency: c, duration: config.warmup, maxOpsPerWorker: perWorker, group: group)
        let quiet = try await RawLoad.run(target, concurrency: c, duration: config.duration, maxOpsPerWorker: perWorker, group: group)
        report("quiet", quiet, note: "nothing else running")

        // The contenders start, then the measure runs for `duration` seconds; both stop when it ends.
        let commands = config.contentionCommand.map { CommandLoop(command: $0) }
        commands?.start()
        let registry = self.registry
        let stop = StopFlag()
        let pusher = Task { () -> (count: Int, error: String?) in
            var n = 0
            while n < blobs.count, !stop.isSet {
                do { try await registry.pushBlobMonolithic(repo, blobs[n], digest: digests[n]) } catch { return (n, "\(error)") }
                n += 1
            }
            return (n, nil)
        }
        try await Task.sleep(for: .milliseconds(300))  // the first push is under way
        let loaded: LoadResult
        do {
            loaded = try await RawLoad.run(target, concurrency: c, duration: config.duration, maxOpsPerWorker: perWorker, group: group)
        } catch {
            stop.set()
            _ = await pusher.value
            _ = await commands?.stop()
            throw error
        }
        stop.set()
        let pushes = await pusher.value
        let ran = await commands?.stop()
        var note = "meanwhile \(pushes.count) push(es) of \(size >> 20) MiB started and finished"
        if let ran { note += ", contention command ran \(ran.runs) time(s) (\(ran.failures) failed)" } else { note += ", no contention command" }
        if let e = pushes.error { note += "; push failed: \(e)" }
        report("during \(size >> 20) MiB push\(commands == nil ? "" : " + command")", loaded, note: note)
    }
}

/// A flag set once, read from any thread.
final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Runs `/bin/sh -c command` again and again on a thread of its own until `stop`, which waits for the
/// run in progress to finish (so a held lock is released before the next measure).
final class CommandLoop: @unchecked Sendable {
    let command: String
    private let lock = NSLock()
    private var stopping = false
    private var runs = 0
    private var failures = 0
    private let done = DispatchSemaphore(value: 0)

    init(command: String) { self.command = command }

    func start() {
        Thread.detachNewThread { [self] in
            while !lock.withLock({ stopping }) {
                let p = Process()
                p.executableURL = URL(fileURLWithPath: "/bin/sh")
                p.arguments = ["-c", command]
                p.standardOutput = FileHandle.nullDevice
                var ok = false
                do {
                    try p.run()
                    p.waitUntilExit()
                    ok = p.terminationStatus == 0
                } catch {}
                lock.withLock {
                    runs += 1
                    if !ok { failures += 1 }
                }
                if !ok { Thread.sleep(forTimeInterval: 0.1) }
            }
            done.signal()
        }
    }

    func stop() async -> (runs: Int, failures: Int) {
        lock.withLock { stopping = true }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async { self.done.wait(); c.resume() }
        }
        return lock.withLock { (runs, failures) }
    }
}
