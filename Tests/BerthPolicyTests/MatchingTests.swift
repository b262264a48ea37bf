@testable import BerthPolicy
import BerthSupport
import Foundation
import Testing

struct MatchingTests {
    struct ActionCase: Sendable, CustomTestStringConvertible {
        let pattern: String
        let action: String
        let matches: Bool
        var testDescription: String { "\(pattern) ~ \(action) = \(matches)" }
    }

    static let actions: [ActionCase] = [
        ActionCase(pattern: "*", action: "ecr:BatchGetImage", matches: true),
        ActionCase(pattern: "ecr:*", action: "ecr:BatchGetImage", matches: true),
        ActionCase(pattern: "ecr:*", action: "ecr-public:BatchGetImage", matches: false),
        ActionCase(pattern: "ecr:Batch*", action: "ecr:BatchCheckLayerAvailability", matches: true),
        ActionCase(pattern: "ecr:Batch*", action: "ecr:GetDownloadUrlForLayer", matches: false),
        ActionCase(pattern: "ECR:batchgetimage", action: "ecr:BatchGetImage", matches: true),
        ActionCase(pattern: "ecr:BatchGetImage", action: "ECR:BATCHGETIMAGE", matches: true),
        ActionCase(pattern: "ecr:?utImage", action: "ecr:PutImage", matches: true),
        ActionCase(pattern: "ecr:?utImage", action: "ecr:OutputImage", matches: false),
        ActionCase(pattern: "ecr:*Layer*", action: "ecr:InitiateLayerUpload", matches: true),
        ActionCase(pattern: "ecr:Get*", action: "ecr:GetAuthorizationToken", matches: true),
        ActionCase(pattern: "ecr:Describe*", action: "ecr:DeleteRepository", matches: false),
        ActionCase(pattern: "iam:*AccessKey*", action: "iam:CreateAccessKey", matches: true),
        ActionCase(pattern: "ecr:PutImage", action: "ecr:PutImageTagMutability", matches: false),
        ActionCase(pattern: "ecr:*Image", action: "ecr:PutImage", matches: true),
    ]

