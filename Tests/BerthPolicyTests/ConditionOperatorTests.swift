import BerthPolicy
import Foundation
import Testing

struct ConditionOperatorTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let condition: String
        let context: [String: ContextValue]
        let holds: Bool
        var testDescription: String { name }

        init(_ name: String, _ condition: String, _ context: [String: ContextValue], _ holds: Bool) {
            self.name = name
            self.condition = condition
            self.context = context
            self.holds = holds
        }
    }

    static func run(_ c: Case) throws {
        #expect(try conditionHolds(c.condition, context: c.context) == c.holds)
    }

    // MARK: String

    static let strings: [Case] = [
        Case("StringEquals exact", #"{"StringEquals":{"k":"john"}}"#, ["k": "john"], true),
        Case("StringEquals is case-sensitive", #"{"StringEquals":{"k":"john"}}"#, ["k": "John"], false),
        Case("StringEquals values are ORed", #"{"StringEquals":{"k":["a","b"]}}"#, ["k": "b"], true),
        Case("StringEquals does not treat * as a wildcard", #"{"StringEquals":{"k":"a*"}}"#, ["k": "abc"], false),
        Case("StringEquals missing key is false", #"{"StringEquals":{"k":"a"}}"#, [:], false),
        Case("StringNotEquals different", #"{"StringNotEquals":{"k":"a"}}"#, ["k": "b"], true),
        Case("StringNotEquals equal", #"{"StringNotEquals":{"k":"a"}}"#, ["k": "a"], false),
        Case("StringNotEquals values are NORed (match one)", #"{"StringNotEquals":{"k":["audit","security"]}}"#, ["k": "audit"], false),
        Case("StringNotEquals values are NORed (match none)", #"{"StringNotEquals":{"k":["audit","security"]}}"#, ["k": "hr"], true),
        Case("StringNotEquals missing key is true", #"{"StringNotEquals":{"k":"a"}}"#, [:], true),
        Case("StringEqualsIgnoreCase", #"{"StringEqualsIgnoreCase":{"k":"john"}}"#, ["k": "JoHn"], true),
        Case("StringEqualsIgnoreCase different", #"{"StringEqualsIgnoreCase":{"k":"john"}}"#, ["k": "jon"], false),
        Case("StringNotEqualsIgnoreCase same but for case", #"{"StringNotEqualsIgnoreCase":{"k":"john"}}"#, ["k": "JOHN"], false),
        Case("StringNotEqualsIgnoreCase different", #"{"StringNotEqualsIgnoreCase":{"k":"john"}}"#, ["k": "mary"], true),
        Case("StringLike *", #"{"StringLike":{"k":"home/*"}}"#, ["k": "home/alice/x"], true),
        Case("StringLike ?", #"{"StringLike":{"k":"t?.micro"}}"#, ["k": "t2.micro"], true),
        Case("StringLike needs wildcards for partial matches", #"{"StringLike":{"k":"home"}}"#, ["k": "home/x"], false),
        Case("StringLike is case-sensitive", #"{"StringLike":{"k":"Home/*"}}"#, ["k": "home/x"], false),
        Case("StringLike empty value matches empty string", #"{"StringLike":{"k":["","home/"]}}"#, ["k": ""], true),
        Case("StringNotLike match", #"{"StringNotLike":{"k":"dev-*"}}"#, ["k": "dev-1"], false),
        Case("StringNotLike no match", #"{"StringNotLike":{"k":["dev-*","test-*"]}}"#, ["k": "prod-1"], true),
        Case("StringNotLike missing key is true", #"{"StringNotLike":{"k":"dev-*"}}"#, [:], true),
        Case("key names are case-insensitive", #"{"StringEquals":{"AWS:SourceIP":"x"}}"#, ["aws:SourceIp": "x"], true),
        Case("numbers in policy compare as text", #"{"StringEquals":{"k":2}}"#, ["k": "2"], true),
    ]

    @Test(arguments: strings) func stringOperators(_ c: Case) throws { try Self.run(c) }

    // MARK: Numeric

    static let numerics: [Case] = [
        Case("NumericEquals", #"{"NumericEquals":{"n":"10"}}"#, ["n": "10"], true),
        Case("NumericEquals decimal forms", #"{"NumericEquals":{"n":"10.0"}}"#, ["n": "10"], true),
        Case("NumericEquals different", #"{"NumericEquals":{"n":"10"}}"#, ["n": "11"], false),
        Case("NumericNotEquals", #"{"NumericNotEquals":{"n":["1","2"]}}"#, ["n": "3"], true),
        Case("NumericNotEquals equal to one", #"{"NumericNotEquals":{"n":["1","2"]}}"#, ["n": "2"], false),
        Case("NumericLessThan", #"{"NumericLessThan":{"n":"10"}}"#, ["n": "9.5"], true),
        Case("NumericLessThan equal", #"{"NumericLessThan":{"n":"10"}}"#, ["n": "10"], false),
        Case("NumericLessThanEquals equal", #"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#, ["s3:max-keys": "10"], true),
        Case("NumericLessThanEquals above", #"{"NumericLessThanEquals":{"s3:max-keys":"10"}}"#, ["s3:max-keys": "11"], false),
        Case("NumericGreaterThan negative", #"{"NumericGreaterThan":{"n":"-1"}}"#, ["n": "0"], true),
        Case("NumericGreaterThanEquals", #"{"NumericGreaterThanEquals":{"n":3600}}"#, ["n": "3600"], true),
        Case("NumericGreaterThanEquals below", #"{"NumericGreaterThanEquals":{"n":3600}}"#, ["n": "3599"], false),
        Case("Numeric missing key is false", #"{"NumericLessThan":{"n":"10"}}"#, [:], false),
        Case("NumericNotEquals missing key is true", #"{"NumericNotEquals":{"n":"10"}}"#, [:], true),
        Case("Numeric non-numeric context value never matches", #"{"NumericEquals":{"n":"1"}}"#, ["n": "one"], false),
    ]

    @Test(arguments: numerics) func numericOperators(_ c: Case) throws { try Self.run(c) }

    // MARK: Date

    static let dates: [Case] = [
        Case("DateGreaterThan", #"{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:01Z"}}"#, ["aws:TokenIssueTime": "2020-06-01T00:00:00Z"], true),
        Case("DateGreaterThan earlier", #"{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:01Z"}}"#, ["aws:TokenIssueTime": "2019-06-01T00:00:00Z"], false),
        Case("DateGreaterThan missing key", #"{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:01Z"}}"#, [:], false),
        Case("DateEquals across time zones", #"{"DateEquals":{"d":"2020-01-01T01:00:00+01:00"}}"#, ["d": "2020-01-01T00:00:00Z"], true),
        Case("DateEquals epoch against ISO", #"{"DateEquals":{"d":"1577836800"}}"#, ["d": "2020-01-01T00:00:00Z"], true),
        Case("DateNotEquals", #"{"DateNotEquals":{"d":"2020-01-01"}}"#, ["d": "2020-01-02"], true),
        Case("DateNotEquals same instant", #"{"DateNotEquals":{"d":"2020-01-01"}}"#, ["d": "2020-01-01T00:00:00Z"], false),
        Case("DateLessThan", #"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#, ["aws:CurrentTime": "2029-12-31T23:59:59Z"], true),
        Case("DateLessThanEquals at the instant", #"{"DateLessThanEquals":{"d":"2030-01-01T00:00:00Z"}}"#, ["d": "2030-01-01T00:00:00Z"], true),
        Case("DateGreaterThanEquals with epoch context", #"{"DateGreaterThanEquals":{"aws:EpochTime":"2020-01-01T00:00:00Z"}}"#, ["aws:EpochTime": "1577836800"], true),
        Case("DateLessThan with epoch policy value", #"{"DateLessThan":{"aws:EpochTime":"1577836800"}}"#, ["aws:EpochTime": "1577836799"], true),
    ]

    @Test(arguments: dates) func dateOperators(_ c: Case) throws { try Self.run(c) }

    @Test func currentTimeAndEpochTimeComeFromTheRequestClock() throws {
        let now = Date(iso: "2025-03-01T10:00:00Z")
        let window = #"{"DateGreaterThan":{"aws:CurrentTime":"2025-01-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2025-06-30T23:59:59Z"}}"#
        #expect(try conditionHolds(window, currentTime: now))
        #expect(try !conditionHolds(window, currentTime: Date(iso: "2025-07-01T00:00:00Z")))
        #expect(try !conditionHolds(window, currentTime: nil))
        #expect(try conditionHolds(#"{"NumericGreaterThan":{"aws:EpochTime":"1740000000"}}"#, currentTime: now))
    }

    // MARK: Bool, Binary, Null

    static let others: [Case] = [
        Case("Bool true", #"{"Bool":{"aws:SecureTransport":"true"}}"#, ["aws:SecureTransport": "true"], true),
        Case("Bool false vs true", #"{"Bool":{"aws:SecureTransport":"false"}}"#, ["aws:SecureTransport": "true"], false),
        Case("Bool JSON literal", #"{"Bool":{"aws:SecureTransport":false}}"#, ["aws:SecureTransport": "false"], true),
        Case("Bool case-insensitive", #"{"Bool":{"aws:MultiFactorAuthPresent":"TRUE"}}"#, ["aws:MultiFactorAuthPresent": "true"], true),
        Case("Bool missing key is false", #"{"Bool":{"aws:MultiFactorAuthPresent":"false"}}"#, [:], false),
        Case("BoolIfExists missing key is true", #"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"false"}}"#, [:], true),
        Case("BinaryEquals byte for byte", #"{"BinaryEquals":{"b":"QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}"#, ["b": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="], true),
        Case("BinaryEquals differs", #"{"BinaryEquals":{"b":"QmluYXJ5"}}"#, ["b": "QmluYXJ6"], false),
        Case("Null true, key absent", #"{"Null":{"aws:TokenIssueTime":"true"}}"#, [:], true),
        Case("Null true, key present", #"{"Null":{"aws:TokenIssueTime":"true"}}"#, ["aws:TokenIssueTime": "2020-01-01T00:00:00Z"], false),
        Case("Null false, key present", #"{"Null":{"aws:TokenIssueTime":"false"}}"#, ["aws:TokenIssueTime": "2020-01-01T00:00:00Z"], true),
        Case("Null false, key absent", #"{"Null":{"aws:TokenIssueTime":"false"}}"#, [:], false),
        Case("Null false, empty set is null", #"{"Null":{"aws:TagKeys":"false"}}"#, ["aws:TagKeys": .multiple([])], false),
    ]

    @Test(arguments: others) func boolBinaryNullOperators(_ c: Case) throws { try Self.run(c) }

    // MARK: IfExists

    static let ifExists: [Case] = [
        Case("StringLikeIfExists absent", #"{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}"#, [:], true),
        Case("StringLikeIfExists present, matching", #"{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}"#, ["ec2:InstanceType": "t2.micro"], true),
        Case("StringLikeIfExists present, not matching", #"{"StringLikeIfExists":{"ec2:InstanceType":["t1.*","t2.*","m3.*"]}}"#, ["ec2:InstanceType": "c5.large"], false),
        Case("StringNotEqualsIfExists absent", #"{"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-111bbb22"}}"#, [:], true),
        Case("StringNotEqualsIfExists present, equal", #"{"StringNotEqualsIfExists":{"aws:SourceVpc":"vpc-111bbb22"}}"#, ["aws:SourceVpc": "vpc-111bbb22"], false),
        Case("NumericLessThanIfExists absent", #"{"NumericLessThanIfExists":{"n":"1"}}"#, [:], true),
        Case("DateLessThanIfExists present, later", #"{"DateLessThanIfExists":{"d":"2020-01-01"}}"#, ["d": "2021-01-01"], false),
        Case("IpAddressIfExists absent", #"{"IpAddressIfExists":{"aws:SourceIp":"203.0.113.0/24"}}"#, [:], true),
        Case("ArnLikeIfExists absent", #"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:sns:*:*:t"}}"#, [:], true),
        Case("ForAnyValue:StringEqualsIfExists absent", #"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"a"}}"#, [:], true),
        Case("IfExists on one key does not excuse another", #"{"StringEqualsIfExists":{"a":"1"},"StringEquals":{"b":"2"}}"#, [:], false),
    ]

    @Test(arguments: ifExists) func ifExistsOperators(_ c: Case) throws { try Self.run(c) }

    // MARK: Multiple keys and values (IAM guide tables)

    static let guideAND: String = #"{"StringEquals":{"aws:PrincipalTag/department":["finance","hr","legal"],"aws:PrincipalTag/role":["audit","security"]},"ArnLike":{"aws:PrincipalArn":["arn:aws:iam::222222222222:user/Ana","arn:aws:iam::222222222222:user/Mary"]}}"#
    static let guideNOR: String = #"{"StringEquals":{"aws:PrincipalTag/department":["finance","hr","legal"],"aws:PrincipalTag/role":["audit","security"]},"ArnNotLike":{"aws:PrincipalArn":["arn:aws:iam::222222222222:user/Ana","arn:aws:iam::222222222222:user/Mary"]}}"#

    static func tagged(_ user: String, _ tags: [String: String]) -> RequestPrincipal {
        .user(account: "222222222222", name: user, tags: tags)
    }

    struct PrincipalCase: Sendable, CustomTestStringConvertible {
        let name: String
        let condition: String
        let principal: RequestPrincipal
        let holds: Bool
        var testDescription: String { name }
    }

    static let guideTables: [PrincipalCase] = [
        PrincipalCase(name: "AND: legal/audit/Mary", condition: guideAND, principal: tagged("Mary", ["department": "legal", "role": "audit"]), holds: true),
        PrincipalCase(name: "AND: hr/audit/Nikki", condition: guideAND, principal: tagged("Nikki", ["department": "hr", "role": "audit"]), holds: false),
        PrincipalCase(name: "AND: hr/payroll/Mary", condition: guideAND, principal: tagged("Mary", ["department": "hr", "role": "payroll"]), holds: false),
        PrincipalCase(name: "AND: no role tag", condition: guideAND, principal: tagged("Mary", ["department": "hr"]), holds: false),
        PrincipalCase(name: "AND: no tags", condition: guideAND, principal: tagged("Mary", [:]), holds: false),
        PrincipalCase(name: "NOR: legal/audit/Nikki", condition: guideNOR, principal: tagged("Nikki", ["department": "legal", "role": "audit"]), holds: true),
        PrincipalCase(name: "NOR: hr/audit/Mary", condition: guideNOR, principal: tagged("Mary", ["department": "hr", "role": "audit"]), holds: false),
        PrincipalCase(name: "NOR: hr/payroll/Nikki", condition: guideNOR, principal: tagged("Nikki", ["department": "hr", "role": "payroll"]), holds: false),
        PrincipalCase(name: "NOR: no role tag", condition: guideNOR, principal: tagged("Nikki", ["department": "hr"]), holds: false),
        PrincipalCase(name: "NOR: no tags", condition: guideNOR, principal: tagged("Nikki", [:]), holds: false),
        PrincipalCase(name: "tag keys are case-insensitive", condition: #"{"StringEquals":{"aws:PrincipalTag/Department":"hr"}}"#, principal: tagged("x", ["department": "hr"]), holds: true),
        PrincipalCase(name: "tag values are case-sensitive", condition: #"{"StringEquals":{"aws:PrincipalTag/department":"hr"}}"#, principal: tagged("x", ["department": "HR"]), holds: false),
    ]

    @Test(arguments: guideTables)
    func multipleKeysAreANDedAndValuesORed(_ c: PrincipalCase) throws {
        let request = AccessRequest(principal: c.principal, action: "s3:ListBucket", resource: "arn:aws:s3:::amzn-s3-demo-bucket", resourceAccount: "222222222222")
        let decision = PolicyEngine.evaluate(request, identityPolicies: [try Self.conditionPolicyForAnyAction(c.condition)], resourcePolicies: [])
        #expect(decision.isAllowed == c.holds)
    }

    static func conditionPolicyForAnyAction(_ condition: String) throws -> Policy {
        try parseIdentity(#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":\#(condition)}}"#)
    }

    // MARK: Set operators (IAM guide tables)

    static let forAllNotLike = #"{"ForAllValues:StringNotLike":{"aws:TagKeys":"key1*"}}"#
    static let forAllNotLike2 = #"{"ForAllValues:StringNotLike":{"aws:TagKeys":["key1*","key2*"]}}"#
    static let forAllEqualsWithNull = #"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment","cost-center"]},"Null":{"aws:TagKeys":"false"}}"#
    static let forAnyEquals = #"{"ForAnyValue:StringEquals":{"aws:TagKeys":["environment","cost-center"]}}"#
    static let forAnyWebserver = #"{"ForAnyValue:StringEquals":{"aws:TagKeys":"webserver"}}"#

    static let sets: [Case] = [
        Case("ForAllValues:StringNotLike key1:legal", forAllNotLike, ["aws:TagKeys": ["key1:legal"]], false),
        Case("ForAllValues:StringNotLike key1:hr key1:personnel", forAllNotLike, ["aws:TagKeys": ["key1:hr", "key1:personnel"]], false),
        Case("ForAllValues:StringNotLike key2:audit", forAllNotLike, ["aws:TagKeys": ["key2:audit"]], true),
        Case("ForAllValues:StringNotLike absent", forAllNotLike, [:], true),
        Case("ForAllValues:StringNotLike two patterns, key1:legal", forAllNotLike2, ["aws:TagKeys": ["key1:legal"]], false),
        Case("ForAllValues:StringNotLike two patterns, key1:hr key2:audit", forAllNotLike2, ["aws:TagKeys": ["key1:hr", "key2:audit"]], false),
        Case("ForAllValues:StringNotLike two patterns, key3:legal", forAllNotLike2, ["aws:TagKeys": ["key3:legal"]], true),
        Case("ForAllValues:StringNotLike two patterns, absent", forAllNotLike2, [:], true),
        Case("ForAllValues+Null environment", forAllEqualsWithNull, ["aws:TagKeys": ["environment"]], true),
        Case("ForAllValues+Null cost-center", forAllEqualsWithNull, ["aws:TagKeys": ["cost-center"]], true),
        Case("ForAllValues+Null both", forAllEqualsWithNull, ["aws:TagKeys": ["environment", "cost-center"]], true),
        Case("ForAllValues+Null environment dept", forAllEqualsWithNull, ["aws:TagKeys": ["environment", "dept"]], false),
        Case("ForAllValues+Null absent", forAllEqualsWithNull, [:], false),
        Case("ForAllValues without Null, absent", #"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#, [:], true),
        Case("ForAllValues empty set", #"{"ForAllValues:StringEquals":{"aws:TagKeys":["environment"]}}"#, ["aws:TagKeys": .multiple([])], true),
        Case("ForAnyValue environment", forAnyEquals, ["aws:TagKeys": ["environment"]], true),
        Case("ForAnyValue cost-center", forAnyEquals, ["aws:TagKeys": ["cost-center"]], true),
        Case("ForAnyValue both", forAnyEquals, ["aws:TagKeys": ["environment", "cost-center"]], true),
        Case("ForAnyValue environment dept", forAnyEquals, ["aws:TagKeys": ["environment", "dept"]], true),
        Case("ForAnyValue dept", forAnyEquals, ["aws:TagKeys": ["dept"]], false),
        Case("ForAnyValue absent", forAnyEquals, [:], false),
        Case("ForAnyValue empty set", forAnyEquals, ["aws:TagKeys": .multiple([])], false),
        Case("ForAnyValue webserver", forAnyWebserver, ["aws:TagKeys": ["webserver"]], true),
        Case("ForAnyValue environment webserver test", forAnyWebserver, ["aws:TagKeys": ["environment", "webserver", "test"]], true),
        Case("ForAnyValue environment test", forAnyWebserver, ["aws:TagKeys": ["environment", "test"]], false),
        Case("ForAllValues:StringLike DynamoDB attributes allowed", #"{"ForAllValues:StringLike":{"dynamodb:requestedAttributes":["PostDateTime","Message","Tags"]}}"#, ["dynamodb:requestedAttributes": ["PostDateTime", "Message"]], true),
        Case("ForAllValues:StringLike DynamoDB attributes with UserName", #"{"ForAllValues:StringLike":{"dynamodb:requestedAttributes":["PostDateTime","Message","Tags"]}}"#, ["dynamodb:requestedAttributes": ["PostDateTime", "UserName"]], false),
        Case("ForAnyValue:StringLike DynamoDB attributes", #"{"ForAnyValue:StringLike":{"dynamodb:requestedAttributes":["ID","PostDateTime"]}}"#, ["dynamodb:requestedAttributes": ["UserName", "Message", "PostDateTime"]], true),
        Case("ForAnyValue:StringNotEquals one differs", #"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#, ["aws:TagKeys": ["a", "c"]], true),
        Case("ForAnyValue:StringNotEquals all listed", #"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#, ["aws:TagKeys": ["a", "b"]], false),
        Case("ForAllValues:StringNotEquals none listed", #"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["a","b"]}}"#, ["aws:TagKeys": ["c", "d"]], true),
        Case("set operator on a single-valued key", #"{"ForAnyValue:StringEquals":{"aws:username":["alice","bob"]}}"#, ["aws:username": "bob"], true),
        Case("no set operator, multivalued key, positive", #"{"StringEquals":{"aws:TagKeys":"a"}}"#, ["aws:TagKeys": ["b", "a"]], true),
        Case("no set operator, multivalued key, negated", #"{"StringNotEquals":{"aws:TagKeys":"a"}}"#, ["aws:TagKeys": ["b", "a"]], false),
    ]

    @Test(arguments: sets) func setOperators(_ c: Case) throws { try Self.run(c) }

    @Test func tagKeysComeFromRequestTags() throws {
        let condition = #"{"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]},"StringEquals":{"aws:RequestTag/env":"prod"}}"#
        let policy = try conditionPolicy(condition)
        func allowed(_ tags: [String: String]?) -> Bool {
            let request = AccessRequest(principal: .user(account: account, name: "a"), action: "ecr:TagResource", resource: repositoryARN("app"), requestTags: tags)
            return PolicyEngine.evaluate(request, identityPolicies: [policy], resourcePolicies: []).isAllowed
        }
        #expect(allowed(["team": "x", "env": "prod"]))
        #expect(!allowed(["team": "x", "env": "dev"]))
        #expect(!allowed(["owner": "x", "env": "prod"]))
        #expect(!allowed(nil))
    }

    @Test func resourceTagsFeedResourceTagKeys() throws {
        let policy = try conditionPolicy(#"{"StringEquals":{"aws:ResourceTag/Team":"${aws:PrincipalTag/team}"}}"#)
        func allowed(principalTeam: String, repoTeam: String) -> Bool {
            let request = AccessRequest(
                principal: .user(account: account, name: "a", tags: ["team": principalTeam]), action: "ecr:PutImage",
                resource: repositoryARN("app"), resourceTags: ["team": repoTeam])
            return PolicyEngine.evaluate(request, identityPolicies: [policy], resourcePolicies: []).isAllowed
        }
        #expect(allowed(principalTeam: "blue", repoTeam: "blue"))
        #expect(!allowed(principalTeam: "blue", repoTeam: "red"))
    }
}
