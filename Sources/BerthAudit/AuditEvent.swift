import BerthCore
import BerthSupport

/// One CloudTrail-shaped record of a request (https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-event-reference-record-contents.html):
/// who (`userIdentity`), what (`eventSource`, `eventName`, `requestParameters`, `resources`), when, from
/// where, and how it ended (`errorCode`, `errorMessage`). Every door's requests are recorded, allowed or
/// denied, signed or anonymous; `/v2/` registry traffic under the ECR event names AWS uses for it.
public struct AuditEvent: Sendable, Equatable {
    /// CloudTrail's record format version.
    public static let eventVersion = "1.08"

    public struct Resource: Sendable, Equatable {
        /// e.g. `AWS::ECR::Repository`.
        public var type: String
        /// The resource's name as `LookupEvents` matches `ResourceName` (a repository's name).
        public var name: String
        public var arn: String?
        public init(type: String, name: String, arn: String? = nil) {
            self.type = type
            self.name = name
            self.arn = arn
        }
    }

    /// `userIdentity`: the principal, or `AWSAccount` with no ids for an anonymous request, or none
    /// when the request was refused before its credentials were read.
    public struct UserIdentity: Sendable, Equatable {
        public var type: String
        public var principalID: String?
        public var arn: String?
        public var accountID: String?
        public var accessKeyID: String?
        /// An IAM user's name; a role session's session name.
        public var userName: String?
        /// For `AssumedRole`: the role the session was issued by.
        public var sessionIssuerARN: String?

        public init(type: String, principalID: String? = nil, arn: String? = nil, accountID: String? = nil,
                    accessKeyID: String? = nil, userName: String? = nil, sessionIssuerARN: String? = nil) {
            self.type = type
            self.principalID = principalID
            self.arn = arn
            self.accountID = accountID
            self.accessKeyID = accessKeyID
            self.userName = userName
            self.sessionIssuerARN = sessionIssuerARN
        }

        /// The identity of a verified principal, typed as CloudTrail types it.
        public init(_ p: Principal) {
            switch p.kind {
            case .root:
                self.init(type: "Root", principalID: p.accountID, arn: p.arn, accountID: p.accountID, accessKeyID: p.accessKeyID)
            case .user(let name):
                self.init(type: "IAMUser", principalID: p.userID, arn: p.arn, accountID: p.accountID, accessKeyID: p.accessKeyID,
                          userName: name)
            case .assumedRole(let role, let session):
                self.init(type: "AssumedRole", principalID: p.userID, arn: p.arn, accountID: p.accountID,
                          accessKeyID: p.accessKeyID, userName: session,
                          sessionIssuerARN: ARN.iam(account: p.accountID, type: "role", name: role).description)
            case .unknown:
                self.init(type: "Unknown", principalID: p.userID, arn: p.arn, accountID: p.accountID, accessKeyID: p.accessKeyID)
            }
        }

        /// An anonymous request (ECR Public pulls, `AssumeRoleWithWebIdentity`).
        public static let anonymous = UserIdentity(type: "AWSAccount", principalID: "", accountID: "ANONYMOUS_PRINCIPAL")

        /// `Username` as `LookupEvents` shows and matches it: the user or session name, `root` for the root.
        public var lookupName: String? {
            switch type {
            case "Root": "root"
            default: userName
            }
        }

        var json: JSONValue {
            var o: [String: JSONValue] = ["type": .string(type)]
            if let principalID { o["principalId"] = .string(principalID) }
            if let arn { o["arn"] = .string(arn) }
            if let accountID { o["accountId"] = .string(accountID) }
            if let accessKeyID { o["accessKeyId"] = .string(accessKeyID) }
            if type == "IAMUser", let userName { o["userName"] = .string(userName) }
            if let sessionIssuerARN, let accountID {
                let role = sessionIssuerARN.split(separator: "/").last.map(String.init) ?? ""
                o["sessionContext"] = ["sessionIssuer": .object([
                    "type": "Role", "arn": .string(sessionIssuerARN), "accountId": .string(accountID),
                    "userName": .string(role), "principalId": .string(principalID?.split(separator: ":").first.map(String.init) ?? ""),
                ])]
            }
            return .object(o)
        }
    }

