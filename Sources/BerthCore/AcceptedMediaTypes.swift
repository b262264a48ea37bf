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
        // Every manifest GET parses Accept: an ASCII header (as clients send) is read as bytes; anything
        // else takes the general path below, which gives the same answer for ASCII.
        if acceptHeaders.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) { return parseASCII(acceptHeaders) }
        return parseCharacters(acceptHeaders)
    }

    /// `parse` for ASCII headers, on their UTF-8 bytes: items split at `,`, segments at `;` (empty ones
    /// skipped, as `split` does), spaces and tabs trimmed, lowercased.
    static func parseASCII(_ acceptHeaders: [String]) -> Set<String>? {
        var out: Set<String> = []
        for header in acceptHeaders {
            for item in header.utf8.split(separator: UInt8(ascii: ",")) {
                var segments = item.split(separator: UInt8(ascii: ";")).makeIterator()
                guard let first = segments.next() else { continue }
                let type = lowercased(trimmed(first))
                if type.isEmpty { continue }
                var refused = false
                while let parameter = segments.next() {
                    let kv = parameter.split(separator: UInt8(ascii: "="), maxSplits: 1)
                    if kv.count == 2, lowercased(trimmed(kv[0])) == "q", (Double(lowercased(trimmed(kv[1]))) ?? 1) == 0 {
                        refused = true
                    }
                }
                if refused { continue }
                if type == "*/*" || type == "application/*" { return nil }
                out.insert(type)
            }
        }
        return out.isEmpty ? nil : out
    }

    private static func trimmed(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var s = bytes
        while let f = s.first, f == UInt8(ascii: " ") || f == UInt8(ascii: "\t") { s = s.dropFirst() }
        while let l = s.last, l == UInt8(ascii: " ") || l == UInt8(ascii: "\t") { s = s.dropLast() }
        return s
    }

    private static func lowercased(_ bytes: Substring.UTF8View.SubSequence) -> String {
        String(decoding: bytes.lazy.map { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") ? $0 + 32 : $0 }, as: UTF8.self)
    }

    /// `parse` on characters: for headers with non-ASCII text.
    static func parseCharacters(_ acceptHeaders: [String]) -> Set<String>? {
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
