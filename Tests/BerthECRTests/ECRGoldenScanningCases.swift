import BerthCore
@testable import BerthECR
import BerthSupport
import Foundation

extension GoldenWorld {
    /// Stores a finished scan of `manifestV1` in `app`, as the scan service would (no scanner runs here).
    func completeScanOfV1(findings: Int = 3) async throws {
        let digest = Digest.parse(Self.digestV1)!
        let key = RepositoryKey(storedRegistryID: Self.account, name: "app")
        let severities: [ScanSeverity] = [.critical, .high, .low, .undefined]
        let list = (0..<findings).map { i in
            ScanFinding(
                name: "CVE-2023-\(1000 + i)", description: "Finding \(i)", uri: "https://security-tracker.debian.org/tracker/CVE-2023-\(1000 + i)",
                severity: severities[i % severities.count],
                attributes: [.init(key: "package_name", value: "libcurl4"), .init(key: "package_version", value: "7.88.1-10")]
                    + (i == 0 ? [.init(key: "CVSS3_SCORE", value: "9.8"), .init(key: "CVSS3_VECTOR", value: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")] : []),
                packageName: "libcurl4", packageVersion: "7.88.1-10", packageManager: "OS", arch: "amd64",
                filePath: "var/lib/dpkg/status", fixedInVersion: i == 0 ? "7.88.1-10+deb12u4" : nil,
                cvssScore: i == 0 ? 9.8 : nil, cvssVector: i == 0 ? "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H" : nil,
                source: "Debian", vendorSeverity: i == 0 ? "high" : nil, relatedVulnerabilities: i == 0 ? ["DSA-5587-1"] : [])
        }
        let record = ImageScanRecord(
            repository: key, digest: digest, state: .complete, statusDescription: "The scan was completed successfully.",
            trigger: "MANUAL", requestedAt: Self.start + 100, startedAt: Self.start + 101, completedAt: Self.start + 102,
            vulnerabilitySourceUpdatedAt: 1_739_704_744, findings: list.sorted(by: ScanFinding.reportOrder))
        guard try await service.registry.recordScan(record, ifState: nil) else { throw GoldenFailure("scan not stored") }
    }
}

extension GoldenCase {
    static var v1: JSONValue { ["imageTag": "v1"] }

    static let scanning: [GoldenCase] = [
        // PutImageScanningConfiguration
        .call("PutImageScanningConfiguration", "success") { ["repositoryName": app, "imageScanningConfiguration": ["scanOnPush": true]] },
        .call("PutImageScanningConfiguration", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "imageScanningConfiguration": ["scanOnPush": true]]
        },
        .call("PutImageScanningConfiguration", "InvalidParameterException") { ["repositoryName": app] },

        // PutRegistryScanningConfiguration
        .call("PutRegistryScanningConfiguration", "success") {
            ["scanType": "BASIC", "rules": [
                ["scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [["filter": "*", "filterType": "WILDCARD"]]],
                ["scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [["filter": "prod/*", "filterType": "WILDCARD"]]],
            ]]
        },
        .call("PutRegistryScanningConfiguration", "ValidationException") {
            ["rules": [["scanFrequency": "HOURLY", "repositoryFilters": [["filter": "*", "filterType": "WILDCARD"]]]]]
        },
        .call("PutRegistryScanningConfiguration", "ValidationException-filter") {
            ["rules": [["scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [["filter": "Bad Filter", "filterType": "WILDCARD"]]]]]
        },

        // GetRegistryScanningConfiguration
        .call("GetRegistryScanningConfiguration", "success") { [:] },
        .call("GetRegistryScanningConfiguration", "success-after-put", setup: {
            try await $0.ok("PutRegistryScanningConfiguration", ["scanType": "ENHANCED", "rules": [
                ["scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": [["filter": "a*", "filterType": "WILDCARD"]]],
            ]])
        }) { [:] },
        .call("GetRegistryScanningConfiguration", "AccessDeniedException", as: GoldenWorld.user) { [:] },

        // BatchGetRepositoryScanningConfiguration
        .call("BatchGetRepositoryScanningConfiguration", "success", setup: {
            try await $0.ok("PutRegistryScanningConfiguration", ["rules": [
                ["scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": [["filter": "ap*", "filterType": "WILDCARD"]]],
            ]])
        }) { ["repositoryNames": ["app", "nope"]] },
        .call("BatchGetRepositoryScanningConfiguration", "InvalidParameterException") { ["repositoryNames": []] },

        // StartImageScan
        .call("StartImageScan", "success") { ["repositoryName": app, "imageId": v1] },
        .call("StartImageScan", "LimitExceededException", setup: {
            try await $0.ok("StartImageScan", ["repositoryName": app, "imageId": v1])
            $0.clock.advance(by: 3600)
        }) { ["repositoryName": app, "imageId": v1] },
        .call("StartImageScan", "ImageNotFoundException") { ["repositoryName": app, "imageId": ["imageTag": "v9"]] },
        .call("StartImageScan", "RepositoryNotFoundException") { ["repositoryName": "nope", "imageId": v1] },
        .custom("StartImageScan", "UnsupportedImageTypeException") { w in
            try await w.pushBlob("app", GoldenWorld.signature)
            let put = try await w.putImage("app", GoldenWorld.referrerManifest, tag: "sig")
            _ = put
            return await w.call("StartImageScan", ["repositoryName": app, "imageId": ["imageTag": "sig"]])
        },

        // DescribeImageScanFindings
        .call("DescribeImageScanFindings", "success-pending", setup: {
            try await $0.ok("StartImageScan", ["repositoryName": app, "imageId": v1])
        }) { ["repositoryName": app, "imageId": v1] },
        .call("DescribeImageScanFindings", "success", setup: { try await $0.completeScanOfV1() }) {
            ["repositoryName": app, "imageId": v1, "maxResults": 2]
        },
        .custom("DescribeImageScanFindings", "success-second-page") { w in
            try await w.completeScanOfV1()
            let first = try await w.ok("DescribeImageScanFindings", ["repositoryName": app, "imageId": v1, "maxResults": 2])
            guard let token = first["nextToken"] else { throw GoldenFailure("no nextToken") }
            return await w.call("DescribeImageScanFindings", ["repositoryName": app, "imageId": v1, "maxResults": 2, "nextToken": token])
        },
        .call("DescribeImageScanFindings", "success-enhanced", setup: { w in
            try await w.completeScanOfV1(findings: 1)
            try await w.ok("PutRegistryScanningConfiguration", ["scanType": "ENHANCED", "rules": []])
        }) { ["repositoryName": app, "imageId": v1] },
        .call("DescribeImageScanFindings", "ScanNotFoundException") { ["repositoryName": app, "imageId": v1] },
        .call("DescribeImageScanFindings", "ImageNotFoundException") { ["repositoryName": app, "imageId": ["imageTag": "v9"]] },
        .call("DescribeImageScanFindings", "InvalidParameterException") {
            ["repositoryName": app, "imageId": v1, "maxResults": 1001]
        },

        // DescribeImages shows the scan status and summary
        .call("DescribeImages", "success-scanned", setup: { try await $0.completeScanOfV1() }) { ["repositoryName": app] },
    ]
}
