import BerthCore
import BerthS3
import BerthStorage
import Foundation
import NIOCore
import Testing

/// The storage conformance suite: every backend runs every test here. A new backend adds a case.
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case filesystemAndSQLite
    /// Files and PostgreSQL (a schema of its own on the server of `BERTH_TEST_POSTGRES_URL`).
    case postgres

    var testDescription: String { rawValue }

    /// PostgreSQL only when a server is given (or CI requires one: then its absence fails the cases).
    static var allCases: [Backend] { [.memory, .filesystemAndSQLite] + (PostgresTestDatabase.available ? [.postgres] : []) }
    /// The backends whose state outlives the store object.
    static var persistent: [Backend] { allCases.filter { $0 != .memory } }

    struct Stores {
        let blobs: any BlobStore
        let metadata: any MetadataStore
        let directory: String?
        /// Reopens the same persistent state (a restart); nil for backends without persistence.
        let reopen: (@Sendable () async throws -> (any BlobStore, any MetadataStore))?
    }

    func make() async throws -> Stores {
        switch self {
        case .memory:
            return Stores(blobs: InMemoryBlobStore(chunkSize: 7), metadata: InMemoryMetadataStore(), directory: nil, reopen: nil)
        case .filesystemAndSQLite:
            let dir = try Self.temporaryDirectory()
            let open: @Sendable () async throws -> (any BlobStore, any MetadataStore) = {
                (try FileSystemBlobStore(root: dir, readChunkSize: 7), try SQLiteMetadataStore(path: dir + "/berth.db"))
            }
            let (b, m) = try await open()
            return Stores(blobs: b, metadata: m, directory: dir, reopen: open)
        case .postgres:
            let dir = try Self.temporaryDirectory()
            let schema = try await PostgresTestDatabase.newSchema()
            let open: @Sendable () async throws -> (any BlobStore, any MetadataStore) = {
                (try FileSystemBlobStore(root: dir, readChunkSize: 7), try await PostgresTestDatabase.store(schema: schema))
            }
            let (b, m) = try await open()
            return Stores(blobs: b, metadata: m, directory: dir, reopen: open)
        }
    }

    static func temporaryDirectory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-conf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

/// The blob store conformance suite runs on every blob store; S3 against a real SeaweedFS (see `SeaweedFS`).
enum BlobBackend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case memory
    case filesystem
    case s3

    var testDescription: String { rawValue }

    /// The store; the embedded ones hand reads over in 7-byte pieces (every border is crossed), or in
    /// `chunkSize` pieces for the tests of large blobs (7-byte pieces of 3 MiB took minutes in debug).
    func make(chunkSize: Int? = nil) async throws -> any BlobStore {
        switch self {
        case .memory:
            guard let chunkSize else { return try await Backend.memory.make().blobs }
            return InMemoryBlobStore(chunkSize: chunkSize)
        case .filesystem:
            guard let chunkSize else { return try await Backend.filesystemAndSQLite.make().blobs }
            return try FileSystemBlobStore(root: try Backend.temporaryDirectory(), readChunkSize: chunkSize)
        case .s3:
            guard let server = SeaweedFS.current else { throw SeaweedFS.Unavailable(description: "no SeaweedFS in scope") }
            return try S3BlobStore(server.configuration())
        }
    }
}

func buffer(_ s: String) -> ByteBuffer { ByteBuffer(string: s) }

let registry = "111111111111"
func k(_ name: String) -> RepositoryKey { RepositoryKey(storedRegistryID: registry, name: name) }

func readAll(_ blobs: any BlobStore, _ d: Digest, range: ByteRange? = nil) async throws -> String {
    var out = ByteBuffer()
    try await blobs.read(d, range: range) { var b = $0; out.writeBuffer(&b) }
    return String(buffer: out)
}

func stage(_ blobs: any BlobStore, _ id: String, _ parts: [String]) async throws -> Digest {
    let w = try await blobs.openUpload(id: id, at: 0)
    for p in parts { try await w.write(buffer(p)) }
    try await w.close()
    return Digest.sha256(of: Array(parts.joined().utf8))
}

@Suite(.seaweedFS) struct BlobStoreConformance {
    @Test(arguments: BlobBackend.allCases)
    func uploadCommitAndRead(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        let d = try await stage(blobs, "u1", ["hello ", "world, ", "this is a blob"])
        #expect(try await blobs.size(of: d) == nil, "a blob is invisible before commit")
        #expect(try await blobs.uploadedSize(id: "u1") == 27)
        try await blobs.commitUpload(id: "u1", as: d)
        #expect(try await blobs.size(of: d) == 27)
        #expect(try await blobs.uploadedSize(id: "u1") == nil)
        #expect(try await readAll(blobs, d) == "hello world, this is a blob")
        #expect(try await readAll(blobs, d, range: ByteRange(start: 6, end: 10)) == "world")
    }

    @Test(arguments: BlobBackend.allCases)
    func reopeningAnUploadTruncatesUncommittedTail(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        _ = try await stage(blobs, "u2", ["abcdef"])
        let w = try await blobs.openUpload(id: "u2", at: 3)
        try await w.write(buffer("XYZ"))
        try await w.close()
        #expect(try await blobs.uploadedSize(id: "u2") == 6)
        var seen = ""
        try await blobs.readUpload(id: "u2", length: 6) { seen += String(buffer: $0) }
        #expect(seen == "abcXYZ")
        await #expect(throws: (any Error).self) { _ = try await blobs.openUpload(id: "u2", at: 100) }
    }

