import BerthCore
import BerthDirectory
import BerthSupport
import Foundation

/// An XML element of a Query-protocol response.
public indirect enum XMLNode: Sendable, Equatable {
    case text(String, String)
    case element(String, [XMLNode])

    /// `<name><member>…</member>…</name>`.
    public static func list(_ name: String, _ members: [[XMLNode]]) -> XMLNode {
        .element(name, members.map { .element("member", $0) })
    }

    public static func strings(_ name: String, _ values: [String]) -> XMLNode {
        .element(name, values.map { .text("member", $0) })
    }

    func render(into out: inout String) {
        switch self {
        case let .text(name, value):
            out += "<\(name)>\(XMLNode.escape(value))</\(name)>"
        case let .element(name, children):
            out += "<\(name)>"
            for c in children { c.render(into: &out) }
            out += "</\(name)>"
        }
    }

    static func escape(_ s: String) -> String { Markup.escape(s, apostrophe: "&apos;", carriageReturn: true) }
}

/// A response of the AWS Query protocol (`text/xml`).
public struct QueryResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    public let errorCode: String?
}

/// An error as the Query protocol sends it: `<ErrorResponse><Error><Type/><Code/><Message/></Error>…`.
public struct QueryError: Error, Sendable, Equatable {
    public let code: String
    public let message: String
    public let status: Int
    public let sender: Bool

    public init(_ code: String, _ message: String, status: Int = 400, sender: Bool = true) {
        self.code = code
        self.message = message
        self.status = status
        self.sender = sender
    }

    public static func noSuchEntity(_ m: String) -> QueryError { QueryError("NoSuchEntity", m, status: 404) }
    public static func alreadyExists(_ m: String) -> QueryError { QueryError("EntityAlreadyExists", m, status: 409) }
    public static func deleteConflict(_ m: String) -> QueryError { QueryError("DeleteConflict", m, status: 409) }
    public static func limitExceeded(_ m: String) -> QueryError { QueryError("LimitExceeded", m, status: 409) }
    public static func malformedPolicy(_ m: String) -> QueryError { QueryError("MalformedPolicyDocument", m) }
    public static func invalidInput(_ m: String) -> QueryError { QueryError("InvalidInput", m) }
    public static func validation(_ m: String) -> QueryError { QueryError("ValidationError", m) }
    public static func validation(_ m: ValidationMessage) -> QueryError { .validation(m.description) }
    public static func accessDenied(_ m: String) -> QueryError { QueryError("AccessDenied", m, status: 403) }
    public static func missingParameter(_ name: String) -> QueryError {
        QueryError.validation(ValidationMessage.missing(name.prefix(1).lowercased() + name.dropFirst()))
    }
    public static let serviceFailure = QueryError("ServiceFailure", "An internal error occurred.", status: 500, sender: false)
}

extension QueryError {
    /// The one table from any error to the Query protocol's (IAM and STS): a `QueryError` as it is, a
    /// refused web identity token in STS's words, the domain's errors by kind — `denied` is AccessDenied
    /// (403), `tooManyRequests` Throttling, unknown names NoSuchEntity (404), conflicts EntityAlreadyExists
    /// or DeleteConflict (409), every validation failure ValidationError (400) — and anything else
    /// (`internalError`, storage) ServiceFailure (500). No validation error becomes a 500.
    public init(mapping error: any Error) {
        switch error {
        case let e as QueryError:
            self = e
        case let e as WebIdentityTokenError:
            self = e.queryError
        case let e as DirectoryError:
            self = QueryError(e)
        case let e as BerthError:
            switch e {
            case .denied(let m): self = .accessDenied(m)
            case .unauthorized(let m): self = QueryError("InvalidClientTokenId", m, status: 403)
            case .tooManyRequests(let m): self = QueryError("Throttling", m)
            case .nameUnknown, .blobUnknown, .blobUploadUnknown, .manifestUnknown, .manifestBlobUnknown, .imageArchived:
                self = .noSuchEntity(e.description)
            case .repositoryAlreadyExists: self = .alreadyExists(e.description)
            case .repositoryNotEmpty, .manifestReferenced: self = .deleteConflict(e.description)
            case .unsupported(let m): self = QueryError("InvalidAction", m)
            case .digestInvalid, .digestMismatch, .nameInvalid, .tagInvalid, .referenceInvalid, .blobUploadInvalid,
                 .rangeNotSatisfiable, .sizeInvalid, .manifestInvalid, .manifestTooLarge, .tagImmutable, .paginationNumberInvalid:
                self = .validation(e.description)
            case .internalError, .kms: self = .serviceFailure
            }
        default:
            self = .serviceFailure
        }
    }
}

