import Crypto
import BerthSupport
import Foundation
import _CryptoExtras

/// A verification key of a JWKS (RFC 7517): RSA (`RS256`) or P-256 (`ES256`).
public struct JSONWebKey: Sendable {
    public enum Material: Sendable {
        case rsa(_RSA.Signing.PublicKey)
        /// The raw `x || y` (swift-crypto's P-256 keys are not `Sendable`); checked to be a curve point on parsing.
        case p256([UInt8])
    }

    /// `kid`, when the key has one.
    public let id: String?
    public let material: Material

    /// The JWS `alg` this key verifies.
    public var algorithm: String {
        switch material {
        case .rsa: "RS256"
        case .p256: "ES256"
        }
    }

    /// Whether `signature` over `input` verifies with this key.
    func verifies(_ signature: [UInt8], over input: [UInt8]) -> Bool {
        let digest = SHA256.hash(data: input)
        switch material {
        case let .rsa(key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: digest,
                                        padding: .insecurePKCS1v1_5)
        case let .p256(raw):
            // JWS ES256 signatures are R || S, 32 bytes each.
            guard signature.count == 64, let key = try? P256.Signing.PublicKey(rawRepresentation: raw),
                  let s = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else {
                return false
            }
            return key.isValidSignature(s, for: digest)
        }
    }
}

/// An issuer's signing keys, read from its JWKS document (`{"keys":[…]}`). Keys Berth cannot use
/// (other types, encryption keys, RSA under 2048 bits) are skipped, not errors.
public struct JSONWebKeySet: Sendable {
    public let keys: [JSONWebKey]

    public init(keys: [JSONWebKey]) {
        self.keys = keys
    }

    /// Nil when the document is not a JWKS at all.
    public init?(json: [UInt8]) {
        guard json.count <= 1 << 20,
              let object = WebIdentityToken.object(json), case .array(let entries)? = object["keys"] else { return nil }
        keys = entries.compactMap { entry in
            guard case .object(let jwk) = entry else { return nil }
            return Self.key(jwk)
        }
    }

    static func key(_ jwk: [String: JSONValue]) -> JSONWebKey? {
        if let use = jwk["use"] { guard use.stringValue == "sig" else { return nil } }
        let kid = jwk["kid"]?.stringValue
        let alg = jwk["alg"]?.stringValue
        switch jwk["kty"]?.stringValue {
        case "RSA":
            guard alg == nil || alg == "RS256",
                  let n = jwk["n"]?.stringValue.flatMap({ Base64URL.decode($0) }), let e = jwk["e"]?.stringValue.flatMap({ Base64URL.decode($0) }),
                  !n.isEmpty, !e.isEmpty, let key = try? _RSA.Signing.PublicKey(n: n, e: e), key.keySizeInBits >= 2048
            else { return nil }
            return JSONWebKey(id: kid, material: .rsa(key))
        case "EC":
            guard alg == nil || alg == "ES256", jwk["crv"]?.stringValue == "P-256",
                  let x = jwk["x"]?.stringValue.flatMap({ Base64URL.decode($0) }), let y = jwk["y"]?.stringValue.flatMap({ Base64URL.decode($0) }),
                  x.count == 32, y.count == 32, (try? P256.Signing.PublicKey(rawRepresentation: x + y)) != nil
            else { return nil }
            return JSONWebKey(id: kid, material: .p256(x + y))
        default:
            return nil
        }
    }
}
