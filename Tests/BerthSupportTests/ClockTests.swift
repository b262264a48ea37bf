import BerthSupport
import Testing

@Suite struct ClockTests {
    @Test func manualClockMovesOnlyWhenTold() {
        let clock = ManualWallClock(1000)
        #expect(clock.now() == 1000)
        clock.advance(by: 2.5)
        #expect(clock.now() == 1002.5)
        #expect(ManualWallClock().now() == 1_700_000_000)
    }

    @Test func systemClockIsNearTheWallClock() {
        let now = SystemWallClock().now()
        #expect(now > 1_700_000_000)  // after November 2023
        #expect(SystemWallClock().now() >= now)
    }
}
