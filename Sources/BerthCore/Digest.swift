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
    /// `algorithm:encoded`, kept rather than built on every use (store keys, headers, cache keys).
    public let description: String

    public init(algorithm: Algorithm, encoded: String) {
        self.algorithm = algorithm
        self.encoded = encoded
        self.description = "\(algorithm.rawValue):\(encoded)"
    }

    // The description follows from the other two.
    public static func == (a: Digest, b: Digest) -> Bool { a.description == b.description }
    public func hash(into hasher: inout Hasher) { hasher.combine(description) }

    /// Parses a digest string; throws `BerthError.digestInvalid` unless it is a well-formed
    /// sha256 or sha512 digest (unknown algorithms are refused as the spec allows).
    public init(parsing string: some StringProtocol) throws(BerthError) {
        try self.init(parsing: String(string))
    }

    public init(parsing s: String) throws(BerthError) {
        let bytes = s.utf8
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { throw .digestInvalid(s) }
        let alg = bytes[..<colon]
        let enc = bytes[bytes.index(after: colon)...]
        let algorithm: Algorithm
        if alg.elementsEqual("sha256".utf8) {
            algorithm = .sha256
        } else if alg.elementsEqual("sha512".utf8) {
            algorithm = .sha512
        } else {
            throw .digestInvalid(s)
        }
        guard enc.count == algorithm.encodedLength,
              enc.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) })
        else { throw .digestInvalid(s) }
        self.algorithm = algorithm
        self.encoded = String(Substring(enc))
        self.description = s
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