/// The wire side of a Query-protocol service: form parameters in, XML out.
public struct QueryProtocol: Sendable {
    /// e.g. `https://iam.amazonaws.com/doc/2010-05-08/`.
    public let namespace: String

    public init(namespace: String) {
        self.namespace = namespace
    }

    public func success(_ action: String, _ result: [XMLNode], requestID: String) -> QueryResponse {
        var out = "<\(action)Response xmlns=\"\(namespace)\">"
        if !result.isEmpty { XMLNode.element("\(action)Result", result).render(into: &out) }
        out += "<ResponseMetadata><RequestId>\(requestID)</RequestId></ResponseMetadata></\(action)Response>"
        return QueryResponse(status: 200, body: Array(out.utf8), errorCode: nil)
    }

    public func error(_ e: QueryError, requestID: String) -> QueryResponse {
        var out = "<ErrorResponse xmlns=\"\(namespace)\">"
        XMLNode.element("Error", [
            .text("Type", e.sender ? "Sender" : "Receiver"), .text("Code", e.code), .text("Message", e.message),
        ]).render(into: &out)
        out += "<RequestId>\(requestID)</RequestId></ErrorResponse>"
        return QueryResponse(status: e.status, body: Array(out.utf8), errorCode: e.code)
    }

    /// Parses an `application/x-www-form-urlencoded` body; nil when malformed.
    public static func parseForm(_ body: [UInt8]) -> [String: String]? {
        var out: [String: String] = [:]
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let kv = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            guard let k = PercentEncoding.decodeFormComponent(kv[0]) else { return nil }
            let v = kv.count > 1 ? PercentEncoding.decodeFormComponent(kv[1]) : ""
            guard let v else { return nil }
            out[k] = v
        }
        return out
    }

    /// `2026-12-01T09:10:07Z`.
    public static func timestamp(_ t: Double) -> String {
        UTCTimestamp.iso8601(t)
    }
}

/// Form parameters with the IAM/STS validation vocabulary.
public struct QueryParams: Sendable {
    public let values: [String: String]
    public init(_ values: [String: String]) { self.values = values }

    public subscript(_ name: String) -> String? { values[name] }

    public func required(_ name: String) throws(QueryError) -> String {
        guard let v = values[name] else { throw .missingParameter(name) }
        return v
    }

    /// A name of 1…`max` characters of `[\w+=,.@-]`.
    public func name(_ field: String, max: Int = 64, required: Bool = true) throws(QueryError) -> String? {
        guard let v = values[field] else {
            if required { throw .missingParameter(field) }
            return nil
        }
        let lower = field.prefix(1).lowercased() + field.dropFirst()
        guard (1...max).contains(v.utf8.count) else {
            throw .validation(ValidationMessage(.text("\(v)"), at: lower, .lengthAtMost(max)))
        }
        guard v.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_+=,.@-".unicodeScalars.contains($0)) }) else {
            throw .validation(ValidationMessage(.text("\(v)"), at: lower, .pattern("[\\w+=,.@-]+")))
        }
        return v
    }

    /// `/` or `/a/b/`.
    public func path(_ field: String = "Path") throws(QueryError) -> String {
        guard let v = values[field] else { return "/" }
        let ok = v == "/" || (v.utf8.count <= 512 && v.hasPrefix("/") && v.hasSuffix("/") && v.utf8.count > 1
            && v.utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E })
        guard ok else {
            throw .validation(ValidationMessage(.text("\(v)"), at: "path", .pattern("(\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)")))
        }
        return v
    }

    public func int(_ field: String) throws(QueryError) -> Int? {
        guard let v = values[field] else { return nil }
        guard let i = Int(v) else {
            throw .validation(ValidationMessage(.text("\(v)"), at: "\(field.prefix(1).lowercased() + field.dropFirst())", .other("Member must be a number")))
        }
        return i
    }
}
