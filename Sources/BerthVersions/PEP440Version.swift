/// A Python package version (PEP 440), parsed and ordered as `packaging.version.Version` does.
///
/// Accepts the spellings PEP 440 normalises: any case, a leading `v`, `-`, `_` or `.` between
/// parts, `alpha`/`beta`/`c`/`pre`/`preview`, `rev`/`r`, implicit numbers (`1.0a` is `1.0a0`),
/// and `1.0-1` for `1.0.post1`. ``description`` is the normalised form (`1.0-alpha.1` →
/// `1.0a1`). Release segments compare with implicit zero padding (`1.0 == 1.0.0`); a
/// `.devN` sorts before pre-releases of the same release, post-releases after it; a local
/// version (`+ubuntu.1`) sorts after the same public version.
public struct PEP440Version: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The normalised form, as `str(packaging.version.Version(s))`.
    public let description: String
    /// True for a pre-release or development release.
    public var isPrerelease: Bool { pre != nil || dev != nil }
    /// True when the version has a post-release part.
    public var isPostRelease: Bool { post != nil }
    /// The local version label, normalised (`ubuntu.1`), or nil.
    public var local: String? {
        localSegments.map { segments in segments.map(\.description).joined(separator: ".") }
    }
    /// The normalised version without its local label.
    public var publicVersion: String {
        guard let plus = description.firstIndex(of: "+") else { return description }
        return String(description[..<plus])
    }

    // The comparison key, as packaging's `_cmpkey`.
    private let epoch: DecimalNumber
    private let release: [DecimalNumber]  // trailing zeros removed
    private let pre: Pre?
    private let post: DecimalNumber?
    private let dev: DecimalNumber?
    private let localSegments: [LocalSegment]?

    struct Pre: Hashable, Comparable {
        enum Label: Int { case a, b, rc }
        var label: Label
        var number: DecimalNumber
        static func < (x: Pre, y: Pre) -> Bool { (x.label.rawValue, x.number) < (y.label.rawValue, y.number) }
    }

    enum LocalSegment: Hashable, Comparable, CustomStringConvertible {
        case text(String)  // lower case
        case number(DecimalNumber)

        var description: String {
            switch self {
            case .text(let s): s
            case .number(let n): n.description
            }
        }

        /// Text segments sort before numbers.
        static func < (x: LocalSegment, y: LocalSegment) -> Bool {
            switch (x, y) {
            case (.text(let a), .text(let b)): a.utf8.lexicographicallyPrecedes(b.utf8)
            case (.number(let a), .number(let b)): a < b
            case (.text, .number): true
            case (.number, .text): false
            }
        }
    }

    /// Parses a PEP 440 version, throwing as `packaging.version.Version` raises `InvalidVersion`.
    public init(parsing string: String) throws(VersionParseError) {
        let trimmed = string.trimmingWhitespace()
        guard let parsed = Parser(Array(trimmed.utf8).map(ASCII.lowercased)).parse() else {
            let reason = trimmed.isEmpty ? "version string is empty" : "not a pep 440 version"
            throw VersionParseError("pep440", string, reason)
        }
        var release = parsed.release
        while release.last?.isZero == true { release.removeLast() }
        self.epoch = parsed.epoch
        self.release = release
        self.pre = parsed.pre
        self.post = parsed.post
        self.dev = parsed.dev
        self.localSegments = parsed.local

        var text = parsed.epoch.isZero ? "" : "\(parsed.epoch)!"
        text += parsed.release.map(\.description).joined(separator: ".")
        if let pre = parsed.pre { text += "\(pre.label)\(pre.number)" }
        if let post = parsed.post { text += ".post\(post)" }
        if let dev = parsed.dev { text += ".dev\(dev)" }
        if let local = parsed.local { text += "+" + local.map(\.description).joined(separator: ".") }
        self.description = text
    }

    public static func < (a: PEP440Version, b: PEP440Version) -> Bool { compare(a, b) == .less }

    public static func == (a: PEP440Version, b: PEP440Version) -> Bool { compare(a, b) == .equal }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(epoch)
        hasher.combine(release)
        hasher.combine(pre)
        hasher.combine(post)
        hasher.combine(dev)
        hasher.combine(localSegments)
    }

    /// Orders two versions by packaging's key: epoch, release, pre, post, dev, local.
    public static func compare(_ a: PEP440Version, _ b: PEP440Version) -> Order {
        Order(a.epoch, b.epoch)
            .then(compareSequences(a.release, b.release))
            .then(Order(a.preKey, b.preKey))
            .then(Order(a.postKey, b.postKey))
            .then(Order(a.devKey, b.devKey))
            .then(Order(a.localKey, b.localKey))
    }

    private static func compareSequences<T: Comparable>(_ a: [T], _ b: [T]) -> Order {
        for (x, y) in zip(a, b) where x != y { return x < y ? .less : .greater }
        return Order(a.count, b.count)
    }

    /// A bound below or above every value, as packaging's `Infinity` / `NegativeInfinity`.
    private enum Bounded<T: Comparable>: Comparable {
        case below
        case value(T)
        case above
    }

    private struct Local: Comparable {
        var segments: [LocalSegment]
        static func < (x: Local, y: Local) -> Bool { compareSequences(x.segments, y.segments) == .less }
    }

    private var preKey: Bounded<Pre> {
        if let pre { return .value(pre) }
        // 1.0.dev0 sorts before 1.0a0; 1.0 (and 1.0.post0.dev0) after every pre-release.
        return post == nil && dev != nil ? .below : .above
    }
    private var postKey: Bounded<DecimalNumber> { post.map(Bounded.value) ?? .below }
    private var devKey: Bounded<DecimalNumber> { dev.map(Bounded.value) ?? .above }
    private var localKey: Bounded<Local> { localSegments.map { .value(Local(segments: $0)) } ?? .below }

    // MARK: - Parser

    /// A backtracking matcher equivalent to packaging's `VERSION_PATTERN`: each optional part is
    /// tried present first, each alternation in the regular expression's order, so the first
    /// success is the one `re` would find. Backtracking is bounded by the grammar (a few dozen
    /// paths), every step is linear.
    struct Parser {
        struct Result {
            var epoch = DecimalNumber.zero
            var release: [DecimalNumber] = []
            var pre: Pre?
            var post: DecimalNumber?
            var dev: DecimalNumber?
            var local: [LocalSegment]?
        }

        let s: [UInt8]
        init(_ s: [UInt8]) { self.s = s }

        private func byte(_ i: Int) -> UInt8? { i < s.count ? s[i] : nil }
        private func isSeparator(_ i: Int) -> Bool {
            guard let c = byte(i) else { return false }
            return c == UInt8(ascii: "-") || c == UInt8(ascii: "_") || c == UInt8(ascii: ".")
        }
        private func digitsEnd(_ i: Int) -> Int {
            var k = i
            while k < s.count, ASCII.isDigit(s[k]) { k += 1 }
            return k
        }
        private func hasPrefix(_ word: String, at i: Int) -> Bool {
            var k = i
            for c in word.utf8 {
                guard k < s.count, s[k] == c else { return false }
                k += 1
            }
            return true
        }
        /// Positions after `[-_.]?`, greedy first.
        private func optionalSeparator(_ i: Int) -> [Int] { isSeparator(i) ? [i + 1, i] : [i] }

        func parse() -> Result? {
            var r = Result()
            var i = 0
            if byte(i) == UInt8(ascii: "v") { i += 1 }
            // epoch: [0-9]+!
            let epochEnd = digitsEnd(i)
            if epochEnd > i, byte(epochEnd) == UInt8(ascii: "!") {
                r.epoch = DecimalNumber(s[i..<epochEnd])
                i = epochEnd + 1
            }
            // release: [0-9]+(\.[0-9]+)*
            var end = digitsEnd(i)
            guard end > i else { return nil }
            r.release.append(DecimalNumber(s[i..<end]))
            i = end
            while byte(i) == UInt8(ascii: "."), byte(i + 1).map(ASCII.isDigit) == true {
                end = digitsEnd(i + 1)
                r.release.append(DecimalNumber(s[(i + 1)..<end]))
                i = end
            }
            return matchPre(i, r)
        }

        /// `[-_.]? label [-_.]? [0-9]*`, then `next`, trying every way in regex order.
        private func matchLabelled(
            _ i: Int, labels: [String], _ next: (Int, String, DecimalNumber) -> Result?
        ) -> Result? {
            for p in optionalSeparator(i) {
                for label in labels where hasPrefix(label, at: p) {
                    for q in optionalSeparator(p + label.utf8.count) {
                        let end = digitsEnd(q)
                        if end > q, let r = next(end, label, DecimalNumber(s[q..<end])) { return r }
                        if let r = next(q, label, .zero) { return r }
                    }
                }
            }
            return nil
        }

        private func matchPre(_ i: Int, _ r: Result) -> Result? {
            let labels = ["alpha", "a", "beta", "b", "preview", "pre", "c", "rc"]
            let found = matchLabelled(i, labels: labels) { end, label, number in
                var r = r
                let kind: Pre.Label = switch label {
                case "alpha", "a": .a
                case "beta", "b": .b
                default: .rc
                }
                r.pre = Pre(label: kind, number: number)
                return matchPost(end, r)
            }
            return found ?? matchPost(i, r)
        }

        private func matchPost(_ i: Int, _ r: Result) -> Result? {
            // -[0-9]+
            if byte(i) == UInt8(ascii: "-") {
                let end = digitsEnd(i + 1)
                if end > i + 1 {
                    var r2 = r
                    r2.post = DecimalNumber(s[(i + 1)..<end])
                    if let done = matchDev(end, r2) { return done }
                }
            }
            let found = matchLabelled(i, labels: ["post", "rev", "r"]) { end, _, number in
                var r = r
                r.post = number
                return matchDev(end, r)
            }
            return found ?? matchDev(i, r)
        }

        private func matchDev(_ i: Int, _ r: Result) -> Result? {
            let found = matchLabelled(i, labels: ["dev"]) { end, _, number in
                var r = r
                r.dev = number
                return matchLocal(end, r)
            }
            return found ?? matchLocal(i, r)
        }

        /// `(\+[a-z0-9]+([-_.][a-z0-9]+)*)?$`
        private func matchLocal(_ i: Int, _ r: Result) -> Result? {
            if i == s.count { return r }
            guard byte(i) == UInt8(ascii: "+") else { return nil }
            var segments: [LocalSegment] = []
            var k = i + 1
            while true {
                let start = k
                while k < s.count, ASCII.isLower(s[k]) || ASCII.isDigit(s[k]) { k += 1 }
                guard k > start else { return nil }
                let run = s[start..<k]
                segments.append(run.allSatisfy(ASCII.isDigit)
                    ? .number(DecimalNumber(run)) : .text(String(decoding: run, as: UTF8.self)))
                if k == s.count { break }
                guard isSeparator(k) else { return nil }
                k += 1
            }
            var r = r
            r.local = segments
            return r
        }
    }
}
