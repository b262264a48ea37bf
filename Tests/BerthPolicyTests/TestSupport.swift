import BerthPolicy
import Foundation

let account = "111122223333"
let otherAccount = "444455556666"

func repositoryARN(_ name: String, account: String = account, region: String = "us-east-1") -> String {
    "arn:aws:ecr:\(region):\(account):repository/\(name)"
}

func parseIdentity(_ json: String) throws -> Policy {
    try Policy(parsing: json, options: .identity)
}

func parseResource(_ json: String) throws -> Policy {
    try Policy(parsing: json, options: .resource)
}

/// The reason a document is refused, or `nil` when it parses.
func refusal(_ json: String, _ options: PolicyParseOptions) -> PolicyError.Reason? {
    do {
        _ = try Policy(parsing: json, options: options)
        return nil
    } catch {
        return error.reason
    }
}

/// An identity policy of one Allow statement on `ecr:*` / `*` carrying `condition` (a JSON object).
func conditionPolicy(_ condition: String, version: String = "2012-10-17") throws -> Policy {
    try parseIdentity(#"{"Version":"\#(version)","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","Condition":\#(condition)}}"#)
}

/// Whether `condition` holds for a user in `account` with the given context.
func conditionHolds(
    _ condition: String, context: [String: ContextValue] = [:], principal: RequestPrincipal = .user(account: account, name: "alice"),
    currentTime: Date? = nil, sourceIP: String? = nil, version: String = "2012-10-17"
) throws -> Bool {
    let request = AccessRequest(
        principal: principal, action: "ecr:ListImages", resource: repositoryARN("app"), resourceAccount: account,
        currentTime: currentTime, sourceIP: sourceIP, context: context)
    return PolicyEngine.evaluate(request, identityPolicies: [try conditionPolicy(condition, version: version)], resourcePolicies: []).isAllowed
}

/// Whether a single-statement identity policy with `Action` / `Resource` elements (JSON fragments) allows the request.
func identityAllows(
    statement: String, action: String = "ecr:BatchGetImage", resource: String = repositoryARN("app"),
    principal: RequestPrincipal = .user(account: account, name: "alice")
) throws -> Bool {
    let policy = try parseIdentity(#"{"Version":"2012-10-17","Statement":{"Effect":"Allow",\#(statement)}}"#)
    let request = AccessRequest(principal: principal, action: action, resource: resource)
    return PolicyEngine.evaluate(request, identityPolicies: [policy], resourcePolicies: []).isAllowed
}

extension Date {
    init(iso: String) {
        let f = ISO8601DateFormatter()
        self = f.date(from: iso)!
    }
}
