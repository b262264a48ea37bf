import BerthSupport
import Foundation

/// Why a web identity token was refused, in STS's error vocabulary.
public enum WebIdentityTokenError: Error, Sendable, Equatable {
    /// Not a compact JWS, a bad signature, an unknown key, an unsupported `alg`, a wrong issuer or audience.
    case invalid(String)
    /// `exp` has passed.
    case expired(String)
    /// A claim the token must carry is missing or unusable.
    case rejectedClaim(String)

    public var queryError: QueryError {
        switch self {
        case let .invalid(m): QueryError("InvalidIdentityToken", m)
        case let .expired(m): QueryError("ExpiredTokenException", m)
        case let .rejectedClaim(m): QueryError("IDPRejectedClaim", m, status: 403)
        }
    }
}

/// A compact-serialized JWS carrying OIDC ID-token claims, parsed but not yet verified. Parsing only
/// reads; nothing in it is trusted until `verify` checks the signature and the times.
public struct WebIdentityToken: Sendable {
    /// Larger tokens are refused before any decoding.
    public static let maxLength = 16 * 1024
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    public static let leeway = 60.0
    static let algorithms: Set<String> = ["RS256", "ES256"]

    public let algorithm: String
    public let keyID: String?
    /// `iss`.
    public let issuer: String
    /// `sub`.
    public let subject: String
    /// `aud`: one value or several.
    public let audiences: [String]
    /// `amr`, when present.
    public let authenticationMethods: [String]?
    public let expiresAt: Double
    public let notBefore: Double?
    public let issuedAt: Double?
    let signingInput: [UInt8]
    let signature: [UInt8]

    /// Reads a token; every malformation is `.invalid` (or `.rejectedClaim` for a missing `sub`).
    public init(_ token: String) throws(WebIdentityTokenError) {
        guard token.utf8.count <= Self.maxLength else { throw .invalid("The web identity token is too large.") }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = Base64URL.decode(parts[0]), let claimBytes = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2]), !signature.isEmpty else {
            throw .invalid("The web identity token is not a signed JWT.")
        }
        guard let header = Self.object(headerBytes), let claims = Self.object(claimBytes) else {
            throw .invalid("The web identity token is not a signed JWT.")
        }
        guard let alg = header["alg"]?.stringValue, Self.algorithms.contains(alg) else {
            throw .invalid("The web identity token's signing algorithm is not supported: use RS256 or ES256.")
        }
        // Extensions we do not understand must not be ignored (RFC 7515 §4.1.11).
        guard header["crit"] == nil else { throw .invalid("The web identity token has critical header parameters.") }
        if let kid = header["kid"] { guard kid.stringValue != nil else { throw .invalid("The web identity token's kid is not a string.") } }
        guard let iss = claims["iss"]?.stringValue, !iss.isEmpty else { throw .invalid("The web identity token has no issuer.") }
        guard let exp = claims["exp"].flatMap(Self.number) else { throw .invalid("The web identity token has no expiration.") }
        let nbf = claims["nbf"].map { Self.number($0) }
        let iat = claims["iat"].map { Self.number($0) }
        if nbf == .some(nil) || iat == .some(nil) { throw .invalid("The web identity token's nbf or iat is not a number.") }
        let aud: [String]
        switch claims["aud"] {
        case .string(let s)?: aud = [s]
        case .array?:
            guard let list = Self.strings(claims["aud"]!) else { throw .invalid("The web identity token's audience is not a string list.") }
            aud = list
        default: throw .invalid("The web identity token has no audience.")
        }
        guard let sub = claims["sub"]?.stringValue, !sub.isEmpty, sub.utf8.count <= 255 else {
            throw .rejectedClaim("The web identity token has no usable sub claim.")
        }
        var amr: [String]?
        if let value = claims["amr"] {
            // Non-string members of an `amr` list are skipped, as before.
            if case .array(let a) = value { amr = a.compactMap(\.stringValue) }
            else if let s = value.stringValue { amr = [s] }
            else { throw .invalid("The web identity token's amr is not a string list.") }
        }
        self.algorithm = alg
        self.keyID = header["kid"]?.stringValue
        self.issuer = iss
        self.subject = sub
        self.audiences = aud
        self.authenticationMethods = amr
        self.expiresAt = exp
        self.notBefore = nbf ?? nil
        self.issuedAt = iat ?? nil
        self.signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
        self.signature = signature
    }

    /// Checks the signature with the issuer's keys (the `kid` selects one; without a `kid` the only key
    /// of the token's algorithm), then `exp`, `nbf` and `iat` against `now`.
    public func verify(with keys: JSONWebKeySet, now: Double) throws(WebIdentityTokenError) {
        let candidates = keys.keys.filter { $0.algorithm == algorithm }
        let key: JSONWebKey
        if let keyID {
            guard let k = candidates.first(where: { $0.id == keyID }) else {
                throw .invalid("No key with kid \(keyID) for \(algorithm) in the JWKS of \(issuer).")
            }
            key = k
        } else {
            guard candidates.count == 1 else { throw .invalid("The web identity token names no kid and the JWKS of \(issuer) has \(candidates.count) \(algorithm) keys.") }
            key = candidates[0]
        }
        guard key.verifies(signature, over: signingInput) else {
            throw .invalid("The web identity token's signature is not valid.")
        }
        guard now < expiresAt + Self.leeway else {
            throw .expired("Token expired: current date/time \(QueryProtocol.timestamp(now)) must be before the expiration date/time \(QueryProtocol.timestamp(expiresAt))")
        }
        if let notBefore, now + Self.leeway < notBefore {
            throw .invalid("The web identity token is not valid before \(QueryProtocol.timestamp(notBefore)).")
        }
        if let issuedAt, now + Self.leeway < issuedAt {
            throw .invalid("The web identity token was issued in the future.")
        }
    }

    /// A JSON object, parsed with Berth's bounded-depth parser (the token is untrusted input).
    static func object(_ bytes: [UInt8]) -> [String: JSONValue]? {
        guard case .object(let o)? = try? JSONValue.parse(bytes) else { return nil }
        return o
    }

    /// A JSON number (NumericDate).
    static func number(_ v: JSONValue) -> Double? {
        switch v {
        case .int(let i): return Double(i)
        case .double(let d): return d.isFinite ? d : nil
        default: return nil
        }
    }

    /// A string, or a list of strings; nil for anything else (or a list with a non-string).
    static func strings(_ v: JSONValue) -> [String]? {
        switch v {
        case .string(let s): return [s]
        case .array(let a):
            let strings = a.compactMap(\.stringValue)
            return strings.count == a.count ? strings : nil
        default: return nil
        }
    }
}