    @Test(arguments: actions)
    func actionsMatchCaseInsensitivelyWithWildcards(_ c: ActionCase) throws {
        let allowed = try identityAllows(statement: #""Action":"\#(c.pattern)","Resource":"*""#, action: c.action)
        #expect(allowed == c.matches)
    }

    struct ResourceCase: Sendable, CustomTestStringConvertible {
        let pattern: String
        let resource: String
        let matches: Bool
        var testDescription: String { "\(pattern) ~ \(resource) = \(matches)" }
    }

    static let bucket = "arn:aws:s3:::amzn-s3-demo-bucket/"
    static let resources: [ResourceCase] = [
        ResourceCase(pattern: "*", resource: repositoryARN("app"), matches: true),
        ResourceCase(pattern: repositoryARN("app"), resource: repositoryARN("app"), matches: true),
        ResourceCase(pattern: repositoryARN("app"), resource: repositoryARN("App"), matches: false),
        ResourceCase(pattern: repositoryARN("app"), resource: repositoryARN("app2"), matches: false),
        ResourceCase(pattern: repositoryARN("team/*"), resource: repositoryARN("team/a/b"), matches: true),
        ResourceCase(pattern: repositoryARN("team/*"), resource: repositoryARN("other/a"), matches: false),
        ResourceCase(pattern: "arn:aws:ecr:*:\(account):repository/*", resource: repositoryARN("x", region: "eu-west-1"), matches: true),
        ResourceCase(pattern: "arn:aws:ecr:*:\(account):repository/*", resource: repositoryARN("x", account: otherAccount), matches: false),
        ResourceCase(pattern: "arn:aws:ecr:us-east-?:\(account):repository/x", resource: repositoryARN("x"), matches: true),
        ResourceCase(pattern: "arn:aws:ecr:us-?ast-1:\(account):repository/x", resource: "arn:aws:ecr:us:ast-1:\(account):repository/x", matches: false),
        ResourceCase(pattern: "arn:aws:ecr:us-east-1:\(account):*", resource: repositoryARN("a/b:c"), matches: true),
        ResourceCase(pattern: "arn:aws:ecr:us-east-1:\(account):repository/prod-?", resource: repositoryARN("prod-1"), matches: true),
        ResourceCase(pattern: "arn:aws:ecr:us-east-1:\(account):repository/prod-?", resource: repositoryARN("prod-12"), matches: false),
        ResourceCase(pattern: "arn:aws:ecr", resource: repositoryARN("x"), matches: true),
        ResourceCase(pattern: "arn:aws:s3:*", resource: repositoryARN("x"), matches: false),
        ResourceCase(pattern: "arn:aws:ecr:us-east-1:\(account):repository/a*b", resource: repositoryARN("a/x:y/b"), matches: true),
        // The IAM User Guide's own list for arn:aws:s3:::amzn-s3-demo-bucket/*/test/*.
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/test/object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/2/test/object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/2/test/3/object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/2/3/test/4/object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1///test///object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/test/.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "/test/object.jpg", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/test/", matches: true),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1-test/object.jpg", matches: false),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "test/object.jpg", matches: false),
        ResourceCase(pattern: bucket + "*/test/*", resource: bucket + "1/2/test.jpg", matches: false),
    ]

    @Test(arguments: resources)
    func resourcesMatchCaseSensitivelyPerSegment(_ c: ResourceCase) throws {
        let allowed = try identityAllows(statement: #""Action":"*","Resource":"\#(c.pattern)""#, action: "s3:GetObject", resource: c.resource)
        #expect(allowed == c.matches)
    }

    @Test func starEndingASegmentCrossesColonsButInnerStarDoesNot() {
        // "If the * wildcard is the last character of a resource ARN segment, it can expand to match beyond the colon boundaries."
        let ending = WildcardPattern.resourceARN([.pattern("arn:aws:dynamodb:*:table/prod-*")])
        #expect(ending.matches("arn:aws:dynamodb:us-east-1:111122223333:table/prod-x"))
        let inner = WildcardPattern.resourceARN([.pattern("arn:aws:dynamodb:us*1:111122223333:table/x")])
        #expect(inner.matches("arn:aws:dynamodb:us-east-1:111122223333:table/x"))
        #expect(!inner.matches("arn:aws:dynamodb:us:east-1:111122223333:table/x"))
    }

    @Test func substitutedTextIsLiteral() {
        let pattern = WildcardPattern.resourceARN([.pattern("arn:aws:ecr:us-east-1:1:repository/"), .literal("*")])
        #expect(pattern.matches("arn:aws:ecr:us-east-1:1:repository/*"))
        #expect(!pattern.matches("arn:aws:ecr:us-east-1:1:repository/anything"))
    }

    @Test func matcherStaysLinearOnPathologicalPatterns() {
        let pattern = WildcardPattern.glob(String(repeating: "*a", count: 60) + "b")
        #expect(!pattern.matches(String(repeating: "a", count: 2_000)))
    }

    struct ARNCase: Sendable, CustomTestStringConvertible {
        let pattern: String
        let value: String
        let matches: Bool
        var testDescription: String { "\(pattern) ~ \(value) = \(matches)" }
    }

    static let arns: [ARNCase] = [
        // The IAM guide's example: StringLike matches it, ArnLike does not.
        ARNCase(pattern: "arn:aws:someservice:*:111122223333:finance/*",
                value: "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt", matches: false),
        ARNCase(pattern: "arn:aws:someservice:*:111122223333:finance/*",
                value: "arn:aws:someservice:us-east-2:111122223333:finance/document.txt", matches: true),
        ARNCase(pattern: "arn:aws:codebuild:*:123456789012:project/*", value: "arn:aws:codebuild:us-east-1:123456789012:project/p", matches: true),
        ARNCase(pattern: "arn:aws:codebuild:*:123456789012:project/*", value: "arn:aws:codebuild:us-east-1:123456789012:project/a:b", matches: true),
        ARNCase(pattern: "arn:aws:iam::*:root", value: "arn:aws:iam::111122223333:root", matches: true),
        ARNCase(pattern: "arn:aws:iam::*:root", value: "arn:aws:iam::111122223333:user/root", matches: false),
        ARNCase(pattern: "arn:aws:iam::111122223333:user/Ana", value: "arn:aws:iam::111122223333:user/ana", matches: false),
        ARNCase(pattern: "*", value: "arn:aws:iam::111122223333:user/ana", matches: true),
        ARNCase(pattern: "arn:aws:iam::111122223333:user/Ana", value: "not-an-arn", matches: false),
        ARNCase(pattern: "arn:aws:iam::*", value: "arn:aws:iam::111122223333:user/a", matches: true),
    ]

    @Test(arguments: arns)
    func arnOperatorsCompareSixComponentsSeparately(_ c: ARNCase) throws {
        let holds = try conditionHolds(#"{"ArnLike":{"aws:SourceArn":"\#(c.pattern)"}}"#, context: ["aws:SourceArn": .single(c.value)])
        #expect(holds == c.matches)
        let equals = try conditionHolds(#"{"ArnEquals":{"aws:SourceArn":"\#(c.pattern)"}}"#, context: ["aws:SourceArn": .single(c.value)])
        #expect(equals == c.matches, "ArnEquals and ArnLike behave identically")
    }

    @Test func stringLikeMatchesWhereArnLikeDoesNot() throws {
        let value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
        #expect(try conditionHolds(#"{"StringLike":{"aws:SourceArn":"arn:aws:someservice:*:111122223333:finance/*"}}"#, context: ["aws:SourceArn": .single(value)]))
    }

    struct IPCase: Sendable, CustomTestStringConvertible {
        let range: String
        let address: String
        let contains: Bool
        var testDescription: String { "\(range) ∋ \(address) = \(contains)" }
    }

    static let ips: [IPCase] = [
        IPCase(range: "203.0.113.0/24", address: "203.0.113.7", contains: true),
        IPCase(range: "203.0.113.0/24", address: "203.0.114.7", contains: false),
        IPCase(range: "203.0.113.9", address: "203.0.113.9", contains: true),
        IPCase(range: "203.0.113.9", address: "203.0.113.10", contains: false),
        IPCase(range: "0.0.0.0/0", address: "198.51.100.1", contains: true),
        IPCase(range: "10.0.0.0/9", address: "10.127.255.255", contains: true),
        IPCase(range: "10.0.0.0/9", address: "10.128.0.0", contains: false),
        IPCase(range: "2001:DB8:1234:5678::/64", address: "2001:db8:1234:5678:abcd::1", contains: true),
        IPCase(range: "2001:DB8:1234:5678::/64", address: "2001:db8:1234:5679::1", contains: false),
        IPCase(range: "::1", address: "::1", contains: true),
        IPCase(range: "::/0", address: "fe80::1", contains: true),
        IPCase(range: "::ffff:203.0.113.0/120", address: "::ffff:203.0.113.200", contains: true),
        IPCase(range: "203.0.113.0/24", address: "2001:db8::1", contains: false),
        IPCase(range: "2001:db8::/32", address: "203.0.113.7", contains: false),
    ]

    @Test(arguments: ips)
    func ipRangesContainAddresses(_ c: IPCase) throws {
        #expect(try conditionHolds(#"{"IpAddress":{"aws:SourceIp":"\#(c.range)"}}"#, sourceIP: c.address) == c.contains)
        #expect(try conditionHolds(#"{"NotIpAddress":{"aws:SourceIp":"\#(c.range)"}}"#, sourceIP: c.address) == !c.contains)
    }

    @Test(arguments: ["1.2.3", "1.2.3.256", "1.2.3.4/", "1.2.3.4/x", "::1::2", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", ""])
    func invalidAddressesAreRefused(_ text: String) {
        #expect(IPAddressRange(text) == nil)
    }

    struct DateCase: Sendable, CustomTestStringConvertible {
        let text: String
        let epoch: Double?
        var testDescription: String { text }
    }

    static let dates: [DateCase] = [
        DateCase(text: "2020-01-01T00:00:01Z", epoch: 1_577_836_801),
        DateCase(text: "2020-01-01", epoch: 1_577_836_800),
        DateCase(text: "2020-02", epoch: 1_580_515_200),
        DateCase(text: "2020-01-01T00:00Z", epoch: 1_577_836_800),
        DateCase(text: "2020-01-01T01:00:00+01:00", epoch: 1_577_836_800),
        DateCase(text: "2019-12-31T19:00:00-0500", epoch: 1_577_836_800),
        DateCase(text: "2020-01-01T00:00:00.5Z", epoch: 1_577_836_800.5),
        DateCase(text: "1577836800", epoch: 1_577_836_800),
        DateCase(text: "2024-02-29T12:00:00Z", epoch: 1_709_208_000),
        DateCase(text: "2023-02-29T12:00:00Z", epoch: nil),
        DateCase(text: "2020-01-01T24:00:00Z", epoch: nil),
        DateCase(text: "2020-01-01T10:00:00", epoch: nil),
        DateCase(text: "yesterday", epoch: nil),
    ]

    @Test(arguments: dates)
    func datesParseAsISO8601OrEpoch(_ c: DateCase) {
        #expect(PolicyDate.parse(c.text) == c.epoch)
    }

    @Test func currentTimeRendersAsIAMDoes() {
        #expect(PolicyDate.iso8601(Date(iso: "2024-05-01T12:34:56Z")) == "2024-05-01T12:34:56Z")
        #expect(PolicyDate.iso8601(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00Z")
    }
}

@Suite struct ARNAccountTests {
    @Test(arguments: [
        ("arn:aws:ecr:us-east-1:123456789012:repository/a/b", "123456789012"),
        ("arn:aws:iam::123456789012:role/x", "123456789012"),
        ("arn:aws:ecr-public::123456789012:repository/x", "123456789012"),
        ("arn:aws:s3:::bucket", nil),
        ("arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly", "aws"),
        ("arn:aws:ecr:us-east-1:123456789012", nil),
        ("*", nil),
        ("", nil),
        ("arn:", nil),
        ("urn:aws:ecr:us-east-1:123456789012:repository/x", nil),
        ("arn:aws:ecr:us-east-1:1:2:3", "1"),
    ] as [(String, String?)])
    func accountIsTheFifthField(arn: String, account: String?) {
        #expect(AccessRequest.account(ofARN: arn) == account)
    }
}
