import Crypto
import Foundation
import Testing
@testable import BerthAuth
import BerthSupport

@Suite struct RegistryTokenTests {
    static let now = Date(timeIntervalSince1970: 1_700_000_000.75)
    static let issuer = try! RegistryTokenIssuer(serverKey: SymmetricKey(size: .bits256))

    static func issue(_ issuer: RegistryTokenIssuer = issuer) throws -> IssuedRegistryToken {
        try issuer.issue(accountID: "123456789012", principalARN: "arn:aws:iam::123456789012:user/ci-deployer",
                         accessKeyID: "AKIAIOSFODNN7EXAMPLE", now: now)
    }

    @Test func roundTrip() throws {
        let issued = try Self.issue()
        let claims = try Self.issuer.verify(issued.token, now: Self.now)
        #expect(claims == issued.claims)
        #expect(claims.accountID == "123456789012")
        #expect(claims.principalARN == "arn:aws:iam::123456789012:user/ci-deployer")
        #expect(claims.accessKeyID == "AKIAIOSFODNN7EXAMPLE")
        #expect(claims.issuedAt == Date(timeIntervalSince1970: 1_700_000_000))
        #expect(claims.expiresAt == Date(timeIntervalSince1970: 1_700_000_000 + 12 * 3600))
        #expect(claims.tokenID.count == 32)
        #expect(try Self.issue().claims.tokenID != issued.claims.tokenID)
    }

    /// A token bound to the region it was requested in (version 2); tokens without one stay version 1,
    /// byte for byte the format earlier Berths issued, and both verify.
    @Test func regionBoundTokens() throws {
        let regional = try Self.issuer.issue(accountID: "123456789012", principalARN: "arn:aws:iam::123456789012:root",
                                             accessKeyID: "AKIAIOSFODNN7EXAMPLE", now: Self.now, region: "eu-central-1")
        let claims = try Self.issuer.verify(regional.token, now: Self.now)
        #expect(claims.region == "eu-central-1")
        #expect(claims == regional.claims)
        let plain = try Self.issue()
        #expect(try Self.issuer.verify(plain.token, now: Self.now).region == nil)
        #expect(Base64URL.decode(plain.token)?.first == 1)
        #expect(Base64URL.decode(regional.token)?.first == 2)
        // The region is under the MAC: changing it breaks the token.
        var bytes = Base64URL.decode(regional.token)!
        let i = bytes.count - 33
        bytes[i] ^= 1
        #expect(throws: RegistryTokenError.badSignature) { try Self.issuer.verify(Base64URL.encode(bytes), now: Self.now) }
    }

    @Test func tokensAreShortAndURLSafe() throws {
        let token = try Self.issue().token
        #expect(token.count < 400)
        #expect(token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        // What docker stores: base64("AWS:" + token).
        #expect(Data(("AWS:" + token).utf8).base64EncodedString().count < 2048)
    }

