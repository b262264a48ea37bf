#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import AsyncHTTPClient
import BerthAuth
import BerthStorage
import BerthSupport
import NIOCore
import NIOHTTP1

/// Where and how to reach an S3-compatible object store.
public struct S3Configuration: Sendable, Equatable {
    /// `http(s)://host[:port]`; a path after the authority is not allowed.
    public var endpoint: String
    public var bucket: String
    public var region: String
    /// Path-style addressing (`endpoint/bucket/key`) instead of virtual-hosted (`bucket.host/key`).
    public var pathStyle: Bool
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Prepended to every object key (e.g. `registry/`); empty by default.
    public var keyPrefix: String
    /// The archive tier (`BlobTiering`): where the objects of blobs that only archived images use go. Nil: none.
    public var archive: S3ArchiveLocation?

    public init(endpoint: String, bucket: String, region: String = "us-east-1", pathStyle: Bool = true,
                accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, keyPrefix: String = "",
                archive: S3ArchiveLocation? = nil) {
        self.endpoint = endpoint
        self.bucket = bucket
        self.region = region
        self.pathStyle = pathStyle
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.keyPrefix = keyPrefix
        self.archive = archive
    }

    /// The configuration of the archive tier's objects: the same store and credentials, the archive's bucket
    /// and key prefix. Nil without an archive tier.
    public var archiveConfiguration: S3Configuration? {
        guard let archive else { return nil }
        var c = self
        c.bucket = archive.bucket ?? bucket
        c.keyPrefix = archive.keyPrefix ?? keyPrefix
        c.archive = nil
        return c
    }
}

/// Where archived blobs' objects live: another bucket of the same store, another key prefix, or both (one
/// of them must differ from the primary tier's), optionally in another S3 storage class.
public struct S3ArchiveLocation: Sendable, Equatable {
    /// Nil: the primary tier's bucket.
    public var bucket: String?
    /// Nil: the primary tier's key prefix.
    public var keyPrefix: String?
    /// The `x-amz-storage-class` archived objects are written with; nil: the store's default (STANDARD).
    public var storageClass: String?

    public init(bucket: String? = nil, keyPrefix: String? = nil, storageClass: String? = nil) {
        self.bucket = bucket
        self.keyPrefix = keyPrefix
        self.storageClass = storageClass
    }

    /// Storage classes whose objects can be read at once, as the tier needs (a blob's bytes are read, and
    /// moved back, whenever asked).
    public static let storageClasses = ["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR",
                                        "REDUCED_REDUNDANCY"]
    /// Classes whose objects must be restored (`RestoreObject`, hours) before a GET or a copy: refused.
    public static let restoreRequiredClasses = ["GLACIER", "DEEP_ARCHIVE"]

    /// What is wrong with this location next to the primary tier of `primary` (empty when nothing is).
    public func problems(primary: S3Configuration) -> [String] {
        var p: [String] = []
        if bucket == nil && keyPrefix == nil {
            p.append("the S3 archive tier needs s3ArchiveBucket or s3ArchivePrefix (s3ArchiveStorageClass alone names no place)")
        }
        if let storageClass {
            if Self.restoreRequiredClasses.contains(storageClass) {
                p.append("s3ArchiveStorageClass \(storageClass) needs a RestoreObject (hours) before its objects can be read "
                         + "or copied back, which Berth does not do: use one of \(Self.storageClasses.joined(separator: ", "))")
            } else if !Self.storageClasses.contains(storageClass) {
                p.append("s3ArchiveStorageClass must be one of \(Self.storageClasses.joined(separator: ", ")), got \(storageClass)")
            }
        }
        let archivePrefix = keyPrefix ?? primary.keyPrefix
        if (bucket ?? primary.bucket) == primary.bucket {
            // The archive's `blobs/` must not be a part of the primary's keys, nor the other way round.
            let mine = [primary.keyPrefix + "blobs/", primary.keyPrefix + "uploads/", primary.keyPrefix + "berth-probe/"]
            let archived = archivePrefix + "blobs/"
            if mine.contains(where: { archived.hasPrefix($0) || $0.hasPrefix(archived) }) {
                p.append("the S3 archive tier (bucket \(primary.bucket), prefix \"\(archivePrefix)\") overlaps the primary tier's keys "
                         + "(prefix \"\(primary.keyPrefix)\"): give s3ArchivePrefix another value or s3ArchiveBucket another bucket")
            }
        }
        return p
    }
}

