import Foundation
import Testing
@testable import BerthAuth

/// The official AWS SigV4 test vectors, through both the signer and the verifier.
@Suite struct SigV4TestSuiteTests {
    @Test("signer reproduces the official Authorization header", arguments: headerVectors.filter(\.signerReproduces))
    func signerReproducesAuthorization(vector: HeaderVector) {
        let signer = SigV4Signer(
            accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret, sessionToken: vector.sessionToken,
            region: AWSTestSuite.region, service: AWSTestSuite.service)
        let signed = signer.sign(vector.unsignedRequest, date: AWSTestSuite.date)
        #expect(signed.authorization == vector.authorization)
        #expect(signed.amzDate == AWSTestSuite.amzDate)
    }

    @Test("verifier accepts the official signed request", arguments: headerVectors)
    func verifierAcceptsSignedRequest(vector: HeaderVector) async throws {
        let result = try await AWSTestSuite.verifier.verify(
            vector.signedRequest, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials(token: vector.sessionToken))
        #expect(result.accessKeyID == AWSTestSuite.accessKeyID)
        #expect(result.scope == SigV4Scope(date: "20150830", region: "us-east-1", service: "service"))
        #expect(result.sessionToken == vector.sessionToken)
        #expect(!result.isPresigned)
    }

