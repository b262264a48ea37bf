import BerthSupport
import Synchronization
import Testing

@Suite struct BoundedCacheTests {
    @Test func keepsValuesUntilTheyExpire() {
        let clock = ManualWallClock(1000)
        let cache = BoundedCache<String, Int>(capacity: 4, timeToLive: 10, clock: clock)
        cache.set(1, forKey: "a")
        #expect(cache.value(forKey: "a") == 1)
        clock.advance(by: 9.5)
        #expect(cache.value(forKey: "a") == 1)
        clock.advance(by: 0.5)
        #expect(cache.value(forKey: "a") == nil, "an entry is stale once its time to live has passed")
        #expect(cache.count == 0, "a stale entry found by a lookup is removed")
    }

    @Test func filledAtIsWhenTheLoadStarted() {
        let clock = ManualWallClock(1000)
        let cache = BoundedCache<String, Int>(capacity: 4, timeToLive: 1, clock: clock)
        let started = clock.now()
        clock.advance(by: 0.75)  // a slow load
        cache.set(1, forKey: "a", filledAt: started)
        #expect(cache.value(forKey: "a") == 1)
        clock.advance(by: 0.25)
        #expect(cache.value(forKey: "a") == nil)
    }

    @Test func explicitExpiry() {
        let clock = ManualWallClock(1000)
        let cache = BoundedCache<String, Int>(capacity: 4, timeToLive: 100, clock: clock)
        cache.set(1, forKey: "a", expiresAt: 1002)
        clock.advance(by: 1.9)
        #expect(cache.value(forKey: "a") == 1)
        clock.advance(by: 0.1)
        #expect(cache.value(forKey: "a") == nil)
        cache.set(2, forKey: "b", expiresAt: 1002)
        #expect(cache.value(forKey: "b") == nil, "a value already expired is not stored")
        #expect(cache.count == 0)
    }

    @Test func zeroTimeToLiveKeepsNothing() {
        let clock = ManualWallClock()
        let cache = BoundedCache<String, Int>(capacity: 4, timeToLive: 0, clock: clock)
        cache.set(1, forKey: "a")
        #expect(cache.value(forKey: "a") == nil)
        #expect(cache.count == 0)
    }

    @Test func infiniteTimeToLiveNeverAges() {
        let clock = ManualWallClock()
        let cache = BoundedCache<String, Int>(capacity: 4, clock: clock)
        cache.set(1, forKey: "a")
        clock.advance(by: 1e12)
        #expect(cache.value(forKey: "a") == 1)
    }

    @Test func generationMustMatch() {
        let cache = BoundedCache<String, Int>(capacity: 4, timeToLive: 10, clock: ManualWallClock())
        cache.set(1, forKey: "a", generation: 7)
        #expect(cache.value(forKey: "a", generation: 7) == 1)
        #expect(cache.value(forKey: "a", generation: 8) == nil, "a write moved the generation: the entry is stale")
        #expect(cache.value(forKey: "a", generation: 7) == nil, "and it was removed")
    }

    @Test func evictsTheLeastRecentlyUsed() {
        let cache = BoundedCache<String, Int>(capacity: 3, clock: ManualWallClock())
        cache.set(1, forKey: "a")
        cache.set(2, forKey: "b")
        cache.set(3, forKey: "c")
        #expect(cache.keysByRecency == ["c", "b", "a"])
        #expect(cache.value(forKey: "a") == 1)  // a is now the most recent
        #expect(cache.keysByRecency == ["a", "c", "b"])
        cache.set(4, forKey: "d")  // evicts b, not everything
        #expect(cache.count == 3)
        #expect(cache.value(forKey: "b") == nil)
        #expect(cache.value(forKey: "a") == 1)
        #expect(cache.value(forKey: "c") == 3)
        #expect(cache.value(forKey: "d") == 4)
        #expect(cache.keysByRecency == ["d", "c", "a"])
    }

    @Test func replacingAValueRefreshesItsRecency() {
        let cache = BoundedCache<String, Int>(capacity: 2, clock: ManualWallClock())
        cache.set(1, forKey: "a")
        cache.set(2, forKey: "b")
        cache.set(10, forKey: "a")
        cache.set(3, forKey: "c")  // evicts b
        #expect(cache.value(forKey: "a") == 10)
        #expect(cache.value(forKey: "b") == nil)
        #expect(cache.count == 2)
    }

