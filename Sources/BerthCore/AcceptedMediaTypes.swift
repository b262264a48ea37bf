/// The manifest media types a client accepts: from an HTTP `Accept` header or ECR's `acceptedMediaTypes`.
public struct AcceptedMediaTypes: Sendable, Equatable {
    /// nil: anything (no `Accept`, an empty one, or one with `*/*` or `application/*`).
    public let types: Set<String>?

    public static let any = AcceptedMediaTypes(types: nil)

    init(types: Set<String>?) { self.types = types }

    /// ECR's `acceptedMediaTypes`; nil (absent) accepts anything.
    public init(list: [String]?) {
        types = list.map { Set($0) }
    }

    /// The values of the `Accept` header(s), each a comma-separated list; parameters are dropped
    /// except `q=0`, which excludes the type (RFC 9110 §12.5.1).
    public init(acceptHeaders: [String]) {
        types = Self.parse(acceptHeaders)
    }

    static func parse(_ acceptHeaders: [String]) -> Set<String>? {
        var out: Set<String> = []
        for header in acceptHeaders {
            for item in header.split(separator: ",") {
                let parts = item.split(separator: ";")
                guard let first = parts.first else { continue }
                let type = MediaType.normalize(String(first))
                if type.isEmpty { continue }
                let refused = parts.dropFirst().contains { p in
                    let kv = p.split(separator: "=", maxSplits: 1).map { String($0).trimmingSpaces().lowercased() }
                    return kv.count == 2 && kv[0] == "q" && (Double(kv[1]) ?? 1) == 0
                }
                if refused { continue }
                if type == "*/*" || type == "application/*" { return nil }
                out.insert(type)
            }
        }
        return out.isEmpty ? nil : out
    }

    /// Whether `mediaType` is acceptable.
    public func accepts(_ mediaType: String) -> Bool {
        guard let types else { return true }
        return types.contains(mediaType)
    }
}
