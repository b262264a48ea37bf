import BerthCore
@preconcurrency import Crypto
import NIOCore
import Foundation

/// The at-rest format of an encrypted blob (docs/encryption.md): a header, then the content sealed in
/// fixed-size segments with AES-256-GCM under the blob's own data key.
///
///     header   "BERTHSB1" | segment size (u32) | blob id (16 bytes) | header length (u32) |
///              slot count (u16) | slots: domain length (u16), domain, wrapped key length (u16), wrapped key
///     segment  nonce (12) | ciphertext (≤ segment size) | tag (16)
///
/// Every segment but the last holds exactly `segmentSize` bytes of content. A segment's associated data is
/// the blob id, its index and a final flag; the final segment's also carries the blob's digest. So a
/// segment moved to another position or another blob, a truncated blob (its last segment is not final) and
/// a file standing in for another digest all fail to open, as does any flipped bit. Each key slot is the
/// data key wrapped by one key domain's key (`AES256` or a KMS key ARN), bound to the blob id.
public struct SealedBlobHeader: Sendable, Equatable {
    public static let magic: [UInt8] = Array("BERTHSB1".utf8)
    /// Content bytes per segment.
    public static let defaultSegmentSize = 64 << 10
    /// Bytes a segment adds to its content: nonce and tag.
    public static let segmentOverhead = 12 + 16
    /// The fixed part before the slots.
    static let fixedLength = 8 + 4 + 16 + 4 + 2
    /// The largest header a reader accepts.
    public static let maximumLength = 16 << 10

    public struct Slot: Sendable, Equatable {
        public var domain: String
        public var wrappedKey: [UInt8]
        public init(domain: String, wrappedKey: [UInt8]) {
            self.domain = domain
            self.wrappedKey = wrappedKey
        }
    }

    public var segmentSize: Int
    public var blobID: [UInt8]
    public var slots: [Slot]

    public init(segmentSize: Int = SealedBlobHeader.defaultSegmentSize, blobID: [UInt8], slots: [Slot]) {
        self.segmentSize = segmentSize
        self.blobID = blobID
        self.slots = slots
    }

    /// A header with a fresh random blob id.
    public static func fresh(slots: [Slot], segmentSize: Int = defaultSegmentSize) -> SealedBlobHeader {
        var id = [UInt8](repeating: 0, count: 16)
        var g = SystemRandomNumberGenerator()
        for i in id.indices { id[i] = UInt8.random(in: 0...255, using: &g) }
        return SealedBlobHeader(segmentSize: segmentSize, blobID: id, slots: slots)
    }

    /// The blob id in hex: the encryption context of its key slots.
    public var blobIDHex: String { blobID.map { String(format: "%02x", $0) }.joined() }

    public func slot(for domain: String) -> Slot? { slots.first { $0.domain == domain } }

