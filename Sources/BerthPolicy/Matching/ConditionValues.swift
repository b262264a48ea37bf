import Foundation

/// A point in time from a `Date*` condition: a W3C ISO 8601 date/time or epoch seconds.
enum PolicyDate {
    /// Seconds since 1970-01-01T00:00:00Z, or `nil` when the text is neither form.
    static func parse(_ text: String) -> Double? {
        let s = text.trimmingCharacters(in: .whitespaces)
        guard !s.isEmpty else { return nil }
        if s.allSatisfy({ $0.isASCII && $0.isNumber }) {
            return Double(s)
        }
        return parseISO8601(s)
    }

    /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s+]]TZD` with `Z` or `±hh:mm`
    /// (the profile in https://www.w3.org/TR/NOTE-datetime), plus `±hhmm` offsets.
    static func parseISO8601(_ text: String) -> Double? {
        let chars = Array(text.uppercased())
        var i = 0
        func digits(_ count: Int) -> Int? {
            guard i + count <= chars.count else { return nil }
            var value = 0
            for c in chars[i..<i + count] {
                guard let d = c.wholeNumberValue, c.isASCII else { return nil }
                value = value * 10 + d
            }
            i += count
            return value
        }
        func accept(_ c: Character) -> Bool {
            if i < chars.count && chars[i] == c { i += 1; return true }
            return false
        }
        guard let year = digits(4) else { return nil }
        var month = 1, day = 1, hour = 0, minute = 0
        var second = 0.0
        var offset = 0
        if accept("-") {
            guard let m = digits(2), (1...12).contains(m) else { return nil }
            month = m
            if accept("-") {
                guard let d = digits(2), d >= 1, d <= daysInMonth(year: year, month: month) else { return nil }
                day = d
                if accept("T") {
                    guard let h = digits(2), h <= 23, accept(":"), let mi = digits(2), mi <= 59 else { return nil }
                    hour = h
                    minute = mi
                    if accept(":") {
                        guard let sec = digits(2), sec <= 59 else { return nil }
                        second = Double(sec)
                        if accept(".") {
                            let start = i
                            while i < chars.count, chars[i].isASCII, chars[i].isNumber { i += 1 }
                            guard i > start, let fraction = Double("0." + String(chars[start..<i])) else { return nil }
                            second += fraction
                        }
                    }
                    if accept("Z") {
                        offset = 0
                    } else if i < chars.count, chars[i] == "+" || chars[i] == "-" {
                        let sign = chars[i] == "-" ? -1 : 1
                        i += 1
                        guard let oh = digits(2), oh <= 23 else { return nil }
                        _ = accept(":")
                        guard let om = digits(2), om <= 59 else { return nil }
                        offset = sign * (oh * 3600 + om * 60)
                    } else {
                        return nil
                    }
                }
            }
        }
        guard i == chars.count else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        return Double(days * 86_400 + hour * 3_600 + minute * 60 - offset) + second
    }

    /// `aws:CurrentTime` as IAM renders it, e.g. `2024-05-01T12:00:00Z`.
    static func iso8601(_ date: Date) -> String {
        let total = Int(date.timeIntervalSince1970.rounded(.down))
        let days = Int((Double(total) / 86_400).rounded(.down))
        let secondsOfDay = total - days * 86_400
        let (y, m, d) = civilFromDays(days)
        func pad(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))T\(pad(secondsOfDay / 3600, 2)):\(pad(secondsOfDay % 3600 / 60, 2)):\(pad(secondsOfDay % 60, 2))Z"
    }

    private static func isLeap(_ y: Int) -> Bool { (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 }

    private static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Howard Hinnant's `days_from_civil`.
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
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
