import BerthCore
import BerthRegistry
import BerthSupport
import Foundation

/// ECR basic (and enhanced-shaped) scanning: configuration, StartImageScan, DescribeImageScanFindings.
extension ECRService {
    func registryARN(_ account: String) -> String { ARN.ecrRegistry(region: requestRegion, account: account).description }

    func putImageScanningConfiguration(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        guard let config = try p.object("imageScanningConfiguration") else { throw p.missing("imageScanningConfiguration") }
        let scanOnPush = try config.bool("scanOnPush") ?? false
        try await authorize(principal, "PutImageScanningConfiguration", key)
        let s = try await registry.updateSettings(key) { $0.scanOnPush = scanOnPush }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name),
                "imageScanningConfiguration": ["scanOnPush": .bool(s.scanOnPush)]]
    }

    func scanningConfigurationJSON(_ c: RegistryScanningConfiguration) -> JSONValue {
        ["scanType": .string(c.scanType), "rules": .array(c.rules.map { rule in
            ["scanFrequency": .string(rule.scanFrequency),
             "repositoryFilters": .array(rule.repositoryFilters.map { ["filter": .string($0), "filterType": "WILDCARD"] })]
        })]
    }

    /// `^[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*$`: word characters and `*`, single separators between them.
    static func isScanFilter(_ s: String) -> Bool {
        func word(_ c: UInt8) -> Bool { (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2a }
        func separator(_ c: UInt8) -> Bool { c == 0x2e || c == 0x5f || c == 0x2d || c == 0x2f }
        let b = Array(s.utf8)
        guard let first = b.first, let last = b.last, word(first), word(last) else { return false }
        for (i, c) in b.enumerated() {
            if word(c) { continue }
            guard separator(c), !separator(b[i - 1]) else { return false }
        }
        return true
    }

    func enumValue(_ value: String, at path: String, _ allowed: [String]) throws(ECRError) {
        guard allowed.contains(value) else {
            throw .validation(ValidationMessage(.text("\(value)"), at: path, .oneOf(allowed)))
        }
    }

    func putRegistryScanningConfiguration(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let scanType = try p.string("scanType") ?? "BASIC"
        try enumValue(scanType, at: "scanType", RegistryScanningConfiguration.scanTypes)
        let ruleParams = try p.objectList("rules") ?? []
        guard ruleParams.count <= 2 else {
            throw ECRError.validation(ValidationMessage(.omitted, at: "rules", .lengthAtMost(2)))
        }
        var rules: [RegistryScanningConfiguration.Rule] = []
        for (i, r) in ruleParams.enumerated() {
            let frequency = try r.requiredString("scanFrequency")
            try enumValue(frequency, at: "rules.\(i + 1).member.scanFrequency", RegistryScanningConfiguration.frequencies)
            guard let filterParams = try r.objectList("repositoryFilters") else { throw r.missing("rules.\(i + 1).member.repositoryFilters") }
            guard filterParams.count <= 100 else {
                throw ECRError.validation(ValidationMessage(.omitted, at: "rules.\(i + 1).member.repositoryFilters", .lengthAtMost(100)))
            }
            var filters: [String] = []
            for (j, f) in filterParams.enumerated() {
                let path = "rules.\(i + 1).member.repositoryFilters.\(j + 1).member"
                let filter = try f.requiredString("filter")
                let type = try f.requiredString("filterType")
                try enumValue(type, at: "\(path).filterType", ["WILDCARD"])
                guard (1...255).contains(filter.utf8.count), Self.isScanFilter(filter) else {
                    throw ECRError.validation(ValidationMessage(.text("\(filter)"), at: "\(path).filter", .pattern("^[a-z0-9*](?:[._\\-/a-z0-9*]?[a-z0-9*]+)*$")))
                }
                filters.append(filter)
            }
            if frequency != "MANUAL" && filters.isEmpty {
                throw ECRError.invalidParameter("Invalid parameter at 'rules': a \(frequency) rule must have at least one repository filter")
            }
            rules.append(.init(scanFrequency: frequency, repositoryFilters: filters))
        }
        if Set(rules.map(\.scanFrequency)).count != rules.count {
            throw ECRError.invalidParameter("Invalid parameter at 'rules': each scan frequency may appear in one rule only")
        }
        try await authorizer.authorize(principal, action: "ecr:PutRegistryScanningConfiguration", resource: registryARN(principal.accountID))
        let config = RegistryScanningConfiguration(scanType: scanType, rules: rules)
        try await registry.putScanningConfiguration(storeID(principal.accountID), config)
        return ["registryScanningConfiguration": scanningConfigurationJSON(config)]
    }

    func getRegistryScanningConfiguration(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await authorizer.authorize(principal, action: "ecr:GetRegistryScanningConfiguration", resource: registryARN(principal.accountID))
        let config = try await registry.scanningConfiguration(storeID(principal.accountID))
        return ["registryId": .string(principal.accountID), "scanningConfiguration": scanningConfigurationJSON(config)]
    }

    func batchGetRepositoryScanningConfiguration(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let names = try p.requiredStringList("repositoryNames", count: 1...25)
        var configs: [JSONValue] = []
        var failures: [JSONValue] = []
        var seen = Set<String>()
        for name in names where seen.insert(name).inserted {
            guard let rn = try? RepositoryName(name), (2...256).contains(name.utf8.count) else {
                throw ECRError.invalidParameter("Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")
            }
            let key = RepositoryKey(registryID: storeID(principal.accountID), name: rn)
            try await authorize(principal, "BatchGetRepositoryScanningConfiguration", key)
            guard let record = try await registry.findRepository(key) else {
                failures.append(["repositoryName": .string(name), "failureCode": "REPOSITORY_NOT_FOUND",
                                 "failureReason": "REPOSITORY_NOT_FOUND"])
                continue
            }
            let (frequency, filters) = try await registry.scanFrequency(record)
            configs.append([
                "repositoryArn": .string(arn(key)), "repositoryName": .string(name),
                // ECR reports the repository's own flag (PutImageScanningConfiguration), not the registry rule's
                // frequency: a CONTINUOUS_SCAN or SCAN_ON_PUSH rule leaves it false (docs/compatibility.md).
                "scanOnPush": .bool(record.settings.scanOnPush), "scanFrequency": .string(frequency),
                "appliedScanFilters": .array(filters.map { ["filter": .string($0), "filterType": "WILDCARD"] }),
            ])
        }
        return ["scanningConfigurations": .array(configs), "failures": .array(failures)]
    }

    /// Resolves a request's `imageId` or throws ECR's ImageNotFoundException / InvalidParameterException.
    func requireImage(_ p: Params, in key: RepositoryKey) async throws -> (Digest, JSONValue) {
        guard let id = try p.object("imageId") else { throw p.missing("imageId") }
        switch try await resolve(id, in: key) {
        case .found(let digest, let tag):
            return (digest, imageID(digest.description, tag))
        case .failed(let code, let reason):
            throw try imageLookupError(id, code: code, reason: reason, in: key)
        }
    }

    /// The error of a single-image lookup that failed: ImageNotFoundException naming the given id, or
    /// InvalidParameterException for a malformed one.
    func imageLookupError(_ id: Params, code: String, reason: String, in key: RepositoryKey) throws -> ECRError {
        guard code == "ImageNotFound" || code == "ImageTagDoesNotMatchDigest" else { return .invalidParameter(reason) }
        return .imageNotFound(digest: try id.string("imageDigest"), tag: try id.string("imageTag"), repository: key.name, registry: wireID(key))
    }

    func scanStatusJSON(_ s: ImageScanRecord) -> JSONValue {
        var o: [String: JSONValue] = ["status": .string(s.state.rawValue)]
        if let d = s.statusDescription { o["description"] = .string(d) }
        return .object(o)
    }

    func severityCountsJSON(_ s: ImageScanRecord) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: s.severityCounts.map { ($0.key.rawValue, JSONValue.int(Int64($0.value))) }))
    }

    func startImageScan(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "StartImageScan", key)
        try await requireRepository(key)
        let (digest, id) = try await requireImage(p, in: key)
        guard let manifest = try await registry.storedManifest(digest, in: key) else {
            throw ECRError.imageNotFound(digest: digest.description, tag: nil, repository: key.name, registry: wireID(key))
        }
        guard manifest.status.isPullable else {
            throw ECRError.imageArchived("The image with imageId \(ECRError.imageIDText(digest: digest.description, tag: nil)) is archived and cannot be scanned")
        }
        if let parsed = try? ManifestParser.parse(manifest.bytes, contentType: manifest.mediaType), !parsed.isIndex,
           !(parsed.config.map { MediaType.isImageConfig($0.mediaType) } ?? false) {
            throw ECRError.unsupportedImageType(parsed.effectiveArtifactType ?? parsed.config?.mediaType ?? manifest.mediaType)
        }
        let record: ImageScanRecord
        do {
            record = try await registry.requestScan(key, digest, trigger: "MANUAL", manual: true)
        } catch BerthError.tooManyRequests {
            throw ECRError.scanQuotaExceeded
        }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "imageId": id,
                "imageScanStatus": scanStatusJSON(record)]
    }

    func describeImageScanFindings(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DescribeImageScanFindings", key)
        try await requireRepository(key)
        let limit = try p.maxResults(1, 1000) ?? Self.defaultPageSize
        let start = try ECRService.decodeToken(try p.string("nextToken")).map { Int($0) } ?? 0
        guard let offset = start, offset >= 0 else {
            throw ECRError.invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'")
        }
        let (digest, id) = try await requireImage(p, in: key)
        guard let scan = try await registry.scan(digest, in: key) else {
            throw ECRError.scanNotFound(digest: try p.object("imageId")?.string("imageDigest"), tag: try p.object("imageId")?.string("imageTag"),
                                        repository: key.name, registry: wireID(key))
        }
        var out: [String: JSONValue] = [
            "registryId": .string(wireID(key)), "repositoryName": .string(key.name), "imageId": id,
            "imageScanStatus": scanStatusJSON(scan),
        ]
        guard scan.state == .complete else { return .object(out) }
        let page = scan.findings.dropFirst(offset).prefix(limit)
        var findings: [String: JSONValue] = ["findingSeverityCounts": severityCountsJSON(scan)]
        if let t = scan.completedAt { findings["imageScanCompletedAt"] = .double(t) }
        if let t = scan.vulnerabilitySourceUpdatedAt { findings["vulnerabilitySourceUpdatedAt"] = .double(t) }
        let config = try await registry.scanningConfiguration(key.registryID)
        if config.scanType == "ENHANCED" {
            let image = try await registry.image(digest, in: key)
            findings["enhancedFindings"] = .array(page.map { enhancedFindingJSON($0, key, digest, image, scan) })
        } else {
            findings["findings"] = .array(page.map(findingJSON))
        }
        out["imageScanFindings"] = .object(findings)
        if offset + page.count < scan.findings.count {
            out["nextToken"] = .string(ECRService.encodeToken(String(offset + page.count)))
        }
        return .object(out)
    }

    func findingJSON(_ f: ScanFinding) -> JSONValue {
        var o: [String: JSONValue] = [
            "name": .string(f.name), "uri": .string(f.uri), "severity": .string(f.severity.rawValue),
            "attributes": .array(f.attributes.prefix(50).map { ["key": .string($0.key), "value": .string(String($0.value.prefix(256)))] }),
        ]
        if let d = f.description { o["description"] = .string(d) }
        return .object(o)
    }

    func enhancedFindingJSON(_ f: ScanFinding, _ key: RepositoryKey, _ digest: Digest, _ image: ImageSummary?, _ scan: ImageScanRecord) -> JSONValue {
        var pkg: [String: JSONValue] = [
            "name": .string(f.packageName), "version": .string(f.packageVersion), "packageManager": .string(f.packageManager),
        ]
        if let a = f.arch { pkg["arch"] = .string(a) }
        if let path = f.filePath { pkg["filePath"] = .string(path) }
        if let fixed = f.fixedInVersion { pkg["fixedInVersion"] = .string(fixed) }
        var details: [String: JSONValue] = [
            "vulnerabilityId": .string(f.name), "source": .string(f.source), "sourceUrl": .string(f.uri),
            "referenceUrls": .array([.string(f.uri)]), "vulnerablePackages": .array([.object(pkg)]),
            "relatedVulnerabilities": .array(f.relatedVulnerabilities.map { .string($0) }),
        ]
        if let v = f.vendorSeverity { details["vendorSeverity"] = .string(v) }
        var cvss: [JSONValue] = []
        if let score = f.cvssScore, let vector = f.cvssVector {
            cvss.append(["baseScore": .double(score), "scoringVector": .string(vector), "source": .string(f.source), "version": "3.1"])
        }
        details["cvss"] = .array(cvss)
        var container: [String: JSONValue] = [
            "imageHash": .string(digest.description), "registry": .string(wireID(key)), "repositoryName": .string(key.name),
        ]
        if let image {
            container["imageTags"] = .array(image.tags.map { .string($0) })
            container["pushedAt"] = .double(image.pushedAt)
        }
        let resource: JSONValue = [
            "id": .string(arn(key) + "/" + digest.description), "type": "AWS_ECR_CONTAINER_IMAGE",
            "details": ["awsEcrContainerImage": .object(container)],
        ]
        var o: [String: JSONValue] = [
            "awsAccountId": .string(wireID(key)), "severity": .string(f.severity.rawValue), "status": "ACTIVE",
            "title": .string("\(f.name) - \(f.packageName)"), "type": "PACKAGE_VULNERABILITY",
            "findingArn": .string(ARN(service: "inspector2", region: requestRegion, account: key.registry.account, resource: "finding/\(Self.findingID(f, key, digest))").description),
            "packageVulnerabilityDetails": .object(details), "resources": .array([resource]),
            "fixAvailable": .string(f.fixedInVersion == nil ? "NO" : "YES"), "exploitAvailable": "NO",
            "remediation": ["recommendation": ["text": .string(f.fixedInVersion.map { "Upgrade \(f.packageName) to \($0) or later." } ?? "None provided")]],
        ]
        if let d = f.description { o["description"] = .string(d) }
        if let t = scan.completedAt {
            o["firstObservedAt"] = .double(t)
            o["lastObservedAt"] = .double(t)
            o["updatedAt"] = .double(t)
        }
        if let score = f.cvssScore {
            o["score"] = .double(score)
            if let vector = f.cvssVector {
                o["scoreDetails"] = ["cvss": ["score": .double(score), "scoringVector": .string(vector), "scoreSource": .string(f.source),
                                              "version": "3.1", "adjustments": []]]
            }
        }
        return .object(o)
    }

    /// A stable finding id: a hash of the image, the advisory and the package.
    static func findingID(_ f: ScanFinding, _ key: RepositoryKey, _ digest: Digest) -> String {
        let d = Digest.sha256(of: Array("\(key.registryID)/\(key.name)@\(digest) \(f.name) \(f.packageName) \(f.packageVersion)".utf8))
        return String(d.encoded.prefix(32))
    }
}
