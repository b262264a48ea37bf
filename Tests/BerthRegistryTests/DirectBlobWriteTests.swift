import BerthCore
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import NIOCore
import Testing

/// A body that yields its chunks, then fails (a client that goes away mid-upload).
struct FailingBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let chunks: [String]
    struct Gone: Error {}
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [String]
        mutating func next() async throws -> ByteBuffer? {
            guard !rest.isEmpty else { throw Gone() }
            return ByteBuffer(string: rest.removeFirst())
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: chunks) }
}

/// Monolithic pushes on a store that writes blobs straight under their digest (`DirectBlobWriting`, S3's
/// way; here the in-memory store with `directWrites`): what reaches the store, and what a failure leaves.
/// The sealed variants are in `BlobEncryptionTests` (`direct:` arguments); the S3 store's own writer is in
/// `S3BlobStoreTests`.
@Suite struct DirectBlobWriteTests {
    let repo = key("direct/app")
    let other = key("direct/other")

    func setup(clock: ManualWallClock = ManualWallClock()) -> (Registry, InMemoryBlobStore, InMemoryMetadataStore) {
        let blobs = InMemoryBlobStore(directWrites: true, clock: clock)
        let metadata = InMemoryMetadataStore()
        let r = Registry(blobs: blobs, metadata: metadata, settings: RegistrySettings(writeBufferSize: 8), clock: clock)
        return (r, blobs, metadata)
    }

    @Test func aCompletingPutWithTheWholeBlobStagesNothing() async throws {
        let (r, blobs, metadata) = setup()
        let session = try await r.startUpload(repo)
        let d = try await r.completeUpload(repo, upload: session.id, digest: sha("hello direct world"), range: nil,
                                           contentLength: 18, body: Body("hello ", "direct ", "world"))
        #expect(d == sha("hello direct world"))
        #expect(try await read(r, d) == "hello direct world")
        #expect(try await r.blobSize(repo, d) == 18)
        #expect(try await metadata.upload(session.id) == nil)
        #expect(try await blobs.stagedUploads().isEmpty)
        #expect(try await blobs.uploadedSize(id: session.id) == nil)
        #expect(blobs.unfinishedBlobWrites == 0)
        // POST ?digest= with the body: the same way.
        try await r.monolithicUpload(repo, digest: sha("posted"), contentLength: 6, body: Body("pos", "ted"))
        #expect(try await read(r, sha("posted")) == "posted")
        #expect(try await blobs.stagedUploads().isEmpty)
        #expect(blobs.unfinishedBlobWrites == 0)
        #expect(blobs.publishedBlobWrites == 2)
    }

