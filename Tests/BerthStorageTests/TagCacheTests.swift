import BerthCore
import Foundation
import Testing

@testable import BerthStorage

/// `resolveTag`'s cache in `SQLiteMetadataStore` (`TagCache`): every write of `tags` made through the
/// store's writer connection invalidates it, whatever statement made it, and a read that raced a write
/// cannot install the value the write replaced.
@Suite struct TagCacheTests {
    let repo = RepositoryKey(storedRegistryID: "111111111111", name: "app")
    let layer = Digest.sha256(of: Array("layer".utf8))

    func makeStore() throws -> (SQLiteMetadataStore, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-tags-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return (try SQLiteMetadataStore(path: dir + "/berth.db"), dir)
    }

    func put(_ body: String, tag: String?) -> ManifestPut {
        ManifestPut(record: ManifestRecord(digest: digest(body), mediaType: MediaType.ociManifest, artifactType: nil,
                                           bytes: Array(body.utf8), subject: nil, annotationsJSON: nil, pushedAt: 1),
                    blobs: [layer], manifests: [], tag: tag)
    }

    func digest(_ body: String) -> Digest { Digest.sha256(of: Array(body.utf8)) }

    func prepared() async throws -> (SQLiteMetadataStore, String) {
        let (store, dir) = try makeStore()
        #expect(try await store.createRepository(repo, at: 1))
        try await store.recordBlob(layer, size: 5, linkTo: repo, at: 1)
        return (store, dir)
    }

    @Test func storeWritesInvalidateTheCachedTag() async throws {
        let (store, dir) = try await prepared()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = TagCache.Key(repository: repo, tag: "latest")

        _ = try await store.putManifest(put("one", tag: "latest"), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == digest("one"))
        #expect(store.tagCache.lookup(key).digest == digest("one"), "the read filled the cache")

        // The tag moves (an upsert: the trigger on UPDATE).
        _ = try await store.putManifest(put("two", tag: "latest"), in: repo)
        #expect(store.tagCache.lookup(key).digest == nil)
        #expect(try await store.resolveTag("latest", in: repo) == digest("two"))

        // Deleting the tag.
        #expect(try await store.deleteTag("latest", in: repo))
        #expect(try await store.resolveTag("latest", in: repo) == nil)

        // Deleting the image the tag points to deletes the tag.
        _ = try await store.putManifest(put("two", tag: "latest"), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == digest("two"))
        #expect(try await store.deleteImage(.digest(digest("two")), in: repo) == .deleted(tags: ["latest"], imageDeleted: true))
        #expect(try await store.resolveTag("latest", in: repo) == nil)

        // Untagging through deleteImage.
        _ = try await store.putManifest(put("two", tag: "latest"), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == digest("two"))
        _ = try await store.deleteImage(.tag("latest", of: digest("two")), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == nil)

        // Deleting the repository (a cascade in SQLite), then one of the same name with another manifest.
        _ = try await store.putManifest(put("one", tag: "latest"), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == digest("one"))
        #expect(try await store.deleteRepository(repo))
        #expect(try await store.resolveTag("latest", in: repo) == nil)
        #expect(try await store.createRepository(repo, at: 2))
        try await store.recordBlob(layer, size: 5, linkTo: repo, at: 2)
        _ = try await store.putManifest(put("three", tag: "latest"), in: repo)
        #expect(try await store.resolveTag("latest", in: repo) == digest("three"))
    }

    /// A store method added later that writes `tags` with its own SQL is covered without telling the cache:
    /// the triggers see the row, not the method.
    @Test func anyStatementOnTheWriterInvalidates() async throws {
        let (store, dir) = try await prepared()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try await store.putManifest(put("one", tag: "a"), in: repo)
        _ = try await store.putManifest(put("two", tag: "b"), in: repo)
        #expect(try await store.resolveTag("a", in: repo) == digest("one"))
        #expect(try await store.resolveTag("b", in: repo) == digest("two"))

        try await store.db.write { c in
            try c.transaction { _ = try c.execute("UPDATE tags SET digest = ? WHERE tag = 'a'", [.text(digest("two").description)]) }
        }
        #expect(try await store.resolveTag("a", in: repo) == digest("two"))
        #expect(store.tagCache.lookup(TagCache.Key(repository: repo, tag: "b")).digest == digest("two"),
                "a write of another tag leaves this one cached")

        try await store.db.write { c in _ = try c.execute("DELETE FROM tags") }
        #expect(try await store.resolveTag("a", in: repo) == nil)
        #expect(try await store.resolveTag("b", in: repo) == nil)

