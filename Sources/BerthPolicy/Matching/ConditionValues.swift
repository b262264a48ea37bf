import BerthSupport
import Foundation

/// A point in time from a `Date*` condition: a W3C ISO 8601 date/time or epoch seconds.
enum PolicyDate {
    /// Seconds since 1970-01-01T00:00:00Z, or `nil` when the text is neither form.
    static func parse(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: .whitespaces)
        return UTCTimestamp.parseEpochSeconds(s) ?? UTCTimestamp.parseW3C(s)
    }

    /// `aws:CurrentTime` as IAM renders it, e.g. `2024-05-01T12:00:00Z`.
    static func iso8601(_ date: Date) -> String {
        UTCTimestamp.iso8601(date.timeIntervalSince1970)
    }
}

/// An integer or decimal from a `Numeric*` condition, compared exactly.
enum PolicyNumber {
    static func parse(_ text: String) -> Decimal? {
        let s = Array(text.trimmingCharacters(in: .whitespaces))
        var i = 0
        if i < s.count, s[i] == "-" || s[i] == "+" { i += 1 }
        let intStart = i
        while i < s.count, s[i].isASCII, s[i].isNumber { i += 1 }
        var sawDigits = i > intStart
        if i < s.count, s[i] == "." {
            i += 1
            let fracStart = i
            while i < s.count, s[i].isASCII, s[i].isNumber { i += 1 }
            sawDigits = sawDigits || i > fracStart
        }
        guard sawDigits, i == s.count else { return nil }
        return Decimal(string: String(s), locale: Locale(identifier: "en_US_POSIX"))
    }
}

/// An IPv4 or IPv6 address or CIDR block from an `IpAddress` condition.
struct IPAddressRange: Sendable, Hashable {
    let bytes: [UInt8]
    let prefixLength: Int

    /// "If you specify an IP address without the associated routing prefix, IAM uses the default prefix value of /32."
    init?(_ text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let parts = trimmed.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddressRange.parseAddress(String(parts[0])) else { return nil }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 3,
                  let p = Int(parts[1]), p <= maxPrefix else { return nil }
            prefix = p
        }
        self.bytes = address
        self.prefixLength = prefix
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == bytes.count else { return false }
        var remaining = prefixLength
        for (a, b) in zip(address, bytes) {
            if remaining <= 0 { return true }
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if a & mask != b & mask { return false }
            remaining -= 8
        }
        return true
    }

    static func parseAddress(_ text: String) -> [UInt8]? {
        if text.contains(":") { return parseIPv6(text) }
        return parseIPv4(text)
    }

    private static func parseIPv4(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let v = UInt8(p) else { return nil }
            out.append(v)
        }
        return out
    }

    private static func parseIPv6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String, allowIPv4Tail: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var result: [UInt16] = []
            let items = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, item) in items.enumerated() {
                if allowIPv4Tail, i == items.count - 1, item.contains(".") {
                    guard let v4 = parseIPv4(String(item)) else { return nil }
                    result.append(UInt16(v4[0]) << 8 | UInt16(v4[1]))
                    result.append(UInt16(v4[2]) << 8 | UInt16(v4[3]))
                    continue
                }
                guard !item.isEmpty, item.count <= 4, let v = UInt16(item, radix: 16) else { return nil }
                result.append(v)
            }
            return result
        }
        var words: [UInt16]
        if halves.count == 2 {
            guard let head = groups(halves[0], allowIPv4Tail: false), let tail = groups(halves[1], allowIPv4Tail: true),
                  head.count + tail.count < 8 else { return nil }
            words = head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let all = groups(halves[0], allowIPv4Tail: true), all.count == 8 else { return nil }
            words = all
        }
        return words.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }
}