    @Test("verifier rejects the official request under another secret", arguments: headerVectors)
    func verifierRejectsWrongSecret(vector: HeaderVector) async {
        await #expect(throws: SigV4Error.signatureMismatch) {
            try await AWSTestSuite.verifier.verify(vector.signedRequest, now: AWSTestSuite.date) { _ in
                SigV4Credential(secretAccessKey: "not-the-secret", sessionToken: vector.sessionToken)
            }
        }
    }

    @Test("verifier accepts the official presigned request", arguments: presignedVectors)
    func verifierAcceptsPresigned(vector: PresignedVector) async throws {
        let result = try await AWSTestSuite.verifier.verify(
            vector.signedRequest, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials())
        #expect(result.isPresigned)
        #expect(result.payloadHash == SigV4Payload.emptySHA256Hex)
    }

    @Test("presign reproduces the official presigned signature", arguments: presignedVectors)
    func presignReproducesSignature(vector: PresignedVector) throws {
        let originalQuery = vector.query.split(separator: "&").filter { !$0.hasPrefix("X-Amz-") }
            .joined(separator: "&")
        let presigned = try AWSTestSuite.signer.presign(
            method: "GET", host: AWSTestSuite.host, path: vector.path, query: originalQuery.isEmpty ? nil : originalQuery,
            extraSignedHeaders: vector.headers, expires: 3600, date: AWSTestSuite.date,
            payloadHash: SigV4Payload.emptySHA256Hex)
        #expect(presigned.signature == vector.signature)
    }

    /// `get-header-value-multiline/query-canonical-request.txt`, verbatim.
    @Test func presignedCanonicalRequestMatchesSuiteText() throws {
        let presigned = try AWSTestSuite.signer.presign(
            method: "GET", host: AWSTestSuite.host, path: "/",
            extraSignedHeaders: [("My-Header1", "value1"), ("My-Header1", "value2"), ("My-Header1", "value3")],
            expires: 3600, date: AWSTestSuite.date, payloadHash: SigV4Payload.emptySHA256Hex)
        #expect(presigned.canonicalRequest == """
            GET
            /
            X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host%3Bmy-header1
            host:example.amazonaws.com
            my-header1:value1,value2,value3

            host;my-header1
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
    }

    /// `get-vanilla-query-order-key-case/query-canonical-request.txt` and `query-string-to-sign.txt`, verbatim.
    @Test func canonicalRequestAndStringToSignMatchSuiteText() {
        let query = SigV4Canonical.parseQuery(
            "Param2=value2&Param1=value1&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"
                + "&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host")
        let middle = SigV4Canonical.canonicalRequestMiddle(
            query: SigV4Canonical.canonicalQuery(query), signedNames: ["host"], signedHeadersLine: "host",
            headers: [("Host", AWSTestSuite.host)])
        let canonical = SigV4Canonical.canonicalRequest(
            method: "GET", uri: SigV4Canonical.canonicalURI("/", normalize: true), middle: middle,
            payloadHash: SigV4Payload.emptySHA256Hex)
        #expect(String(decoding: canonical, as: UTF8.self) == """
            GET
            /
            Param1=value1&Param2=value2&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host
            host:example.amazonaws.com

            host
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        let stringToSign = SigV4Canonical.stringToSign(
            canonicalRequest: canonical, amzDate: AmzDate(AWSTestSuite.amzDate)!,
            scope: SigV4Scope(date: "20150830", region: "us-east-1", service: "service"))
        #expect(String(decoding: stringToSign, as: UTF8.self) == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            eb1512f5ed1470925b7b1072c2108953680032d6bc3ccbef8eb7c6fdf1639827
            """)
    }

    /// get-vanilla's canonical request, as the suite's `get-vanilla.creq` gives it.
    @Test func getVanillaCanonicalRequest() {
        let request = SigV4Request(method: "GET", path: "/", headers: [("Host", AWSTestSuite.host)],
                                   payload: .sha256Hex(SigV4Payload.emptySHA256Hex))
        let signed = AWSTestSuite.signer.sign(request, date: AWSTestSuite.date)
        #expect(signed.canonicalRequest == """
            GET
            /

            host:example.amazonaws.com
            x-amz-date:20150830T123600Z

            host;x-amz-date
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
            """)
        #expect(signed.signature == "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }
}

/// Reference signatures computed with botocore 1.43 (`scripts/botocore_reference.py`) for requests the
/// official suite does not cover.
@Suite struct BotocoreReferenceTests {
    static let ecrVerifier = SigV4Verifier(region: "us-east-1", services: ["ecr"])

    static func ecrRequest(target: String, body: String, token: String?, signature: String) -> SigV4Request {
        var headers: [(name: String, value: String)] = [
            ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", target),
            ("Host", "api.ecr.us-east-1.amazonaws.com"), ("X-Amz-Date", AWSTestSuite.amzDate),
        ]
        let signed = token == nil
            ? "content-type;host;x-amz-date;x-amz-target" : "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
        if let token { headers.append(("X-Amz-Security-Token", token)) }
        headers.append(("User-Agent", "aws-cli/1.45.11"))
        headers.append(("Authorization",
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request, "
                            + "SignedHeaders=\(signed), Signature=\(signature)"))
        return SigV4Request(method: "POST", path: "/", headers: headers, payload: .hashing(Array(body.utf8)))
    }

    @Test func ecrJSONRequest() async throws {
        let request = Self.ecrRequest(
            target: "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken", body: "{}", token: nil,
            signature: "527a2155e9afc2426cb4c659023df9c031e8103458f349819615ff25111f5de0")
        let result = try await Self.ecrVerifier.verify(request, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials())
        #expect(result.scope.service == "ecr")
        #expect(result.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-target"])
        #expect(result.payloadHash == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")
    }

    @Test func ecrJSONRequestWithSessionToken() async throws {
        let token = "FQoGZXIvYXdzEXAMPLETOKEN"
        let request = Self.ecrRequest(
            target: "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories", body: #"{"maxResults": 10}"#,
            token: token, signature: "65926ac42b708161f859184f72da81f8c5086e434177bba10517f5c16de1821f")
        let result = try await Self.ecrVerifier.verify(
            request, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials(token: token))
        #expect(result.sessionToken == token)
        // The same request with the long-term key only: the token belongs to no credential.
        await #expect(throws: SigV4Error.unrecognizedClient) {
            try await Self.ecrVerifier.verify(request, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials())
        }
    }

    @Test func signerMatchesBotocoreForECR() {
        let request = SigV4Request(
            method: "POST", path: "/",
            headers: [("Content-Type", "application/x-amz-json-1.1"),
                      ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"),
                      ("Host", "api.ecr.us-east-1.amazonaws.com"), ("User-Agent", "test")],
            payload: .hashing(Array("{}".utf8)))
        let signer = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                 region: "us-east-1", service: "ecr")
        #expect(signer.sign(request, date: AWSTestSuite.date).signature
            == "527a2155e9afc2426cb4c659023df9c031e8103458f349819615ff25111f5de0")
    }

    /// botocore `SigV4QueryAuth` (non-S3 presign: the empty body's hash as payload) with a session token.
    @Test func botocorePresignedURLWithSessionToken() async throws {
        let token = "FQoGZXIvYXdzEXAMPLETOKEN"
        let request = SigV4Request(
            method: "GET", path: "/blob",
            query: "digest=sha256%3Aabc&X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request"
                + "&X-Amz-Date=20150830T123600Z&X-Amz-Expires=600&X-Amz-SignedHeaders=host"
                + "&X-Amz-Security-Token=FQoGZXIvYXdzEXAMPLETOKEN"
                + "&X-Amz-Signature=c3a1af110c95889dedba67dbd5ce59bf972914f8cb9c6168d754f73ea45843e7",
            headers: [("Host", AWSTestSuite.host)], payload: .sha256Hex(SigV4Payload.emptySHA256Hex))
        let result = try await AWSTestSuite.verifier.verify(
            request, now: AWSTestSuite.date.addingTimeInterval(599), credentials: AWSTestSuite.credentials(token: token))
        #expect(result.sessionToken == token)
        #expect(result.isPresigned)
    }

    /// botocore `S3SigV4QueryAuth` (payload `UNSIGNED-PAYLOAD`), the form ``SigV4Signer/presign`` emits.
    /// (S3 signs the path encoded once, other services twice; the two agree on this unreserved-only path.)
    @Test func presignMatchesBotocoreS3Presign() async throws {
        let signer = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                 region: "us-east-1", service: "s3")
        let presigned = try signer.presign(
            method: "GET", host: "berth.example.com", path: "/v2/library/alpine/blobs/abc123", query: "part=1",
            expires: 900, date: AWSTestSuite.date)
        #expect(presigned.signature == "d487e33d4d37ae7563dfea0699ebbcf00ed069caa684539110b223b8fef638ea")
        #expect(presigned.query == "part=1&X-Amz-Algorithm=AWS4-HMAC-SHA256"
            + "&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20150830T123600Z"
            + "&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
            + "&X-Amz-Signature=d487e33d4d37ae7563dfea0699ebbcf00ed069caa684539110b223b8fef638ea")
        // And it verifies, with the body unknown (a GET streams nothing in).
        let request = SigV4Request(method: "GET", path: "/v2/library/alpine/blobs/abc123", query: presigned.query,
                                   headers: [("Host", "berth.example.com")], payload: .unavailable)
        let result = try await SigV4Verifier(region: "us-east-1", services: ["s3"])
            .verify(request, now: AWSTestSuite.date, credentials: AWSTestSuite.credentials())
        #expect(result.payloadHash == "UNSIGNED-PAYLOAD")
    }
}
