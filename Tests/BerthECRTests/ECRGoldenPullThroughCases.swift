import BerthSupport

/// Golden cases of the pull through cache rule operations.
extension GoldenCase {
    static let credentialARN: JSONValue = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/hub-AbCdEf"

    static func createHubRule(_ w: GoldenWorld) async throws {
        _ = try await w.ok("CreatePullThroughCacheRule", ["ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "registry-1.docker.io",
                                                          "credentialArn": credentialARN])
    }

    static let pullThroughCache: [GoldenCase] = [
        .call("CreatePullThroughCacheRule", "success") {
            ["ecrRepositoryPrefix": "hub/", "upstreamRegistryUrl": "registry-1.docker.io", "upstreamRegistry": "docker-hub",
             "credentialArn": credentialARN]
        },
        .call("CreatePullThroughCacheRule", "success-any-registry") {
            ["ecrRepositoryPrefix": "mirror", "upstreamRegistryUrl": "https://registry.example.com", "upstreamRepositoryPrefix": "team"]
        },
        .call("CreatePullThroughCacheRule", "InvalidParameterException") {
            ["ecrRepositoryPrefix": "Hub", "upstreamRegistryUrl": "registry-1.docker.io", "credentialArn": credentialARN]
        },
        .call("CreatePullThroughCacheRule", "InvalidParameterException-credential-required") {
            ["ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "registry-1.docker.io"]
        },
        .call("CreatePullThroughCacheRule", "PullThroughCacheRuleAlreadyExistsException", setup: createHubRule) {
            ["ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "quay.io"]
        },
        .call("CreatePullThroughCacheRule", "UnsupportedUpstreamRegistryException") {
            ["ecrRepositoryPrefix": "quay", "upstreamRegistryUrl": "quay.io", "upstreamRegistry": "docker-hub", "credentialArn": credentialARN]
        },
        .call("CreatePullThroughCacheRule", "SecretNotFoundException") {
            ["ecrRepositoryPrefix": "hub", "upstreamRegistryUrl": "registry-1.docker.io",
             "credentialArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/missing-AbCdEf"]
        },
        .call("DescribePullThroughCacheRules", "success", setup: createHubRule) { [:] },
        .call("DescribePullThroughCacheRules", "PullThroughCacheRuleNotFoundException", setup: createHubRule) {
            ["ecrRepositoryPrefixes": ["hub", "nope"]]
        },
        .call("UpdatePullThroughCacheRule", "success", setup: createHubRule) {
            ["ecrRepositoryPrefix": "hub", "credentialArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:ecr-pullthroughcache/other-AbCdEf"]
        },
        .call("UpdatePullThroughCacheRule", "PullThroughCacheRuleNotFoundException") {
            ["ecrRepositoryPrefix": "nope", "credentialArn": credentialARN]
        },
        .call("DeletePullThroughCacheRule", "success", setup: createHubRule) { ["ecrRepositoryPrefix": "hub"] },
        .call("DeletePullThroughCacheRule", "PullThroughCacheRuleNotFoundException") { ["ecrRepositoryPrefix": "nope"] },
        // An http:// upstream is refused before any connection (the setting is off): not valid, and why.
        .call("ValidatePullThroughCacheRule", "success-not-valid", setup: { w in
            _ = try await w.ok("CreatePullThroughCacheRule", ["ecrRepositoryPrefix": "lab", "upstreamRegistryUrl": "http://127.0.0.1:1"])
        }) { ["ecrRepositoryPrefix": "lab"] },
        .call("ValidatePullThroughCacheRule", "PullThroughCacheRuleNotFoundException") { ["ecrRepositoryPrefix": "nope"] },
    ]
}
