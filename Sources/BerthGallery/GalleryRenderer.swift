import BerthCore
import BerthSupport
import Foundation
import Mustache

/// One tag of a repository page: the image it names, its platforms (from the index, or the config of a
/// single image) and the summary of its scan.
public struct GalleryTag: Sendable, Equatable {
    public var tag: String
    public var digest: String
    public var pushedAt: Double
    public var imageSize: Int64
    public var platforms: [Descriptor.Platform]
    public var scan: GalleryScanSummary?
    /// Downloads of the image the tag names (every tag of an image shows the image's count).
    public var downloads: Int64

    public init(tag: String, digest: String, pushedAt: Double, imageSize: Int64, platforms: [Descriptor.Platform], scan: GalleryScanSummary?,
                downloads: Int64 = 0) {
        self.downloads = downloads
        self.tag = tag
        self.digest = digest
        self.pushedAt = pushedAt
        self.imageSize = imageSize
        self.platforms = platforms
        self.scan = scan
    }
}

/// A scan's state and its findings counted by severity.
public struct GalleryScanSummary: Sendable, Equatable {
    public var state: ImageScanState
    public var counts: [ScanSeverity: Int]

    public init(state: ImageScanState, counts: [ScanSeverity: Int]) {
        self.state = state
        self.counts = counts
    }

    public init(_ scan: ImageScanRecord) {
        var counts: [ScanSeverity: Int] = [:]
        for f in scan.findings { counts[f.severity, default: 0] += 1 }
        self.init(state: scan.state, counts: counts)
    }

    public var text: String {
        switch state {
        case .pending, .inProgress: return "Scan in progress"
        case .failed: return "Scan failed"
        case .unsupportedImage: return "Unsupported image"
        case .complete:
            let parts = ScanSeverity.allCases.compactMap { s in counts[s].map { "\($0) \(s.rawValue.lowercased())" } }
            return parts.isEmpty ? "No findings" : parts.joined(separator: ", ")
        }
    }
}

/// What a repository page shows: the repository (with its texts), one page of its tags (newest first).
public struct GalleryRepositoryPage: Sendable {
    public var repository: PublicRepositorySummary
    public var tags: [GalleryTag]
    /// The tag the pull commands name (`latest` when there is one, else the newest).
    public var pullTag: String?
    public var page: Int
    public var pages: Int

    public init(repository: PublicRepositorySummary, tags: [GalleryTag], pullTag: String?, page: Int, pages: Int) {
        self.repository = repository
        self.tags = tags
        self.pullTag = pullTag
        self.page = page
        self.pages = pages
    }
}

/// Renders the gallery's pages from view data (pure: no I/O). `host` is what pull commands name
/// (`<host>/public/<alias>/<name>`), the registry's public endpoint without its scheme.
public struct GalleryRenderer: Sendable {
    public static let pageSize = 24
    public static let tagPageSize = 50
    public static let pulledOnFrontPage = 6

    let library: MustacheLibrary
    public let host: String

    public init(host: String) {
        self.host = host
        var library = MustacheLibrary()
        // The templates are constants of this target; a parse error is a programming error caught by every test.
        let templates: [(String, String)] = [
            ("head", GalleryTemplates.head), ("foot", GalleryTemplates.foot), ("card", GalleryTemplates.card),
            ("filters", GalleryTemplates.filters), ("pager", GalleryTemplates.pager), ("list", GalleryTemplates.list),
            ("repository", GalleryTemplates.repository), ("notFound", GalleryTemplates.notFound),
        ]
        for (name, text) in templates {
            do { try library.register(text, named: name) } catch { fatalError("gallery template \(name): \(error)") }
        }
        self.library = library
    }

    public static var stylesheet: String { GalleryTemplates.stylesheet }
    public static var script: String { GalleryTemplates.script }

    func render(_ template: String, _ values: [String: Any]) -> String {
        var values = values
        values["host"] = host
        return library.render(values, withTemplate: template) ?? ""
    }

    // MARK: list pages

    /// `/gallery/`: recently pushed repositories (paged) and, on the first page, the most pulled ones.
    public func frontPage(_ all: [PublicRepositorySummary], _ query: GalleryQuery) -> String {
        let filtered = GallerySearch.filter(all, query)
        let pushed = GallerySearch.recentlyPushed(filtered)
        var sections = [section("pushed", "Recently pushed", pushed, query, path: "/gallery/", empty: "No public repositories yet.")]
        if query.page == 1 {
            let pulled = Array(GallerySearch.mostPulled(filtered).prefix(Self.pulledOnFrontPage))
            if !pulled.isEmpty {
                sections.insert(["id": "pulled", "title": "Most pulled", "hasCards": true, "cards": pulled.map(card)], at: 0)
            }
        }
        return render("list", listValues(title: "Public repositories", heading: "Public repositories",
                                           intro: "\(all.count) public \(all.count == 1 ? "repository" : "repositories"). Pull any of them without credentials.",
                                           all: all, query: query, action: "/gallery/", sections: sections))
    }

