import BerthCore
import BerthRegistry
import BerthStorage
import Foundation
import NIOCore
import Synchronization
import Testing

/// A request body made of the given chunks.
struct Body: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [String]
    init(_ chunks: String...) { self.chunks = chunks }
    init(chunks: [String]) { self.chunks = chunks }
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [String]
        mutating func next() async throws -> ByteBuffer? {
            guard !rest.isEmpty else { return nil }
            return ByteBuffer(string: rest.removeFirst())
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks) }
}

func sha(_ s: String) -> Digest { Digest.sha256(of: Array(s.utf8)) }

func key(_ name: String) -> RepositoryKey { RepositoryKey(registryID: "111111111111", name: try! RepositoryName(name)) }

func makeRegistry(createOnPush: Bool = true, blobs: any BlobStore = InMemoryBlobStore(),
                  metadata: any MetadataStore = InMemoryMetadataStore()) -> Registry {
    Registry(blobs: blobs, metadata: metadata, settings: RegistrySettings(createOnPush: createOnPush, writeBufferSize: 8))
}

func read(_ r: Registry, _ d: Digest) async throws -> String {
    var s = ""
    try await r.readBlob(d, range: nil) { s += String(buffer: $0) }
    return s
}

@Suite struct RegistryBlobTests {
    let repo = key("team/app")

