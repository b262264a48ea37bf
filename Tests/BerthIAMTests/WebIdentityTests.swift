import BerthAuth
import BerthCore
import BerthDirectory
@testable import BerthIAM
import BerthPolicy
import BerthRegistry
import BerthStorage
import BerthSupport
import Crypto
import Foundation
import Testing
import _CryptoExtras

/// An OIDC issuer made up in the test: its keys, its JWKS and the tokens it signs.
struct TestIssuer: Sendable {
    static let url = "token.actions.githubusercontent.com"
    static let rsa = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    static let otherRSA = try! _RSA.Signing.PrivateKey(keySize: .bits2048)
    // swift-crypto's P-256 keys are not Sendable: keep the bytes.
    static let ecRaw = P256.Signing.PrivateKey().rawRepresentation
    static var ec: P256.Signing.PrivateKey { try! P256.Signing.PrivateKey(rawRepresentation: ecRaw) }

    static func b64(_ d: some Sequence<UInt8>) -> String { Base64URL.encode(d) }

    static func json(_ o: [String: Any]) -> [UInt8] {
        Array(try! JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]))
    }

    static var jwksJSON: [UInt8] {
        let p = try! rsa.publicKey.getKeyPrimitives()
        let ecRaw = Array(ec.publicKey.rawRepresentation)
        return json(["keys": [
            ["kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": b64(p.modulus), "e": b64(p.publicExponent)],
            ["kty": "EC", "kid": "ec-1", "crv": "P-256", "x": b64(ecRaw[0..<32]), "y": b64(ecRaw[32...])],
            ["kty": "oct", "kid": "hmac", "k": b64([1, 2, 3])],
        ]])
    }

    static var jwks: JSONWebKeySet { JSONWebKeySet(json: jwksJSON)! }

    static func claims(now: Double, sub: String = "repo:my-org/my-repo:ref:refs/heads/main", aud: Any = "sts.amazonaws.com",
                       iss: String = "https://\(url)", exp: Double = 300, extra: [String: Any] = [:]) -> [String: Any] {
        var c: [String: Any] = ["iss": iss, "sub": sub, "aud": aud, "iat": Int(now), "nbf": Int(now) - 5, "exp": Int(now + exp)]
        for (k, v) in extra { c[k] = v }
        return c
    }

    enum Signer { case rsa, otherRSA, ec, unsigned, hs256 }

    static func token(_ claims: [String: Any], kid: String? = "rsa-1", signer: Signer = .rsa, alg: String? = nil) -> String {
        var header: [String: Any] = ["typ": "JWT"]
        switch signer {
        case .rsa, .otherRSA: header["alg"] = "RS256"
        case .ec: header["alg"] = "ES256"
        case .unsigned: header["alg"] = "none"
        case .hs256: header["alg"] = "HS256"
        }
        if let alg { header["alg"] = alg }
        if let kid { header["kid"] = kid }
        let input = b64(json(header)) + "." + b64(json(claims))
        let digest = SHA256.hash(data: Array(input.utf8))
        let signature: [UInt8]
        switch signer {
        case .rsa: signature = Array(try! rsa.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .otherRSA: signature = Array(try! otherRSA.signature(for: digest, padding: .insecurePKCS1v1_5).rawRepresentation)
        case .ec: signature = Array(try! ec.signature(for: digest).rawRepresentation)
        case .unsigned: signature = []
        case .hs256: signature = Array(HMAC<SHA256>.authenticationCode(for: Array(input.utf8), using: SymmetricKey(data: [1, 2, 3])))
        }
        return input + "." + b64(signature)
    }
}

@Suite struct WebIdentityTokenTests {
    let now = 1_700_000_000.0

    @Test func validTokensVerifyWithRS256AndES256() throws {
        let t = try WebIdentityToken(TestIssuer.token(TestIssuer.claims(now: now, aud: ["a", "sts.amazonaws.com"], extra: ["amr": "x"])))
        #expect(t.issuer == "https://token.actions.githubusercontent.com" && t.audiences == ["a", "sts.amazonaws.com"])
        #expect(t.authenticationMethods == ["x"] && t.keyID == "rsa-1")
        try t.verify(with: TestIssuer.jwks, now: now)
        try WebIdentityToken(TestIssuer.token(TestIssuer.claims(now: now), kid: "ec-1", signer: .ec)).verify(with: TestIssuer.jwks, now: now)
        // Without a kid, the only key of the algorithm is used.
        try WebIdentityToken(TestIssuer.token(TestIssuer.claims(now: now), kid: nil)).verify(with: TestIssuer.jwks, now: now)
        #expect(TestIssuer.jwks.keys.count == 2)
    }

