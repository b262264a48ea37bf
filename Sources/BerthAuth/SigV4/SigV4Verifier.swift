#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Verifies AWS Signature Version 4 on incoming requests, in the `Authorization` header or a presigned query.
///
/// Checks run in the order AWS's JSON services run them, so the first failure reported is the one AWS would
/// report: parameters, date format, clock skew, `host` signed, algorithm, credential shape, credential scope,
/// access key, signature, session token.
///
/// Verification is split in two pure steps, ``parse(_:now:)`` and ``verify(_:credential:)``, around the one
/// asynchronous step, the credential lookup; ``verify(_:now:credentials:)`` runs all three.
public struct SigV4Verifier: Sendable {
    /// The region named in errors, e.g. `us-east-1`.
    public var region: String
    /// Whether a request may be scoped to a region (by default: `region` only).
    public var acceptsRegion: @Sendable (String) -> Bool
    /// The signing service names accepted, e.g. `["ecr"]`; the first is the one named in errors.
    public var services: [String]
    /// How far `X-Amz-Date` may be from `now`, either way (AWS: 15 minutes).
    public var allowedClockSkewSeconds: Int64

    /// The longest `X-Amz-Expires` AWS accepts: seven days.
    public static let maximumPresignedExpirySeconds: Int64 = 604_800

    /// Creates a verifier for `region` and `services`.
    public init(region: String, services: [String], allowedClockSkewSeconds: Int64 = 900) {
        self.region = region
        self.acceptsRegion = { $0 == region }
        self.services = services
        self.allowedClockSkewSeconds = allowedClockSkewSeconds
    }

    /// Parses, looks up the credential and verifies `request` at `now`.
    ///
    /// - Throws: ``SigV4Error`` when the request fails authentication; an error thrown by `credentials` is
    ///   rethrown unchanged (a server fault, not the client's).
    public func verify(
        _ request: SigV4Request,
        now: Date,
        credentials: (_ accessKeyID: String) async throws -> SigV4Credential?
    ) async throws -> SigV4Authentication {
        let parsed = try parse(request, now: now)
        let credential = try await credentials(parsed.accessKeyID)
        return try verify(parsed, credential: credential)
    }

    /// Checks everything that needs no secret: shape, date, skew, scope and payload hash.
    public func parse(_ request: SigV4Request, now: Date) throws(SigV4Error) -> SigV4ParsedRequest {
        let now = AmzDate(now)
        let query = SigV4Canonical.parseQuery(request.query)
        let hasQueryAuth = query.contains {
            $0.name == Self.algorithmParameter || $0.name == Self.credentialParameter
                || $0.name == Self.signatureParameter
        }
        let authorizations = request.headerValues("authorization")
        let hasHeaderAuth = authorizations.contains { $0.trimmingWhitespace.hasPrefix("AWS4-") }
        switch (hasHeaderAuth, hasQueryAuth) {
        case (true, true):
            throw .incompleteSignature(
                "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, "
                    + "Signature query string parameter or the Authorization header should be specified")
        case (true, false):
            guard authorizations.count == 1 else {
                throw .incompleteSignature("The Authorization header may be specified only once.")
            }
            return try parseHeader(
                request, authorization: String(authorizations[0].trimmingWhitespace), query: query, now: now)
        case (false, true):
            return try parsePresigned(request, query: query, now: now)
        case (false, false):
            throw .missingAuthenticationToken
        }
    }

