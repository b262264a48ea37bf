import Crypto

/// HMAC-SHA256 (RFC 2104) over swift-crypto's SHA-256, on plain byte arrays.
///
/// SigV4 runs five HMACs per request over short keys; `Crypto.HMAC` wraps every key in a `SymmetricKey` and
/// every input in `DataProtocol` regions, which made it most of the verification time. This is the same
/// construction on the same SHA-256 (tests compare the two, and check RFC 4231).
enum HMACSHA256 {
    private static let blockSize = 64

    /// `HMAC-SHA256(key, message)`, 32 bytes.
    static func authenticationCode(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var block = [UInt8](repeating: 0, count: blockSize)
        if key.count > blockSize {
            let digest = digest(key)
            block.replaceSubrange(0..<digest.count, with: digest)
        } else {
            block.replaceSubrange(0..<key.count, with: key)
        }
        for index in 0..<blockSize { block[index] ^= 0x36 }
        var inner = SHA256()
        block.withUnsafeBytes { inner.update(bufferPointer: $0) }
        message.withUnsafeBytes { inner.update(bufferPointer: $0) }
        let innerDigest = bytes(of: inner.finalize())
        for index in 0..<blockSize { block[index] ^= 0x36 ^ 0x5C }
        var outer = SHA256()
        block.withUnsafeBytes { outer.update(bufferPointer: $0) }
        innerDigest.withUnsafeBytes { outer.update(bufferPointer: $0) }
        return bytes(of: outer.finalize())
    }

    /// `SHA-256(data)`, 32 bytes.
    static func digest(_ data: [UInt8]) -> [UInt8] {
        var hasher = SHA256()
        data.withUnsafeBytes { hasher.update(bufferPointer: $0) }
        return bytes(of: hasher.finalize())
    }

    private static func bytes(of digest: SHA256.Digest) -> [UInt8] {
        digest.withUnsafeBytes { Array($0) }
    }
}
