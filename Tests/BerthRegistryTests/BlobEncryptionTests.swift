import BerthCore
import BerthRegistry
import BerthStorage
@preconcurrency import Crypto
import Foundation
import NIOCore
import Synchronization
import Testing

/// A keyring for tests: one AES-GCM key per domain, keys that can be disabled.
final class TestKeyring: BlobKeyring {
    static let kmsA = "arn:aws:kms:us-east-1:111111111111:key/11111111-1111-1111-1111-111111111111"
    static let kmsB = "arn:aws:kms:us-east-1:111111111111:key/22222222-2222-2222-2222-222222222222"
    let keys: [String: SymmetricKey]
    let disabled = Mutex<Set<String>>([])
    let changes = Atomic<UInt64>(0)
    let unwraps = Atomic<Int>(0)

    init(seed: String = "test") {
        var k: [String: SymmetricKey] = [:]
        for d in ["AES256", Self.kmsA, Self.kmsB] {
            k[d] = SymmetricKey(data: SHA256.hash(data: Array((seed + d).utf8)))
        }
        keys = k
    }

    var generation: UInt64 { changes.load(ordering: .sequentiallyConsistent) }

    func setDisabled(_ domain: String, _ off: Bool) {
        disabled.withLock { if off { $0.insert(domain) } else { $0.remove(domain) } }
        changes.add(1, ordering: .sequentiallyConsistent)
    }

    func usable(_ domain: String) throws -> SymmetricKey {
        guard let key = keys[domain] else { throw BerthError.kms(kmsError: "NotFoundException", message: "Key '\(domain)' does not exist") }
        if disabled.withLock({ $0.contains(domain) }) { throw BerthError.kms(kmsError: "DisabledException", message: "\(domain) is disabled.") }
        return key
    }

    func domain(encryptionType: String, kmsKey: String?, account: String, region: String?) async throws -> String {
        let d = encryptionType == "AES256" ? "AES256" : (kmsKey ?? Self.kmsA)
        _ = try usable(d)
        return d
    }

    func aad(_ c: [String: String]) -> [UInt8] { Array(c.sorted { $0.key < $1.key }.map { $0.key + "=" + $0.value }.joined().utf8) }

    func newDataKey(domain: String, context: [String: String]) async throws -> (plaintext: [UInt8], wrapped: [UInt8]) {
        let k = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        return (k, try await wrap(k, domain: domain, context: context))
    }

    func wrap(_ dataKey: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8] {
        Array(try AES.GCM.seal(dataKey, using: try usable(domain), authenticating: aad(context)).combined!)
    }

    func unwrap(_ wrapped: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8] {
        unwraps.add(1, ordering: .sequentiallyConsistent)
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: try usable(domain), authenticating: aad(context)))
        } catch let e as BerthError {
            throw e
        } catch {
            throw BerthError.kms(kmsError: "InvalidCiphertextException", message: "does not open")
        }
    }
}

/// A request body of bytes, in pieces of the given sizes.
struct ByteBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let pieces: [[UInt8]]
    init(_ bytes: [UInt8], pieceSize: Int = 1 << 20) {
        pieces = stride(from: 0, to: Swift.max(bytes.count, 1), by: pieceSize).map { Array(bytes[$0..<Swift.min($0 + pieceSize, bytes.count)]) }
    }
    struct AsyncIterator: AsyncIteratorProtocol {
        var rest: [[UInt8]]
        mutating func next() async throws -> ByteBuffer? {
            guard !rest.isEmpty else { return nil }
            return ByteBuffer(bytes: rest.removeFirst())
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: pieces) }
}

