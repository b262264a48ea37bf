import BerthSupport
import Foundation
import Testing

@Suite struct TimeOrderedUUIDTests {
    @Test func isAVersion7UUIDWhoseFirst48BitsAreTheTime() throws {
        let ms: UInt64 = 1_765_112_345_678
        let id = TimeOrderedUUID().next(unixMilliseconds: ms)
        #expect(id.count == 36)
        #expect(id == id.lowercased())
        let uuid = try #require(UUID(uuidString: id))
        let b = uuid.uuid
        #expect(b.6 >> 4 == 7)  // version
        #expect(b.8 >> 6 == 0b10)  // variant
        let time = [b.0, b.1, b.2, b.3, b.4, b.5].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(time == ms)
        #expect(id.hasPrefix(String(ms, radix: 16).leftPadded(to: 8 + 4 + 1, dashAfter: 8)))
    }

    @Test func idsSortByTimeAsText() {
        let g = TimeOrderedUUID()
        let ids = (0..<200).map { g.next(unixMilliseconds: 1_765_000_000_000 + UInt64($0) * 7) }
        #expect(ids == ids.sorted())
    }

    @Test func idsOfOneProcessNeverRepeatEvenInOneMillisecond() {
        let g = TimeOrderedUUID()
        let ids = (0..<100_000).map { _ in g.next(unixMilliseconds: 1_765_000_000_000) }
        #expect(Set(ids).count == ids.count)
    }

    @Test func twoGeneratorsDiffer() {
        let a = TimeOrderedUUID(), b = TimeOrderedUUID()
        let ms: UInt64 = 1_765_000_000_000
        let x = Set((0..<1_000).map { _ in a.next(unixMilliseconds: ms) })
        let y = Set((0..<1_000).map { _ in b.next(unixMilliseconds: ms) })
        #expect(x.isDisjoint(with: y))
    }

    @Test func nowIsTheWallClock() throws {
        let before = UInt64(Date().timeIntervalSince1970 * 1000)
        let id = TimeOrderedUUID.shared.next()
        let after = UInt64(Date().timeIntervalSince1970 * 1000)
        let time = try #require(UInt64(id.replacingOccurrences(of: "-", with: "").prefix(12), radix: 16))
        #expect(time >= before && time <= after + 1)
    }
}

extension String {
    /// `self` left-padded with zeros to `count` hex digits, with a dash after the first `dashAfter`.
    fileprivate func leftPadded(to count: Int, dashAfter: Int) -> String {
        let digits = String(repeating: "0", count: max(0, count - 1 - self.count)) + self
        return digits.prefix(dashAfter) + "-" + digits.dropFirst(dashAfter)
    }
}
