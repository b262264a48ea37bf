import BerthApp
import BerthCore
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Logging
import NIOCore
import Testing

/// Issue #13: a KMS key whose deletion completes takes its data with it (crypto-shredding). The blobs of
/// a repository encrypted with it can never be read again — by Berth or by anyone holding the data
/// directory, since only wrapped data keys and ciphertext remain — and the garbage collector reclaims them
/// once their images are deleted.
@Suite struct CryptoShreddingTests {
    struct Pieces: AsyncSequence, Sendable {
        typealias Element = ByteBuffer
        let bytes: [UInt8]
        struct AsyncIterator: AsyncIteratorProtocol {
            var rest: ArraySlice<UInt8>
            mutating func next() async throws -> ByteBuffer? {
                guard !rest.isEmpty else { return nil }
                let piece = rest.prefix(100_000)
                rest = rest.dropFirst(piece.count)
                return ByteBuffer(bytes: piece)
            }
        }
        func makeAsyncIterator() -> AsyncIterator { AsyncIterator(rest: bytes[...]) }
    }

    func read(_ r: Registry, _ repo: RepositoryKey, _ d: Digest) async throws -> [UInt8] {
        var out: [UInt8] = []
        try await r.readBlob(repo, d, range: nil) { out += Array(buffer: $0) }
        return out
    }

    /// Whether any file under `dir` contains `needle`.
    func anyFileContains(_ dir: String, _ needle: [UInt8]) throws -> Bool {
        let files = FileManager.default.enumerator(atPath: dir)?.compactMap { $0 as? String } ?? []
        for f in files {
            guard let data = FileManager.default.contents(atPath: dir + "/" + f) else { continue }
            if data.range(of: Data(needle)) != nil { return true }
        }
        return false
    }

    @Test func aDeletedKeyLeavesItsBlobsUnrecoverableAndCollectable() async throws {
        let clock = ManualWallClock()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-shred-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var config = BerthConfiguration()
        config.dataDir = dir
        config.rootAccessKeyId = "AKIAIOSFODNN7EXAMPLE"
        config.rootSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        let storage = StorageBackends(blobs: try FileSystemBlobStore(root: dir), metadata: try SQLiteMetadataStore(path: dir + "/berth.db"))
        let services = try BerthServices.make(config, storage: storage, clock: clock)
        try await services.bootstrap(logger: Logger(label: "test"))
        let r = services.registry
        let account = services.config.accountId

        let key = try await services.keys.createKey(account: account)
        let repo = RepositoryKey(registryID: account, name: try RepositoryName("secret/app"))
        #expect(try await r.createRepository(repo, settings: RepositorySettings(encryptionType: "KMS", kmsKey: services.keys.keyARN(key))))
        let secret = Array(String(repeating: "a plaintext nobody may recover; ", count: 4_000).utf8)
        let digest = Digest.sha256(of: secret)
        try await r.monolithicUpload(repo, digest: digest, contentLength: nil, body: Pieces(bytes: secret))
        #expect(try await read(r, repo, digest) == secret)
        #expect(try !anyFileContains(dir, Array(secret.prefix(64))), "no plaintext at rest")

        // Pending deletion: pulls fail (KMSInvalidStateException), and the bytes are all still there.
        _ = try await services.keys.scheduleDeletion(key, days: 7)
        await #expect(throws: BerthError.self) { _ = try await self.read(r, repo, digest) }
        clock.advance(by: 7 * 86_400)
        #expect(try await services.keys.runDueWork().deleted == 1)
        #expect(try await storage.metadata.kmsKeyMaterials(key.keyID).isEmpty, "the key material is gone")
        do {
            _ = try await read(r, repo, digest)
            Issue.record("a blob of a deleted key was read")
        } catch BerthError.kms(let type, _) {
            #expect(type == "NotFoundException" || type == "InvalidCiphertextException", "\(type)")
        }
        // Nothing under the data directory holds the plaintext or anything that would open it.
        #expect(try !anyFileContains(dir, Array(secret.prefix(64))))

        // The garbage collector reclaims the bytes once the repository (or its images) is deleted.
        _ = try await r.deleteRepository(repo, force: true)
        let report = try await r.collectGarbage(GarbageCollectionOptions(grace: 0))
        #expect(report.blobsDeleted == 1)
        #expect(try await storage.blobs.size(of: digest) == nil)
    }
}
