import BerthCore
import BerthStorage
import Foundation
import Testing

/// Every write that can change an authorization decision advances `authorizationGeneration` (the
/// key and policy caches reload on it), on every backend; image data writes do not (they must not
/// empty the caches of a busy registry). And stored settings that do not decode are an error.
@Suite struct AuthorizationStateConformance {
    let account = "123456789012"

    /// Runs `write` and tells whether it advanced the generation.
    func advances(_ m: any MetadataStore, _ write: () async throws -> Void) async throws -> Bool {
        let before = m.authorizationGeneration.current
        try await write()
        return m.authorizationGeneration.current != before
    }

    @Test(arguments: Backend.allCases)
    func authorizationWritesAdvanceTheGeneration(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let repo = k("app")
        let user = IAMEntityKey(.user, account, "alice")
        let group = IAMEntityKey(.group, account, "devs")
        let policy = ManagedPolicyRecord(accountID: account, name: "p", id: "ANPA1", document: "{}", createdAt: 0)
        let provider = OIDCProviderRecord(accountID: account, url: "idp.example.com", clientIDs: ["a"], createdAt: 0)
        let writes: [(String, () async throws -> Void)] = [
            ("createAccount", { try await m.createAccount(self.account, at: 0) }),
            ("putAccessKey", { try await m.putAccessKey(AccessKeyRecord(accessKeyID: "AKIA1", accountID: self.account,
                                                                       principalARN: "arn:aws:iam::\(self.account):user/alice",
                                                                       sealedSecret: "s", createdAt: 0)) }),
            ("setAccessKeyStatus", { try await m.setAccessKeyStatus("AKIA1", "Inactive") }),
            ("deleteAccessKey", { try await m.deleteAccessKey("AKIA1") }),
            ("putAccountSetting", { try await m.putAccountSetting(self.account, RegistryPolicy.settingName, "{}") }),
            ("createRepository", { try await m.createRepository(repo, at: 0) }),
            ("updateRepositorySettings", { try await m.updateRepositorySettings(repo, RepositorySettings(tags: [ResourceTag(key: "t", value: "v")])) }),
            ("deleteRepository", { try await m.deleteRepository(repo) }),
            ("createEntity", { _ = try await m.createEntity(IAMEntityRecord(kind: .user, accountID: self.account, name: "alice", id: "AIDA1", createdAt: 0)) }),
            ("createEntity group", { _ = try await m.createEntity(IAMEntityRecord(kind: .group, accountID: self.account, name: "devs", id: "AGPA1", createdAt: 0)) }),
            ("putInlinePolicy", { try await m.putInlinePolicy(user, name: "i", document: "{}") }),
            ("deleteInlinePolicy", { try await m.deleteInlinePolicy(user, name: "i") }),
            ("createManagedPolicy", { _ = try await m.createManagedPolicy(policy) }),
            ("attachPolicy", { try await m.attachPolicy(group, arn: policy.arn) }),
            ("detachPolicy", { try await m.detachPolicy(group, arn: policy.arn) }),
            ("deleteManagedPolicy", { try await m.deleteManagedPolicy(arn: policy.arn) }),
            ("addUser", { try await m.addUser("alice", toGroup: "devs", account: self.account) }),
            ("removeUser", { try await m.removeUser("alice", fromGroup: "devs", account: self.account) }),
            ("createOIDCProvider", { _ = try await m.createOIDCProvider(provider) }),
            ("deleteOIDCProvider", { try await m.deleteOIDCProvider(arn: provider.arn) }),
            ("deleteEntity", { try await m.deleteEntity(user) }),
        ]
        for (name, write) in writes {
            #expect(try await advances(m, write), "\(name) must advance the authorization generation")
        }
    }

    @Test(arguments: Backend.allCases)
    func imageDataWritesLeaveTheGeneration(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let repo = k("data")
        try await m.createRepository(repo, at: 0)
        let layer = Digest.sha256(of: Array("layer".utf8))
        let manifest = Digest.sha256(of: Array("manifest".utf8))
        let record = ManifestRecord(digest: manifest, mediaType: MediaType.ociManifest, artifactType: nil,
                                    bytes: Array("manifest".utf8), subject: nil, annotationsJSON: nil, pushedAt: 1)
        let writes: [(String, () async throws -> Void)] = [
            ("recordBlob", { try await m.recordBlob(layer, size: 5, linkTo: repo, at: 0) }),
            ("putManifest", { _ = try await m.putManifest(ManifestPut(record: record, blobs: [layer], manifests: [], tag: "v1"), in: repo) }),
            ("recordPulls", { try await m.recordPulls([ImagePulls(repository: repo, digest: manifest, lastPulledAt: 2)]) }),
            ("updateImageStorageClass", { _ = try await m.updateImageStorageClass(manifest, in: repo, to: .archive, at: 3) }),
            ("addPullTimeExclusion", { _ = try await m.addPullTimeExclusion(PullTimeExclusion(principalARN: "arn:aws:iam::111111111111:role/s", createdAt: 1), to: repo.registryID, limit: 100) }),
            ("removePullTimeExclusion", { _ = try await m.removePullTimeExclusion("arn:aws:iam::111111111111:role/s", from: repo.registryID) }),
            ("createUpload", { try await m.createUpload(UploadSession(id: "u", repository: repo, offset: 0, startedAt: 0, updatedAt: 0)) }),
            ("deleteTag", { _ = try await m.deleteTag("v1", in: repo) }),
        ]
        for (name, write) in writes {
            #expect(try await !advances(m, write), "\(name) must not empty the authorization caches")
        }
    }

    /// A damaged settings row is an error, never default settings (which have no repository policy, so
    /// its Deny statements would silently stop applying), and never mutable tags either.
    @Test func sqliteSettingsThatDoNotDecodeAreAnError() async throws {
        let s = try await Backend.filesystemAndSQLite.make()
        let m = s.metadata
        var settings = RepositorySettings(imageTagMutability: .immutable)
        settings.policy = #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#
        try await m.createRepository(k("locked"), at: 0, settings: settings)
        let layer = Digest.sha256(of: Array("l".utf8))
        try await m.recordBlob(layer, size: 1, linkTo: k("locked"), at: 0)
        func put(_ body: String) -> ManifestPut {
            ManifestPut(record: ManifestRecord(digest: Digest.sha256(of: Array(body.utf8)), mediaType: MediaType.ociManifest,
                                               artifactType: nil, bytes: Array(body.utf8), subject: nil, annotationsJSON: nil, pushedAt: 1),
                        blobs: [layer], manifests: [], tag: "v1")
        }
        _ = try await m.putManifest(put("one"), in: k("locked"))
        #expect(try await m.repository(k("locked"))?.settings == settings)

        for damaged in ["{not json", "{}", #"{"imageTagMutability":7}"#] {
            let raw = try SQLiteConnection(path: s.directory! + "/berth.db")
            #expect(try raw.execute("UPDATE repositories SET settings = ? WHERE name = 'locked'", [.text(damaged)]) == 1)
            await #expect(throws: CorruptMetadataError.self, "settings \(damaged)") { _ = try await m.repository(k("locked")) }
            // Moving the immutable tag is refused with the same error, not allowed as if the tag were mutable.
            await #expect(throws: CorruptMetadataError.self) { _ = try await m.putManifest(put("two"), in: k("locked")) }
            #expect(try await m.resolveTag("v1", in: k("locked")) == put("one").record.digest)
        }
        let error = await #expect(throws: CorruptMetadataError.self) { _ = try await m.repository(k("locked")) }
        #expect(error?.description.contains("repository \(registry)/locked") == true)
    }
}
