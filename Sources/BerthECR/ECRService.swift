import BerthCore
import BerthRegistry
import BerthReplication
import BerthSupport
import Foundation
import Logging

/// What the ECR API needs from its deployment, injected so the API stays free of HTTP and crypto.
public struct ECREnvironment: Sendable {
    /// The default region (requests that name none).
    public var region: String
    /// The regions requests may address (each account × region is its own registry).
    public var regions: RegionSet
    /// `repositoryUri` of a repository.
    public var repositoryURI: @Sendable (_ account: String, _ name: String) -> String
    /// `proxyEndpoint` for GetAuthorizationToken, e.g. `https://123456789012.dkr.ecr.us-east-1.example.com`.
    public var proxyEndpoint: @Sendable (_ account: String) -> String
    /// Issues a registry token for a principal: the token (to be sent as `AWS:<token>`) and its expiry.
    public var issueToken: @Sendable (_ principal: Principal, _ now: Double) throws -> (token: String, expiresAt: Double)
    /// A presigned URL that serves a layer's bytes without other credentials.
    public var downloadURL: @Sendable (_ principal: Principal, _ repository: RepositoryKey, _ digest: Digest, _ now: Double) async throws -> String
    /// `repositoryUri` of an ECR Public repository: `<host>/public/<alias>/<name>`.
    public var publicRepositoryURI: @Sendable (_ account: String, _ name: String) -> String
    /// The registry URI of an account's public registry: `<host>/public/<alias>`.
    public var publicRegistryURI: @Sendable (_ account: String) -> String
    /// Where a public repository's gallery logo is served (`logoUrl`).
    public var publicLogoURL: @Sendable (_ account: String, _ name: String) -> String

    public init(region: String, repositoryURI: @escaping @Sendable (String, String) -> String,
                proxyEndpoint: @escaping @Sendable (String) -> String,
                issueToken: @escaping @Sendable (Principal, Double) throws -> (token: String, expiresAt: Double),
                downloadURL: @escaping @Sendable (Principal, RepositoryKey, Digest, Double) async throws -> String,
                publicRegistryURI: @escaping @Sendable (String) -> String = { "localhost/public/\(PublicRegistry.alias(of: $0))" },
                publicLogoURL: @escaping @Sendable (String, String) -> String = { "http://localhost/gallery/\(PublicRegistry.alias(of: $0))/\($1)/logo" }) {
        self.publicRegistryURI = publicRegistryURI
        self.publicLogoURL = publicLogoURL
        self.publicRepositoryURI = { account, name in "\(publicRegistryURI(account))/\(name)" }
        self.region = region
        self.regions = .single(region)
        self.repositoryURI = repositoryURI
        self.proxyEndpoint = proxyEndpoint
        self.issueToken = issueToken
        self.downloadURL = downloadURL
    }
}

/// Per-request facts used by error messages.
struct OperationContext {
    var registryID: String
    var repositoryName: String?
}

/// A response of the AWS JSON 1.1 protocol.
public struct ECRResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    /// The `__type` of an error response (for `x-amzn-ErrorType`).
    public let errorType: String?
    /// The request's members as parsed (for the audit trail, which redacts them); nil when the body was
    /// not a JSON object.
    public var requestParameters: [String: JSONValue]? = nil
    /// The repository the operation addressed, when it named one.
    public var repository: RepositoryKey? = nil
    /// The error's message, for an error response.
    public var errorMessage: String? = nil
}

/// The Amazon ECR API (`AmazonEC2ContainerRegistry_V20150921.<Operation>`) over the registry service.
public final class ECRService: Sendable {
    public static let targetPrefix = "AmazonEC2ContainerRegistry_V20150921."
    public static let publicTargetPrefix = "SpencerFrontendService."

    /// Which API an instance serves: Amazon ECR, or Amazon ECR Public over the same registry.
    public enum Flavor: Sendable, Equatable {
        case `private`
        case `public`
    }
    public let flavor: Flavor
    let registry: Registry
    let authorizer: any Authorizer
    let env: ECREnvironment
    let clock: any WallClock
    let logger: Logger
    /// The pull through cache (its rules are ECR operations); nil: those operations are refused.
    let pullThrough: PullThroughCache?
    /// Replication: DescribeImageReplicationStatus reads a destination through it when the job was purged.
    let replication: ReplicationService?
    /// The last lifecycle policy preview per repository (`ECRService+Lifecycle.swift`).