    /// An upload written by three requests (three segments on S3, one of them cut back by a rewrite) reads
    /// back by range: inside one segment, across borders, to the end; past the end is an error.
    @Test(arguments: BlobBackend.allCases)
    func uploadsReadBackByRange(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        let text = "hello world, this is staged"
        for (at, piece) in [(0, "hello wXXX"), (7, "orld, "), (13, "this is staged")] {
            let w = try await blobs.openUpload(id: "r1", at: Int64(at))
            try await w.write(buffer(piece))
            try await w.close()
        }
        #expect(try await blobs.uploadedSize(id: "r1") == Int64(text.utf8.count))
        for (start, end) in [(0, 4), (3, 9), (7, 12), (6, 13), (12, 26), (26, 26), (0, 26)] {
            var seen = ""
            try await blobs.readUpload(id: "r1", range: ByteRange(start: Int64(start), end: Int64(end))) { seen += String(buffer: $0) }
            #expect(seen == String(Array(text)[start...end]), "bytes \(start)-\(end)")
        }
        await #expect(throws: (any Error).self) {
            try await blobs.readUpload(id: "r1", range: ByteRange(start: 20, end: 27)) { _ in }
        }
        await #expect(throws: (any Error).self) {
            try await blobs.readUpload(id: "no-such-upload", range: ByteRange(start: 0, end: 0)) { _ in }
        }
    }

    @Test(arguments: BlobBackend.allCases)
    func deleteUploadAndBlob(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        let d = try await stage(blobs, "u3", ["x"])
        try await blobs.deleteUpload(id: "u3")
        #expect(try await blobs.uploadedSize(id: "u3") == nil)
        try await blobs.deleteUpload(id: "never-existed")
        _ = try await stage(blobs, "u4", ["x"])
        try await blobs.commitUpload(id: "u4", as: d)
        try await blobs.delete(d)
        #expect(try await blobs.size(of: d) == nil)
    }

    @Test(arguments: BlobBackend.allCases)
    func sameBlobCommittedTwiceStaysIntact(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<8 {
                group.addTask {
                    let d = try await stage(blobs, "par\(i)", ["same ", "content"])
                    try await blobs.commitUpload(id: "par\(i)", as: d)
                }
            }
            try await group.waitForAll()
        }
        let d = Digest.sha256(of: Array("same content".utf8))
        #expect(try await readAll(blobs, d) == "same content")
    }

    /// A reader that opened a blob at one size (as plaintext) learns before any byte that its stored size
    /// is another (sealed since): whole reads and ranges alike, on every store (S3 from the GET itself).
    @Test(arguments: BlobBackend.allCases)
    func readExpectingAStoredSizeRefusesAnother(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make()
        let d = try await stage(blobs, "sz1", ["twelve bytes"])
        try await blobs.commitUpload(id: "sz1", as: d)
        for range in [nil, ByteRange(start: 3, end: 7)] {
            var got = ""
            try await blobs.read(d, range: range, storedSize: 12) { got += String(buffer: $0) }
            #expect(got == (range == nil ? "twelve bytes" : "lve b"))
            var delivered = 0
            await #expect(throws: BlobSizeChanged(digest: d)) {
                try await blobs.read(d, range: range, storedSize: 40) { delivered += $0.readableBytes }
            }
            #expect(delivered == 0, "no byte reaches the consumer when the size differs")
        }
    }
}

extension BlobStoreConformance {
    struct ClientGone: Error {}

    /// A blob of 3 MiB (S3 reads it ahead in 1 MiB chunks): every byte in order, whole and in ranges
    /// across chunk borders, with and without the stored-size check; a consumer that fails in the middle
    /// (the client went away) fails the read with its own error, and the store reads on as before.
    @Test(arguments: BlobBackend.allCases)
    func largeReadsStreamInOrderAndStopWithTheirConsumer(_ backend: BlobBackend) async throws {
        let blobs = try await backend.make(chunkSize: 100_003)
        var data = ByteBuffer()
        var word = UInt64(0x9E37_79B9_7F4A_7C15)
        for _ in 0..<((3 << 20) / 8) {
            word = word &* 6364136223846793005 &+ 1442695040888963407
            data.writeInteger(word)
        }
        data.writeString("end")
        let w = try await blobs.openUpload(id: "large", at: 0)
        for at in stride(from: 0, to: data.readableBytes, by: 1 << 20) {
            try await w.write(data.getSlice(at: at, length: min(data.readableBytes - at, 1 << 20))!)
        }
        try await w.close()
        let size = Int64(data.readableBytes)
        let d = Digest.sha256(of: Array(data.readableBytesView))
        try await blobs.commitUpload(id: "large", as: d)
        for range in [nil, ByteRange(start: 1, end: size - 2), ByteRange(start: (1 << 20) - 5, end: (2 << 20) + 7)] {
            let expected = range.map { data.getSlice(at: Int($0.start), length: Int($0.count))! } ?? data
            var got = ByteBuffer()
            try await blobs.read(d, range: range) { var b = $0; got.writeBuffer(&b) }
            #expect(got == expected)
            got.clear()
            try await blobs.read(d, range: range, storedSize: size) { var b = $0; got.writeBuffer(&b) }
            #expect(got == expected)
        }
        for _ in 0..<3 {
            var delivered = 0
            await #expect(throws: ClientGone.self) {
                try await blobs.read(d, range: nil, storedSize: size) { chunk in
                    delivered += chunk.readableBytes
                    if delivered > 1 << 20 { throw ClientGone() }
                }
            }
            #expect(delivered < size)
        }
        var count = 0
        try await blobs.read(d, range: nil) { count += $0.readableBytes }
        #expect(count == size)
    }
}

