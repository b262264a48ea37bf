import BerthCore
import BerthSupport

/// The CloudTrail API's `LookupEvents` (AWS JSON 1.1, target `CloudTrail_20131101.LookupEvents`,
/// signed for `cloudtrail`) over the audit trail, so `aws cloudtrail lookup-events --endpoint-url …`
/// reads it. Reading the trail is itself authorized: `cloudtrail:LookupEvents`, resource `*`.
/// An account sees the events of requests addressed to it or made by its principals.
public struct CloudTrailService: Sendable {
    public static let targetPrefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
    public static let signingName = "cloudtrail"
    let trail: AuditTrail
    let authorizer: any Authorizer

    public init(trail: AuditTrail, authorizer: any Authorizer) {
        self.trail = trail
        self.authorizer = authorizer
    }

    public static func handles(target: String) -> Bool { target.hasPrefix(targetPrefix) }

    public struct Response: Sendable, Equatable {
        public var status: Int
        public var body: [UInt8]
        public var errorType: String?
    }

    struct Failure: Error {
        let type: String
        let message: String
        var status = 400
    }

    public func handle(target: String, body: [UInt8], principal: Principal) async -> Response {
        let operation = target.dropFirst(Self.targetPrefix.count)
        do {
            guard operation == "LookupEvents" else {
                throw Failure(type: "UnknownOperationException", message: "Unknown operation \(operation)")
            }
            let members: [String: JSONValue]
            switch try? JSONValue.parse(body) {
            case .object(let o)?: members = o
            case nil where body.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }): members = [:]
            default: throw Failure(type: "SerializationException", message: "The request body is not a JSON object")
            }
            do {
                try await authorizer.authorize(principal, action: "cloudtrail:LookupEvents", resource: "*")
            } catch let e as BerthError {
                if case .denied(let m) = e { throw Failure(type: "AccessDeniedException", message: m) }
                throw e
            }
            let result = try await lookupEvents(members, principal: principal)
            return Response(status: 200, body: result.encoded(), errorType: nil)
        } catch let f as Failure {
            return Response(status: f.status, body: JSONValue.object(["__type": .string(f.type), "message": .string(f.message)]).encoded(),
                            errorType: f.type)
        } catch {
            return Response(status: 500, body: JSONValue.object(["__type": "InternalFailure", "message": "internal error"]).encoded(),
                            errorType: "InternalFailure")
        }
    }

    static func time(_ v: JSONValue?, _ name: String) throws -> Double? {
        switch v {
        case nil, .null?: return nil
        case .int(let i)?: return Double(i)
        case .double(let d)?: return d
        case .string(let s)?:
            if let t = UTCTimestamp.parseRFC3339(s) ?? UTCTimestamp.parseEpochSeconds(s) { return t }
            throw Failure(type: "SerializationException", message: "Unable to parse \(name) as a timestamp")
        default: throw Failure(type: "SerializationException", message: "Unexpected type for member '\(name)': expected timestamp")
        }
    }

    func lookupEvents(_ m: [String: JSONValue], principal: Principal) async throws -> JSONValue {
        var query = AuditQuery()
        if let raw = m["LookupAttributes"], raw != .null {
            guard case .array(let list) = raw else { throw Failure(type: "SerializationException", message: "LookupAttributes must be a list") }
            guard list.count <= 1 else {
                throw Failure(type: "InvalidLookupAttributesException", message: "You cannot specify more than one lookup attribute.")
            }
            if let first = list.first {
                guard let keyText = first["AttributeKey"]?.stringValue, let key = AuditQuery.Attribute(rawValue: keyText) else {
                    throw Failure(type: "InvalidLookupAttributesException",
                                  message: ValidationMessage(.text(first["AttributeKey"]?.stringValue ?? "null"), at: "lookupAttributes.1.member.attributeKey",
                                                             .oneOf(AuditQuery.Attribute.allCases.map(\.rawValue))).description)
                }
                guard let value = first["AttributeValue"]?.stringValue, (1...2000).contains(value.utf8.count) else {
                    throw Failure(type: "InvalidLookupAttributesException", message: "AttributeValue must be 1 to 2000 characters.")
                }
                query.attribute = (key, value)
            }
        }
        query.startTime = try Self.time(m["StartTime"], "StartTime")
        query.endTime = try Self.time(m["EndTime"], "EndTime")
        if let s = query.startTime, let e = query.endTime, s > e {
            throw Failure(type: "InvalidTimeRangeException", message: "Start time must be earlier than end time.")
        }
        if let e = m["EventCategory"], e != .null {
            guard e == "insight" else { throw Failure(type: "InvalidEventCategoryException", message: "EventCategory must be insight") }
            // Berth records management events only; there are no Insights events.
            return ["Events": []]
        }
        switch m["MaxResults"] {
        case nil, .null?: query.limit = 50
        case .int(let n)? where (1...50).contains(n): query.limit = Int(n)
        case .int?: throw Failure(type: "InvalidMaxResultsException", message: "MaxResults must be between 1 and 50.")
        default: throw Failure(type: "SerializationException", message: "Unexpected type for member 'MaxResults': expected integer")
        }
        if let token = m["NextToken"]?.stringValue {
            guard let cursor = Self.decodeToken(token) else {
                throw Failure(type: "InvalidNextTokenException", message: "The NextToken is not valid.")
            }
            query.after = cursor
        }
        // Each account sees its own trail (the store is shared by every account of the deployment).
        query.account = principal.accountID
        let out = try await trail.store.lookup(query)
        var result: [String: JSONValue] = ["Events": .array(out.map(Self.json))]
        if out.count == query.limit, let last = out.last {
            result["NextToken"] = .string(Self.encodeToken((last.eventTime, last.eventID)))
        }
        return .object(result)
    }

    static func json(_ e: StoredAuditEvent) -> JSONValue {
        var o: [String: JSONValue] = [
            "EventId": .string(e.eventID), "EventName": .string(e.eventName), "ReadOnly": .string(e.readOnly ? "true" : "false"),
            "EventTime": .double(e.eventTime), "EventSource": .string(e.eventSource), "CloudTrailEvent": .string(e.record),
            "Resources": .array(e.resources.map { ["ResourceType": .string($0.type), "ResourceName": .string($0.name)] }),
        ]
        if let k = e.accessKeyID { o["AccessKeyId"] = .string(k) }
        if let u = e.username { o["Username"] = .string(u) }
        return .object(o)
    }

    static func encodeToken(_ cursor: (time: Double, id: String)) -> String {
        Base64URL.encode(Array("\(cursor.time.bitPattern)|\(cursor.id)".utf8))
    }

    static func decodeToken(_ token: String) -> (time: Double, id: String)? {
        guard let bytes = Base64URL.decode(token), let text = String(validating: bytes, as: UTF8.self) else { return nil }
        let parts = text.split(separator: "|", maxSplits: 1)
        guard parts.count == 2, let bits = UInt64(parts[0]) else { return nil }
        return (Double(bitPattern: bits), String(parts[1]))
    }
}
