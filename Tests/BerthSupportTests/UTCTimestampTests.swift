import BerthSupport
import Testing

@Suite struct UTCTimestampTests {
    @Test(arguments: [
        (0.0, false, "1970-01-01T00:00:00Z"),
        (1_764_580_207.123, true, "2025-12-01T09:10:07.123Z"),
        (1_764_580_207.999_9, false, "2025-12-01T09:10:07Z"),
        (1_709_251_199.0, false, "2024-02-29T23:59:59Z"),
        (-1.0, false, "1969-12-31T23:59:59Z"),
        (951_782_400.5, true, "2000-02-29T00:00:00.500Z"),
    ])
    func rendersRFC3339InUTC(seconds: Double, millis: Bool, expected: String) {
        #expect(UTCTimestamp.iso8601(seconds, millis: millis) == expected)
    }

    @Test func millisecondsRoundToTheNearestAndCarry() {
        // 0.9996 s rounds to the next second, never to ".1000".
        #expect(UTCTimestamp.iso8601(59.9996, millis: true) == "1970-01-01T00:01:00.000Z")
        #expect(UTCTimestamp.iso8601(59.9994, millis: true) == "1970-01-01T00:00:59.999Z")
    }

    @Test func compactFormIsSortableAndFileNameSafe() {
        #expect(UTCTimestamp.compact(1_764_580_207.9) == "20251201-091007")
        #expect(UTCTimestamp.compact(0) < UTCTimestamp.compact(1))
    }

    @Test func nonFiniteValuesDoNotCrash() {
        #expect(UTCTimestamp.iso8601(.nan) == "1970-01-01T00:00:00Z")
        #expect(UTCTimestamp.iso8601(.infinity, millis: true) == "1970-01-01T00:00:00Z")
    }
}
