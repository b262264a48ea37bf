import BerthPolicy
import Testing

struct PolicyVariableTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let statement: String
        let principal: RequestPrincipal
        let resource: String
        let version: String
        let allowed: Bool
        var testDescription: String { name }

        init(_ name: String, _ statement: String, _ principal: RequestPrincipal, _ resource: String, version: String = "2012-10-17", _ allowed: Bool) {
            self.name = name
            self.statement = statement
            self.principal = principal
            self.resource = resource
            self.version = version
            self.allowed = allowed
        }
    }

    static let alice = RequestPrincipal.user(account: account, name: "alice", tags: ["team": "blue", "star": "*"])
    static let ownRepo = #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/${aws:username}/*""#

    static let cases: [Case] = [
        Case("aws:username in Resource", ownRepo, alice, repositoryARN("alice/app"), true),
        Case("aws:username in Resource, other user's repository", ownRepo, alice, repositoryARN("bob/app"), false),
        Case("2008-10-17 treats variables literally", ownRepo, alice, repositoryARN("alice/app"), version: "2008-10-17", false),
        Case("2008-10-17 literal text matches literally", ownRepo, alice, repositoryARN("${aws:username}/app"), version: "2008-10-17", true),
        Case("no aws:username for roles: statement invalid", ownRepo, .assumedRole(account: account, roleName: "r", sessionName: "alice"), repositoryARN("alice/app"), false),
        Case("default value when the key is absent", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/${aws:username, 'shared'}/*""#, .assumedRole(account: account, roleName: "r", sessionName: "s"), repositoryARN("shared/app"), true),
        Case("principal tag in Resource", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/${aws:PrincipalTag/team}-*""#, alice, repositoryARN("blue-api"), true),
        Case("substituted wildcard characters stay literal", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/${aws:PrincipalTag/star}""#, alice, repositoryARN("anything"), false),
        Case("${*} is a literal asterisk", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/a${*}b""#, alice, repositoryARN("a*b"), true),
        Case("${*} does not act as a wildcard", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:111122223333:repository/a${*}b""#, alice, repositoryARN("axxb"), false),
        Case("variables only after the fifth colon", #""Action":"ecr:*","Resource":"arn:aws:ecr:us-east-1:${aws:PrincipalAccount}:repository/x""#, alice, repositoryARN("x"), false),
        Case("variable value but the condition key is absent", #""Action":"ecr:*","Resource":"*","Condition":{"StringLike":{"ecr:prefix":"${aws:username}/*"}}"#, alice, repositoryARN("x"), false),
        Case("NotResource with an unresolvable variable: statement invalid", #""Action":"ecr:*","NotResource":"arn:aws:ecr:us-east-1:111122223333:repository/${aws:username}""#, .assumedRole(account: account, roleName: "r", sessionName: "s"), repositoryARN("x"), false),
    ]

    @Test(arguments: cases)
    func variablesResolveFromTheRequest(_ c: Case) throws {
        let policy = try parseIdentity(#"{"Version":"\#(c.version)","Statement":{"Effect":"Allow",\#(c.statement)}}"#)
        let request = AccessRequest(principal: c.principal, action: "ecr:PutImage", resource: c.resource)
        #expect(PolicyEngine.evaluate(request, identityPolicies: [policy], resourcePolicies: []).isAllowed == c.allowed)
    }

    struct ConditionCase: Sendable, CustomTestStringConvertible {
        let name: String
        let condition: String
        let context: [String: ContextValue]
        let holds: Bool
        var testDescription: String { name }
    }

    static let conditionCases: [ConditionCase] = [
        ConditionCase(name: "StringLike with variable", condition: #"{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}"#, context: ["s3:prefix": "home/alice/docs"], holds: true),
        ConditionCase(name: "StringLike with variable, other home", condition: #"{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}"#, context: ["s3:prefix": "home/bob/docs"], holds: false),
        ConditionCase(name: "StringEquals with variable", condition: #"{"StringEquals":{"ecr:ResourceTag/owner":"${aws:username}"}}"#, context: ["ecr:ResourceTag/owner": "alice"], holds: true),
        ConditionCase(name: "ArnLike with variable", condition: #"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::111122223333:user/${aws:username}"}}"#, context: ["aws:SourceArn": "arn:aws:iam::111122223333:user/alice"], holds: true),
        ConditionCase(name: "Numeric operators take no variables", condition: #"{"NumericEquals":{"n":"1"}}"#, context: ["n": "1"], holds: true),
        ConditionCase(name: "unresolvable variable in a condition invalidates the statement", condition: #"{"StringNotEquals":{"k":"${aws:TokenIssueTime}"}}"#, context: ["k": "x"], holds: false),
        ConditionCase(name: "multivalued keys cannot be variables", condition: #"{"StringEquals":{"k":"${aws:TagKeys}"}}"#, context: ["k": "a", "aws:TagKeys": ["a"]], holds: false),
        ConditionCase(name: "${$} is a literal dollar", condition: #"{"StringEquals":{"k":"${$}{x}"}}"#, context: ["k": "${x}"], holds: true),
        ConditionCase(name: "${?} is a literal question mark in StringLike", condition: #"{"StringLike":{"k":"a${?}"}}"#, context: ["k": "ab"], holds: false),
    ]

    @Test(arguments: conditionCases)
    func variablesInConditions(_ c: ConditionCase) throws {
        #expect(try conditionHolds(c.condition, context: c.context) == c.holds)
    }
}
