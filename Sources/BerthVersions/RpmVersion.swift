/// An RPM `[epoch:]version[-release]`, ordered with rpm's `rpmvercmp` (rpmio/rpmvercmp.c) on
/// each part.
///
/// `rpmvercmp` splits a string into runs of ASCII digits and runs of ASCII letters; every other
/// byte (including non-ASCII) only separates runs. Digit runs compare by value and beat letter
/// runs; `~` sorts before anything, even the end of the string; `^` sorts after the end of the
/// string but before anything else.
///
/// The epoch is the run of digits before a `:` (absent means 0); the release is what follows
/// the last `-`. rpm's `rpmverCmp` skips the release when either side has none, which makes
/// equality non-transitive; to stay a total order this type compares a missing release as an
/// empty one, below any release (`1.0` < `1.0-1`). Use ``compareIgnoringMissingRelease(_:_:)``
/// for rpm's dependency-matching rule.
public struct RpmVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The epoch digits; nil when the string has none.
    public let epoch: String?
    /// The version part.
    public let version: String
    /// The release part; nil when the string has no `-`.
    public let release: String?
    /// The string as given.
    public let description: String

    /// Splits `epoch:version-release`, throwing only when the version part is empty.
    public init(parsing string: String) throws(VersionParseError) {
        let bytes = Array(string.utf8)
        var rest = bytes[...]
        var digitsEnd = 0
        while digitsEnd < bytes.count, ASCII.isDigit(bytes[digitsEnd]) { digitsEnd += 1 }
        if digitsEnd < bytes.count, bytes[digitsEnd] == UInt8(ascii: ":") {
            epoch = digitsEnd == 0 ? "0" : String(decoding: bytes[..<digitsEnd], as: UTF8.self)
            rest = bytes[(digitsEnd + 1)...]
        } else {
            epoch = nil
        }
        if let hyphen = rest.lastIndex(of: UInt8(ascii: "-")) {
            release = String(decoding: rest[(hyphen + 1)...], as: UTF8.self)
            rest = rest[..<hyphen]
        } else {
            release = nil
        }
        guard !rest.isEmpty else {
            throw VersionParseError("rpm", string, string.isEmpty ? "version string is empty" : "version is empty")
        }
        version = String(decoding: rest, as: UTF8.self)
        description = string
    }

    public static func < (a: RpmVersion, b: RpmVersion) -> Bool { compare(a, b) == .less }

    public static func == (a: RpmVersion, b: RpmVersion) -> Bool { compare(a, b) == .equal }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(Self.tokens(epoch ?? "0"))
        hasher.combine(Self.tokens(version))
        hasher.combine(Self.tokens(release ?? ""))
    }

    /// Orders epoch, then version, then release (a missing release counts as empty).
    public static func compare(_ a: RpmVersion, _ b: RpmVersion) -> Order {
        rpmvercmp(a.epoch ?? "0", b.epoch ?? "0")
            .then(rpmvercmp(a.version, b.version))
            .then(rpmvercmp(a.release ?? "", b.release ?? ""))
    }

    /// rpm's `rpmverCmp`: like ``compare(_:_:)``, but the release only counts when both sides
    /// have one, so `1.0` matches `1.0-5`. Not transitive: use it to match, not to sort.
    public static func compareIgnoringMissingRelease(_ a: RpmVersion, _ b: RpmVersion) -> Order {
        let head = rpmvercmp(a.epoch ?? "0", b.epoch ?? "0").then(rpmvercmp(a.version, b.version))
        guard let ra = a.release, let rb = b.release else { return head }
        return head.then(rpmvercmp(ra, rb))
    }

    /// rpm's `rpmvercmp` on two bare strings (a version or a release): total on any input.
    public static func rpmvercmp(_ a: String, _ b: String) -> Order {
        if a == b { return .equal }
        let one = Array(a.utf8)
        let two = Array(b.utf8)
        var i = 0
        var j = 0
        func isMark(_ c: UInt8) -> Bool { c == UInt8(ascii: "~") || c == UInt8(ascii: "^") }
        while i < one.count || j < two.count {
            while i < one.count, !ASCII.isAlnum(one[i]), !isMark(one[i]) { i += 1 }
            while j < two.count, !ASCII.isAlnum(two[j]), !isMark(two[j]) { j += 1 }
            let c1: UInt8? = i < one.count ? one[i] : nil
            let c2: UInt8? = j < two.count ? two[j] : nil

            // The tilde separator sorts before everything else.
            if c1 == UInt8(ascii: "~") || c2 == UInt8(ascii: "~") {
                if c1 != UInt8(ascii: "~") { return .greater }
                if c2 != UInt8(ascii: "~") { return .less }
                i += 1
                j += 1
                continue
            }
            // The caret too, except that the end of a string sorts before it.
            if c1 == UInt8(ascii: "^") || c2 == UInt8(ascii: "^") {
                if c1 == nil { return .less }
                if c2 == nil { return .greater }
                if c1 != UInt8(ascii: "^") { return .greater }
                if c2 != UInt8(ascii: "^") { return .less }
                i += 1
                j += 1
                continue
            }
            guard let c1, c2 != nil else { break }

            let isNumber = ASCII.isDigit(c1)
            let run = { (c: UInt8) in isNumber ? ASCII.isDigit(c) : ASCII.isAlpha(c) }
            let start1 = i
            let start2 = j
            while i < one.count, run(one[i]) { i += 1 }
            while j < two.count, run(two[j]) { j += 1 }
            // Segments of different types: a number is newer than letters.
            if j == start2 { return isNumber ? .greater : .less }
            let r = isNumber
                ? compareDigitRuns(one[start1..<i], two[start2..<j])
                : compareBytes(one[start1..<i], two[start2..<j])
            if r != .equal { return r }
        }
        if i >= one.count, j >= two.count { return .equal }
        // Whichever version still has characters left over wins.
        return i < one.count ? .greater : .less
    }

    /// The run sequence that decides `rpmvercmp`; equal sequences compare equal.
    private static func tokens(_ s: String) -> [String] {
        let bytes = Array(s.utf8)
        var out: [String] = []
        var k = 0
        while k < bytes.count {
            let c = bytes[k]
            if c == UInt8(ascii: "~") || c == UInt8(ascii: "^") {
                out.append(String(UnicodeScalar(c)))
                k += 1
            } else if ASCII.isAlnum(c) {
                let isNumber = ASCII.isDigit(c)
                let inRun = { (c: UInt8) in isNumber ? ASCII.isDigit(c) : ASCII.isAlpha(c) }
                let start = k
                while k < bytes.count, inRun(bytes[k]) { k += 1 }
                let run = bytes[start..<k]
                out.append(isNumber ? "#" + canonicalDigits(run) : String(decoding: run, as: UTF8.self))
            } else {
                k += 1
            }
        }
        return out
    }
}
