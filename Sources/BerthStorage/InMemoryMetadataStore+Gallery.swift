import BerthCore

extension InMemoryMetadataStore {
    public func publicRepositorySummaries(includingTexts: Bool) async throws -> [PublicRepositorySummary] {
        state.withLock { s in
            s.repos.filter { $0.key.registry.isPublic }.sorted { $0.key < $1.key }.map { key, r in
                var catalog = r.settings.catalog ?? PublicCatalogData()
                let hasLogo = catalog.logoBase64 != nil
                catalog.logoBase64 = nil
                if !includingTexts {
                    catalog.aboutText = nil
                    catalog.usageText = nil
                }
                return PublicRepositorySummary(
                    key: key, createdAt: r.createdAt, catalog: catalog, hasLogo: hasLogo, tagCount: r.tags.count,
                    lastPushedAt: r.manifests.values.map(\.pushedAt).max(), lastPulledAt: r.pulls.values.max(),
                    downloadCount: r.downloads.values.reduce(0, +),
                    registryDisplayName: s.accountSettings["\(key.registry.account)/\(PublicRegistry.displayNameSetting)"])
            }
        }
    }
}
