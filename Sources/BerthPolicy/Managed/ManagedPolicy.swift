import BerthSupport

/// AWS's managed policies for Amazon ECR, as published in the AWS Managed Policy Reference.
public enum ManagedPolicy: String, Sendable, CaseIterable {
    /// v3, edited 2019-12-10: read-only access to repositories.
    case amazonEC2ContainerRegistryReadOnly = "AmazonEC2ContainerRegistryReadOnly"
    /// v3, edited 2019-12-10: full access to repositories, but no repository deletion or policy changes.
    case amazonEC2ContainerRegistryPowerUser = "AmazonEC2ContainerRegistryPowerUser"
    /// v3, 2020-12-05: administrative access (`ecr:*`, `cloudtrail:LookupEvents`, the replication service-linked role).
    case amazonEC2ContainerRegistryFullAccess = "AmazonEC2ContainerRegistryFullAccess"
    /// v1, 2024-10-04: pulling images, including pull-through-cache imports.
    case amazonEC2ContainerRegistryPullOnly = "AmazonEC2ContainerRegistryPullOnly"

    /// The policy's name, e.g. `AmazonEC2ContainerRegistryReadOnly`.
    public var name: String { rawValue }

    /// `arn:aws:iam::aws:policy/<name>`.
    public var arn: String { ARN.iam(account: "aws", type: "policy", name: rawValue).description }

    /// The policy document's JSON text.
    public var document: String {
        switch self {
        case .amazonEC2ContainerRegistryReadOnly:
            """
            {
              "Version" : "2012-10-17",
              "Statement" : [
                {
                  "Effect" : "Allow",
                  "Action" : [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:GetRepositoryPolicy",
                    "ecr:DescribeRepositories",
                    "ecr:ListImages",
                    "ecr:DescribeImages",
                    "ecr:BatchGetImage",
                    "ecr:GetLifecyclePolicy",
                    "ecr:GetLifecyclePolicyPreview",
                    "ecr:ListTagsForResource",
                    "ecr:DescribeImageScanFindings"
                  ],
                  "Resource" : "*"
                }
              ]
            }
            """
        case .amazonEC2ContainerRegistryPowerUser:
            """
            {
              "Version" : "2012-10-17",
              "Statement" : [
                {
                  "Effect" : "Allow",
                  "Action" : [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:GetRepositoryPolicy",
                    "ecr:DescribeRepositories",
                    "ecr:ListImages",
                    "ecr:DescribeImages",
                    "ecr:BatchGetImage",
                    "ecr:GetLifecyclePolicy",
                    "ecr:GetLifecyclePolicyPreview",
                    "ecr:ListTagsForResource",
                    "ecr:DescribeImageScanFindings",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage"
                  ],
                  "Resource" : "*"
                }
              ]
            }
            """
        case .amazonEC2ContainerRegistryFullAccess:
            """
            {
              "Version" : "2012-10-17",
              "Statement" : [
                {
                  "Effect" : "Allow",
                  "Action" : [
                    "ecr:*",
                    "cloudtrail:LookupEvents"
                  ],
                  "Resource" : "*"
                },
                {
                  "Effect" : "Allow",
                  "Action" : [
                    "iam:CreateServiceLinkedRole"
                  ],
                  "Resource" : "*",
                  "Condition" : {
                    "StringEquals" : {
                      "iam:AWSServiceName" : [
                        "replication.ecr.amazonaws.com"
                      ]
                    }
                  }
                }
              ]
            }
            """
        case .amazonEC2ContainerRegistryPullOnly:
            """
            {
              "Version" : "2012-10-17",
              "Statement" : [
                {
                  "Effect" : "Allow",
                  "Action" : [
                    "ecr:GetAuthorizationToken",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:BatchImportUpstreamImage"
                  ],
                  "Resource" : "*"
                }
              ]
            }
            """
        }
    }

    /// The parsed policy. The documents are constants checked by the test suite, so parsing cannot fail.
    public var policy: Policy {
        do {
            return try Policy(parsing: document, options: .iamManagedPolicy)
        } catch {
            preconditionFailure("managed policy \(rawValue) does not parse: \(error)")
        }
    }
}