    /// `/gallery/search?q=…`: the matches, best first (see `GallerySearch.rank`).
    public func searchPage(_ all: [PublicRepositorySummary], _ query: GalleryQuery) -> String {
        let found = GallerySearch.search(all, query)
        let heading = query.text.isEmpty ? "All public repositories" : "Results for “\(query.text)”"
        let s = section("results", "\(found.count) \(found.count == 1 ? "repository" : "repositories")", found, query,
                        path: "/gallery/search", empty: "No public repository matches.")
        return render("list", listValues(title: query.text.isEmpty ? "Search" : "Search: \(query.text)", heading: heading, intro: nil,
                                           all: all, query: query, action: "/gallery/search", sections: [s]))
    }

    /// `/gallery/<alias>/`: one registry's repositories, by name.
    public func registryPage(alias: String, displayName: String?, _ repositories: [PublicRepositorySummary], _ query: GalleryQuery) -> String {
        let filtered = GallerySearch.filter(repositories, query).sorted { $0.key < $1.key }
        let name = displayName ?? alias
        let s = section("repositories", "Repositories", filtered, query, path: "/gallery/\(alias)/", empty: "No public repositories.")
        return render("list", listValues(title: name, heading: name, intro: "Registry alias \(alias) · \(repositories.count) public \(repositories.count == 1 ? "repository" : "repositories")",
                                           all: repositories, query: query, action: "/gallery/\(alias)/", sections: [s]))
    }

    func listValues(title: String, heading: String, intro: String?, all: [PublicRepositorySummary], query: GalleryQuery,
                    action: String, sections: [[String: Any]]) -> [String: Any] {
        func options(_ values: [String], _ selected: String?) -> [[String: Any]] {
            values.map { value in
                ["value": value, "selected": selected.map { $0.caseInsensitiveCompare(value) == .orderedSame } ?? false] as [String: Any]
            }
        }
        var v: [String: Any] = [
            "title": title, "heading": heading, "queryText": query.text, "hasQuery": !query.text.isEmpty, "action": action,
            "architectures": options(GallerySearch.facets(all) { $0.catalog.architectures }, query.architecture),
            "operatingSystems": options(GallerySearch.facets(all) { $0.catalog.operatingSystems }, query.operatingSystem),
            "sections": sections,
        ]
        if let intro { v["intro"] = intro }
        return v
    }

    func section(_ id: String, _ title: String, _ repositories: [PublicRepositorySummary], _ query: GalleryQuery,
                 path: String, empty: String) -> [String: Any] {
        let pages = max(1, (repositories.count + Self.pageSize - 1) / Self.pageSize)
        let page = min(query.page, pages)
        let shown = repositories.dropFirst((page - 1) * Self.pageSize).prefix(Self.pageSize)
        var s: [String: Any] = ["id": id, "title": title, "hasCards": !shown.isEmpty, "cards": shown.map(card)]
        if shown.isEmpty { s["empty"] = empty }
        if pages > 1 { s["pager"] = pager(page: page, pages: pages) { Self.listURL(path, query, page: $0) } }
        return s
    }

    func pager(page: Int, pages: Int, url: (Int) -> String) -> [String: Any] {
        var p: [String: Any] = ["page": page, "pages": pages]
        if page > 1 { p["previous"] = url(page - 1) }
        if page < pages { p["next"] = url(page + 1) }
        return p
    }

    static func listURL(_ path: String, _ query: GalleryQuery, page: Int) -> String {
        var parts: [String] = []
        if !query.text.isEmpty { parts.append("q=" + PercentEncoding.encoded(query.text)) }
        if let a = query.architecture { parts.append("arch=" + PercentEncoding.encoded(a)) }
        if let o = query.operatingSystem { parts.append("os=" + PercentEncoding.encoded(o)) }
        if page > 1 { parts.append("page=\(page)") }
        return parts.isEmpty ? path : path + "?" + parts.joined(separator: "&")
    }

    static func repositoryPath(_ key: RepositoryKey) -> String {
        "/gallery/\(PublicRegistry.alias(of: key.registry.account))/\(key.name)"
    }

    func card(_ r: PublicRepositorySummary) -> [String: Any] {
        let path = Self.repositoryPath(r.key)
        var c: [String: Any] = [
            "href": path, "name": r.key.name, "initial": String(r.key.name.split(separator: "/").last?.first ?? "?"),
            "registry": r.registryDisplayName ?? PublicRegistry.alias(of: r.key.registry.account),
            "platforms": Self.platformBadges(r.catalog), "hasPlatforms": !Self.platformBadges(r.catalog).isEmpty,
            "meta": Self.meta(r),
        ]
        if r.hasLogo { c["logo"] = path + "/logo" }
        if let d = r.catalog.description, !d.isEmpty { c["description"] = d }
        return c
    }

