import BerthCore
@testable import BerthECR
import BerthSupport

/// Golden cases of the archive storage class and of pull time update exclusions.
extension GoldenCase {
    static let scannerRole: JSONValue = "arn:aws:iam::123456789012:role/scanning/scanner"

    static func archiveV1(_ w: GoldenWorld) async throws {
        try await w.ok("UpdateImageStorageClass", ["repositoryName": app, "imageId": ["imageTag": "v1"], "targetStorageClass": "ARCHIVE"])
        w.clock.advance(by: 60)
    }

    /// A signature of `v1`, archived.
    static func archiveReferrer(_ w: GoldenWorld) async throws {
        try await w.pushBlob("app", GoldenWorld.signature)
        try await w.putImage("app", GoldenWorld.referrerManifest, tag: nil)
        let digest = Digest.sha256(of: Array(GoldenWorld.referrerManifest.utf8)).description
        try await w.ok("UpdateImageStorageClass", ["repositoryName": app, "imageId": ["imageDigest": .string(digest)],
                                                   "targetStorageClass": "ARCHIVE"])
    }

    static func excludeScanner(_ w: GoldenWorld) async throws {
        try await w.ok("RegisterPullTimeUpdateExclusion", ["principalArn": scannerRole])
    }

    static let archive: [GoldenCase] = [
        // UpdateImageStorageClass
        .call("UpdateImageStorageClass", "success") {
            ["repositoryName": app, "imageId": ["imageTag": "v1"], "targetStorageClass": "ARCHIVE"]
        },
        .call("UpdateImageStorageClass", "success-restore", setup: archiveV1) {
            ["repositoryName": app, "imageId": ["imageDigest": .string(GoldenWorld.digestV1)], "targetStorageClass": "STANDARD"]
        },
        .call("UpdateImageStorageClass", "ImageNotFoundException") {
            ["repositoryName": app, "imageId": ["imageTag": "nope"], "targetStorageClass": "ARCHIVE"]
        },
        .call("UpdateImageStorageClass", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "imageId": ["imageTag": "v1"], "targetStorageClass": "ARCHIVE"]
        },
        .call("UpdateImageStorageClass", "ValidationException") {
            ["repositoryName": app, "imageId": ["imageTag": "v1"], "targetStorageClass": "GLACIER"]
        },
        .custom("UpdateImageStorageClass", "ImageStorageClassUpdateNotSupportedException") { w in
            let index = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(GoldenWorld.digestV1)","size":\#(GoldenWorld.manifestV1.utf8.count)}]}"#
            try await w.putImage("app", index, tag: "list")
            return await w.call("UpdateImageStorageClass", ["repositoryName": app, "imageId": ["imageTag": "v1"], "targetStorageClass": "ARCHIVE"])
        },

        // Archived images in the other operations.
        .call("DescribeImages", "success-archived-hidden-by-default", setup: archiveV1) { ["repositoryName": app] },
        .call("DescribeImages", "success-archived", setup: archiveV1) { ["repositoryName": app, "filter": ["imageStatus": "ARCHIVED"]] },
        .call("DescribeImages", "InvalidParameterException-image-status") { ["repositoryName": app, "filter": ["imageStatus": "FROZEN"]] },
        .call("ListImages", "success-archived", setup: archiveV1) { ["repositoryName": app, "filter": ["imageStatus": "ANY"]] },
        .call("BatchGetImage", "success-archived", setup: archiveV1) {
            ["repositoryName": app, "imageIds": [["imageTag": "v1"], ["imageDigest": .string(GoldenWorld.digestV1)]]]
        },
        .call("ListImageReferrers", "success-archived", setup: archiveReferrer) {
            ["repositoryName": app, "subjectId": ["imageDigest": .string(GoldenWorld.digestV1)], "filter": ["artifactStatus": "ANY"]]
        },
        .call("ListImageReferrers", "success-archived-hidden-by-default", setup: archiveReferrer) {
            ["repositoryName": app, "subjectId": ["imageDigest": .string(GoldenWorld.digestV1)]]
        },
        .call("ListImageReferrers", "InvalidParameterException-artifact-status") {
            ["repositoryName": app, "subjectId": ["imageDigest": .string(GoldenWorld.digestV1)], "filter": ["artifactStatus": "GONE"]]
        },
        .call("StartImageScan", "ImageArchivedException", setup: archiveV1) { ["repositoryName": app, "imageId": ["imageTag": "v1"]] },

        // RegisterPullTimeUpdateExclusion
        .call("RegisterPullTimeUpdateExclusion", "success") { ["principalArn": scannerRole] },
        .call("RegisterPullTimeUpdateExclusion", "ExclusionAlreadyExistsException", setup: excludeScanner) { ["principalArn": scannerRole] },
        .call("RegisterPullTimeUpdateExclusion", "ValidationException") { ["principalArn": "arn:aws:iam::123456789012:group/devs"] },
        .call("RegisterPullTimeUpdateExclusion", "InvalidParameterException") { [:] },

        // DeregisterPullTimeUpdateExclusion
        .call("DeregisterPullTimeUpdateExclusion", "success", setup: excludeScanner) { ["principalArn": scannerRole] },
        .call("DeregisterPullTimeUpdateExclusion", "ExclusionNotFoundException") { ["principalArn": scannerRole] },

        // ListPullTimeUpdateExclusions
        .call("ListPullTimeUpdateExclusions", "success", setup: excludeScanner) { [:] },
        .call("ListPullTimeUpdateExclusions", "success-paginated", setup: { w in
            try await excludeScanner(w)
            try await w.ok("RegisterPullTimeUpdateExclusion", ["principalArn": "arn:aws:iam::123456789012:user/ci"])
        }) { ["maxResults": 1] },
        .call("ListPullTimeUpdateExclusions", "InvalidParameterException") { ["maxResults": 0] },
    ]
}