    @Test func aWrongDigestOrLengthStoresNothing() async throws {
        let (r, blobs, metadata) = setup()
        let session = try await r.startUpload(repo)
        await #expect(throws: BerthError.digestMismatch(expected: sha("expected").description, computed: sha("actual").description)) {
            _ = try await r.completeUpload(self.repo, upload: session.id, digest: sha("expected"), range: nil,
                                           contentLength: 6, body: Body("actual"))
        }
        #expect(try await blobs.size(of: sha("expected")) == nil)
        #expect(try await blobs.size(of: sha("actual")) == nil)
        #expect(blobs.unfinishedBlobWrites == 0)
        // The upload is still open, with nothing in it: a correct completion goes through.
        #expect(try await metadata.upload(session.id)?.offset == 0)
        await #expect(throws: BerthError.sizeInvalid("received 6 bytes, the request announced 9")) {
            _ = try await r.completeUpload(self.repo, upload: session.id, digest: sha("actual"), range: nil,
                                           contentLength: 9, body: Body("actual"))
        }
        #expect(try await blobs.size(of: sha("actual")) == nil)
        _ = try await r.completeUpload(repo, upload: session.id, digest: sha("actual"), range: nil, contentLength: 6, body: Body("actual"))
        #expect(try await read(r, sha("actual")) == "actual")
        await #expect(throws: BerthError.sizeInvalid("received 5 bytes, Content-Length was 9")) {
            try await r.monolithicUpload(self.repo, digest: sha("hello"), contentLength: 9, body: Body("hello"))
        }
        await #expect(throws: BerthError.self) {
            try await r.monolithicUpload(self.repo, digest: sha("other"), contentLength: nil, body: Body("hello"))
        }
        #expect(try await blobs.size(of: sha("hello")) == nil)
        #expect(try await blobs.size(of: sha("other")) == nil)
        #expect(blobs.unfinishedBlobWrites == 0)
    }

    @Test func aClientThatGoesAwayLeavesNothing() async throws {
        let (r, blobs, _) = setup()
        await #expect(throws: FailingBody.Gone.self) {
            try await r.monolithicUpload(self.repo, digest: sha("partial body"), contentLength: 12, body: FailingBody(chunks: ["partial "]))
        }
        let session = try await r.startUpload(repo)
        await #expect(throws: FailingBody.Gone.self) {
            _ = try await r.completeUpload(self.repo, upload: session.id, digest: sha("partial body"), range: nil,
                                           contentLength: 12, body: FailingBody(chunks: ["partial "]))
        }
        #expect(try await blobs.size(of: sha("partial body")) == nil)
        #expect(blobs.unfinishedBlobWrites == 0)
        #expect(try await blobs.stagedUploads().isEmpty)
    }

    @Test func aBlobStoredAlreadyIsKeptAndLinked() async throws {
        let (r, blobs, _) = setup()
        try await r.monolithicUpload(repo, digest: sha("shared layer"), contentLength: 12, body: Body("shared layer"))
        let session = try await r.startUpload(other)
        _ = try await r.completeUpload(other, upload: session.id, digest: sha("shared layer"), range: nil,
                                       contentLength: 12, body: Body("shared layer"))
        #expect(try await r.blobSize(repo, sha("shared layer")) == 12)
        #expect(try await r.blobSize(other, sha("shared layer")) == 12)
        #expect(try await read(r, sha("shared layer")) == "shared layer")
        #expect(blobs.unfinishedBlobWrites == 0)
        #expect(blobs.publishedBlobWrites == 1)  // the second push's bytes were dropped
    }

    @Test func chunkedAndEmptyUploadsAreStagedAsBefore() async throws {
        let (r, blobs, _) = setup()
        let session = try await r.startUpload(repo)
        #expect(try await r.appendChunk(repo, upload: session.id, range: nil, contentLength: 6, body: Body("chunk,")) == 6)
        #expect(try await blobs.uploadedSize(id: session.id) == 6)
        _ = try await r.completeUpload(repo, upload: session.id, digest: sha("chunk,last"), range: nil,
                                       contentLength: 4, body: Body("last"))
        #expect(try await read(r, sha("chunk,last")) == "chunk,last")
        // A completion with no body and nothing uploaded is the empty blob.
        let empty = try await r.startUpload(repo)
        _ = try await r.completeUpload(repo, upload: empty.id, digest: sha(""), range: nil, contentLength: 0, body: Body())
        #expect(try await r.blobSize(repo, sha("")) == 0)
        #expect(blobs.unfinishedBlobWrites == 0)
        #expect(blobs.publishedBlobWrites == 0)
    }

    /// A process that dies mid-write leaves its write unpublished; the stale-upload purge gives it up once it
    /// is as old as an upload would have to be.
    @Test func theUploadPurgeAbandonsWritesOfProcessesThatDied() async throws {
        let clock = ManualWallClock()
        let (r, blobs, _) = setup(clock: clock)
        let dead = try await blobs.openBlob(sha("never finished"))
        try await dead.write(ByteBuffer(string: "never"))
        _ = try await r.purgeStaleUploads()
        #expect(blobs.unfinishedBlobWrites == 1)
        clock.advance(by: 24 * 3600 + 1)
        _ = try await r.purgeStaleUploads()
        #expect(blobs.unfinishedBlobWrites == 0)
        #expect(try await blobs.size(of: sha("never finished")) == nil)
        await #expect(throws: StorageError.self) { try await dead.publish() }
    }
}
