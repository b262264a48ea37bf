import BerthAuth
import BerthCore
import BerthPostgres
import BerthRegistry
import BerthS3
import BerthStorage
import BerthSupport
import Crypto
import Foundation
import Logging
import NIOCore

/// `berth admin migrate --to-config FILE` (docs/moving-up.md): copies an embedded registry (SQLite metadata,
/// filesystem blobs) into the backends another configuration names — PostgreSQL for metadata, an S3 bucket
/// (or another directory) for blobs — verifies it, and leaves the source as it was.
///
/// Order: blobs first, then metadata, then verification, so that a target whose metadata is there has its
/// blobs too. Every step is resumable: a blob already in the target with the source's stored size is not
/// copied again, and the metadata copy keeps per-table high-water marks (`MetadataImport`).
public enum EmbeddedMigration {
    public struct Options: Sendable {
        /// Rows per metadata batch (one transaction each).
        public var batchSize = 500
        /// Blobs copied at the same time (`--blob-concurrency`): an object store answers each request with a
        /// latency a single stream waits out blob after blob.
        public var blobConcurrency = 4
        public init() {}
    }

    /// What a run did, printed as JSON on stdout.
    public struct Summary: Encodable, Sendable {
        public struct Blobs: Encodable, Sendable {
            /// Files in the source's blob store (both tiers).
            public var total = 0
            public var copied = 0
            public var copiedBytes: Int64 = 0
            /// Already in the target with the same stored size (an earlier run copied them).
            public var alreadyPresent = 0
            /// Verified by the digest of their bytes as stored (plaintext blobs).
            public var verifiedPlain = 0
            /// Verified by the digest of their plaintext, decrypted through the target registry.
            public var verifiedSealed = 0
            /// Sealed blobs no repository links (nothing can open them): checked by stored size only.
            public var sizeCheckedOnly = 0
            /// Blobs the source's metadata records but its blob store does not hold (copied as they are: missing).
            public var missingInSource: [String] = []
        }
        public var source: [String: String] = [:]
        public var target: [String: String] = [:]
        public var schemaVersion: Int? = nil
        public var resumed = false
        public var alreadyComplete = false
        public var blobs = Blobs()
        public var tables: [MetadataImport.Table] = []
        /// Files of the source's data directory that are not registry storage (audit trail, vulnerability
        /// database, …), left where they are: copy them to the target's data directory if it runs elsewhere.
        public var notCopied: [String] = []
        public var seconds = 0.0
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
        public init(_ description: String) { self.description = description }
    }

    static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    /// The master key file a configuration uses (`secretKeyFile`, else `<dataDir>/master.key`).
    static func masterKeyPath(_ c: BerthConfiguration) -> String { c.secretKeyFile ?? "\(c.dataDir)/master.key" }

    /// Checks that the target uses the source's master key: sealed blobs, sealed access-key secrets and KMS key
    /// material are copied as stored and open only with it.
    static func checkMasterKeys(source: BerthConfiguration, target: BerthConfiguration) throws {
        let from = masterKeyPath(source), to = masterKeyPath(target)
        guard FileManager.default.fileExists(atPath: from) else {
            throw Failure("the source has no master key at \(from): is \(source.dataDir) a Berth data directory?")
        }
        if resolved(from) == resolved(to) { return }
        guard FileManager.default.fileExists(atPath: to) else {
            throw Failure("the target configuration's master key file \(to) does not exist. Sealed blobs, access key secrets and "
                          + "KMS keys are copied as stored and open only with the source's key: copy \(from) to \(to) "
                          + "(mode 0600), or set secretKeyFile in the target configuration to it")
        }
        let a = try SecretBox.loadOrCreateKey(atPath: from), b = try SecretBox.loadOrCreateKey(atPath: to)
        let same = a.withUnsafeBytes { x in b.withUnsafeBytes { y in Data(x) == Data(y) } }
        guard same else {
            throw Failure("the target configuration's master key \(to) differs from the source's \(from): sealed blobs, access key "
                          + "secrets and KMS keys would not open. Use the source's key file on the target (copy it, or set secretKeyFile)")
        }
    }

