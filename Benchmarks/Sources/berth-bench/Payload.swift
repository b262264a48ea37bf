import NIOCore

/// xoshiro256** — fast, good-quality PRNG for filling payloads (not for cryptography).
struct Xoshiro256: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm); s1 = splitmix(&sm); s2 = splitmix(&sm); s3 = splitmix(&sm)
    }

    init() {
        var sys = SystemRandomNumberGenerator()
        self.init(seed: sys.next())
    }

    @inline(__always)
    mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// Lowercase hex string of `bytes` random bytes.
    mutating func hex(_ bytes: Int) -> String {
        var out = ""
        while out.count < bytes * 2 {
            let v = next()
            let s = String(v, radix: 16)
            out += String(repeating: "0", count: 16 - s.count) + s
        }
        return String(out.prefix(bytes * 2))
    }
}

func fillRandom(_ ptr: UnsafeMutableRawBufferPointer, _ rng: inout Xoshiro256) {
    let words = ptr.count / 8
    for i in 0..<words {
        ptr.storeBytes(of: rng.next(), toByteOffset: i &* 8, as: UInt64.self)
    }
    var tail = rng.next()
    for i in (words * 8)..<ptr.count {
        ptr[i] = UInt8(truncatingIfNeeded: tail)
        tail >>= 8
    }
}

/// One contiguous random buffer; blobs are zero-copy slices of it at distinct offsets, so each pushed blob
/// has unique content (and digest) without allocating a new buffer per blob.
struct PayloadPool: Sendable {
    let buffer: ByteBuffer
    static let stride = 4096

    init(maxBlobSize: Int, slots: Int, rng: inout Xoshiro256) {
        let total = maxBlobSize + slots * Self.stride
        var buf = ByteBufferAllocator().buffer(capacity: total)
        buf.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { ptr in
            fillRandom(UnsafeMutableRawBufferPointer(rebasing: ptr[0..<total]), &rng)
            return total
        }
        self.buffer = buf
    }

    /// Slot `i` of length `size`: a view (no copy) into the shared buffer.
    func blob(slot i: Int, size: Int) -> ByteBuffer {
        precondition(i * Self.stride + size <= buffer.readableBytes, "payload pool too small")
        return buffer.getSlice(at: buffer.readerIndex + i * Self.stride, length: size)!
    }
}
