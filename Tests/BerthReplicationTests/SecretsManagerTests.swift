import BerthAuth
import BerthCore
import BerthSecrets
import BerthStorage
import BerthSupport
import Testing

@Suite struct SecretsManagerTests {
    let store = InMemoryMetadataStore()
    let root = Principal(accountID: "111111111111", arn: Principal.rootARN("111111111111"), accessKeyID: "AKIDROOT")
    let other = Principal(accountID: "222222222222", arn: Principal.rootARN("222222222222"), accessKeyID: "AKIDOTHER")

    func service() throws -> SecretsManagerService {
        SecretsManagerService(store: store, box: try SecretBox(key: SecretBox.generateKey()), region: "us-east-1",
                              authorizer: AccountRootAuthorizer())
    }

    func call(_ s: SecretsManagerService, _ op: String, _ body: JSONValue, as p: Principal? = nil) async -> (JSONValue, String?) {
        let r = await s.handle(target: "secretsmanager.\(op)", body: body.encoded(), principal: p ?? root)
        return ((try? JSONValue.parse(r.body)) ?? .null, r.errorType)
    }

    @Test func secretsAreSealedVersionedAndReadBack() async throws {
        let s = try service()
        let value = #"{"username":"alice","accessToken":"tok"}"#
        let (created, e1) = await call(s, "CreateSecret", ["Name": "ecr-pullthroughcache/hub", "SecretString": .string(value)])
        #expect(e1 == nil)
        let arn = try #require(created["ARN"]?.stringValue)
        #expect(arn.hasPrefix("arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-pullthroughcache/hub-"))
        // At rest, the value is sealed.
        let stored = try #require(try await store.secret(account: "111111111111", name: "ecr-pullthroughcache/hub"))
        #expect(stored.versions.count == 1 && stored.versions[0].sealedString?.hasPrefix("v1:") == true)
        #expect(stored.versions[0].sealedString?.contains("alice") == false)

        let (got, e2) = await call(s, "GetSecretValue", ["SecretId": .string(arn)])
        #expect(e2 == nil && got["SecretString"]?.stringValue == value && got["VersionStages"] == ["AWSCURRENT"])
        let creds = try await s.upstreamCredentials(arn: arn)
        #expect(creds.username == "alice" && creds.accessToken == "tok")

        let (put, e3) = await call(s, "PutSecretValue", ["SecretId": "ecr-pullthroughcache/hub", "SecretString": "{\"username\":\"bob\",\"accessToken\":\"x\"}"])
        #expect(e3 == nil && put["VersionStages"] == ["AWSCURRENT"])
        let (described, _) = await call(s, "DescribeSecret", ["SecretId": .string(arn)])
        let firstVersion = try #require(created["VersionId"]?.stringValue)
        #expect(described["VersionIdsToStages"]?[firstVersion] == ["AWSPREVIOUS"])
        #expect(try await s.upstreamCredentials(arn: arn).username == "bob")
        let (prev, _) = await call(s, "GetSecretValue", ["SecretId": .string(arn), "VersionStage": "AWSPREVIOUS"])
        #expect(prev["SecretString"]?.stringValue == value)
    }

    @Test func errorsAreTheServiceTypes() async throws {
        let s = try service()
        #expect(await call(s, "CreateSecret", ["Name": "a b"]).1 == "InvalidParameterException")
        #expect(await call(s, "CreateSecret", ["Name": "x", "SecretString": "a", "SecretBinary": "YQ=="]).1 == "InvalidParameterException")
        #expect(await call(s, "CreateSecret", ["Name": .string(String(repeating: "a", count: 513))]).1 == "ValidationException")
        #expect(await call(s, "CreateSecret", [:]).1 == "ValidationException")
        #expect(await call(s, "CreateSecret", ["Name": "x", "SecretString": "a"]).1 == nil)
        #expect(await call(s, "CreateSecret", ["Name": "x", "SecretString": "b"]).1 == "ResourceExistsException")
        #expect(await call(s, "GetSecretValue", ["SecretId": "nope"]).1 == "ResourceNotFoundException")
        #expect(await call(s, "CreateSecret", ["Name": "empty"]).1 == nil)
        #expect(await call(s, "GetSecretValue", ["SecretId": "empty"]).1 == "ResourceNotFoundException")
        #expect(await call(s, "Nope", [:]).1 == "UnknownOperationException")
        #expect(await call(s, "ListSecrets", ["MaxResults": 0]).1 == "ValidationException")
        // Another account's root may not read it.
        #expect(await call(s, "GetSecretValue", ["SecretId": "arn:aws:secretsmanager:us-east-1:111111111111:secret:x"], as: other).1
                == "AccessDeniedException")
    }

    @Test func listingPagesAndDeletionWindows() async throws {
        let s = try service()
        for n in ["a", "b", "c"] { _ = await call(s, "CreateSecret", ["Name": .string(n), "SecretString": "v"]) }
        let (first, _) = await call(s, "ListSecrets", ["MaxResults": 2, "SortBy": "name", "SortOrder": "asc"])
        #expect(first["SecretList"]?.arrayValue?.compactMap { $0["Name"]?.stringValue } == ["a", "b"])
        let token = try #require(first["NextToken"]?.stringValue)
        let (second, _) = await call(s, "ListSecrets", ["MaxResults": 2, "SortBy": "name", "SortOrder": "asc", "NextToken": .string(token)])
        #expect(second["SecretList"]?.arrayValue?.compactMap { $0["Name"]?.stringValue } == ["c"])
        #expect(await call(s, "DeleteSecret", ["SecretId": "a", "RecoveryWindowInDays": 3]).1 == "InvalidParameterException")
        let (deleted, e) = await call(s, "DeleteSecret", ["SecretId": "a"])
        #expect(e == nil && deleted["DeletionDate"] != nil)
        #expect(await call(s, "GetSecretValue", ["SecretId": "a"]).1 == "InvalidRequestException")
        let (listed, _) = await call(s, "ListSecrets", ["SortBy": "name", "SortOrder": "asc"])
        #expect(listed["SecretList"]?.arrayValue?.count == 2)
        #expect(await call(s, "DeleteSecret", ["SecretId": "b", "ForceDeleteWithoutRecovery": true]).1 == nil)
        #expect(await call(s, "DescribeSecret", ["SecretId": "b"]).1 == "ResourceNotFoundException")
    }
}

extension JSONValue {
    var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }
}
