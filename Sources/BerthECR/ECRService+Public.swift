import BerthCore
import BerthRegistry
import BerthSupport
import Foundation

/// Amazon ECR Public (`SpencerFrontendService.<Operation>`, signing name `ecr-public`): the same
/// registry, with public repositories kept in their own namespace per account (see ``storeID(_:)``),
/// gallery catalog data, and anonymous pulls on `/v2/public/<alias>/<name>`.
extension ECRService {
    static let publicOperations: [String: Handler] = [
        "BatchCheckLayerAvailability": { try await $0.batchCheckLayerAvailability($1, $2, &$3) },
        "BatchDeleteImage": { try await $0.batchDeleteImage($1, $2, &$3) },
        "CompleteLayerUpload": { try await $0.completeLayerUpload($1, $2, &$3) },
        "CreateRepository": { try await $0.createPublicRepository($1, $2, &$3) },
        "DeleteRepository": { try await $0.deleteRepository($1, $2, &$3) },
        "DescribeImageTags": { try await $0.describeImageTags($1, $2, &$3) },
        "DescribeImages": { try await $0.describeImages($1, $2, &$3) },
        "DescribeRegistries": { try await $0.describeRegistries($1, $2, &$3) },
        "DescribeRepositories": { try await $0.describeRepositories($1, $2, &$3) },
        "GetAuthorizationToken": { try await $0.getPublicAuthorizationToken($1, $2, &$3) },
        "GetRegistryCatalogData": { try await $0.getRegistryCatalogData($1, $2, &$3) },
        "GetRepositoryCatalogData": { try await $0.getRepositoryCatalogData($1, $2, &$3) },
        "InitiateLayerUpload": { try await $0.initiateLayerUpload($1, $2, &$3) },
        "ListTagsForResource": { try await $0.listTagsForResource($1, $2, &$3) },
        "PutImage": { try await $0.putImage($1, $2, &$3) },
        "PutRegistryCatalogData": { try await $0.putRegistryCatalogData($1, $2, &$3) },
        "PutRepositoryCatalogData": { try await $0.putRepositoryCatalogData($1, $2, &$3) },
        "TagResource": { try await $0.tagResource($1, $2, &$3) },
        "UntagResource": { try await $0.untagResource($1, $2, &$3) },
        "UploadLayerPart": { try await $0.uploadLayerPart($1, $2, &$3) },
        "SetRepositoryPolicy": { try await $0.setRepositoryPolicy($1, $2, &$3) },
        "GetRepositoryPolicy": { try await $0.getRepositoryPolicy($1, $2, &$3) },
        "DeleteRepositoryPolicy": { try await $0.deleteRepositoryPolicy($1, $2, &$3) },
    ]

    static let maxLogoBytes = 512_000

    func publicRegistryARN(_ account: String) -> String { ARN.ecrPublicRegistry(account: account).description }

