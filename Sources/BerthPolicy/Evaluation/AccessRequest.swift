import Foundation

/// A context key's value in a request: one value, or a set (`aws:TagKeys`).
public enum ContextValue: Sendable, Hashable, ExpressibleByStringLiteral, ExpressibleByArrayLiteral {
    case single(String)
    case multiple([String])

    public init(stringLiteral value: String) { self = .single(value) }
    public init(arrayLiteral elements: String...) { self = .multiple(elements) }

    var values: [String] {
        switch self {
        case let .single(v): [v]
        case let .multiple(vs): vs
        }
    }

    /// An empty string or an empty set: "the key values in the request resolve to an empty data set".
    var isEmptySet: Bool {
        switch self {
        case let .single(v): v.isEmpty
        case let .multiple(vs): vs.isEmpty
        }
    }
}

/// One authorization question: may `principal` perform `action` on `resource`?
public struct AccessRequest: Sendable {
    /// The caller.
    public var principal: RequestPrincipal
    /// e.g. `ecr:BatchGetImage`.
    public var action: String
    /// The resource ARN, or `*` for actions without resource-level permissions (`ecr:GetAuthorizationToken`).
    public var resource: String
    /// The account that owns the resource; same account or cross-account is decided on it.
    public var resourceAccount: String
    /// `aws:CurrentTime` / `aws:EpochTime`.
    public var currentTime: Date?
    /// `aws:SourceIp`.
    public var sourceIP: String?
    /// `aws:SecureTransport`.
    public var secureTransport: Bool?
    /// `aws:ResourceTag/<key>`.
    public var resourceTags: [String: String]
    /// `aws:RequestTag/<key>` and `aws:TagKeys`; `nil` when the request carries no tags at all.
    public var requestTags: [String: String]?
    /// Any other context key (`aws:SourceArn`, `ecr:ResourceTag/…`, …); these win over derived keys.
    public var context: [String: ContextValue]

    public init(
        principal: RequestPrincipal, action: String, resource: String, resourceAccount: String? = nil,
        currentTime: Date? = nil, sourceIP: String? = nil, secureTransport: Bool? = nil,
        resourceTags: [String: String] = [:], requestTags: [String: String]? = nil,
        context: [String: ContextValue] = [:]
    ) {
        self.principal = principal
        self.action = action
        self.resource = resource
        self.resourceAccount = resourceAccount ?? AccessRequest.account(ofARN: resource) ?? principal.accountID ?? ""
        self.currentTime = currentTime
        self.sourceIP = sourceIP
        self.secureTransport = secureTransport
        self.resourceTags = resourceTags
        self.requestTags = requestTags
        self.context = context
    }

    /// Whether the principal belongs to the account that owns the resource.
    public var isSameAccount: Bool {
        principal.accountID != nil && principal.accountID == resourceAccount
    }

    /// The value of a context key; key names (and tag keys within them) compare case-insensitively.
    public func value(forKey key: String) -> ContextValue? {
        let lower = key.lowercased()
        if let explicit = context.first(where: { $0.key.lowercased() == lower })?.value { return explicit }
        let p = principal
        switch lower {
        case "aws:principalarn": return p.principalARN.map(ContextValue.single)
        case "aws:principalaccount": return p.accountID.map(ContextValue.single)
        case "aws:principaltype": return .single(p.principalType)
        case "aws:userid": return p.userID.map(ContextValue.single)
        case "aws:username": return p.username.map(ContextValue.single)
        case "aws:principalservicename": return p.serviceName.map(ContextValue.single)
        case "aws:principalisawsservice": return p.kind == .anonymous ? nil : .single(p.kind == .service ? "true" : "false")
        case "aws:currenttime": return currentTime.map { .single(PolicyDate.iso8601($0)) }
        case "aws:epochtime":
            return currentTime.map { .single(String(Int64($0.timeIntervalSince1970.rounded(.down)))) }
        case "aws:sourceip": return sourceIP.map(ContextValue.single)
        case "aws:securetransport": return secureTransport.map { .single($0 ? "true" : "false") }
        case "aws:tagkeys": return requestTags.map { .multiple($0.keys.sorted()) }
        default: break
        }
        for (prefix, tags) in [("aws:principaltag/", p.tags), ("aws:resourcetag/", resourceTags), ("aws:requesttag/", requestTags ?? [:])]
        where lower.hasPrefix(prefix) {
            let tagKey = lower.dropFirst(prefix.count)
            return tags.first { $0.key.lowercased() == tagKey }.map { .single($0.value) }
        }
        return nil
    }

    /// The fifth field of `arn:partition:service:region:account:resource` (one pass, no allocations
    /// but the result: this runs on every authorization).
    static func account(ofARN arn: String) -> String? {
        let u = arn.utf8
        guard u.starts(with: "arn:".utf8) else { return nil }
        var colons = 1
        var start: String.Index? = nil
        var i = u.index(u.startIndex, offsetBy: 4)
        while i < u.endIndex {
            if u[i] == UInt8(ascii: ":") {
                colons += 1
                if colons == 4 {
                    start = u.index(after: i)
                } else if colons == 5, let s = start {
                    return s == i ? nil : String(arn[s..<i])
                }
            }
            i = u.index(after: i)
        }
        return nil
    }
}