@Suite struct MetadataStoreConformance {
    let d1 = Digest.sha256(of: Array("one".utf8))
    let d2 = Digest.sha256(of: Array("two".utf8))
    let d3 = Digest.sha256(of: Array("three".utf8))

    func record(_ d: Digest, subject: Digest? = nil, type: String? = nil) -> ManifestRecord {
        ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: type, bytes: Array("{\(d)}".utf8),
                       subject: subject, annotationsJSON: type == nil ? nil : #"{"k":"v"}"#, pushedAt: 1)
    }

    @Test(arguments: Backend.allCases)
    func repositoriesArePaginatedInOrder(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        for n in ["b/x", "a", "c", "b"] { #expect(try await m.createRepository(k(n), at: 1)) }
        #expect(try await m.createRepository(RepositoryKey(storedRegistryID: "222222222222", name: "zz"), at: 1))
        #expect(try await m.createRepository(k("a"), at: 2) == false)
        #expect(try await m.listRepositories(in: registry, after: nil, limit: 2) == ["a", "b", "b/x"])
        #expect(try await m.listRepositories(in: registry, after: "b", limit: 10) == ["b/x", "c"])
        // Each account × region (and each public registry) is a registry of its own.
        #expect(try await m.createRepository(RepositoryKey(storedRegistryID: "\(registry)@eu-west-1", name: "a"), at: 1))
        #expect(try await m.listRepositories(in: "\(registry)@eu-west-1", after: nil, limit: 10) == ["a"])
        #expect(try await m.registryIDs() == [registry, "\(registry)@eu-west-1", "222222222222"].sorted())
        #expect(try await m.repository(k("a"))?.createdAt == 1)
        #expect(try await m.deleteRepository(k("a")))
        #expect(try await m.repository(k("a")) == nil)
        #expect(try await m.deleteRepository(k("a")) == false)
    }

    @Test(arguments: Backend.allCases)
    func blobLinksArePerRepository(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r1"), at: 0)
        try await m.createRepository(k("r2"), at: 0)
        try await m.recordBlob(d1, size: 3, linkTo: k("r1"), at: 0)
        #expect(try await m.linkedBlobSize(d1, in: k("r1")) == 3)
        #expect(try await m.linkedBlobSize(d1, in: k("r2")) == nil)
        #expect(try await m.blobSize(d1) == 3)
        #expect(try await m.linkBlob(d1, to: k("r2"), at: 0))
        #expect(try await m.linkBlob(d2, to: k("r2"), at: 0) == false)
        #expect(try await m.linkedBlobSize(d1, in: k("r2")) == 3)
        #expect(try await m.unlinkBlob(d1, from: k("r2")))
        #expect(try await m.unlinkBlob(d1, from: k("r2")) == false)
        #expect(try await m.linkedBlobSize(d1, in: k("r2")) == nil)
        await #expect(throws: BerthError.nameUnknown("nope")) { try await m.recordBlob(d1, size: 3, linkTo: k("nope"), at: 0) }
    }

    @Test(arguments: Backend.allCases)
    func repositoriesLinkingABlobStayInTheirRegistry(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let other = RepositoryKey(storedRegistryID: "222222222222", name: "a")
        let publicRepo = RepositoryKey(storedRegistryID: "public:" + registry, name: "a")
        for key in [k("c"), k("a"), k("b"), other, publicRepo] { try await m.createRepository(key, at: 0) }
        try await m.recordBlob(d1, size: 3, linkTo: k("c"), at: 0)
        #expect(try await m.linkBlob(d1, to: k("a"), at: 0))
        #expect(try await m.linkBlob(d1, to: other, at: 0))
        #expect(try await m.linkBlob(d1, to: publicRepo, at: 0))
        #expect(try await m.repositoriesLinking(d1, in: registry, limit: 10) == [k("a"), k("c")])
        #expect(try await m.repositoriesLinking(d1, in: registry, limit: 1) == [k("a")])
        #expect(try await m.repositoriesLinking(d1, in: registry, limit: 0) == [])
        #expect(try await m.repositoriesLinking(d1, in: "222222222222", limit: 10) == [other])
        #expect(try await m.repositoriesLinking(d1, in: "public:" + registry, limit: 10) == [publicRepo])
        #expect(try await m.repositoriesLinking(d2, in: registry, limit: 10) == [])
        #expect(try await m.unlinkBlob(d1, from: k("a")))
        #expect(try await m.repositoriesLinking(d1, in: registry, limit: 10) == [k("c")])
    }

    /// `manifestState`: what a tag or digest names now, its status and push time, as the separate reads give them.
    @Test(arguments: Backend.allCases)
    func manifestStateFollowsTagsDeletesAndArchives(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.recordBlob(d3, size: 3, linkTo: k("r"), at: 0)
        #expect(try await m.manifestState(.tag("t"), in: k("r")) == nil)
        #expect(try await m.manifestState(.digest(d1), in: k("r")) == nil)
        #expect(try await m.manifestState(.tag("t"), in: k("nope")) == nil)
        var first = record(d1)
        first.pushedAt = 5
        _ = try await m.putManifest(ManifestPut(record: first, blobs: [d3], manifests: [], tag: "t"), in: k("r"))
        #expect(try await m.manifestState(.tag("t"), in: k("r")) == ManifestState(digest: d1, status: .active, pushedAt: 5))
        #expect(try await m.manifestState(.digest(d1), in: k("r")) == ManifestState(digest: d1, status: .active, pushedAt: 5))
        #expect(try await m.manifestState(.tag("other"), in: k("r")) == nil)
        // The tag moves.
        var second = record(d2)
        second.pushedAt = 7
        _ = try await m.putManifest(ManifestPut(record: second, blobs: [d3], manifests: [], tag: "t"), in: k("r"))
        #expect(try await m.manifestState(.tag("t"), in: k("r"))?.digest == d2)
        // Archived: the status changes, nothing else.
        #expect(try await m.updateImageStorageClass(d1, in: k("r"), to: .archive, at: 9) == .updated(.archived, changed: true))
        #expect(try await m.manifestState(.digest(d1), in: k("r")) == ManifestState(digest: d1, status: .archived, pushedAt: 5))
        // Deleted, then pushed again: a later push time.
        #expect(try await m.deleteImage(.digest(d2), in: k("r")) == .deleted(tags: ["t"], imageDeleted: true))
        #expect(try await m.manifestState(.tag("t"), in: k("r")) == nil)
        #expect(try await m.manifestState(.digest(d2), in: k("r")) == nil)
        second.pushedAt = 11
        _ = try await m.putManifest(ManifestPut(record: second, blobs: [d3], manifests: [], tag: "t"), in: k("r"))
        #expect(try await m.manifestState(.tag("t"), in: k("r")) == ManifestState(digest: d2, status: .active, pushedAt: 11))
    }

    @Test(arguments: Backend.allCases)
    func manifestPutChecksReferencesAtomically(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        await #expect(throws: BerthError.manifestBlobUnknown(d2.description)) {
            _ = try await m.putManifest(ManifestPut(record: record(d1), blobs: [d2], manifests: [], tag: "t"), in: k("r"))
        }
        #expect(try await m.manifest(d1, in: k("r")) == nil, "nothing is stored when a reference is missing")
        #expect(try await m.resolveTag("t", in: k("r")) == nil)
        try await m.recordBlob(d2, size: 3, linkTo: k("r"), at: 0)
        let r1 = try await m.putManifest(ManifestPut(record: record(d1), blobs: [d2], manifests: [], tag: "t"), in: k("r"))
        #expect(r1 == ManifestPutResult(created: true, previousTagDigest: nil))
        #expect(try await m.manifest(d1, in: k("r")) == record(d1))
        #expect(try await m.resolveTag("t", in: k("r")) == d1)
        // An index must find its children.
        await #expect(throws: BerthError.manifestBlobUnknown(d2.description)) {
            _ = try await m.putManifest(ManifestPut(record: record(d3), blobs: [], manifests: [d2], tag: nil), in: k("r"))
        }
        let r2 = try await m.putManifest(ManifestPut(record: record(d3), blobs: [], manifests: [d1], tag: "t"), in: k("r"))
        #expect(r2 == ManifestPutResult(created: true, previousTagDigest: d1))
        let again = try await m.putManifest(ManifestPut(record: record(d3), blobs: [], manifests: [d1], tag: "t"), in: k("r"))
        #expect(again == ManifestPutResult(created: false, previousTagDigest: nil))
        await #expect(throws: BerthError.nameUnknown("zz")) {
            _ = try await m.putManifest(ManifestPut(record: record(d3), blobs: [], manifests: [], tag: nil), in: k("zz"))
        }
    }

    @Test(arguments: Backend.allCases)
    func tagsListDeleteAndManifestDelete(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        for t in ["v3", "v1", "latest", "v2"] {
            _ = try await m.putManifest(ManifestPut(record: record(d1), blobs: [], manifests: [], tag: t), in: k("r"))
        }
        #expect(try await m.listTags(in: k("r"), after: nil, limit: 10) == ["latest", "v1", "v2", "v3"])
        #expect(try await m.listTags(in: k("r"), after: "v1", limit: 1) == ["v2", "v3"])
        #expect(try await m.deleteTag("v1", in: k("r")))
        #expect(try await m.deleteTag("v1", in: k("r")) == false)
        #expect(try await m.manifest(d1, in: k("r")) != nil, "deleting a tag keeps the manifest")
        #expect(try await m.deleteImage(.digest(d1), in: k("r")) == .deleted(tags: ["latest", "v2", "v3"], imageDeleted: true))
        #expect(try await m.listTags(in: k("r"), after: nil, limit: 10) == [], "deleting a manifest removes its tags")
        #expect(try await m.deleteImage(.digest(d1), in: k("r")) == .notFound)
    }

    @Test(arguments: Backend.allCases)
    func referrersBySubject(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.createRepository(k("other"), at: 0)
        _ = try await m.putManifest(ManifestPut(record: record(d2, subject: d1, type: "application/x.sig"), blobs: [], manifests: [], tag: nil), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: record(d3, subject: d1, type: "application/x.sbom"), blobs: [], manifests: [], tag: nil), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: record(d3, subject: d1, type: "application/x.sbom"), blobs: [], manifests: [], tag: nil), in: k("other"))
        let refs = try await m.referrers(of: d1, in: k("r"))
        #expect(refs.map(\.digest) == [d2, d3].sorted())
        #expect(Set(refs.compactMap(\.artifactType)) == ["application/x.sig", "application/x.sbom"])
        #expect(refs.first?.annotationsJSON == #"{"k":"v"}"#)
        #expect(try await m.referrers(of: d2, in: k("r")).isEmpty)
        _ = try await m.deleteImage(.digest(d2), in: k("r"))
        #expect(try await m.referrers(of: d1, in: k("r")).map(\.digest) == [d3])
    }

    @Test(arguments: Backend.allCases)
    func uploadSessionsAdvanceWithCompareAndSet(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        let s = UploadSession(id: "abc-1", repository: k("r"), offset: 0, startedAt: 10, updatedAt: 10)
        try await m.createUpload(s)
        #expect(try await m.upload("abc-1") == s)
        #expect(try await m.advanceUpload("abc-1", from: 0, to: 100, at: 20))
        #expect(try await m.advanceUpload("abc-1", from: 0, to: 200, at: 21) == false)
        #expect(try await m.upload("abc-1")?.offset == 100)
        #expect(try await m.staleUploads(before: 15).isEmpty)
        #expect(try await m.staleUploads(before: 25).map(\.id) == ["abc-1"])
        try await m.deleteUpload("abc-1")
        #expect(try await m.upload("abc-1") == nil)
        #expect(try await m.advanceUpload("abc-1", from: 100, to: 200, at: 30) == false)
    }

    /// The cross-node claim on an upload (docs/s3.md): taken by compare-and-set on the committed offset,
    /// refused to a second writer while it holds, renewed by its writer, released by the advance (only the
    /// claimant's) or by `releaseUpload` (only the claimant's), and taken over once it is stale.
    @Test(arguments: Backend.allCases)
    func uploadClaimsAdmitOneWriterAtATime(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.createUpload(UploadSession(id: "c", repository: k("r"), offset: 0, startedAt: 1, updatedAt: 1))
        #expect(try await m.claimUpload("c", at: 5, writer: "a", now: 10, staleBefore: 0) == false, "not the committed offset")
        #expect(try await m.claimUpload("nope", at: 0, writer: "a", now: 10, staleBefore: 0) == false, "no such upload")
        #expect(try await m.claimUpload("c", at: 0, writer: "a", now: 10, staleBefore: 0))
        var s = try #require(try await m.upload("c"))
        #expect(s.writer == "a" && s.writingSince == 10 && s.offset == 0)
        #expect(try await m.claimUpload("c", at: 0, writer: "b", now: 11, staleBefore: 1) == false, "a holds it")
        #expect(try await m.advanceUpload("c", from: 0, to: 50, at: 11, writer: "b") == false, "b does not hold it")
        #expect(try await m.advanceUpload("c", from: 0, to: 50, at: 11) == false, "claimed: no unclaimed advance")
        try await m.releaseUpload("c", writer: "b")
        #expect(try await m.upload("c")?.writer == "a", "only the holder releases")
        #expect(try await m.claimUpload("c", at: 0, writer: "a", now: 12, staleBefore: 2), "its writer renews it")
        #expect(try await m.upload("c")?.writingSince == 12)
        #expect(try await m.advanceUpload("c", from: 0, to: 50, at: 13, writer: "a"))
        s = try #require(try await m.upload("c"))
        #expect(s.offset == 50 && s.writer == nil && s.writingSince == nil && s.lastChunkSize == 50, "the advance releases it")
        #expect(try await m.claimUpload("c", at: 0, writer: "b", now: 14, staleBefore: 4) == false, "the offset moved")
        #expect(try await m.claimUpload("c", at: 50, writer: "b", now: 14, staleBefore: 4))
        try await m.releaseUpload("c", writer: "b")
        #expect(try await m.upload("c")?.writer == nil)
        #expect(try await m.advanceUpload("c", from: 50, to: 60, at: 15), "unclaimed: an unclaimed advance")
        // A stale claim (taken before `staleBefore`) is taken over; the stalled writer then can neither renew nor advance.
        #expect(try await m.claimUpload("c", at: 60, writer: "slow", now: 20, staleBefore: 10))
        #expect(try await m.claimUpload("c", at: 60, writer: "next", now: 30, staleBefore: 20) == false, "not older than the timeout")
        #expect(try await m.claimUpload("c", at: 60, writer: "next", now: 31, staleBefore: 21))
        #expect(try await m.claimUpload("c", at: 60, writer: "slow", now: 32, staleBefore: 22) == false)
        #expect(try await m.advanceUpload("c", from: 60, to: 70, at: 32, writer: "slow") == false)
        #expect(try await m.advanceUpload("c", from: 60, to: 80, at: 33, writer: "next"))
        #expect(try await m.upload("c")?.offset == 80)
        // A heartbeat's renewals (`UploadClaimHeartbeat`): each holds the claim a full timeout after it, past the
        // first claim's; a holder late to renew still renews while nobody took its claim over.
        #expect(try await m.claimUpload("c", at: 80, writer: "live", now: 40, staleBefore: 30))
        #expect(try await m.claimUpload("c", at: 80, writer: "live", now: 48, staleBefore: 38))
        #expect(try await m.claimUpload("c", at: 80, writer: "other", now: 55, staleBefore: 45) == false, "renewed at 48")
        #expect(try await m.claimUpload("c", at: 80, writer: "live", now: 70, staleBefore: 60), "stale, but nobody took it")
        #expect(try await m.upload("c")?.writingSince == 70)
        #expect(try await m.claimUpload("c", at: 80, writer: "other", now: 75, staleBefore: 65) == false)
        try await m.releaseUpload("c", writer: "live")
        // A new session starts unclaimed, whatever it was created with.
        try await m.createUpload(UploadSession(id: "d", repository: k("r"), offset: 0, startedAt: 1, updatedAt: 1,
                                               writer: "x", writingSince: 1))
        #expect(try await m.upload("d")?.writer == nil)
        #expect(try await m.staleUploads(before: 100).map(\.writer) == [nil, nil])
    }

    /// Two writers racing for one offset: exactly one claim is granted, whichever store serializes them.
    @Test(arguments: Backend.allCases)
    func concurrentClaimsGrantOne(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        for round in 0..<10 {
            let id = "race-\(round)"
            try await m.createUpload(UploadSession(id: id, repository: k("r"), offset: 0, startedAt: 1, updatedAt: 1))
            let granted = try await withThrowingTaskGroup(of: Bool.self) { group in
                for w in 0..<6 {
                    group.addTask { try await m.claimUpload(id, at: 0, writer: "w\(w)", now: 5, staleBefore: 0) }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(granted == 1)
        }
    }

    /// Many writers tagging into one repository at once all succeed (PostgreSQL's serialization failures
    /// are retried until they get through, not turned into errors).
    @Test(arguments: Backend.allCases)
    func concurrentTagsIntoOneRepositoryAllLand(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("busy"), at: 0)
        let bytes = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#.utf8)
        let record = ManifestRecord(digest: Digest.sha256(of: bytes), mediaType: MediaType.ociManifest, artifactType: nil,
                                    bytes: bytes, subject: nil, annotationsJSON: nil, pushedAt: 1)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<48 {
                group.addTask {
                    _ = try await m.putManifest(ManifestPut(record: record, blobs: [], manifests: [], tag: "t\(i)"), in: k("busy"))
                }
            }
            try await group.waitForAll()
        }
        #expect(Set(try await m.listTags(in: k("busy"), after: nil, limit: 100)) == Set((0..<48).map { "t\($0)" }))
    }

    /// The chunk sizes travel with the session (ECR's minimum part size, checked on whichever node completes).
    @Test(arguments: Backend.allCases)
    func uploadSessionsRememberTheirChunkSizes(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.createUpload(UploadSession(id: "parts", repository: k("r"), offset: 0, startedAt: 1, updatedAt: 1))
        var s = try #require(try await m.upload("parts"))
        #expect(s.lastChunkSize == nil && s.smallestInnerChunk == nil)
        #expect(try await m.advanceUpload("parts", from: 0, to: 700, at: 2))
        s = try #require(try await m.upload("parts"))
        #expect(s.lastChunkSize == 700 && s.smallestInnerChunk == nil, "one chunk: it is the last, none is inner")
        #expect(try await m.advanceUpload("parts", from: 700, to: 1000, at: 3))
        #expect(try await m.advanceUpload("parts", from: 1000, to: 1900, at: 4))
        #expect(try await m.advanceUpload("parts", from: 0, to: 5, at: 5) == false, "a refused advance changes nothing")
        s = try #require(try await m.upload("parts"))
        #expect(s.offset == 1900 && s.lastChunkSize == 900 && s.smallestInnerChunk == 300)
        #expect(s == UploadSession(id: "parts", repository: k("r"), offset: 0, startedAt: 1, updatedAt: 1)
            .advanced(by: 700, to: 700, at: 2).advanced(by: 300, to: 1000, at: 3).advanced(by: 900, to: 1900, at: 4))
        #expect(try await m.staleUploads(before: 10).first == s)
    }

    @Test(arguments: Backend.allCases)
    func recordingABlobCanFinishItsUploadInTheSameWrite(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.createUpload(UploadSession(id: "u1", repository: k("r"), offset: 0, startedAt: 0, updatedAt: 0))
        try await m.createUpload(UploadSession(id: "u2", repository: k("r"), offset: 0, startedAt: 0, updatedAt: 0))
        try await m.recordBlob(d1, size: 1, linkTo: k("r"), at: 0, finishingUpload: "u1")
        #expect(try await m.linkedBlobSize(d1, in: k("r")) == 1)
        #expect(try await m.upload("u1") == nil)
        #expect(try await m.upload("u2") != nil, "only the named session is finished")
        // A refused record (no such repository) leaves the session as it was.
        await #expect(throws: (any Error).self) {
            try await m.recordBlob(d2, size: 2, linkTo: k("missing"), at: 0, finishingUpload: "u2")
        }
        #expect(try await m.upload("u2") != nil)
    }

    @Test(arguments: Backend.allCases)
    func deletingARepositoryRemovesItsContent(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        try await m.recordBlob(d1, size: 1, linkTo: k("r"), at: 0)
        _ = try await m.putManifest(ManifestPut(record: record(d2), blobs: [d1], manifests: [], tag: "t"), in: k("r"))
        try await m.createUpload(UploadSession(id: "u", repository: k("r"), offset: 0, startedAt: 0, updatedAt: 0))
        #expect(try await m.deleteRepository(k("r")))
        try await m.createRepository(k("r"), at: 1)
        #expect(try await m.resolveTag("t", in: k("r")) == nil)
        #expect(try await m.manifest(d2, in: k("r")) == nil)
        #expect(try await m.linkedBlobSize(d1, in: k("r")) == nil)
        #expect(try await m.upload("u") == nil)
    }

    @Test(arguments: Backend.allCases)
    func concurrentTagMovesEndConsistent(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        let digests = (0..<16).map { Digest.sha256(of: Array("m\($0)".utf8)) }
        try await withThrowingTaskGroup(of: Void.self) { g in
            for d in digests {
                g.addTask { _ = try await m.putManifest(ManifestPut(record: record(d), blobs: [], manifests: [], tag: "hot"), in: k("r")) }
            }
            try await g.waitForAll()
        }
        let winner = try #require(try await m.resolveTag("hot", in: k("r")))
        #expect(digests.contains(winner))
        for d in digests { #expect(try await m.manifest(d, in: k("r")) != nil) }
    }

    @Test(arguments: Backend.allCases)
    func repositoryRecordsPageLikeTheirNames(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        for (i, name) in ["b", "a/x", "c", "a"].enumerated() {
            try await m.createRepository(k(name), at: Double(i), settings: RepositorySettings(imageTagMutability: i == 2 ? .immutable : .mutable))
        }
        try await m.createRepository(RepositoryKey(storedRegistryID: "222222222222", name: "z"), at: 9)
        let all = try await m.repositoryRecords(in: registry, after: nil, limit: 10)
        #expect(all.map(\.key.name) == ["a", "a/x", "b", "c"])
        #expect(all.map(\.createdAt) == [3, 1, 0, 2])
        #expect(all.map(\.settings.imageTagMutability) == [.mutable, .mutable, .mutable, .immutable])
        #expect(try await m.repositoryRecords(in: registry, after: "a/x", limit: 1).map(\.key.name) == ["b", "c"], "limit + 1 rows")
        #expect(try await m.repositoryRecords(in: registry, after: "c", limit: 5).isEmpty)
        for r in all { #expect(try await m.repository(r.key) == r) }
    }

    @Test(arguments: Backend.persistent)
    func stateSurvivesReopen(_ backend: Backend) async throws {
        let s = try await backend.make()
        try await s.metadata.createRepository(k("r"), at: 0)
        try await s.metadata.createUpload(UploadSession(id: "u", repository: k("r"), offset: 0, startedAt: 0, updatedAt: 0))
        _ = try await s.metadata.advanceUpload("u", from: 0, to: 5, at: 1)
        let (blobs2, meta2) = try await s.reopen!()
        #expect(try await meta2.upload("u")?.offset == 5)
        _ = blobs2
    }
}

@Suite struct ImageMetadataConformance {
    @Test(arguments: Backend.allCases)
    func imagesTagsReferencesAndPulls(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let layer = Digest.sha256(of: Array("layer".utf8))
        let child = Digest.sha256(of: Array("child".utf8))
        let index = Digest.sha256(of: Array("index".utf8))
        try await m.createRepository(k("r"), at: 0)
        try await m.recordBlob(layer, size: 5, linkTo: k("r"), at: 0)
        let rec = { (d: Digest, size: Int64) in
            ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                           subject: nil, annotationsJSON: nil, pushedAt: 2, imageSize: size)
        }
        _ = try await m.putManifest(ManifestPut(record: rec(child, 5), blobs: [layer], manifests: [], tag: "b"), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: rec(child, 5), blobs: [layer], manifests: [], tag: "a"), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: rec(index, 5), blobs: [], manifests: [child], tag: nil), in: k("r"))
        let images = try await m.images(in: k("r"), after: nil, limit: 10)
        #expect(images.map(\.digest) == [child, index].sorted())
        #expect(images.first { $0.digest == child }?.tags == ["a", "b"])
        #expect(images.first { $0.digest == index }?.tags == [])
        #expect(try await m.image(child, in: k("r"))?.imageSize == 5)
        #expect(try await m.manifestsReferencing(child, in: k("r")) == [index])
        #expect(try await m.manifestsReferencing(layer, in: k("r")) == [child])
        #expect(try await m.imageCount(in: k("r")) == 2)
        try await m.recordPulls([ImagePulls(repository: k("r"), digest: child, lastPulledAt: 99)])
        #expect(try await m.image(child, in: k("r"))?.lastPulledAt == 99)
        #expect(try await m.image(index, in: k("r"))?.lastPulledAt == nil)
    }

    /// A lifecycle policy and its last evaluation live in the repository's settings, and go with it.
    @Test(arguments: Backend.allCases)
    func lifecyclePolicySettingsRoundTrip(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0, settings: RepositorySettings())
        let policy = #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":5},"action":{"type":"expire"}}]}"#
        _ = try await m.updateRepositorySettings(k("r")) {
            $0.lifecyclePolicy = policy
            $0.lifecycleEvaluatedAt = 1_800_000_000.5
        }
        let settings = try #require(try await m.repository(k("r"))?.settings)
        #expect(settings.lifecyclePolicy == policy)
        #expect(settings.lifecycleEvaluatedAt == 1_800_000_000.5)
        #expect(try await m.deleteRepository(k("r")))
        try await m.createRepository(k("r"), at: 1, settings: RepositorySettings())
        #expect(try await m.repository(k("r"))?.settings.lifecyclePolicy == nil)
    }

    @Test(arguments: Backend.allCases)
    func immutableTagsCannotMove(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0, settings: RepositorySettings(imageTagMutability: .immutableWithExclusion, exclusionFilters: ["latest"]))
        let d1 = Digest.sha256(of: Array("1".utf8)), d2 = Digest.sha256(of: Array("2".utf8))
        let rec = { (d: Digest) in
            ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                           subject: nil, annotationsJSON: nil, pushedAt: 2)
        }
        for t in ["v1", "latest"] { _ = try await m.putManifest(ManifestPut(record: rec(d1), blobs: [], manifests: [], tag: t), in: k("r")) }
        await #expect(throws: BerthError.tagImmutable("v1")) {
            _ = try await m.putManifest(ManifestPut(record: rec(d2), blobs: [], manifests: [], tag: "v1"), in: k("r"))
        }
        #expect(try await m.manifest(d2, in: k("r")) == nil, "a refused push stores nothing")
        _ = try await m.putManifest(ManifestPut(record: rec(d1), blobs: [], manifests: [], tag: "v1"), in: k("r"))
        _ = try await m.putManifest(ManifestPut(record: rec(d2), blobs: [], manifests: [], tag: "latest"), in: k("r"))
        #expect(try await m.resolveTag("latest", in: k("r")) == d2)
    }

    @Test(arguments: Backend.allCases)
    func accountsAndKeys(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        #expect(try await m.createAccount("111111111111", at: 1))
        #expect(try await m.createAccount("111111111111", at: 2) == false)
        let key = AccessKeyRecord(accessKeyID: "AKIATEST", accountID: "111111111111", principalARN: "arn:aws:iam::111111111111:root",
                                  sealedSecret: "sealed", createdAt: 3)
        try await m.putAccessKey(key)
        #expect(try await m.accessKey("AKIATEST") == key)
        #expect(try await m.setAccessKeyStatus("AKIATEST", "Inactive"))
        #expect(try await m.accessKey("AKIATEST")?.status == "Inactive")
        #expect(try await m.accessKeys(ofAccount: "111111111111").count == 1)
        await #expect(throws: (any Error).self) {
            try await m.putAccessKey(AccessKeyRecord(accessKeyID: "AKIAX", accountID: "999999999999", principalARN: "x", sealedSecret: "s", createdAt: 0))
        }
        try await m.putAccountSetting("111111111111", "BLOB_MOUNTING", "ENABLED")
        #expect(try await m.accountSetting("111111111111", "BLOB_MOUNTING") == "ENABLED")
        #expect(try await m.deleteAccessKey("AKIATEST"))
        #expect(try await m.accessKey("AKIATEST") == nil)
    }
}

