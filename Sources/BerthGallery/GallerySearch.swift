import BerthCore

/// What a list page asks for: the search text, the platform filters and the page (from the query string).
public struct GalleryQuery: Sendable, Equatable {
    public var text: String
    public var architecture: String?
    public var operatingSystem: String?
    /// 1-based.
    public var page: Int

    public static let maxTextLength = 256
    public static let maxPage = 10_000

    public init(text: String = "", architecture: String? = nil, operatingSystem: String? = nil, page: Int = 1) {
        self.text = String(text.prefix(Self.maxTextLength))
        self.architecture = architecture.flatMap { $0.isEmpty ? nil : String($0.prefix(50)) }
        self.operatingSystem = operatingSystem.flatMap { $0.isEmpty ? nil : String($0.prefix(50)) }
        self.page = min(max(page, 1), Self.maxPage)
    }

    /// Reads `q`, `arch`, `os` and `page` from decoded query parameters (the first of each; bad pages are page 1).
    public init(parameters: [(String, String)]) {
        func first(_ name: String) -> String? { parameters.first { $0.0 == name }?.1 }
        self.init(text: first("q") ?? "", architecture: first("arch"), operatingSystem: first("os"),
                  page: first("page").flatMap { Int($0) } ?? 1)
    }
}

/// Filtering and ranking of public repositories for the list and search pages (pure).
public enum GallerySearch {
    /// Repositories whose catalog lists the architecture and the operating system asked for (case-insensitively).
    public static func filter(_ repositories: [PublicRepositorySummary], _ query: GalleryQuery) -> [PublicRepositorySummary] {
        repositories.filter { r in
            matches(r.catalog.architectures, query.architecture) && matches(r.catalog.operatingSystems, query.operatingSystem)
        }
    }

    static func matches(_ values: [String]?, _ wanted: String?) -> Bool {
        guard let wanted else { return true }
        return (values ?? []).contains { $0.caseInsensitiveCompare(wanted) == .orderedSame }
    }

    /// How well a repository matches: every word of the query must occur in its name, description, about
    /// or usage text. Name matches come first: repositories are ordered by how many words matched the
    /// name, then by the score (exact name 100, name prefix 60, in the name 40, description 10, about 4,
    /// usage 2: the best field per word), then by the latest push.
    public struct Rank: Comparable, Sendable {
        public var nameWords: Int
        public var score: Int
        public static func < (a: Rank, b: Rank) -> Bool { (a.nameWords, a.score) < (b.nameWords, b.score) }
    }

    /// The query's words, lower-cased (at most 8).
    public static func words(_ text: String) -> [String] {
        Array(text.lowercased().split(whereSeparator: { $0.isWhitespace }).prefix(8).map(String.init))
    }

    public static func rank(_ r: PublicRepositorySummary, words: [String]) -> Rank? {
        guard !words.isEmpty else { return Rank(nameWords: 0, score: 0) }
        let name = r.key.name.lowercased()
        let shortName = name.split(separator: "/").last.map(String.init) ?? name
        let description = r.catalog.description?.lowercased() ?? ""
        let about = r.catalog.aboutText?.lowercased() ?? ""
        let usage = r.catalog.usageText?.lowercased() ?? ""
        var rank = Rank(nameWords: 0, score: 0)
        for w in words {
            let best: Int
            if name == w || shortName == w { best = 100 }
            else if name.hasPrefix(w) || shortName.hasPrefix(w) { best = 60 }
            else if name.contains(w) { best = 40 }
            else if description.contains(w) { best = 10 }
            else if about.contains(w) { best = 4 }
            else if usage.contains(w) { best = 2 }
            else { return nil }
            if best >= 40 { rank.nameWords += 1 }
            rank.score += best
        }
        return rank
    }

    /// The repositories matching the query's words and filters, best first.
    public static func search(_ repositories: [PublicRepositorySummary], _ query: GalleryQuery) -> [PublicRepositorySummary] {
        let w = words(query.text)
        return filter(repositories, query).compactMap { r in rank(r, words: w).map { (r, $0) } }
            .sorted { a, b in
                if a.1 != b.1 { return a.1 > b.1 }
                if (a.0.lastPushedAt ?? 0) != (b.0.lastPushedAt ?? 0) { return (a.0.lastPushedAt ?? 0) > (b.0.lastPushedAt ?? 0) }
                return a.0.key < b.0.key
            }.map(\.0)
    }

    /// Most recently pushed first (repositories without images last, by name).
    public static func recentlyPushed(_ repositories: [PublicRepositorySummary]) -> [PublicRepositorySummary] {
        repositories.sorted { a, b in
            if (a.lastPushedAt ?? -1) != (b.lastPushedAt ?? -1) { return (a.lastPushedAt ?? -1) > (b.lastPushedAt ?? -1) }
            return a.key < b.key
        }
    }

    /// Most downloaded first (then the latest pull, then by name); repositories never downloaded are left out.
    public static func mostPulled(_ repositories: [PublicRepositorySummary]) -> [PublicRepositorySummary] {
        repositories.filter { $0.downloadCount > 0 }.sorted { a, b in
            if a.downloadCount != b.downloadCount { return a.downloadCount > b.downloadCount }
            if (a.lastPulledAt ?? 0) != (b.lastPulledAt ?? 0) { return (a.lastPulledAt ?? 0) > (b.lastPulledAt ?? 0) }
            return a.key < b.key
        }
    }

    /// The distinct values of a catalog list across repositories, sorted case-insensitively (first spelling kept).
    public static func facets(_ repositories: [PublicRepositorySummary], _ values: (PublicRepositorySummary) -> [String]?) -> [String] {
        var seen: [String: String] = [:]
        for r in repositories { for v in values(r) ?? [] where seen[v.lowercased()] == nil { seen[v.lowercased()] = v } }
        return seen.values.sorted { $0.lowercased() < $1.lowercased() }
    }
}
