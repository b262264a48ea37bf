#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthSupport
import Crypto

/// What a registry auth token (the `GetAuthorizationToken` password for `docker login`) asserts.
public struct RegistryTokenClaims: Sendable, Hashable {
    /// A random identifier of this token (hex), for audit logs.
    public var tokenID: String
    /// The 12-digit account (registry id) the token was issued in.
    public var accountID: String
    /// The ARN of the principal the token acts as.
    public var principalARN: String
    /// The access key id whose SigV4 request obtained the token.
    public var accessKeyID: String
    /// When the token was issued (whole seconds).
    public var issuedAt: Date
    /// When the token stops being accepted (whole seconds).
    public var expiresAt: Date
    /// The region the token was requested in (`GetAuthorizationToken`'s credential scope): the region a
    /// `/v2/` request carrying it addresses when its host names none. nil in tokens issued without one.
    public var region: String?

    /// Creates claims.
    public init(
        tokenID: String, accountID: String, principalARN: String, accessKeyID: String,
        issuedAt: Date, expiresAt: Date, region: String? = nil
    ) {
        self.region = region
        self.tokenID = tokenID
        self.accountID = accountID
        self.principalARN = principalARN
        self.accessKeyID = accessKeyID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }
}

/// A freshly issued token and its claims.
public struct IssuedRegistryToken: Sendable, Hashable {
    /// The opaque token; the HTTP layer returns `base64("AWS:" + token)`.
    public var token: String
    /// What the token asserts.
    public var claims: RegistryTokenClaims
}

/// Why a registry token was not issued or not accepted.
public enum RegistryTokenError: Error, Sendable, Hashable {
    /// The server key is not 32 bytes long.
    case invalidKeySize(Int)
    /// The claims do not fit in a token of at most ``RegistryTokenIssuer/maximumTokenLength`` characters.
    case claimsTooLarge
    /// The validity is not a positive number of seconds up to ten years, or `now` is not a finite date.
    case invalidValidity
    /// The string is not a token of this format.
    case malformed
    /// The token was not issued under this key, or was altered.
    case badSignature
    /// The token's validity ended at `expiresAt`.
    case expired(expiresAt: Date)
}

/// Issues and verifies registry auth tokens: claims authenticated with HMAC-SHA256, in unpadded base64url.
///
/// Layout before encoding: `version (1) ‖ token id (16) ‖ issuedAt (8, BE) ‖ expiresAt (8, BE) ‖
/// accountID ‖ principalARN ‖ accessKeyID ‖ MAC (32)`, each string prefixed by its UTF-8 length (2 bytes, BE).
/// Version 2 (a token bound to a region) adds `‖ region` after `accessKeyID`; version 1 tokens (no region,
/// as every Berth before regions issued) stay valid.
/// The MAC key is derived from the server key with HKDF-SHA256, so the server key can serve other purposes.
public struct RegistryTokenIssuer: Sendable {
    /// How long a token is valid by default: 12 hours, as ECR's.
    public static let defaultValidity: TimeInterval = 12 * 60 * 60
    /// The longest token issued, in characters (docker keeps tokens in its config file).
    public static let maximumTokenLength = 2048

    private static let version: UInt8 = 1
    private static let regionalVersion: UInt8 = 2
    private static let macLength = 32
    private static let fixedLength = 1 + 16 + 8 + 8

    // SymmetricKey is not Sendable in swift-crypto 3; keep the derived bytes.
    private let macKeyBytes: [UInt8]

