/// Timestamps in UTC, formatted and parsed by hand: Foundation's formatters load ICU (megabytes of resident
/// memory) on first use, are slow per call and depend on locale. One proleptic Gregorian calendar serves
/// every format Berth reads or writes:
///
/// - ISO 8601 / RFC 3339 output (`iso8601`), and a compact form for file names (`compact`);
/// - SigV4's `yyyyMMdd'T'HHmmss'Z'` (`amzDate`, `parseAmzDate`);
/// - RFC 3339 date-times as OSV writes them (`parseRFC3339`);
/// - the W3C profile of ISO 8601 that IAM accepts in `Date*` conditions (`parseW3C`), and epoch seconds
///   (`parseEpochSeconds`).
public enum UTCTimestamp {
    // MARK: Formatting

    /// `2026-12-01T09:10:07Z` (seconds truncated), or with `millis`, `2026-12-01T09:10:07.123Z` (to the nearest millisecond).
    public static func iso8601(_ secondsSince1970: Double, millis: Bool = false) -> String {
        guard secondsSince1970.isFinite, abs(secondsSince1970) < 1e15 else { return "1970-01-01T00:00:00Z" }
        var whole = secondsSince1970.rounded(.down)
        var ms = millis ? Int(((secondsSince1970 - whole) * 1000).rounded()) : 0
        if ms >= 1000 { whole += 1; ms = 0 }
        guard let t = parts(whole) else { return "1970-01-01T00:00:00Z" }
        var s = "\(pad(t.year, 4))-\(pad(t.month, 2))-\(pad(t.day, 2))T\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2))"
        if millis { s += ".\(pad(ms, 3))" }
        return s + "Z"
    }

    /// `20261201-091007`: sortable and safe in file names.
    public static func compact(_ secondsSince1970: Double) -> String {
        guard let t = parts(secondsSince1970.rounded(.down)) else { return "19700101-000000" }
        return "\(pad(t.year, 4))\(pad(t.month, 2))\(pad(t.day, 2))-\(pad(t.hour, 2))\(pad(t.minute, 2))\(pad(t.second, 2))"
    }

    /// The range a four-digit year can show: 0000-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
    public static let fourDigitYearSeconds: ClosedRange<Int64> = -62_167_219_200...253_402_300_799

    /// SigV4's `yyyyMMdd'T'HHmmss'Z'`; instants outside ``fourDigitYearSeconds`` are shown clamped to it.
    public static func amzDate(_ secondsSince1970: Int64) -> String {
        let clamped = min(max(secondsSince1970, fourDigitYearSeconds.lowerBound), fourDigitYearSeconds.upperBound)
        let t = fields(clamped)
        var out = [UInt8](repeating: UInt8(ascii: "0"), count: 16)
        func put(_ value: Int, at end: Int, width: Int) {
            var rest = value
            for index in stride(from: end, to: end - width, by: -1) {
                out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            }
        }
        put(t.year, at: 3, width: 4)
        put(t.month, at: 5, width: 2)
        put(t.day, at: 7, width: 2)
        out[8] = UInt8(ascii: "T")
        put(t.hour, at: 10, width: 2)
        put(t.minute, at: 12, width: 2)
        put(t.second, at: 14, width: 2)
        out[15] = UInt8(ascii: "Z")
        return String(decoding: out, as: UTF8.self)
    }

    // MARK: Parsing

    /// Parses exactly `20150830T123600Z` into seconds since 1970; nil for any other shape or a time that does not exist.
    public static func parseAmzDate(_ text: String) -> Int64? {
        let utf8 = Array(text.utf8)
        guard utf8.count == 16, utf8[8] == UInt8(ascii: "T"), utf8[15] == UInt8(ascii: "Z") else { return nil }
        var scanner = Scanner(utf8)
        guard let year = scanner.digits(4), let month = scanner.digits(2), let day = scanner.digits(2) else { return nil }
        scanner.i += 1
        guard let hour = scanner.digits(2), let minute = scanner.digits(2), let second = scanner.digits(2),
              (1...12).contains(month), day >= 1, day <= daysInMonth(year: year, month: month),
              hour < 24, minute < 60, second < 60
        else { return nil }
        return Int64(daysFromCivil(year: year, month: month, day: day)) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
    }

    /// An RFC 3339 date-time as OSV writes them (`2024-12-05T15:34:02.459517Z`, `2022-02-21T19:15:08+01:00`):
    /// `T`, `t` or a space between date and time, a leap second allowed, an offset `Z`, `z` or `±hh:mm`
    /// required. Seconds since 1970, or nil.
    public static func parseRFC3339(_ text: String) -> Double? {
        parseDateTime(Array(text.utf8), .rfc3339)
    }

    /// The W3C profile of ISO 8601 (https://www.w3.org/TR/NOTE-datetime) that IAM reads in `Date*`
    /// conditions: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.s+]]TZD` with `Z` or `±hh:mm`,
    /// plus `±hhmm` offsets; designators in either case. Seconds since 1970, or nil.
    public static func parseW3C(_ text: String) -> Double? {
        parseDateTime(Array(text.utf8), .w3c)
    }