    public var eventID: String
    /// Seconds since the epoch.
    public var eventTime: Double
    /// e.g. `ecr.amazonaws.com`.
    public var eventSource: String
    public var eventName: String
    public var awsRegion: String
    public var sourceIPAddress: String?
    public var userAgent: String?
    public var userIdentity: UserIdentity?
    /// Already redacted (``AuditRedaction``).
    public var requestParameters: JSONValue?
    public var responseElements: JSONValue?
    public var errorCode: String?
    public var errorMessage: String?
    public var requestID: String
    public var readOnly: Bool
    public var resources: [Resource]
    /// The account whose registry the request addressed (`recipientAccountId`).
    public var recipientAccountID: String?

    public init(eventID: String, eventTime: Double, eventSource: String, eventName: String, awsRegion: String,
                sourceIPAddress: String? = nil, userAgent: String? = nil, userIdentity: UserIdentity? = nil,
                requestParameters: JSONValue? = nil, responseElements: JSONValue? = nil, errorCode: String? = nil,
                errorMessage: String? = nil, requestID: String, readOnly: Bool, resources: [Resource] = [],
                recipientAccountID: String? = nil) {
        self.eventID = eventID
        self.eventTime = eventTime
        self.eventSource = eventSource
        self.eventName = eventName
        self.awsRegion = awsRegion
        self.sourceIPAddress = sourceIPAddress
        self.userAgent = userAgent
        self.userIdentity = userIdentity
        self.requestParameters = requestParameters
        self.responseElements = responseElements
        self.errorCode = errorCode
        self.errorMessage = errorMessage
        self.requestID = requestID
        self.readOnly = readOnly
        self.resources = resources
        self.recipientAccountID = recipientAccountID
    }

