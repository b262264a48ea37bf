import BerthCore
@testable import BerthKMS
import BerthPolicy
import BerthStorage
import BerthSupport
import Crypto
import Foundation
import Testing

let account = "111122223333"
let otherAccount = "444455556666"
let root = Principal(accountID: account, arn: "arn:aws:iam::\(account):root", accessKeyID: "AKIAROOT")
let alice = Principal(accountID: account, arn: "arn:aws:iam::\(account):user/alice", accessKeyID: "AKIAALICE")
let bob = Principal(accountID: account, arn: "arn:aws:iam::\(account):user/bob", accessKeyID: "AKIABOB")

/// Decides with `PolicyEngine.evaluateKeyPolicy`, identity policies by principal ARN: the same decision
/// `PolicyAuthorizer` makes, without a directory.
struct EngineAuthorizer: Authorizer {
    var identityPolicies: [String: [String]] = [:]

    func request(_ p: Principal, _ action: String, _ resource: String, _ context: AuthorizationContext) -> AccessRequest {
        var values: [String: ContextValue] = [:]
        for (k, v) in context.values { values[k] = .single(v) }
        for (k, v) in context.valueSets { values[k] = .multiple(v) }
        return AccessRequest(principal: RequestPrincipal(arn: p.arn)!, action: action, resource: resource, context: values)
    }

    func identity(_ p: Principal) throws -> [Policy] {
        try (identityPolicies[p.arn] ?? []).map { try Policy(parsing: $0, options: .identity) }
    }

    func authorize(_ principal: Principal, action: String, resource: String) async throws {
        try await authorize(principal, action: action, resource: resource, context: AuthorizationContext())
    }

    func authorize(_ principal: Principal, action: String, resource: String, context: AuthorizationContext) async throws {
        let r = request(principal, action, resource, context)
        if let m = PolicyEngine.evaluate(r, identityPolicies: try identity(principal), resourcePolicies: []).accessDeniedMessage(for: r) {
            throw BerthError.denied(m)
        }
    }

    func authorize(_ principal: Principal, action: String, resource: String, keyPolicy: String, context: AuthorizationContext) async throws {
        let r = request(principal, action, resource, context)
        let decision = PolicyEngine.evaluateKeyPolicy(r, identityPolicies: try identity(principal),
                                                      keyPolicy: try Policy(parsing: keyPolicy, options: .resource))
        if let m = decision.accessDeniedMessage(for: r) { throw BerthError.denied(m) }
    }
}

func allow(_ actions: String...) -> String {
    #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[\#(actions.map { "\"\($0)\"" }.joined(separator: ","))],"Resource":"*"}]}"#
}

func makeService(_ authorizer: EngineAuthorizer = EngineAuthorizer(), store: (any MetadataStore)? = nil,
                 clock: ManualWallClock = ManualWallClock()) -> KeyService {
    KeyService(store: store ?? InMemoryMetadataStore(), masterKey: SymmetricKey(size: .bits256), region: "us-east-1",
               authorizer: authorizer, clock: clock)
}

func expectKMSError(_ type: String, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
    do {
        try await body()
        Issue.record("expected \(type), nothing thrown", sourceLocation: sourceLocation)
    } catch let e as KMSError {
        #expect(e.type == type, "\(e.message)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(type), got \(error)", sourceLocation: sourceLocation)
    }
}