    /// Verifies the signature of a parsed request with the credential found for its access key id.
    ///
    /// - Parameter credential: the credential for `parsed.accessKeyID`, or `nil` when the key is unknown.
    public func verify(
        _ parsed: SigV4ParsedRequest, credential: SigV4Credential?
    ) throws(SigV4Error) -> SigV4Authentication {
        guard let credential else { throw .unrecognizedClient }
        let request = parsed.request
        let key = SigV4Canonical.signingKey(secret: credential.secretAccessKey, scope: parsed.scope)
        let middle = SigV4Canonical.canonicalRequestMiddle(
            query: SigV4Canonical.canonicalQuery(
                parsed.queryParameters, excludingName: parsed.isPresigned ? "X-Amz-Signature" : nil),
            signedNames: parsed.signedHeaders, signedHeadersLine: parsed.signedHeadersLine,
            headers: request.headers)
        // AWS normalizes the path of non-S3 requests; a client that signed the path as sent is accepted too.
        let normalizedURI = SigV4Canonical.canonicalURI(request.path, normalize: true)
        let rawURI = SigV4Canonical.canonicalURI(request.path, normalize: false)
        let uris = rawURI == normalizedURI ? [normalizedURI] : [normalizedURI, rawURI]
        let provided = Array(parsed.signature.utf8)
        var signedPayload: String?
        search: for uri in uris {
            for payloadHash in parsed.payloadHashCandidates {
                let canonical = SigV4Canonical.canonicalRequest(
                    method: request.method, uri: uri, middle: middle, payloadHash: payloadHash)
                let stringToSign = SigV4Canonical.stringToSign(
                    canonicalRequest: canonical, amzDate: parsed.requestDate, scope: parsed.scope)
                let expected = SigV4Canonical.signature(stringToSign: stringToSign, key: key)
                if Bytes.constantTimeEqual(Array(expected.utf8), provided) {
                    signedPayload = payloadHash
                    break search
                }
            }
        }
        guard let signedPayload else { throw .signatureMismatch }
        switch (credential.sessionToken, parsed.sessionToken) {
        case (nil, nil):
            break
        case (let expected?, let sent?) where Bytes.constantTimeEqual(Array(expected.utf8), Array(sent.utf8)):
            break
        default:
            throw .unrecognizedClient
        }
        return SigV4Authentication(
            accessKeyID: parsed.accessKeyID, sessionToken: parsed.sessionToken, scope: parsed.scope,
            requestDate: parsed.requestDate, signedHeaders: parsed.signedHeaders, payloadHash: signedPayload,
            isPresigned: parsed.isPresigned)
    }

    // MARK: Authorization header

    private func parseHeader(
        _ request: SigV4Request, authorization: String, query: [SigV4Canonical.QueryParameter], now: AmzDate
    ) throws(SigV4Error) -> SigV4ParsedRequest {
        let utf8 = authorization.utf8
        let space = utf8.firstIndex(where: \.isSpaceOrTab) ?? utf8.endIndex
        let algorithm = authorization[..<space]
        var credential: String?, signedHeaders: String?, signature: String?
        for rawPiece in authorization[space...].utf8.split(separator: UInt8(ascii: ",")) {
            let piece = Substring(rawPiece).trimmingWhitespace
            if piece.isEmpty { continue }
            guard let equals = piece.utf8.firstIndex(of: UInt8(ascii: "=")) else {
                throw .incompleteSignature(
                    "'\(piece)' not a valid key=value pair (missing equal-sign) in Authorization header: "
                        + "'\(authorization)'.")
            }
            let value = String(piece[piece.utf8.index(after: equals)...].trimmingWhitespace)
            switch piece[..<equals].trimmingWhitespace {
            case "Credential": credential = value
            case "SignedHeaders": signedHeaders = value
            case "Signature": signature = value
            default: continue
            }
        }
        let amzDateText = request.firstHeader("x-amz-date").map { String($0.trimmingWhitespace) }
        var missing = ""
        if credential?.isEmpty ?? true { missing += "Authorization header requires 'Credential' parameter. " }
        if signature?.isEmpty ?? true { missing += "Authorization header requires 'Signature' parameter. " }
        if signedHeaders == nil { missing += "Authorization header requires 'SignedHeaders' parameter. " }
        if amzDateText == nil {
            missing += "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
        }
        guard let credential, let signedHeaders, let signature, let amzDateText, missing.isEmpty else {
            throw .incompleteSignature(missing + "Authorization=" + authorization)
        }
        guard let requestDate = AmzDate(amzDateText) else {
            throw .incompleteSignature(
                "Date must be in ISO-8601 'basic format'. Got '\(amzDateText)'. See http://en.wikipedia.org/wiki/ISO_8601")
        }
        if requestDate < now.adding(seconds: -allowedClockSkewSeconds) {
            throw .signatureExpired(requestDate: requestDate, now: now, skewSeconds: allowedClockSkewSeconds)
        }
        if requestDate > now.adding(seconds: allowedClockSkewSeconds) {
            throw .signatureNotYetCurrent(requestDate: requestDate, now: now, skewSeconds: allowedClockSkewSeconds)
        }
        let signedNames = Self.signedHeaderNames(signedHeaders)
        guard signedNames.contains("host") else { throw .hostNotSigned }
        guard algorithm == SigV4Canonical.algorithm else {
            throw .incompleteSignature(
                "Unsupported AWS 'algorithm': '\(algorithm)' (only AWS4-HMAC-SHA256 for now). ")
        }
        guard let (accessKeyID, scopeParts) = Self.splitCredential(credential) else {
            throw .incompleteSignature(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, "
                    + "got '\(credential)'")
        }
        let scope = try checkScope(scopeParts, requestDate: requestDate, amzDateText: amzDateText)
        return SigV4ParsedRequest(
            accessKeyID: accessKeyID, scope: scope, requestDate: requestDate,
            sessionToken: request.firstHeader("x-amz-security-token").map { String($0.trimmingWhitespace) },
            isPresigned: false, request: request, queryParameters: query, signedHeaders: signedNames,
            signedHeadersLine: signedHeaders, signature: signature,
            payloadHashCandidates: try payloadHashCandidates(request, presigned: false))
    }