@Suite struct LargeReadTests {
    /// Large reads are pipelined in multi-MiB chunks: every byte and every range (at odd offsets, across
    /// chunk boundaries) must equal what was written, also when the blob is deleted mid-read.
    @Test func largeBlobsAndRangesReadExactly() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-map-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try FileSystemBlobStore(root: dir)
        var bytes = [UInt8](repeating: 0, count: (9 << 20) + 12345)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        let w = try await store.openUpload(id: "big", at: 0)
        try await w.write(ByteBuffer(bytes: bytes))
        try await w.close()
        let digest = Digest.sha256(of: bytes)
        try await store.commitUpload(id: "big", as: digest)
        func read(_ range: ByteRange?) async throws -> [UInt8] {
            var out: [UInt8] = []
            try await store.read(digest, range: range) { out += Array($0.readableBytesView) }
            return out
        }
        #expect(try await read(nil) == bytes)
        for (start, end) in [(1, (2 << 20) + 3), (4095, (5 << 20)), ((4 << 20) - 1, (8 << 20) + 1), (123, 124)] {
            let r = ByteRange(start: Int64(start), end: Int64(end))
            #expect(try await read(r) == Array(bytes[start...end]), "range \(start)-\(end)")
        }
        var first = true
        var total = 0
        try await store.read(digest, range: nil) { b in
            if first { try await store.delete(digest); first = false }
            total += b.readableBytes
        }
        #expect(total == bytes.count)
    }
}