    func refusal(_ token: String, now: Double? = nil) -> WebIdentityTokenError? {
        do {
            try WebIdentityToken(token).verify(with: TestIssuer.jwks, now: now ?? self.now)
            return nil
        } catch {
            return error
        }
    }

    func isInvalid(_ e: WebIdentityTokenError?) -> Bool {
        if case .invalid? = e { true } else { false }
    }

    @Test func badTokensAreRefused() throws {
        let claims = TestIssuer.claims(now: now)
        #expect(isInvalid(refusal(TestIssuer.token(claims, signer: .otherRSA))))
        #expect(isInvalid(refusal(TestIssuer.token(claims, kid: "rsa-2"))))
        #expect(isInvalid(refusal(TestIssuer.token(claims, kid: "ec-1"))))  // RS256 with the EC key's kid
        #expect(isInvalid(refusal(TestIssuer.token(claims, kid: nil, signer: .unsigned))))
        #expect(isInvalid(refusal(TestIssuer.token(claims, kid: "hmac", signer: .hs256))))
        #expect(isInvalid(refusal(TestIssuer.token(claims, signer: .rsa, alg: "RS512"))))
        // A valid token with one claim changed no longer verifies.
        let good = TestIssuer.token(claims)
        let parts = good.split(separator: ".").map(String.init)
        var forged = claims
        forged["sub"] = "repo:evil/repo:ref:refs/heads/main"
        #expect(isInvalid(refusal(parts[0] + "." + TestIssuer.b64(TestIssuer.json(forged)) + "." + parts[2])))
        for junk in ["", "a.b", "a.b.c.d", "!!.??.**", parts[0] + "." + parts[1] + ".", String(repeating: "a", count: 20_000)] {
            #expect(isInvalid(refusal(junk)), "\(junk.prefix(20))")
        }
        #expect(isInvalid(refusal(TestIssuer.token(claims.filter { $0.key != "exp" }))))
        #expect(isInvalid(refusal(TestIssuer.token(claims.filter { $0.key != "aud" }))))
        if case .rejectedClaim? = refusal(TestIssuer.token(claims.filter { $0.key != "sub" })) {} else { Issue.record("missing sub") }
        // Claims of the wrong JSON type, and a nesting deeper than the parser's bound: invalid, no crash.
        #expect(isInvalid(refusal(TestIssuer.token(TestIssuer.claims(now: now, extra: ["exp": true])))))
        #expect(isInvalid(refusal(TestIssuer.token(TestIssuer.claims(now: now, aud: ["a", 5])))))
        #expect(isInvalid(refusal(TestIssuer.token(TestIssuer.claims(now: now, extra: ["amr": 7])))))
        let deep = String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)
        let header = TestIssuer.b64(TestIssuer.json(["alg": "RS256", "kid": "rsa-1"]))
        #expect(isInvalid(refusal(header + "." + TestIssuer.b64(Array(#"{"x":\#(deep)}"#.utf8)) + "." + parts[2])))
        #expect(JSONWebKeySet(json: Array(#"{"keys":\#(deep)}"#.utf8)) == nil)
    }

    @Test func timesAreCheckedWithLeeway() {
        let token = TestIssuer.token(TestIssuer.claims(now: now, exp: 300))
        #expect(refusal(token, now: now + 300 + 30) == nil)
        if case .expired? = refusal(token, now: now + 300 + 61) {} else { Issue.record("expected expired") }
        let future = TestIssuer.token(TestIssuer.claims(now: now + 600))
        #expect(isInvalid(refusal(future)))
        #expect(refusal(future, now: now + 600) == nil)
    }

    @Test func jwksFilesAreNamedAfterTheIssuerAndReReadWhenChanged() async throws {
        #expect(JWKSDirectory.fileName(forIssuer: "https://token.actions.githubusercontent.com") == "token.actions.githubusercontent.com.json")
        #expect(JWKSDirectory.fileName(forIssuer: "gitlab.example.com/ci/") == "gitlab.example.com_ci.json")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-jwks-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let clock = ManualWallClock(now)
        let source = JWKSDirectory(directory: dir, clock: clock)
        #expect(await source.keys(forIssuer: TestIssuer.url) == nil)
        let path = "\(dir)/\(TestIssuer.url).json"
        _ = FileManager.default.createFile(atPath: path, contents: Data(TestIssuer.jwksJSON))
        clock.advance(by: 3)
        #expect(await source.keys(forIssuer: TestIssuer.url)?.keys.count == 2)
        _ = FileManager.default.createFile(atPath: path, contents: Data(#"{"keys":[]}"#.utf8))
        #expect(await source.keys(forIssuer: TestIssuer.url)?.keys.count == 2)  // cached for two seconds
        clock.advance(by: 3)
        #expect(await source.keys(forIssuer: TestIssuer.url)?.keys.count == 0)
    }
}

@Suite struct AssumeRoleWithWebIdentityTests {
    static let roleARN = "arn:aws:iam::123456789012:role/ci-push"
    static let providerARN = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"

    static func trust(sub: String = "repo:my-org/my-repo:*") -> String {
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"\#(providerARN)"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"\#(sub)"},"StringEquals":{"token.actions.githubusercontent.com:aud":"sts.amazonaws.com"}}}]}"#
    }

    struct Setup {
        let world: World
        let sts: STSService
        let keys: StaticWebIdentityKeys
        var now: Double { world.clock.now() }
    }

    func setup(trust: String = AssumeRoleWithWebIdentityTests.trust(), provider: Bool = true) async throws -> Setup {
        let w = try await World()
        let keys = StaticWebIdentityKeys([TestIssuer.url: TestIssuer.jwks])
        let sts = STSService(directory: w.directory, authorizer: w.authorizer, sessions: w.sessions, clock: w.clock, webIdentityKeys: keys)
        if provider {
            try await w.iamCall("CreateOpenIDConnectProvider", [
                "Url": "https://token.actions.githubusercontent.com", "ClientIDList.member.1": "sts.amazonaws.com",
                "ThumbprintList.member.1": String(repeating: "6", count: 40),
            ])
        }
        try await w.iamCall("CreateRole", ["RoleName": "ci-push", "AssumeRolePolicyDocument": trust, "MaxSessionDuration": "7200"])
        return Setup(world: w, sts: sts, keys: keys)
    }

    /// Calls unsigned, as the aws CLI does; throws the Query error.
    @discardableResult
    func assume(_ s: Setup, _ token: String, _ extra: [String: String] = [:]) async throws -> String {
        var form = ["Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15", "RoleArn": Self.roleARN,
                    "RoleSessionName": "gha-42", "WebIdentityToken": token]
        for (k, v) in extra { form[k] = v }
        let r = await s.sts.handleUnsigned(form, requestID: "req")
        let body = String(decoding: r.body, as: UTF8.self)
        if let code = r.errorCode { throw QueryError(code, body, status: r.status) }
        return body
    }

    @Test func aValidTokenBuysRoleCredentials() async throws {
        let s = try await setup()
        let body = try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), ["DurationSeconds": "900"])
        #expect(body.hasPrefix(#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIA"#))
        #expect(value("SubjectFromWebIdentityToken", in: body) == "repo:my-org/my-repo:ref:refs/heads/main")
        #expect(value("Arn", in: body) == "arn:aws:sts::123456789012:assumed-role/ci-push/gha-42")
        #expect(value("Provider", in: body) == "https://token.actions.githubusercontent.com")
        #expect(value("Audience", in: body) == "sts.amazonaws.com")
        #expect(value("Expiration", in: body) == QueryProtocol.timestamp(s.now + 900))
        let token = try #require(value("SessionToken", in: body))
        let claims = try #require(s.world.sessions.open(XMLUnescape(token)))
        #expect(claims.accessKeyID == value("AccessKeyId", in: body))
        #expect(claims.principal.arn == "arn:aws:sts::123456789012:assumed-role/ci-push/gha-42")
        // ES256 too; and the session's identity is the role's.
        _ = try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now), kid: "ec-1", signer: .ec))
        // Durations: 900 up to the role's maximum.
        await expectError("ValidationError") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), ["DurationSeconds": "899"]) }
        await expectError("ValidationError") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), ["DurationSeconds": "7201"]) }
        try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), ["DurationSeconds": "7200"])
    }

    @Test func badTokensAreInvalidIdentityTokens() async throws {
        let s = try await setup()
        let claims = TestIssuer.claims(now: s.now)
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(claims, signer: .otherRSA)) }
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(claims, kid: "nope")) }
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(claims, kid: nil, signer: .unsigned)) }
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(claims, kid: "hmac", signer: .hs256)) }
        await expectError("InvalidIdentityToken") {
            try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now, iss: "https://gitlab.example.com")))
        }
        await expectError("InvalidIdentityToken") {
            try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now, iss: "http://token.actions.githubusercontent.com")))
        }
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now, aud: "someone-else"))) }
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now + 3600))) }
        await expectError("InvalidIdentityToken") { try await assume(s, "not.a.jwt") }
        await expectError("ExpiredTokenException") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now - 3600))) }
        await expectError("IDPRejectedClaim") { try await assume(s, TestIssuer.token(claims.filter { $0.key != "sub" })) }
        await expectError("ValidationError") { try await assume(s, String(repeating: "a", count: 20_001)) }
        await expectError("ValidationError") { try await assume(s, TestIssuer.token(claims), ["RoleSessionName": "a b"]) }
        await expectError("ValidationError") { try await assume(s, TestIssuer.token(claims), ["Policy": "{}"]) }
        // The issuer's keys are not installed.
        s.keys.set(nil, forIssuer: TestIssuer.url)
        await expectError("IDPCommunicationError") { try await assume(s, TestIssuer.token(claims)) }
    }

    @Test func theTrustPolicyDecides() async throws {
        let s = try await setup()
        await expectError("AccessDenied") {
            try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now, sub: "repo:other-org/repo:ref:refs/heads/main")))
        }
        var wrongRole = ["RoleArn": "arn:aws:iam::123456789012:role/missing"]
        await expectError("AccessDenied") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), wrongRole) }
        wrongRole["RoleArn"] = "arn:aws:iam::123456789012:user/ci-push"
        await expectError("ValidationError") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now)), wrongRole) }

        // A `*` principal does not admit web identities, and a Deny wins.
        let star = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity"}]}"#
        let s2 = try await setup(trust: star)
        await expectError("AccessDenied") { try await assume(s2, TestIssuer.token(TestIssuer.claims(now: s2.now))) }
        let deny = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"\#(Self.providerARN)"},"Action":"sts:AssumeRoleWithWebIdentity"},{"Effect":"Deny","Principal":"*","Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":{"token.actions.githubusercontent.com:sub":"*:pull_request"}}}]}"#
        let s3 = try await setup(trust: deny)
        try await assume(s3, TestIssuer.token(TestIssuer.claims(now: s3.now)))
        await expectError("AccessDenied") {
            try await assume(s3, TestIssuer.token(TestIssuer.claims(now: s3.now, sub: "repo:my-org/my-repo:pull_request")))
        }

        // The provider must be registered in the role's account.
        let s4 = try await setup(provider: false)
        await expectError("InvalidIdentityToken") { try await assume(s4, TestIssuer.token(TestIssuer.claims(now: s4.now))) }
    }

    @Test func oidcProvidersOverTheQueryAPI() async throws {
        let s = try await setup()
        let w = s.world
        let got = try await w.iamCall("GetOpenIDConnectProvider", ["OpenIDConnectProviderArn": Self.providerARN])
        #expect(got.contains("<GetOpenIDConnectProviderResult><Url>token.actions.githubusercontent.com</Url><ClientIDList><member>sts.amazonaws.com</member></ClientIDList><ThumbprintList><member>6666666666666666666666666666666666666666</member></ThumbprintList><CreateDate>"))
        let listed = try await w.iamCall("ListOpenIDConnectProviders", [:])
        #expect(listed.contains("<OpenIDConnectProviderList><member><Arn>\(Self.providerARN)</Arn></member></OpenIDConnectProviderList>"))
        await expectError("EntityAlreadyExists") {
            try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "https://token.actions.githubusercontent.com"])
        }
        await expectError("InvalidInput") { try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "http://idp.example.com"]) }
        await expectError("InvalidInput") { try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "https://idp.example.com/../x"]) }
        await expectError("ValidationError") {
            try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "https://idp.example.com", "ThumbprintList.member.1": "abc"])
        }
        await expectError("InvalidInput") { try await w.iamCall("GetOpenIDConnectProvider", ["OpenIDConnectProviderArn": "arn:aws:iam::123456789012:role/x"]) }
        await expectError("NoSuchEntity") {
            try await w.iamCall("GetOpenIDConnectProvider", ["OpenIDConnectProviderArn": "arn:aws:iam::123456789012:oidc-provider/nope.example.com"])
        }
        // Other accounts' providers are not visible.
        await expectError("NoSuchEntity") {
            try await w.iamCall("GetOpenIDConnectProvider", ["OpenIDConnectProviderArn": Self.providerARN], as: World.root(World.other))
        }
        // IAM users need iam:CreateOpenIDConnectProvider.
        try await w.createUser("bob")
        await expectError("AccessDenied") {
            try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "https://idp.example.com"], as: World.user("bob"))
        }
        let created = try await w.iamCall("CreateOpenIDConnectProvider", ["Url": "https://gitlab.example.com/ci"])
        #expect(created.contains("<OpenIDConnectProviderArn>arn:aws:iam::123456789012:oidc-provider/gitlab.example.com/ci</OpenIDConnectProviderArn>"))
        try await w.iamCall("DeleteOpenIDConnectProvider", ["OpenIDConnectProviderArn": Self.providerARN])
        await expectError("NoSuchEntity") { try await w.iamCall("DeleteOpenIDConnectProvider", ["OpenIDConnectProviderArn": Self.providerARN]) }
        // Without the provider, its tokens buy nothing.
        await expectError("InvalidIdentityToken") { try await assume(s, TestIssuer.token(TestIssuer.claims(now: s.now))) }
    }
}
