import BerthCore
import BerthSupport
import Foundation

/// Typed access to a Secrets Manager request's members: a wrong JSON type is a `SerializationException`,
/// a missing or out-of-range member a `ValidationException` naming the member in lowerCamelCase.
struct SecretsParams {
    let members: [String: JSONValue]

    init(_ members: [String: JSONValue]) { self.members = members }

    static func parse(_ body: [UInt8]) throws(SecretsError) -> SecretsParams {
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return SecretsParams([:]) }
        guard let value = try? JSONValue.parse(body), case .object(let o) = value else {
            throw .serialization("Start of structure or map not found: the request body must be a JSON object")
        }
        return SecretsParams(o)
    }

    static func wireName(_ name: String) -> String { name.prefix(1).lowercased() + name.dropFirst() }

    func typeError(_ name: String, _ expected: String) -> SecretsError {
        .serialization("Unexpected type for member '\(name)': expected \(expected)")
    }

    func string(_ name: String, length: ClosedRange<Int>? = nil, secret: Bool = false) throws(SecretsError) -> String? {
        switch members[name] {
        case nil, .null?: return nil
        case .string(let s)?:
            if let length, !length.contains(s.count) {
                throw .validation(ValidationMessage(secret ? .omitted : .text(s), at: Self.wireName(name),
                                                    .lengthBetween(length.lowerBound, length.upperBound)))
            }
            return s
        default: throw typeError(name, "string")
        }
    }

    func requiredString(_ name: String, length: ClosedRange<Int>? = nil) throws(SecretsError) -> String {
        guard let s = try string(name, length: length) else {
            throw .validation(ValidationMessage.missing(Self.wireName(name)))
        }
        return s
    }

    func bool(_ name: String) throws(SecretsError) -> Bool? {
        switch members[name] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw typeError(name, "boolean")
        }
    }

    func int(_ name: String, range: ClosedRange<Int64>? = nil) throws(SecretsError) -> Int64? {
        switch members[name] {
        case nil, .null?: return nil
        case .int(let i)?:
            if let range, !range.contains(i) {
                throw .validation(ValidationMessage(.text("\(i)"), at: Self.wireName(name),
                                                    i < range.lowerBound ? .valueAtLeast(Int(range.lowerBound)) : .valueAtMost(Int(range.upperBound))))
            }
            return i
        default: throw typeError(name, "integer")
        }
    }

    func list(_ name: String) throws(SecretsError) -> [JSONValue]? {
        switch members[name] {
        case nil, .null?: return nil
        case .array(let a)?: return a
        default: throw typeError(name, "list")
        }
    }

    func stringList(_ name: String, count: ClosedRange<Int>, length: ClosedRange<Int>) throws(SecretsError) -> [String]? {
        guard let l = try list(name) else { return nil }
        guard count.contains(l.count) else {
            throw .validation(ValidationMessage(.omitted, at: Self.wireName(name), .lengthBetween(count.lowerBound, count.upperBound)))
        }
        var out: [String] = []
        for v in l {
            guard case .string(let s) = v else { throw typeError(name, "list of strings") }
            guard length.contains(s.count) else {
                throw .validation(ValidationMessage(.text(s), at: Self.wireName(name), .lengthBetween(length.lowerBound, length.upperBound)))
            }
            out.append(s)
        }
        return out
    }

    /// `Tags`: `{"Key", "Value"}` structures, keys 1–128 and values 0–256 characters.
    func tags() throws(SecretsError) -> [ResourceTag]? {
        guard let l = try list("Tags") else { return nil }
        var out: [ResourceTag] = []
        for v in l {
            guard case .object(let o) = v else { throw typeError("Tags", "list of structures") }
            let t = SecretsParams(o)
            let key = try t.requiredString("Key", length: 1...128)
            let value = try t.string("Value", length: 0...256) ?? ""
            out.append(ResourceTag(key: key, value: value))
        }
        return out
    }

    /// `SecretString` (1–65536 characters) or `SecretBinary` (base64 of 1–65536 bytes), never both.
    func secretValue() throws(SecretsError) -> SecretValue? {
        let string = try self.string("SecretString", length: 1...65_536, secret: true)
        let binary = try self.string("SecretBinary")
        if string != nil, binary != nil {
            throw .invalidParameter("You can't specify both a binary secret value and a string secret value in the same secret.")
        }
        if let string { return .string(string) }
        guard let binary else { return nil }
        guard let data = Data(base64Encoded: binary) else { throw .serialization("Value of 'SecretBinary' is not valid base64") }
        guard (1...65_536).contains(data.count) else {
            throw .validation(ValidationMessage(.omitted, at: "secretBinary", .lengthBetween(1, 65_536)))
        }
        return .binary(binary)
    }

    /// `ClientRequestToken`: 32–64 characters (the version id).
    func clientRequestToken() throws(SecretsError) -> String? {
        try string("ClientRequestToken", length: 32...64)
    }
}

/// A secret's value as given: a string, or base64 of bytes.
enum SecretValue: Equatable {
    case string(String)
    case binary(String)
}
