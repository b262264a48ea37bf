import BerthCore
import BerthECR
import BerthGallery
import BerthRegistry
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// The public gallery (`GET`/`HEAD /gallery/**`): server-rendered pages over the ECR Public repositories,
/// and their logos. Pages read the registry through `Registry` only (the list and search pages in one
/// store query), render with BerthGallery, and answer with a strict Content-Security-Policy, an ETag
/// (a matching `If-None-Match` gets 304) and a short public cache lifetime.
///
/// - `/gallery/` front page, `/gallery/search?q=…`, `/gallery/<alias>/`, `/gallery/<alias>/<name>`;
/// - `/gallery/<alias>/<name>/logo` the logo (served even when the pages are off: ECR Public's `logoUrl`);
/// - `/gallery/static/gallery.css`, `/gallery/static/gallery.js`.
///
/// The list, search and registry pages share one read of every public repository per 2 seconds (a page
/// may be that much behind a push); repository pages read their repository on every request.
///
/// Only public repositories are ever read: a private repository of the same name is a different key, so
/// it is the same 404 as no repository at all.
public struct GalleryHandler: Sendable {
    let registry: Registry
    let renderer: GalleryRenderer
    /// False when the gallery is switched off: every page is 404, logos are still served.
    let pagesEnabled: Bool
    /// The list of public repositories, read at most once per `summaryTTL` (with and without the texts).
    let summaries: SummaryCache
    let textSummaries: SummaryCache

    /// `summaryTTL`: how long the list and search pages reuse one read of every public repository (0: every
    /// request reads). Concurrent requests share one read in flight.
    public init(registry: Registry, host: String, pagesEnabled: Bool = true, summaryTTL: Duration = .seconds(2)) {
        self.registry = registry
        self.renderer = GalleryRenderer(host: host)
        self.pagesEnabled = pagesEnabled
        self.summaries = SummaryCache(ttl: summaryTTL)
        self.textSummaries = SummaryCache(ttl: summaryTTL)
    }

    /// One read of the public repositories shared by the requests of `ttl` (single flight: a read in progress is awaited).
    final class SummaryCache: Sendable {
        let ttl: Duration
        let state = Mutex<(started: ContinuousClock.Instant, task: Task<[PublicRepositorySummary], any Error>)?>(nil)

        init(ttl: Duration) { self.ttl = ttl }

        func get(_ read: @escaping @Sendable () async throws -> [PublicRepositorySummary]) async throws -> [PublicRepositorySummary] {
            let now = ContinuousClock.now
            let task = state.withLock { s in
                if let s, s.started.duration(to: now) < ttl { return s.task }
                let t = Task { try await read() }
                s = (now, t)
                return t
            }
            do {
                return try await task.value
            } catch {
                // A failed read is not kept.
                state.withLock { s in if s?.task == task { s = nil } }
                throw error
            }
        }
    }

    func publicRepositories(includingTexts: Bool) async throws -> [PublicRepositorySummary] {
        let registry = self.registry
        return try await (includingTexts ? textSummaries : summaries).get {
            try await registry.publicRepositorySummaries(includingTexts: includingTexts)
        }
    }

    static let contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https:; "
        + "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    static let pageCacheControl = "public, max-age=30"
    static let staticCacheControl = "public, max-age=3600"