    /// A public repository's catalog data from `catalogData`, validated against the model's limits.
    func parseCatalogData(_ c: Params, into existing: PublicCatalogData = .init()) throws -> PublicCatalogData {
        var out = existing
        func text(_ field: String, max: Int) throws -> String? {
            guard let s = try c.string(field) else { return nil }
            guard s.utf8.count <= max else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "catalogData.\(field)", .lengthAtMost(max)))
            }
            return s
        }
        func list(_ field: String) throws -> [String]? {
            guard let l = try c.stringList(field) else { return nil }
            guard l.count <= 50, l.allSatisfy({ (1...50).contains($0.utf8.count) }) else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "catalogData.\(field)", .other("Member must have at most 50 entries of 1 to 50 characters")))
            }
            return l
        }
        if let v = try text("description", max: 1024) { out.description = v }
        if let v = try text("aboutText", max: 25_600) { out.aboutText = v }
        if let v = try text("usageText", max: 25_600) { out.usageText = v }
        if let v = try list("architectures") { out.architectures = v }
        if let v = try list("operatingSystems") { out.operatingSystems = v }
        if let logo = try c.string("logoImageBlob") {
            guard let data = Data(base64Encoded: logo) else {
                throw ECRError.serialization("Unable to decode 'catalogData.logoImageBlob': it is not valid base64")
            }
            guard data.count <= Self.maxLogoBytes else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "catalogData.logoImageBlob", .lengthAtMost(Self.maxLogoBytes)))
            }
            out.logoBase64 = data.isEmpty ? nil : logo
        }
        return out
    }

    func catalogDataJSON(_ key: RepositoryKey, _ c: PublicCatalogData?) -> JSONValue {
        var o: [String: JSONValue] = ["marketplaceCertified": false]
        guard let c else { return .object(o) }
        if let v = c.description { o["description"] = .string(v) }
        if let v = c.aboutText { o["aboutText"] = .string(v) }
        if let v = c.usageText { o["usageText"] = .string(v) }
        if let v = c.architectures { o["architectures"] = .array(v.map { .string($0) }) }
        if let v = c.operatingSystems { o["operatingSystems"] = .array(v.map { .string($0) }) }
        if c.logoBase64 != nil { o["logoUrl"] = .string(env.publicLogoURL(wireID(key), key.name)) }
        return .object(o)
    }

    func createPublicRepository(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "CreateRepository", key)
        var settings = RepositorySettings()
        if let c = try p.object("catalogData") { settings.catalog = try parseCatalogData(c) }
        settings.tags = try parseTags(p)
        guard settings.tags.count <= Self.maxPublicTags else {
            throw ECRError.tooManyTags(limit: Self.maxPublicTags)
        }
        guard try await registry.createRepository(key, settings: settings) else {
            throw BerthError.repositoryAlreadyExists(key.name)
        }
        let r = try await registry.repository(key)
        return ["repository": repositoryJSON(r), "catalogData": catalogDataJSON(key, r.settings.catalog)]
    }

    func getRepositoryCatalogData(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "GetRepositoryCatalogData", key)
        let r = try await registry.repository(key)
        return ["catalogData": catalogDataJSON(key, r.settings.catalog)]
    }

    func putRepositoryCatalogData(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        guard let c = try p.object("catalogData") else { throw p.missing("catalogData") }
        try await authorize(principal, "PutRepositoryCatalogData", key)
        let s = try await registry.updateSettings(key) { $0.catalog = try self.parseCatalogData(c, into: $0.catalog ?? .init()) }
        return ["catalogData": catalogDataJSON(key, s.catalog)]
    }

    func getRegistryCatalogData(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await authorizer.authorize(principal, action: "ecr-public:GetRegistryCatalogData", resource: publicRegistryARN(principal.accountID))
        let name = try await registry.publicRegistryDisplayName(of: principal.accountID)
        return ["registryCatalogData": name.map { ["displayName": .string($0)] } ?? [:]]
    }

    func putRegistryCatalogData(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let name = try p.string("displayName")
        if let name, name.utf8.count > 100 {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "displayName", .lengthAtMost(100)))
        }
        try await authorizer.authorize(principal, action: "ecr-public:PutRegistryCatalogData", resource: publicRegistryARN(principal.accountID))
        if let name { try await registry.putPublicRegistryDisplayName(of: principal.accountID, name) }
        let stored = try await registry.publicRegistryDisplayName(of: principal.accountID)
        return ["registryCatalogData": stored.map { ["displayName": .string($0)] } ?? [:]]
    }

    func describeRegistries(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        _ = try p.maxResults(1, 1000)
        _ = try ECRService.decodeToken(try p.string("nextToken"))
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr-public:DescribeRegistries", resource: publicRegistryARN(account))
        let alias: JSONValue = ["name": .string(PublicRegistry.alias(of: account)), "status": "ACTIVE",
                                "primaryRegistryAlias": true, "defaultRegistryAlias": true]
        return ["registries": [[
            "registryId": .string(account), "registryArn": .string(publicRegistryARN(account)),
            "registryUri": .string(env.publicRegistryURI(account)), "verified": false, "aliases": [alias],
        ]]]
    }

    func describeImageTags(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DescribeImageTags", key)
        try await requireRepository(key)
        let limit = try p.maxResults(1, 1000) ?? Self.defaultPageSize
        let after = try ECRService.decodeToken(try p.string("nextToken"))
        let page = try await registry.tags(key, PageRequest(limit: limit, last: after))
        var details: [JSONValue] = []
        for tag in page.items {
            guard let digest = try await registry.resolveTag(tag, in: key),
                  let image = try await registry.image(digest, in: key) else { continue }
            var detail: [String: JSONValue] = [
                "imageDigest": .string(digest.description), "imageSizeInBytes": .int(image.imageSize),
                "imagePushedAt": .double(image.pushedAt), "imageManifestMediaType": .string(image.mediaType),
            ]
            if let a = image.artifactType { detail["artifactMediaType"] = .string(a) }
            details.append(["imageTag": .string(tag), "createdAt": .double(image.pushedAt), "imageDetail": .object(detail)])
        }
        var out: [String: JSONValue] = ["imageTagDetails": .array(details)]
        if let next = page.next { out["nextToken"] = .string(ECRService.encodeToken(next)) }
        return .object(out)
    }

    func getPublicAuthorizationToken(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await authorizer.authorize(principal, action: "ecr-public:GetAuthorizationToken", resource: "*")
        let (token, expiresAt) = try env.issueToken(principal, clock.now())
        return ["authorizationData": [
            "authorizationToken": .string(Data("AWS:\(token)".utf8).base64EncodedString()), "expiresAt": .double(expiresAt),
        ]]
    }
}
