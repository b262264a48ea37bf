import Crypto
import Foundation

/// Seals key material at rest: AES-256-GCM under a key derived (HKDF-SHA256) from the registry's
/// master key, so KMS material and access-key secrets never share a key. The key id and material
/// version are bound as associated data: sealed material copied onto another key's row does not open.
///
/// Sealed form: `0x01 ‖ nonce (12) ‖ ciphertext (32) ‖ tag (16)`.
public struct KeyMaterialSealer: Sendable {
    static let version: UInt8 = 1
    static let info = Array("berth kms key material v1".utf8)
    // SymmetricKey is not Sendable in swift-crypto 3: keep the bytes.
    private let wrappingKey: [UInt8]

    /// `masterKey` is the registry's 256-bit master key (`master.key`).
    public init(masterKey: SymmetricKey) {
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, info: Self.info, outputByteCount: 32)
        wrappingKey = derived.withUnsafeBytes { Array($0) }
    }

    static func associatedData(keyID: String, version: Int) -> [UInt8] { Array("\(keyID)#\(version)".utf8) }

    public func seal(_ material: [UInt8], keyID: String, version: Int) throws -> [UInt8] {
        let box = try AES.GCM.seal(material, using: SymmetricKey(data: wrappingKey),
                                   authenticating: Self.associatedData(keyID: keyID, version: version))
        guard let combined = box.combined else { throw KMSError.internalError }
        return [Self.version] + Array(combined)
    }

    public func open(_ sealed: [UInt8], keyID: String, version: Int) throws -> [UInt8] {
        guard sealed.first == Self.version, sealed.count == 1 + 12 + 32 + 16 else { throw KMSError.internalError }
        let box = try AES.GCM.SealedBox(combined: sealed.dropFirst())
        return Array(try AES.GCM.open(box, using: SymmetricKey(data: wrappingKey),
                                      authenticating: Self.associatedData(keyID: keyID, version: version)))
    }

    /// 32 random bytes of new AES-256 key material.
    public static func newMaterial() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }
}

/// The ciphertext blob of `Encrypt` and `GenerateDataKey`, version 1:
///
/// ```
/// offset  size  field
/// 0       4     magic "BKM" and format version 0x01
/// 4       16    key id (the UUID's 16 bytes)
/// 20      4     key material version, big-endian
/// 24      12    nonce (random)
/// 36      n     AES-256-GCM ciphertext of the plaintext
/// 36+n    16    GCM tag
/// ```
///
/// The associated data is the 24-byte header followed by the encryption context in canonical form
/// (pairs sorted by key's UTF-8 bytes; each key and value as a 4-byte big-endian length and its UTF-8
/// bytes), so changing any header byte, the ciphertext or the context makes the tag fail.
public struct CiphertextBlob: Sendable, Equatable {
    static let magic: [UInt8] = [0x42, 0x4B, 0x4D, 0x01]
    static let headerSize = 24
    static let overhead = headerSize + 12 + 16

    public var keyID: String
    public var materialVersion: Int
    public var nonce: [UInt8]
    /// Ciphertext followed by the tag.
    public var sealed: [UInt8]

    /// Parses the framing only (no cryptography); nil for anything that is not a version 1 blob.
    public init?(_ bytes: [UInt8]) {
        guard bytes.count > Self.overhead, Array(bytes[0..<4]) == Self.magic,
              let id = Self.uuidString(bytes[4..<20]) else { return nil }
        let version = bytes[20..<24].reduce(0) { $0 << 8 | Int($1) }
        guard version >= 1 else { return nil }
        keyID = id
        materialVersion = version
        nonce = Array(bytes[24..<36])
        sealed = Array(bytes[36...])
    }

    var header: [UInt8] {
        var h = Self.magic
        h += Self.uuidBytes(keyID) ?? []
        let v = UInt32(materialVersion)
        h += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)]
        return h
    }

    public var bytes: [UInt8] { header + nonce + sealed }

    /// Encrypts `plaintext` with `material` (the key's version `materialVersion`), bound to `context`.
    public static func seal(_ plaintext: [UInt8], keyID: String, materialVersion: Int, material: [UInt8],
                            context: [String: String]) throws -> CiphertextBlob {
        guard uuidBytes(keyID) != nil else { throw KMSError.internalError }
        var blob = CiphertextBlob(keyID: keyID, materialVersion: materialVersion, nonce: [], sealed: [])
        let nonce = AES.GCM.Nonce()
        let box = try AES.GCM.seal(plaintext, using: SymmetricKey(data: material), nonce: nonce,
                                   authenticating: blob.header + canonical(context))
        blob.nonce = Array(nonce)
        blob.sealed = Array(box.ciphertext) + Array(box.tag)
        return blob
    }

    /// Decrypts with the material of `materialVersion`; throws `InvalidCiphertextException` when the
    /// blob was altered or `context` is not the one it was made with.
    public func open(material: [UInt8], context: [String: String]) throws(KMSError) -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: sealed.dropLast(16),
                                            tag: sealed.suffix(16))
            return Array(try AES.GCM.open(box, using: SymmetricKey(data: material), authenticating: header + Self.canonical(context)))
        } catch {
            throw .invalidCiphertext
        }
    }

    private init(keyID: String, materialVersion: Int, nonce: [UInt8], sealed: [UInt8]) {
        self.keyID = keyID
        self.materialVersion = materialVersion
        self.nonce = nonce
        self.sealed = sealed
    }

    /// The encryption context as bytes, independent of the order it was given in.
    static func canonical(_ context: [String: String]) -> [UInt8] {
        var out: [UInt8] = []
        for (k, v) in context.sorted(by: { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }) {
            for s in [k, v] {
                let u = Array(s.utf8)
                let n = UInt32(u.count)
                out += [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + u
            }
        }
        return out
    }

    static func uuidBytes(_ id: String) -> [UInt8]? {
        guard let u = UUID(uuidString: id) else { return nil }
        return withUnsafeBytes(of: u.uuid) { Array($0) }
    }

    static func uuidString(_ bytes: ArraySlice<UInt8>) -> String? {
        guard bytes.count == 16 else { return nil }
        let b = Array(bytes)
        let u = UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
        return u.uuidString.lowercased()
    }
}