    public init(registry: Registry, authorizer: any Authorizer, environment: ECREnvironment,
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth.ecr"), flavor: Flavor = .private,
                pullThrough: PullThroughCache? = nil, replication: ReplicationService? = nil) {
        self.flavor = flavor
        self.replication = replication
        self.pullThrough = pullThrough
        self.registry = registry
        self.authorizer = authorizer
        self.env = environment
        self.clock = clock
        self.logger = logger
    }

    typealias Handler = @Sendable (ECRService, Params, Principal, inout OperationContext) async throws -> JSONValue

    static let operations: [String: Handler] = [
        "CreateRepository": { try await $0.createRepository($1, $2, &$3) },
        "DescribeRepositories": { try await $0.describeRepositories($1, $2, &$3) },
        "DeleteRepository": { try await $0.deleteRepository($1, $2, &$3) },
        "ListImages": { try await $0.listImages($1, $2, &$3) },
        "DescribeImages": { try await $0.describeImages($1, $2, &$3) },
        "BatchGetImage": { try await $0.batchGetImage($1, $2, &$3) },
        "BatchDeleteImage": { try await $0.batchDeleteImage($1, $2, &$3) },
        "PutImage": { try await $0.putImage($1, $2, &$3) },
        "BatchCheckLayerAvailability": { try await $0.batchCheckLayerAvailability($1, $2, &$3) },
        "InitiateLayerUpload": { try await $0.initiateLayerUpload($1, $2, &$3) },
        "UploadLayerPart": { try await $0.uploadLayerPart($1, $2, &$3) },
        "CompleteLayerUpload": { try await $0.completeLayerUpload($1, $2, &$3) },
        "GetDownloadUrlForLayer": { try await $0.getDownloadUrlForLayer($1, $2, &$3) },
        "PutImageTagMutability": { try await $0.putImageTagMutability($1, $2, &$3) },
        "TagResource": { try await $0.tagResource($1, $2, &$3) },
        "UntagResource": { try await $0.untagResource($1, $2, &$3) },
        "ListTagsForResource": { try await $0.listTagsForResource($1, $2, &$3) },
        "DescribeRegistry": { try await $0.describeRegistry($1, $2, &$3) },
        "PutReplicationConfiguration": { try await $0.putReplicationConfiguration($1, $2, &$3) },
        "DescribeImageReplicationStatus": { try await $0.describeImageReplicationStatus($1, $2, &$3) },
        "GetAccountSetting": { try await $0.getAccountSetting($1, $2, &$3) },
        "PutAccountSetting": { try await $0.putAccountSetting($1, $2, &$3) },
        "ListImageReferrers": { try await $0.listImageReferrers($1, $2, &$3) },
        "GetAuthorizationToken": { try await $0.getAuthorizationToken($1, $2, &$3) },
        "PutImageScanningConfiguration": { try await $0.putImageScanningConfiguration($1, $2, &$3) },
        "PutRegistryScanningConfiguration": { try await $0.putRegistryScanningConfiguration($1, $2, &$3) },
        "GetRegistryScanningConfiguration": { try await $0.getRegistryScanningConfiguration($1, $2, &$3) },
        "BatchGetRepositoryScanningConfiguration": { try await $0.batchGetRepositoryScanningConfiguration($1, $2, &$3) },
        "StartImageScan": { try await $0.startImageScan($1, $2, &$3) },
        "DescribeImageScanFindings": { try await $0.describeImageScanFindings($1, $2, &$3) },
        "SetRepositoryPolicy": { try await $0.setRepositoryPolicy($1, $2, &$3) },
        "GetRepositoryPolicy": { try await $0.getRepositoryPolicy($1, $2, &$3) },
        "DeleteRepositoryPolicy": { try await $0.deleteRepositoryPolicy($1, $2, &$3) },
        "PutRegistryPolicy": { try await $0.putRegistryPolicy($1, $2, &$3) },
        "GetRegistryPolicy": { try await $0.getRegistryPolicy($1, $2, &$3) },
        "DeleteRegistryPolicy": { try await $0.deleteRegistryPolicy($1, $2, &$3) },
        "PutLifecyclePolicy": { try await $0.putLifecyclePolicy($1, $2, &$3) },
        "GetLifecyclePolicy": { try await $0.getLifecyclePolicy($1, $2, &$3) },
        "DeleteLifecyclePolicy": { try await $0.deleteLifecyclePolicy($1, $2, &$3) },
        "StartLifecyclePolicyPreview": { try await $0.startLifecyclePolicyPreview($1, $2, &$3) },
        "GetLifecyclePolicyPreview": { try await $0.getLifecyclePolicyPreview($1, $2, &$3) },
        "UpdateImageStorageClass": { try await $0.updateImageStorageClass($1, $2, &$3) },
        "RegisterPullTimeUpdateExclusion": { try await $0.registerPullTimeUpdateExclusion($1, $2, &$3) },
        "DeregisterPullTimeUpdateExclusion": { try await $0.deregisterPullTimeUpdateExclusion($1, $2, &$3) },
        "ListPullTimeUpdateExclusions": { try await $0.listPullTimeUpdateExclusions($1, $2, &$3) },
        "CreatePullThroughCacheRule": { try await $0.createPullThroughCacheRule($1, $2, &$3) },
        "DescribePullThroughCacheRules": { try await $0.describePullThroughCacheRules($1, $2, &$3) },
        "UpdatePullThroughCacheRule": { try await $0.updatePullThroughCacheRule($1, $2, &$3) },
        "DeletePullThroughCacheRule": { try await $0.deletePullThroughCacheRule($1, $2, &$3) },
        "ValidatePullThroughCacheRule": { try await $0.validatePullThroughCacheRule($1, $2, &$3) },
        "CreateRepositoryCreationTemplate": { try await $0.createRepositoryCreationTemplate($1, $2, &$3) },
        "DescribeRepositoryCreationTemplates": { try await $0.describeRepositoryCreationTemplates($1, $2, &$3) },
        "UpdateRepositoryCreationTemplate": { try await $0.updateRepositoryCreationTemplate($1, $2, &$3) },
        "DeleteRepositoryCreationTemplate": { try await $0.deleteRepositoryCreationTemplate($1, $2, &$3) },
    ]

