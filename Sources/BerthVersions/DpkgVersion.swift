/// A Debian package version, `[epoch:]upstream_version[-debian_revision]`, ordered as
/// `dpkg --compare-versions` orders it (Debian policy §5.6.12).
///
/// Parsing follows dpkg's `parseversion`: surrounding blanks are ignored, the epoch is the part
/// before the first `:` (0 to 2147483647), the revision the part after the last `-`. Inputs dpkg
/// only warns about (an upstream version not starting with a digit, characters outside
/// `[A-Za-z0-9.+~:-]`, or `[A-Za-z0-9.+~]` in the revision) are rejected here.
///
/// Equality is dpkg's: `1.0`, `0:1.0`, `1.0-0` and `1.00` are equal and hash alike.
public struct DpkgVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The epoch; 0 when absent.
    public let epoch: Int
    /// The upstream version, without epoch and revision.
    public var upstream: String { String(decoding: upstreamBytes, as: UTF8.self) }
    /// The Debian revision; empty when absent.
    public var revision: String { String(decoding: revisionBytes, as: UTF8.self) }
    /// The version as written, without surrounding blanks.
    public let description: String

    private let upstreamBytes: [UInt8]
    private let revisionBytes: [UInt8]

    /// Parses a Debian version, throwing when dpkg would reject or warn about it.
    public init(parsing string: String) throws(VersionParseError) {
        func fail(_ reason: String) -> VersionParseError { VersionParseError("dpkg", string, reason) }
        let all = Array(string.utf8)
        var start = 0
        while start < all.count, all[start] == 0x20 || all[start] == 0x09 { start += 1 }
        guard start < all.count else { throw fail("version string is empty") }
        var end = start
        while end < all.count, !Self.isSpace(all[end]) { end += 1 }
        guard all[end...].allSatisfy(Self.isSpace) else { throw fail("version string has embedded spaces") }
        var bytes = all[start..<end]
        description = String(decoding: bytes, as: UTF8.self)

        if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
            // dpkg uses strtol(3): an optional sign, then digits, which must end at the colon.
            var i = bytes.startIndex
            var negative = false
            if bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                negative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            let digitsStart = i
            while i < colon, ASCII.isDigit(bytes[i]) { i += 1 }
            guard i > digitsStart else { throw fail("epoch in version is empty") }
            guard i == colon else { throw fail("epoch in version is not number") }
            let digits = bytes[digitsStart..<i]
            let isZero = digits.allSatisfy { $0 == ASCII.zero }
            if negative, !isZero { throw fail("epoch in version is negative") }
            guard compareDigitRuns(digits, Self.intMax[...]) != .greater else {
                throw fail("epoch in version is too big")
            }
            epoch = Int(canonicalDigits(digits))!  // at most 2147483647: cannot overflow
            bytes = bytes[(colon + 1)...]
            guard !bytes.isEmpty else { throw fail("nothing after colon in version number") }
        } else {
            epoch = 0
        }

        if let hyphen = bytes.lastIndex(of: UInt8(ascii: "-")) {
            revisionBytes = Array(bytes[(hyphen + 1)...])
            guard !revisionBytes.isEmpty else { throw fail("revision number is empty") }
            bytes = bytes[..<hyphen]
        } else {
            revisionBytes = []
        }
        upstreamBytes = Array(bytes)

        guard let first = upstreamBytes.first else { throw fail("version number is empty") }
        guard ASCII.isDigit(first) else { throw fail("version number does not start with digit") }
        guard upstreamBytes.allSatisfy({ ASCII.isAlnum($0) || Self.upstreamPunctuation.contains($0) }) else {
            throw fail("invalid character in version number")
        }
        guard revisionBytes.allSatisfy({ ASCII.isAlnum($0) || Self.revisionPunctuation.contains($0) }) else {
            throw fail("invalid character in revision number")
        }
    }

    public static func < (a: DpkgVersion, b: DpkgVersion) -> Bool { compare(a, b) == .less }

    public static func == (a: DpkgVersion, b: DpkgVersion) -> Bool { compare(a, b) == .equal }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(epoch)
        hasher.combine(Self.canonical(upstreamBytes))
        hasher.combine(Self.canonical(revisionBytes))
    }

    /// Orders two versions: epoch, then upstream version, then revision.
    public static func compare(_ a: DpkgVersion, _ b: DpkgVersion) -> Order {
        Order(a.epoch, b.epoch)
            .then(verrevcmp(a.upstreamBytes, b.upstreamBytes))
            .then(verrevcmp(a.revisionBytes, b.revisionBytes))
    }

    // MARK: - dpkg's algorithm

    private static let intMax = Array("2147483647".utf8)
    private static let upstreamPunctuation: Set<UInt8> = Set(".-+~:".utf8)
    private static let revisionPunctuation: Set<UInt8> = Set(".+~".utf8)

    private static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || (0x09...0x0D).contains(c) }

    /// The weight of one character in a non-digit run: `~` below the end of the string, the end
    /// below letters, letters below everything else.
    private static func weight(_ c: UInt8?) -> Int {
        guard let c else { return 0 }
        if ASCII.isDigit(c) { return 0 }
        if ASCII.isAlpha(c) { return Int(c) }
        if c == UInt8(ascii: "~") { return -1 }
        return Int(c) + 256
    }

    /// dpkg's `verrevcmp`: alternating non-digit runs (by `weight`) and digit runs (by value,
    /// compared digit by digit, so any length works).
    static func verrevcmp(_ a: [UInt8], _ b: [UInt8]) -> Order {
        var i = 0
        var j = 0
        func at(_ s: [UInt8], _ k: Int) -> UInt8? { k < s.count ? s[k] : nil }
        func digit(_ c: UInt8?) -> Bool { c.map(ASCII.isDigit) ?? false }
        while i < a.count || j < b.count {
            while (i < a.count && !ASCII.isDigit(a[i])) || (j < b.count && !ASCII.isDigit(b[j])) {
                let (wa, wb) = (weight(at(a, i)), weight(at(b, j)))
                if wa != wb { return wa < wb ? .less : .greater }
                i += 1
                j += 1
            }
            while i < a.count, a[i] == ASCII.zero { i += 1 }
            while j < b.count, b[j] == ASCII.zero { j += 1 }
            var firstDiff = Order.equal
            while digit(at(a, i)), digit(at(b, j)) {
                if firstDiff == .equal { firstDiff = Order(a[i], b[j]) }
                i += 1
                j += 1
            }
            if digit(at(a, i)) { return .greater }
            if digit(at(b, j)) { return .less }
            if firstDiff != .equal { return firstDiff }
        }
        return .equal
    }

    /// A form that two strings share exactly when `verrevcmp` finds them equal: digit runs
    /// lose their leading zeros, a missing run between non-digits becomes `0`, and a string
    /// equal to zero becomes empty.
    private static func canonical(_ s: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(s.count)
        var k = 0
        while k < s.count {
            while k < s.count, !ASCII.isDigit(s[k]) {
                out.append(s[k])
                k += 1
            }
            let runStart = k
            while k < s.count, ASCII.isDigit(s[k]) { k += 1 }
            out.append(contentsOf: canonicalDigits(s[runStart..<k]).utf8)
        }
        return out == [ASCII.zero] ? [] : out
    }
}
