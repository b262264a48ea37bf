import BerthCore
import BerthRegistry
import BerthStorage
import Foundation
import Testing

/// `Registry.createRepositoryAutomatically` and the push path through it: templates give repositories Berth
/// creates by itself their settings, and the `createOnPush` setting agrees with them.
@Suite struct RegistryCreationTemplateTests {
    func template(_ prefix: String, _ purposes: [RepositoryCreationPurpose], mutability: TagMutability = .immutable,
                  tags: [ResourceTag] = [], kmsKey: String? = nil) -> RepositoryCreationTemplateRecord {
        RepositoryCreationTemplateRecord(registryID: "111111111111", prefix: prefix, encryptionType: kmsKey == nil ? "AES256" : "KMS",
                                         kmsKey: kmsKey, resourceTags: tags, imageTagMutability: mutability,
                                         repositoryPolicy: #"{"Version":"2012-10-17","Statement":[]}"#,
                                         lifecyclePolicy: #"{"rules":[]}"#, appliedFor: purposes, createdAt: 1, updatedAt: 1)
    }

    @Test func aPushToAMissingRepositoryTakesTheLongestMatchingTemplate() async throws {
        let r = makeRegistry()
        _ = try await r.createCreationTemplate(template("ROOT", [.createOnPush], mutability: .mutableWithExclusion))
        _ = try await r.createCreationTemplate(template("prod", [.createOnPush], tags: [ResourceTag(key: "env", value: "prod")]))
        _ = try await r.createCreationTemplate(template("prod/team", [.pullThroughCache], mutability: .mutable))

        _ = try await r.startUpload(key("prod/team/app"))
        let created = try await r.repository(key("prod/team/app")).settings
        // prod/team lists only PULL_THROUGH_CACHE: the push takes prod.
        #expect(created.imageTagMutability == .immutable)
        #expect(created.tags == [ResourceTag(key: "env", value: "prod")])
        #expect(created.policy == #"{"Version":"2012-10-17","Statement":[]}"#)
        #expect(try await r.lifecyclePolicy(key("prod/team/app"))?.text == #"{"rules":[]}"#)

        _ = try await r.startUpload(key("dev/app"))
        #expect(try await r.repository(key("dev/app")).settings.imageTagMutability == .mutableWithExclusion)
        // An existing repository is never touched.
        #expect(try await !r.createRepositoryAutomatically(key("dev/app"), for: .createOnPush))
    }

    @Test func withoutATemplateTheDefaultsApply() async throws {
        let r = makeRegistry()
        _ = try await r.createCreationTemplate(template("prod", [.replication]))
        #expect(try await r.createRepositoryAutomatically(key("prod/app"), for: .pullThroughCache))
        #expect(try await r.repository(key("prod/app")).settings == RepositorySettings())
        #expect(try await r.createRepositoryAutomatically(key("prod/app2"), for: .replication))
        #expect(try await r.repository(key("prod/app2")).settings.imageTagMutability == .immutable)
    }

    @Test func createOnPushOffCreatesOnlyThroughACreateOnPushTemplate() async throws {
        let r = makeRegistry(createOnPush: false)
        await #expect(throws: BerthError.nameUnknown("app")) { _ = try await r.startUpload(key("app")) }
        _ = try await r.createCreationTemplate(template("team", [.createOnPush]))
        _ = try await r.createCreationTemplate(template("cache", [.pullThroughCache]))
        await #expect(throws: BerthError.nameUnknown("other/app")) { _ = try await r.startUpload(key("other/app")) }
        await #expect(throws: BerthError.nameUnknown("cache/app")) { _ = try await r.startUpload(key("cache/app")) }
        _ = try await r.startUpload(key("team/app"))
        #expect(try await r.repository(key("team/app")).settings.imageTagMutability == .immutable)
        // The other purposes create whatever the setting says.
        #expect(try await r.createRepositoryAutomatically(key("other/mirror"), for: .pullThroughCache))
        #expect(try await r.createRepositoryAutomatically(key("other/copy"), for: .replication))
    }

    @Test func templatesAreKeptPerRegistryAndReportTheirErrors() async throws {
        let r = makeRegistry()
        _ = try await r.createCreationTemplate(template("prod", [.createOnPush]))
        await #expect(throws: CreationTemplateError.alreadyExists(prefix: "prod", registry: "111111111111")) {
            _ = try await r.createCreationTemplate(template("prod", [.replication]))
        }
        await #expect(throws: CreationTemplateError.notFound(prefix: "nope", registry: "111111111111")) {
            _ = try await r.updateCreationTemplate(registryID: "111111111111", prefix: "nope") { $0.updatedAt = 2 }
        }
        await #expect(throws: CreationTemplateError.notFound(prefix: "nope", registry: "111111111111")) {
            _ = try await r.deleteCreationTemplate(registryID: "111111111111", prefix: "nope")
        }
        // Another account's push does not see this registry's templates.
        let other = RepositoryKey(registryID: "222222222222", name: try RepositoryName("prod/app"))
        _ = try await r.startUpload(other)
        #expect(try await r.repository(other).settings == RepositorySettings())
        #expect(try await r.deleteCreationTemplate(registryID: "111111111111", prefix: "prod").prefix == "prod")
        #expect(try await r.creationTemplates(of: "111111111111").isEmpty)
    }

    @Test func aTemplatesKMSKeyIsCheckedWhenItIsApplied() async throws {
        let keyring = TestKeyring()
        let r = Registry(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore(), keyring: keyring)
        _ = try await r.createCreationTemplate(template("enc", [.createOnPush], kmsKey: TestKeyring.kmsB))
        #expect(try await r.checkedKMSKey(encryptionType: "KMS", kmsKey: TestKeyring.kmsB, registryID: "111111111111") == TestKeyring.kmsB)
        _ = try await r.startUpload(key("enc/a"))
        let s = try await r.repository(key("enc/a")).settings
        #expect(s.encryptionType == "KMS" && s.kmsKey == TestKeyring.kmsB)
        keyring.setDisabled(TestKeyring.kmsB, true)
        await #expect(throws: BerthError.kms(kmsError: "DisabledException", message: "\(TestKeyring.kmsB) is disabled.")) {
            _ = try await r.startUpload(key("enc/b"))
        }
        #expect(try await r.findRepository(key("enc/b")) == nil)
    }
}
