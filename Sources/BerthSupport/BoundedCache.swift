import Synchronization

/// An in-memory cache with a bound on its size, least-recently-used eviction, a time to live per entry and
/// explicit invalidation; safe to share between tasks.
///
/// An entry is used only while it is fresh: before its expiry time (by the injected `WallClock`) and, when
/// the caller gives a `generation`, only while that generation is the one the entry was filled at. Callers
/// that cache data a store may change read the store's generation *before* loading and store the value with
/// it, so a write that lands during the load leaves the entry already stale. When the cache is full (by
/// number of entries, or by the total `cost` callers give entries, e.g. their size in bytes), adding an entry
/// evicts those used least recently (a hit counts as a use); a stale entry found by a lookup is removed at once.
///
/// Explicit removals are counted (`removals`): a caller that loads a value while another task may remove it
/// reads the count first and stores with `ifRemovals:`, so a load that raced with a removal is not cached.
public final class BoundedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    /// The most entries kept at once.
    public let capacity: Int
    /// The most total cost kept at once.
    public let maximumCost: Int
    /// How long an entry is fresh after it was filled, unless `set` is given its own expiry.
    public let timeToLive: Double
    @usableFromInline let clock: any WallClock
    @usableFromInline let state: Mutex<LRUList<Key, Value>>

    /// - Parameters:
    ///   - capacity: the most entries kept at once (at least 1).
    ///   - maximumCost: the most total cost kept at once (entries cost 0 unless `set` says otherwise).
    ///   - timeToLive: seconds an entry stays fresh; `.infinity` for entries that never age (0 keeps nothing).
    ///   - clock: the clock expiry is measured by.
    public init(capacity: Int, maximumCost: Int = .max, timeToLive: Double = .infinity, clock: any WallClock = SystemWallClock()) {
        precondition(capacity > 0, "a cache holds at least one entry")
        self.capacity = capacity
        self.maximumCost = maximumCost
        self.timeToLive = timeToLive
        self.clock = clock
        self.state = Mutex(LRUList(capacity: capacity, maximumCost: maximumCost))
    }

    /// The fresh value for `key` (marking it most recently used), or nil when there is none, it has expired,
    /// or it was filled at another `generation`.
    @inlinable
    public func value(forKey key: Key, generation: UInt64 = 0) -> Value? {
        let now = clock.now()
        return state.withLock { $0.lookup(key, now: now, generation: generation) }
    }

    /// Stores `value` for `key`, fresh for `timeToLive` from `filledAt` (default: now) and for `generation`.
    @inlinable
    public func set(_ value: Value, forKey key: Key, generation: UInt64 = 0, filledAt: Double? = nil, cost: Int = 0,
                    ifRemovals removals: UInt64? = nil) {
        let at = filledAt ?? clock.now()
        set(value, forKey: key, generation: generation, expiresAt: at + timeToLive, cost: cost, ifRemovals: removals)
    }

    /// Stores `value` for `key`, fresh until `expiresAt` (seconds since 1970) and for `generation`, counting
    /// `cost` against `maximumCost`. Nothing is stored when the value has already expired or costs more than
    /// the whole cache (what `key` had is then removed), or when `removals` is given and explicit removals
    /// happened since it was read.
    @inlinable
    public func set(_ value: Value, forKey key: Key, generation: UInt64 = 0, expiresAt: Double, cost: Int = 0,
                    ifRemovals removals: UInt64? = nil) {
        let now = clock.now()
        state.withLock { list in
            if let removals, list.removals != removals { return }
            guard now < expiresAt, cost <= maximumCost else { list.remove(key); return }
            list.insert(key, value, expiresAt: expiresAt, generation: generation, cost: cost)
        }
    }

    /// Forgets `key`.
    @inlinable
    public func removeValue(forKey key: Key) {
        state.withLock { list in
            list.removals &+= 1
            list.remove(key)
        }
    }

    /// Forgets every key `shouldRemove` selects.
    public func removeAll(where shouldRemove: (Key) -> Bool) {
        state.withLock { list in
            list.removals &+= 1
            for key in list.keys where shouldRemove(key) { list.remove(key) }
        }
    }

    /// Forgets everything.
    public func removeAll() {
        state.withLock { list in
            let removals = list.removals &+ 1
            list = LRUList(capacity: capacity, maximumCost: maximumCost)
            list.removals = removals
        }
    }

    /// How many explicit removals (`removeValue`, `removeAll`) there have been.
    public var removals: UInt64 { state.withLock { $0.removals } }

    /// The total cost of the entries held.
    public var totalCost: Int { state.withLock { $0.totalCost } }

    /// The number of entries held, fresh or not yet found stale.
    public var count: Int { state.withLock { $0.count } }

    /// The keys from most to least recently used (for tests and diagnostics).
    public var keysByRecency: [Key] { state.withLock { $0.keysByRecency } }
}

