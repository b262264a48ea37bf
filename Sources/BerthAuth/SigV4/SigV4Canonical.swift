import BerthSupport

/// SigV4 canonicalization (AWS Signature Version 4, "Create a canonical request"), on raw bytes.
enum SigV4Canonical {
    static let algorithm = "AWS4-HMAC-SHA256"
    static let unsignedPayload = "UNSIGNED-PAYLOAD"
    static let terminator = "aws4_request"

    // MARK: URI

    /// The canonical URI of a raw (already percent-encoded) path, as AWS computes it for non-S3 services.
    ///
    /// With `normalize`, dot segments are resolved and repeated slashes collapsed (RFC 3986 §5.2.4, plus AWS's
    /// rule on empty segments); then every byte of every segment that is not unreserved is percent-encoded,
    /// `%` included, which is AWS's "double encoding" of a path that was encoded once on the wire.
    static func canonicalURI(_ rawPath: String, normalize: Bool) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(rawPath.utf8.count + 8)
        let path = rawPath.isEmpty ? "/" : rawPath
        guard normalize else {
            PercentEncoding.encode(path.utf8, keepSlash: true, into: &out)
            return out
        }
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": if !segments.isEmpty { segments.removeLast() }
            default: segments.append(segment)
            }
        }
        if path.utf8.first == UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
        for (index, segment) in segments.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "/")) }
            PercentEncoding.encode(segment.utf8, into: &out)
        }
        if !segments.isEmpty, path.utf8.last == UInt8(ascii: "/") { out.append(UInt8(ascii: "/")) }
        if out.isEmpty { out.append(UInt8(ascii: "/")) }
        return out
    }

    // MARK: Query

    /// One query parameter, percent-decoded.
    struct QueryParameter {
        var name: [UInt8]
        var value: [UInt8]
        var nameString: String { String(decoding: name, as: UTF8.self) }
        var valueString: String { String(decoding: value, as: UTF8.self) }
    }

    /// Splits a raw query on `&` and the first `=` of each part, decoding both sides; empty parts are dropped.
    static func parseQuery(_ raw: String?) -> [QueryParameter] {
        guard let raw, !raw.isEmpty else { return [] }
        var parameters: [QueryParameter] = []
        for part in raw.split(separator: "&", omittingEmptySubsequences: true) {
            if let equals = part.utf8.firstIndex(of: UInt8(ascii: "=")) {
                let name = part[part.startIndex..<equals]
                let value = part[part.index(after: equals)...]
                parameters.append(QueryParameter(name: PercentEncoding.decodeLeniently(name.utf8), value: PercentEncoding.decodeLeniently(value.utf8)))
            } else {
                parameters.append(QueryParameter(name: PercentEncoding.decodeLeniently(part.utf8), value: []))
            }
        }
        return parameters
    }

    /// The canonical query string: names and values RFC 3986-encoded, sorted by name then value (byte order).
    static func canonicalQuery(_ parameters: [QueryParameter], excludingName excluded: String? = nil) -> [UInt8] {
        let excludedBytes = excluded.map { Array($0.utf8) }
        var encoded: [(name: [UInt8], value: [UInt8])] = []
        encoded.reserveCapacity(parameters.count)
        for parameter in parameters where parameter.name != excludedBytes {
            var name: [UInt8] = [], value: [UInt8] = []
            PercentEncoding.encode(parameter.name, into: &name)
            PercentEncoding.encode(parameter.value, into: &value)
            encoded.append((name, value))
        }
        encoded.sort { lhs, rhs in
            lhs.name != rhs.name ? lhs.name.lexicographicallyPrecedes(rhs.name)
                : lhs.value.lexicographicallyPrecedes(rhs.value)
        }
        var out: [UInt8] = []
        for (index, pair) in encoded.enumerated() {
            if index > 0 { out.append(UInt8(ascii: "&")) }
            out.append(contentsOf: pair.name)
            out.append(UInt8(ascii: "="))
            out.append(contentsOf: pair.value)
        }
        return out
    }

    // MARK: Headers

    /// Appends `value` with leading and trailing whitespace removed and inner runs of whitespace made one space.
    static func appendTrimmed(_ value: String, into out: inout [UInt8]) {
        var pendingSpace = false
        var wroteAny = false
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n"):
                pendingSpace = wroteAny
            default:
                if pendingSpace { out.append(UInt8(ascii: " ")) }
                pendingSpace = false
                wroteAny = true
                out.append(byte)
            }
        }
    }

    /// `name:value\n` for each signed header name in the given order; repeated headers are joined by commas.
    static func canonicalHeaders(
        signedNames: [String], headers: [(name: String, value: String)], into out: inout [UInt8]
    ) {
        for name in signedNames {
            out.append(contentsOf: name.utf8)
            out.append(UInt8(ascii: ":"))
            var first = true
            for header in headers where header.name.asciiCaseInsensitiveEquals(name) {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                appendTrimmed(header.value, into: &out)
            }
            out.append(UInt8(ascii: "\n"))
        }
    }

    // MARK: Request, string to sign, signature

    /// Everything in the canonical request after the URI, except the payload hash:
    /// `\n query \n headers \n signedHeaders \n`. Shared between the URI and payload candidates.
    static func canonicalRequestMiddle(
        query: [UInt8], signedNames: [String], signedHeadersLine: String, headers: [(name: String, value: String)]
    ) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256 + query.count)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: query)
        out.append(UInt8(ascii: "\n"))
        canonicalHeaders(signedNames: signedNames, headers: headers, into: &out)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: signedHeadersLine.utf8)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// The canonical request: `method \n uri` + `middle` + `payloadHash`.
    static func canonicalRequest(method: String, uri: [UInt8], middle: [UInt8], payloadHash: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(method.utf8.count + uri.count + middle.count + payloadHash.utf8.count + 1)
        out.append(contentsOf: method.utf8)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: uri)
        out.append(contentsOf: middle)
        out.append(contentsOf: payloadHash.utf8)
        return out
    }

    /// `AWS4-HMAC-SHA256 \n amzDate \n scope \n hex(sha256(canonicalRequest))`.
    static func stringToSign(canonicalRequest: [UInt8], amzDate: AmzDate, scope: SigV4Scope) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        out.append(contentsOf: algorithm.utf8)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: amzDate.description.utf8)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: scope.description.utf8)
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: Bytes.hex(HMACSHA256.digest(canonicalRequest)).utf8)
        return out
    }

    /// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    static func signingKey(secret: String, scope: SigV4Scope) -> [UInt8] {
        var key = Array(("AWS4" + secret).utf8)
        for part in [scope.date, scope.region, scope.service, terminator] {
            key = HMACSHA256.authenticationCode(key: key, message: Array(part.utf8))
        }
        return key
    }

    /// The lowercase hex signature of `stringToSign`.
    static func signature(stringToSign: [UInt8], key: [UInt8]) -> String {
        Bytes.hex(HMACSHA256.authenticationCode(key: key, message: stringToSign))
    }
}
