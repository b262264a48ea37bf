import BerthSupport

extension JSONValue {
    /// Parses a request body. Throws `SerializationException` for anything that is not a JSON object.
    public static func parseObject(_ bytes: [UInt8]) throws(ECRError) -> [String: JSONValue] {
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) { return [:] }
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            if case .trailingCharacters = error { throw .serialization("Unexpected characters after the JSON document") }
            throw .serialization("The request body is not valid JSON")
        }
        guard case .object(let o) = value else {
            throw .serialization("Start of structure or map not found: the request body must be a JSON object")
        }
        return o
    }
}

/// Typed access to request members with AWS's errors: a wrong JSON type is a
/// `SerializationException`, a missing required member an `InvalidParameterException`.
struct Params {
    let members: [String: JSONValue]

    init(_ members: [String: JSONValue]) { self.members = members }

    func typeError(_ name: String, _ expected: String) -> ECRError {
        .serialization("Unexpected type for member '\(name)': expected \(expected)")
    }

    func missing(_ name: String) -> ECRError {
        .invalidParameter(ValidationMessage.missing(name))
    }

    func string(_ name: String) throws(ECRError) -> String? {
        switch members[name] {
        case nil, .null?: return nil
        case .string(let s)?: return s
        default: throw typeError(name, "string")
        }
    }

    func requiredString(_ name: String) throws(ECRError) -> String {
        guard let s = try string(name) else { throw missing(name) }
        return s
    }

    func bool(_ name: String) throws(ECRError) -> Bool? {
        switch members[name] {
        case nil, .null?: return nil
        case .bool(let b)?: return b
        default: throw typeError(name, "boolean")
        }
    }

    func int(_ name: String) throws(ECRError) -> Int64? {
        switch members[name] {
        case nil, .null?: return nil
        case .int(let i)?: return i
        default: throw typeError(name, "integer")
        }
    }

    func requiredInt(_ name: String) throws(ECRError) -> Int64 {
        guard let i = try int(name) else { throw missing(name) }
        return i
    }

    func object(_ name: String) throws(ECRError) -> Params? {
        switch members[name] {
        case nil, .null?: return nil
        case .object(let o)?: return Params(o)
        default: throw typeError(name, "structure")
        }
    }

    func list(_ name: String) throws(ECRError) -> [JSONValue]? {
        switch members[name] {
        case nil, .null?: return nil
        case .array(let a)?: return a
        default: throw typeError(name, "list")
        }
    }

    func stringList(_ name: String) throws(ECRError) -> [String]? {
        guard let l = try list(name) else { return nil }
        var out: [String] = []
        for v in l {
            guard case .string(let s) = v else { throw typeError(name, "list of strings") }
            out.append(s)
        }
        return out
    }

    func objectList(_ name: String) throws(ECRError) -> [Params]? {
        guard let l = try list(name) else { return nil }
        var out: [Params] = []
        for v in l {
            guard case .object(let o) = v else { throw typeError(name, "list of structures") }
            out.append(Params(o))
        }
        return out
    }

    /// Refuses a list whose length is outside `range`, with ECR's validation message.
    func checkCount(_ name: String, _ count: Int, _ range: ClosedRange<Int>) throws(ECRError) {
        guard range.contains(count) else {
            throw .invalidParameter(ValidationMessage(.omitted, at: name, .lengthBetween(range.lowerBound, range.upperBound)))
        }
    }

    /// A required list of structures with a length in `range`.
    func requiredObjectList(_ name: String, count range: ClosedRange<Int>) throws(ECRError) -> [Params] {
        guard let list = try objectList(name) else { throw missing(name) }
        try checkCount(name, list.count, range)
        return list
    }

    /// A required list of strings with a length in `range`.
    func requiredStringList(_ name: String, count range: ClosedRange<Int>) throws(ECRError) -> [String] {
        guard let list = try stringList(name) else { throw missing(name) }
        try checkCount(name, list.count, range)
        return list
    }

    /// `maxResults` within [lo, hi].
    func maxResults(_ lo: Int64 = 1, _ hi: Int64) throws(ECRError) -> Int? {
        guard let v = try int("maxResults") else { return nil }
        guard v >= lo, v <= hi else {
            throw .invalidParameter(ValidationMessage(.text("\(v)"), at: "maxResults", .other("Member must have value \(v < lo ? "greater than or equal to \(lo)" : "less than or equal to \(hi)")")))
        }
        return Int(v)
    }
}
