import BerthCore
@testable import BerthKMS
import BerthPolicy
import BerthStorage
import BerthSupport
import Crypto
import Foundation
import Testing

/// Keys and aliases are regional: each account × region has its own (home region us-east-1, eu-west-1).
@Suite struct KeyRegionTests {
    static let regions = RegionSet(home: "us-east-1", listed: ["eu-west-1"])
    let store = InMemoryMetadataStore()
    let keys: KeyService
    let kms: KMSService

    init() {
        keys = KeyService(store: store, masterKey: SymmetricKey(size: .bits256), region: "us-east-1", regions: Self.regions,
                          authorizer: EngineAuthorizer(identityPolicies: [alice.arn: [allow("kms:*")]]))
        kms = KMSService(keys: keys)
    }

    func inRegion<T>(_ region: String, _ body: () async throws -> T) async throws -> T {
        try await RequestRegion.$current.withValue(RequestRegion(region, in: Self.regions)) { try await body() }
    }

    func call(_ op: String, _ body: JSONValue, region: String) async -> (type: String?, json: JSONValue?) {
        var p = root
        p.region = region
        let r = await kms.handle(target: "TrentService.\(op)", body: body.encoded(), principal: p)
        return (r.errorType, try? JSONValue.parse(r.body))
    }

    @Test func keysBelongToTheirRegion() async throws {
        let home = try await keys.createKey(account: account)
        let eu = try await inRegion("eu-west-1") { try await keys.createKey(account: account) }
        // Home-region keys are stored under the bare account: their ARNs are those Berth always gave.
        #expect(home.accountID == account)
        #expect(keys.keyARN(home) == "arn:aws:kms:us-east-1:\(account):key/\(home.keyID)")
        #expect(eu.accountID == "\(account)@eu-west-1")
        #expect(keys.keyARN(eu) == "arn:aws:kms:eu-west-1:\(account):key/\(eu.keyID)")
        #expect(keys.account(of: eu) == account && keys.region(of: eu) == "eu-west-1" && keys.region(of: home) == "us-east-1")

        // Each region sees only its own keys, by id or ARN; an ARN naming another region names no key.
        await expectKMSError("NotFoundException") { _ = try await keys.resolve(eu.keyID, account: account) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve(keys.keyARN(eu), account: account) }
        #expect(try await keys.resolve(keys.keyARN(eu), account: account, region: "eu-west-1").keyID == eu.keyID)
        try await inRegion("eu-west-1") { () async throws in
            #expect(try await keys.resolve(eu.keyID, account: account).keyID == eu.keyID)
            #expect(try await keys.resolve(keys.keyARN(eu), account: account).keyID == eu.keyID)
            await expectKMSError("NotFoundException") { _ = try await keys.resolve(home.keyID, account: account) }
            await expectKMSError("NotFoundException") { _ = try await keys.resolve(keys.keyARN(home), account: account) }
            #expect(try await keys.keys(account: account, after: nil, limit: 10).map(\.keyID) == [eu.keyID])
        }
        #expect(try await keys.keys(account: account, after: nil, limit: 10).map(\.keyID) == [home.keyID])

        // A ciphertext made in one region does not open through another region's API.
        let blob = try await keys.encrypt(Array("x".utf8), with: eu, context: [:])
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.key(of: blob, region: "us-east-1") }
        #expect(try await keys.key(of: blob, region: "eu-west-1").0.keyID == eu.keyID)
        // The registry's data keys (blob key domains name the key ARN) open wherever they are asked for.
        #expect(try await keys.decryptDataKey(blob, context: [:]) == Array("x".utf8))
    }

    @Test func aliasesArePerRegion() async throws {
        let home = try await keys.createKey(account: account)
        let eu = try await inRegion("eu-west-1") { try await keys.createKey(account: account) }
        try await keys.createAlias("alias/app", account: account, target: home)
        // A key of another region cannot be an alias target; the same name is free in another region.
        await expectKMSError("NotFoundException") { try await keys.createAlias("alias/other", account: account, target: eu) }
        try await inRegion("eu-west-1") { () async throws in
            await expectKMSError("NotFoundException") { try await keys.createAlias("alias/x", account: account, target: home) }
            try await keys.createAlias("alias/app", account: account, target: eu)
            #expect(try await keys.resolve("alias/app", account: account).keyID == eu.keyID)
            #expect(try await keys.resolve("arn:aws:kms:eu-west-1:\(account):alias/app", account: account).keyID == eu.keyID)
            await expectKMSError("NotFoundException") {
                _ = try await keys.resolve("arn:aws:kms:us-east-1:\(account):alias/app", account: account)
            }
            #expect(try await keys.aliases(account: account).map(\.targetKeyID) == [eu.keyID])
            #expect(keys.aliasARN(account: account, name: "alias/app") == "arn:aws:kms:eu-west-1:\(account):alias/app")
            try await keys.deleteAlias("alias/app", account: account)
        }
        #expect(try await keys.resolve("alias/app", account: account).keyID == home.keyID, "deleting eu-west-1's alias leaves us-east-1's")
        #expect(keys.aliasARN(account: account, name: "alias/app") == "arn:aws:kms:us-east-1:\(account):alias/app")
    }

    @Test func awsManagedKeyIsPerRegion() async throws {
        let home = try await keys.ensureAWSManagedKey(account: account)
        let eu = try await keys.ensureAWSManagedKey(account: account, region: "eu-west-1")
        #expect(home.keyID != eu.keyID)
        #expect(try await inRegion("eu-west-1") { try await keys.ensureAWSManagedKey(account: account) }.keyID == eu.keyID)
        #expect(try await keys.ensureAWSManagedKey(account: account).keyID == home.keyID)
        #expect(keys.keyARN(eu).hasPrefix("arn:aws:kms:eu-west-1:\(account):key/"))
        #expect(eu.policy == KeyPolicies.awsManagedPolicy(account: account, service: "ecr", region: "eu-west-1"))
        #expect(home.policy == KeyPolicies.awsManagedPolicy(account: account, service: "ecr", region: "us-east-1"))
        try await keys.authorize(alice, action: "kms:GenerateDataKey", key: eu, viaService: "ecr.eu-west-1.amazonaws.com")
        await #expect(throws: BerthError.self) {
            try await keys.authorize(alice, action: "kms:GenerateDataKey", key: eu, viaService: "ecr.us-east-1.amazonaws.com")
        }
        try await inRegion("eu-west-1") { () async throws in
            #expect(try await keys.resolve("alias/aws/ecr", account: account).keyID == eu.keyID)
        }
    }

    @Test func theAPIServesTheSignedRegion() async throws {
        let created = await call("CreateKey", ["Description": "eu"], region: "eu-west-1")
        #expect(created.type == nil)
        guard case .string(let arn)? = created.json?["KeyMetadata"]?["Arn"],
              case .string(let id)? = created.json?["KeyMetadata"]?["KeyId"] else {
            Issue.record("no KeyMetadata"); return
        }
        #expect(arn == "arn:aws:kms:eu-west-1:\(account):key/\(id)")
        #expect(created.json?["KeyMetadata"]?["AWSAccountId"] == .string(account))
        #expect(await call("DescribeKey", ["KeyId": .string(id)], region: "eu-west-1").type == nil)
        #expect(await call("DescribeKey", ["KeyId": .string(id)], region: "us-east-1").type == "NotFoundException")
        #expect(await call("DescribeKey", ["KeyId": .string(arn)], region: "us-east-1").type == "NotFoundException")
        #expect(await call("ListKeys", [:], region: "us-east-1").json?["Keys"] == [])
        #expect(await call("ListKeys", [:], region: "eu-west-1").json?["Keys"] == [["KeyId": .string(id), "KeyArn": .string(arn)]])

        #expect(await call("CreateAlias", ["AliasName": "alias/eu", "TargetKeyId": .string(id)], region: "eu-west-1").type == nil)
        #expect(await call("CreateAlias", ["AliasName": "alias/eu", "TargetKeyId": .string(id)], region: "us-east-1").type == "NotFoundException")
        guard case .array(let aliases)? = await call("ListAliases", [:], region: "eu-west-1").json?["Aliases"] else {
            Issue.record("no Aliases"); return
        }
        #expect(aliases.map { $0["AliasArn"] } == [.string("arn:aws:kms:eu-west-1:\(account):alias/eu")])
        #expect(await call("ListAliases", [:], region: "us-east-1").json?["Aliases"] == [])

        let enc = await call("Encrypt", ["KeyId": "alias/eu", "Plaintext": KMSServiceTests.b64("hi")], region: "eu-west-1")
        #expect(enc.type == nil)
        guard case .string(let blob)? = enc.json?["CiphertextBlob"] else { Issue.record("no CiphertextBlob"); return }
        #expect(await call("Decrypt", ["CiphertextBlob": .string(blob)], region: "eu-west-1").json?["KeyId"] == .string(arn))
        #expect(await call("Decrypt", ["CiphertextBlob": .string(blob)], region: "us-east-1").type == "InvalidCiphertextException")
        #expect(await call("Encrypt", ["KeyId": "alias/eu", "Plaintext": KMSServiceTests.b64("hi")], region: "us-east-1").type
            == "NotFoundException")
    }
}
