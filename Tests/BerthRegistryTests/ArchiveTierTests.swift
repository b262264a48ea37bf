import BerthCore
import BerthRegistry
import BerthStorage
import Foundation
import NIOCore
import Testing

/// The archive tier (`archiveDirectory`): blobs only archived images use move there and come back; a blob
/// an ACTIVE image shares (in any repository), or one a push in progress has linked, never moves.
@Suite struct ArchiveTierTests {
    let a = key("team/a")
    let b = key("team/b")

    func manifest(config: Digest, layers: [Digest]) -> [UInt8] {
        let l = layers.map { #"{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#($0)","size":1}"# }
        return Array(("""
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(config)","size":1},
            "layers":[\(l.joined(separator: ","))]}
            """).utf8)
    }

    /// Pushes the blobs (named by their content) and the image; returns the manifest digest.
    func push(_ r: Registry, _ repo: RepositoryKey, config: String, layers: [String], tag: String) async throws -> Digest {
        for blob in [config] + layers where try await r.linkedBlobSize(sha(blob), in: repo) == nil {
            try await r.monolithicUpload(repo, digest: sha(blob), contentLength: nil, body: Body(blob))
        }
        return try await r.putManifest(repo, reference: .tag(try Tag(tag)), contentType: nil,
                                       bytes: manifest(config: sha(config), layers: layers.map(sha))).digest
    }

    struct World {
        let registry: Registry
        let tier: any BlobTiering
        let archiveDir: String?
    }

    static func worlds() throws -> [World] {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-tier-\(UUID().uuidString)").path
        let files = try FileSystemBlobStore(root: base + "/data", archiveRoot: base + "/archive")
        let memory = InMemoryBlobStore(archiveTier: true)
        return [
            World(registry: Registry(blobs: files, metadata: try SQLiteMetadataStore(path: base + "/data/berth.db")), tier: files,
                  archiveDir: base + "/archive"),
            World(registry: Registry(blobs: memory, metadata: InMemoryMetadataStore()), tier: memory, archiveDir: nil),
        ]
    }

    func archived(_ w: World, _ blobs: [String]) async throws -> Set<String> {
        var out = Set<String>()
        for blob in blobs where try await w.tier.isInArchive(sha(blob)) { out.insert(blob) }
        return out
    }

    @Test func onlyBlobsNoActiveImageSharesMove() async throws {
        let all = ["c1", "c2", "c3", "shared", "u1", "u2"]
        for w in try Self.worlds() {
            let r = w.registry
            let one = try await push(r, a, config: "c1", layers: ["shared", "u1"], tag: "one")
            let two = try await push(r, a, config: "c2", layers: ["shared", "u2"], tag: "two")
            let three = try await push(r, b, config: "c3", layers: ["shared"], tag: "three")

            try await r.updateImageStorageClass(one, in: a, to: .archive, at: 1)
            #expect(try await archived(w, all) == ["c1", "u1"], "the shared layer stays: images two and three use it")
            if let dir = w.archiveDir {
                #expect(FileManager.default.fileExists(atPath: dir + "/blobs/sha256/" + sha("u1").encoded.prefix(2) + "/" + sha("u1").encoded))
            }
            // Archived bytes are still read (an image still ACTIVE elsewhere could list them).
            #expect(try await read(r, sha("u1")) == "u1")
            #expect(try await read(r, sha("shared")) == "shared")

            try await r.updateImageStorageClass(two, in: a, to: .archive, at: 2)
            #expect(try await archived(w, all) == ["c1", "u1", "c2", "u2"], "image three, in another repository, still uses the shared layer")

            try await r.updateImageStorageClass(three, in: b, to: .archive, at: 3)
            #expect(try await archived(w, all) == Set(all), "no ACTIVE image uses anything now")

            // A restore brings back the blobs of that image only, in the background (ACTIVATING, then ACTIVE).
            #expect(try await r.updateImageStorageClass(two, in: a, to: .standard, at: 4) == .activating)
            #expect(try await eventuallyActive(r, two, in: a))
            #expect(try await archived(w, all) == ["c1", "u1", "c3"])
            #expect(try await r.manifest(a, reference: .tag(try Tag("two"))).digest == two)

            // A new image sharing an archived layer brings it back; so does pushing an archived image again.
            _ = try await push(r, b, config: "c4", layers: ["u1"], tag: "four")
            #expect(try await archived(w, all) == ["c1", "c3"])
            _ = try await push(r, b, config: "c3", layers: ["shared"], tag: "three-again")
            #expect(try await archived(w, all) == ["c1"])
            for blob in all { #expect(try await read(r, sha(blob)) == blob) }
        }
    }

    /// Waits (real time, at most 5 s) until the image is ACTIVE.
    func eventuallyActive(_ r: Registry, _ d: Digest, in repo: RepositoryKey) async throws -> Bool {
        for _ in 0 ..< 500 {
            if try await r.storedManifest(d, in: repo)?.status == .active { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test func archivedOnlyBlobsCannotBePulledUntilARestoreCompletes() async throws {
        for w in try Self.worlds() {
            let r = w.registry
            let one = try await push(r, a, config: "c1", layers: ["u1", "shared"], tag: "one")
            _ = try await push(r, a, config: "c2", layers: ["shared"], tag: "two")
            #expect(try await r.blobSize(a, sha("u1")) == 2)  // cached as pullable
            try await r.updateImageStorageClass(one, in: a, to: .archive, at: 1)
            await #expect(throws: BerthError.self) { _ = try await r.blobSize(self.a, sha("u1")) }
            await #expect(throws: BerthError.self) { _ = try await r.blobSize(self.a, sha("c1")) }
            #expect(try await r.blobSize(a, sha("shared")) == 6, "image two still uses it")
            #expect(try await r.linkedBlobSize(sha("u1"), in: a) == 2, "still linked (BatchCheckLayerAvailability: ARCHIVED)")
            #expect(try await r.updateImageStorageClass(one, in: a, to: .standard, at: 2) == .activating)
            #expect(try await eventuallyActive(r, one, in: a))
            #expect(try await r.blobSize(a, sha("u1")) == 2)
            #expect(try await read(r, sha("u1")) == "u1")
        }
    }

    @Test func aRestoreLeftActivatingIsFinishedByTheNextRound() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-tier-\(UUID().uuidString)").path
        let files = try FileSystemBlobStore(root: base + "/data", archiveRoot: base + "/archive")
        let first = Registry(blobs: files, metadata: try SQLiteMetadataStore(path: base + "/data/berth.db"))
        let one = try await push(first, a, config: "c1", layers: ["u1"], tag: "one")
        try await first.updateImageStorageClass(one, in: a, to: .archive, at: 1)
        #expect(try await files.isInArchive(sha("u1")))
        // The restore was asked for, and the process died before the bytes came back.
        let metadata = try SQLiteMetadataStore(path: base + "/data/berth.db")
        _ = try await metadata.updateImageStorageClass(one, in: a, to: .standard, at: 2, activating: true)
        // After a restart, the schedule's first round finishes it.
        let second = Registry(blobs: files, metadata: metadata)
        #expect(try await second.storedManifest(one, in: a)?.status == .activating)
        #expect(try await second.finishActivations() == 1)
        #expect(try await !files.isInArchive(sha("u1")))
        let image = try #require(try await metadata.image(one, in: a))
        #expect(image.status == .active && image.lastActivatedAt != nil)
        #expect(try await read(second, sha("u1")) == "u1")
        #expect(try await second.finishActivations() == 0)
    }

    @Test func aBlobAPushInProgressLinkedNeverMoves() async throws {
        for w in try Self.worlds() {
            let r = w.registry
            let one = try await push(r, a, config: "c1", layers: ["pending", "u1"], tag: "one")
            // Repository b has the layer linked with no manifest yet: its push is in progress.
            try await r.monolithicUpload(b, digest: sha("pending"), contentLength: nil, body: Body("pending"))
            try await r.updateImageStorageClass(one, in: a, to: .archive, at: 1)
            #expect(try await archived(w, ["c1", "pending", "u1"]) == ["c1", "u1"])
        }
    }

    @Test func withoutATierNothingMoves() async throws {
        let r = makeRegistry()
        let one = try await push(r, a, config: "c1", layers: ["u1"], tag: "one")
        try await r.updateImageStorageClass(one, in: a, to: .archive, at: 1)
        #expect(try await read(r, sha("u1")) == "u1")
    }
}

@Suite struct FileSystemBlobTierTests {
    func store(tier: Bool = true) throws -> (FileSystemBlobStore, String, String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("berth-fstier-\(UUID().uuidString)").path
        return (try FileSystemBlobStore(root: base + "/data", readChunkSize: 3, archiveRoot: tier ? base + "/archive" : nil),
                base + "/data", base + "/archive")
    }

    func commit(_ s: FileSystemBlobStore, _ text: String) async throws -> Digest {
        let id = "u-" + sha(text).encoded.prefix(16)
        let w = try await s.openUpload(id: id, at: 0)
        try await w.write(ByteBuffer(string: text))
        try await w.close()
        try await s.commitUpload(id: id, as: sha(text))
        return sha(text)
    }

    func contents(_ s: FileSystemBlobStore, _ d: Digest) async throws -> String {
        var out = ""
        try await s.read(d, range: nil) { out += String(buffer: $0) }
        return out
    }

    @Test func movesKeepEveryReadWorking() async throws {
        let (s, data, archive) = try store()
        let d = try await commit(s, "hello tiers")
        #expect(s.hasArchiveTier)
        try await s.moveToArchive(d)
        #expect(try await s.isInArchive(d))
        #expect(!FileManager.default.fileExists(atPath: s.layout.blobPath(d)))
        #expect(s.localFilePath(of: d)?.hasPrefix(archive) == true)
        #expect(try await s.size(of: d) == 11)
        #expect(try await contents(s, d) == "hello tiers")
        var ranged = ""
        try await s.read(d, range: ByteRange(start: 6, end: 10)) { ranged += String(buffer: $0) }
        #expect(ranged == "tiers")
        try await s.moveToArchive(d)  // already there: nothing
        try await s.moveFromArchive(d)
        #expect(try await !s.isInArchive(d))
        #expect(s.localFilePath(of: d)?.hasPrefix(data) == true)
        #expect(try await contents(s, d) == "hello tiers")
        try await s.moveFromArchive(d)  // already back: nothing

        // Delete removes it from both tiers, also when a stale copy is left in the archive.
        try await s.moveToArchive(d)
        _ = try await commit(s, "hello tiers")  // pushed again: in both tiers for now
        #expect(try await !s.isInArchive(d))
        try await s.delete(d)
        #expect(try await s.size(of: d) == nil)
        #expect(!FileManager.default.fileExists(atPath: archive + "/blobs/sha256/" + d.encoded.prefix(2) + "/" + d.encoded))
        await #expect(throws: StorageError.self) { _ = try await self.contents(s, d) }
    }

    @Test func aMoveOntoACopyAlreadyThereRemovesTheSource() async throws {
        let (s, _, archive) = try store()
        let d = try await commit(s, "twice")
        try await s.moveToArchive(d)
        _ = try await commit(s, "twice")
        try await s.moveToArchive(d)
        #expect(!FileManager.default.fileExists(atPath: s.layout.blobPath(d)))
        #expect(FileManager.default.fileExists(atPath: archive + "/blobs/sha256/" + d.encoded.prefix(2) + "/" + d.encoded))
        #expect(try await contents(s, d) == "twice")
    }

    @Test func withoutAnArchiveRootMovesDoNothing() async throws {
        let (s, data, _) = try store(tier: false)
        let d = try await commit(s, "stay")
        #expect(!s.hasArchiveTier)
        try await s.moveToArchive(d)
        #expect(try await !s.isInArchive(d))
        #expect(s.localFilePath(of: d) == data + "/blobs/sha256/" + d.encoded.prefix(2) + "/" + d.encoded)
    }
}
