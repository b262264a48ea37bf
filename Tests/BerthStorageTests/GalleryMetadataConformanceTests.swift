import BerthCore
import BerthStorage
import Testing

/// `publicRepositorySummaries`, on every backend: only public repositories, catalog fields without the
/// logo, tag count, latest push and pull, the registry's display name.
@Suite struct GalleryMetadataConformance {
    func key(_ registry: RegistryID, _ name: String) -> RepositoryKey { RepositoryKey(registry: registry, name: try! RepositoryName(name)) }

    func manifest(_ text: String, at: Double) -> ManifestRecord {
        ManifestRecord(digest: Digest.sha256(of: Array(text.utf8)), mediaType: MediaType.ociManifest, artifactType: nil,
                       bytes: Array(text.utf8), subject: nil, annotationsJSON: nil, pushedAt: at, imageSize: 5)
    }

    @Test(arguments: Backend.allCases)
    func summariesOfPublicRepositories(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let a = "111111111111", b = "222222222222"
        var settings = RepositorySettings()
        settings.catalog = PublicCatalogData(description: "web \"server\" <b>", architectures: ["x86-64", "ARM 64"], operatingSystems: ["Linux"],
                                             aboutText: "# About", usageText: "Run it", logoBase64: "iVBORw0KGgo=")
        #expect(try await m.createRepository(key(.public(a), "web/nginx"), at: 10, settings: settings))
        #expect(try await m.createRepository(key(.public(a), "empty"), at: 11, settings: RepositorySettings()))
        #expect(try await m.createRepository(key(.public(b), "redis"), at: 12, settings: RepositorySettings()))
        // A private repository of the same name and account is never listed.
        #expect(try await m.createRepository(key(.private(a), "web/nginx"), at: 13, settings: settings))
        try await m.putAccountSetting(a, PublicRegistry.displayNameSetting, "Team A")

        let one = manifest("one", at: 100), two = manifest("two", at: 200)
        _ = try await m.putManifest(ManifestPut(record: one, blobs: [], manifests: [], tag: "v1"), in: key(.public(a), "web/nginx"))
        _ = try await m.putManifest(ManifestPut(record: two, blobs: [], manifests: [], tag: "v2"), in: key(.public(a), "web/nginx"))
        _ = try await m.putManifest(ManifestPut(record: two, blobs: [], manifests: [], tag: "latest"), in: key(.public(a), "web/nginx"))
        _ = try await m.putManifest(ManifestPut(record: manifest("p", at: 300), blobs: [], manifests: [], tag: "x"), in: key(.private(a), "web/nginx"))
        try await m.recordPulls([ImagePulls(repository: key(.public(a), "web/nginx"), digest: one.digest, lastPulledAt: 150, byTag: 2)])

        let all = try await m.publicRepositorySummaries(includingTexts: false)
        #expect(all.map(\.key) == [key(.public(a), "empty"), key(.public(a), "web/nginx"), key(.public(b), "redis")])
        let nginx = all[1]
        #expect(nginx.createdAt == 10 && nginx.hasLogo && nginx.tagCount == 3)
        #expect(nginx.lastPushedAt == 200 && nginx.lastPulledAt == 150 && nginx.registryDisplayName == "Team A")
        #expect(nginx.catalog == PublicCatalogData(description: "web \"server\" <b>", architectures: ["x86-64", "ARM 64"], operatingSystems: ["Linux"]))
        let empty = all[0]
        #expect(!empty.hasLogo && empty.tagCount == 0 && empty.lastPushedAt == nil && empty.lastPulledAt == nil)
        #expect(empty.catalog == PublicCatalogData() && empty.registryDisplayName == "Team A")
        #expect(all[2].registryDisplayName == nil)

        let withTexts = try await m.publicRepositorySummaries(includingTexts: true)
        #expect(withTexts[1].catalog.aboutText == "# About" && withTexts[1].catalog.usageText == "Run it")
        #expect(withTexts[1].catalog.logoBase64 == nil, "the logo is never read")

        _ = try await m.deleteRepository(key(.public(a), "web/nginx"))
        #expect(try await m.publicRepositorySummaries(includingTexts: false).map(\.key.name) == ["empty", "redis"])
    }
}
