import BerthSupport
import Testing

@Suite struct TimestampParsingTests {
    @Test func rfc3339AsOSVWritesIt() {
        #expect(UTCTimestamp.parseRFC3339("1970-01-01T00:00:00Z") == 0)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T15:34:02.5Z") == 1_733_412_842.5)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T16:34:02+01:00") == 1_733_412_842)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05t15:34:02z") == 1_733_412_842)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05 15:34:02Z") == 1_733_412_842)
        #expect(UTCTimestamp.parseRFC3339("2016-12-31T23:59:60Z") == 1_483_228_800, "a leap second")
        let micros = try! #require(UTCTimestamp.parseRFC3339("2024-12-05T15:34:02.459517Z"))
        #expect(abs(micros - 1_733_412_842.459517) < 1e-6)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05") == nil)
        #expect(UTCTimestamp.parseRFC3339("2024-13-05T00:00:00Z") == nil)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T00:00:00") == nil)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T00:00Z") == nil, "seconds are required")
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T00:00:00+0100") == nil, "the offset needs its colon")
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T00:00:00.Z") == nil)
        #expect(UTCTimestamp.parseRFC3339("2024-12-05T00:00:00Zjunk") == nil)
    }

    @Test func w3cProfileAsIAMReadsIt() {
        #expect(UTCTimestamp.parseW3C("2020") == 1_577_836_800)
        #expect(UTCTimestamp.parseW3C("2020-02") == 1_580_515_200)
        #expect(UTCTimestamp.parseW3C("2020-01-01") == 1_577_836_800)
        #expect(UTCTimestamp.parseW3C("2020-01-01T00:00Z") == 1_577_836_800)
        #expect(UTCTimestamp.parseW3C("2019-12-31T19:00:00-05:00") == 1_577_836_800)
        #expect(UTCTimestamp.parseW3C("2019-12-31T19:00:00-0500") == 1_577_836_800)
        #expect(UTCTimestamp.parseW3C("2020-01-01t00:00:00.25z") == 1_577_836_800.25)
        #expect(UTCTimestamp.parseW3C("2023-02-29T12:00:00Z") == nil, "no such day")
        #expect(UTCTimestamp.parseW3C("2020-01-01T24:00:00Z") == nil)
        #expect(UTCTimestamp.parseW3C("2020-01-01T10:00:00") == nil, "a time needs its zone")
        #expect(UTCTimestamp.parseW3C("2020-01-01 10:00:00Z") == nil)
        #expect(UTCTimestamp.parseW3C("2020-01-01T10:00:60Z") == nil)
        #expect(UTCTimestamp.parseW3C("2020-01-01T10:00:00+24:00") == nil)
    }

    @Test func epochSeconds() {
        #expect(UTCTimestamp.parseEpochSeconds("1577836800") == 1_577_836_800)
        #expect(UTCTimestamp.parseEpochSeconds("") == nil)
        #expect(UTCTimestamp.parseEpochSeconds("-1") == nil)
        #expect(UTCTimestamp.parseEpochSeconds("1.5") == nil)
    }

    @Test func amzDateRoundTrips() {
        #expect(UTCTimestamp.parseAmzDate("20150830T123600Z") == 1_440_938_160)
        #expect(UTCTimestamp.amzDate(1_440_938_160) == "20150830T123600Z")
        #expect(UTCTimestamp.amzDate(951_782_400) == "20000229T000000Z")
        #expect(UTCTimestamp.amzDate(-1) == "19691231T235959Z")
        #expect(UTCTimestamp.amzDate(.max) == "99991231T235959Z", "clamped to four-digit years")
        #expect(UTCTimestamp.amzDate(.min) == "00000101T000000Z")
        #expect(UTCTimestamp.parseAmzDate("20150229T000000Z") == nil)
        #expect(UTCTimestamp.parseAmzDate("20150830T123600") == nil)
        #expect(UTCTimestamp.parseAmzDate("2015083OT123600Z") == nil)
        #expect(UTCTimestamp.parseAmzDate("20150830T240000Z") == nil)
    }

    @Test func calendarAgreesWithItselfOverFourHundredYears() {
        var days = UTCTimestamp.daysFromCivil(year: 1800, month: 1, day: 1)
        for year in 1800..<2200 {
            for month in 1...12 {
                for day in 1...UTCTimestamp.daysInMonth(year: year, month: month) {
                    #expect(UTCTimestamp.daysFromCivil(year: year, month: month, day: day) == days)
                    let back = UTCTimestamp.civilFromDays(days)
                    if back != (year, month, day) { Issue.record("\(year)-\(month)-\(day) came back as \(back)") }
                    days += 1
                }
            }
        }
        #expect(UTCTimestamp.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(UTCTimestamp.isLeap(2000) && !UTCTimestamp.isLeap(1900) && UTCTimestamp.isLeap(2024))
    }
}