    func handle(_ request: Request, context: BerthRequestContext) async throws -> Response {
        let path = request.uri.path
        let head = request.method == .head
        context.record.set(door: .gallery, operation: "notFound")
        guard path.hasPrefix("/gallery/") else {
            guard pagesEnabled, path == "/gallery" else { return notFound(head: head, html: false) }
            return Response(status: .movedPermanently, headers: [.location: "/gallery/", .contentLength: "0"])
        }
        let parts = path.dropFirst("/gallery/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        // A logo first: `…/<name>/logo` is the logo of `<name>` when that repository has one.
        if parts.count >= 3, parts.last == "logo", let response = try await logo(parts, request, context, head: head) {
            return response
        }
        guard pagesEnabled else { return notFound(head: head, html: false) }
        let query = GalleryQuery(parameters: Self.queryParameters(request.uri.query))
        switch parts.count {
        case 1 where parts[0] == "":
            context.record.set(operation: "frontPage")
            let all = try await publicRepositories(includingTexts: false)
            return page(renderer.frontPage(all, query), request)
        case 1 where parts[0] == "search":
            context.record.set(operation: "search")
            let all = try await publicRepositories(includingTexts: !query.text.isEmpty)
            return page(renderer.searchPage(all, query), request)
        case 2 where parts[0] == "static":
            context.record.set(operation: "static")
            switch parts[1] {
            case "gallery.css": return asset(GalleryRenderer.stylesheet, type: "text/css; charset=utf-8", request)
            case "gallery.js": return asset(GalleryRenderer.script, type: "text/javascript; charset=utf-8", request)
            default: return notFound(head: head, html: true)
            }
        case 1 where PublicRegistry.account(ofAlias: parts[0]) != nil:
            return Response(status: .movedPermanently, headers: [.location: "/gallery/\(parts[0])/", .contentLength: "0"])
        case 2 where parts[1] == "" && PublicRegistry.account(ofAlias: parts[0]) != nil:
            context.record.set(operation: "registry")
            let account = PublicRegistry.account(ofAlias: parts[0])!
            let all = try await publicRepositories(includingTexts: false)
            let mine = all.filter { $0.key.registry.account == account }
            // A registry without public repositories is not shown (it would tell that the account exists).
            guard let first = mine.first else { return notFound(head: head, html: true) }
            return page(renderer.registryPage(alias: parts[0], displayName: first.registryDisplayName, mine, query), request)
        default:
            guard parts.count >= 2, let account = PublicRegistry.account(ofAlias: parts[0]),
                  let name = try? RepositoryName(parts[1...].joined(separator: "/")) else { return notFound(head: head, html: true) }
            context.record.set(operation: "repository")
            let key = RepositoryKey(registry: .public(account), name: name)
            guard let data = try await repositoryPage(key, page: query.page) else { return notFound(head: head, html: true) }
            return page(renderer.repositoryPage(data), request)
        }
    }

    /// The data of a repository page: the record, every image (one store query per 1,000), and for the
    /// tags shown, their platforms and scans (one scan query).
    func repositoryPage(_ key: RepositoryKey, page: Int) async throws -> GalleryRepositoryPage? {
        guard let record = try await registry.findRepository(key) else { return nil }
        var images: [ImageSummary] = []
        var after: String? = nil
        while true {
            let batch = try await registry.images(in: key, after: after, limit: 1000)
            images += batch.prefix(1000)
            guard batch.count > 1000, let last = images.last else { break }
            after = last.digest.description
        }
        var catalog = record.settings.catalog ?? PublicCatalogData()
        let hasLogo = catalog.logoBase64 != nil
        catalog.logoBase64 = nil
        let rows = images.flatMap { image in image.tags.map { (tag: $0, image: image) } }
            .sorted { $0.image.pushedAt != $1.image.pushedAt ? $0.image.pushedAt > $1.image.pushedAt : $0.tag < $1.tag }
        let summary = PublicRepositorySummary(
            key: key, createdAt: record.createdAt, catalog: catalog, hasLogo: hasLogo, tagCount: rows.count,
            lastPushedAt: images.map(\.pushedAt).max(), lastPulledAt: images.compactMap(\.lastPulledAt).max(),
            downloadCount: images.reduce(0) { $0 + $1.downloadCount },
            registryDisplayName: try await registry.publicRegistryDisplayName(of: key.registry.account))
        let size = GalleryRenderer.tagPageSize
        let pages = max(1, (rows.count + size - 1) / size)
        let current = min(page, pages)
        let shown = rows.dropFirst((current - 1) * size).prefix(size)
        let digests = Array(Set(shown.map(\.image.digest)))
        let scans = try await registry.scans(of: digests, in: key)
        var platforms: [Digest: [Descriptor.Platform]] = [:]
        for d in digests { platforms[d] = try await registry.platforms(of: d, in: key) }
        let tags = shown.map { row in
            GalleryTag(tag: row.tag, digest: row.image.digest.description, pushedAt: row.image.pushedAt,
                       imageSize: row.image.imageSize, platforms: platforms[row.image.digest] ?? [],
                       scan: scans[row.image.digest].map(GalleryScanSummary.init), downloads: row.image.downloadCount)
        }
        let pullTag = rows.contains { $0.tag == "latest" } ? "latest" : rows.first?.tag
        return GalleryRepositoryPage(repository: summary, tags: tags, pullTag: pullTag, page: current, pages: pages)
    }

    /// `GET /gallery/<alias>/<name>/logo`: a public repository's logo (ECR Public's `logoUrl`); nil when
    /// that repository has none (the path may then name a repository whose name ends in `/logo`).
    func logo(_ parts: [String], _ request: Request, _ context: BerthRequestContext, head: Bool) async throws -> Response? {
        guard let account = PublicRegistry.account(ofAlias: parts[0]),
              let name = try? RepositoryName(parts[1..<(parts.count - 1)].joined(separator: "/")),
              let record = try await registry.findRepository(RepositoryKey(registry: .public(account), name: name)),
              let logo = record.settings.catalog?.logoBase64, let data = Data(base64Encoded: logo) else {
            return pagesEnabled ? nil : OCIWireError.notFound("no such logo").response(head: head)
        }
        context.record.set(operation: "logo")
        let bytes = [UInt8](data)
        let type: String
        if bytes.starts(with: [0x89, 0x50, 0x4e, 0x47]) { type = "image/png" }
        else if bytes.starts(with: [0xff, 0xd8, 0xff]) { type = "image/jpeg" }
        else if bytes.starts(with: Array("GIF8".utf8)) { type = "image/gif" }
        else { type = "application/octet-stream" }
        return respond(bytes, type: type, cacheControl: "public, max-age=300", request)
    }

    // MARK: responses

    func page(_ html: String, _ request: Request) -> Response {
        respond(Array(html.utf8), type: "text/html; charset=utf-8", cacheControl: Self.pageCacheControl, request)
    }

    func asset(_ text: String, type: String, _ request: Request) -> Response {
        respond(Array(text.utf8), type: type, cacheControl: Self.staticCacheControl, request)
    }

    static let contentSecurityPolicyField = HTTPField.Name("Content-Security-Policy")!
    static let contentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
    static let frameOptions = HTTPField.Name("X-Frame-Options")!

    static func securityHeaders(_ headers: inout HTTPFields) {
        headers[contentSecurityPolicyField] = contentSecurityPolicy
        headers[contentTypeOptions] = "nosniff"
        headers[referrerPolicy] = "same-origin"
        headers[frameOptions] = "DENY"
    }

    /// 200 with the body and its ETag, or 304 when `If-None-Match` names that ETag; no body for HEAD.
    func respond(_ bytes: [UInt8], type: String, cacheControl: String, _ request: Request) -> Response {
        let etag = "\"" + Digest.sha256(of: bytes).encoded.prefix(32) + "\""
        var headers: HTTPFields = [.contentType: type, .cacheControl: cacheControl, .eTag: etag]
        Self.securityHeaders(&headers)
        if let inm = request.headers[.ifNoneMatch],
           inm.split(separator: ",").contains(where: { let t = $0.trimmingCharacters(in: .whitespaces); return t == etag || t == "W/" + etag || t == "*" }) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(bytes.count)
        guard request.method != .head else { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    func notFound(head: Bool, html: Bool) -> Response {
        guard html else { return OCIWireError.notFound("not found").response(head: head) }
        let bytes = Array(renderer.notFoundPage().utf8)
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .contentLength: String(bytes.count), .cacheControl: "no-cache"]
        Self.securityHeaders(&headers)
        return Response(status: .notFound, headers: headers, body: head ? .init() : .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// A query string's parameters, decoded as a form (`+` is a space); parameters that do not decode are left out.
    static func queryParameters(_ query: String?) -> [(String, String)] {
        guard let query, !query.isEmpty else { return [] }
        return query.split(separator: "&").compactMap { pair in
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = PercentEncoding.decodeFormComponent(kv[0].utf8),
                  let v = PercentEncoding.decodeFormComponent(kv.count > 1 ? kv[1].utf8 : Substring("").utf8) else { return nil }
            return (k, v)
        }
    }
}
