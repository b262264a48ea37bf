import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthSupport
import Foundation
import Testing

@Suite struct ECRPublicTests {
    static let account = "123456789012"
    static let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAPUBLICROOT000001")

    func services() -> (ECRService, ECRService, Registry) {
        let registry = Registry.inMemory(clock: ManualWallClock(1_700_000_000))
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "\($0).dkr.ecr.us-east-1.localhost/\($1)" },
            proxyEndpoint: { "https://\($0).dkr.ecr.us-east-1.localhost" },
            issueToken: { _, now in ("token", now + 43200) }, downloadURL: { _, _, _, _ in "http://x" },
            publicRegistryURI: { "localhost:5000/public/\(PublicRegistry.alias(of: $0))" })
        let clock = ManualWallClock(1_700_000_000)
        return (ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: clock),
                ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: clock, flavor: .public),
                registry)
    }

    func call(_ s: ECRService, _ op: String, _ body: JSONValue) async throws -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: s.prefix + op, body: body.encoded(), principal: Self.root)
        return (r.status, try JSONValue.parseObject(r.body))
    }

    @Test func publicRepositoriesLiveInTheirOwnNamespace() async throws {
        let (priv, pub, registry) = services()
        let (status, created) = try await call(pub, "CreateRepository", ["repositoryName": "web", "catalogData": ["description": "hi"]])
        #expect(status == 200)
        guard case .object(let repo)? = created["repository"] else { Issue.record("no repository"); return }
        #expect(repo["repositoryArn"] == .string("arn:aws:ecr-public::123456789012:repository/web"))
        #expect(repo["registryId"] == .string(Self.account))
        #expect(repo["repositoryUri"] == .string("localhost:5000/public/r123456789012/web"))
        #expect(Set(repo.keys) == ["repositoryArn", "registryId", "repositoryName", "repositoryUri", "createdAt"])
        #expect(try await registry.findRepository(RepositoryKey(storedRegistryID: "public:\(Self.account)", name: "web")) != nil)
        // The private API neither sees it nor clashes with it.
        let (_, listed) = try await call(priv, "DescribeRepositories", [:])
        #expect(listed["repositories"] == .array([]))
        #expect(try await call(priv, "CreateRepository", ["repositoryName": "web"]).0 == 200)
        #expect(try await call(pub, "CreateRepository", ["repositoryName": "web"]).1["__type"] == "RepositoryAlreadyExistsException")
    }

    @Test func operationsOfTheOtherServiceAreUnknown() async throws {
        let (priv, pub, _) = services()
        #expect(try await call(pub, "PutImageTagMutability", ["repositoryName": "web", "imageTagMutability": "IMMUTABLE"]).1["__type"]
                == "UnknownOperationException")
        #expect(try await call(priv, "DescribeRegistries", [:]).1["__type"] == "UnknownOperationException")
        let r = await pub.handle(target: ECRService.targetPrefix + "CreateRepository", body: Array(#"{"repositoryName":"x1"}"#.utf8),
                                 principal: Self.root)
        #expect(r.errorType == "UnknownOperationException")
        #expect(ECRService.publicOperations.count == 23)
    }

    @Test func catalogDataIsValidatedAndMerged() async throws {
        let (_, pub, _) = services()
        _ = try await call(pub, "CreateRepository", ["repositoryName": "web"])
        #expect(try await call(pub, "PutRepositoryCatalogData", ["repositoryName": "web", "catalogData": ["aboutText": "a"]]).0 == 200)
        let (_, got) = try await call(pub, "PutRepositoryCatalogData", ["repositoryName": "web", "catalogData": ["usageText": "u"]])
        #expect(got["catalogData"] == ["aboutText": "a", "usageText": "u", "marketplaceCertified": false])
        let long = JSONValue.string(String(repeating: "d", count: 1025))
        #expect(try await call(pub, "PutRepositoryCatalogData", ["repositoryName": "web", "catalogData": ["description": long]]).1["__type"]
                == "InvalidParameterException")
        let bigLogo = JSONValue.string(Data(count: 512_001).base64EncodedString())
        #expect(try await call(pub, "PutRepositoryCatalogData", ["repositoryName": "web", "catalogData": ["logoImageBlob": bigLogo]]).1["__type"]
                == "InvalidParameterException")
        #expect(try await call(pub, "GetRepositoryCatalogData", ["repositoryName": "nope"]).1["__type"] == "RepositoryNotFoundException")
    }

    @Test func publicARNsParse() {
        #expect(PublicRegistry.parseRepositoryARN("arn:aws:ecr-public::123456789012:repository/a/b")! == ("123456789012", "a/b"))
        #expect(PublicRegistry.parseRepositoryARN("arn:aws:ecr-public:us-east-1:123456789012:repository/a") == nil)
        #expect(PublicRegistry.parseRepositoryARN("arn:aws:ecr:us-east-1:123456789012:repository/a") == nil)
        #expect(PublicRegistry.account(ofAlias: "r123456789012") == "123456789012")
        #expect(PublicRegistry.account(ofAlias: "x123456789012") == nil)
        #expect(PublicRegistry.account(ofAlias: "r12345") == nil)
    }
}
