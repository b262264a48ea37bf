import BerthApp
import BerthAuth
import BerthCore
import BerthHTTP
import BerthIAM
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Logging
import Testing

/// IdentityService with STS session credentials: the sealed token is verified with the signature,
/// refused when forged or expired, and registry tokens never outlive the session.
@Suite struct SessionAuthenticationTests {
    let clock = ManualWallClock(1_700_000_000)

    func services() async throws -> BerthServices {
        try await inMemoryServices(clock: clock)
    }

    func signed(_ id: String, _ secret: String, token: String?, service: String = "sts", at: Double) -> SigV4Request {
        let body = Array("Action=GetCallerIdentity&Version=2011-06-15".utf8)
        let request = SigV4Request(method: "POST", path: "/", headers: [("host", "127.0.0.1:5000"),
                                   ("content-type", "application/x-www-form-urlencoded")], payload: .hashing(body))
        let signer = SigV4Signer(accessKeyID: id, secretAccessKey: secret, sessionToken: token, region: "us-east-1", service: service)
        return signer.sign(request, date: Date(timeIntervalSince1970: at)).applied(to: request)
    }

    func claims(expiresAt: Double) -> SessionClaims {
        SessionClaims(accessKeyID: "ASIAAAAAAAAAAAAAAAAA", secretAccessKey: "secret-of-the-session-000000000000000000",
                      accountID: "000000000000", roleName: "builder", roleID: "AROAEXAMPLE", sessionName: "s1", expiresAt: expiresAt)
    }

    @Test func sessionCredentialsAuthenticateUntilTheyExpire() async throws {
        let s = try await services()
        let c = claims(expiresAt: clock.now() + 900)
        let token = try s.identity.sessions.seal(c)
        let p = try await s.identity.authenticate(signed(c.accessKeyID, c.secretAccessKey, token: token, at: clock.now()), service: "sts")
        #expect(p.arn == "arn:aws:sts::000000000000:assumed-role/builder/s1")
        #expect(p.userID == "AROAEXAMPLE:s1")
        #expect(p.sessionToken == token)

        // Registry tokens of a session end with it.
        let issued = try s.identity.issueToken(for: p, now: clock.now())
        #expect(issued.expiresAt == c.expiresAt)
        let basic = "Basic " + Data("AWS:\(issued.token)".utf8).base64EncodedString()
        #expect(try await s.identity.authenticate(basic: basic)?.arn == p.arn)

        clock.advance(by: 901)
        await #expect(throws: SessionTokenError.expired) {
            try await s.identity.authenticate(signed(c.accessKeyID, c.secretAccessKey, token: token, at: clock.now()), service: "sts")
        }
        #expect(try await s.identity.authenticate(basic: basic) == nil)
    }

    @Test func forgedOrMismatchedTokensAreRefused() async throws {
        let s = try await services()
        let c = claims(expiresAt: clock.now() + 900)
        let token = try s.identity.sessions.seal(c)
        // Another server's key.
        let foreign = try SessionTokenCodec(box: SecretBox(key: SecretBox.generateKey())).seal(c)
        await #expect(throws: SessionTokenError.invalid) {
            try await s.identity.authenticate(signed(c.accessKeyID, c.secretAccessKey, token: foreign, at: clock.now()), service: "sts")
        }
        // The token of another access key id.
        await #expect(throws: SessionTokenError.invalid) {
            try await s.identity.authenticate(signed("ASIABBBBBBBBBBBBBBBB", c.secretAccessKey, token: token, at: clock.now()), service: "sts")
        }
        // The right token, the wrong secret.
        await #expect(throws: SigV4Error.signatureMismatch) {
            try await s.identity.authenticate(signed(c.accessKeyID, "x" + c.secretAccessKey.dropFirst(), token: token, at: clock.now()), service: "sts")
        }
        // A long-term key must not carry a session token.
        await #expect(throws: SigV4Error.unrecognizedClient) {
            try await s.identity.authenticate(signed("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", token: token, at: clock.now()), service: "sts")
        }
    }
}
