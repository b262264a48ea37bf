#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// RFC 3339 / ISO 8601 timestamps in UTC without Foundation's formatters, which load ICU (megabytes of
/// resident memory) on first use and are slow per call.
public enum UTCTimestamp {
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

    private static func parts(_ whole: Double) -> (year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int)? {
        guard whole.isFinite, abs(whole) < 1e15 else { return nil }
        var seconds = time_t(whole)
        var tm = tm()
        guard gmtime_r(&seconds, &tm) != nil else { return nil }
        return (Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday), Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec))
    }

    private static func pad(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: "0", count: width - s.count) + s
    }
}