/// A failed S3 request: the HTTP status and, when the store sent one, its XML error code and message.
public struct S3Error: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var key: String
    public var status: Int
    public var code: String?
    public var message: String?

    public var description: String {
        var s = "S3 \(operation) \(key.isEmpty ? "(bucket)" : key): HTTP \(status)"
        if let code { s += " \(code)" }
        if let message, !message.isEmpty { s += ": \(message)" }
        return s
    }
}

/// The small part of the S3 REST API the blob store needs, signed with Berth's SigV4 signer.
struct S3Client: Sendable {
    let config: S3Configuration
    let http: HTTPClient
    let signer: SigV4Signer
    let scheme: String
    /// The `Host` header (and URL authority): `host[:port]`, with the bucket in front when virtual-hosted.
    let host: String

    /// The process's client for object stores: pooled keep-alive connections (up to 64 per store), a 10 s
    /// connect timeout (a dead endpoint fails in seconds, not at the request deadline), no redirects.
    static let sharedHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow, timeout: .init(connect: .seconds(10), read: .seconds(300)))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    init(_ config: S3Configuration, http: HTTPClient = S3Client.sharedHTTPClient) throws {
        self.config = config
        self.http = http
        signer = SigV4Signer(accessKeyID: config.accessKeyID, secretAccessKey: config.secretAccessKey,
                             sessionToken: config.sessionToken, region: config.region, service: "s3")
        let (scheme, authority) = try Self.parseEndpoint(config.endpoint)
        self.scheme = scheme
        host = config.pathStyle ? authority : "\(config.bucket).\(authority)"
        guard !config.bucket.isEmpty,
              config.bucket.utf8.allSatisfy({ PercentEncoding.isUnreserved($0) }) else {
            throw StorageError("s3Bucket \"\(config.bucket)\" is not a valid bucket name")
        }
    }

    /// `("http", "host:port")` from `http://host:port` (a trailing `/` is allowed).
    static func parseEndpoint(_ endpoint: String) throws -> (String, String) {
        var rest = Substring(endpoint)
        let scheme: String
        if rest.hasPrefix("https://") { scheme = "https"; rest = rest.dropFirst(8) }
        else if rest.hasPrefix("http://") { scheme = "http"; rest = rest.dropFirst(7) }
        else { throw StorageError("s3Endpoint \"\(endpoint)\" must start with http:// or https://") }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        guard !rest.isEmpty, !rest.contains("/"), !rest.contains("?"), !rest.contains("@") else {
            throw StorageError("s3Endpoint \"\(endpoint)\" must be http(s)://host[:port] without a path")
        }
        return (scheme, String(rest))
    }

    /// The request path of `key` (or of the bucket when nil), each segment percent-encoded once.
    func path(_ key: String?) -> String {
        var out: [UInt8] = []
        if config.pathStyle {
            out.append(UInt8(ascii: "/"))
            out.append(contentsOf: config.bucket.utf8)
        }
        out.append(UInt8(ascii: "/"))
        if let key { PercentEncoding.encode(key.utf8, keepSlash: true, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    /// A presigned GET URL of `key`, valid for `seconds` from `date` (what a redirected client follows).
    func presignedGet(_ key: String, expires seconds: Int, date: Date) throws -> String {
        let path = path(key)
        let signed = try signer.presign(method: "GET", host: host, path: path, expires: seconds, date: date)
        return "\(scheme)://\(host)\(path)?\(signed.query)"
    }

    /// `x-amz-copy-source` of `key` in `bucket` (default: this client's bucket).
    func copySource(_ key: String, bucket: String? = nil) -> String {
        var out = Array("/\(bucket ?? config.bucket)/".utf8)
        PercentEncoding.encode(key.utf8, keepSlash: true, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Sends one signed request. Transient failures (connection errors, 500/502/503/504) of requests whose
    /// body can be sent again are retried up to twice; the response of the last attempt is returned as is.
    func send(
        _ method: HTTPMethod, key: String?, query: String? = nil, headers: [(String, String)] = [],
        body: ByteBuffer? = nil, timeout: TimeAmount = .seconds(300)
    ) async throws -> HTTPClientResponse {
        var attempt = 0
        while true {
            attempt += 1
            do {
                let response = try await sendOnce(method, key: key, query: query, headers: headers,
                                                  body: body.map { .bytes($0) }, timeout: timeout)
                if attempt < 3, [500, 502, 503, 504].contains(response.status.code) {
                    _ = try? await response.body.collect(upTo: 1 << 20)
                    try await Task.sleep(for: .milliseconds(100 * attempt))
                    continue
                }
                return response
            } catch let error as HTTPClientError
                where attempt < 3 && ![.deadlineExceeded, .connectTimeout, .readTimeout].contains(error) {
                try await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
    }

    func sendOnce(
        _ method: HTTPMethod, key: String?, query: String?, headers: [(String, String)],
        body: HTTPClientRequest.Body?, timeout: TimeAmount
    ) async throws -> HTTPClientResponse {
        let path = path(key)
        var fields: [(name: String, value: String)] = [(name: "host", value: host)]
        for (name, value) in headers { fields.append((name: name, value: value)) }
        let unsigned = SigV4Request(method: method.rawValue, path: path, query: query, headers: fields, payload: .unavailable)
        let signed = signer.sign(unsigned, date: Date()).applied(to: unsigned)
        var request = HTTPClientRequest(url: "\(scheme)://\(host)\(path)" + (query.map { "?" + $0 } ?? ""))
        request.method = method
        for header in signed.headers { request.headers.add(name: header.name, value: header.value) }
        if let body { request.body = body }
        return try await http.execute(request, timeout: timeout)
    }

    /// Throws an `S3Error` for a response outside 2xx, with the code and message of its XML body.
    @discardableResult
    func check(_ response: HTTPClientResponse, _ operation: String, _ key: String,
               allow: Set<Int> = []) async throws -> HTTPClientResponse {
        let status = Int(response.status.code)
        if (200..<300).contains(status) || allow.contains(status) { return response }
        let body = (try? await response.body.collect(upTo: 64 << 10)).map { String(buffer: $0) } ?? ""
        throw S3Error(operation: operation, key: key, status: status, code: XML.first("Code", in: body),
                      message: XML.first("Message", in: body) ?? (body.isEmpty ? response.status.reasonPhrase : nil))
    }

    /// The body of a small response, checked for an `<Error>` (S3 can answer 200 and fail in the body).
    func xmlBody(_ response: HTTPClientResponse, _ operation: String, _ key: String) async throws -> String {
        try await check(response, operation, key)
        let body = String(buffer: try await response.body.collect(upTo: 16 << 20))
        if body.contains("<Error>") {
            throw S3Error(operation: operation, key: key, status: Int(response.status.code),
                          code: XML.first("Code", in: body), message: XML.first("Message", in: body))
        }
        return body
    }

    // MARK: Objects

    struct ObjectInfo: Sendable, Equatable {
        var key: String
        var size: Int64
        var lastModified: Double
    }

    /// Every object under `prefix` (ListObjectsV2, all pages), in key order.
    func list(prefix: String) async throws -> [ObjectInfo] {
        var out: [ObjectInfo] = []
        var token: String? = nil
        repeat {
            var query = "list-type=2&prefix=\(PercentEncoding.encoded(prefix))"
            if let token { query += "&continuation-token=\(PercentEncoding.encoded(token))" }
            let body = try await xmlBody(try await send(.GET, key: nil, query: query), "ListObjectsV2", prefix)
            for item in XML.elements("Contents", in: body) {
                guard let key = XML.first("Key", in: item), let size = XML.first("Size", in: item).flatMap({ Int64($0) })
                else { continue }
                let modified = XML.first("LastModified", in: item).flatMap { UTCTimestamp.parseRFC3339($0) } ?? 0
                out.append(ObjectInfo(key: key, size: size, lastModified: modified))
            }
            token = XML.first("IsTruncated", in: body) == "true" ? XML.first("NextContinuationToken", in: body) : nil
        } while token != nil
        return out
    }

    /// Creates the bucket (for test setups); no error when it exists already.
    func createBucket() async throws {
        try await check(try await send(.PUT, key: nil), "CreateBucket", "", allow: [409])
    }

    /// The size of an object, or nil when there is none.
    func head(_ key: String) async throws -> Int64? {
        try await headObject(key)?.size
    }

    /// The size and storage class (`x-amz-storage-class`; nil when the store sends none, as S3 does for
    /// STANDARD) of an object, or nil when there is none.
    func headObject(_ key: String) async throws -> (size: Int64, storageClass: String?)? {
        let response = try await check(try await send(.HEAD, key: key), "HeadObject", key, allow: [404])
        if response.status.code == 404 { return nil }
        guard let length = response.headers.first(name: "content-length").flatMap({ Int64($0) }) else {
            throw S3Error(operation: "HeadObject", key: key, status: Int(response.status.code), code: nil,
                          message: "no Content-Length")
        }
        return (length, response.headers.first(name: "x-amz-storage-class"))
    }

    /// Streams an object (or one inclusive range of it); false when it does not exist. `checkTotal` sees the
    /// object's whole size (from `Content-Range`, or `Content-Length` without a range; a HEAD when the
    /// response carries neither) before any byte reaches `consumer`. Bodies longer than one chunk go
    /// through `ReadAhead`: 1 MiB chunks, read up to 4 MiB ahead of the consumer.
    func get(_ key: String, range: ClosedRange<Int64>?, into consumer: (ByteBuffer) async throws -> Void,
             checkTotal: ((Int64?) throws -> Void)? = nil) async throws -> Bool {
        let headers = range.map { [("range", "bytes=\($0.lowerBound)-\($0.upperBound)")] } ?? []
        let response = try await check(try await send(.GET, key: key, headers: headers), "GetObject", key, allow: [404])
        if response.status.code == 404 { return false }
        if let checkTotal {
            let total: Int64?
            if range != nil, let contentRange = response.headers.first(name: "content-range"),
               let slash = contentRange.lastIndex(of: "/") {
                total = Int64(contentRange[contentRange.index(after: slash)...])
            } else if range == nil, let length = response.headers.first(name: "content-length") {
                total = Int64(length)
            } else {
                total = try await head(key)
            }
            try checkTotal(total)
        }
        var received: Int64 = 0
        let length = range.map { $0.upperBound - $0.lowerBound + 1 }
            ?? response.headers.first(name: "content-length").flatMap { Int64($0) }
        if let length, length <= Int64(ReadAhead.chunkSize) {
            // A few socket reads: no read-ahead to set up.
            for try await buffer in response.body {
                received += Int64(buffer.readableBytes)
                try await consumer(buffer)
            }
        } else {
            received = try await ReadAhead.stream(response.body, into: consumer)
        }
        if let range, received != range.upperBound - range.lowerBound + 1 {
            throw S3Error(operation: "GetObject", key: key, status: Int(response.status.code), code: nil,
                          message: "received \(received) bytes of a \(range.upperBound - range.lowerBound + 1)-byte range")
        }
        return true
    }

    func put(_ key: String, _ body: ByteBuffer) async throws {
        try await check(try await send(.PUT, key: key, body: body), "PutObject", key)
    }

    /// Deletes an object; no error when it does not exist.
    func delete(_ key: String) async throws {
        try await check(try await send(.DELETE, key: key), "DeleteObject", key, allow: [404])
    }

    /// Server-side copy of a whole object (at most 5 GiB) of `sourceBucket` (default: this one) to `key`,
    /// written in `storageClass` when given.
    func copy(from source: String, sourceBucket: String? = nil, to key: String, storageClass: String? = nil) async throws {
        let headers = [("x-amz-copy-source", copySource(source, bucket: sourceBucket))] + Self.storageClassHeader(storageClass)
        _ = try await xmlBody(try await send(.PUT, key: key, headers: headers), "CopyObject", key)
    }

    static func storageClassHeader(_ storageClass: String?) -> [(String, String)] {
        storageClass.map { [("x-amz-storage-class", $0)] } ?? []
    }

    // MARK: Multipart uploads

    func createMultipartUpload(_ key: String, storageClass: String? = nil) async throws -> String {
        let body = try await xmlBody(try await send(.POST, key: key, query: "uploads", headers: Self.storageClassHeader(storageClass)),
                                     "CreateMultipartUpload", key)
        guard let id = XML.first("UploadId", in: body), !id.isEmpty else {
            throw S3Error(operation: "CreateMultipartUpload", key: key, status: 200, code: nil, message: "no UploadId")
        }
        return id
    }

    private func partQuery(_ uploadID: String, _ number: Int) -> String {
        "partNumber=\(number)&uploadId=\(PercentEncoding.encoded(uploadID))"
    }

    /// Uploads one part; returns its ETag.
    func uploadPart(_ key: String, uploadID: String, number: Int, _ body: ByteBuffer) async throws -> String {
        let response = try await check(try await send(.PUT, key: key, query: partQuery(uploadID, number), body: body),
                                       "UploadPart", key)
        _ = try? await response.body.collect(upTo: 1 << 20)
        guard let etag = response.headers.first(name: "etag") else {
            throw S3Error(operation: "UploadPart", key: key, status: Int(response.status.code), code: nil, message: "no ETag")
        }
        return etag
    }

    /// Copies an inclusive byte range of `source` (in `sourceBucket`, default this one) as one part; returns its ETag.
    func uploadPartCopy(_ key: String, uploadID: String, number: Int, source: String, sourceBucket: String? = nil,
                        range: ClosedRange<Int64>) async throws -> String {
        let body = try await xmlBody(
            try await send(.PUT, key: key, query: partQuery(uploadID, number),
                           headers: [("x-amz-copy-source", copySource(source, bucket: sourceBucket)),
                                     ("x-amz-copy-source-range", "bytes=\(range.lowerBound)-\(range.upperBound)")]),
            "UploadPartCopy", key)
        guard let etag = XML.first("ETag", in: body) else {
            throw S3Error(operation: "UploadPartCopy", key: key, status: 200, code: nil, message: "no ETag")
        }
        return etag
    }

    func completeMultipartUpload(_ key: String, uploadID: String, etags: [String]) async throws {
        var xml = "<CompleteMultipartUpload>"
        for (i, etag) in etags.enumerated() {
            xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(XML.escape(etag))</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        _ = try await xmlBody(
            try await send(.POST, key: key, query: "uploadId=\(PercentEncoding.encoded(uploadID))",
                           headers: [("content-type", "application/xml")], body: ByteBuffer(string: xml)),
            "CompleteMultipartUpload", key)
    }

    func abortMultipartUpload(_ key: String, uploadID: String) async throws {
        try await check(try await send(.DELETE, key: key, query: "uploadId=\(PercentEncoding.encoded(uploadID))"),
                        "AbortMultipartUpload", key, allow: [404])
    }

    /// Multipart uploads in progress under `prefix`: key, upload id and when each was begun (seconds since the
    /// epoch; 0 when the store does not say), every page.
    func multipartUploads(prefix: String) async throws -> [(key: String, uploadID: String, initiated: Double)] {
        var out: [(key: String, uploadID: String, initiated: Double)] = []
        var markers: (key: String, uploadID: String)? = nil
        repeat {
            var query = "prefix=\(PercentEncoding.encoded(prefix))&uploads"
            if let markers {
                query += "&key-marker=\(PercentEncoding.encoded(markers.key))&upload-id-marker=\(PercentEncoding.encoded(markers.uploadID))"
            }
            let body = try await xmlBody(try await send(.GET, key: nil, query: query), "ListMultipartUploads", prefix)
            for item in XML.elements("Upload", in: body) {
                guard let key = XML.first("Key", in: item), let id = XML.first("UploadId", in: item) else { continue }
                out.append((key, id, XML.first("Initiated", in: item).flatMap { UTCTimestamp.parseRFC3339($0) } ?? 0))
            }
            let previous = markers
            markers = nil
            if XML.first("IsTruncated", in: body) == "true", let key = XML.first("NextKeyMarker", in: body), !key.isEmpty {
                let id = XML.first("NextUploadIdMarker", in: body) ?? ""
                // A store that answers the same page again would loop forever.
                if previous.map({ $0 != (key, id) }) ?? true { markers = (key, id) }
            }
        } while markers != nil
        return out
    }
}

/// Just enough XML for S3's flat responses: the text of elements by name, entities decoded.
enum XML {
    /// The inner text of every `<tag>…</tag>`, in order (no nesting of the same tag).
    static func elements(_ tag: String, in xml: String) -> [String] {
        var out: [String] = []
        var rest = xml[...]
        while let (inner, after) = next(tag, in: rest) {
            out.append(String(inner))
            rest = after
        }
        return out
    }

    /// The decoded text of the first `<tag>…</tag>`.
    static func first(_ tag: String, in xml: String) -> String? {
        next(tag, in: xml[...]).map { unescape(String($0.inner)) }
    }

    private static func next(_ tag: String, in xml: Substring) -> (inner: Substring, after: Substring)? {
        guard let start = xml.firstRange(of: "<\(tag)>") else { return nil }
        let tail = xml[start.upperBound...]
        guard let end = tail.firstRange(of: "</\(tag)>") else { return nil }
        return (tail[..<end.lowerBound], tail[end.upperBound...])
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacing("&quot;", with: "\"").replacing("&apos;", with: "'").replacing("&lt;", with: "<")
            .replacing("&gt;", with: ">").replacing("&#34;", with: "\"").replacing("&amp;", with: "&")
    }

    static func escape(_ s: String) -> String { Markup.escape(s, apostrophe: "&apos;") }
}