        // A write that rolls back changes nothing, and what it touched is read again.
        _ = try await store.putManifest(put("one", tag: "a"), in: repo)
        #expect(try await store.resolveTag("a", in: repo) == digest("one"))
        struct Abort: Error {}
        await #expect(throws: Abort.self) {
            try await store.db.write { c in
                try c.transaction {
                    _ = try c.execute("DELETE FROM tags WHERE tag = 'a'")
                    throw Abort()
                }
            }
        }
        #expect(try await store.resolveTag("a", in: repo) == digest("one"))
    }

    /// A lookup that read the old digest and installs it after the write ended is refused.
    @Test func aReadThatRacedAWriteCannotInstallTheOldDigest() async throws {
        let (store, dir) = try await prepared()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = TagCache.Key(repository: repo, tag: "latest")
        _ = try await store.putManifest(put("one", tag: "latest"), in: repo)
        let repositoryID = try await store.db.read { c in
            try c.query("SELECT id FROM repositories WHERE name = 'app'") { $0.int(0) }.first!
        }

        // The reader takes the generation and reads "one" from the database...
        let (miss, generation) = store.tagCache.lookup(key)
        #expect(miss == nil)
        // ...the tag moves meanwhile...
        _ = try await store.putManifest(put("two", tag: "latest"), in: repo)
        // ...and the reader's late install of "one" is refused.
        store.tagCache.put(key, repositoryID: repositoryID, digest: digest("one"), ifGeneration: generation)
        #expect(store.tagCache.lookup(key).digest == nil)
        #expect(try await store.resolveTag("latest", in: repo) == digest("two"))
    }

    /// The other order: the reader installs the old digest while the write is in progress (after its
    /// trigger ran, before it ended); the end of the write removes it.
    @Test func anInstallDuringTheWriteIsRemovedWhenTheWriteEnds() {
        let cache = TagCache()
        let key = TagCache.Key(repository: repo, tag: "latest")
        let row = TagCache.Row(repositoryID: 7, tag: "latest")
        let one = digest("one")
        cache.put(key, repositoryID: 7, digest: one, ifGeneration: cache.lookup(key).generation)
        #expect(cache.lookup(key).digest == one)

        cache.rowChanged(row)  // the trigger, inside the write's transaction
        let generation = cache.lookup(key).generation
        cache.put(key, repositoryID: 7, digest: one, ifGeneration: generation)  // a reader that saw the old row
        #expect(cache.lookup(key).digest == one)
        cache.writeEnded()  // after COMMIT
        #expect(cache.lookup(key).digest == nil)
    }

    /// Many readers while the tag moves again and again: once a move has returned, no read gives an
    /// earlier digest.
    @Test func concurrentReadsNeverSeeAnOlderDigestAfterAMove() async throws {
        let (store, dir) = try await prepared()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rounds = 60
        for i in 0..<rounds { _ = try await store.putManifest(put("m\(i)", tag: nil), in: repo) }
        let order = (0..<rounds).map { digest("m\($0)") }
        for i in 0..<rounds {
            _ = try await store.putManifest(put("m\(i)", tag: "latest"), in: repo)
            try await withThrowingTaskGroup(of: Digest?.self) { group in
                for _ in 0..<8 { group.addTask { try await store.resolveTag("latest", in: repo) } }
                // A move to the next digest races the readers; a read may give either, never an older one.
                group.addTask {
                    if i + 1 < rounds { _ = try await store.putManifest(self.put("m\(i + 1)", tag: "latest"), in: self.repo) }
                    return nil
                }
                for try await d in group {
                    guard let d else { continue }
                    let seen = try #require(order.firstIndex(of: d))
                    #expect(seen >= i)
                }
            }
            let now = try await store.resolveTag("latest", in: repo)
            #expect(now == order[min(i + 1, rounds - 1)])
        }
    }

    @Test func theCacheIsBounded() throws {
        let cache = TagCache(maxEntries: 3)
        for i in 0..<10 {
            let key = TagCache.Key(repository: repo, tag: "t\(i)")
            cache.put(key, repositoryID: 1, digest: digest("\(i)"), ifGeneration: cache.lookup(key).generation)
            #expect(cache.lookup(key).digest == digest("\(i)"), "the newest entry is kept")
        }
        #expect(cache.count == 3)
        // Eviction also forgets the row, so a later change of an evicted tag touches nothing. The victim
        // is random, so find a tag that was evicted rather than assume which.
        let evicted = try #require((0..<10).first { cache.lookup(TagCache.Key(repository: repo, tag: "t\($0)")).digest == nil })
        cache.rowChanged(TagCache.Row(repositoryID: 1, tag: "t\(evicted)"))
        cache.writeEnded()
        #expect(cache.count == 3)
    }
}