/// A doubly linked list over an array of slots, indexed by key: O(1) lookup, move to front, insert and evict.
@usableFromInline
struct LRUList<Key: Hashable, Value> {
    @usableFromInline
    struct Slot {
        @usableFromInline var key: Key
        @usableFromInline var value: Value?  // nil once the slot is free, so a forgotten value is released
        @usableFromInline var expiresAt: Double
        @usableFromInline var generation: UInt64
        @usableFromInline var cost: Int
        @usableFromInline var newer: Int  // towards the head (most recent); -1 at the head
        @usableFromInline var older: Int  // towards the tail (least recent); -1 at the tail

        @usableFromInline
        init(key: Key, value: Value?, expiresAt: Double, generation: UInt64, cost: Int, newer: Int, older: Int) {
            self.key = key
            self.value = value
            self.expiresAt = expiresAt
            self.generation = generation
            self.cost = cost
            self.newer = newer
            self.older = older
        }
    }

    @usableFromInline let capacity: Int
    @usableFromInline let maximumCost: Int
    @usableFromInline var totalCost = 0
    @usableFromInline var removals: UInt64 = 0
    @usableFromInline var index: [Key: Int] = [:]
    @usableFromInline var slots: [Slot] = []
    @usableFromInline var free: [Int] = []
    @usableFromInline var head = -1
    @usableFromInline var tail = -1

    @usableFromInline
    init(capacity: Int, maximumCost: Int) {
        self.capacity = capacity
        self.maximumCost = maximumCost
    }

    var count: Int { index.count }
    var keys: [Key] { Array(index.keys) }

    var keysByRecency: [Key] {
        var out: [Key] = []
        var i = head
        while i >= 0 { out.append(slots[i].key); i = slots[i].older }
        return out
    }

    @inlinable
    mutating func lookup(_ key: Key, now: Double, generation: UInt64) -> Value? {
        guard let i = index[key] else { return nil }
        guard now < slots[i].expiresAt, slots[i].generation == generation else {
            remove(key)
            return nil
        }
        moveToFront(i)
        return slots[i].value
    }

    @inlinable
    mutating func insert(_ key: Key, _ value: Value, expiresAt: Double, generation: UInt64, cost: Int) {
        remove(key)
        while tail >= 0, index.count >= capacity || totalCost > maximumCost - cost { remove(slots[tail].key) }
        totalCost += cost
        let slot = Slot(key: key, value: value, expiresAt: expiresAt, generation: generation, cost: cost, newer: -1, older: head)
        let i: Int
        if let reused = free.popLast() {
            i = reused
            slots[i] = slot
        } else {
            i = slots.count
            slots.append(slot)
        }
        if head >= 0 { slots[head].newer = i }
        head = i
        if tail < 0 { tail = i }
        index[key] = i
    }

    @inlinable
    mutating func remove(_ key: Key) {
        guard let i = index.removeValue(forKey: key) else { return }
        unlink(i)
        totalCost -= slots[i].cost
        slots[i].value = nil
        free.append(i)
    }

    @inlinable
    mutating func unlink(_ i: Int) {
        let newer = slots[i].newer, older = slots[i].older
        if newer >= 0 { slots[newer].older = older } else { head = older }
        if older >= 0 { slots[older].newer = newer } else { tail = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }

    @inlinable
    mutating func moveToFront(_ i: Int) {
        guard head != i else { return }
        unlink(i)
        slots[i].older = head
        if head >= 0 { slots[head].newer = i }
        head = i
        if tail < 0 { tail = i }
    }
}
