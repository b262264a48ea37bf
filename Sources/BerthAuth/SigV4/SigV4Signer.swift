#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import BerthSupport

/// Signs requests with AWS Signature Version 4, with the same canonicalization the verifier uses.
///
/// The server uses it to presign download URLs; tests use it to sign requests.
public struct SigV4Signer: Sendable {
    /// The access key id named in the credential.
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials, sent as `X-Amz-Security-Token`.
    public var sessionToken: String?
    /// The signing region.
    public var region: String
    /// The signing service name.
    public var service: String

    /// Creates a signer.
    public init(
        accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, region: String, service: String
    ) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.region = region
        self.service = service
    }

    /// Signs `request` at `date` in the `Authorization` header form.
    ///
    /// Every header of `request` is signed except those proxies may change (`user-agent`, `expect`, …); include
    /// `host`. `X-Amz-Date` (and `X-Amz-Security-Token`) are set; an `.unavailable` payload without an
    /// `X-Amz-Content-Sha256` header is signed as `UNSIGNED-PAYLOAD`, and that header is added.
    public func sign(_ request: SigV4Request, date: Date) -> SigV4SignedRequest {
        let amzDate = AmzDate(date)
        let scope = SigV4Scope(date: amzDate.dateStamp, region: region, service: service)
        var added: [(name: String, value: String)] = [("X-Amz-Date", amzDate.description)]
        if let sessionToken { added.append(("X-Amz-Security-Token", sessionToken)) }
        let payloadHash: String
        if let declared = request.firstHeader("x-amz-content-sha256") {
            payloadHash = String(declared.trimmingWhitespace)
        } else if case .sha256Hex(let hex) = request.payload {
            payloadHash = hex.asciiLowercased
        } else {
            payloadHash = SigV4Canonical.unsignedPayload
            added.append(("X-Amz-Content-Sha256", payloadHash))
        }
        let replaced = Set(added.map { $0.name.asciiLowercased })
        let headers = request.headers.filter { !replaced.contains($0.name.asciiLowercased) } + added
        var signedNames: [String] = []
        for header in headers {
            let name = header.name.asciiLowercased
            if !unsignableHeaderNames.contains(name), !signedNames.contains(name) { signedNames.append(name) }
        }
        signedNames.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let signedHeadersLine = signedNames.joined(separator: ";")
        let result = signature(
            method: request.method, path: request.path, query: SigV4Canonical.parseQuery(request.query),
            signedNames: signedNames, signedHeadersLine: signedHeadersLine, headers: headers,
            payloadHash: payloadHash, amzDate: amzDate, scope: scope)
        let authorization = "\(SigV4Canonical.algorithm) Credential=\(accessKeyID)/\(scope), "
            + "SignedHeaders=\(signedHeadersLine), Signature=\(result.signature)"
        return SigV4SignedRequest(
            authorization: authorization, amzDate: amzDate.description,
            headersToAdd: added + [("Authorization", authorization)], signature: result.signature,
            canonicalRequest: result.canonicalRequest, stringToSign: result.stringToSign)
    }

    /// Presigns a URL: the query parameters that authenticate `method` on `path` for `expires` seconds.
    ///
    /// Only `host` (and `extraSignedHeaders`) are signed; the payload is `UNSIGNED-PAYLOAD` unless given.
    ///
    /// - Parameters:
    ///   - query: the URL's raw (encoded) query without the auth parameters, or `nil`.
    ///   - expires: validity in seconds, `1...604800`.
    /// - Throws: ``SigV4Error/invalidPresignedQuery(_:)`` when `expires` is out of range.
    public func presign(
        method: String,
        host: String,
        path: String,
        query: String? = nil,
        extraSignedHeaders: [(name: String, value: String)] = [],
        expires: Int,
        date: Date,
        payloadHash: String = "UNSIGNED-PAYLOAD"
    ) throws(SigV4Error) -> SigV4PresignedURL {
        guard (1...Int(SigV4Verifier.maximumPresignedExpirySeconds)).contains(expires) else {
            throw .invalidPresignedQuery(
                "X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be "
                    + "less than \(SigV4Verifier.maximumPresignedExpirySeconds) seconds")
        }
        let amzDate = AmzDate(date)
        let scope = SigV4Scope(date: amzDate.dateStamp, region: region, service: service)
        let headers = [(name: "host", value: host)] + extraSignedHeaders
        var signedNames = Array(Set(headers.map { $0.name.asciiLowercased }))
        signedNames.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let signedHeadersLine = signedNames.joined(separator: ";")
        var authParameters: [(name: String, value: String)] = [
            ("X-Amz-Algorithm", SigV4Canonical.algorithm),
            ("X-Amz-Credential", "\(accessKeyID)/\(scope)"),
            ("X-Amz-Date", amzDate.description),
            ("X-Amz-Expires", String(expires)),
            ("X-Amz-SignedHeaders", signedHeadersLine),
        ]
        if let sessionToken { authParameters.append(("X-Amz-Security-Token", sessionToken)) }
        let encodedAuth = authParameters.map {
            PercentEncoding.encoded($0.name) + "=" + PercentEncoding.encoded($0.value)
        }.joined(separator: "&")
        let unsignedQuery = [query, encodedAuth].compactMap { $0?.isEmpty == false ? $0 : nil }
            .joined(separator: "&")
        let result = signature(
            method: method, path: path, query: SigV4Canonical.parseQuery(unsignedQuery),
            signedNames: signedNames, signedHeadersLine: signedHeadersLine, headers: headers,
            payloadHash: payloadHash, amzDate: amzDate, scope: scope)
        authParameters.append(("X-Amz-Signature", result.signature))
        return SigV4PresignedURL(
            query: unsignedQuery + "&X-Amz-Signature=" + result.signature, authParameters: authParameters,
            signature: result.signature, canonicalRequest: result.canonicalRequest,
            stringToSign: result.stringToSign)
    }

    private func signature(
        method: String, path: String, query: [SigV4Canonical.QueryParameter], signedNames: [String],
        signedHeadersLine: String, headers: [(name: String, value: String)], payloadHash: String,
        amzDate: AmzDate, scope: SigV4Scope
    ) -> (signature: String, canonicalRequest: String, stringToSign: String) {
        let middle = SigV4Canonical.canonicalRequestMiddle(
            query: SigV4Canonical.canonicalQuery(query), signedNames: signedNames,
            signedHeadersLine: signedHeadersLine, headers: headers)
        // S3 signs the path as sent (encoded once, not normalized); other services encode it again.
        let uri = service == "s3" ? Array((path.isEmpty ? "/" : path).utf8) : SigV4Canonical.canonicalURI(path, normalize: true)
        let canonical = SigV4Canonical.canonicalRequest(
            method: method, uri: uri, middle: middle,
            payloadHash: payloadHash)
        let stringToSign = SigV4Canonical.stringToSign(canonicalRequest: canonical, amzDate: amzDate, scope: scope)
        let key = SigV4Canonical.signingKey(secret: secretAccessKey, scope: scope)
        return (SigV4Canonical.signature(stringToSign: stringToSign, key: key),
                String(decoding: canonical, as: UTF8.self), String(decoding: stringToSign, as: UTF8.self))
    }
}