@Suite struct BlobWriteModeTests {
    /// Both write strategies store exactly the bytes written: pieces of odd sizes that cross the write-back
    /// windows and page boundaries, an upload resumed at an offset (a chunked upload's next PATCH), and a
    /// resumed upload truncated back to its committed length.
    @Test(arguments: BlobWriteMode.allCases)
    func writesLandExactly(_ mode: BlobWriteMode) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-writes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try FileSystemBlobStore(root: dir, writeMode: mode)
        var bytes = [UInt8](repeating: 0, count: (21 << 20) + 777)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: (i &* 2246822519) >> 11) }
        let cuts = [0, 4097, (3 << 20) + 1, (9 << 20) + 5, (13 << 20), bytes.count]
        // First "PATCH": the first three pieces, with garbage after them that the next open truncates.
        var w = try await store.openUpload(id: "w", at: 0)
        for i in 0..<3 { try await w.write(ByteBuffer(bytes: bytes[cuts[i]..<cuts[i + 1]])) }
        try await w.write(ByteBuffer(bytes: [UInt8](repeating: 0xEE, count: 12345)))
        try await w.close()
        // Second "PATCH" resumes at the committed length.
        w = try await store.openUpload(id: "w", at: Int64(cuts[3]))
        for i in 3..<(cuts.count - 1) {
            var piece = w.makeBuffer(capacity: cuts[i + 1] - cuts[i])
            piece.writeBytes(bytes[cuts[i]..<cuts[i + 1]])
            try await w.write(piece)
        }
        try await w.close()
        #expect(try await store.uploadedSize(id: "w") == Int64(bytes.count))
        let digest = Digest.sha256(of: bytes)
        try await store.commitUpload(id: "w", as: digest)
        var out: [UInt8] = []
        try await store.read(digest, range: nil) { out += Array($0.readableBytesView) }
        #expect(out == bytes)
    }
}
