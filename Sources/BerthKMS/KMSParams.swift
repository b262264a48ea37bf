import BerthCore
import BerthSupport
import Foundation

/// Typed access to a KMS request's members with KMS's errors: a wrong JSON type is a
/// `SerializationException`, a missing or out-of-range member a `ValidationException` naming the
/// member in lowerCamelCase, as AWS writes it.
struct KMSParams {
    let members: [String: JSONValue]

    init(_ members: [String: JSONValue]) { self.members = members }

    /// Parses a request body: an object, or nothing at all.
    static func parse(_ body: [UInt8]) throws(KMSError) -> KMSParams {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return KMSParams([:]) }
        guard let value = try? JSONValue.parse(body), case .object(let o) = value else {
            throw .serialization("Start of structure or map not found: the request body must be a JSON object")
        }
        return KMSParams(o)
    }

    static func wireName(_ name: String) -> String { name.prefix(1).lowercased() + name.dropFirst() }

    func typeError(_ name: String, _ expected: String) -> KMSError {
        .serialization("Unexpected type for member '\(name)': expected \(expected)")
    }

    func missing(_ name: String) -> KMSError {
        .validation(ValidationMessage.missing(Self.wireName(name)))
    }

    func string(_ name: String, length: ClosedRange<Int>? = nil) throws(KMSError) -> String? {
        switch members[name] {
        case nil, .null?: return nil
        case .string(let s)?:
            if let length, !length.contains(s.utf8.count) {
                throw .constraint(s, Self.wireName(name), "Member must have length between \(length.lowerBound) and \(length.upperBound)")
            }
            return s
        default: throw typeError(name, "string")
        }
    }

    func requiredString(_ name: String, length: ClosedRange<Int>? = nil) throws(KMSError) -> String {
        guard let s = try string(name, length: length) else { throw missing(name) }
        return s
    }

    /// `KeyId`-like members: 1 to 2048 characters.
    func keyID(_ name: String = "KeyId") throws(KMSError) -> String { try requiredString(name, length: 1...2048) }

    func bool(_ name: String) throws(KMSError) -> Bool? {
        switch members[name] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw typeError(name, "boolean")
        }
    }

    func int(_ name: String, range: ClosedRange<Int>? = nil) throws(KMSError) -> Int? {
        switch members[name] {
        case nil, .null?: return nil
        case .int(let i)?:
            if let range, !(Int64(range.lowerBound)...Int64(range.upperBound)).contains(i) {
                throw .constraint("\(i)", Self.wireName(name), "Member must have value \(i < range.lowerBound ? "greater than or equal to \(range.lowerBound)" : "less than or equal to \(range.upperBound)")")
            }
            return Int(i)
        default: throw typeError(name, "integer")
        }
    }

    /// A blob member (standard base64) of `length` bytes.
    func blob(_ name: String, length: ClosedRange<Int>) throws(KMSError) -> [UInt8]? {
        guard let text = try string(name) else { return nil }
        guard let data = Data(base64Encoded: text) else { throw .serialization("Value of '\(name)' is not valid base64") }
        guard length.contains(data.count) else {
            throw .validation(ValidationMessage(.omitted, at: Self.wireName(name), .lengthBetween(length.lowerBound, length.upperBound)))
        }
        return Array(data)
    }

    func requiredBlob(_ name: String, length: ClosedRange<Int>) throws(KMSError) -> [UInt8] {
        guard let b = try blob(name, length: length) else { throw missing(name) }
        return b
    }

    /// An encryption context: a map of strings.
    func stringMap(_ name: String) throws(KMSError) -> [String: String]? {
        switch members[name] {
        case nil, .null?: return nil
        case .object(let o)?:
            var out: [String: String] = [:]
            for (k, v) in o {
                guard case .string(let s) = v else { throw typeError(name, "map of strings") }
                out[k] = s
            }
            return out
        default: throw typeError(name, "map")
        }
    }

    func list(_ name: String) throws(KMSError) -> [JSONValue]? {
        switch members[name] {
        case nil, .null?: return nil
        case .array(let a)?: return a
        default: throw typeError(name, "list")
        }
    }

    func requiredStringList(_ name: String) throws(KMSError) -> [String] {
        guard let l = try list(name) else { throw missing(name) }
        var out: [String] = []
        for v in l {
            guard case .string(let s) = v else { throw typeError(name, "list of strings") }
            out.append(s)
        }
        return out
    }

    /// A `TagList`: `{"TagKey", "TagValue"}` structures, keys 1–128 and values 0–256 characters, no `aws:` keys.
    func tags(_ name: String = "Tags") throws(KMSError) -> [ResourceTag]? {
        guard let l = try list(name) else { return nil }
        var out: [ResourceTag] = []
        for v in l {
            guard case .object(let o) = v else { throw typeError(name, "list of structures") }
            let t = KMSParams(o)
            let key = try t.requiredString("TagKey", length: 1...128)
            let value = try t.requiredString("TagValue", length: 0...256)
            if key.lowercased().hasPrefix("aws:") { throw .tag("Tag keys beginning with aws: are reserved") }
            out.append(ResourceTag(key: key, value: value))
        }
        return out
    }

    /// `Limit` (1–1000) and the opaque `Marker` of a list operation.
    func page(maxLimit: Int = 1000, defaultLimit: Int = 100) throws(KMSError) -> (limit: Int, after: String?) {
        let limit = try int("Limit", range: 1...maxLimit) ?? defaultLimit
        guard let marker = try string("Marker", length: 1...1024) else { return (limit, nil) }
        guard let data = Data(base64Encoded: marker), let last = String(data: data, encoding: .utf8) else { throw .invalidMarker() }
        return (limit, last)
    }

    /// `GrantTokens`: accepted (at most 10) and not used: Berth has no grants.
    func checkGrantTokens() throws(KMSError) {
        if let l = try list("GrantTokens"), l.count > 10 {
            throw .validation(ValidationMessage(.omitted, at: "grantTokens", .lengthAtMost(10)))
        }
    }

    static func marker(_ last: String) -> String { Data(last.utf8).base64EncodedString() }
}