/// The result of ``SigV4Signer/sign(_:date:)``.
public struct SigV4SignedRequest: Sendable {
    /// The `Authorization` header value.
    public var authorization: String
    /// The `X-Amz-Date` header value.
    public var amzDate: String
    /// The headers to set on the request, `Authorization` last (replacing any of the same name).
    public var headersToAdd: [(name: String, value: String)]
    /// The hex signature.
    public var signature: String
    /// The canonical request that was signed (for debugging and tests).
    public var canonicalRequest: String
    /// The string to sign.
    public var stringToSign: String

    /// `request` with ``headersToAdd`` set, replacing existing fields of the same names.
    public func applied(to request: SigV4Request) -> SigV4Request {
        var request = request
        let names = Set(headersToAdd.map { $0.name.asciiLowercased })
        request.headers.removeAll { names.contains($0.name.asciiLowercased) }
        request.headers += headersToAdd
        return request
    }
}

/// The result of ``SigV4Signer/presign(method:host:path:query:extraSignedHeaders:expires:date:payloadHash:)``.
public struct SigV4PresignedURL: Sendable {
    /// The complete encoded query for the URL: the original query, then the auth parameters, signature last.
    public var query: String
    /// The auth parameters, unencoded, in the order they appear in `query`.
    public var authParameters: [(name: String, value: String)]
    /// The hex signature.
    public var signature: String
    /// The canonical request that was signed.
    public var canonicalRequest: String
    /// The string to sign.
    public var stringToSign: String
}