func randomBytes(_ n: Int, seed: UInt64 = 1) -> [UInt8] {
    var x = seed &* 0x9E3779B97F4A7C15 | 1
    return (0..<n).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

@Suite struct BlobEncryptionTests {
    let aes = key("enc/aes")
    let kmsA = key("enc/kms-a")
    let kmsB = key("enc/kms-b")
    static let segment = SealedBlobHeader.defaultSegmentSize

    struct Setup {
        let registry: Registry
        let blobs: InMemoryBlobStore
        let metadata: InMemoryMetadataStore
        let keyring: TestKeyring
    }

    /// `direct`: monolithic pushes are written straight under their digest, as on S3 (`DirectBlobWriting`).
    func setup(encrypt: Bool = true, blobs given: InMemoryBlobStore? = nil, direct: Bool = false,
               metadata: InMemoryMetadataStore = InMemoryMetadataStore(), keyring: TestKeyring = TestKeyring()) async throws -> Setup {
        let blobs = given ?? InMemoryBlobStore(chunkSize: 50_000, directWrites: direct)
        let r = Registry(blobs: blobs, metadata: metadata, settings: RegistrySettings(writeBufferSize: 70_000),
                         keyring: keyring, encryptBlobs: encrypt)
        _ = try await r.createRepository(aes, settings: RepositorySettings())
        _ = try await r.createRepository(kmsA, settings: RepositorySettings(encryptionType: "KMS", kmsKey: TestKeyring.kmsA))
        _ = try await r.createRepository(kmsB, settings: RepositorySettings(encryptionType: "KMS", kmsKey: TestKeyring.kmsB))
        return Setup(registry: r, blobs: blobs, metadata: metadata, keyring: keyring)
    }

    func push(_ r: Registry, _ repo: RepositoryKey, _ bytes: [UInt8]) async throws -> BerthCore.Digest {
        let d = BerthCore.Digest.sha256(of: bytes)
        try await r.monolithicUpload(repo, digest: d, contentLength: Int64(bytes.count), body: ByteBody(bytes, pieceSize: 33_333))
        return d
    }

    func pull(_ r: Registry, _ repo: RepositoryKey, _ d: BerthCore.Digest, range: ByteRange? = nil) async throws -> [UInt8] {
        var out = [UInt8]()
        try await r.readBlob(repo, d, range: range) { out += $0.readableBytesView }
        return out
    }

    func stored(_ blobs: InMemoryBlobStore, _ d: BerthCore.Digest) async throws -> [UInt8] {
        var out = [UInt8]()
        try await blobs.read(d, range: nil) { out += $0.readableBytesView }
        return out
    }

    /// Replaces a stored blob's bytes (as an attacker or a failing disk would).
    func overwrite(_ blobs: InMemoryBlobStore, _ d: BerthCore.Digest, with bytes: [UInt8]) async throws {
        let w = try await blobs.openUpload(id: "tamper", at: 0)
        try await w.write(ByteBuffer(bytes: bytes))
        try await w.close()
        try await blobs.commitUpload(id: "tamper", as: d)
    }

    @Test func headerRoundTrips() throws {
        let h = SealedBlobHeader.fresh(slots: [.init(domain: "AES256", wrappedKey: [1, 2, 3]),
                                               .init(domain: TestKeyring.kmsA, wrappedKey: Array(repeating: 7, count: 200))])
        let bytes = h.encoded
        #expect(SealedBlobHeader(parsing: bytes + [9, 9, 9]) == h)
        #expect(SealedBlobHeader.length(fromPrefix: bytes) == bytes.count)
        #expect(SealedBlobHeader(parsing: bytes.dropLast()) == nil)
        var bad = bytes
        bad[0] ^= 1
        #expect(SealedBlobHeader(parsing: bad) == nil)
        #expect(h.sealedSize(ofPlaintext: 0, headerLength: 100) == 100 + 28)
        #expect(h.sealedSize(ofPlaintext: Int64(h.segmentSize), headerLength: 100) == 100 + Int64(h.segmentSize) + 28)
        #expect(h.sealedSize(ofPlaintext: Int64(h.segmentSize) + 1, headerLength: 100) == 100 + Int64(h.segmentSize) + 1 + 56)
    }

    @Test func segmentsOpenOnlyWhereTheyWereSealed() throws {
        let h = SealedBlobHeader.fresh(slots: [])
        let key = SymmetricKey(size: .bits256)
        let d = sha("x")
        let sealed = try h.seal([1, 2, 3], index: 4, final: nil, key: key)
        #expect(Array(try h.open(sealed, index: 4, final: nil, key: key)) == [1, 2, 3])
        #expect(throws: SealedBlobError.self) { try h.open(sealed, index: 5, final: nil, key: key) }
        #expect(throws: SealedBlobError.self) { try h.open(sealed, index: 4, final: d, key: key) }
        #expect(throws: SealedBlobError.self) { try h.open(sealed, index: 4, final: nil, key: SymmetricKey(size: .bits256)) }
        let other = SealedBlobHeader.fresh(slots: [])
        #expect(throws: SealedBlobError.self) { try other.open(sealed, index: 4, final: nil, key: key) }
        let last = try h.seal([5], index: 0, final: d, key: key)
        #expect(throws: SealedBlobError.self) { try h.open(last, index: 0, final: sha("y"), key: key) }
        #expect(throws: SealedBlobError.self) { try h.open(last, index: 0, final: nil, key: key) }
    }

    @Test(arguments: [0, 1, 65_535, 65_536, 65_537, 131_072, 200_000], [false, true])
    func roundTripsWithoutPlaintextAtRest(_ size: Int, direct: Bool) async throws {
        let s = try await setup(direct: direct)
        let bytes = randomBytes(size, seed: UInt64(size) + 3)
        for repo in [aes, kmsA] {
            let d = try await push(s.registry, repo, bytes)
            #expect(try await pull(s.registry, repo, d) == bytes)
            #expect(try await s.registry.blobSize(repo, d) == Int64(size))
        }
        let d = BerthCore.Digest.sha256(of: bytes)
        // Written straight under the digest once; the second key domain's push added its slot to that copy.
        #expect(s.blobs.publishedBlobWrites == (direct ? 1 : 0))
        let raw = try await stored(s.blobs, d)
        #expect(raw.count > size)
        #expect(SealedBlobHeader(parsing: raw)?.slots.map(\.domain) == ["AES256", TestKeyring.kmsA])
        #expect(SealedBlobHeader.hasMagic(raw))
        if size >= 64 {
            let probe = Array(bytes[(size / 2 - 32)..<(size / 2 + 32)])
            #expect(Data(raw).range(of: Data(probe)) == nil, "plaintext found at rest")
        }
        let source = try await s.registry.openBlob(aes, d)
        #expect(source.localFilePath == nil)
    }

    @Test(arguments: [false, true]) func rangesAcrossSegmentBoundaries(direct: Bool) async throws {
        let s = try await setup(direct: direct)
        let seg = Self.segment
        let bytes = randomBytes(3 * seg + 1234, seed: 9)
        let d = try await push(s.registry, kmsA, bytes)
        for (a, b) in [(0, 0), (seg - 1, seg), (seg - 10, 2 * seg + 10), (seg, 2 * seg - 1), (3 * seg, bytes.count - 1),
                       (bytes.count - 1, bytes.count - 1), (5, bytes.count - 1), (0, bytes.count - 1)] {
            let got = try await pull(s.registry, kmsA, d, range: ByteRange(start: Int64(a), end: Int64(b)))
            #expect(got == Array(bytes[a...b]), "range \(a)-\(b)")
        }
    }

    @Test func chunkedAndResumedUploadsSeal() async throws {
        let s = try await setup()
        let seg = Self.segment
        let bytes = randomBytes(2 * seg + 777, seed: 5)
        let session = try await s.registry.startUpload(kmsA)
        // Pieces that end inside, exactly at, and across segment boundaries.
        let cuts = [0, 1000, seg, seg + 1, 2 * seg + 5, bytes.count]
        for i in 0..<(cuts.count - 2) {
            let piece = Array(bytes[cuts[i]..<cuts[i + 1]])
            let offset = try await s.registry.appendChunk(kmsA, upload: session.id, range: nil, contentLength: Int64(piece.count),
                                                          body: ByteBody(piece))
            #expect(offset == Int64(cuts[i + 1]))
        }
        // Another process (no cached state) resumes the upload and completes it.
        let resumed = Registry(blobs: s.blobs, metadata: s.metadata, settings: RegistrySettings(writeBufferSize: 70_000),
                               keyring: s.keyring)
        let last = Array(bytes[cuts[cuts.count - 2]...])
        let d = try await resumed.completeUpload(kmsA, upload: session.id, digest: BerthCore.Digest.sha256(of: bytes), range: nil,
                                                 contentLength: Int64(last.count), body: ByteBody(last))
        #expect(d == BerthCore.Digest.sha256(of: bytes))
        #expect(try await pull(resumed, kmsA, d) == bytes)
        #expect(try await pull(s.registry, kmsA, d) == bytes)
        #expect(try await stored(s.blobs, d).count > bytes.count)
    }

    @Test func aFlippedBitAnywhereFailsTheRead() async throws {
        let bytes = randomBytes(2 * Self.segment + 99, seed: 7)
        let d = BerthCore.Digest.sha256(of: bytes)
        let probe = try await setup()
        _ = try await push(probe.registry, aes, bytes)
        let length = try await stored(probe.blobs, d).count
        for position in [0, 20, 40, 60, 100, 200, Self.segment, Self.segment + 100, length - 20, length - 1] {
            let s = try await setup()
            _ = try await push(s.registry, aes, bytes)
            var raw = try await stored(s.blobs, d)
            raw[position] ^= 0x10
            try await overwrite(s.blobs, d, with: raw)
            var got = [UInt8]()
            await #expect(throws: BerthError.self, "flip at \(position)") {
                try await s.registry.readBlob(aes, d, range: nil) { got += $0.readableBytesView }
            }
            // Whatever was delivered before the failure is a prefix of the real content, never wrong bytes.
            #expect(got == Array(bytes.prefix(got.count)))
        }
    }

    @Test func truncationAndForeignFilesFail() async throws {
        let s = try await setup()
        let bytes = randomBytes(2 * Self.segment + 50, seed: 8)
        let d = try await push(s.registry, aes, bytes)
        let other = randomBytes(2 * Self.segment + 50, seed: 9)
        let e = try await push(s.registry, aes, other)
        let raw = try await stored(s.blobs, d)
        let h = try #require(SealedBlobHeader(parsing: raw))
        // Cut at the last segment boundary (the file then ends with a non-final segment): refused.
        let cut = Int(h.offset(ofSegment: 2, headerLength: h.encoded.count))
        try await overwrite(s.blobs, d, with: Array(raw.prefix(cut)))
        await #expect(throws: BerthError.self) { _ = try await pull(s.registry, aes, d) }
        // Another blob's (valid) file standing in for this digest: refused, even for a range.
        try await overwrite(s.blobs, d, with: try await stored(s.blobs, e))
        await #expect(throws: BerthError.self) { _ = try await pull(s.registry, aes, d, range: ByteRange(start: 0, end: 9)) }
    }

    @Test func aWrongKeyDoesNotOpen() async throws {
        let blobs = InMemoryBlobStore()
        let metadata = InMemoryMetadataStore()
        let s = try await setup(blobs: blobs, metadata: metadata)
        let d = try await push(s.registry, aes, randomBytes(1000))
        let other = Registry(blobs: blobs, metadata: metadata, keyring: TestKeyring(seed: "another master key"))
        await #expect(throws: BerthError.self) { _ = try await pull(other, aes, d) }
    }

    @Test func aDisabledKeyStopsPullsUntilEnabled() async throws {
        let s = try await setup()
        let bytes = randomBytes(5000)
        let d = try await push(s.registry, kmsA, bytes)
        let a = try await push(s.registry, aes, bytes)
        #expect(try await pull(s.registry, kmsA, d) == bytes)
        let before = s.keyring.unwraps.load(ordering: .sequentiallyConsistent)
        for _ in 0..<5 { #expect(try await pull(s.registry, kmsA, d) == bytes) }
        #expect(s.keyring.unwraps.load(ordering: .sequentiallyConsistent) == before, "a hot blob's key is unwrapped once")
        s.keyring.setDisabled(TestKeyring.kmsA, true)
        await #expect(throws: BerthError.kms(kmsError: "DisabledException", message: "\(TestKeyring.kmsA) is disabled.")) {
            _ = try await pull(s.registry, kmsA, d)
        }
        // Pushes to the repository fail the same way; other key domains are unaffected.
        await #expect(throws: BerthError.self) { _ = try await push(s.registry, kmsA, randomBytes(10, seed: 77)) }
        #expect(try await pull(s.registry, aes, a) == bytes)
        s.keyring.setDisabled(TestKeyring.kmsA, false)
        #expect(try await pull(s.registry, kmsA, d) == bytes)
    }

    @Test(arguments: [false, true]) func oneDigestUnderTwoKeysIsReadableThroughEach(direct: Bool) async throws {
        let s = try await setup(direct: direct)
        let bytes = randomBytes(Self.segment + 10, seed: 11)
        let d = try await push(s.registry, kmsA, bytes)
        _ = try await push(s.registry, kmsB, bytes)
        _ = try await push(s.registry, kmsA, bytes)  // already there in this domain: kept as it is
        let raw = try await stored(s.blobs, d)
        let header = try #require(SealedBlobHeader(parsing: raw))
        #expect(header.slots.map { $0.domain } == [TestKeyring.kmsA, TestKeyring.kmsB])
        #expect(try await pull(s.registry, kmsA, d) == bytes)
        #expect(try await pull(s.registry, kmsB, d) == bytes)
        // Each repository's pulls depend on its own key only.
        s.keyring.setDisabled(TestKeyring.kmsA, true)
        #expect(try await pull(s.registry, kmsB, d) == bytes)
        await #expect(throws: BerthError.self) { _ = try await pull(s.registry, kmsA, d) }
    }

    /// Three key domains pushing one digest at the same moment: every one keeps a slot (the commits of a
    /// digest take turns under its lease instead of replacing each other's copy).
    @Test(arguments: [false, true]) func concurrentPushesOfOneDigestUnderSeveralKeysKeepEverySlot(direct: Bool) async throws {
        let s = try await setup(direct: direct)
        for round in 0..<12 {
            let bytes = randomBytes(Self.segment * 2 + 7, seed: 100 + UInt64(round))
            try await withThrowingTaskGroup(of: Void.self) { group in
                for repo in [aes, kmsA, kmsB] {
                    group.addTask { _ = try await push(s.registry, repo, bytes) }
                }
                try await group.waitForAll()
            }
            let d = BerthCore.Digest.sha256(of: bytes)
            let header = try #require(SealedBlobHeader(parsing: try await stored(s.blobs, d)))
            #expect(Set(header.slots.map(\.domain)) == ["AES256", TestKeyring.kmsA, TestKeyring.kmsB], "round \(round)")
            for repo in [aes, kmsA, kmsB] { #expect(try await pull(s.registry, repo, d) == bytes, "round \(round), \(repo)") }
        }
    }

    @Test func encryptionOffStoresPlaintextAndStillReadsSealedBlobs() async throws {
        let blobs = InMemoryBlobStore()
        let metadata = InMemoryMetadataStore()
        let on = try await setup(blobs: blobs, metadata: metadata)
        let sealedBytes = randomBytes(3000, seed: 1)
        let sealed = try await push(on.registry, aes, sealedBytes)
        let off = Registry(blobs: blobs, metadata: metadata, keyring: on.keyring, encryptBlobs: false)
        let plainBytes = randomBytes(3000, seed: 2)
        let plain = try await push(off, aes, plainBytes)
        #expect(try await stored(blobs, plain) == plainBytes)
        #expect(try await off.openBlob(aes, plain).localFilePath == nil)  // the in-memory store has no files
        #expect(try await pull(off, aes, plain) == plainBytes)
        #expect(try await pull(off, aes, sealed) == sealedBytes)
        // KMS repositories are sealed even with the setting off.
        let k = try await push(off, kmsA, randomBytes(100, seed: 3))
        #expect(try await stored(blobs, k).count > 100)
        // And plaintext blobs (written before encryption) stay readable with it on.
        #expect(try await pull(on.registry, aes, plain) == plainBytes)
    }

    @Test func encryptExistingSealsPlaintextBlobsInPlaceAndResumes() async throws {
        let blobs = InMemoryBlobStore()
        let metadata = InMemoryMetadataStore()
        let keyring = TestKeyring()
        // Blobs written before encryption: a registry without a keyring.
        let before = Registry(blobs: blobs, metadata: metadata)
        _ = try await before.createRepository(aes, settings: RepositorySettings())
        _ = try await before.createRepository(kmsA, settings: RepositorySettings(encryptionType: "KMS", kmsKey: TestKeyring.kmsA))
        let shared = randomBytes(Self.segment + 3, seed: 21)
        let own = randomBytes(1000, seed: 22)
        let d = try await push(before, aes, shared)
        _ = try await push(before, kmsA, shared)
        let o = try await push(before, kmsA, own)
        #expect(try await stored(blobs, d) == shared)
        let after = Registry(blobs: blobs, metadata: metadata, keyring: keyring)
        #expect(try await pull(after, aes, d) == shared)  // served as before
        let seen = Mutex<[BerthCore.Digest]>([])
        let p = try await after.encryptExisting(registries: ["111111111111"]) { _, digest in seen.withLock { $0.append(digest) } }
        #expect(p.sealed == 2 && p.skipped == 0 && p.total == 2 && p.sealedBytes == Int64(shared.count + own.count))
        #expect(seen.withLock { $0.count } == 2)
        let header = try #require(SealedBlobHeader(parsing: try await stored(blobs, d)))
        #expect(Set(header.slots.map { $0.domain }) == ["AES256", TestKeyring.kmsA])
        #expect(try await stored(blobs, o).count > own.count)
        #expect(try await pull(after, aes, d) == shared)
        #expect(try await pull(after, kmsA, d) == shared)
        #expect(try await pull(after, kmsA, o) == own)
        // A second run finds nothing left to do.
        let again = try await after.encryptExisting(registries: ["111111111111"]) { _, _ in }
        #expect(again.sealed == 0 && again.skipped == 2)
    }

    /// A server that opened a blob as plaintext (and cached that) while another process seals it: its next
    /// reads decrypt the new file instead of sending ciphertext as the blob.
    @Test func aBlobSealedByAnotherProcessIsReopenedNotServedAsCiphertext() async throws {
        let blobs = InMemoryBlobStore()
        let metadata = InMemoryMetadataStore()
        let before = Registry(blobs: blobs, metadata: metadata)
        _ = try await before.createRepository(aes, settings: RepositorySettings())
        let bytes = randomBytes(Self.segment * 2 + 5, seed: 31)
        let d = try await push(before, aes, bytes)
        let server = Registry(blobs: blobs, metadata: metadata, keyring: TestKeyring())
        let source = try await server.openBlob(aes, d)
        #expect(source.localFilePath == nil)  // the in-memory store has no files; the plaintext is cached as such
        #expect(try await pull(server, aes, d) == bytes)
        let admin = Registry(blobs: blobs, metadata: metadata, keyring: TestKeyring())
        #expect(try await admin.encryptExisting(registries: ["111111111111"]) { _, _ in }.sealed == 1)
        #expect(try await stored(blobs, d).count > bytes.count)
        // The source opened before the sealing, and a fresh pull: both read the plaintext.
        var out = [UInt8]()
        try await server.readBlob(source, range: nil) { out += $0.readableBytesView }
        #expect(out == bytes)
        #expect(try await pull(server, aes, d) == bytes)
        #expect(try await pull(server, aes, d, range: ByteRange(start: 10, end: 99)) == Array(bytes[10...99]))
    }
}
