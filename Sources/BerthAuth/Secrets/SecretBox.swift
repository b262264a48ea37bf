#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto

/// Encrypts secret access keys at rest with AES-256-GCM.
///
/// The sealed form is `v1:` followed by standard base64 of `nonce (12) ‖ ciphertext ‖ tag (16)`.
/// An optional `context` (for example the access key id) is bound as associated data, so a sealed secret
/// copied onto another row fails to open.
public struct SecretBox: Sendable {
    /// The key length: 32 bytes (AES-256).
    public static let keyByteCount = 32

    private static let prefix = "v1:"
    // SymmetricKey is not Sendable in swift-crypto 3; keep the bytes and rebuild the key per use.
    private let keyBytes: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    /// Creates a box with a 256-bit `key`.
    public init(key: SymmetricKey) throws(SecretBoxError) {
        guard key.bitCount == Self.keyByteCount * 8 else { throw .invalidKeySize(key.bitCount / 8) }
        self.keyBytes = key.withUnsafeBytes { Array($0) }
    }

    /// Encrypts `plaintext`, bound to `context`.
    public func seal(_ plaintext: String, context: String = "") throws(SecretBoxError) -> String {
        do {
            let box = try AES.GCM.seal(Array(plaintext.utf8), using: key, authenticating: Array(context.utf8))
            guard let combined = box.combined else { throw SecretBoxError.sealingFailed }
            return Self.prefix + Data(combined).base64EncodedString()
        } catch {
            throw .sealingFailed
        }
    }

    /// Decrypts a string made by ``seal(_:context:)`` with the same key and `context`.
    public func open(_ sealed: String, context: String = "") throws(SecretBoxError) -> String {
        guard sealed.hasPrefix(Self.prefix) else { throw .malformed }
        guard let combined = Data(base64Encoded: String(sealed.dropFirst(Self.prefix.count))),
              combined.count >= 12 + 16
        else { throw .malformed }
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(combined: combined)
            plaintext = try AES.GCM.open(box, using: key, authenticating: Array(context.utf8))
        } catch {
            throw .authenticationFailed
        }
        guard let string = String(validating: plaintext, as: UTF8.self) else { throw .malformed }
        return string
    }

    /// A new random 256-bit key.
    public static func generateKey() -> SymmetricKey {
        SymmetricKey(size: .bits256)
    }

    /// Reads the key stored at `path`, or creates it (mode 0600) when no file exists.
    ///
    /// The file holds the key in base64 and one newline. A new key is written to a temporary file and
    /// hard-linked into place, so concurrent starters agree on one key and a crash never leaves a partial file.
    /// An existing file readable or writable by group or others is refused, as ssh refuses such keys.
    public static func loadOrCreateKey(atPath path: String) throws(SecretBoxError) -> SymmetricKey {
        if let key = try KeyFile.read(path) { return key }
        let key = generateKey()
        let encoded = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        if try KeyFile.createExclusively(path, contents: Array(encoded.utf8)) { return key }
        // Another process created the file first: use its key.
        guard let existing = try KeyFile.read(path) else { throw .keyFile(path: path, reason: "vanished") }
        return existing
    }
}

/// Why sealing, opening or loading a key failed.
public enum SecretBoxError: Error, Sendable, Hashable {
    /// The key is not 32 bytes long.
    case invalidKeySize(Int)
    /// The sealed string is not `v1:` plus base64 of a plausible box, or its plaintext is not UTF-8.
    case malformed
    /// The ciphertext was altered, or the key or context differ.
    case authenticationFailed
    /// AES-GCM refused to seal (should not happen).
    case sealingFailed
    /// The key file could not be read or written.
    case keyFile(path: String, reason: String)
    /// The key file does not hold a base64 32-byte key.
    case keyFileCorrupt(path: String)
    /// The key file is accessible to group or others (the mode is shown in octal).
    case insecureKeyFilePermissions(path: String, mode: String)
}