    /// Epoch seconds written as ASCII digits only (`1714564800`), or nil.
    public static func parseEpochSeconds(_ text: String) -> Double? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Double(text)
    }

    // MARK: The calendar

    /// Whether `year` has a 29 February.
    public static func isLeap(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    /// The number of days of `month` (1–12) in `year`.
    public static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a date in the proleptic Gregorian calendar (Howard Hinnant's `days_from_civil`).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthPrime = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthPrime + 2) / 5 + 1
        let month = monthPrime < 10 ? monthPrime + 3 : monthPrime - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The calendar date and time of day of an instant.
    public static func fields(_ secondsSince1970: Int64) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
        var days = secondsSince1970 / 86_400
        var secondsOfDay = secondsSince1970 % 86_400
        if secondsOfDay < 0 { days -= 1; secondsOfDay += 86_400 }
        let (year, month, day) = civilFromDays(Int(days))
        let s = Int(secondsOfDay)
        return (year, month, day, s / 3600, s / 60 % 60, s % 60)
    }

    // MARK: Private

    private static func parts(_ whole: Double) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int)? {
        guard whole.isFinite, abs(whole) < 1e15 else { return nil }
        return fields(Int64(whole))
    }

    private static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }

    /// What differs between the two ISO 8601 grammars Berth reads.
    private struct Grammar {
        /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD` and times without seconds are accepted (W3C).
        var reducedPrecision: Bool
        /// The bytes allowed between date and time.
        var timeSeparators: [UInt8]
        /// `t` and `z` as well as `T` and `Z`.
        var lowercaseDesignators: Bool
        /// The day is checked against the month's length (else only 1...31).
        var checksMonthLength: Bool
        var maximumSecond: Int
        /// `±hhmm` as well as `±hh:mm`, and hours ≤ 23, minutes ≤ 59 in offsets.
        var strictOffset: Bool

        static let rfc3339 = Grammar(reducedPrecision: false, timeSeparators: Array("Tt ".utf8), lowercaseDesignators: true,
                                     checksMonthLength: false, maximumSecond: 60, strictOffset: false)
        static let w3c = Grammar(reducedPrecision: true, timeSeparators: Array("Tt".utf8), lowercaseDesignators: true,
                                 checksMonthLength: true, maximumSecond: 59, strictOffset: true)
    }

    private struct Scanner {
        let b: [UInt8]
        var i = 0
        init(_ b: [UInt8]) { self.b = b }
        var atEnd: Bool { i == b.count }

        mutating func digits(_ n: Int) -> Int? {
            guard i + n <= b.count else { return nil }
            var v = 0
            for k in i..<(i + n) {
                let d = b[k] &- UInt8(ascii: "0")
                guard d < 10 else { return nil }
                v = v * 10 + Int(d)
            }
            i += n
            return v
        }

        mutating func accept(_ allowed: [UInt8]) -> Bool {
            guard i < b.count, allowed.contains(b[i]) else { return false }
            i += 1
            return true
        }
    }

    private static func parseDateTime(_ b: [UInt8], _ g: Grammar) -> Double? {
        var s = Scanner(b)
        let dash = [UInt8(ascii: "-")], colon = [UInt8(ascii: ":")]
        guard let year = s.digits(4) else { return nil }
        var month = 1, day = 1, hour = 0, minute = 0, second = 0
        var fraction = 0.0
        var offset = 0
        func validDay(_ d: Int) -> Bool {
            d >= 1 && d <= (g.checksMonthLength ? daysInMonth(year: year, month: month) : 31)
        }
        parse: do {
            guard s.accept(dash) else { if g.reducedPrecision { break parse } else { return nil } }
            guard let m = s.digits(2), (1...12).contains(m) else { return nil }
            month = m
            guard s.accept(dash) else { if g.reducedPrecision { break parse } else { return nil } }
            guard let d = s.digits(2), validDay(d) else { return nil }
            day = d
            guard s.accept(g.timeSeparators) else { if g.reducedPrecision { break parse } else { return nil } }
            guard let h = s.digits(2), h < 24, s.accept(colon), let mi = s.digits(2), mi < 60 else { return nil }
            hour = h
            minute = mi
            if s.accept(colon) {
                guard let sec = s.digits(2), sec <= g.maximumSecond else { return nil }
                second = sec
                if s.accept([UInt8(ascii: ".")]) {
                    let start = s.i
                    while s.i < b.count, b[s.i] >= UInt8(ascii: "0"), b[s.i] <= UInt8(ascii: "9") { s.i += 1 }
                    guard s.i > start, let f = Double("0." + String(decoding: b[start..<s.i], as: UTF8.self)) else { return nil }
                    fraction = f
                }
            } else if !g.reducedPrecision {
                return nil
            }
            if s.accept(g.lowercaseDesignators ? Array("Zz".utf8) : Array("Z".utf8)) {
                offset = 0
            } else if s.i < b.count, b[s.i] == UInt8(ascii: "+") || b[s.i] == UInt8(ascii: "-") {
                let sign = b[s.i] == UInt8(ascii: "-") ? -1 : 1
                s.i += 1
                if g.strictOffset {
                    guard let oh = s.digits(2), oh <= 23 else { return nil }
                    _ = s.accept(colon)
                    guard let om = s.digits(2), om <= 59 else { return nil }
                    offset = sign * (oh * 3600 + om * 60)
                } else {
                    guard let oh = s.digits(2), s.accept(colon), let om = s.digits(2) else { return nil }
                    offset = sign * (oh * 3600 + om * 60)
                }
            } else {
                return nil
            }
        }
        guard s.atEnd else { return nil }
        let minutes = daysFromCivil(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 - offset
        // The two grammars' historical sums, kept so that results stay bit-for-bit what they were.
        return g.reducedPrecision ? Double(minutes) + (Double(second) + fraction) : Double(minutes + second) + fraction
    }
}