    @Test func monolithicUploadVerifiesDigest() async throws {
        let r = makeRegistry()
        try await r.monolithicUpload(repo, digest: sha("hello world"), contentLength: 11, body: Body("hello ", "world"))
        #expect(try await r.blobSize(repo, sha("hello world")) == 11)
        #expect(try await read(r, sha("hello world")) == "hello world")
        await #expect(throws: BerthError.self) {
            try await r.monolithicUpload(self.repo, digest: sha("other"), contentLength: nil, body: Body("hello"))
        }
        await #expect(throws: BerthError.blobUnknown(sha("other").description)) { _ = try await r.blobSize(self.repo, sha("other")) }
        await #expect(throws: BerthError.sizeInvalid("received 5 bytes, Content-Length was 9")) {
            try await r.monolithicUpload(self.repo, digest: sha("hello"), contentLength: 9, body: Body("hello"))
        }
    }

    @Test func chunkedUploadInOrderOnly() async throws {
        let r = makeRegistry()
        let s = try await r.startUpload(repo)
        #expect(try await r.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 4), contentLength: 5, body: Body("abcde")) == 5)
        await #expect(throws: BerthError.self) {
            _ = try await r.appendChunk(self.repo, upload: s.id, range: ByteRange(start: 0, end: 4), contentLength: 5, body: Body("abcde"))
        }
        await #expect(throws: BerthError.self) {
            _ = try await r.appendChunk(self.repo, upload: s.id, range: ByteRange(start: 5, end: 9), contentLength: 5, body: Body("fg"))
        }
        #expect(try await r.uploadSession(repo, s.id).offset == 5, "a lying chunk does not move the upload")
        #expect(try await r.appendChunk(repo, upload: s.id, range: nil, contentLength: nil, body: Body("fgh")) == 8)
        await #expect(throws: BerthError.self) {
            _ = try await r.completeUpload(self.repo, upload: s.id, digest: sha("wrong"), range: nil,
                                           contentLength: 0, body: Body())
        }
        let d = try await r.completeUpload(repo, upload: s.id, digest: sha("abcdefghij"), range: nil,
                                           contentLength: 2, body: Body("ij"))
        #expect(d == sha("abcdefghij"))
        #expect(try await read(r, d) == "abcdefghij")
        await #expect(throws: BerthError.blobUploadUnknown(s.id)) { _ = try await r.uploadSession(self.repo, s.id) }
    }

    @Test func uploadResumesInANewProcess() async throws {
        let blobs = InMemoryBlobStore()
        let meta = InMemoryMetadataStore()
        let first = makeRegistry(blobs: blobs, metadata: meta)
        let s = try await first.startUpload(repo)
        _ = try await first.appendChunk(repo, upload: s.id, range: ByteRange(start: 0, end: 2), contentLength: 3, body: Body("abc"))
        // A restarted server has no hash state; it rebuilds it from the staged bytes.
        let second = makeRegistry(blobs: blobs, metadata: meta)
        #expect(try await second.uploadSession(repo, s.id).offset == 3)
        _ = try await second.appendChunk(repo, upload: s.id, range: ByteRange(start: 3, end: 5), contentLength: 3, body: Body("def"))
        let d = try await second.completeUpload(repo, upload: s.id, digest: sha("abcdef"), range: nil,
                                                contentLength: 0, body: Body())
        #expect(try await read(second, d) == "abcdef")
    }

    @Test func uploadsBelongToTheirRepository() async throws {
        let r = makeRegistry()
        let s = try await r.startUpload(repo)
        let other = key("someone/else")
        await #expect(throws: BerthError.blobUploadUnknown(s.id)) { _ = try await r.uploadSession(other, s.id) }
        await #expect(throws: BerthError.blobUploadUnknown("../../etc")) { _ = try await r.uploadSession(self.repo, "../../etc") }
        try await r.cancelUpload(repo, upload: s.id)
        await #expect(throws: BerthError.blobUploadUnknown(s.id)) { _ = try await r.uploadSession(self.repo, s.id) }
    }

    @Test func mountAndAutomaticMount() async throws {
        let r = makeRegistry()
        let src = key("src/repo")
        try await r.monolithicUpload(src, digest: sha("layer"), contentLength: nil, body: Body("layer"))
        #expect(try await r.startUpload(repo, mount: sha("layer"), from: src, mayPull: anyone) == .mounted(sha("layer")))
        let third = key("third/repo")
        #expect(try await r.startUpload(third, mount: sha("layer"), from: nil, mayPull: anyone) == .mounted(sha("layer")))
        #expect(try await r.blobSize(third, sha("layer")) == 5)
        guard case .session = try await r.startUpload(third, mount: sha("unknown"), from: src, mayPull: anyone) else {
            Issue.record("an unknown blob falls back to an upload session"); return
        }
        // Mounting from a repository that does not hold the blob is refused, even if another does.
        let fourth = key("fourth/repo")
        guard case .session = try await r.startUpload(fourth, mount: sha("layer"), from: key("empty/repo"), mayPull: anyone) else {
            Issue.record("mount must check the source repository"); return
        }
        await #expect(throws: BerthError.blobUnknown(sha("layer").description)) { _ = try await r.blobSize(fourth, sha("layer")) }
    }
    @Test func createOnPushCanBeTurnedOff() async throws {
        let r = makeRegistry(createOnPush: false)
        await #expect(throws: BerthError.nameUnknown(repo.name)) {
            try await r.monolithicUpload(self.repo, digest: sha("x"), contentLength: nil, body: Body("x"))
        }
    }

    @Test func parallelPushesOfTheSameBlob() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-reg-\(UUID())").path
        let r = makeRegistry(blobs: try FileSystemBlobStore(root: dir), metadata: try SQLiteMetadataStore(path: dir + "/db"))
        let content = (0..<64).map { "chunk\($0)-" }
        let digest = sha(content.joined())
        try await withThrowingTaskGroup(of: Void.self) { g in
            for _ in 0..<8 {
                g.addTask { try await r.monolithicUpload(self.repo, digest: digest, contentLength: nil, body: Body(chunks: content)) }
            }
            try await g.waitForAll()
        }
        #expect(try await read(r, digest) == content.joined())
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/uploads")
        #expect(leftovers.isEmpty)
    }
}

@Suite struct RegistryManifestTests {
    let repo = key("team/app")

