import BerthSupport

/// Golden cases of the repository creation template operations.
extension GoldenCase {
    static let templateLifecyclePolicy: JSONValue =
        #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":7},"action":{"type":"expire"}}]}"#

    static func createProdTemplate(_ w: GoldenWorld) async throws {
        _ = try await w.ok("CreateRepositoryCreationTemplate", ["prefix": "prod", "appliedFor": ["CREATE_ON_PUSH"]])
    }

    static let creationTemplates: [GoldenCase] = [
        .call("CreateRepositoryCreationTemplate", "success") {
            ["prefix": "prod/team/", "description": "team images", "appliedFor": ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"],
             "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
             "imageTagMutabilityExclusionFilters": [["filterType": "WILDCARD", "filter": "latest"]],
             "resourceTags": [["Key": "team", "Value": "a"]], "lifecyclePolicy": templateLifecyclePolicy,
             "repositoryPolicy": #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:BatchGetImage"}]}"#,
             "customRoleArn": "arn:aws:iam::123456789012:role/ecr-templates"]
        },
        .call("CreateRepositoryCreationTemplate", "success-root-defaults") { ["prefix": "ROOT", "appliedFor": ["REPLICATION"]] },
        .call("CreateRepositoryCreationTemplate", "TemplateAlreadyExistsException", setup: createProdTemplate) {
            ["prefix": "prod/", "appliedFor": ["REPLICATION"]]
        },
        .call("CreateRepositoryCreationTemplate", "ValidationException-prefix") { ["prefix": "Prod", "appliedFor": ["REPLICATION"]] },
        .call("CreateRepositoryCreationTemplate", "ValidationException-appliedFor") { ["prefix": "prod", "appliedFor": ["ON_PULL"]] },
        .call("CreateRepositoryCreationTemplate", "ValidationException-kmsKey") {
            ["prefix": "prod", "appliedFor": ["REPLICATION"], "encryptionConfiguration": ["encryptionType": "KMS", "kmsKey": "alias/mine"]]
        },
        .call("CreateRepositoryCreationTemplate", "InvalidParameterException-lifecyclePolicy") {
            ["prefix": "prod", "appliedFor": ["REPLICATION"], "lifecyclePolicy": #"{"rules":[]}"#]
        },
        .call("DescribeRepositoryCreationTemplates", "success", setup: { w in
            try await createProdTemplate(w)
            _ = try await w.ok("CreateRepositoryCreationTemplate", ["prefix": "ROOT", "appliedFor": ["PULL_THROUGH_CACHE"]])
        }) { ["prefixes": ["prod", "nope"]] },
        .call("DescribeRepositoryCreationTemplates", "ValidationException") { ["maxResults": 0] },
        .call("UpdateRepositoryCreationTemplate", "success", setup: createProdTemplate) {
            ["prefix": "prod", "imageTagMutability": "IMMUTABLE", "resourceTags": [["Key": "env", "Value": "prod"]],
             "encryptionConfiguration": ["encryptionType": "AES256"]]
        },
        .call("UpdateRepositoryCreationTemplate", "TemplateNotFoundException") { ["prefix": "nope", "description": "x"] },
        .call("DeleteRepositoryCreationTemplate", "success", setup: createProdTemplate) { ["prefix": "prod"] },
        .call("DeleteRepositoryCreationTemplate", "TemplateNotFoundException") { ["prefix": "nope"] },
    ]
}
