import Crypto
import Foundation

/// A content digest, `algorithm ":" encoded`, as defined by the OCI image-spec.
public struct Digest: Hashable, Sendable, CustomStringConvertible, Comparable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case sha256
        case sha512

        /// Length of the lowercase hex encoding.
        public var encodedLength: Int { self == .sha256 ? 64 : 128 }
    }

    public let algorithm: Algorithm
    /// Lowercase hex encoding of the hash.
    public let encoded: String

    public var description: String { "\(algorithm.rawValue):\(encoded)" }

    public init(algorithm: Algorithm, encoded: String) {
        self.algorithm = algorithm
        self.encoded = encoded
    }

    /// Parses a digest string; throws `BerthError.digestInvalid` unless it is a well-formed
    /// sha256 or sha512 digest (unknown algorithms are refused as the spec allows).
    public init(parsing string: some StringProtocol) throws(BerthError) {
        let s = String(string)
        guard let colon = s.firstIndex(of: ":") else { throw .digestInvalid(s) }
        let alg = s[s.startIndex..<colon]
        let enc = s[s.index(after: colon)...]
        guard let algorithm = Algorithm(rawValue: String(alg)) else {
            throw .digestInvalid(s)
        }
        guard enc.utf8.count == algorithm.encodedLength,
              enc.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw .digestInvalid(s) }
        self.algorithm = algorithm
        self.encoded = String(enc)
    }

    /// Returns nil instead of throwing.
    public static func parse(_ string: some StringProtocol) -> Digest? {
        try? Digest(parsing: string)
    }

    /// The sha256 digest of some bytes.
    public static func sha256<D: DataProtocol>(of bytes: D) -> Digest {
        Digest(algorithm: .sha256, encoded: SHA256.hash(data: bytes).hexString)
    }

    public static func < (lhs: Digest, rhs: Digest) -> Bool { lhs.description < rhs.description }
}

/// An incremental hasher for any supported digest algorithm.
public struct DigestHasher: Sendable {
    // SHA256/SHA512 are plain value types; Crypto does not mark them Sendable.
    private enum State: @unchecked Sendable {
        case sha256(SHA256)
        case sha512(SHA512)
    }
    private var state: State
    public let algorithm: Digest.Algorithm

    public init(_ algorithm: Digest.Algorithm = .sha256) {
        self.algorithm = algorithm
        switch algorithm {
        case .sha256: state = .sha256(SHA256())
        case .sha512: state = .sha512(SHA512())
        }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        switch state {
        case .sha256(var h): h.update(bufferPointer: bytes); state = .sha256(h)
        case .sha512(var h): h.update(bufferPointer: bytes); state = .sha512(h)
        }
    }

    public mutating func update<D: DataProtocol>(data: D) {
        switch state {
        case .sha256(var h): h.update(data: data); state = .sha256(h)
        case .sha512(var h): h.update(data: data); state = .sha512(h)
        }
    }

    public func finalize() -> Digest {
        switch state {
        case .sha256(let h): return Digest(algorithm: .sha256, encoded: h.finalize().hexString)
        case .sha512(let h): return Digest(algorithm: .sha512, encoded: h.finalize().hexString)
        }
    }
}

extension Sequence where Element == UInt8 {
    /// Lowercase hexadecimal encoding.
    public var hexString: String {
        let table: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(underestimatedCount * 2)
        for b in self {
            out.append(table[Int(b >> 4)])
            out.append(table[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
