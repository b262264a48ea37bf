/// `n` / `last` pagination as the distribution-spec defines it for tags and the catalog.
public struct PageRequest: Sendable, Equatable {
    public static let defaultLimit = 1000
    public static let maxLimit = 10_000

    public let limit: Int
    public let last: String?

    public init(limit: Int = PageRequest.defaultLimit, last: String? = nil) {
        self.limit = limit
        self.last = last
    }

    /// Parses the `n` and `last` query parameters. `n` absent → the default; `n` = 0 → an empty page.
    public init(n: String?, last: String?) throws(BerthError) {
        var limit = PageRequest.defaultLimit
        if let n {
            guard let v = Int(n), v >= 0 else { throw .paginationNumberInvalid(n) }
            limit = min(v, PageRequest.maxLimit)
        }
        self.limit = limit
        self.last = (last?.isEmpty ?? true) ? nil : last
    }
}

/// One page of results: fetched with `limit + 1` rows to know whether more follow.
public struct Page<Element: Sendable>: Sendable {
    public let items: [Element]
    /// The `last` value for the next page, when there is one.
    public let next: String?

    public init(items: [Element], next: String?) {
        self.items = items
        self.next = next
    }

    /// Builds a page from up to `limit + 1` sorted rows.
    public static func from(rows: [Element], limit: Int, key: (Element) -> String) -> Page {
        if rows.count > limit {
            let items = Array(rows.prefix(limit))
            return Page(items: items, next: items.last.map(key))
        }
        return Page(items: rows, next: nil)
    }
}
