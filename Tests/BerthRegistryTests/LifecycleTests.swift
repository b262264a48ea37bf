import BerthCore
import BerthLifecycle
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Synchronization
import Testing

@Suite struct RegistryLifecycleTests {
    let repo = key("team/app")
    static let day = 86_400.0

    func image(_ layer: String) -> [UInt8] {
        Array("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(sha("c"))","size":1},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(sha(layer))","size":1}]}
            """.utf8)
    }

    func index(_ children: [Digest]) -> [UInt8] {
        let entries = children.map { #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#($0)","size":1}"# }
        return Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(entries.joined(separator: ","))]}"#.utf8)
    }

    /// A registry on `metadata` with a manual clock, and `layers` uploaded to `repo`.
    func registry(_ metadata: any MetadataStore = InMemoryMetadataStore(), layers: [String]) async throws -> (Registry, ManualWallClock) {
        let clock = ManualWallClock(1_800_000_000)
        let r = Registry(blobs: InMemoryBlobStore(), metadata: metadata, clock: clock)
        for blob in ["c"] + layers {
            try await r.monolithicUpload(repo, digest: sha(blob), contentLength: nil, body: Body(blob))
        }
        return (r, clock)
    }

    /// Pushes an image one second after the previous one.
    func push(_ r: Registry, _ clock: ManualWallClock, _ bytes: [UInt8], tag: String? = nil) async throws -> Digest {
        clock.advance(by: 1)
        let reference: Reference = try tag.map { .tag(try Tag($0)) } ?? .digest(Digest.sha256(of: bytes))
        return try await r.putManifest(repo, reference: reference, contentType: nil, bytes: bytes).digest
    }

    func remaining(_ r: Registry) async throws -> Set<Digest> {
        Set(try await r.images(in: repo, after: nil, limit: 1000).map(\.digest))
    }

    static let untaggedKeepOne = #"{"rules":[{"rulePriority":1,"description":"keep the newest untagged image","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#

    @Test func policiesAreStoredWithTheRepository() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-lifecycle-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let stores: [any MetadataStore] = [InMemoryMetadataStore(), try SQLiteMetadataStore(path: dir + "/berth.db")]
        for store in stores {
            let (r, _) = try await registry(store, layers: [])
            await #expect(throws: BerthError.nameUnknown("other")) { _ = try await r.lifecyclePolicy(key("other")) }
            #expect(try await r.lifecyclePolicy(repo) == nil)
            #expect(try await r.deleteLifecyclePolicy(repo) == nil)
            try await r.putLifecyclePolicy(repo, Self.untaggedKeepOne)
            #expect(try await r.lifecyclePolicy(repo) == StoredLifecyclePolicy(text: Self.untaggedKeepOne, lastEvaluatedAt: nil))
            #expect(try await r.repositoriesWithLifecyclePolicy(account: repo.registryID) == [repo])
            #expect(try await r.deleteLifecyclePolicy(repo)?.text == Self.untaggedKeepOne)
            #expect(try await r.lifecyclePolicy(repo) == nil)
            try await r.putLifecyclePolicy(repo, Self.untaggedKeepOne)
            _ = try await r.deleteRepository(repo, force: true)
            _ = try await r.createRepository(repo, settings: RepositorySettings())
            #expect(try await r.lifecyclePolicy(repo) == nil, "deleting the repository deleted its policy")
        }
        // persisted: a new store on the same file reads it
        let first = try SQLiteMetadataStore(path: dir + "/again.db")
        let (r, _) = try await registry(first, layers: [])
        try await r.putLifecyclePolicy(repo, Self.untaggedKeepOne)
        let reopened = Registry(blobs: InMemoryBlobStore(), metadata: try SQLiteMetadataStore(path: dir + "/again.db"))
        #expect(try await reopened.lifecyclePolicy(repo)?.text == Self.untaggedKeepOne)
    }

    @Test func runExpiresThroughImageDeletion() async throws {
        let (r, clock) = try await registry(layers: ["a", "b", "c3"])
        let a = try await push(r, clock, image("a"))
        let b = try await push(r, clock, image("b"))
        let c = try await push(r, clock, image("c3"))
        #expect(try await r.runLifecycle(repo, dryRun: false, transition: nil) == nil, "no policy, no run")
        try await r.putLifecyclePolicy(repo, Self.untaggedKeepOne)
        let dry = try #require(try await r.runLifecycle(repo, dryRun: true, transition: nil))
        #expect(dry.outcomes.map(\.decision.image.digest) == [a, b])
        #expect(dry.outcomes.allSatisfy { $0.result == .planned })
        #expect(try await remaining(r) == [a, b, c])
        #expect(try await r.lifecyclePolicy(repo)?.lastEvaluatedAt == nil, "a dry run records nothing")
        clock.advance(by: 10)
        let run = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(run.count(.expire, .applied) == 2)
        #expect(try await remaining(r) == [c])
        #expect(try await r.lifecyclePolicy(repo)?.lastEvaluatedAt == clock.now())
        let again = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(again.outcomes.isEmpty)
    }

    @Test func aKeptIndexKeepsItsManifestsAndAnExpiredOneGoesFirst() async throws {
        let (r, clock) = try await registry(layers: ["a", "b"])
        let a = try await push(r, clock, image("a"))
        let b = try await push(r, clock, image("b"))
        let list = try await push(r, clock, index([a, b]), tag: "list")
        clock.advance(by: 3 * Self.day)
        try await r.putLifecyclePolicy(repo, #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#)
        let kept = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(kept.outcomes.isEmpty)
        #expect(kept.retained.map(\.digest) == [a, b].sorted())
        #expect(kept.retained.allSatisfy { $0.keptBy == list })
        #expect(try await remaining(r) == [a, b, list])
        // now the index expires too: it is deleted before the manifests it lists
        try await r.putLifecyclePolicy(repo, #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"tagged","tagPatternList":["li*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#)
        let gone = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(gone.count(.expire, .applied) == 3)
        #expect(try await remaining(r).isEmpty)
    }

    @Test func transitionsArchiveThroughTheRegistryOrGoToTheHook() async throws {
        let (r, clock) = try await registry(layers: ["a"])
        let a = try await push(r, clock, image("a"), tag: "v1")
        clock.advance(by: 40 * Self.day)
        try await r.putLifecyclePolicy(repo, #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30},"action":{"type":"transition","targetStorageClass":"archive"}}]}"#)
        let calls = Mutex<[Digest]>([])
        let hooked = try #require(try await r.runLifecycle(repo, dryRun: false) { _, digest, target in
            #expect(target == .archive)
            calls.withLock { $0.append(digest) }
        })
        #expect(hooked.count(.transition(.archive), .applied) == 1)
        #expect(calls.withLock { $0 } == [a])
        #expect(try await r.image(a, in: repo)?.status == .active, "the hook replaced the registry's own change")
        // Without a hook the registry archives the image itself (UpdateImageStorageClass).
        let archived = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(archived.count(.transition(.archive), .applied) == 1)
        let summary = try #require(try await r.image(a, in: repo))
        #expect(summary.status == .archived && summary.lastArchivedAt == clock.now())
        // An archived image is not transitioned again; a sinceImageTransitioned rule expires it later.
        #expect(try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil)).outcomes.isEmpty)
        try await r.putLifecyclePolicy(repo, #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#)
        #expect(try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil)).outcomes.isEmpty)
        clock.advance(by: 2 * Self.day)
        let expired = try #require(try await r.runLifecycle(repo, dryRun: false, transition: nil))
        #expect(expired.count(.expire, .applied) == 1)
        #expect(try await remaining(r).isEmpty)
    }
}
