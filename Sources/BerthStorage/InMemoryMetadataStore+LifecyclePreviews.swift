import BerthCore

extension InMemoryMetadataStore {
    public func putLifecyclePreview(_ preview: StoredLifecyclePreview, for repository: RepositoryKey,
                                    expiredBefore: Double) async throws {
        try state.withLock { s in
            guard s.repos[repository] != nil else { throw BerthError.nameUnknown(repository.name) }
            for key in s.repos.keys where (s.repos[key]!.lifecyclePreview?.createdAt ?? .infinity) < expiredBefore {
                s.repos[key]!.lifecyclePreview = nil
            }
            s.repos[repository]!.lifecyclePreview = preview
        }
    }

    public func lifecyclePreview(_ repository: RepositoryKey, notBefore: Double) async throws -> StoredLifecyclePreview? {
        state.withLock { s in
            s.repos[repository]?.lifecyclePreview.flatMap { $0.createdAt >= notBefore ? $0 : nil }
        }
    }
}
