#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthSupport

/// A UTC instant with one-second precision in SigV4's ISO 8601 basic format, `yyyyMMdd'T'HHmmss'Z'`.
///
/// Parsed and formatted by hand (no `DateFormatter`): it runs on every request and must not depend on locale.
public struct AmzDate: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var secondsSince1970: Int64

    /// Creates the instant `secondsSince1970` seconds after the Unix epoch.
    public init(secondsSince1970: Int64) {
        self.secondsSince1970 = secondsSince1970
    }

    /// `date` rounded down to the second (a non-finite or out-of-range date becomes the epoch).
    public init(_ date: Date) {
        let seconds = date.timeIntervalSince1970.rounded(.down)
        self.secondsSince1970 = seconds.magnitude < 1e15 ? Int64(seconds) : 0
    }

    /// This instant as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: TimeInterval(secondsSince1970)) }

    /// Parses `20150830T123600Z`; `nil` if `string` is not exactly that shape or names no real time.
    public init?(_ string: String) {
        guard let seconds = UTCTimestamp.parseAmzDate(string) else { return nil }
        secondsSince1970 = seconds
    }

    /// The range the four-digit format can show: 0000-01-01T00:00:00Z through 9999-12-31T23:59:59Z.
    public static let representableSeconds: ClosedRange<Int64> = UTCTimestamp.fourDigitYearSeconds

    /// `yyyyMMdd'T'HHmmss'Z'`; instants outside ``representableSeconds`` are shown clamped to it.
    public var description: String { UTCTimestamp.amzDate(secondsSince1970) }

    /// The `yyyyMMdd` date stamp used in the credential scope.
    public var dateStamp: String { String(description.prefix(8)) }

    /// This instant moved by `seconds`.
    public func adding(seconds: Int64) -> AmzDate {
        AmzDate(secondsSince1970: secondsSince1970 &+ seconds)
    }

    public static func < (lhs: AmzDate, rhs: AmzDate) -> Bool {
        lhs.secondsSince1970 < rhs.secondsSince1970
    }
}
