import BerthCore
@testable import BerthECR
import BerthSupport
import Foundation

extension GoldenCase {
    /// Expire `v*` images pushed more than a day ago.
    static let lifecyclePolicy: JSONValue = .string(#"{"rules":[{"rulePriority":1,"description":"expire old releases","selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#)

    static func putLifecyclePolicy(_ w: GoldenWorld) async throws {
        try await w.ok("PutLifecyclePolicy", ["repositoryName": app, "lifecyclePolicyText": lifecyclePolicy])
    }

    static let lifecycle: [GoldenCase] = [
        .call("PutLifecyclePolicy", "success") { ["repositoryName": app, "lifecyclePolicyText": lifecyclePolicy] },
        .call("PutLifecyclePolicy", "InvalidParameterException") {
            ["repositoryName": app,
             "lifecyclePolicyText": .string(#"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#)]
        },
        .call("PutLifecyclePolicy", "RepositoryNotFoundException") { ["repositoryName": "nope", "lifecyclePolicyText": lifecyclePolicy] },
        .call("GetLifecyclePolicy", "success", setup: putLifecyclePolicy) { ["repositoryName": app] },
        .call("GetLifecyclePolicy", "LifecyclePolicyNotFoundException") { ["repositoryName": app] },
        .call("DeleteLifecyclePolicy", "success", setup: putLifecyclePolicy) { ["repositoryName": app] },
        .call("DeleteLifecyclePolicy", "LifecyclePolicyNotFoundException") { ["repositoryName": app] },
        .call("StartLifecyclePolicyPreview", "success", setup: putLifecyclePolicy) { ["repositoryName": app] },
        .call("StartLifecyclePolicyPreview", "LifecyclePolicyNotFoundException") { ["repositoryName": app] },
        .custom("GetLifecyclePolicyPreview", "success") { w in
            w.clock.advance(by: 2 * 86_400)
            try await w.ok("StartLifecyclePolicyPreview", ["repositoryName": app, "lifecyclePolicyText": lifecyclePolicy])
            return await w.call("GetLifecyclePolicyPreview", ["repositoryName": app])
        },
        .call("GetLifecyclePolicyPreview", "LifecyclePolicyPreviewNotFoundException") { ["repositoryName": app] },
    ]
}