    /// Whether the `X-Amz-Target` names an operation of this service (known or not).
    public static func handles(target: String) -> Bool { target.hasPrefix(targetPrefix) }

    /// The target prefix of this instance's API.
    public var prefix: String { flavor == .public ? Self.publicTargetPrefix : Self.targetPrefix }

    /// Runs one operation for an authenticated principal.
    public func handle(target: String, body: [UInt8], principal: Principal) async -> ECRResponse {
        // The region the request was signed for selects the registry (each account × region is one).
        guard let region = principal.region, RequestRegion.current?.name != region else {
            return await handleInRegion(target: target, body: body, principal: principal)
        }
        return await RequestRegion.$current.withValue(RequestRegion(region, in: env.regions)) {
            await handleInRegion(target: target, body: body, principal: principal)
        }
    }

    func handleInRegion(target: String, body: [UInt8], principal: Principal) async -> ECRResponse {
        var ctx = OperationContext(registryID: principal.accountID, repositoryName: nil)
        var members: [String: JSONValue]?
        var response: ECRResponse
        do {
            let name = String(target.dropFirst(prefix.count))
            let table = flavor == .public ? Self.publicOperations : Self.operations
            guard target.hasPrefix(prefix), let op = table[name] else {
                throw ECRError.unknownOperation(target)
            }
            members = try JSONValue.parseObject(body)
            let result = try await op(self, Params(members ?? [:]), principal, &ctx)
            response = ECRResponse(status: 200, body: result.encoded(), errorType: nil)
        } catch let e as ECRError {
            response = Self.errorResponse(e)
        } catch let e as PullThroughRuleError {
            response = Self.errorResponse(Self.ruleError(e))
        } catch let e as CreationTemplateError {
            response = Self.errorResponse(Self.templateError(e))
        } catch let e as BerthError {
            if case .internalError(let m) = e { logger.error("ecr operation failed", metadata: ["error": "\(m)"]) }
            response = Self.errorResponse(ECRErrorMapping.map(e, ctx))
        } catch {
            logger.error("ecr operation failed", metadata: ["error": "\(error)"])
            response = Self.errorResponse(.server)
        }
        response.requestParameters = members
        if let repository = ctx.repositoryName {
            response.repository = RepositoryKey(storedRegistryID: storeID(ctx.registryID), name: repository)
        }
        return response
    }

    public static func errorResponse(_ e: ECRError) -> ECRResponse {
        ECRResponse(status: e.status, body: e.json, errorType: e.type, errorMessage: e.message)
    }

    // MARK: shared helpers

    /// The registry a request addresses: its `registryId`, else the caller's account.
    func registryID(_ p: Params, _ principal: Principal) throws(ECRError) -> String {
        guard let id = try p.string("registryId") else { return principal.accountID }
        guard AccountID.isValid(id) else {
            throw .invalidParameter("Invalid parameter at 'registryId' failed to satisfy constraint: 'must satisfy regular expression '[0-9]{12}''")
        }
        return id
    }

