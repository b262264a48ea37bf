import BerthPolicy
import Testing

struct ManagedPolicyTests {
    @Test(arguments: ManagedPolicy.allCases)
    func everyManagedPolicyIsAValidManagedPolicy(_ managed: ManagedPolicy) throws {
        let policy = try Policy(parsing: managed.document, options: .iamManagedPolicy)
        #expect(policy == managed.policy)
        #expect(policy.version == .v2012_10_17)
        #expect(managed.arn == "arn:aws:iam::aws:policy/\(managed.name)")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let policy: ManagedPolicy
        let action: String
        let allowed: Bool
        var testDescription: String { "\(policy.name) \(action) \(allowed)" }
    }

    static let cases: [Case] = [
        Case(policy: .amazonEC2ContainerRegistryReadOnly, action: "ecr:GetAuthorizationToken", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryReadOnly, action: "ecr:BatchGetImage", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryReadOnly, action: "ecr:DescribeImageScanFindings", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryReadOnly, action: "ecr:PutImage", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryReadOnly, action: "ecr:BatchImportUpstreamImage", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryPowerUser, action: "ecr:PutImage", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryPowerUser, action: "ecr:InitiateLayerUpload", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryPowerUser, action: "ecr:DeleteRepository", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryPowerUser, action: "ecr:SetRepositoryPolicy", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryPowerUser, action: "ecr:BatchDeleteImage", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryFullAccess, action: "ecr:DeleteRepository", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryFullAccess, action: "ecr:PutRegistryPolicy", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryFullAccess, action: "cloudtrail:LookupEvents", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryFullAccess, action: "ecr-public:PutImage", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryPullOnly, action: "ecr:BatchGetImage", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryPullOnly, action: "ecr:BatchImportUpstreamImage", allowed: true),
        Case(policy: .amazonEC2ContainerRegistryPullOnly, action: "ecr:BatchCheckLayerAvailability", allowed: false),
        Case(policy: .amazonEC2ContainerRegistryPullOnly, action: "ecr:ListImages", allowed: false),
    ]

    @Test(arguments: cases)
    func managedPoliciesGrantTheirActions(_ c: Case) {
        let request = AccessRequest(principal: .user(account: account, name: "dev"), action: c.action, resource: repositoryARN("app"))
        #expect(PolicyEngine.evaluate(request, identityPolicies: [c.policy.policy], resourcePolicies: []).isAllowed == c.allowed)
    }

    @Test func fullAccessCreatesOnlyTheReplicationServiceLinkedRole() {
        func allowed(_ service: String) -> Bool {
            let request = AccessRequest(
                principal: .user(account: account, name: "dev"), action: "iam:CreateServiceLinkedRole",
                resource: "arn:aws:iam::111122223333:role/aws-service-role/x", context: ["iam:AWSServiceName": .single(service)])
            return PolicyEngine.evaluate(request, identityPolicies: [ManagedPolicy.amazonEC2ContainerRegistryFullAccess.policy], resourcePolicies: []).isAllowed
        }
        #expect(allowed("replication.ecr.amazonaws.com"))
        #expect(!allowed("ec2.amazonaws.com"))
    }
}