    @Test func capacityOneAndSlotReuse() {
        let cache = BoundedCache<Int, Int>(capacity: 1, clock: ManualWallClock())
        for i in 0..<100 {
            cache.set(i, forKey: i)
            #expect(cache.value(forKey: i) == i)
            #expect(cache.count == 1)
        }
        #expect(cache.keysByRecency == [99])
    }

    @Test func explicitInvalidation() {
        let cache = BoundedCache<String, Int>(capacity: 8, clock: ManualWallClock())
        for (i, k) in ["r1/a", "r1/b", "r2/a", "r2/b"].enumerated() { cache.set(i, forKey: k) }
        cache.removeValue(forKey: "r1/a")
        #expect(cache.value(forKey: "r1/a") == nil)
        #expect(cache.value(forKey: "r1/b") == 1)
        cache.removeAll { $0.hasPrefix("r2/") }
        #expect(cache.keysByRecency == ["r1/b"])
        cache.removeAll()
        #expect(cache.count == 0)
        cache.set(9, forKey: "x")
        #expect(cache.value(forKey: "x") == 9, "usable after being emptied")
    }

    @Test func manyEntriesStayWithinCapacityInRecencyOrder() {
        let cache = BoundedCache<Int, Int>(capacity: 100, clock: ManualWallClock())
        for i in 0..<1000 {
            cache.set(i, forKey: i)
            if i % 3 == 0 { _ = cache.value(forKey: i / 2) }
        }
        #expect(cache.count == 100)
        let keys = cache.keysByRecency
        #expect(keys.count == 100)
        #expect(Set(keys).count == 100)
        #expect(keys.first == 999)
        for k in keys { #expect(cache.value(forKey: k) == k) }
    }

    @Test func concurrentUseKeepsTheBound() async {
        let cache = BoundedCache<Int, Int>(capacity: 64, timeToLive: 60, clock: ManualWallClock())
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask {
                    for i in 0..<2000 {
                        let k = (i * 7 + t) % 200
                        if let v = cache.value(forKey: k) { precondition(v == k * 2) }
                        cache.set(k * 2, forKey: k)
                        if i % 97 == 0 { cache.removeValue(forKey: k) }
                    }
                }
            }
        }
        #expect(cache.count <= 64)
        let keys = cache.keysByRecency
        #expect(keys.count == cache.count)
        #expect(Set(keys).count == keys.count)
        for k in keys { #expect(cache.value(forKey: k) == k * 2) }
    }

    @Test func boundedByCostLeastRecentlyUsedFirst() {
        let cache = BoundedCache<String, Int>(capacity: 100, maximumCost: 10, clock: ManualWallClock())
        cache.set(1, forKey: "a", cost: 4)
        cache.set(2, forKey: "b", cost: 4)
        #expect(cache.totalCost == 8)
        _ = cache.value(forKey: "a")
        cache.set(3, forKey: "c", cost: 4)  // b is the least recently used
        #expect(cache.value(forKey: "b") == nil)
        #expect(cache.keysByRecency == ["c", "a"])
        #expect(cache.totalCost == 8)
        cache.set(4, forKey: "d", cost: 10)  // evicts both
        #expect(cache.keysByRecency == ["d"])
        #expect(cache.totalCost == 10)
        cache.set(5, forKey: "e", cost: 11)  // more than the whole cache: not stored
        #expect(cache.value(forKey: "e") == nil)
        cache.set(6, forKey: "d", cost: 2)  // replacing an entry replaces its cost
        #expect(cache.totalCost == 2)
        cache.removeValue(forKey: "d")
        #expect(cache.totalCost == 0)
    }

    @Test func aLoadThatRacedWithARemovalIsNotStored() {
        let cache = BoundedCache<String, Int>(capacity: 4, clock: ManualWallClock())
        let before = cache.removals
        cache.removeValue(forKey: "x")  // a concurrent unlink while the load ran
        cache.set(1, forKey: "x", ifRemovals: before)
        #expect(cache.value(forKey: "x") == nil)
        let now = cache.removals
        cache.set(1, forKey: "x", ifRemovals: now)
        #expect(cache.value(forKey: "x") == 1)
        cache.removeAll { _ in false }
        #expect(cache.removals == now + 1, "every explicit removal counts, even one that found nothing")
        cache.removeAll()
        #expect(cache.removals == now + 2)
        _ = cache.value(forKey: "gone")
        #expect(cache.removals == now + 2, "lookups are not removals")
    }
}