    /// Creates an issuer with a 32-byte server key.
    public init(serverKey: SymmetricKey) throws(RegistryTokenError) {
        guard serverKey.bitCount == 256 else { throw .invalidKeySize(serverKey.bitCount / 8) }
        let derived = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: serverKey, info: Array("berth registry token v1".utf8), outputByteCount: 32)
        macKeyBytes = derived.withUnsafeBytes { Array($0) }
    }

    /// Issues a token for the principal, valid from `now` for `validity` seconds.
    public func issue(
        accountID: String, principalARN: String, accessKeyID: String,
        now: Date, validity: TimeInterval = defaultValidity, region: String? = nil
    ) throws(RegistryTokenError) -> IssuedRegistryToken {
        guard validity >= 1, validity <= 10 * 366 * 86_400, now.timeIntervalSince1970.magnitude < 1e12 else {
            throw .invalidValidity
        }
        var generator = SystemRandomNumberGenerator()
        let tokenID = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        let issuedAt = Int64(now.timeIntervalSince1970.rounded(.down))
        let expiresAt = issuedAt + Int64(validity.rounded(.down))
        let fields = ([accountID, principalARN, accessKeyID] + (region.map { [$0] } ?? [])).map { Array($0.utf8) }
        let payloadLength = Self.fixedLength + fields.reduce(0) { $0 + 2 + $1.count }
        guard fields.allSatisfy({ $0.count <= Int(UInt16.max) }),
              (payloadLength + Self.macLength) * 4 <= Self.maximumTokenLength * 3
        else { throw .claimsTooLarge }

        var bytes: [UInt8] = []
        bytes.reserveCapacity(payloadLength + Self.macLength)
        bytes.append(region == nil ? Self.version : Self.regionalVersion)
        bytes.append(contentsOf: tokenID)
        Self.appendBigEndian(issuedAt, to: &bytes)
        Self.appendBigEndian(expiresAt, to: &bytes)
        for field in fields {
            bytes.append(UInt8(field.count >> 8))
            bytes.append(UInt8(field.count & 0xFF))
            bytes.append(contentsOf: field)
        }
        bytes.append(contentsOf: HMAC<SHA256>.authenticationCode(for: bytes, using: macKey))
        let claims = RegistryTokenClaims(
            tokenID: Bytes.hex(tokenID), accountID: accountID, principalARN: principalARN, accessKeyID: accessKeyID,
            issuedAt: Date(timeIntervalSince1970: TimeInterval(issuedAt)),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(expiresAt)), region: region)
        return IssuedRegistryToken(token: Base64URL.encode(bytes), claims: claims)
    }

    /// Checks `token`'s MAC, then its expiry at `now`, and returns its claims.
    public func verify(_ token: String, now: Date) throws(RegistryTokenError) -> RegistryTokenClaims {
        guard token.utf8.count <= Self.maximumTokenLength, let bytes = Base64URL.decode(token),
              bytes.count >= Self.fixedLength + 6 + Self.macLength
        else { throw .malformed }
        let payload = bytes[..<(bytes.count - Self.macLength)]
        let mac = bytes[(bytes.count - Self.macLength)...]
        // Authenticate before parsing anything (HMAC's validity check compares in constant time).
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: payload, using: macKey) else {
            throw .badSignature
        }
        var reader = ByteReader(bytes: payload)
        let version = reader.byte()
        guard version == Self.version || version == Self.regionalVersion, let tokenID = reader.bytes(16),
              let issuedAt = reader.int64(), let expiresAt = reader.int64(), let accountID = reader.string(),
              let principalARN = reader.string(), let accessKeyID = reader.string()
        else { throw .malformed }
        var region: String? = nil
        if version == Self.regionalVersion {
            guard let r = reader.string() else { throw .malformed }
            region = r
        }
        guard reader.isAtEnd else { throw .malformed }
        let expiry = Date(timeIntervalSince1970: TimeInterval(expiresAt))
        guard now < expiry else { throw .expired(expiresAt: expiry) }
        return RegistryTokenClaims(
            tokenID: Bytes.hex(tokenID), accountID: accountID, principalARN: principalARN, accessKeyID: accessKeyID,
            issuedAt: Date(timeIntervalSince1970: TimeInterval(issuedAt)), expiresAt: expiry, region: region)
    }

    private var macKey: SymmetricKey { SymmetricKey(data: macKeyBytes) }

    private static func appendBigEndian(_ value: Int64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }
}

/// Reads big-endian fields from a byte slice; every read returns `nil` past the end.
private struct ByteReader {
    let bytes: ArraySlice<UInt8>
    var index: Int

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var isAtEnd: Bool { index == bytes.endIndex }

    mutating func byte() -> UInt8? {
        guard index < bytes.endIndex else { return nil }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.endIndex - index >= count else { return nil }
        defer { index += count }
        return bytes[index..<(index + count)]
    }

    mutating func int64() -> Int64? {
        guard let raw = bytes(8) else { return nil }
        return raw.reduce(0) { $0 << 8 | Int64($1) }
    }

    mutating func string() -> String? {
        guard let length = bytes(2) else { return nil }
        let count = Int(length[length.startIndex]) << 8 | Int(length[length.startIndex + 1])
        guard let raw = bytes(count) else { return nil }
        return String(validating: raw, as: UTF8.self)
    }
}
