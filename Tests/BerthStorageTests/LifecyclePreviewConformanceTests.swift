import BerthCore
import BerthStorage
import Testing

/// Lifecycle policy previews kept in the metadata store, the same in every store.
@Suite struct LifecyclePreviewConformance {
    func preview(_ text: String, at: Double) -> StoredLifecyclePreview {
        StoredLifecyclePreview(policyText: text, results: Array("[\"\(text)\"]".utf8), createdAt: at)
    }

    @Test(arguments: Backend.allCases)
    func previewsAreKeptPerRepositoryReplacedAndExpired(_ backend: Backend) async throws {
        let s = try await backend.make()
        let m = s.metadata
        try await m.createRepository(k("a"), at: 0)
        try await m.createRepository(k("b"), at: 0)
        #expect(try await m.lifecyclePreview(k("a"), notBefore: 0) == nil)
        await #expect(throws: BerthError.self) { try await m.putLifecyclePreview(preview("x", at: 1), for: k("nope"), expiredBefore: 0) }
        try await m.putLifecyclePreview(preview("a1", at: 10), for: k("a"), expiredBefore: 0)
        try await m.putLifecyclePreview(preview("b1", at: 20), for: k("b"), expiredBefore: 0)
        #expect(try await m.lifecyclePreview(k("a"), notBefore: 10) == preview("a1", at: 10))
        // Too old for the reader: not found.
        #expect(try await m.lifecyclePreview(k("a"), notBefore: 11) == nil)
        // A new preview replaces the repository's last one and drops every expired one.
        try await m.putLifecyclePreview(preview("b2", at: 30), for: k("b"), expiredBefore: 15)
        #expect(try await m.lifecyclePreview(k("a"), notBefore: 0) == nil)
        #expect(try await m.lifecyclePreview(k("b"), notBefore: 0) == preview("b2", at: 30))
        // A restart keeps it; deleting the repository deletes it.
        if let reopen = s.reopen {
            let (_, again) = try await reopen()
            #expect(try await again.lifecyclePreview(k("b"), notBefore: 0) == preview("b2", at: 30))
        }
        #expect(try await m.deleteRepository(k("b")))
        try await m.createRepository(k("b"), at: 40)
        #expect(try await m.lifecyclePreview(k("b"), notBefore: 0) == nil)
    }
}