    func image(config: Digest, layer: Digest, subject: Digest? = nil, artifactType: String? = nil) -> [UInt8] {
        var s = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":1},
            "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layer)","size":1}]
            """
        if let artifactType { s += #","artifactType":"\#(artifactType)""# }
        if let subject { s += #","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(subject)","size":1}"# }
        return Array((s + "}").utf8)
    }

    func pushBlobs(_ r: Registry) async throws {
        try await r.monolithicUpload(repo, digest: sha("c"), contentLength: nil, body: Body("c"))
        try await r.monolithicUpload(repo, digest: sha("l"), contentLength: nil, body: Body("l"))
    }

    @Test func pushByTagAndPullExactBytes() async throws {
        let r = makeRegistry()
        try await pushBlobs(r)
        let bytes = image(config: sha("c"), layer: sha("l"))
        let pushed = try await r.putManifest(repo, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest, bytes: bytes)
        #expect(pushed.digest == Digest.sha256(of: bytes))
        #expect(try await r.manifest(repo, reference: .tag(try Tag("v1"))).bytes == bytes)
        #expect(try await r.manifest(repo, reference: .digest(pushed.digest)).mediaType == MediaType.ociManifest)
        #expect(try await r.tags(repo, PageRequest()).items == ["v1"])
    }

    @Test func missingBlobsAndWrongDigestsAreRefused() async throws {
        let r = makeRegistry()
        let bytes = image(config: sha("c"), layer: sha("l"))
        await #expect(throws: BerthError.manifestBlobUnknown(sha("c").description)) {
            _ = try await r.putManifest(self.repo, reference: .tag(try Tag("v1")), contentType: MediaType.ociManifest, bytes: bytes)
        }
        try await pushBlobs(r)
        await #expect(throws: BerthError.self) {
            _ = try await r.putManifest(self.repo, reference: .digest(sha("nope")), contentType: MediaType.ociManifest, bytes: bytes)
        }
        await #expect(throws: BerthError.manifestUnknown("v1")) { _ = try await r.manifest(self.repo, reference: .tag(try Tag("v1"))) }
    }

    @Test func deleteByTagKeepsManifest() async throws {
        let r = makeRegistry()
        try await pushBlobs(r)
        let bytes = image(config: sha("c"), layer: sha("l"))
        let pushed = try await r.putManifest(repo, reference: .tag(try Tag("a")), contentType: nil, bytes: bytes)
        _ = try await r.putManifest(repo, reference: .tag(try Tag("b")), contentType: nil, bytes: bytes)
        try await r.deleteManifest(repo, reference: .tag(try Tag("a")))
        #expect(try await r.tags(repo, PageRequest()).items == ["b"])
        try await r.deleteManifest(repo, reference: .digest(pushed.digest))
        #expect(try await r.tags(repo, PageRequest()).items == [])
        await #expect(throws: BerthError.manifestUnknown(pushed.digest.description)) {
            _ = try await r.manifest(self.repo, reference: .digest(pushed.digest))
        }
    }

    func index(_ children: [Digest]) -> [UInt8] {
        let entries = children.map { #"{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#($0)","size":1}"# }
        return Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[\#(entries.joined(separator: ","))]}"#.utf8)
    }

    /// Both doors delete through one rule: a manifest an index lists stays until the index goes.
    @Test func aManifestAnIndexListsIsNotDeleted() async throws {
        let r = makeRegistry()
        try await pushBlobs(r)
        let child = try await r.putManifest(repo, reference: .tag(try Tag("child")), contentType: nil,
                                            bytes: image(config: sha("c"), layer: sha("l"))).digest
        let list = try await r.putManifest(repo, reference: .tag(try Tag("list")), contentType: nil, bytes: index([child])).digest
        _ = try await r.manifest(repo, reference: .digest(child))  // cached
        let events = r.events.subscribe()
        await #expect(throws: BerthError.manifestReferenced(digest: child.description, by: [list.description])) {
            try await r.deleteManifest(self.repo, reference: .digest(child))
        }
        #expect(try await r.deleteImage(repo, .digest(child)) == .referenced(by: [list]))
        #expect(try await r.manifest(repo, reference: .digest(child)).digest == child)
        #expect(try await r.deleteImage(repo, .tag("list", of: list)) == .deleted(tags: ["list"], imageDeleted: true))
        #expect(try await r.deleteImage(repo, .digest(child)) == .deleted(tags: ["child"], imageDeleted: true))
        await #expect(throws: BerthError.manifestUnknown(child.description), "the cache forgot it") {
            _ = try await r.manifest(self.repo, reference: .digest(child))
        }
        var seen: [RegistryEvent] = []
        for await e in events {
            seen.append(e)
            if seen.count == 3 { break }
        }
        #expect(seen == [.tagDeleted(repository: repo, tag: "list"), .manifestDeleted(repository: repo, digest: list),
                         .manifestDeleted(repository: repo, digest: child)])
    }

    @Test func putImageRefusesInsteadOfCreating() async throws {
        let r = makeRegistry()
        let bytes = image(config: sha("c"), layer: sha("l"))
        await #expect(throws: BerthError.nameUnknown("team/app"), "PutImage never creates the repository") {
            _ = try await r.putImage(self.repo, tag: nil, contentType: nil, bytes: bytes)
        }
        try await pushBlobs(r)
        let pushed = try await r.putImage(repo, tag: try Tag("v1"), contentType: nil, bytes: bytes)
        #expect(pushed.created)
        await #expect(throws: ImagePutRefusal.imageAlreadyExists(digest: pushed.digest, tag: "v1")) {
            _ = try await r.putImage(self.repo, tag: try Tag("v1"), contentType: nil, bytes: bytes)
        }
        await #expect(throws: ImagePutRefusal.referencedImagesNotFound([sha("x")])) {
            _ = try await r.putImage(self.repo, tag: nil, contentType: nil, bytes: self.index([sha("x")]))
        }
        await #expect(throws: ImagePutRefusal.layersNotFound([sha("x")])) {
            _ = try await r.putImage(self.repo, tag: nil, contentType: nil, bytes: self.image(config: sha("c"), layer: sha("x")))
        }
    }

    @Test func settingsUpdatesAreTypedAndAtomic() async throws {
        let r = makeRegistry()
        try await pushBlobs(r)
        let s = try await r.updateSettings(repo) { $0.imageTagMutability = .immutableWithExclusion; $0.exclusionFilters = ["dev-*"] }
        #expect(s.isImmutable(tag: "v1") && !s.isImmutable(tag: "dev-1"))
        await #expect(throws: BerthError.nameUnknown("nope")) { _ = try await r.updateSettings(key("nope")) { $0.scanOnPush = true } }
        #expect(try await r.accountSetting(.blobMounting, of: "111111111111") == "ENABLED")
        try await r.putAccountSetting(.blobMounting, of: "111111111111", value: "DISABLED")
        #expect(try await r.blobMountingEnabled("111111111111") == false)
        await #expect(throws: BerthError.self) { try await r.putAccountSetting(.registryPolicyScope, of: "111111111111", value: "V3") }
        #expect(try await r.registryPolicy(of: "111111111111") == nil)
        try await r.putRegistryPolicy(of: "111111111111", "{}")
        #expect(try await r.registryPolicy(of: "111111111111") == "{}")
        try await r.putRegistryPolicy(of: "111111111111", nil)
        #expect(try await r.registryPolicy(of: "111111111111") == nil)
    }

    @Test func referrersWithFilter() async throws {
        let r = makeRegistry()
        try await pushBlobs(r)
        let subject = try await r.putManifest(repo, reference: .tag(try Tag("v1")), contentType: nil,
                                              bytes: image(config: sha("c"), layer: sha("l"))).digest
        let sig = try await r.putManifest(repo, reference: .digest(Digest.sha256(of: image(config: sha("c"), layer: sha("l"), subject: subject, artifactType: "application/x.sig"))),
                                          contentType: nil, bytes: image(config: sha("c"), layer: sha("l"), subject: subject, artifactType: "application/x.sig"))
        #expect(sig.subject == subject)
        let all = try await r.referrers(repo, of: subject, artifactType: nil)
        #expect(all.map(\.digest) == [sig.digest.description])
        #expect(all.first?.artifactType == "application/x.sig")
        #expect(try await r.referrers(repo, of: subject, artifactType: "application/other").isEmpty)
        #expect(try await r.referrers(repo, of: sha("unknown"), artifactType: nil).isEmpty)
    }

    @Test func catalogPagination() async throws {
        let r = makeRegistry()
        for n in ["b", "a/x", "c", "a/y"] {
            try await r.monolithicUpload(key(n + "0"), digest: sha("x"), contentLength: nil, body: Body("x"))
        }
        let p1 = try await r.catalog("111111111111", PageRequest(limit: 2, last: nil))
        #expect(p1.items == ["a/x0", "a/y0"])
        #expect(p1.next == "a/y0")
        let p2 = try await r.catalog("111111111111", PageRequest(limit: 2, last: p1.next))
        #expect(p2.items == ["b0", "c0"])
        #expect(p2.next == nil)
        #expect(try await r.catalog("111111111111", PageRequest(limit: 0, last: nil)).items == [])
    }
}

@Suite struct BlobLinkCacheTests {
    @Test func cachedBlobSizesGoWithUnlinksAndRepositoryDeletes() async throws {
        let r = makeRegistry()
        let repo = key("cache/app")
        try await r.monolithicUpload(repo, digest: sha("layer"), contentLength: 5, body: Body("layer"))
        #expect(try await r.blobSize(repo, sha("layer")) == 5)
        #expect(try await r.blobSize(repo, sha("layer")) == 5, "served from the cache")
        try await r.deleteBlob(repo, sha("layer"))
        await #expect(throws: BerthError.blobUnknown(sha("layer").description)) { try await r.blobSize(repo, sha("layer")) }
        try await r.monolithicUpload(repo, digest: sha("layer"), contentLength: 5, body: Body("layer"))
        #expect(try await r.blobSize(repo, sha("layer")) == 5)
        _ = try await r.deleteRepository(repo, force: true)
        await #expect(throws: BerthError.self) { try await r.blobSize(repo, sha("layer")) }
    }
}

/// A caller that may pull from every repository.
let anyone: Registry.PullPermission = { _ in true }

/// Records which repositories a mount asked about, answering from a fixed set.
final class PullProbe: Sendable {
    let allowed: Set<RepositoryKey>
    private let asked = Mutex<[RepositoryKey]>([])
    init(_ allowed: Set<RepositoryKey>) { self.allowed = allowed }
    var questions: [RepositoryKey] { asked.withLock { $0 } }
    var permission: Registry.PullPermission {
        { repository in
            self.asked.withLock { $0.append(repository) }
            return self.allowed.contains(repository)
        }
    }
}

/// Knowing a digest must not leak a blob: a mount links only what the caller may pull from a
/// repository of the same registry that holds it, and only while the account allows mounting.
@Suite struct MountIsolationTests {
    let secret = key("secret")
    let mine = key("mine")
    let digest = sha("private layer")

    func registryWithSecret(_ metadata: any MetadataStore = InMemoryMetadataStore()) async throws -> Registry {
        let r = makeRegistry(metadata: metadata)
        try await r.monolithicUpload(secret, digest: digest, contentLength: nil, body: Body("private layer"))
        return r
    }

    func expectSession(_ start: UploadStart, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .session = start else {
            Issue.record("expected an upload session: \(comment)", sourceLocation: sourceLocation); return
        }
    }

    @Test func explicitMountNeedsPullPermissionOnTheSource() async throws {
        let r = try await registryWithSecret()
        let probe = PullProbe([])
        expectSession(try await r.startUpload(mine, mount: digest, from: secret, mayPull: probe.permission), "no pull on secret")
        #expect(probe.questions == [secret])
        await #expect(throws: BerthError.blobUnknown(digest.description)) { _ = try await r.blobSize(self.mine, self.digest) }
        let allowed = PullProbe([secret])
        #expect(try await r.startUpload(mine, mount: digest, from: secret, mayPull: allowed.permission) == .mounted(digest))
        #expect(try await r.blobSize(mine, digest) == 13)
    }

    @Test func automaticMountOnlyFromARepositoryTheCallerMayPull() async throws {
        let r = try await registryWithSecret()
        let denied = PullProbe([])
        expectSession(try await r.startUpload(mine, mount: digest, from: nil, mayPull: denied.permission), "no pull anywhere")
        #expect(denied.questions == [secret], "only repositories holding the blob are candidates")
        await #expect(throws: BerthError.blobUnknown(digest.description)) { _ = try await r.blobSize(self.mine, self.digest) }
        // Another holder the caller may pull from qualifies; the one it may not is never the source.
        let shared = key("shared")
        #expect(try await r.startUpload(shared, mount: digest, from: secret, mayPull: anyone) == .mounted(digest))
        let probe = PullProbe([shared])
        #expect(try await r.startUpload(mine, mount: digest, from: nil, mayPull: probe.permission) == .mounted(digest))
        #expect(probe.questions.last == shared)
    }

    @Test func explicitSourceDoesNotFallBackToOtherHolders() async throws {
        let r = try await registryWithSecret()
        try await r.repositoryForPush(key("empty"))
        let probe = PullProbe([secret])
        expectSession(try await r.startUpload(mine, mount: digest, from: key("empty"), mayPull: probe.permission),
                      "the named source lacks the blob")
        #expect(probe.questions.isEmpty, "a source that lacks the blob is not even considered")
    }

    @Test func otherRegistriesAreNeverSources() async throws {
        let r = try await registryWithSecret()
        // Another account, and the same account's public registry, are separate registries.
        for registryID in ["222222222222", "public:111111111111"] {
            let target = RepositoryKey(registryID: registryID, name: try RepositoryName("mine"))
            let probe = PullProbe([secret])
            expectSession(try await r.startUpload(target, mount: digest, from: nil, mayPull: probe.permission), "automatic, \(registryID)")
            expectSession(try await r.startUpload(target, mount: digest, from: secret, mayPull: probe.permission), "explicit, \(registryID)")
            #expect(probe.questions.isEmpty)
            await #expect(throws: BerthError.blobUnknown(digest.description)) { _ = try await r.blobSize(target, self.digest) }
        }
    }

    @Test func automaticMountChecksABoundedNumberOfCandidates() async throws {
        let r = try await registryWithSecret()
        for i in 0..<(Registry.maxMountCandidates + 4) {
            #expect(try await r.startUpload(key("holder-\(i)"), mount: digest, from: secret, mayPull: anyone) == .mounted(digest))
        }
        let probe = PullProbe([])
        expectSession(try await r.startUpload(mine, mount: digest, from: nil, mayPull: probe.permission), "nobody may be pulled")
        #expect(probe.questions.count == Registry.maxMountCandidates)
    }

    @Test func blobMountingDisabledMeansNoMountAtAll() async throws {
        let metadata = InMemoryMetadataStore()
        let r = try await registryWithSecret(metadata)
        #expect(try await r.blobMountingEnabled("111111111111"), "mounting is on unless the account turns it off")
        try await metadata.putAccountSetting("111111111111", BlobMounting.settingName, BlobMounting.disabled)
        #expect(try await r.blobMountingEnabled("111111111111") == false)
        #expect(try await r.blobMountingEnabled("public:111111111111") == false)
        #expect(try await r.blobMountingEnabled("222222222222"))
        let probe = PullProbe([secret])
        expectSession(try await r.startUpload(mine, mount: digest, from: secret, mayPull: probe.permission), "explicit, disabled")
        expectSession(try await r.startUpload(mine, mount: digest, from: nil, mayPull: probe.permission), "automatic, disabled")
        #expect(probe.questions.isEmpty)
        await #expect(throws: BerthError.blobUnknown(digest.description)) { _ = try await r.blobSize(self.mine, self.digest) }
        try await metadata.putAccountSetting("111111111111", BlobMounting.settingName, BlobMounting.enabled)
        #expect(try await r.startUpload(mine, mount: digest, from: secret, mayPull: probe.permission) == .mounted(digest))
    }
}
