import BerthCore
import Synchronization

/// Tag → digest, for `SQLiteMetadataStore.resolveTag`: a manifest GET by tag (the most frequent request
/// of a pull) then needs no trip to the database's threads.
///
/// **Coherent within the process, whichever code writes.** The cache is not told by the store's methods
/// what they changed: `TEMP` triggers on the writer connection (`attach`) report every row of `tags` that
/// is inserted, updated or deleted — by any statement, a cascade from `repositories` included — to
/// `rowChanged`, during the write; `writeEnded` (run by `SQLiteDatabase` after each write has committed
/// or rolled back) then drops those rows' entries and advances `generation`. A lookup reads the
/// generation *before* it reads the database and installs its answer only if the generation has not
/// moved (`put(_:repositoryID:digest:ifGeneration:)`), so a read that raced a write can never install
/// the value the write replaced: either it installs before `writeEnded`, which then removes it, or after,
/// and is refused. Between the commit and `writeEnded` a hit may still give the previous digest, as a
/// read that started just before the commit would; the writing request has not been answered yet.
///
/// **Other processes are not seen.** Triggers on this connection see this process's writes only. Today
/// the only other writer of `berth.db` is `berth admin`, which writes accounts and IAM entities and
/// never a tag; several Berth nodes sharing one database (issue #14) will need cross-node invalidation.
///
/// Bounded: at most `maxEntries`; past that a random entry makes room. Only found tags are cached.
final class TagCache: Sendable {
    struct Key: Hashable, Sendable { let repository: RepositoryKey; let tag: String }
    /// A row of `tags`, as the triggers name it.
    struct Row: Hashable, Sendable { let repositoryID: Int64; let tag: String }
    private struct Entry { let row: Row; let digest: Digest }
    private struct State {
        var entries: [Key: Entry] = [:]
        var keys: [Row: Key] = [:]
        /// Rows changed by the write in progress (at most one write runs at a time).
        var changed: [Row] = []
        var generation: UInt64 = 0
    }
    private let state = Mutex(State())
    let maxEntries: Int

    init(maxEntries: Int = 20_000) { self.maxEntries = maxEntries }

    /// The cached digest of `key`, and the generation to give `put` if there is none.
    func lookup(_ key: Key) -> (digest: Digest?, generation: UInt64) {
        state.withLock { ($0.entries[key]?.digest, $0.generation) }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Installs what the database said, unless a write of `tags` ended since `generation` was read.
    func put(_ key: Key, repositoryID: Int64, digest: Digest, ifGeneration generation: UInt64) {
        state.withLock { s in
            guard s.generation == generation else { return }
            let row = Row(repositoryID: repositoryID, tag: key.tag)
            if let other = s.keys[row], other != key { s.entries[other] = nil }
            if s.entries[key] == nil, s.entries.count >= maxEntries, let victim = s.entries.randomElement() {
                s.entries[victim.key] = nil
                s.keys[victim.value.row] = nil
            }
            if let old = s.entries[key], old.row != row { s.keys[old.row] = nil }
            s.entries[key] = Entry(row: row, digest: digest)
            s.keys[row] = key
        }
    }

    /// A trigger saw `row` change, inside the write in progress.
    func rowChanged(_ row: Row) {
        state.withLock { s in
            s.changed.append(row)
            s.generation &+= 1
        }
    }

    /// The write in progress has committed or rolled back: drop what it changed.
    func writeEnded() {
        state.withLock { s in
            guard !s.changed.isEmpty else { return }
            for row in s.changed {
                if let key = s.keys.removeValue(forKey: row) { s.entries[key] = nil }
            }
            s.changed.removeAll(keepingCapacity: true)
            s.generation &+= 1
        }
    }

    /// Creates the function and the `TEMP` triggers that report changes of `tags` on `connection` (the
    /// writer). `TEMP` objects live with the connection and are never stored in the database file.
    func attach(to connection: SQLiteConnection) throws {
        try connection.createFunction("berth_tag_changed", argumentCount: 2) { [self] args in
            guard case .integer(let id) = args[0], case .text(let tag) = args[1] else { return }
            rowChanged(Row(repositoryID: id, tag: tag))
        }
        try connection.exec("""
            CREATE TEMP TRIGGER IF NOT EXISTS berth_tags_insert AFTER INSERT ON main.tags
            BEGIN SELECT berth_tag_changed(NEW.repo_id, NEW.tag); END;
            CREATE TEMP TRIGGER IF NOT EXISTS berth_tags_update AFTER UPDATE ON main.tags
            BEGIN SELECT berth_tag_changed(OLD.repo_id, OLD.tag); SELECT berth_tag_changed(NEW.repo_id, NEW.tag); END;
            CREATE TEMP TRIGGER IF NOT EXISTS berth_tags_delete AFTER DELETE ON main.tags
            BEGIN SELECT berth_tag_changed(OLD.repo_id, OLD.tag); END;
            """)
    }
}