    @Test func expiry() throws {
        let issued = try Self.issue()
        let expiresAt = issued.claims.expiresAt
        _ = try Self.issuer.verify(issued.token, now: expiresAt.addingTimeInterval(-1))
        #expect(throws: RegistryTokenError.expired(expiresAt: expiresAt)) {
            try Self.issuer.verify(issued.token, now: expiresAt)
        }
        let short = try Self.issuer.issue(accountID: "123456789012", principalARN: "arn:aws:iam::123456789012:root",
                                          accessKeyID: "AKIA", now: Self.now, validity: 60)
        #expect(throws: RegistryTokenError.self) { try Self.issuer.verify(short.token, now: Self.now + 61) }
    }

    @Test func tamperingIsDetected() throws {
        let token = try Self.issue().token
        var bytes = try #require(Base64URL.decode(token))
        for index in [0, 1, 20, bytes.count - 40, bytes.count - 1] {
            var tampered = bytes
            tampered[index] ^= 0x04
            #expect(throws: RegistryTokenError.badSignature) {
                try Self.issuer.verify(Base64URL.encode(tampered), now: Self.now)
            }
        }
        bytes.removeLast()
        #expect(throws: RegistryTokenError.badSignature) {
            try Self.issuer.verify(Base64URL.encode(bytes), now: Self.now)
        }
    }

    @Test func wrongKeyFails() throws {
        let other = try RegistryTokenIssuer(serverKey: SymmetricKey(size: .bits256))
        #expect(throws: RegistryTokenError.badSignature) { try other.verify(Self.issue().token, now: Self.now) }
    }

    @Test func malformedTokens() {
        for token in ["", "AWS:abc", "not+base64/", "abc", String(repeating: "A", count: 3000), "A"] {
            #expect(throws: RegistryTokenError.malformed) { try Self.issuer.verify(token, now: Self.now) }
        }
    }

    @Test func limits() throws {
        #expect(throws: RegistryTokenError.invalidKeySize(16)) {
            try RegistryTokenIssuer(serverKey: SymmetricKey(size: .bits128))
        }
        #expect(throws: RegistryTokenError.claimsTooLarge) {
            try Self.issuer.issue(accountID: "123456789012", principalARN: String(repeating: "a", count: 2000),
                                  accessKeyID: "AKIA", now: Self.now)
        }
        #expect(throws: RegistryTokenError.invalidValidity) {
            try Self.issuer.issue(accountID: "123456789012", principalARN: "arn", accessKeyID: "AKIA",
                                  now: Self.now, validity: 0)
        }
    }

    @Test func base64URL() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let encoded = Base64URL.encode(bytes)
            #expect(!encoded.contains("="))
            #expect(Base64URL.decode(encoded) == bytes)
            #expect(encoded == Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: ""))
        }
        #expect(Base64URL.decode("A") == nil)
        #expect(Base64URL.decode("AQ") == [1])
        #expect(Base64URL.decode("AB") == nil) // non-zero padding bits
        #expect(Base64URL.decode("AAA=") == nil)
    }
}

@Suite struct AccessKeyGeneratorTests {
    @Test func accessKeyIDShape() {
        let ids = (0..<500).map { _ in AccessKeyGenerator.accessKeyID() }
        for id in ids {
            #expect(id.count == 20)
            #expect(id.hasPrefix("AKIA"))
            #expect(id.dropFirst(4).allSatisfy { ("A"..."Z").contains($0) || ("2"..."7").contains($0) })
            #expect(AccessKeyGenerator.isWellFormedAccessKeyID(id))
        }
        #expect(Set(ids).count == ids.count)
        #expect(AccessKeyGenerator.accessKeyID(prefix: "ASIA").hasPrefix("ASIA"))
        #expect(!AccessKeyGenerator.isWellFormedAccessKeyID("AKIAIOSFODNN7EXAMPL1"))
        #expect(!AccessKeyGenerator.isWellFormedAccessKeyID("AKIA"))
    }

    @Test func secretShape() {
        let secrets = (0..<500).map { _ in AccessKeyGenerator.secretAccessKey() }
        let alphabet = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        for secret in secrets {
            #expect(secret.count == 40)
            #expect(secret.allSatisfy(alphabet.contains))
        }
        #expect(Set(secrets).count == secrets.count)
        // Every character of the alphabet shows up across 20,000 draws.
        #expect(Set(secrets.joined()) == alphabet)
    }

    /// A deterministic generator (SplitMix64) for reproducible output.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    @Test func injectableGenerator() {
        var first = SplitMix64(state: 42), second = SplitMix64(state: 42)
        #expect(AccessKeyGenerator.accessKeyID(using: &first) == AccessKeyGenerator.accessKeyID(using: &second))
        #expect(AccessKeyGenerator.secretAccessKey(using: &first) == AccessKeyGenerator.secretAccessKey(using: &second))
    }
}
