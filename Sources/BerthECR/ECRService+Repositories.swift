import BerthCore
import BerthRegistry
import BerthSupport
import Foundation

extension ECRService {
    static let maxTags = 50
    /// ECR Public allows 200 tags a repository (TagList max 200 in its model).
    static let maxPublicTags = 200
    /// The page size of list operations called without maxResults (ListImages, DescribeImages,
    /// DescribeRepositories, DescribeImageScanFindings, DescribeImageTags): 100, as AWS documents.
    static let defaultPageSize = 100

    /// The most tags a repository of this API may carry.
    var tagLimit: Int { flavor == .public ? Self.maxPublicTags : Self.maxTags }

    func parseMutability(_ p: Params) throws -> (TagMutability, [String])? {
        guard let m = try p.string("imageTagMutability") else {
            if try p.list("imageTagMutabilityExclusionFilters") != nil {
                throw ECRError.invalidParameter("imageTagMutabilityExclusionFilters can only be specified with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION")
            }
            return nil
        }
        guard let mutability = TagMutability(rawValue: m) else {
            throw ECRError.invalidParameter(
                ValidationMessage(.text("\(m)"), at: "imageTagMutability", .oneOf(["MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"])))
        }
        let filters = try p.objectList("imageTagMutabilityExclusionFilters") ?? []
        let withExclusion = mutability.hasExclusions
        if withExclusion, filters.isEmpty {
            throw ECRError.invalidParameter("imageTagMutabilityExclusionFilters must be specified when imageTagMutability is \(m)")
        }
        if !withExclusion, !filters.isEmpty {
            throw ECRError.invalidParameter("imageTagMutabilityExclusionFilters can only be specified with IMMUTABLE_WITH_EXCLUSION or MUTABLE_WITH_EXCLUSION")
        }
        guard filters.count <= 5 else {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "imageTagMutabilityExclusionFilters", .lengthAtMost(5)))
        }
        var values: [String] = []
        for f in filters {
            let type = try f.requiredString("filterType")
            guard type == "WILDCARD" else {
                throw ECRError.invalidParameter(ValidationMessage(.text("\(type)"), at: "imageTagMutabilityExclusionFilters.member.filterType", .oneOf(["WILDCARD"])))
            }
            let v = try f.requiredString("filter")
            guard (1...128).contains(v.utf8.count), v.utf8.allSatisfy({ Tag.isValid(String(UnicodeScalar($0))) || $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }) else {
                throw ECRError.invalidParameter(ValidationMessage(.text("\(v)"), at: "imageTagMutabilityExclusionFilters.member.filter", .pattern("^[0-9a-zA-Z._*-]{1,128}$")))
            }
            values.append(v)
        }
        return (mutability, values)
    }

    func parseTags(_ p: Params, _ field: String = "tags") throws -> [ResourceTag] {
        guard let list = try p.objectList(field) else { return [] }
        var out: [ResourceTag] = []
        for t in list {
            guard let k = try t.string("Key") else {
                throw ECRError.tagKeyMissing
            }
            let v = try t.string("Value") ?? ""
            guard (1...128).contains(k.utf8.count), !k.hasPrefix("aws:") else {
                throw ECRError.invalidTagKey(k)
            }
            guard v.utf8.count <= 256 else {
                throw ECRError.invalidTagValue(key: k)
            }
            out.removeAll { $0.key == k }
            out.append(ResourceTag(key: k, value: v))
        }
        return out
    }

    func createRepository(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let requestTags = try p.list("tags") == nil ? nil : try parseTags(p)
        try await authorize(principal, "CreateRepository", key, context: requestTags.map(Self.tagContext) ?? AuthorizationContext())
        var settings = RepositorySettings()
        if let (m, filters) = try parseMutability(p) {
            settings.imageTagMutability = m
            settings.exclusionFilters = filters
        }
        if let scan = try p.object("imageScanningConfiguration") {
            settings.scanOnPush = try scan.bool("scanOnPush") ?? false
        }
        if let enc = try p.object("encryptionConfiguration") {
            let type = try enc.requiredString("encryptionType")
            guard ["AES256", "KMS", "KMS_DSSE"].contains(type) else {
                throw ECRError.invalidParameter(ValidationMessage(.text("\(type)"), at: "encryptionConfiguration.encryptionType", .oneOf(["AES256", "KMS", "KMS_DSSE"])))
            }
            let kms = try enc.string("kmsKey")
            if type == "AES256", kms != nil {
                throw ECRError.invalidParameter("Invalid parameter at 'encryptionConfiguration': kmsKey can only be specified when encryptionType is KMS or KMS_DSSE")
            }
            if let kms, !(1...2048).contains(kms.utf8.count) {
                throw ECRError.invalidParameter("Invalid parameter at 'encryptionConfiguration.kmsKey' failed to satisfy constraint: 'Member must have length between 1 and 2048'")
            }
            settings.encryptionType = type
            settings.kmsKey = type == "AES256" ? nil
                : (kms ?? ARN(service: "kms", region: requestRegion, account: key.registry.account, resource: "alias/aws/ecr").description)
        }
        settings.tags = try parseTags(p)
        guard settings.tags.count <= Self.maxTags else {
            throw ECRError.tooManyTags(limit: Self.maxTags)
        }
        guard try await registry.createRepository(key, settings: settings) else {
            throw BerthError.repositoryAlreadyExists(key.name)
        }
        return ["repository": repositoryJSON(try await registry.repository(key))]
    }

    func describeRepositories(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let reg = try registryID(p, principal)
        ctx.registryID = reg
        let names = try p.stringList("repositoryNames")
        let maxResults = try p.maxResults(1, 1000)
        let token = try ECRService.decodeToken(try p.string("nextToken"))
        var records: [RepositoryRecord] = []
        var next: String? = nil
        if let names {
            try p.checkCount("repositoryNames", names.count, 1...100)
            if maxResults != nil || token != nil {
                throw ECRError.invalidParameter("Invalid parameter: maxResults and nextToken cannot be specified together with repositoryNames")
            }
            for n in names {
                ctx.repositoryName = n
                let key: RepositoryKey
                do { key = RepositoryKey(registryID: storeID(reg), name: try RepositoryName(n)) } catch {
                    throw ECRError.invalidParameter("Invalid parameter at 'repositoryNames' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")
                }
                try await authorize(principal, "DescribeRepositories", key)
                records.append(try await registry.repository(key))
            }
        } else {
            try await authorizer.authorize(principal, action: "\(actionPrefix)DescribeRepositories",
                                           resource: repositoryARNPrefix(reg) + "*")
            // Without maxResults, ECR (and ECR Public) return up to 100 repositories and a nextToken.
            let limit = maxResults ?? Self.defaultPageSize
            let page = try await registry.catalogRecords(storeID(reg), PageRequest(limit: limit, last: token))
            records = page.items
            next = page.next.map(ECRService.encodeToken)
        }
        var out: [String: JSONValue] = ["repositories": .array(records.map(repositoryJSON))]
        if let next { out["nextToken"] = .string(next) }
        return .object(out)
    }

    func deleteRepository(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DeleteRepository", key)
        let record = try await registry.deleteRepository(key, force: try p.bool("force") ?? false)
        return ["repository": repositoryJSON(record)]
    }

    func putImageTagMutability(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        _ = try p.requiredString("imageTagMutability")
        try await authorize(principal, "PutImageTagMutability", key)
        guard let (m, filters) = try parseMutability(p) else { throw p.missing("imageTagMutability") }
        let s = try await registry.updateSettings(key) {
            $0.imageTagMutability = m
            $0.exclusionFilters = filters
        }
        var out: [String: JSONValue] = [
            "registryId": .string(wireID(key)), "repositoryName": .string(key.name),
            "imageTagMutability": .string(s.imageTagMutability.rawValue),
        ]
        if !s.exclusionFilters.isEmpty {
            out["imageTagMutabilityExclusionFilters"] = .array(s.exclusionFilters.map { ["filterType": "WILDCARD", "filter": .string($0)] })
        }
        return .object(out)
    }

    func resourceKey(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) throws -> RepositoryKey {
        let arn = try p.requiredString("resourceArn")
        let parsed: (account: String, name: String)?
        if flavor == .public {
            // ECR Public's Arn: 1–2048 characters in the model (ECR's has no length constraint).
            guard (1...2048).contains(arn.utf8.count) else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "resourceArn", .other("Member must have length \(arn.isEmpty ? "greater than or equal to 1" : "less than or equal to 2048")")))
            }
            parsed = PublicRegistry.parseRepositoryARN(arn)
        } else {
            parsed = ResourceARN.parseRepository(arn).flatMap { $0.region == requestRegion ? ($0.account, $0.name) : nil }
        }
        guard let parsed else {
            throw ECRError.invalidParameter("Invalid parameter at 'resourceArn' failed to satisfy constraint: 'Invalid ARN' (value: '\(arn)')")
        }
        ctx.registryID = parsed.account
        ctx.repositoryName = parsed.name
        return RepositoryKey(storedRegistryID: storeID(parsed.account), name: parsed.name)
    }

    func tagResource(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try resourceKey(p, principal, &ctx)
        guard try p.list("tags") != nil else { throw p.missing("tags") }
        let tags = try parseTags(p)
        try await authorize(principal, "TagResource", key, context: Self.tagContext(tags))
        let limit = tagLimit
        _ = try await registry.updateSettings(key) { s in
            for t in tags {
                s.tags.removeAll { $0.key == t.key }
                s.tags.append(t)
            }
            guard s.tags.count <= limit else { throw ECRError.tooManyTags(limit: limit) }
        }
        return [:]
    }

    func untagResource(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try resourceKey(p, principal, &ctx)
        guard let keys = try p.stringList("tagKeys") else { throw p.missing("tagKeys") }
        if flavor == .public {
            // ECR Public's model: TagKeyList max 200, each TagKey 1–128 characters.
            guard keys.count <= Self.maxPublicTags else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "tagKeys", .lengthAtMost(Self.maxPublicTags)))
            }
            for k in keys where !(1...128).contains(k.utf8.count) {
                throw ECRError.tagKeyLength(k)
            }
        }
        try await authorize(principal, "UntagResource", key)
        _ = try await registry.updateSettings(key) { s in s.tags.removeAll { keys.contains($0.key) } }
        return [:]
    }

    func listTagsForResource(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try resourceKey(p, principal, &ctx)
        try await authorize(principal, "ListTagsForResource", key)
        let r = try await registry.repository(key)
        return ["tags": .array(r.settings.tags.map { ["Key": .string($0.key), "Value": .string($0.value)] })]
    }

    func describeRegistry(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await authorizer.authorize(principal, action: "ecr:DescribeRegistry", resource: registryARN(principal.accountID))
        return ["registryId": .string(principal.accountID), "replicationConfiguration": ["rules": []]]
    }

    func accountSettingName(_ p: Params) throws -> AccountSetting {
        let name = try p.requiredString("name")
        guard let setting = AccountSetting(rawValue: name) else {
            throw ECRError.validation("Invalid account setting name '\(name)'. Valid names are: \(AccountSetting.allCases.map(\.rawValue).sorted().joined(separator: ", "))")
        }
        return setting
    }

    func getAccountSetting(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let setting = try accountSettingName(p)
        try await authorizer.authorize(principal, action: "ecr:GetAccountSetting", resource: registryARN(principal.accountID))
        let value = try await registry.accountSetting(setting, of: storeID(principal.accountID))
        return ["name": .string(setting.rawValue), "value": .string(value)]
    }

    func putAccountSetting(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let setting = try accountSettingName(p)
        let value = try p.requiredString("value")
        guard setting.values.contains(value) else {
            throw ECRError.validation("Invalid value '\(value)' for account setting \(setting.rawValue). Valid values are: \(setting.values.joined(separator: ", "))")
        }
        try await authorizer.authorize(principal, action: "ecr:PutAccountSetting", resource: registryARN(principal.accountID))
        try await registry.putAccountSetting(setting, of: storeID(principal.accountID), value: value)
        return ["name": .string(setting.rawValue), "value": .string(value)]
    }

    func getAuthorizationToken(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let ids = try p.stringList("registryIds")
        if let ids {
            guard (1...10).contains(ids.count), ids.allSatisfy(AccountID.isValid) else {
                throw ECRError.invalidParameter("Invalid parameter at 'registryIds' failed to satisfy constraint: 'Member must have length between 1 and 10 and each id must be 12 digits'")
            }
        }
        try await authorizer.authorize(principal, action: "ecr:GetAuthorizationToken", resource: "*")
        let now = clock.now()
        let (token, expiresAt) = try env.issueToken(principal, now)
        let encoded = Data("AWS:\(token)".utf8).base64EncodedString()
        let registries = ids ?? [principal.accountID]
        return ["authorizationData": .array(registries.map { id in
            ["authorizationToken": .string(encoded), "expiresAt": .double(expiresAt), "proxyEndpoint": .string(env.proxyEndpoint(id))]
        })]
    }
}