    // MARK: Presigned query

    static let algorithmParameter = Array("X-Amz-Algorithm".utf8)
    static let credentialParameter = Array("X-Amz-Credential".utf8)
    static let signatureParameter = Array("X-Amz-Signature".utf8)

    private func parsePresigned(
        _ request: SigV4Request, query: [SigV4Canonical.QueryParameter], now: AmzDate
    ) throws(SigV4Error) -> SigV4ParsedRequest {
        func parameter(_ name: String) -> String? {
            let name = Array(name.utf8)
            return query.first { $0.name == name }?.valueString
        }
        guard let algorithm = parameter("X-Amz-Algorithm"), let credential = parameter("X-Amz-Credential"),
              let signature = parameter("X-Amz-Signature"), let amzDateText = parameter("X-Amz-Date"),
              let signedHeaders = parameter("X-Amz-SignedHeaders"), let expiresText = parameter("X-Amz-Expires")
        else {
            throw .invalidPresignedQuery(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
                    + "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
        }
        guard algorithm == SigV4Canonical.algorithm else {
            throw .invalidPresignedQuery("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"")
        }
        guard let requestDate = AmzDate(amzDateText) else {
            throw .invalidPresignedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
        }
        guard let expires = Int64(expiresText) else {
            throw .invalidPresignedQuery("X-Amz-Expires should be a number")
        }
        guard expires >= 0 else { throw .invalidPresignedQuery("X-Amz-Expires must be non-negative") }
        guard expires <= Self.maximumPresignedExpirySeconds else {
            throw .invalidPresignedQuery(
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
                    + "less than \(Self.maximumPresignedExpirySeconds) seconds")
        }
        if requestDate > now.adding(seconds: allowedClockSkewSeconds) {
            throw .requestNotYetValid(requestDate: requestDate, now: now)
        }
        let expiresAt = requestDate.adding(seconds: expires)
        if now > expiresAt { throw .requestExpired(expiredAt: expiresAt, now: now) }
        guard let (accessKeyID, scopeParts) = Self.splitCredential(credential) else {
            throw .invalidPresignedQuery(
                "Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting "
                    + "\"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\".")
        }
        let signedNames = Self.signedHeaderNames(signedHeaders)
        guard signedNames.contains("host") else { throw .hostNotSigned }
        let scope = try checkScope(scopeParts, requestDate: requestDate, amzDateText: amzDateText)
        return SigV4ParsedRequest(
            accessKeyID: accessKeyID, scope: scope, requestDate: requestDate,
            sessionToken: parameter("X-Amz-Security-Token")
                ?? request.firstHeader("x-amz-security-token").map { String($0.trimmingWhitespace) },
            isPresigned: true, request: request, queryParameters: query, signedHeaders: signedNames,
            signedHeadersLine: signedHeaders, signature: signature,
            payloadHashCandidates: try payloadHashCandidates(request, presigned: true))
    }

    // MARK: Shared checks

    /// `SignedHeaders` split on `;`, lowercased, empty names dropped; the client's order is kept.
    private static func signedHeaderNames(_ line: String) -> [String] {
        line.utf8.split(separator: UInt8(ascii: ";")).map { name in
            String(decoding: name.lazy.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 | 0x20 : $0 },
                   as: UTF8.self)
        }
    }

    /// `keyid/date/region/service/term` (trailing slashes ignored, as AWS does), or `nil`.
    private static func splitCredential(_ credential: String) -> (String, [Substring])? {
        var utf8 = Substring(credential).utf8
        while utf8.last == UInt8(ascii: "/") { utf8 = utf8.dropLast() }
        let parts = utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard parts.count == 5, !parts[0].isEmpty else { return nil }
        return (String(Substring(parts[0])), parts[1...].map { Substring($0) })
    }

    /// Checks `[date, region, service, terminator]` against this verifier and the request date.
    private func checkScope(
        _ parts: [Substring], requestDate: AmzDate, amzDateText: String
    ) throws(SigV4Error) -> SigV4Scope {
        let (date, region, service, terminator) = (String(parts[0]), String(parts[1]), String(parts[2]), parts[3])
        let dateStamp = requestDate.dateStamp
        var problems = ""
        if !acceptsRegion(region) { problems += "Credential should be scoped to a valid region. " }
        if !services.contains(service) {
            problems += "Credential should be scoped to correct service: '\(services.first ?? "")'. "
        }
        if terminator != SigV4Canonical.terminator {
            problems += "Credential should be scoped with a valid terminator: 'aws4_request', not '\(terminator)'. "
        }
        if date != dateStamp {
            problems += "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                + "'\(date)' != '\(dateStamp)', from '\(amzDateText)'."
        }
        guard problems.isEmpty else { throw .invalidCredentialScope(problems) }
        return SigV4Scope(date: date, region: region, service: service)
    }

    /// The payload hashes the client may have signed, most likely first.
    ///
    /// An `X-Amz-Content-Sha256` header wins (and must match a known body). Otherwise the body's hash; for a
    /// presigned URL `UNSIGNED-PAYLOAD` first (S3 style), then the body's hash (what other AWS SDKs sign).
    private func payloadHashCandidates(_ request: SigV4Request, presigned: Bool) throws(SigV4Error) -> [String] {
        if let declared = request.firstHeader("x-amz-content-sha256").map({ String($0.trimmingWhitespace) }) {
            if case .sha256Hex(let actual) = request.payload, Bytes.isSHA256Hex(declared),
               !declared.asciiCaseInsensitiveEquals(actual) {
                throw .contentSHA256Mismatch
            }
            return [declared]
        }
        switch (request.payload, presigned) {
        case (.sha256Hex(let actual), false): return [actual.asciiLowercased]
        case (.sha256Hex(let actual), true): return [SigV4Canonical.unsignedPayload, actual.asciiLowercased]
        case (.unavailable, true): return [SigV4Canonical.unsignedPayload]
        case (.unavailable, false):
            throw .incompleteSignature("Missing required header for this request: x-amz-content-sha256")
        }
    }
}

/// A request whose SigV4 parameters were parsed and checked, waiting for its credential.
public struct SigV4ParsedRequest: Sendable {
    /// The access key id whose credential is needed.
    public let accessKeyID: String
    /// The credential scope, already checked against the verifier's region and services.
    public let scope: SigV4Scope
    /// The request time.
    public let requestDate: AmzDate
    /// The session token sent with the request, if any.
    public let sessionToken: String?
    /// Whether the parameters came from the query string.
    public let isPresigned: Bool

    let request: SigV4Request
    let queryParameters: [SigV4Canonical.QueryParameter]
    let signedHeaders: [String]
    let signedHeadersLine: String
    let signature: String
    let payloadHashCandidates: [String]
}

extension Substring {
    /// Without leading and trailing spaces and tabs (scanned as UTF-8, not as Characters).
    var trimmingWhitespace: Substring {
        let utf8 = self.utf8
        var start = utf8.startIndex, end = utf8.endIndex
        while start != end, utf8[start].isSpaceOrTab { start = utf8.index(after: start) }
        while start != end, utf8[utf8.index(before: end)].isSpaceOrTab { end = utf8.index(before: end) }
        return self[start..<end]
    }
}

extension String {
    /// Without leading and trailing spaces and tabs.
    var trimmingWhitespace: Substring { self[...].trimmingWhitespace }
}

extension UInt8 {
    var isSpaceOrTab: Bool { self == UInt8(ascii: " ") || self == UInt8(ascii: "\t") }
}
