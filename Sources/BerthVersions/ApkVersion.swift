/// An Alpine package version, `digit{.digit}...{letter}{_suffix{#}}...{~hash}{-r#}`, ordered as
/// apk-tools' `apk_version_compare` (src/version.c) orders it.
///
/// Pre-release suffixes `_alpha`, `_beta`, `_pre`, `_rc` sort before the release, post-release
/// suffixes `_cvs`, `_svn`, `_git`, `_hg`, `_p` after it; a fractional digit group with a leading
/// zero (`1.02`) is compared as a string; `-rN` is the package revision. One difference: apk
/// reads numbers into 64 bits, this type compares digit runs of any length exactly.
public struct ApkVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The version as written.
    public let description: String
    private let bytes: [UInt8]

    /// Parses an Alpine version, throwing when `apk version --check` would reject it.
    public init(parsing string: String) throws(VersionParseError) {
        let bytes = Array(string.utf8)
        var t = Self.first(bytes)
        while t.kind < .end { t = Self.next(t, bytes) }
        guard t.kind == .end else {
            let reason = t.position >= bytes.count && !bytes.isEmpty
                ? "incomplete version" : "unexpected character at offset \(t.position)"
            throw VersionParseError("apk", string, bytes.isEmpty ? "version string is empty" : reason)
        }
        self.bytes = bytes
        self.description = string
    }

    public static func < (a: ApkVersion, b: ApkVersion) -> Bool { compare(a.bytes, b.bytes) == .less }

    public static func == (a: ApkVersion, b: ApkVersion) -> Bool { compare(a.bytes, b.bytes) == .equal }

    public func hash(into hasher: inout Hasher) {
        // Valid versions are equal exactly when their token sequences are: hash the tokens,
        // numbers without their leading zeros.
        var t = Self.first(bytes)
        while t.kind < .end {
            hasher.combine(t.kind)
            switch t.kind {
            case .initialDigit, .suffixNumber, .revision: hasher.combine(canonicalDigits(bytes[t.value]))
            case .suffix: hasher.combine(t.suffix)
            default: hasher.combine(bytes[t.value])
            }
            t = Self.next(t, bytes)
        }
    }

    /// Orders two valid versions.
    public static func compare(_ a: ApkVersion, _ b: ApkVersion) -> Order { compare(a.bytes, b.bytes) }

    /// Compares two version strings exactly as apk does, valid or not: total on any input.
    public static func compare(_ a: String, _ b: String) -> Order {
        compare(Array(a.utf8), Array(b.utf8))
    }

    // MARK: - apk-tools' token state machine

    enum Kind: Int, Comparable, Hashable {
        case initialDigit, digit, letter, suffix, suffixNumber, commitHash, revision, end, invalid
        static func < (a: Kind, b: Kind) -> Bool { a.rawValue < b.rawValue }
    }

    /// Suffix ranks; `none` is the pivot between pre- and post-release suffixes.
    enum Suffix: Int, Hashable {
        case invalid, alpha, beta, pre, rc, none, cvs, svn, git, hg, p

        init(_ s: ArraySlice<UInt8>) {
            switch String(decoding: s, as: UTF8.self) {
            case "alpha": self = .alpha
            case "beta": self = .beta
            case "pre": self = .pre
            case "rc": self = .rc
            case "cvs": self = .cvs
            case "svn": self = .svn
            case "git": self = .git
            case "hg": self = .hg
            case "p": self = .p
            default: self = .invalid
            }
        }
    }

    struct Token {
        var kind: Kind
        var value: Range<Int> = 0..<0
        var suffix: Suffix = .invalid
        /// Where the next token starts.
        var position: Int
    }

    private static func digits(from start: Int, _ s: [UInt8], kind: Kind) -> Token {
        var end = start
        while end < s.count, ASCII.isDigit(s[end]) { end += 1 }
        return Token(kind: end == start ? .invalid : kind, value: start..<end, position: end)
    }

    static func first(_ s: [UInt8]) -> Token { digits(from: 0, s, kind: .initialDigit) }

    static func next(_ t: Token, _ s: [UInt8]) -> Token {
        var p = t.position
        guard p < s.count else { return Token(kind: .end, position: p) }
        let invalid = Token(kind: .invalid, position: p)
        let c = s[p]
        switch c {
        case _ where ASCII.isLower(c):
            guard t.kind <= .digit else { return invalid }
            return Token(kind: .letter, value: p..<(p + 1), position: p + 1)
        case _ where c == UInt8(ascii: ".") || ASCII.isDigit(c):
            guard t.kind <= .digit else {
                // a digit right after a suffix is the suffix number
                guard c != UInt8(ascii: "."), t.kind == .suffix else { return invalid }
                return digits(from: p, s, kind: .suffixNumber)
            }
            if c == UInt8(ascii: ".") { p += 1 }
            return digits(from: p, s, kind: .digit)
        case UInt8(ascii: "_"):
            guard t.kind <= .suffixNumber else { return invalid }
            p += 1
            let start = p
            while p < s.count, ASCII.isLower(s[p]) { p += 1 }
            let suffix = Suffix(s[start..<p])
            guard suffix != .invalid else { return invalid }
            return Token(kind: .suffix, value: start..<p, suffix: suffix, position: p)
        case UInt8(ascii: "~"):
            guard t.kind < .commitHash else { return invalid }
            p += 1
            let start = p
            while p < s.count, ASCII.isDigit(s[p]) || (s[p] &- UInt8(ascii: "a")) < 6 { p += 1 }
            guard p > start else { return invalid }
            return Token(kind: .commitHash, value: start..<p, position: p)
        case UInt8(ascii: "-"):
            guard t.kind < .revision, p + 1 < s.count, s[p + 1] == UInt8(ascii: "r") else { return invalid }
            return digits(from: p + 2, s, kind: .revision)
        default:
            return invalid
        }
    }

    private static func compareTokens(_ ta: Token, _ a: [UInt8], _ tb: Token, _ b: [UInt8]) -> Order {
        let (va, vb) = (a[ta.value], b[tb.value])
        switch ta.kind {
        case .digit where va.first == ASCII.zero || vb.first == ASCII.zero:
            // a fractional part with a leading zero: string order, as in Gentoo
            return compareBytes(va, vb)
        case .digit, .initialDigit, .suffixNumber, .revision:
            return compareDigitRuns(va, vb)
        case .suffix:
            return Order(ta.suffix.rawValue, tb.suffix.rawValue)
        default:  // letter, commit hash
            return compareBytes(va, vb)
        }
    }

    static func compare(_ a: [UInt8], _ b: [UInt8]) -> Order {
        var ta = first(a)
        var tb = first(b)
        while ta.kind == tb.kind, ta.kind < .end {
            let r = compareTokens(ta, a, tb, b)
            if r != .equal { return r }
            ta = next(ta, a)
            tb = next(tb, b)
        }
        // Same kind here means both ended, or both became invalid at the same token.
        if ta.kind == tb.kind { return .equal }
        // Otherwise the longer version is greater, unless what it has more is a pre-release
        // suffix.
        if ta.kind == .suffix, ta.suffix.rawValue < Suffix.none.rawValue { return .less }
        if tb.kind == .suffix, tb.suffix.rawValue < Suffix.none.rawValue { return .greater }
        return ta.kind > tb.kind ? .less : .greater
    }
}
