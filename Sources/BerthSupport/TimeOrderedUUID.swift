#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Identifiers for records that are written far more than they are read (audit events, outbox events):
/// RFC 9562 version 7 UUIDs in lower-case text (`xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx`), whose first 48
/// bits are the Unix time in milliseconds. Indexed by such ids, a table grows at its end, as it does by
/// time: a random (version 4) id lands on a random page of every index keyed by it, so each insert
/// dirties a page nobody else touches, and the writer rewrites most of the index as it grows (the audit
/// trail's inserts cost 3–4× more with version 4 ids; docs/architecture.md, BerthAudit).
///
/// The 74 bits after the time and version are unique within the process (a counter through a bijective
/// mix, so no two ids of one process are equal, whatever the clock does) and random across processes
/// (seeded from the system's generator), as a version 4 id is; ids are not secrets, and not guessable
/// without the seed either.
public final class TimeOrderedUUID: Sendable {
    public static let shared = TimeOrderedUUID()

    private let counter = Atomic<UInt64>(0)
    private let seed: UInt64
    /// 10 more random bits of the process, for the 74 bits a version 7 id has beside its time.
    private let tail: UInt64

    public init() {
        var g = SystemRandomNumberGenerator()
        seed = g.next()
        tail = g.next() & 0x3ff
    }

    /// A new id for now (the system's wall clock).
    public func next() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return next(unixMilliseconds: UInt64(max(0, ts.tv_sec)) &* 1000 &+ UInt64(max(0, ts.tv_nsec)) / 1_000_000)
    }

    /// A new id whose time is `unixMilliseconds` (its low 48 bits).
    public func next(unixMilliseconds: UInt64) -> String {
        let n = counter.wrappingAdd(1, ordering: .relaxed).oldValue
        let m = Self.mix(n &+ seed)
        // time (48) | version 7 (4) | m's top 12 bits | variant 0b10 (2) | m's low 52 bits | tail (10)
        let high = (unixMilliseconds & 0xffff_ffff_ffff) << 16 | 0x7000 | (m >> 52)
        let low = 0x8000_0000_0000_0000 | (m & 0x000f_ffff_ffff_ffff) << 10 | tail
        return Self.text(high: high, low: low)
    }

    /// The splitmix64 finalizer: a bijection of 64-bit values that scatters consecutive ones.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// The 8-4-4-4-12 lower-case hex form of a 128-bit value.
    static func text(high: UInt64, low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 36) { buffer in
            let digits: StaticString = "0123456789abcdef"
            var i = 0
            func put(_ value: UInt64, _ nibbles: Int) {
                for k in stride(from: nibbles - 1, through: 0, by: -1) {
                    buffer[i] = digits.utf8Start[Int(value >> (UInt64(k) * 4) & 0xf)]
                    i += 1
                }
            }
            func dash() { buffer[i] = UInt8(ascii: "-"); i += 1 }
            put(high >> 32, 8); dash()
            put(high >> 16 & 0xffff, 4); dash()
            put(high & 0xffff, 4); dash()
            put(low >> 48, 4); dash()
            put(low & 0xffff_ffff_ffff, 12)
            return 36
        }
    }
}
