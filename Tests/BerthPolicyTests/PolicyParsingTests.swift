import BerthPolicy
import Testing

struct PolicyParsingTests {
    struct Refusal: Sendable, CustomTestStringConvertible {
        let name: String
        let json: String
        let options: PolicyParseOptions
        let reason: PolicyError.Reason
        var testDescription: String { name }

        init(_ name: String, _ json: String, _ reason: PolicyError.Reason) {
            self.init(name, json, .identity, reason)
        }

        init(_ name: String, _ json: String, _ options: PolicyParseOptions, _ reason: PolicyError.Reason) {
            self.name = name
            self.json = json
            self.options = options
            self.reason = reason
        }
    }

    static let ok = #""Effect":"Allow","Action":"ecr:*","Resource":"*""#

    static let refusals: [Refusal] = [
        Refusal("not JSON", "Version: 2012", .invalidJSON),
        Refusal("top level is an array", #"[{"Effect":"Allow"}]"#, .notAnObject),
        Refusal("unknown top-level key", #"{"Version":"2012-10-17","Statment":[]}"#, .unknownField("Statment")),
        Refusal("top-level keys are case-sensitive", #"{"version":"2012-10-17","Statement":{\#(ok)}}"#, .unknownField("version")),
        Refusal("unknown version", #"{"Version":"2012-10-18","Statement":{\#(ok)}}"#, .invalidVersion),
        Refusal("version not a string", #"{"Version":2012,"Statement":{\#(ok)}}"#, .invalidVersion),
        Refusal("Id not a string", #"{"Id":1,"Statement":{\#(ok)}}"#, .invalidId),
        Refusal("no Statement", #"{"Version":"2012-10-17"}"#, .missingStatement),
        Refusal("empty Statement array", #"{"Version":"2012-10-17","Statement":[]}"#, .invalidStatement),
        Refusal("Statement is a string", #"{"Version":"2012-10-17","Statement":"x"}"#, .invalidStatement),
        Refusal("statement entry not an object", #"{"Statement":[{\#(ok)},"x"]}"#, .invalidStatement),
        Refusal("unknown statement key", #"{"Statement":{\#(ok),"Conditions":{}}}"#, .unknownStatementField("Conditions")),
        Refusal("missing Effect", #"{"Statement":{"Action":"ecr:*","Resource":"*"}}"#, .missingEffect),
        Refusal("Effect Permit", #"{"Statement":{"Effect":"Permit","Action":"ecr:*","Resource":"*"}}"#, .invalidEffect("Permit")),
        Refusal("Effect lower case", #"{"Statement":{"Effect":"allow","Action":"ecr:*","Resource":"*"}}"#, .effectCase("allow")),
        Refusal("Effect not a string", #"{"Statement":{"Effect":true,"Action":"ecr:*","Resource":"*"}}"#, .invalidEffect("")),
        Refusal("Action and NotAction", #"{"Statement":{\#(ok),"NotAction":"s3:*"}}"#, .bothActionAndNotAction),
        Refusal("Resource and NotResource", #"{"Statement":{\#(ok),"NotResource":"*"}}"#, .bothResourceAndNotResource),
        Refusal("no Action", #"{"Statement":{"Effect":"Allow","Resource":"*"}}"#, .missingAction),
        Refusal("empty Action list", #"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#, .missingAction),
        Refusal("Action list of numbers", #"{"Statement":{"Effect":"Allow","Action":[1],"Resource":"*"}}"#, .invalidActionValue),
        Refusal("Action without vendor", #"{"Statement":{"Effect":"Allow","Action":"BatchGetImage","Resource":"*"}}"#, .actionWithoutVendor("BatchGetImage")),
        Refusal("Action with two colons", #"{"Statement":{"Effect":"Allow","Action":"ecr:a:b","Resource":"*"}}"#, .actionWithTooManyColons("ecr:a:b")),
        Refusal("Action with a bad vendor", #"{"Statement":{"Effect":"Allow","Action":"e cr:Get","Resource":"*"}}"#, .invalidVendor("e cr")),
        Refusal("Action with a wildcard vendor", #"{"Statement":{"Effect":"Allow","Action":"ec*:Get","Resource":"*"}}"#, .invalidVendor("ec*")),
        Refusal("no Resource in identity policy", #"{"Statement":{"Effect":"Allow","Action":"ecr:*"}}"#, .missingResource),
        Refusal("empty Resource list", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":[]}}"#, .missingResource),
        Refusal("Resource not an ARN", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"my-repo"}}"#, .resourceNotARN("my-repo")),
        Refusal("Resource arn: too short", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws"}}"#, .resourceNotARN("arn:aws")),
        Refusal("Resource object", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":{"a":1}}}"#, .invalidResourceValue),
        Refusal("Principal in identity policy", #"{"Statement":{\#(ok),"Principal":"*"}}"#, .principalInIdentityPolicy),
        Refusal("NotPrincipal in identity policy", #"{"Statement":{\#(ok),"NotPrincipal":{"AWS":"111122223333"}}}"#, .principalInIdentityPolicy),
        Refusal("no Principal in resource policy", #"{"Statement":{"Effect":"Allow","Action":"ecr:*"}}"#, .resource, .missingPrincipal),
        Refusal("Principal and NotPrincipal", #"{"Statement":{"Effect":"Deny","Action":"ecr:*","Principal":"*","NotPrincipal":"*"}}"#, .resource, .bothPrincipalAndNotPrincipal),
        Refusal("NotPrincipal with Allow", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","NotPrincipal":{"AWS":"111122223333"}}}"#, .resource, .notPrincipalWithAllow),
        Refusal("Principal string other than *", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":"111122223333"}}"#, .resource, .invalidPrincipal("111122223333")),
        Refusal("Principal partial wildcard", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"}}}"#, .resource, .invalidPrincipal(#""AWS":"arn:aws:iam::111122223333:user/*""#)),
        Refusal("Principal short account", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{"AWS":"12345"}}}"#, .resource, .invalidPrincipal(#""AWS":"12345""#)),
        Refusal("Principal group ARN", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{"AWS":"arn:aws:iam::111122223333:group/devs"}}}"#, .resource, .invalidPrincipal(#""AWS":"arn:aws:iam::111122223333:group/devs""#)),
        Refusal("Principal CanonicalUser", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{"CanonicalUser":"79a59df9"}}}"#, .resource, .invalidPrincipal(#""CanonicalUser":"79a59df9""#)),
        Refusal("Principal empty object", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{}}}"#, .resource, .invalidPrincipal("{}")),
        Refusal("Principal empty AWS list", #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Principal":{"AWS":[]}}}"#, .resource, .invalidPrincipal(#""AWS":[]"#)),
        Refusal("Condition not an object", #"{"Statement":{\#(ok),"Condition":[]}}"#, .invalidCondition),
        Refusal("unknown condition operator", #"{"Statement":{\#(ok),"Condition":{"StringEqual":{"aws:username":"a"}}}}"#, .unknownConditionOperator("StringEqual")),
        Refusal("NullIfExists", #"{"Statement":{\#(ok),"Condition":{"NullIfExists":{"aws:username":"true"}}}}"#, .unknownConditionOperator("NullIfExists")),
        Refusal("ForAnyValue:Null", #"{"Statement":{\#(ok),"Condition":{"ForAnyValue:Null":{"aws:TagKeys":"true"}}}}"#, .unknownConditionOperator("ForAnyValue:Null")),
        Refusal("operator names are case-sensitive", #"{"Statement":{\#(ok),"Condition":{"stringequals":{"aws:username":"a"}}}}"#, .unknownConditionOperator("stringequals")),
        Refusal("condition body not an object", #"{"Statement":{\#(ok),"Condition":{"StringEquals":"a"}}}"#, .invalidCondition),
        Refusal("condition value object", #"{"Statement":{\#(ok),"Condition":{"StringEquals":{"aws:username":{"a":1}}}}}"#, .invalidCondition),
        Refusal("condition value empty list", #"{"Statement":{\#(ok),"Condition":{"StringEquals":{"aws:username":[]}}}}"#, .invalidCondition),
        Refusal("bad date", #"{"Statement":{\#(ok),"Condition":{"DateGreaterThan":{"aws:CurrentTime":"2020-13-01T00:00:00Z"}}}}"#, .invalidConditionValue(operator: "DateGreaterThan", value: "2020-13-01T00:00:00Z")),
        Refusal("bad number", #"{"Statement":{\#(ok),"Condition":{"NumericLessThan":{"s3:max-keys":"ten"}}}}"#, .invalidConditionValue(operator: "NumericLessThan", value: "ten")),
        Refusal("bad CIDR", #"{"Statement":{\#(ok),"Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/33"}}}}"#, .invalidConditionValue(operator: "IpAddress", value: "203.0.113.0/33")),
        Refusal("bad Bool", #"{"Statement":{\#(ok),"Condition":{"Bool":{"aws:SecureTransport":"yes"}}}}"#, .invalidConditionValue(operator: "Bool", value: "yes")),
        Refusal("bad Null", #"{"Statement":{\#(ok),"Condition":{"Null":{"aws:TokenIssueTime":"maybe"}}}}"#, .invalidConditionValue(operator: "Null", value: "maybe")),
        Refusal("bad base64", #"{"Statement":{\#(ok),"Condition":{"BinaryEquals":{"k":"@@@"}}}}"#, .invalidConditionValue(operator: "BinaryEquals", value: "@@@")),
        Refusal("duplicate Effect key", #"{"Statement":{"Effect":"Allow","Effect":"Deny","Action":"ecr:*","Resource":"*"}}"#, .duplicateKey("Effect")),
        Refusal("duplicate Sid (IAM)", #"{"Version":"2012-10-17","Statement":[{"Sid":"A",\#(ok)},{"Sid":"A",\#(ok)}]}"#, .iamManagedPolicy, .duplicateSid("A")),
        Refusal("Sid with spaces (IAM)", #"{"Version":"2012-10-17","Statement":{"Sid":"allow pull",\#(ok)}}"#, .iamManagedPolicy, .nonAlphanumericSid("allow pull")),
        Refusal("Sid not a string", #"{"Statement":{"Sid":1,\#(ok)}}"#, .invalidSid),
        Refusal("managed policy without Version", #"{"Statement":{\#(ok)}}"#, .iamManagedPolicy, .versionTooOld),
        Refusal("managed policy 2008-10-17", #"{"Version":"2008-10-17","Statement":{\#(ok)}}"#, .iamManagedPolicy, .versionTooOld),
        Refusal("character outside U+00FF (IAM)", #"{"Version":"2012-10-17","Statement":{"Sid":"ü","Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:::repository/日本"}}"#, .iamManagedPolicy, .unsupportedCharacter),
        Refusal("escaped character outside U+00FF (IAM)", #"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:::repository/\u65e5"}}"#, .iamManagedPolicy, .unsupportedCharacter),
        Refusal("too deeply nested", #"{"Statement":{\#(ok),"Condition":{"StringEquals":{"k":[[[[[[[[[[[[[["a"]]]]]]]]]]]]]]}}}}"#, .tooDeeplyNested(limit: 16)),
    ]

    @Test(arguments: refusals)
    func refusesMalformedDocuments(_ r: Refusal) {
        #expect(refusal(r.json, r.options) == r.reason)
    }

    @Test func errorsCarryIAMMessagesAndCodes() throws {
        let e1 = try #require(throws: PolicyError.self) { try parseIdentity(#"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"x"}}"#) }
        #expect(e1.code == .malformedPolicyDocument)
        #expect(e1.message == #"Resource x must be in ARN format or "*"."#)
        let e2 = try #require(throws: PolicyError.self) { try parseIdentity(#"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*","Principal":"*"}}"#) }
        #expect(e2.message == "Policy document should not specify a principal.")
        let e3 = try #require(throws: PolicyError.self) { try parseIdentity(#"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resourc":"*"}}"#) }
        #expect(e3.message == "Syntax errors in policy.")
        #expect(e3.description == "MalformedPolicyDocument: Syntax errors in policy.")
    }

    struct Accepted: Sendable, CustomTestStringConvertible {
        let name: String
        let json: String
        let options: PolicyParseOptions
        var testDescription: String { name }
        init(_ name: String, _ json: String, _ options: PolicyParseOptions = .identity) {
            self.name = name
            self.json = json
            self.options = options
        }
    }

    static let accepted: [Accepted] = [
        Accepted("single statement object", #"{"Version":"2012-10-17","Statement":{\#(ok)}}"#),
        Accepted("version 2008-10-17", #"{"Version":"2008-10-17","Statement":[{\#(ok)}]}"#),
        Accepted("no Version outside managed policies", #"{"Statement":[{\#(ok)}]}"#),
        Accepted("Id element", #"{"Version":"2012-10-17","Id":"ECRPolicyId1","Statement":[{\#(ok)}]}"#),
        Accepted("NotAction and NotResource", #"{"Statement":{"Effect":"Deny","NotAction":["iam:*"],"NotResource":"arn:aws:ecr:*:*:repository/prod-*"}}"#),
        Accepted("resource policy without Resource", #"{"Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}"#, .resource),
        Accepted("Principal forms", #"{"Statement":{"Effect":"Allow","Principal":{"AWS":["*","111122223333","arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/a/b","arn:aws:iam::111122223333:role/r","arn:aws:sts::111122223333:assumed-role/r/s","arn:aws:sts::111122223333:federated-user/f"],"Service":"codebuild.amazonaws.com","Federated":"cognito-identity.amazonaws.com"},"Action":"ecr:*"}}"#, .resource),
        Accepted("NotPrincipal with Deny", #"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/Bob","arn:aws:iam::444455556666:root"]},"Action":"ecr:*"}}"#, .resource),
        Accepted("Sid with spaces (resource)", #"{"Statement":{"Sid":"allow public pull","Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}"#, .ecrRepositoryPolicy),
        Accepted("duplicate Sid (resource)", #"{"Statement":[{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"A","Effect":"Allow","Principal":"*","Action":"ecr:*"}]}"#, .ecrRegistryPolicy),
        Accepted("condition scalars of every JSON type", #"{"Statement":{\#(ok),"Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThanEquals":{"aws:MultiFactorAuthAge":3600},"StringEquals":{"k":["a",1,false]}}}}"#),
        Accepted("every operator with IfExists and qualifiers", #"{"Statement":{\#(ok),"Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":"a*"},"ForAnyValue:ArnNotLike":{"k":"arn:aws:s3:::*"},"DateLessThanIfExists":{"aws:CurrentTime":"2030"},"NotIpAddressIfExists":{"aws:SourceIp":"2001:DB8::/32"},"Null":{"aws:TokenIssueTime":"TRUE"},"BinaryEquals":{"b":"QmluYXJ5"}}}}"#),
        Accepted("resource with fewer than six fields", #"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:*"}}"#),
        Accepted("2,048 non-whitespace characters with whitespace padding (inline user)", paddedPolicy(nonWhitespace: 2_048, padding: 3_000), .iamInlineUserPolicy),
    ]

    @Test(arguments: accepted)
    func acceptsValidDocuments(_ a: Accepted) {
        #expect(refusal(a.json, a.options) == nil)
    }

    /// An identity policy with exactly `nonWhitespace` non-whitespace characters and `padding` spaces.
    static func paddedPolicy(nonWhitespace: Int, padding: Int) -> String {
        let head = #"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"arn:aws:ecr:::repository/"#
        let tail = #""}}"#
        let name = String(repeating: "a", count: nonWhitespace - head.count - tail.count)
        return head + name + tail + String(repeating: " ", count: padding)
    }

    struct Quota: Sendable, CustomTestStringConvertible {
        let name: String
        let options: PolicyParseOptions
        let limit: Int
        var testDescription: String { name }
    }

    static let quotas: [Quota] = [
        Quota(name: "managed policy", options: .iamManagedPolicy, limit: 6_144),
        Quota(name: "inline user", options: .iamInlineUserPolicy, limit: 2_048),
        Quota(name: "inline role", options: .iamInlineRolePolicy, limit: 10_240),
        Quota(name: "inline group", options: .iamInlineGroupPolicy, limit: 5_120),
    ]

    @Test(arguments: quotas)
    func enforcesIAMSizeQuotasIgnoringWhitespace(_ q: Quota) {
        #expect(refusal(Self.paddedPolicy(nonWhitespace: q.limit, padding: 500), q.options) == nil)
        #expect(refusal(Self.paddedPolicy(nonWhitespace: q.limit + 1, padding: 0), q.options) == .policySizeExceeded(limit: q.limit, size: q.limit + 1))
    }

    @Test func ecrRepositoryPolicyCountsEveryCharacter() throws {
        let base = #"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}}"#
        let fits = base + String(repeating: " ", count: 10_240 - base.count)
        #expect(refusal(fits, .ecrRepositoryPolicy) == nil)
        #expect(refusal(fits + " ", .ecrRepositoryPolicy) == .policySizeExceeded(limit: 10_240, size: 10_241))
        let e = try #require(throws: PolicyError.self) { try Policy(parsing: fits + " ", options: .ecrRepositoryPolicy) }
        #expect(e.code == .limitExceeded)
        #expect(e.message == "Cannot exceed quota for PolicySize: 10240")
    }

    @Test func customSizeLimitParameter() {
        let json = #"{"Statement":{"Effect":"Allow","Action":"ecr:*","Resource":"*"}}"#
        var options = PolicyParseOptions.identity
        options.maximumSize = json.count - 1
        #expect(refusal(json, options) == .policySizeExceeded(limit: json.count - 1, size: json.count))
        options.maximumSize = json.count
        #expect(refusal(json, options) == nil)
    }

    @Test func refusesOversizedRawDocumentBeforeParsing() {
        let huge = "{" + String(repeating: " ", count: 200_000) + "}"
        #expect(refusal(huge, .identity) == .documentTooLong(limit: 131_072))
    }

    @Test func parsedModelKeepsEveryElement() throws {
        let policy = try parseResource(#"""
            {"Version":"2012-10-17","Id":"P","Statement":[
              {"Sid":"S1","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","111122223333"]},
               "NotAction":"ecr:Describe*","NotResource":["arn:aws:ecr:us-east-1:111122223333:repository/a"],
               "Condition":{"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["x*","y"]}}}]}
            """#)
        #expect(policy.version == .v2012_10_17)
        #expect(policy.id == "P")
        #expect(policy.kind == .resource)
        let s = try #require(policy.statements.first)
        #expect(s.sid == "S1")
        #expect(s.effect == .deny)
        #expect(s.principals == .notPrincipal(PrincipalSet(aws: [.account(account), .account(account)])))
        #expect(s.actions == .notActions(["ecr:Describe*"]))
        #expect(s.resources == .notResources([repositoryARN("a")]))
        #expect(s.conditions == [Condition(.stringLike, qualifier: .forAnyValue, ifExists: true, key: "aws:TagKeys", values: ["x*", "y"])])
        #expect(s.conditions[0].operatorName == "ForAnyValue:StringLikeIfExists")
    }

    @Test(arguments: ConditionOperator.allCases)
    func everyOperatorNameRoundTrips(_ op: ConditionOperator) {
        let plain = Condition.parseOperatorName(op.rawValue)
        #expect(plain?.0 == op && plain?.1 == nil && plain?.2 == false)
        if op != .null {
            let full = Condition.parseOperatorName("ForAllValues:\(op.rawValue)IfExists")
            #expect(full?.0 == op && full?.1 == .forAllValues && full?.2 == true)
        }
    }
}
