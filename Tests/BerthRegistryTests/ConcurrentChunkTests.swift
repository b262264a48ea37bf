import BerthCore
@testable import BerthRegistry
import BerthStorage
import Foundation
import Testing

/// One process, several requests writing the same range of one upload (the OCI conformance case
/// `test_concurrent_patches_of_the_same_range`): exactly one chunk may win, and the blob holds exactly its bytes.
@Suite struct ConcurrentChunkTests {
    let repo = key("team/race")

    /// As `berth serve` runs on the embedded stores: one process, no cross-node claims.
    func embedded() throws -> (Registry, String) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-race-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let r = Registry(blobs: try FileSystemBlobStore(root: dir), metadata: try SQLiteMetadataStore(path: dir + "/berth.db"),
                         settings: RegistrySettings(writeBufferSize: 64, sharedMetadata: false))
        return (r, dir)
    }

    /// A request reads the upload's offset, then waits (SQLite's reads run on a thread) while another request
    /// writes and commits a chunk at that offset; when it gets its turn, the offset it read is stale. It is
    /// refused without writing. Before the fix it truncated the staged file to that offset and wrote its own
    /// bytes there before its commit failed, so the winner's completion computed the loser's digest.
    @Test func aChunkWhoseOffsetMovedBeforeItsTurnWritesNothing() async throws {
        let (r, dir) = try embedded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try await r.startUpload(repo)
        let stale = try await r.uploadSession(repo, s.id)
        let winner = String(repeating: "w", count: 100), loser = String(repeating: "l", count: 100)
        let range = ByteRange(start: 0, end: 99)
        #expect(try await r.appendChunk(repo, upload: s.id, range: range, contentLength: 100, body: Body(winner)) == 100)
        await #expect(throws: BerthError.self) {
            _ = try await r.append(stale, at: 0, expected: 100, body: Body(loser))
        }
        #expect(try await r.uploadSession(repo, s.id).offset == 100)
        let d = try await r.completeUpload(repo, upload: s.id, digest: sha(winner), range: nil, contentLength: 0, body: Body())
        #expect(try await read(r, d) == winner)
    }

    /// Six requests at once, 40 rounds: one winner per round, and the blob is exactly its bytes.
    @Test func sixConcurrentChunksOfTheSameRangeHaveOneWinner() async throws {
        let (r, dir) = try embedded()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let range = ByteRange(start: 0, end: 99)
        for round in 0..<40 {
            let s = try await r.startUpload(repo)
            let datas = (0..<6).map { i in String("round \(round) writer \(i) \(String(repeating: "\(i)", count: 100))".prefix(100)) }
            let won = await withTaskGroup(of: Int?.self) { group in
                for i in 0..<6 {
                    group.addTask {
                        do {
                            _ = try await r.appendChunk(repo, upload: s.id, range: range, contentLength: 100, body: Body(datas[i]))
                            return i
                        } catch BerthError.rangeNotSatisfiable {
                            return nil
                        } catch {
                            Issue.record("writer \(i): \(error)")
                            return nil
                        }
                    }
                }
                var out: [Int] = []
                for await x in group { if let x { out.append(x) } }
                return out
            }
            try #require(won.count == 1, "round \(round): winners \(won)")
            let data = datas[won[0]]
            let d = try await r.completeUpload(repo, upload: s.id, digest: sha(data), range: nil, contentLength: 0, body: Body())
            #expect(try await read(r, d) == data, "round \(round)")
        }
    }
}
