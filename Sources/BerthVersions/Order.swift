/// The result of comparing two versions.
public enum Order: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case less
    case equal
    case greater

    /// The order seen from the other operand.
    public var reversed: Order {
        switch self {
        case .less: .greater
        case .equal: .equal
        case .greater: .less
        }
    }

    public var description: String {
        switch self {
        case .less: "<"
        case .equal: "="
        case .greater: ">"
        }
    }

    /// The order of two values of any `Comparable` type.
    public init<T: Comparable>(_ a: T, _ b: T) {
        self = a < b ? .less : (b < a ? .greater : .equal)
    }

    /// `self` unless it is `.equal`, in which case the next criterion decides.
    func then(_ next: @autoclosure () -> Order) -> Order {
        self == .equal ? next() : self
    }
}

/// A version string that its ecosystem's rules reject.
public struct VersionParseError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The version scheme whose rules were applied: `dpkg`, `apk`, `rpm`, `pep440` or `semver`.
    public let scheme: String
    /// The offending input, cut to its first 128 characters.
    public let input: String
    /// Why the input was rejected, in lower case.
    public let reason: String

    init(_ scheme: String, _ input: String, _ reason: String) {
        self.scheme = scheme
        self.input = input.count > 128 ? String(input.prefix(128)) + "…" : input
        self.reason = reason
    }

    public var description: String { "invalid \(scheme) version \"\(input)\": \(reason)" }
}

// MARK: - Byte helpers shared by the comparators (ASCII only, locale independent)

enum ASCII {
    static func isDigit(_ c: UInt8) -> Bool { c &- 0x30 < 10 }
    static func isLower(_ c: UInt8) -> Bool { c &- 0x61 < 26 }
    static func isUpper(_ c: UInt8) -> Bool { c &- 0x41 < 26 }
    static func isAlpha(_ c: UInt8) -> Bool { isLower(c) || isUpper(c) }
    static func isAlnum(_ c: UInt8) -> Bool { isDigit(c) || isAlpha(c) }
    static func lowercased(_ c: UInt8) -> UInt8 { isUpper(c) ? c | 0x20 : c }

    static let zero = UInt8(ascii: "0")
}

/// Compares two runs of ASCII decimal digits by numeric value, without converting them to a
/// fixed-width integer: leading zeros are skipped, then the longer run wins, then the first
/// differing digit. An empty run counts as zero.
func compareDigitRuns(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Order {
    let a = a.drop { $0 == ASCII.zero }
    let b = b.drop { $0 == ASCII.zero }
    if a.count != b.count { return a.count < b.count ? .less : .greater }
    for (x, y) in zip(a, b) where x != y {
        return x < y ? .less : .greater
    }
    return .equal
}

/// Byte-wise comparison where a proper prefix sorts first (`memcmp`, then length).
func compareBytes(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Order {
    for (x, y) in zip(a, b) where x != y {
        return x < y ? .less : .greater
    }
    return Order(a.count, b.count)
}

/// A digit run without its leading zeros (`"0"` for zero), for hashing and display.
func canonicalDigits(_ a: ArraySlice<UInt8>) -> String {
    let stripped = a.drop { $0 == ASCII.zero }
    return stripped.isEmpty ? "0" : String(decoding: stripped, as: UTF8.self)
}

/// A natural number kept as its decimal digits, so that any length compares exactly.
struct DecimalNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Digits without leading zeros; `"0"` for zero.
    let digits: String

    static let zero = DecimalNumber(digits: "0")

    init(digits: String) { self.digits = digits }
    init(_ run: ArraySlice<UInt8>) { self.digits = canonicalDigits(run) }

    var description: String { digits }
    var isZero: Bool { digits == "0" }

        static func < (a: DecimalNumber, b: DecimalNumber) -> Bool {
        let (x, y) = (a.digits.utf8, b.digits.utf8)
        if x.count != y.count { return x.count < y.count }
        return x.lexicographicallyPrecedes(y)
    }
}

extension String {
    /// The string without leading and trailing Unicode white space.
    func trimmingWhitespace() -> Substring {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return Substring(scalars[first...last])
    }
}