    static func platformBadges(_ c: PublicCatalogData) -> [String] { (c.operatingSystems ?? []) + (c.architectures ?? []) }

    static func meta(_ r: PublicRepositorySummary) -> String {
        var parts: [String] = []
        if let p = r.lastPushedAt { parts.append("Pushed \(date(p))") } else { parts.append("No images yet") }
        parts.append("\(r.tagCount) \(r.tagCount == 1 ? "tag" : "tags")")
        parts.append(downloads(r.downloadCount))
        if let p = r.lastPulledAt { parts.append("Last pulled \(date(p))") }
        return parts.joined(separator: " · ")
    }

    // MARK: repository page

    public func repositoryPage(_ page: GalleryRepositoryPage) -> String {
        let r = page.repository
        let alias = PublicRegistry.alias(of: r.key.registry.account)
        let path = Self.repositoryPath(r.key)
        var v: [String: Any] = [
            "title": r.key.name, "queryText": "", "name": r.key.name, "registry": r.registryDisplayName ?? alias,
            "registryHref": "/gallery/\(alias)/", "initial": String(r.key.name.split(separator: "/").last?.first ?? "?"),
            "platforms": Self.platformBadges(r.catalog), "hasPlatforms": !Self.platformBadges(r.catalog).isEmpty,
            "meta": Self.meta(r), "tagCount": r.tagCount, "hasTags": !page.tags.isEmpty,
            "tags": page.tags.map(tagRow),
        ]
        if r.hasLogo { v["logo"] = path + "/logo" }
        if let d = r.catalog.description, !d.isEmpty { v["description"] = d }
        if let t = r.catalog.aboutText, !t.isEmpty { v["aboutHTML"] = SafeMarkdown.html(t) }
        if let t = r.catalog.usageText, !t.isEmpty { v["usageHTML"] = SafeMarkdown.html(t) }
        if let tag = page.pullTag {
            let ref = "\(host)/public/\(alias)/\(r.key.name):\(tag)"
            v["pullTag"] = tag
            v["hasPullCommands"] = true
            v["pullCommands"] = [
                ["tool": "docker", "command": "docker pull \(ref)"],
                ["tool": "podman", "command": "podman pull \(ref)"],
                ["tool": "skopeo", "command": "skopeo copy docker://\(ref) oci:\(r.key.name.split(separator: "/").last ?? "image"):\(tag)"],
            ]
        }
        if page.pages > 1 {
            v["pager"] = pager(page: page.page, pages: page.pages) { $0 > 1 ? "\(path)?page=\($0)" : path }
        }
        return render("repository", v)
    }

    func tagRow(_ t: GalleryTag) -> [String: Any] {
        let short = t.digest.split(separator: ":").last.map { "sha256:" + $0.prefix(12) } ?? t.digest
        return [
            "tag": t.tag, "digest": t.digest, "shortDigest": String(short), "pushed": Self.date(t.pushedAt),
            "pushedISO": UTCTimestamp.iso8601(t.pushedAt), "size": Self.size(t.imageSize),
            "platforms": t.platforms.isEmpty ? "—" : t.platforms.map(Self.platform).joined(separator: ", "),
            "scan": t.scan?.text ?? "Not scanned", "downloads": Self.count(t.downloads),
        ]
    }

    public func notFoundPage() -> String { render("notFound", ["title": "Not found", "queryText": ""]) }

    // MARK: formatting

    static func platform(_ p: Descriptor.Platform) -> String {
        [p.os, p.architecture, p.variant].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: "/")
    }

    /// `2026-12-07 00:32 UTC`.
    static func date(_ seconds: Double) -> String {
        let iso = UTCTimestamp.iso8601(seconds)
        guard iso.count >= 16 else { return iso }
        return iso.prefix(10) + " " + iso.dropFirst(11).prefix(5) + " UTC"
    }

    /// `1 download`, `12,345 downloads`.
    static func downloads(_ n: Int64) -> String { "\(count(n)) \(n == 1 ? "download" : "downloads")" }

    /// Digits grouped by thousands with commas (locale-independent).
    static func count(_ n: Int64) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0, (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// Decimal units, as ECR's consoles show sizes.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var v = Double(bytes), i = 0
        while v >= 1000, i < units.count - 1 { v /= 1000; i += 1 }
        return i == 0 ? "\(bytes) B" : String(format: "%.1f", v) + " " + units[i]
    }
}