    func repositoryKey(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext, field: String = "repositoryName") throws -> RepositoryKey {
        let registry = try registryID(p, principal)
        ctx.registryID = registry
        let name = try p.requiredString(field)
        ctx.repositoryName = name
        // RepositoryName: 2–256 characters on ECR, 2–205 on ECR Public.
        let maxLength = flavor == .public ? 205 : 256
        guard name.utf8.count >= 2, name.utf8.count <= maxLength else {
            throw ECRError.invalidParameter("Invalid parameter at '\(field)' failed to satisfy constraint: 'Member must have length between 2 and \(maxLength)'")
        }
        do {
            return RepositoryKey(registryID: storeID(registry), name: try RepositoryName(name))
        } catch {
            throw ECRError.invalidParameter(
                "Invalid parameter at '\(field)' failed to satisfy constraint: 'must satisfy regular expression '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''")
        }
    }

    func arn(_ key: RepositoryKey) -> String {
        switch flavor {
        case .private:
            ARN.ecrRepository(region: key.registry.regionName(home: env.regions.home), account: key.registry.account, name: key.name).description
        case .public: repositoryARNPrefix(wireID(key)) + key.name
        }
    }

    /// `arn:aws:ecr:<region>:<account>:repository/`, or ECR Public's `arn:aws:ecr-public::<account>:repository/`.
    func repositoryARNPrefix(_ account: String) -> String {
        switch flavor {
        case .private: ARN.ecrRepository(region: requestRegion, account: account, name: "").description
        case .public: ARN.ecrPublicRepository(account: account, name: "").description
        }
    }

    /// `ecr:` or `ecr-public:`.
    var actionPrefix: String { flavor == .public ? "ecr-public:" : "ecr:" }

    /// The registry id repositories of `account` are stored under: the account for private
    /// repositories, `public:<account>` for ECR Public ones (a separate namespace, as in AWS).
    func storeID(_ account: String) -> String {
        (flavor == .public ? RegistryID.public(account) : RequestRegion.privateRegistry(account)).storedValue
    }

    /// The region of the request being served (its registry's region), or the default one.
    var requestRegion: String { RequestRegion.name(or: env.region) }

    /// The account id a stored repository key shows on the wire.
    func wireID(_ key: RepositoryKey) -> String {
        key.registry.account
    }

    func authorize(_ principal: Principal, _ action: String, _ key: RepositoryKey,
                   context: AuthorizationContext = AuthorizationContext()) async throws {
        try await authorizer.authorize(principal, action: "\(actionPrefix)\(action)", resource: arn(key), context: context)
    }

    /// `aws:RequestTag/*` and `aws:TagKeys` of a request that carries tags.
    static func tagContext(_ tags: [ResourceTag]) -> AuthorizationContext {
        AuthorizationContext(requestTags: Dictionary(tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }))
    }

    func repositoryJSON(_ r: RepositoryRecord) -> JSONValue {
        if flavor == .public {
            return ["repositoryArn": .string(arn(r.key)), "registryId": .string(wireID(r.key)), "repositoryName": .string(r.key.name),
                    "repositoryUri": .string(env.publicRepositoryURI(wireID(r.key), r.key.name)), "createdAt": .double(r.createdAt)]
        }
        var o: [String: JSONValue] = [
            "repositoryArn": .string(arn(r.key)),
            "registryId": .string(wireID(r.key)),
            "repositoryName": .string(r.key.name),
            "repositoryUri": .string(env.repositoryURI(r.key.registry.account, r.key.name)),
            "createdAt": .double(r.createdAt),
            "imageTagMutability": .string(r.settings.imageTagMutability.rawValue),
            "imageScanningConfiguration": ["scanOnPush": .bool(r.settings.scanOnPush)],
        ]
        var enc: [String: JSONValue] = ["encryptionType": .string(r.settings.encryptionType)]
        if let k = r.settings.kmsKey { enc["kmsKey"] = .string(k) }
        o["encryptionConfiguration"] = .object(enc)
        if !r.settings.exclusionFilters.isEmpty {
            o["imageTagMutabilityExclusionFilters"] = .array(r.settings.exclusionFilters.map {
                ["filterType": "WILDCARD", "filter": .string($0)]
            })
        }
        return .object(o)
    }

    /// `nextToken` values are opaque: base64 of the last key returned.
    static func encodeToken(_ last: String) -> String { Data(last.utf8).base64EncodedString() }

    static func decodeToken(_ token: String?) throws(ECRError) -> String? {
        guard let token else { return nil }
        guard let data = Data(base64Encoded: token), let s = String(data: data, encoding: .utf8) else {
            throw .invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'")
        }
        return s
    }
}
