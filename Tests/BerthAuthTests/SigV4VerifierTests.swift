import Foundation
import Testing
@testable import BerthAuth

/// Verification behaviour: success paths, every error, and what a signature does and does not cover.
@Suite struct SigV4VerifierTests {
    static let verifier = SigV4Verifier(region: "us-east-1", services: ["ecr"])
    static let signer = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                    region: "us-east-1", service: "ecr")
    static let body = #"{"repositoryName":"library/alpine"}"#
    static var bodyHash: String {
        guard case .sha256Hex(let hex) = SigV4Payload.hashing(Array(body.utf8)) else { return "" }
        return hex
    }

    /// An ECR JSON request as botocore sends it, signed at `date` (default: the suite's date).
    static func signedRequest(
        signer: SigV4Signer = signer, body: String = body, date: Date = AWSTestSuite.date,
        extraHeaders: [(name: String, value: String)] = []
    ) -> SigV4Request {
        let request = SigV4Request(
            method: "POST", path: "/",
            headers: [("Host", "api.ecr.us-east-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.1"),
                      ("X-Amz-Target", "AmazonEC2ContainerRegistry_V20150921.CreateRepository")] + extraHeaders,
            payload: .hashing(Array(body.utf8)))
        return signer.sign(request, date: date).applied(to: request)
    }

    static func verify(
        _ request: SigV4Request, now: Date = AWSTestSuite.date, verifier: SigV4Verifier = verifier, token: String? = nil
    ) async throws -> SigV4Authentication {
        try await verifier.verify(request, now: now, credentials: AWSTestSuite.credentials(token: token))
    }

    static func replacing(_ name: String, with value: String, in request: SigV4Request) -> SigV4Request {
        var request = request
        request.headers = request.headers.map { $0.name.lowercased() == name ? ($0.name, value) : $0 }
        return request
    }

    static var authorization: String {
        signedRequest().headers.first { $0.name == "Authorization" }!.value
    }

    // MARK: Success

    @Test func headerFormSucceeds() async throws {
        let result = try await Self.verify(Self.signedRequest())
        #expect(result.accessKeyID == AWSTestSuite.accessKeyID)
        #expect(result.scope.description == "20150830/us-east-1/ecr/aws4_request")
        #expect(result.requestDate.description == AWSTestSuite.amzDate)
        #expect(result.sessionToken == nil)
        #expect(!result.isPresigned)
        #expect(result.payloadHash == Self.bodyHash)
        #expect(result.signedHeaders == ["content-type", "host", "x-amz-date", "x-amz-target"])
    }

    @Test func presignedFormSucceeds() async throws {
        let presigned = try Self.signer.presign(
            method: "GET", host: "registry.example.com", path: "/v2/library/alpine/blobs/sha256:abc",
            query: "x=1", expires: 600, date: AWSTestSuite.date)
        let request = SigV4Request(method: "GET", path: "/v2/library/alpine/blobs/sha256:abc", query: presigned.query,
                                   headers: [("Host", "registry.example.com")], payload: .unavailable)
        let result = try await Self.verify(request, now: AWSTestSuite.date.addingTimeInterval(600))
        #expect(result.isPresigned)
        #expect(result.payloadHash == "UNSIGNED-PAYLOAD")
        await #expect(throws: SigV4Error.requestExpired(
            expiredAt: AmzDate("20150830T124600Z")!, now: AmzDate("20150830T124601Z")!)) {
            try await Self.verify(request, now: AWSTestSuite.date.addingTimeInterval(601))
        }
    }

    @Test func presignedWithSessionToken() async throws {
        let signer = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret, sessionToken: "tok",
                                 region: "us-east-1", service: "ecr")
        let presigned = try signer.presign(method: "GET", host: "h", path: "/", expires: 60, date: AWSTestSuite.date)
        #expect(presigned.authParameters.contains { $0 == ("X-Amz-Security-Token", "tok") })
        let request = SigV4Request(method: "GET", path: "/", query: presigned.query, headers: [("host", "h")],
                                   payload: .unavailable)
        #expect(try await Self.verify(request, token: "tok").sessionToken == "tok")
        await #expect(throws: SigV4Error.unrecognizedClient) { try await Self.verify(request, token: "other") }
    }

    @Test func anyConfiguredServiceIsAccepted() async throws {
        let publicSigner = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                       region: "us-east-1", service: "ecr-public")
        let verifier = SigV4Verifier(region: "us-east-1", services: ["ecr", "ecr-public"])
        let result = try await Self.verify(Self.signedRequest(signer: publicSigner), verifier: verifier)
        #expect(result.scope.service == "ecr-public")
    }

    @Test func twoStepAPIMatchesTheConvenience() throws {
        let parsed = try Self.verifier.parse(Self.signedRequest(), now: AWSTestSuite.date)
        #expect(parsed.accessKeyID == AWSTestSuite.accessKeyID)
        let result = try Self.verifier.verify(parsed, credential: SigV4Credential(secretAccessKey: AWSTestSuite.secret))
        #expect(result.accessKeyID == AWSTestSuite.accessKeyID)
        #expect(throws: SigV4Error.unrecognizedClient) { try Self.verifier.verify(parsed, credential: nil) }
    }

    @Test func credentialLookupErrorsPropagateUnchanged() async {
        struct StoreDown: Error {}
        await #expect(throws: StoreDown.self) {
            try await Self.verifier.verify(Self.signedRequest(), now: AWSTestSuite.date) { _ in throw StoreDown() }
        }
    }

    // MARK: Missing and malformed

    @Test func noAuthenticationAtAll() async {
        let request = SigV4Request(method: "POST", path: "/", headers: [("Host", "h")], payload: .unavailable)
        await #expect(throws: SigV4Error.missingAuthenticationToken) { try await Self.verify(request) }
        let basic = SigV4Request(method: "GET", path: "/", headers: [("Host", "h"), ("Authorization", "Basic QVdTOng=")],
                                 payload: .unavailable)
        await #expect(throws: SigV4Error.missingAuthenticationToken) { try await Self.verify(basic) }
    }

    @Test func missingSignatureParameters() async {
        let auth = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request"
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.incompleteSignature(
            "Authorization header requires 'Signature' parameter. "
                + "Authorization header requires 'SignedHeaders' parameter. Authorization=" + auth)) {
            try await Self.verify(request)
        }
    }

    @Test func missingAmzDate() async {
        var request = Self.signedRequest()
        request.headers.removeAll { $0.name == "X-Amz-Date" }
        await #expect(throws: SigV4Error.incompleteSignature(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
                + "Authorization=" + Self.authorization)) {
            try await Self.verify(request)
        }
    }

    @Test func pairWithoutEqualSign() async {
        let auth = "AWS4-HMAC-SHA256 Credential AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request, SignedHeaders=host, Signature=ab"
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.incompleteSignature(
            "'Credential AKIDEXAMPLE/20150830/us-east-1/ecr/aws4_request' not a valid key=value pair "
                + "(missing equal-sign) in Authorization header: '\(auth)'.")) {
            try await Self.verify(request)
        }
    }

    @Test func badDateFormat() async {
        let request = Self.replacing("x-amz-date", with: "2015-08-30T12:36:00Z", in: Self.signedRequest())
        await #expect(throws: SigV4Error.incompleteSignature(
            "Date must be in ISO-8601 'basic format'. Got '2015-08-30T12:36:00Z'. See http://en.wikipedia.org/wiki/ISO_8601")) {
            try await Self.verify(request)
        }
    }

    @Test func unsupportedAlgorithm() async {
        let auth = Self.authorization.replacingOccurrences(of: "AWS4-HMAC-SHA256", with: "AWS4-HMAC-SHA512")
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.incompleteSignature(
            "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). ")) {
            try await Self.verify(request)
        }
    }

    @Test func credentialWithFourElements() async {
        let auth = Self.authorization.replacingOccurrences(of: "/ecr/aws4_request", with: "/ecr")
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.incompleteSignature(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
                + "got 'AKIDEXAMPLE/20150830/us-east-1/ecr'")) {
            try await Self.verify(request)
        }
    }

    @Test func bothMechanismsAtOnce() async {
        var request = Self.signedRequest()
        request.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        await #expect(throws: SigV4Error.self) { try await Self.verify(request) }
    }

    @Test func hostMustBeSigned() async {
        let auth = Self.authorization.replacingOccurrences(of: "content-type;host;", with: "content-type;")
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.hostNotSigned) { try await Self.verify(request) }
        #expect(SigV4Error.hostNotSigned.message == "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    }

    // MARK: Identity and signature

    @Test func unknownAccessKey() async {
        let request = Self.signedRequest()
        await #expect(throws: SigV4Error.unrecognizedClient) {
            try await Self.verifier.verify(request, now: AWSTestSuite.date) { _ in nil }
        }
    }

    @Test func wrongSecret() async {
        await #expect(throws: SigV4Error.signatureMismatch) {
            try await Self.verifier.verify(Self.signedRequest(), now: AWSTestSuite.date) { _ in
                SigV4Credential(secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ")
            }
        }
    }

    @Test func tamperedBody() async {
        var request = Self.signedRequest()
        request.payload = .hashing(Array(#"{"repositoryName":"library/busybox"}"#.utf8))
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
    }

    @Test func tamperedSignedHeader() async {
        let request = Self.replacing(
            "x-amz-target", with: "AmazonEC2ContainerRegistry_V20150921.DeleteRepository", in: Self.signedRequest())
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
    }

    @Test func tamperedMethodPathOrQuery() async {
        var request = Self.signedRequest()
        request.method = "PUT"
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
        request = Self.signedRequest()
        request.path = "/other"
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
        request = Self.signedRequest()
        request.query = "a=b"
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
    }

    @Test func unsignedHeadersDoNotMatter() async throws {
        var request = Self.signedRequest()
        request.headers.append(("X-Forwarded-For", "10.0.0.1"))
        request.headers.append(("Accept-Encoding", "identity"))
        request = Self.replacing("user-agent", with: "changed", in: request)
        _ = try await Self.verify(request)
    }

    @Test func headerNameCaseAndValueWhitespaceDoNotMatter() async throws {
        var request = Self.signedRequest()
        request.headers = request.headers.map {
            $0.name == "Content-Type" ? ("content-TYPE", "  application/x-amz-json-1.1 ") : $0
        }
        _ = try await Self.verify(request)
    }

    @Test func repeatedHeadersAreSignedInOrder() async throws {
        let request = Self.signedRequest(extraHeaders: [("X-Amz-Meta-A", "one"), ("X-Amz-Meta-A", "two")])
        _ = try await Self.verify(request)
        var swapped = request
        swapped.headers = request.headers.map { $0.name == "X-Amz-Meta-A" ? ($0.name, $0.value == "one" ? "two" : "one") : $0 }
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(swapped) }
        var dropped = request
        dropped.headers.removeAll { $0 == ("X-Amz-Meta-A", "two") }
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(dropped) }
    }

    // MARK: Payload hash header

    @Test func contentSHA256HeaderStandsForAnUnreadBody() async throws {
        let hash = Self.bodyHash
        var request = Self.signedRequest(extraHeaders: [("X-Amz-Content-Sha256", hash)])
        request.payload = .unavailable
        let result = try await Self.verify(request)
        #expect(result.payloadHash == hash)
    }

    @Test func contentSHA256HeaderMustMatchAKnownBody() async {
        let wrong = String(repeating: "0", count: 64)
        let request = Self.signedRequest(extraHeaders: [("X-Amz-Content-Sha256", wrong)])
        await #expect(throws: SigV4Error.contentSHA256Mismatch) { try await Self.verify(request) }
    }

    @Test func unsignedPayloadHeader() async throws {
        var request = Self.signedRequest()
        request.payload = .unavailable
        request = Self.signer.sign(request, date: AWSTestSuite.date).applied(to: request)
        #expect(request.headers.contains { $0 == ("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD") })
        #expect(try await Self.verify(request).payloadHash == "UNSIGNED-PAYLOAD")
    }

    @Test func unreadBodyWithoutContentSHA256Header() async {
        var request = Self.signedRequest()
        request.payload = .unavailable
        await #expect(throws: SigV4Error.incompleteSignature(
            "Missing required header for this request: x-amz-content-sha256")) {
            try await Self.verify(request)
        }
    }

    // MARK: Session tokens

    @Test func sessionTokens() async throws {
        let tokenSigner = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                      sessionToken: "session-token", region: "us-east-1", service: "ecr")
        let withToken = Self.signedRequest(signer: tokenSigner)
        #expect(try await Self.verify(withToken, token: "session-token").sessionToken == "session-token")
        // Token does not belong to the key, key needs a token, long-term key sent with a token.
        await #expect(throws: SigV4Error.unrecognizedClient) { try await Self.verify(withToken, token: "other") }
        await #expect(throws: SigV4Error.unrecognizedClient) {
            try await Self.verify(Self.signedRequest(), token: "session-token")
        }
        await #expect(throws: SigV4Error.unrecognizedClient) { try await Self.verify(withToken, token: nil) }
    }

    // MARK: Clock skew

    @Test func clockSkewUpToFifteenMinutesEitherWay() async throws {
        _ = try await Self.verify(Self.signedRequest(), now: AWSTestSuite.date.addingTimeInterval(900))
        _ = try await Self.verify(Self.signedRequest(), now: AWSTestSuite.date.addingTimeInterval(-900))
    }

    @Test func signatureExpired() async {
        // The request was signed at 12:36:00; the server's clock says 12:56:00.
        let now = AWSTestSuite.date.addingTimeInterval(20 * 60)
        do {
            _ = try await Self.verify(Self.signedRequest(), now: now)
            Issue.record("expected an error")
        } catch let error as SigV4Error {
            #expect(error.awsErrorType == "InvalidSignatureException")
            #expect(error.message
                == "Signature expired: 20150830T123600Z is now earlier than 20150830T124100Z (20150830T125600Z - 15 min.)")
        } catch {
            Issue.record("unexpected \(error)")
        }
        await #expect(throws: SigV4Error.signatureExpired(
            requestDate: AmzDate(AWSTestSuite.amzDate)!, now: AmzDate("20150830T125101Z")!, skewSeconds: 900)) {
            try await Self.verify(Self.signedRequest(), now: AWSTestSuite.date.addingTimeInterval(901))
        }
    }

    @Test func signatureNotYetCurrent() async throws {
        let now = AWSTestSuite.date.addingTimeInterval(-901)
        do {
            _ = try await Self.verify(Self.signedRequest(), now: now)
            Issue.record("expected an error")
        } catch let error as SigV4Error {
            #expect(error.awsErrorType == "InvalidSignatureException")
            #expect(error.message
                == "Signature not yet current: 20150830T123600Z is still later than 20150830T123559Z (20150830T122059Z + 15 min.)")
        }
    }

    // MARK: Credential scope

    @Test func wrongRegion() async {
        let west = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                               region: "us-west-2", service: "ecr")
        await #expect(throws: SigV4Error.invalidCredentialScope("Credential should be scoped to a valid region. ")) {
            try await Self.verify(Self.signedRequest(signer: west))
        }
    }

    /// A deployment of several regions accepts each of them, and reports the scope's region.
    @Test func anyServedRegion() async throws {
        var verifier = Self.verifier
        verifier.acceptsRegion = { ["us-east-1", "us-west-2"].contains($0) }
        let west = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                               region: "us-west-2", service: "ecr")
        let auth = try await Self.verify(Self.signedRequest(signer: west), verifier: verifier)
        #expect(auth.scope.region == "us-west-2")
        let south = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                                region: "sa-east-1", service: "ecr")
        await #expect(throws: SigV4Error.invalidCredentialScope("Credential should be scoped to a valid region. ")) {
            try await Self.verify(Self.signedRequest(signer: south), verifier: verifier)
        }
    }

    @Test func wrongService() async {
        let s3 = SigV4Signer(accessKeyID: AWSTestSuite.accessKeyID, secretAccessKey: AWSTestSuite.secret,
                             region: "us-east-1", service: "s3")
        await #expect(throws: SigV4Error.invalidCredentialScope(
            "Credential should be scoped to correct service: 'ecr'. ")) {
            try await Self.verify(Self.signedRequest(signer: s3))
        }
    }

    @Test func wrongTerminatorAndDate() async {
        let auth = Self.authorization.replacingOccurrences(
            of: "20150830/us-east-1/ecr/aws4_request", with: "20150829/us-east-1/ecr/aws5_request")
        let request = Self.replacing("authorization", with: auth, in: Self.signedRequest())
        await #expect(throws: SigV4Error.invalidCredentialScope(
            "Credential should be scoped with a valid terminator: 'aws4_request', not 'aws5_request'. "
                + "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                + "'20150829' != '20150830', from '20150830T123600Z'.")) {
            try await Self.verify(request)
        }
    }

    // MARK: Presigned parameters

    static func presignedRequest(expires: Int = 300, mutate: (inout String) -> Void = { _ in }) throws -> SigV4Request {
        var query = try signer.presign(method: "GET", host: "h", path: "/b", expires: expires, date: AWSTestSuite.date).query
        mutate(&query)
        return SigV4Request(method: "GET", path: "/b", query: query, headers: [("Host", "h")], payload: .unavailable)
    }

    @Test func presignedRequiresAllParameters() async throws {
        let request = try Self.presignedRequest { $0 = $0.replacingOccurrences(of: "&X-Amz-Expires=300", with: "") }
        await #expect(throws: SigV4Error.invalidPresignedQuery(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
                + "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")) {
            try await Self.verify(request)
        }
    }

    @Test func presignedExpiresLimit() async throws {
        let tooLong = try Self.presignedRequest { $0 = $0.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=604801") }
        await #expect(throws: SigV4Error.invalidPresignedQuery(
            "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less "
                + "than 604800 seconds")) {
            try await Self.verify(tooLong)
        }
        let notANumber = try Self.presignedRequest { $0 = $0.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=soon") }
        await #expect(throws: SigV4Error.invalidPresignedQuery("X-Amz-Expires should be a number")) {
            try await Self.verify(notANumber)
        }
        #expect(throws: SigV4Error.self) {
            try Self.signer.presign(method: "GET", host: "h", path: "/", expires: 604_801, date: AWSTestSuite.date)
        }
        // The maximum itself is fine, and lasts exactly a week.
        let week = try Self.presignedRequest(expires: 604_800)
        _ = try await Self.verify(week, now: AWSTestSuite.date.addingTimeInterval(604_800))
        await #expect(throws: SigV4Error.self) { try await Self.verify(week, now: AWSTestSuite.date.addingTimeInterval(604_801)) }
    }

    @Test func presignedNotYetValid() async throws {
        let request = try Self.presignedRequest()
        await #expect(throws: SigV4Error.requestNotYetValid(
            requestDate: AmzDate(AWSTestSuite.amzDate)!, now: AmzDate("20150830T122059Z")!)) {
            try await Self.verify(request, now: AWSTestSuite.date.addingTimeInterval(-901))
        }
    }

    @Test func presignedTampering() async throws {
        let otherPath = try Self.presignedRequest()
        var request = otherPath
        request.path = "/c"
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(request) }
        let longer = try Self.presignedRequest { $0 = $0.replacingOccurrences(of: "X-Amz-Expires=300", with: "X-Amz-Expires=3000") }
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(longer) }
        let extraParameter = try Self.presignedRequest { $0 += "&admin=true" }
        await #expect(throws: SigV4Error.signatureMismatch) { try await Self.verify(extraParameter) }
    }

    // MARK: Error mapping

    @Test func awsErrorTable() {
        let date = AmzDate(AWSTestSuite.amzDate)!
        let table: [(SigV4Error, String, Int)] = [
            (.missingAuthenticationToken, "MissingAuthenticationTokenException", 400),
            (.incompleteSignature("x"), "IncompleteSignatureException", 400),
            (.unrecognizedClient, "UnrecognizedClientException", 400),
            (.signatureMismatch, "InvalidSignatureException", 400),
            (.signatureExpired(requestDate: date, now: date, skewSeconds: 900), "InvalidSignatureException", 400),
            (.signatureNotYetCurrent(requestDate: date, now: date, skewSeconds: 900), "InvalidSignatureException", 400),
            (.invalidCredentialScope("x"), "InvalidSignatureException", 400),
            (.hostNotSigned, "InvalidSignatureException", 400),
            (.invalidPresignedQuery("x"), "AuthorizationQueryParametersError", 400),
            (.requestExpired(expiredAt: date, now: date), "AccessDenied", 403),
            (.requestNotYetValid(requestDate: date, now: date), "AccessDenied", 403),
            (.contentSHA256Mismatch, "XAmzContentSHA256Mismatch", 400),
        ]
        for (error, type, status) in table {
            #expect(error.awsErrorType == type)
            #expect(error.httpStatus == status)
            #expect(!error.message.isEmpty)
        }
        #expect(SigV4Error.missingAuthenticationToken.message == "Missing Authentication Token")
        #expect(SigV4Error.unrecognizedClient.message == "The security token included in the request is invalid.")
        #expect(SigV4Error.signatureMismatch.message
            == "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
            + "Access Key and signing method. Consult the service documentation for details.")
        #expect(SigV4Error.requestExpired(expiredAt: date, now: date).message == "Request has expired")
    }
}
