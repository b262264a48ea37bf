import Foundation

/// A Debian package version `[epoch:]upstream_version[-debian_revision]`, ordered like `dpkg --compare-versions`.
public struct DpkgVersion: Sendable, Comparable, CustomStringConvertible {
    public var epoch: Int
    public var upstream: String
    public var revision: String

    /// Parses `text`; `nil` when it is empty, has a non-numeric epoch, or an upstream part not starting with a digit.
    public init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { return nil }
        var rest = Substring(trimmed)
        if let colon = rest.firstIndex(of: ":") {
            let e = rest[..<colon]
            guard !e.isEmpty, e.utf8.count <= 9, e.allSatisfy(\.isASCIIDigit), let value = Int(e) else { return nil }
            epoch = value
            rest = rest[rest.index(after: colon)...]
        } else {
            epoch = 0
        }
        if let dash = rest.lastIndex(of: "-") {
            upstream = String(rest[..<dash])
            revision = String(rest[rest.index(after: dash)...])
        } else {
            upstream = String(rest)
            revision = ""
        }
        guard let first = upstream.first, first.isASCIIDigit else { return nil }
        let allowed: (Character) -> Bool = { $0.isASCII && ($0.isLetter || $0.isNumber || ".+~-:".contains($0)) }
        guard upstream.allSatisfy(allowed), revision.allSatisfy({ allowed($0) && $0 != "-" && $0 != ":" }) else {
            return nil
        }
    }

    public var description: String {
        (epoch > 0 ? "\(epoch):" : "") + upstream + (revision.isEmpty ? "" : "-\(revision)")
    }

    public static func < (a: DpkgVersion, b: DpkgVersion) -> Bool { compare(a, b) < 0 }

    public static func == (a: DpkgVersion, b: DpkgVersion) -> Bool { compare(a, b) == 0 }

    /// Negative, zero or positive as `a` is older than, equal to or newer than `b`.
    public static func compare(_ a: DpkgVersion, _ b: DpkgVersion) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let u = compareFragment(Array(a.upstream.utf8), Array(b.upstream.utf8))
        if u != 0 { return u }
        return compareFragment(Array(a.revision.utf8), Array(b.revision.utf8))
    }

    /// dpkg's `order()`: `~` before everything (even the end), then the end, then letters, then other characters.
    private static func order(_ c: UInt8) -> Int {
        if c >= 48 && c <= 57 { return 0 }
        if (c >= 65 && c <= 90) || (c >= 97 && c <= 122) { return Int(c) }
        if c == UInt8(ascii: "~") { return -1 }
        return Int(c) + 256
    }

    /// dpkg's `verrevcmp()`.
    private static func compareFragment(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var i = 0, j = 0
        func isDigit(_ c: UInt8) -> Bool { c >= 48 && c <= 57 }
        while i < a.count || j < b.count {
            var firstDiff = 0
            while (i < a.count && !isDigit(a[i])) || (j < b.count && !isDigit(b[j])) {
                let ac = i < a.count ? order(a[i]) : 0
                let bc = j < b.count ? order(b[j]) : 0
                if ac != bc { return ac < bc ? -1 : 1 }
                i += 1
                j += 1
            }
            while i < a.count && a[i] == 48 { i += 1 }
            while j < b.count && b[j] == 48 { j += 1 }
            while i < a.count && isDigit(a[i]) && j < b.count && isDigit(b[j]) {
                if firstDiff == 0 { firstDiff = Int(a[i]) - Int(b[j]) }
                i += 1
                j += 1
            }
            if i < a.count && isDigit(a[i]) { return 1 }
            if j < b.count && isDigit(b[j]) { return -1 }
            if firstDiff != 0 { return firstDiff < 0 ? -1 : 1 }
        }
        return 0
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// Compares Debian versions.
public struct DpkgVersionComparator: VersionComparator {
    public init() {}

    public func compare(_ a: String, _ b: String) -> ComparisonResult? {
        guard let x = DpkgVersion(a), let y = DpkgVersion(b) else { return nil }
        let c = DpkgVersion.compare(x, y)
        return c < 0 ? .orderedAscending : c > 0 ? .orderedDescending : .orderedSame
    }
}
