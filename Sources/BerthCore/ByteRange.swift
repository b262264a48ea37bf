/// An inclusive byte range `start-end`, as in `Content-Range` and `Range` headers.
public struct ByteRange: Sendable, Equatable {
    public let start: Int64
    public let end: Int64  // inclusive
    public var count: Int64 { end - start + 1 }

    public init(start: Int64, end: Int64) {
        self.start = start
        self.end = end
    }

    /// Parses `start-end` with an optional `bytes ` or `bytes=` prefix. Returns nil if malformed.
    public static func parse(_ s: String) -> ByteRange? {
        var t = Substring(s.trimmingSpaces())
        if t.hasPrefix("bytes=") { t = t.dropFirst(6) } else if t.hasPrefix("bytes ") { t = t.dropFirst(6) }
        if let slash = t.firstIndex(of: "/") { t = t[..<slash] }
        let parts = t.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = Int64(parts[0]), let b = Int64(parts[1]), a >= 0, b >= a else { return nil }
        return ByteRange(start: a, end: b)
    }

    /// Resolves an HTTP `Range: bytes=` request header against a blob size.
    /// Returns `.none` for no/unsupported header, `.unsatisfiable` when it can't be served.
    public static func resolveRequest(_ header: String?, size: Int64) -> RangeResolution {
        guard let header else { return .whole }
        let h = header.trimmingSpaces()
        guard h.hasPrefix("bytes=") else { return .whole }
        let spec = h.dropFirst(6)
        if spec.contains(",") { return .whole }  // multi-range: serve the whole entity
        let parts = spec.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .unsatisfiable }
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]), suffix > 0 else { return .unsatisfiable }
            if size == 0 { return .unsatisfiable }
            return .partial(ByteRange(start: max(0, size - suffix), end: size - 1))
        }
        guard let start = Int64(parts[0]), start >= 0 else { return .unsatisfiable }
        guard start < size else { return .unsatisfiable }
        if parts[1].isEmpty { return .partial(ByteRange(start: start, end: size - 1)) }
        guard let end = Int64(parts[1]), end >= start else { return .unsatisfiable }
        return .partial(ByteRange(start: start, end: min(end, size - 1)))
    }

    public enum RangeResolution: Sendable, Equatable {
        case whole
        case partial(ByteRange)
        case unsatisfiable
    }
}