    public var encoded: [UInt8] {
        var out = Self.magic
        func u32(_ v: Int) { out += [UInt8(v >> 24 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        func u16(_ v: Int) { out += [UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
        u32(segmentSize)
        out += blobID
        let lengthAt = out.count
        u32(0)
        u16(slots.count)
        for s in slots {
            let d = Array(s.domain.utf8)
            u16(d.count)
            out += d
            u16(s.wrappedKey.count)
            out += s.wrappedKey
        }
        let n = out.count
        out[lengthAt] = UInt8(n >> 24 & 0xff); out[lengthAt + 1] = UInt8(n >> 16 & 0xff)
        out[lengthAt + 2] = UInt8(n >> 8 & 0xff); out[lengthAt + 3] = UInt8(n & 0xff)
        return out
    }

    /// Whether `bytes` starts like a header.
    public static func hasMagic<C: Collection<UInt8>>(_ bytes: C) -> Bool { bytes.starts(with: magic) }

    /// The header's total length from its first `fixedLength` bytes, or nil when they are not a header's.
    public static func length<C: Collection<UInt8>>(fromPrefix bytes: C) -> Int? {
        let b = Array(bytes.prefix(fixedLength))
        guard b.count >= 32, hasMagic(b) else { return nil }
        let n = Int(b[28]) << 24 | Int(b[29]) << 16 | Int(b[30]) << 8 | Int(b[31])
        return (fixedLength...maximumLength).contains(n) ? n : nil
    }

    /// Parses a header from the start of `bytes` (which may hold more); nil when it is not a valid one.
    public init?<C: Collection<UInt8>>(parsing bytes: C) {
        let b = Array(bytes.prefix(Self.maximumLength))
        guard let total = Self.length(fromPrefix: b), b.count >= total else { return nil }
        func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        func u16(_ i: Int) -> Int { Int(b[i]) << 8 | Int(b[i + 1]) }
        let size = u32(8)
        guard (1...(16 << 20)).contains(size) else { return nil }
        var at = Self.fixedLength
        var slots: [Slot] = []
        for _ in 0..<u16(32) {
            guard at + 2 <= total else { return nil }
            let dl = u16(at); at += 2
            guard at + dl + 2 <= total, let domain = String(bytes: b[at..<at + dl], encoding: .utf8) else { return nil }
            at += dl
            let wl = u16(at); at += 2
            guard at + wl <= total else { return nil }
            slots.append(Slot(domain: domain, wrappedKey: Array(b[at..<at + wl])))
            at += wl
        }
        guard at == total else { return nil }
        self.init(segmentSize: size, blobID: Array(b[12..<28]), slots: slots)
    }

    // MARK: geometry

    /// Bytes a full segment takes on disk.
    public var sealedSegmentSize: Int { segmentSize + Self.segmentOverhead }

    /// The index of the last (final) segment of `plaintextSize` bytes of content: an empty blob has one, empty, segment.
    public func lastSegment(ofSize plaintextSize: Int64) -> Int64 {
        plaintextSize == 0 ? 0 : (plaintextSize - 1) / Int64(segmentSize)
    }

    /// Where segment `index` starts on disk, for a header of `headerLength` bytes.
    public func offset(ofSegment index: Int64, headerLength: Int) -> Int64 {
        Int64(headerLength) + index * Int64(sealedSegmentSize)
    }

    /// The stored size of a sealed blob of `plaintextSize` bytes.
    public func sealedSize(ofPlaintext plaintextSize: Int64, headerLength: Int) -> Int64 {
        Int64(headerLength) + plaintextSize + (lastSegment(ofSize: plaintextSize) + 1) * Int64(Self.segmentOverhead)
    }

    // MARK: segments

    /// The associated data of segment `index`: blob id, index, final flag, and for the final one the digest.
    func associatedData(index: Int64, final digest: BerthCore.Digest?) -> [UInt8] {
        var aad = blobID
        for shift in stride(from: 56, through: 0, by: -8) { aad.append(UInt8(truncatingIfNeeded: index >> Int64(shift))) }
        if let digest {
            aad.append(1)
            aad += Array(digest.description.utf8)
        } else {
            aad.append(0)
        }
        return aad
    }

    /// Seals one segment's content (at most `segmentSize` bytes) with a fresh random nonce.
    public func seal<D: DataProtocol>(_ content: D, index: Int64, final digest: BerthCore.Digest?, key: SymmetricKey) throws -> [UInt8] {
        var out = ByteBuffer()
        try seal(content, index: index, final: digest, key: key, into: &out)
        return Array(out.readableBytesView)
    }

    /// Seals one segment's content and appends it (nonce, ciphertext, tag) to `out`: the upload path's
    /// form, one copy of the ciphertext fewer than building an array first.
    public func seal<D: DataProtocol>(_ content: D, index: Int64, final digest: BerthCore.Digest?, key: SymmetricKey,
                                      into out: inout ByteBuffer) throws {
        let box = try AES.GCM.seal(content, using: key, nonce: AES.GCM.Nonce(),
                                   authenticating: associatedData(index: index, final: digest))
        box.nonce.withUnsafeBytes { _ = out.writeBytes($0) }
        box.ciphertext.withUnsafeBytes { _ = out.writeBytes($0) }
        box.tag.withUnsafeBytes { _ = out.writeBytes($0) }
    }

    /// Opens one sealed segment; `SealedBlobError.authentication` when anything about it is wrong.
    public func open<D: DataProtocol>(_ sealed: D, index: Int64, final digest: BerthCore.Digest?, key: SymmetricKey) throws -> Data {
        guard sealed.count >= Self.segmentOverhead, sealed.count <= sealedSegmentSize else {
            throw SealedBlobError.authentication("segment \(index) has \(sealed.count) bytes")
        }
        do {
            let box = try AES.GCM.SealedBox(combined: sealed)
            return try AES.GCM.open(box, using: key, authenticating: associatedData(index: index, final: digest))
        } catch {
            throw SealedBlobError.authentication("segment \(index) failed authentication")
        }
    }
}

/// Why a sealed blob could not be read.
public enum SealedBlobError: Error, Equatable, CustomStringConvertible {
    /// The stored bytes are not what was written (a flipped bit, a truncation, a wrong key or position).
    case authentication(String)
    /// The stored header is not a valid one.
    case header(String)
    /// The blob has no key slot for the repository's key domain.
    case noSlot(String)

    public var description: String {
        switch self {
        case .authentication(let s): return "encrypted blob failed authentication: \(s)"
        case .header(let s): return "encrypted blob header is invalid: \(s)"
        case .noSlot(let s): return "encrypted blob has no key for \(s)"
        }
    }
}