@Suite struct KeyServiceTests {
    @Test func encryptDecryptRoundTripWithContext() async throws {
        let keys = makeService()
        let key = try await keys.createKey(account: account, description: "test")
        #expect(key.policy == KeyPolicies.defaultPolicy(account: account))
        let blob = try await keys.encrypt(Array("hello".utf8), with: key, context: ["repo": "app"])
        let (found, parsed) = try await keys.key(of: blob)
        #expect(found.keyID == key.keyID)
        #expect(try await keys.decrypt(parsed, with: found, context: ["repo": "app"]) == Array("hello".utf8))
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decrypt(parsed, with: found, context: [:]) }
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decryptDataKey(Array(blob.dropLast(3)), context: ["repo": "app"]) }
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decryptDataKey([1, 2, 3], context: [:]) }
        var forged = blob
        forged[10] ^= 0xff
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decryptDataKey(forged, context: ["repo": "app"]) }
    }

    @Test func dataKeysForEnvelopeEncryption() async throws {
        let keys = makeService()
        let key = try await keys.createKey(account: account)
        try await keys.createAlias("alias/blobs", account: account, target: key)
        let dk = try await keys.generateDataKey(keyID: "alias/blobs", account: account, context: ["blob": "sha256:1"])
        #expect(dk.plaintext.count == 32)
        #expect(dk.keyARN == "arn:aws:kms:us-east-1:\(account):key/\(key.keyID)")
        #expect(try await keys.decryptDataKey(dk.ciphertext, context: ["blob": "sha256:1"]) == dk.plaintext)
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decryptDataKey(dk.ciphertext, context: ["blob": "sha256:2"]) }
        let small = try await keys.generateDataKey(with: key, context: [:], byteCount: 16)
        #expect(small.plaintext.count == 16)
        await expectKMSError("ValidationException") { _ = try await keys.generateDataKey(with: key, context: [:], byteCount: 0) }
    }

    @Test func resolvesIdsARNsAndAliases() async throws {
        let keys = makeService()
        let key = try await keys.createKey(account: account)
        try await keys.createAlias("alias/app", account: account, target: key)
        let arn = keys.keyARN(key)
        for id in [key.keyID, key.keyID.uppercased(), arn, "alias/app", "arn:aws:kms:us-east-1:\(account):alias/app"] {
            #expect(try await keys.resolve(id, account: account).keyID == key.keyID, "\(id)")
        }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve("alias/app", account: account, allowAlias: false) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve("alias/none", account: account) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve("not-a-key", account: account) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve(key.keyID, account: otherAccount) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve("arn:aws:kms:eu-west-1:\(account):key/\(key.keyID)", account: account) }
        await expectKMSError("NotFoundException") { _ = try await keys.resolve(UUID().uuidString, account: account) }
        #expect(try await keys.keyState(arn, account: otherAccount) == .enabled, "by ARN, a key of another account is found")
    }

    @Test func disabledAndPendingDeletionKeysRefuseCryptography() async throws {
        let clock = ManualWallClock()
        let keys = makeService(clock: clock)
        let key = try await keys.createKey(account: account)
        let blob = try await keys.encrypt([1, 2, 3], with: key, context: [:])

        try await keys.setEnabled(key, false)
        var current = try await keys.resolve(key.keyID, account: account)
        #expect(current.state == "Disabled")
        await expectKMSError("DisabledException") { _ = try await keys.encrypt([1], with: current, context: [:]) }
        await expectKMSError("DisabledException") { _ = try await keys.decryptDataKey(blob, context: [:]) }
        try await keys.setEnabled(current, true)
        #expect(try await keys.decryptDataKey(blob, context: [:]) == [1, 2, 3])

        await expectKMSError("ValidationException") { _ = try await keys.scheduleDeletion(key, days: 6) }
        await expectKMSError("ValidationException") { _ = try await keys.scheduleDeletion(key, days: 31) }
        let scheduled = try await keys.scheduleDeletion(key, days: 7)
        #expect(scheduled.state == "PendingDeletion" && scheduled.deletionDate == clock.now() + 7 * 86_400)
        await expectKMSError("KMSInvalidStateException") { _ = try await keys.scheduleDeletion(key, days: 7) }
        await expectKMSError("KMSInvalidStateException") { _ = try await keys.decryptDataKey(blob, context: [:]) }
        await expectKMSError("KMSInvalidStateException") { try await keys.setEnabled(scheduled, true) }
        #expect(try await keys.keyState(key.keyID, account: account) == .pendingDeletion)

        try await keys.cancelDeletion(scheduled)
        current = try await keys.resolve(key.keyID, account: account)
        #expect(current.state == "Disabled" && current.deletionDate == nil, "a cancelled deletion leaves the key disabled")
        await expectKMSError("KMSInvalidStateException") { try await keys.cancelDeletion(current) }
        try await keys.setEnabled(current, true)
        #expect(try await keys.decryptDataKey(blob, context: [:]) == [1, 2, 3])
    }

    @Test func deletionCompletesLazilyAndInTheBackground() async throws {
        let clock = ManualWallClock()
        let store = InMemoryMetadataStore()
        let keys = makeService(store: store, clock: clock)
        let lazy = try await keys.createKey(account: account)
        let swept = try await keys.createKey(account: account)
        try await keys.createAlias("alias/lazy", account: account, target: lazy)
        let blob = try await keys.encrypt([9], with: lazy, context: [:])
        _ = try await keys.scheduleDeletion(lazy, days: 7)
        _ = try await keys.scheduleDeletion(swept, days: 30)

        clock.advance(by: 7 * 86_400 - 1)
        #expect(try await keys.runDueWork().deleted == 0)
        #expect(try await keys.keyState(lazy.keyID, account: account) == .pendingDeletion)
        clock.advance(by: 1)
        // Used after its date: deleted on the spot, with its alias and material.
        await expectKMSError("NotFoundException") { _ = try await keys.resolve(lazy.keyID, account: account) }
        #expect(try await store.kmsKey(lazy.keyID) == nil)
        #expect(try await store.kmsKeyMaterials(lazy.keyID).isEmpty)
        #expect(try await keys.alias("alias/lazy", account: account) == nil)
        await expectKMSError("InvalidCiphertextException") { _ = try await keys.decryptDataKey(blob, context: [:]) }

        clock.advance(by: 23 * 86_400)
        #expect(try await keys.runDueWork().deleted == 1)
        #expect(try await store.kmsKey(swept.keyID) == nil)
    }

    @Test func rotationKeepsOldMaterialForDecryption() async throws {
        let clock = ManualWallClock()
        let keys = makeService(clock: clock)
        var key = try await keys.createKey(account: account)
        let first = try await keys.encrypt(Array("v1".utf8), with: key, context: [:])
        key = try await keys.rotate(key, onDemand: true)
        #expect(key.currentVersion == 2 && key.onDemandRotations == 1)
        let second = try await keys.encrypt(Array("v2".utf8), with: key, context: [:])
        #expect(CiphertextBlob(first)?.materialVersion == 1)
        #expect(CiphertextBlob(second)?.materialVersion == 2)
        #expect(try await keys.decryptDataKey(first, context: [:]) == Array("v1".utf8))
        #expect(try await keys.decryptDataKey(second, context: [:]) == Array("v2".utf8))
        await expectKMSError("ConflictException") { try await keys.rotate(try await keys.resolve(key.keyID, account: account).with(version: 1), onDemand: true) }

        for _ in 2...KeyService.maxOnDemandRotations { key = try await keys.rotate(key, onDemand: true) }
        await expectKMSError("LimitExceededException") { try await keys.rotate(key, onDemand: true) }

        // Automatic rotation: once the period has passed, the background work makes a new version.
        try await keys.setRotation(key, enabled: true, periodDays: 90)
        key = try await keys.resolve(key.keyID, account: account)
        #expect(key.rotationEnabled && key.nextRotationAt == clock.now() + 90 * 86_400)
        clock.advance(by: 90 * 86_400)
        #expect(try await keys.runDueWork().rotated == 1)
        let rotated = try await keys.resolve(key.keyID, account: account)
        #expect(rotated.currentVersion == key.currentVersion + 1)
        #expect(rotated.nextRotationAt == clock.now() + 90 * 86_400)
        #expect(try await keys.rotations(rotated).last?.rotationType == "AUTOMATIC")
        #expect(try await keys.decryptDataKey(first, context: [:]) == Array("v1".utf8))

        try await keys.setEnabled(rotated, false)
        await expectKMSError("DisabledException") { try await keys.rotate(try await keys.resolve(key.keyID, account: account), onDemand: true) }
    }

    @Test func aliasRules() async throws {
        let keys = makeService()
        let key = try await keys.createKey(account: account)
        let other = try await keys.createKey(account: account)
        await expectKMSError("InvalidAliasNameException") { try await keys.createAlias("app", account: account, target: key) }
        await expectKMSError("InvalidAliasNameException") { try await keys.createAlias("alias/", account: account, target: key) }
        await expectKMSError("InvalidAliasNameException") { try await keys.createAlias("alias/aws/ecr", account: account, target: key) }
        await expectKMSError("ValidationException") { try await keys.createAlias("alias/a b", account: account, target: key) }
        try await keys.createAlias("alias/app", account: account, target: key)
        await expectKMSError("AlreadyExistsException") { try await keys.createAlias("alias/app", account: account, target: other) }
        try await keys.updateAlias("alias/app", account: account, target: other)
        #expect(try await keys.resolve("alias/app", account: account).keyID == other.keyID)
        await expectKMSError("NotFoundException") { try await keys.updateAlias("alias/none", account: account, target: other) }
        try await keys.deleteAlias("alias/app", account: account)
        await expectKMSError("NotFoundException") { try await keys.deleteAlias("alias/app", account: account) }
        let pending = try await keys.scheduleDeletion(key, days: 7)
        await expectKMSError("KMSInvalidStateException") { try await keys.createAlias("alias/late", account: account, target: pending) }
    }

    @Test func awsManagedKeyIsMadeOnceWithItsPolicy() async throws {
        let keys = makeService()
        let a = try await keys.ensureAWSManagedKey(account: account, alias: "alias/aws/ecr")
        let b = try await keys.ensureAWSManagedKey(account: account, alias: "alias/aws/ecr")
        #expect(a.keyID == b.keyID)
        #expect(a.keyManager == "AWS" && a.rotationEnabled)
        #expect(a.policy.contains(#""kms:ViaService" : "ecr.us-east-1.amazonaws.com""#))
        #expect(try await keys.resolve("alias/aws/ecr", account: account).keyID == a.keyID)
        await expectKMSError("UnsupportedOperationException") { _ = try await keys.scheduleDeletion(a, days: 7) }
        await expectKMSError("UnsupportedOperationException") { try await keys.putPolicy(a, "{}") }
        let other = try await keys.ensureAWSManagedKey(account: otherAccount, alias: "alias/aws/ecr")
        #expect(other.keyID != a.keyID)
    }

    @Test func materialIsStoredSealedOnly() async throws {
        let store = InMemoryMetadataStore()
        let master = SymmetricKey(size: .bits256)
        let keys = KeyService(store: store, masterKey: master, region: "us-east-1", authorizer: EngineAuthorizer())
        let key = try await keys.createKey(account: account)
        let record = try #require(try await store.kmsKeyMaterial(key.keyID, version: 1))
        let material = try KeyMaterialSealer(masterKey: master).open(record.sealedMaterial, keyID: key.keyID, version: 1)
        #expect(record.sealedMaterial.count == 61 && material.count == 32)
        // A second service on the same store and master key (a restart) decrypts what the first encrypted.
        let blob = try await keys.encrypt([4, 2], with: key, context: ["c": "d"])
        let restarted = KeyService(store: store, masterKey: master, region: "us-east-1", authorizer: EngineAuthorizer())
        #expect(try await restarted.decryptDataKey(blob, context: ["c": "d"]) == [4, 2])
        let wrongMaster = KeyService(store: store, masterKey: SymmetricKey(size: .bits256), region: "us-east-1", authorizer: EngineAuthorizer())
        await expectKMSError("KMSInternalException") { _ = try await wrongMaster.decryptDataKey(blob, context: ["c": "d"]) }
    }
}

extension KMSKeyRecord {
    func with(version: Int) -> KMSKeyRecord {
        var k = self
        k.currentVersion = version
        return k
    }
}
