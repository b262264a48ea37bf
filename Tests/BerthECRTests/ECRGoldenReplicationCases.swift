import BerthSupport

/// Golden cases of the replication operations (docs/replication.md).
extension GoldenCase {
    static let replicationConfiguration: JSONValue = ["rules": [
        ["destinations": [["region": "us-west-2", "registryId": "123456789012"], ["region": "us-east-1", "registryId": "210987654321"]],
         "repositoryFilters": [["filter": "app", "filterType": "PREFIX_MATCH"]]],
    ]]

    static func putReplicationConfiguration(_ w: GoldenWorld) async throws {
        try await w.ok("PutReplicationConfiguration", ["replicationConfiguration": replicationConfiguration])
    }

    static let replication: [GoldenCase] = [
        .call("PutReplicationConfiguration", "success") { ["replicationConfiguration": replicationConfiguration] },
        // A destination that is the source registry itself.
        .call("PutReplicationConfiguration", "InvalidParameterException") {
            ["replicationConfiguration": ["rules": [["destinations": [["region": "us-east-1", "registryId": "123456789012"]]]]]]
        },
        .call("PutReplicationConfiguration", "InvalidParameterException-filter-type") {
            ["replicationConfiguration": ["rules": [["destinations": [["region": "us-west-2", "registryId": "123456789012"]],
                                                      "repositoryFilters": [["filter": "app", "filterType": "WILDCARD"]]]]]]
        },
        .call("PutReplicationConfiguration", "InvalidParameterException-missing") { [:] },
        .call("DescribeRegistry", "success-with-rules", setup: putReplicationConfiguration) { [:] },
        // v1 tagged again after the rules exist: one job per destination, not yet worked.
        .call("DescribeImageReplicationStatus", "success", setup: { w in
            try await putReplicationConfiguration(w)
            _ = try await w.putImage("app", GoldenWorld.manifestV1, tag: "v2")
        }) { ["repositoryName": app, "imageId": ["imageTag": "v2"]] },
        .call("DescribeImageReplicationStatus", "success-no-rules") { ["repositoryName": app, "imageId": ["imageTag": "v1"]] },
        .call("DescribeImageReplicationStatus", "ImageNotFoundException") { ["repositoryName": app, "imageId": ["imageTag": "nope"]] },
        .call("DescribeImageReplicationStatus", "RepositoryNotFoundException") { ["repositoryName": "nope", "imageId": ["imageTag": "v1"]] },
    ]
}
