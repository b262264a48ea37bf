import BerthPolicy
import Testing

/// The repository and registry policy examples of the Amazon ECR User Guide, evaluated.
struct ECRExampleTests {
    // "Example: Allow one or more IAM users"
    static let allowPushPull = #"""
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowPushPull",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": [
                            "arn:aws:iam::111122223333:user/push-pull-user-1",
                            "arn:aws:iam::111122223333:user/push-pull-user-2"
                        ]
                    },
                    "Action": [
                        "ecr:BatchGetImage",
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:CompleteLayerUpload",
                        "ecr:GetDownloadUrlForLayer",
                        "ecr:InitiateLayerUpload",
                        "ecr:PutImage",
                        "ecr:UploadLayerPart"
                    ]
                }
            ]
        }
        """#

    // "Example: Allow another account"
    static let allowCrossAccountPush = #"""
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowCrossAccountPush",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": "arn:aws:iam::444455556666:root"
                    },
                    "Action": [
                        "ecr:BatchCheckLayerAvailability",
                        "ecr:CompleteLayerUpload",
                        "ecr:InitiateLayerUpload",
                        "ecr:PutImage",
                        "ecr:UploadLayerPart"
                    ]
                }
            ]
        }
        """#

    // Pull users plus one admin.
    static let pullAndAdmin = #"""
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowPull",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": [
                            "arn:aws:iam::111122223333:user/pull-user-1",
                            "arn:aws:iam::111122223333:user/pull-user-2"
                        ]
                    },
                    "Action": [
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer"
                    ]
                },
                {
                    "Sid": "AllowAll",
                    "Effect": "Allow",
                    "Principal": {
                        "AWS": "arn:aws:iam::111122223333:user/admin-user"
                    },
                    "Action": [
                        "ecr:*"
                    ]
                }
            ]
        }
        """#

    // "Example: Deny all"
    static let denyPull = #"""
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyPull",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": [
                        "ecr:BatchGetImage",
                        "ecr:GetDownloadUrlForLayer"
                    ]
                }
            ]
        }
        """#

    // "Example: Restricting access to specific IP addresses"
    static let ipDeny = #"""
        {
            "Version": "2012-10-17",
            "Id": "ECRPolicyId1",
            "Statement": [
                {
                    "Sid": "IPAllow",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "ecr:*",
                    "Condition": {
                        "NotIpAddress": {
                            "aws:SourceIp": "54.240.143.0/24"
                        }
                    }
                }
            ]
        }
        """#

    // "Example: Allow an AWS service"
    static let codeBuild = #"""
        {
           "Version":"2012-10-17",
           "Statement":[
              {
                 "Sid":"CodeBuildAccess",
                 "Effect":"Allow",
                 "Principal":{
                    "Service":"codebuild.amazonaws.com"
                 },
                 "Action":[
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer"
                 ],
                 "Condition":{
                    "ArnLike":{
                       "aws:SourceArn":"arn:aws:codebuild:us-east-1:111122223333:project/project-name"
                    },
                    "StringEquals":{
                       "aws:SourceAccount":"111122223333"
                    }
                 }
              }
           ]
        }
        """#

    // The `set-repository-policy` CLI example: public pull, version 2008-10-17, a Sid with spaces.
    static let publicPull = #"""
        { "Version" : "2008-10-17", "Statement" : [ { "Sid" : "allow public pull", "Effect" : "Allow", "Principal" : "*",
          "Action" : [ "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer" ] } ] }
        """#

    // Registry policy: replication from a source account into repositories starting with prod-.
    static let replicationProd = #"""
        {
            "Version":"2012-10-17",
            "Statement":[
                {
                    "Sid":"ReplicationAccessCrossAccount",
                    "Effect":"Allow",
                    "Principal":{
                        "AWS":"arn:aws:iam::444455556666:root"
                    },
                    "Action":[
                        "ecr:CreateRepository",
                        "ecr:ReplicateImage"
                    ],
                    "Resource": [
                        "arn:aws:ecr:us-west-2:111122223333:repository/prod-*"
                    ]
                }
            ]
        }
        """#

    static let everyExample = [allowPushPull, allowCrossAccountPush, pullAndAdmin, denyPull, ipDeny, codeBuild, publicPull, replicationProd]

    @Test(arguments: everyExample)
    func everyGuideExampleIsAValidRepositoryPolicy(_ json: String) {
        #expect(refusal(json, .ecrRepositoryPolicy) == nil)
    }

    @Test(arguments: everyExample)
    func noGuideExampleIsAValidIdentityPolicy(_ json: String) {
        #expect(refusal(json, .identity) == .principalInIdentityPolicy)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let policy: String
        let principal: RequestPrincipal
        let identity: [String]
        let action: String
        let resource: String
        let sourceIP: String?
        let context: [String: ContextValue]
        let allowed: Bool
        var testDescription: String { name }

        init(_ name: String, _ policy: String, _ principal: RequestPrincipal, identity: [String] = [], action: String,
             resource: String = repositoryARN("app"), sourceIP: String? = nil, context: [String: ContextValue] = [:], _ allowed: Bool) {
            self.name = name
            self.policy = policy
            self.principal = principal
            self.identity = identity
            self.action = action
            self.resource = resource
            self.sourceIP = sourceIP
            self.context = context
            self.allowed = allowed
        }
    }

    static let user1 = RequestPrincipal.user(account: account, name: "push-pull-user-1")
    static let user3 = RequestPrincipal.user(account: account, name: "push-pull-user-3")
    static let pullUser = RequestPrincipal.user(account: account, name: "pull-user-1")
    static let admin = RequestPrincipal.user(account: account, name: "admin-user")
    static let partner = RequestPrincipal.user(account: otherAccount, name: "ci")
    static let powerUser = ManagedPolicy.amazonEC2ContainerRegistryPowerUser.document
    static let readOnly = ManagedPolicy.amazonEC2ContainerRegistryReadOnly.document

    static let cases: [Case] = [
        Case("listed user pushes", allowPushPull, user1, action: "ecr:PutImage", true),
        Case("listed user cannot delete", allowPushPull, user1, action: "ecr:DeleteRepository", false),
        Case("unlisted user has no access", allowPushPull, user3, action: "ecr:BatchGetImage", false),
        Case("unlisted user with IAM read-only pulls", allowPushPull, user3, identity: [readOnly], action: "ecr:BatchGetImage", true),
        Case("other account with power user pushes", allowCrossAccountPush, partner, identity: [powerUser], action: "ecr:PutImage", true),
        Case("other account without IAM permissions cannot push", allowCrossAccountPush, partner, action: "ecr:PutImage", false),
        Case("other account with power user cannot pull (not granted)", allowCrossAccountPush, partner, identity: [powerUser], action: "ecr:BatchGetImage", false),
        Case("pull user pulls", pullAndAdmin, pullUser, action: "ecr:GetDownloadUrlForLayer", true),
        Case("pull user cannot push", pullAndAdmin, pullUser, action: "ecr:PutImage", false),
        Case("admin user may do anything", pullAndAdmin, admin, action: "ecr:SetRepositoryPolicy", true),
        Case("deny all blocks even power users", denyPull, user1, identity: [powerUser], action: "ecr:BatchGetImage", false),
        Case("deny all blocks even the root user", denyPull, .root(account: account), action: "ecr:BatchGetImage", false),
        Case("deny all leaves pushes alone", denyPull, user1, identity: [powerUser], action: "ecr:PutImage", true),
        Case("IP deny: inside the range", ipDeny, user1, identity: [powerUser], action: "ecr:PutImage", sourceIP: "54.240.143.17", true),
        Case("IP deny: outside the range", ipDeny, user1, identity: [powerUser], action: "ecr:PutImage", sourceIP: "198.51.100.7", false),
        Case("IP deny: no source IP (VPC endpoint) is denied", ipDeny, user1, identity: [powerUser], action: "ecr:PutImage", false),
        Case("CodeBuild from the named project", codeBuild, .service("codebuild.amazonaws.com"), action: "ecr:BatchGetImage",
             context: ["aws:SourceArn": "arn:aws:codebuild:us-east-1:111122223333:project/project-name", "aws:SourceAccount": "111122223333"], true),
        Case("CodeBuild from another project", codeBuild, .service("codebuild.amazonaws.com"), action: "ecr:BatchGetImage",
             context: ["aws:SourceArn": "arn:aws:codebuild:us-east-1:111122223333:project/other", "aws:SourceAccount": "111122223333"], false),
        Case("CodeBuild from another account", codeBuild, .service("codebuild.amazonaws.com"), action: "ecr:BatchGetImage",
             context: ["aws:SourceArn": "arn:aws:codebuild:us-east-1:111122223333:project/project-name", "aws:SourceAccount": "999999999999"], false),
        Case("CodeBuild cannot push", codeBuild, .service("codebuild.amazonaws.com"), action: "ecr:PutImage",
             context: ["aws:SourceArn": "arn:aws:codebuild:us-east-1:111122223333:project/project-name", "aws:SourceAccount": "111122223333"], false),
        Case("public pull: anonymous", publicPull, .anonymous, action: "ecr:BatchGetImage", true),
        Case("public pull: anonymous cannot push", publicPull, .anonymous, action: "ecr:PutImage", false),
        Case("public pull: any same-account user", publicPull, user3, action: "ecr:GetDownloadUrlForLayer", true),
        Case("replication into prod-*", replicationProd, .root(account: otherAccount), action: "ecr:ReplicateImage",
             resource: "arn:aws:ecr:us-west-2:111122223333:repository/prod-api", true),
        Case("replication into other repositories", replicationProd, .root(account: otherAccount), action: "ecr:ReplicateImage",
             resource: "arn:aws:ecr:us-west-2:111122223333:repository/dev-api", false),
        Case("replication in another region", replicationProd, .root(account: otherAccount), action: "ecr:CreateRepository",
             resource: "arn:aws:ecr:us-east-1:111122223333:repository/prod-api", false),
    ]

    @Test(arguments: cases)
    func guideExamplesEvaluate(_ c: Case) throws {
        let request = AccessRequest(principal: c.principal, action: c.action, resource: c.resource, sourceIP: c.sourceIP, context: c.context)
        let decision = PolicyEngine.evaluate(
            request, identityPolicies: try c.identity.map { try Policy(parsing: $0, options: .iamManagedPolicy) },
            resourcePolicies: [try Policy(parsing: c.policy, options: .ecrRepositoryPolicy)])
        #expect(decision.isAllowed == c.allowed)
    }

    @Test func repositoryAndRegistryPoliciesCombine() throws {
        let repositoryPolicy = try Policy(parsing: Self.denyPull, options: .ecrRepositoryPolicy)
        let registryPolicy = try Policy(parsing: Self.replicationProd, options: .ecrRegistryPolicy)
        let pull = AccessRequest(principal: .root(account: otherAccount), action: "ecr:BatchGetImage",
                                 resource: "arn:aws:ecr:us-west-2:111122223333:repository/prod-api")
        #expect(PolicyEngine.evaluate(pull, identityPolicies: [], resourcePolicies: [repositoryPolicy, registryPolicy])
                == .explicitDeny(StatementReference(policyType: .resourceBased, policyIndex: 0, statementIndex: 0, sid: "DenyPull")))
        let replicate = AccessRequest(principal: .root(account: otherAccount), action: "ecr:ReplicateImage",
                                      resource: "arn:aws:ecr:us-west-2:111122223333:repository/prod-api")
        #expect(PolicyEngine.evaluate(replicate, identityPolicies: [], resourcePolicies: [repositoryPolicy, registryPolicy]).isAllowed)
    }
}