    /// The record as CloudTrail writes it (the `CloudTrailEvent` text of `LookupEvents`, a line of
    /// `berth audit export`).
    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "eventVersion": .string(Self.eventVersion),
            "eventTime": .string(UTCTimestamp.iso8601(eventTime)),
            "eventSource": .string(eventSource),
            "eventName": .string(eventName),
            "awsRegion": .string(awsRegion),
            "sourceIPAddress": sourceIPAddress.map(JSONValue.string) ?? .null,
            "userAgent": userAgent.map(JSONValue.string) ?? .null,
            "requestParameters": requestParameters ?? .null,
            "responseElements": responseElements ?? .null,
            "requestID": .string(requestID),
            "eventID": .string(eventID),
            "readOnly": .bool(readOnly),
            "eventType": "AwsApiCall",
            "managementEvent": true,
            "eventCategory": "Management",
        ]
        if let userIdentity { o["userIdentity"] = userIdentity.json }
        if let errorCode { o["errorCode"] = .string(errorCode) }
        if let errorMessage { o["errorMessage"] = .string(errorMessage) }
        if let recipientAccountID { o["recipientAccountId"] = .string(recipientAccountID) }
        if !resources.isEmpty {
            o["resources"] = .array(resources.map { r in
                var m: [String: JSONValue] = ["type": .string(r.type)]
                if let arn = r.arn { m["ARN"] = .string(arn) }
                if let account = recipientAccountID { m["accountId"] = .string(account) }
                return .object(m)
            })
        }
        return .object(o)
    }

    /// The text of ``json`` (the same bytes), written without building it: the trail encodes every record it
    /// stores, and the object of twenty members, hashed and then sorted, cost more than the rest of the record.
    public func encodedRecord() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        var first = true
        func member(_ key: StaticString) {
            out.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
            first = false
            out.append(UInt8(ascii: "\""))
            out.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
            out.append(contentsOf: "\":".utf8)
        }
        func string(_ key: StaticString, _ value: String) {
            member(key)
            JSONValue.writeString(value, into: &out)
        }
        func optional(_ key: StaticString, _ value: String?) {
            member(key)
            if let value { JSONValue.writeString(value, into: &out) } else { out.append(contentsOf: "null".utf8) }
        }
        func value(_ key: StaticString, _ value: JSONValue?) {
            member(key)
            (value ?? .null).write(into: &out)
        }
        // The members in the order `JSONValue.write` sorts them (by key, as `String` compares).
        string("awsRegion", awsRegion)
        if let errorCode { string("errorCode", errorCode) }
        if let errorMessage { string("errorMessage", errorMessage) }
        string("eventCategory", "Management")
        string("eventID", eventID)
        string("eventName", eventName)
        string("eventSource", eventSource)
        string("eventTime", UTCTimestamp.iso8601(eventTime))
        string("eventType", "AwsApiCall")
        string("eventVersion", Self.eventVersion)
        member("managementEvent"); out.append(contentsOf: "true".utf8)
        member("readOnly"); out.append(contentsOf: (readOnly ? "true" : "false").utf8)
        if let recipientAccountID { string("recipientAccountId", recipientAccountID) }
        string("requestID", requestID)
        value("requestParameters", requestParameters)
        if !resources.isEmpty {
            member("resources")
            out.append(UInt8(ascii: "["))
            for (i, r) in resources.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                // ARN, accountId, type: sorted as `String` sorts them (upper case first).
                var m: [UInt8] = []
                if let arn = r.arn { m += Array("\"ARN\":".utf8); JSONValue.writeString(arn, into: &m) }
                if let account = recipientAccountID {
                    if !m.isEmpty { m.append(UInt8(ascii: ",")) }
                    m += Array("\"accountId\":".utf8); JSONValue.writeString(account, into: &m)
                }
                if !m.isEmpty { m.append(UInt8(ascii: ",")) }
                m += Array("\"type\":".utf8); JSONValue.writeString(r.type, into: &m)
                out.append(UInt8(ascii: "{"))
                out += m
                out.append(UInt8(ascii: "}"))
            }
            out.append(UInt8(ascii: "]"))
        }
        value("responseElements", responseElements)
        optional("sourceIPAddress", sourceIPAddress)
        optional("userAgent", userAgent)
        if let userIdentity { value("userIdentity", userIdentity.json) }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Whether an operation only reads, by CloudTrail's convention for the names of AWS APIs.
    public static func isReadOnly(_ eventName: String) -> Bool {
        for prefix in ["Get", "Describe", "List", "BatchGet", "BatchCheck", "Lookup"] where eventName.hasPrefix(prefix) {
            return true
        }
        return false
    }
}

/// What is never recorded: members whose values are secrets, credentials, key material, layer bytes or
/// policy documents are replaced by `HIDDEN_DUE_TO_SECURITY_REASONS`, as CloudTrail does.
public enum AuditRedaction {
    public static let hidden: JSONValue = "HIDDEN_DUE_TO_SECURITY_REASONS"

    /// Member names (compared without case) whose values are never recorded.
    static let hiddenMembers: Set<String> = [
        "password", "newpassword", "oldpassword", "secretaccesskey", "sessiontoken", "webidentitytoken",
        "plaintext", "ciphertextblob", "layerpartblob", "policydocument", "policytext", "policy",
        "assumerolepolicydocument", "authorizationtoken", "token", "samlassertion", "logoimageblob",
        "granttokens", "keymaterial", "secretstring", "secretbinary",
    ]

    public static func isHidden(_ member: String) -> Bool { hiddenMembers.contains(member.lowercased()) }

    /// `value` with every hidden member replaced, at any depth.
    public static func redacted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            out.reserveCapacity(o.count)
            for (k, v) in o { out[k] = isHidden(k) ? hidden : redacted(v) }
            return .object(out)
        case .array(let a):
            return .array(a.map(redacted))
        default:
            return value
        }
    }
}