    /// Runs the migration from the embedded registry `source` into `target`; `progress` gets one line per step.
    public static func run(source: BerthConfiguration, target: BerthConfiguration, options: Options = .init(),
                           environment: [String: String] = ProcessInfo.processInfo.environment,
                           progress: @escaping @Sendable (String) -> Void) async throws -> Summary {
        let started = Date()
        guard source.metadataBackend == "sqlite", source.blobBackend == "filesystem" else {
            throw Failure("the source must be an embedded registry (metadataBackend sqlite, blobBackend filesystem), "
                          + "got \(source.metadataBackend) + \(source.blobBackend)")
        }
        let database = "\(source.dataDir)/berth.db"
        guard FileManager.default.fileExists(atPath: database) else { throw Failure("no embedded registry at \(source.dataDir) (no berth.db)") }
        let sameDirectory = resolved(source.dataDir) == (FileManager.default.fileExists(atPath: target.dataDir) ? resolved(target.dataDir) : "")
        let moveMetadata: Bool
        switch target.metadataBackend {
        case "postgres": moveMetadata = true
        case "sqlite" where sameDirectory: moveMetadata = false
        default:
            throw Failure("the target's metadataBackend must be postgres (or sqlite in the same data directory, to move only the blobs), "
                          + "got \(target.metadataBackend)\(target.metadataBackend == "sqlite" ? " in another directory" : "")")
        }
        let moveBlobs: Bool
        switch target.blobBackend {
        case "s3": moveBlobs = true
        case "filesystem": moveBlobs = !(sameDirectory && target.archiveDirectory == source.archiveDirectory)
        default: throw Failure("the target's blobBackend must be s3 or filesystem, got \(target.blobBackend)")
        }
        guard moveMetadata || moveBlobs else { throw Failure("the target configuration stores everything where the source is: nothing to migrate") }

        // No Berth process may have the source open while it is copied, nor open it meanwhile.
        var sourceLock = try DatabaseOpenLock.exclusive(database: database)
        guard sourceLock != nil else {
            throw Failure("a berth process (a server or an admin command) has \(database) open: stop it, then migrate")
        }
        defer { withExtendedLifetime(sourceLock) {} }
        try checkMasterKeys(source: source, target: target)

        // Reach the target (the checks `berth verify-config` makes).
        let problems = await target.probeBackends(environment: environment)
        guard problems.isEmpty else { throw Failure("the target configuration: " + problems.joined(separator: "; ")) }
        var summary = Summary()
        summary.source = ["dataDir": resolved(source.dataDir), "metadataBackend": "sqlite", "blobBackend": "filesystem"]
        summary.target = ["metadataBackend": target.metadataBackend, "blobBackend": target.blobBackend, "dataDir": target.dataDir]
        if moveMetadata { summary.target["postgresURL"] = target.postgresURLRedacted ?? "(PG* environment)" }
        if let s3 = target.s3.configuration, target.blobBackend == "s3" { summary.target["s3"] = "\(s3.endpoint)/\(s3.bucket)" }
        summary.notCopied = otherFiles(in: source.dataDir)

        // The source, read-only (SQLite writes nothing to the database file of a read-only connection).
        let walBefore = ["-wal", "-shm"].filter { FileManager.default.fileExists(atPath: database + $0) }
        let sqlite = try SQLiteConnection(path: database, readOnly: true)
        let sourceBlobs = try FileSystemBlobStore(root: source.dataDir, archiveRoot: source.archiveDirectory)
        let recorded = Dictionary(try sqlite.query("SELECT digest, size FROM blobs") { ($0.text(0), $0.int(1)) },
                                  uniquingKeysWith: { a, _ in a })
        let stored = try await sourceBlobs.storedBlobs().sorted { $0.name < $1.name }
        let storedSizes = Dictionary(stored.map { ($0.name.description, $0.size) }, uniquingKeysWith: { a, _ in a })
        summary.blobs.total = stored.count
        summary.blobs.missingInSource = recorded.keys.filter { storedSizes[$0] == nil }.sorted()

        // The target's stores.
        let targetBlobs: any BlobStore
        if moveBlobs {
            switch target.blobBackend {
            case "s3":
                guard let s3 = target.s3.configuration else { throw Failure("the target's S3 settings are incomplete") }
                targetBlobs = try S3BlobStore(s3)
            default:
                targetBlobs = try FileSystemBlobStore(root: target.dataDir, archiveRoot: target.archiveDirectory)
            }
        } else {
            targetBlobs = sourceBlobs
        }
        var postgres: PostgresMetadataStore? = nil
        if moveMetadata {
            let store = try PostgresMetadataStore(url: target.postgresURL, environment: environment, maximumConnections: 4)
            do { try await store.waitUntilReady() } catch { throw Failure("the target's PostgreSQL: \(error)") }
            postgres = store
        }
        defer { postgres?.shutdown() }

        // A completed migration is not repeated: the target may be in use since (new blobs, new rows).
        if let postgres, let done = try await postgres.importCompleted(label: resolved(database)) {
            progress("this registry was migrated into the target at \(done): nothing to do")
            summary.alreadyComplete = true
            summary.seconds = (Date().timeIntervalSince(started) * 10).rounded() / 10
            return summary
        }

        // 1. Blobs, byte for byte as stored (sealed ones stay sealed), `blobConcurrency` at a time.
        if moveBlobs {
            try await refuseForeignBlobs(targetBlobs, source: storedSizes)
            var done = 0
            try await BoundedConcurrency.forEach(stored, concurrency: options.blobConcurrency) { file in
                if try await targetBlobs.size(of: file.name) == file.size { return false }
                try await copy(file.name, from: sourceBlobs, to: targetBlobs)
                return true
            } completed: { file, copied in
                done += 1
                if copied {
                    summary.blobs.copied += 1
                    summary.blobs.copiedBytes += file.size
                    progress("[\(done)/\(stored.count)] blob \(file.name) copied (\(file.size) bytes)")
                } else {
                    summary.blobs.alreadyPresent += 1
                    progress("[\(done)/\(stored.count)] blob \(file.name) already in the target")
                }
            }
            // A run killed between a blob's commit and the removal of its staged bytes left them behind (the
            // blob counts as already in the target since): remove what this migration staged.
            if let inventory = targetBlobs as? any BlobInventory {
                for id in Set(try await inventory.stagedUploads().map(\.name)) where id.hasPrefix(stagingPrefix) {
                    try await targetBlobs.deleteUpload(id: id)
                }
            }
        }

        // 2. Metadata, table by table.
        if let postgres {
            let outcome = try await postgres.importEmbedded(from: sqlite, label: resolved(database), batchSize: options.batchSize) { p in
                progress("[\(p.index)/\(p.count)] table \(p.table): \(p.copied)/\(p.rows) rows")
            }
            summary.schemaVersion = outcome.schemaVersion
            summary.resumed = outcome.resumed
            summary.alreadyComplete = outcome.alreadyComplete
            summary.tables = outcome.tables
        }

        // 3. Every blob, read back from the target: the digest of its bytes, or of its plaintext through the
        // target's registry (its metadata, KMS keys and master key) for sealed ones.
        // A few repositories linking each blob: the first whose key opens it serves (a blob mounted into a
        // repository of another key domain may have no slot for it).
        let linking: (String) throws -> [RepositoryKey] = { digest in
            try sqlite.query("""
                SELECT r.registry_id, r.name FROM repository_blobs b JOIN repositories r ON r.id = b.repo_id
                WHERE b.digest = ? ORDER BY r.id LIMIT 5
                """, [.text(digest)]) { RepositoryKey(storedRegistryID: $0.text(0), name: $0.text(1)) }
        }
        let links = try stored.map { try linking($0.name.description) }
        sqlite.close()
        // The empty write-ahead log and its index the read-only connection made, when there were none: no
        // Berth process has the database open (the lock says so), so nothing else uses them.
        let walSize = (try? FileManager.default.attributesOfItem(atPath: database + "-wal")[.size] as? NSNumber)?.intValue
        if walBefore.isEmpty, walSize ?? 0 == 0 {
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) }
        }
        let verifyMetadata: any MetadataStore
        if let postgres {
            verifyMetadata = postgres
        } else {
            sourceLock = nil  // the target's metadata is the source's database: open it as the target's server would
            verifyMetadata = try SQLiteMetadataStore(path: database)
        }
        var quiet = Logger(label: "berth.migrate")
        quiet.logLevel = .critical
        let services = try BerthServices.make(target, storage: StorageBackends(blobs: targetBlobs, metadata: verifyMetadata), logger: quiet)
        var failures: [String] = []
        for (i, file) in stored.enumerated() {
            let digest = file.name
            do {
                let size = try await targetBlobs.size(of: digest) ?? -1
                guard size == file.size else {
                    throw Failure("the target holds \(size < 0 ? "nothing" : "\(size) bytes"), the source \(file.size) bytes")
                }
                let plaintextSize = recorded[digest.description]
                if plaintextSize == nil || plaintextSize == size {
                    var hasher = DigestHasher(digest.algorithm)
                    try await targetBlobs.read(digest, range: nil) { b in b.withUnsafeReadableBytes { hasher.update($0) } }
                    if hasher.finalize() == digest {
                        summary.blobs.verifiedPlain += 1
                    } else if plaintextSize == nil {
                        summary.blobs.sizeCheckedOnly += 1  // a sealed file the metadata no longer records
                    } else {
                        throw Failure("its bytes in the target do not hash to its digest")
                    }
                } else if !links[i].isEmpty {
                    var firstError: (any Error)? = nil
                    var verified = false
                    for repository in links[i] where !verified {
                        do {
                            let opened = try await services.registry.openBlob(repository, digest, size: plaintextSize!)
                            var hasher = DigestHasher(digest.algorithm)
                            try await services.registry.readBlob(opened, range: nil) { b in b.withUnsafeReadableBytes { hasher.update($0) } }
                            guard hasher.finalize() == digest else { throw Failure("its plaintext does not hash to its digest") }
                            verified = true
                        } catch {
                            firstError = firstError ?? error
                        }
                    }
                    if !verified { throw firstError! }
                    summary.blobs.verifiedSealed += 1
                } else {
                    summary.blobs.sizeCheckedOnly += 1
                }
                progress("[\(i + 1)/\(stored.count)] verified \(digest)")
            } catch {
                failures.append("\(digest): \(error)")
                progress("[\(i + 1)/\(stored.count)] FAILED \(digest): \(error)")
            }
        }
        guard failures.isEmpty else {
            throw Failure("\(failures.count) of \(stored.count) blobs failed verification:\n  " + failures.joined(separator: "\n  "))
        }
        summary.seconds = (Date().timeIntervalSince(started) * 10).rounded() / 10
        return summary
    }

    /// The upload ids the copy stages blobs under.
    static let stagingPrefix = "migrate-"

    /// Copies one blob's stored bytes into `target` under its digest (an upload staged under a name of the
    /// migration's own, so an interrupted copy is overwritten by the next run).
    static func copy(_ digest: BerthCore.Digest, from source: any BlobStore, to target: any BlobStore) async throws {
        let id = stagingPrefix + String(digest.encoded.prefix(48))
        let writer = try await target.openUpload(id: id, at: 0)
        do {
            try await source.read(digest, range: nil) { try await writer.write($0) }
            try await writer.close()
        } catch {
            try? await writer.close()
            throw error
        }
        try await target.commitUpload(id: id, as: digest)
    }

    /// A target blob store holding blobs the source does not (or of another size) is someone else's: refused.
    static func refuseForeignBlobs(_ target: any BlobStore, source: [String: Int64]) async throws {
        guard let inventory = target as? any BlobInventory else { return }
        let foreign = try await inventory.storedBlobs().filter { source[$0.name.description] != $0.size }
        guard foreign.isEmpty else {
            throw Failure("the target blob store holds \(foreign.count) blobs the source does not (e.g. \(foreign[0].name)): "
                          + "migrate into an empty bucket or directory (or one only an earlier run of this migration wrote to)")
        }
    }

    /// Entries of the data directory that are not the registry's storage (left in place; listed in the summary).
    static func otherFiles(in dataDir: String) -> [String] {
        let storage: Set<String> = ["berth.db", "berth.db-wal", "berth.db-shm", "blobs", "uploads", "master.key"]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dataDir)) ?? []
        return names.filter { !storage.contains($0) && !$0.contains("-lease-") }.sorted()
    }
}
