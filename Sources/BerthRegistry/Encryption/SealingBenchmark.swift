import BerthCore
@preconcurrency import Crypto
import Foundation
import NIOCore

/// `berth bench crypto`: where AES-256-GCM and SHA-256 set the limit on this CPU, and what the decrypting
/// read path (``SegmentDecoder``) reaches on top of them. Single-threaded, in memory, no I/O.
public enum SealingBenchmark {
    public struct Result: Sendable {
        public var name: String
        public var bytes: Int
        public var seconds: Double
        public var mibPerSecond: Double { Double(bytes) / 1_048_576 / seconds }
    }

    /// Runs each measure over `megabytes` of random content; `chunk` is the size of the reads fed to the
    /// decoder (the file reader's buffer size).
    public static func run(megabytes: Int, chunk: Int, repeats: Int) throws -> [Result] {
        let size = megabytes << 20
        var content = [UInt8](repeating: 0, count: size)
        var g = SystemRandomNumberGenerator()
        for i in stride(from: 0, to: size, by: 8) {
            withUnsafeBytes(of: g.next() as UInt64) { r in
                for j in 0..<min(8, size - i) { content[i + j] = r[j] }
            }
        }
        let key = SymmetricKey(size: .bits256)
        let header = SealedBlobHeader.fresh(slots: [])
        let segment = header.segmentSize
        let digest = BerthCore.Digest.sha256(of: content)
        let last = header.lastSegment(ofSize: Int64(size))

        func best(_ name: String, bytes: Int, _ body: () throws -> Void) rethrows -> Result {
            var fastest = Double.infinity
            for _ in 0..<repeats {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return Result(name: name, bytes: bytes, seconds: fastest)
        }

        var results: [Result] = []
        var sealed = [UInt8]()
        results.append(try best("seal (AES-256-GCM, 64 KiB segments)", bytes: size) {
            sealed.removeAll(keepingCapacity: true)
            var i: Int64 = 0
            try content.withUnsafeBytes { all in
                for start in stride(from: 0, to: max(size, 1), by: segment) {
                    let part = UnsafeRawBufferPointer(rebasing: all[start..<min(start + segment, size)])
                    sealed += try header.seal(part, index: i, final: i == last ? digest : nil, key: key)
                    i += 1
                }
            }
        })
        results.append(try best("open (AES-256-GCM, 64 KiB segments, swift-crypto API)", bytes: size) {
            var i: Int64 = 0
            var at = 0
            try sealed.withUnsafeBytes { all in
                while at < all.count {
                    let n = min(header.sealedSegmentSize, all.count - at)
                    _ = try header.open(UnsafeRawBufferPointer(rebasing: all[at..<at + n]), index: i,
                                        final: i == last ? digest : nil, key: key)
                    at += n
                    i += 1
                }
            }
        })
        results.append(best("SHA-256", bytes: size) { _ = SHA256.hash(data: content) })
        let buffer = ByteBuffer(bytes: sealed)
        var check = 0
        results.append(try best("decrypting read (SegmentDecoder, \(chunk >> 10) KiB reads)", bytes: size) {
            var decoder = SegmentDecoder(header: header, key: key, first: 0, last: last, final: last, size: Int64(size),
                                         digest: digest, window: 0...(Int64(size) - 1))
            var b = buffer
            check = 0
            while let piece = b.readSlice(length: min(chunk, b.readableBytes)), piece.readableBytes > 0 {
                check += try decoder.feed(piece).readableBytes
            }
            guard decoder.done, check == size else { throw SealedBlobError.authentication("benchmark decoded \(check) of \(size) bytes") }
        })
        return results
    }
}
