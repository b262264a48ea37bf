import BerthCore
@_spi(CustomByteBufferAllocator) import NIOCore
import NIOPosix
import CBerthShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How upload bytes reach the disk.
public enum BlobWriteMode: String, Sendable, CaseIterable {
    /// Through the page cache, with write-back started every few MiB (`sync_file_range`) so the final
    /// fsync has little left to wait for; a blob just pushed stays cached for the pulls that follow it.
    case buffered
    /// Large aligned spans with O_DIRECT: no page-cache copy, but the first pulls after a push read from disk.
    case direct
}

/// Content-addressed blobs on a local filesystem. All blocking I/O runs on a thread pool.
/// With `archiveRoot`, blobs only archived images use can move to a second directory (`BlobTiering`),
/// laid out the same way; every read looks there when a blob is not in `root`.
public final class FileSystemBlobStore: BlobStore, BlobTiering, BlobInventory {
    public let layout: FileSystemLayout
    /// The archive tier, when one is configured.
    public let archiveLayout: FileSystemLayout?
    private let pool: NIOThreadPool
    private let readChunkSize: Int
    private let writeMode: BlobWriteMode

    /// Bytes per read of a streamed blob. Half the L2 cache of the machines we measure on: the bytes are
    /// still cached when the socket write (or AES-GCM) reads them, and the buffer comes from the heap's
    /// free lists instead of a fresh mapping (see `tuneAllocator` in the `berth` target). 2 MiB reads cost
    /// about 50 % more CPU per GiB sent (berth-bench warm pull, docs/encryption.md "Performance").
    public static let defaultReadChunkSize = 512 << 10

    public init(root: String, threadPool: NIOThreadPool = .singleton, readChunkSize: Int = defaultReadChunkSize,
                writeMode: BlobWriteMode = .buffered, archiveRoot: String? = nil) throws {
        layout = FileSystemLayout(root: root)
        archiveLayout = archiveRoot.map { FileSystemLayout(root: $0) }
        pool = threadPool
        self.readChunkSize = readChunkSize
        self.writeMode = writeMode
        try Self.makeDirectories(layout.blobsDirectory)
        try Self.makeDirectories(layout.uploadsDirectory)
        if let a = archiveLayout {
            try Self.makeDirectories(a.blobsDirectory)
            try Self.makeDirectories(a.uploadsDirectory)
        }
    }

    static func makeDirectories(_ path: String) throws {
        var current = ""
        for comp in path.split(separator: "/", omittingEmptySubsequences: false) {
            if comp.isEmpty && current.isEmpty { current = "/"; continue }
            current += (current.hasSuffix("/") ? "" : "/") + comp
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw StorageError("mkdir \(current): \(String(cString: strerror(errno)))")
            }
        }
    }

    private func run<T: Sendable>(_ body: @Sendable @escaping () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    public func size(of digest: Digest) async throws -> Int64? {
        let paths = tierPaths(digest)
        return try await run {
            // Primary, archive, primary again: a blob moving between the tiers is in one of them at every moment.
            for path in paths {
                var st = stat()
                if stat(path, &st) == 0 { return Int64(st.st_size) }
                if errno != ENOENT { throw StorageError("stat: \(String(cString: strerror(errno)))") }
            }
            return nil
        }
    }

    /// Where to look for a blob, in order: only the primary tier without an archive tier.
    func tierPaths(_ digest: Digest) -> [String] {
        let primary = layout.blobPath(digest)
        guard let archive = archiveLayout?.blobPath(digest) else { return [primary] }
        return [primary, archive, primary]
    }

    public func localFilePath(of digest: Digest) -> String? {
        let primary = layout.blobPath(digest)
        guard let archive = archiveLayout?.blobPath(digest) else { return primary }
        return access(primary, F_OK) != 0 && access(archive, F_OK) == 0 ? archive : primary
    }

    public func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let paths = tierPaths(digest)
        for (i, path) in paths.enumerated() {
            do {
                try await readFile(path, start: range?.start ?? 0, length: range?.count, into: consumer)
                return
            } catch let e as BlobFileMissing where i < paths.count - 1 {
                _ = e  // not in this tier (it may have just moved): the next one
            } catch let e as BlobFileMissing {
                throw StorageError("open \(e.path): \(String(cString: strerror(ENOENT)))")
            }
        }
    }

    /// A blob file that does not exist (before any byte was read).
    struct BlobFileMissing: Error { let path: String }

    /// Reads a file in chunks, reading the next chunk while the consumer handles the current one.
    func readFile(_ path: String, start: Int64, length: Int64?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let fd = try await run { () throws -> Int32 in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 && errno == ENOENT { throw BlobFileMissing(path: path) }
            if fd < 0 { throw StorageError("open \(path): \(String(cString: strerror(errno)))") }
            return fd
        }
        defer { close(fd) }
        let total: Int64
        if let length { total = length } else {
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw StorageError("fstat failed") }
            total = Int64(st.st_size) - start
        }
        let chunk = readChunkSize
        let pool = self.pool
        /// Fills `buffer` (reused when no one else holds it) with `count` bytes at `offset`.
        @Sendable func readChunk(_ offset: Int64, _ count: Int, into reuse: ByteBuffer?) throws -> ByteBuffer {
            var buf = reuse ?? ByteBufferAllocator().buffer(capacity: count)
            buf.clear()
            _ = buf.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { ptr -> Int in
                var done = 0
                while done < count {
                    let r = pread(fd, ptr.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if r < 0 { if errno == EINTR { continue }; return done }
                    if r == 0 { break }
                    done += r
                }
                return done
            }
            guard buf.readableBytes == count else { throw StorageError("short read of \(path)") }
            return buf
        }
        var offset = start
        let end = start + total
        func schedule(_ at: Int64, _ reuse: ByteBuffer?) -> Task<ByteBuffer, any Error>? {
            guard at < end else { return nil }
            let count = Int(min(Int64(chunk), end - at))
            return Task { try await pool.runIfActive { try readChunk(at, count, into: reuse) } }
        }
        // Read the next chunk while the consumer sends the current one; two buffers take turns.
        var next = schedule(offset, nil)
        var spare: ByteBuffer? = nil
        while let current = next {
            let buf = try await current.value
            offset += Int64(buf.readableBytes)
            next = schedule(offset, spare)
            spare = nil
            do {
                try await consumer(buf)
            } catch {
                if let n = next { _ = try? await n.value }
                throw error
            }
            spare = buf
        }
        if total >= Self.trimAfterBytes { Self.releaseFreedMemory() }
    }

    /// Streams at least this long return the allocator's free memory to the system afterwards.
    static let trimAfterBytes: Int64 = 16 << 20

    /// Large transfers reuse multi-MiB buffers from the heap (no page faults per buffer); this gives
    /// the heap back once one ends, so the resident set stays flat between transfers.
    static func releaseFreedMemory() {
        #if canImport(Glibc)
        _ = malloc_trim(0)
        #endif
    }

    public func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter {
        let path = try layout.uploadPath(id)
        let fd = try await run { () throws -> Int32 in
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { throw StorageError("open upload: \(String(cString: strerror(errno)))") }
            // Held until the writer closes: the collector leaves a staged file alone while a request
            // writes it, however long that request stalls (`stagedUploads`).
            _ = flock(fd, LOCK_SH)
            var st = stat()
            fstat(fd, &st)
            if Int64(st.st_size) < offset {
                close(fd)
                throw StorageError("upload \(id) has \(st.st_size) bytes, expected at least \(offset)")
            }
            if Int64(st.st_size) > offset, ftruncate(fd, off_t(offset)) != 0 {
                close(fd)
                throw StorageError("truncate upload: \(String(cString: strerror(errno)))")
            }
            return fd
        }
        return FileWriter(fd: fd, path: path, offset: offset, pool: pool, mode: writeMode)
    }

    public func uploadedSize(id: String) async throws -> Int64? {
        let path = try layout.uploadPath(id)
        return try await run {
            var st = stat()
            if stat(path, &st) != 0 { return nil }
            return Int64(st.st_size)
        }
    }

    public func readUpload(id: String, length: Int64, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let path = try layout.uploadPath(id)
        do {
            try await readFile(path, start: 0, length: length, into: consumer)
        } catch is BlobFileMissing {
            throw StorageError("open \(path): \(String(cString: strerror(ENOENT)))")
        }
    }

    public func readUpload(id: String, range: ByteRange, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let path = try layout.uploadPath(id)
        var delivered: Int64 = 0
        do {
            try await readFile(path, start: range.start, length: range.count) { buf in
                delivered += Int64(buf.readableBytes)
                try await consumer(buf)
            }
        } catch is BlobFileMissing {
            throw StorageError("open \(path): \(String(cString: strerror(ENOENT)))")
        }
        if delivered < range.count { throw StorageError("upload \(id) has fewer than \(range.end + 1) bytes") }
    }

    public func commitUpload(id: String, as digest: Digest) async throws {
        let from = try layout.uploadPath(id)
        let dir = layout.blobDirectory(digest)
        let to = layout.blobPath(digest)
        try await run {
            let fd = open(from, O_RDONLY | O_CLOEXEC)
            if fd < 0 { throw StorageError("open upload for commit: \(String(cString: strerror(errno)))") }
            let synced = fsync(fd)
            close(fd)
            if synced != 0 { throw StorageError("fsync: \(String(cString: strerror(errno)))") }
            if mkdir(dir, 0o755) != 0 && errno != EEXIST {
                try Self.makeDirectories(dir)
            }
            if rename(from, to) != 0 { throw StorageError("rename: \(String(cString: strerror(errno)))") }
            let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dfd >= 0 { fsync(dfd); close(dfd) }
        }
    }

    public func deleteUpload(id: String) async throws {
        let path = try layout.uploadPath(id)
        try await run { _ = unlink(path) }
    }

    /// Removes the blob from both tiers, on the store's threads (the collector calls it outside any
    /// metadata transaction; docs/gc.md).
    public func delete(_ digest: Digest) async throws {
        let paths = [layout.blobPath(digest)] + (archiveLayout.map { [$0.blobPath(digest)] } ?? [])
        try await run {
            for path in paths where unlink(path) != 0 && errno != ENOENT {
                throw StorageError("unlink blob \(digest): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// In either tier.
    public func isStored(_ digest: Digest) async throws -> Bool {
        let paths = [layout.blobPath(digest)] + (archiveLayout.map { [$0.blobPath(digest)] } ?? [])
        return try await run { paths.contains { access($0, F_OK) == 0 } }
    }

    /// The blob files of both tiers (a blob moving between them may be listed twice, with one digest).
    public func storedBlobs() async throws -> [StoredFile<Digest>] {
        let roots = [layout.blobsDirectory] + (archiveLayout.map { [$0.blobsDirectory] } ?? [])
        return try await run {
            var found: [StoredFile<Digest>] = []
            for root in roots {
            for algorithm in Self.entries(root) {
                for prefix in Self.entries("\(root)/\(algorithm)") {
                    let dir = "\(root)/\(algorithm)/\(prefix)"
                    for name in Self.entries(dir) {
                        guard let d = Digest.parse("\(algorithm):\(name)"), let st = Self.status("\(dir)/\(name)") else { continue }
                        found.append(StoredFile(name: d, size: st.size, changedAt: st.changedAt))
                    }
                }
            }
            }
            return found
        }
    }

    /// Staged files no writer holds open (each writer holds a shared `flock` on its file).
    public func stagedUploads() async throws -> [StoredFile<String>] {
        let dir = layout.uploadsDirectory
        return try await run {
            Self.entries(dir).compactMap { name in
                let path = "\(dir)/\(name)"
                guard let st = Self.status(path), !Self.isBeingWritten(path) else { return nil }
                return StoredFile(name: name, size: st.size, changedAt: st.changedAt)
            }
        }
    }

    /// Whether a writer holds the file open (its shared lock keeps an exclusive one from being taken).
    static func isBeingWritten(_ path: String) -> Bool {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK
    }

    /// The names in a directory, without `.` and `..`; none when it cannot be read.
    static func entries(_ path: String) -> [String] {
        guard let dir = opendir(path) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        // `d_name` is read in place: a dirent is only as long as its name (`d_reclen`), so copying the
        // whole fixed-size field could read past the end of the buffer readdir returned.
        let nameOffset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
        while let e = readdir(dir) {
            let name = String(cString: (UnsafeRawPointer(e) + nameOffset).assumingMemoryBound(to: CChar.self))
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// A regular file's size and last change (the later of mtime and ctime), or nil.
    static func status(_ path: String) -> (size: Int64, changedAt: Double)? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let m = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        let c = Double(st.st_ctim.tv_sec) + Double(st.st_ctim.tv_nsec) / 1e9
        return (Int64(st.st_size), max(m, c))
    }


    // MARK: the archive tier

    public var hasArchiveTier: Bool { archiveLayout != nil }

    public func moveToArchive(_ digest: Digest) async throws {
        guard let archive = archiveLayout else { return }
        try await move(digest, from: layout, to: archive)
    }

    public func moveFromArchive(_ digest: Digest) async throws {
        guard let archive = archiveLayout else { return }
        try await move(digest, from: archive, to: layout)
    }

    public func isInArchive(_ digest: Digest) async throws -> Bool {
        guard let archive = archiveLayout else { return false }
        let primary = layout.blobPath(digest), archived = archive.blobPath(digest)
        return try await run { access(primary, F_OK) != 0 && access(archived, F_OK) == 0 }
    }

    /// Moves a blob file between tiers so that it is complete in one of them at every moment: `rename(2)`
    /// on the same filesystem; across filesystems a copy into the target's staging directory, fsync,
    /// rename into place, then the source is removed. Already in the target: the source copy goes.
    func move(_ digest: Digest, from source: FileSystemLayout, to target: FileSystemLayout) async throws {
        let from = source.blobPath(digest), to = target.blobPath(digest), dir = target.blobDirectory(digest)
        let staging = try target.uploadPath("tier-" + String(UInt64.random(in: .min ... .max), radix: 16))
        try await run {
            if access(from, F_OK) != 0 { return }
            if access(to, F_OK) == 0 { _ = unlink(from); return }
            if mkdir(dir, 0o755) != 0 && errno != EEXIST { try Self.makeDirectories(dir) }
            if rename(from, to) == 0 {
                Self.syncDirectory(dir)
                return
            }
            guard errno == EXDEV else {
                if errno == ENOENT { return }  // moved or deleted meanwhile
                throw StorageError("rename \(from): \(String(cString: strerror(errno)))")
            }
            try Self.copyFile(from, to: staging)
            if rename(staging, to) != 0 {
                let e = errno
                _ = unlink(staging)
                throw StorageError("rename \(staging): \(String(cString: strerror(e)))")
            }
            Self.syncDirectory(dir)
            _ = unlink(from)
        }
    }

    static func syncDirectory(_ dir: String) {
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// Copies a file to `to` (created, fsync'd); `to` is removed again on failure.
    static func copyFile(_ from: String, to: String) throws {
        let src = open(from, O_RDONLY | O_CLOEXEC)
        if src < 0 { throw StorageError("open \(from): \(String(cString: strerror(errno)))") }
        defer { close(src) }
        let dst = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if dst < 0 { throw StorageError("create \(to): \(String(cString: strerror(errno)))") }
        var ok = false
        defer {
            close(dst)
            if !ok { _ = unlink(to) }
        }
        let size = 1 << 20
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 4096)
        defer { buffer.deallocate() }
        var offset: off_t = 0
        while true {
            let n = pread(src, buffer, size, offset)
            if n < 0 { if errno == EINTR { continue }; throw StorageError("read \(from): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            try FileWriter.pwriteAll(dst, buffer, n, Int64(offset))
            offset += off_t(n)
        }
        guard fsync(dst) == 0 else { throw StorageError("fsync \(to): \(String(cString: strerror(errno)))") }
        ok = true
    }

    /// Writes with pwrite(2) at an advancing offset; one writer per upload at a time.
    ///
    /// `.buffered`: every write goes through the page cache, and write-back of each completed window
    /// (``writeBehindWindow``) is started at once, so the disk works while the upload streams and the fsync
    /// at commit only waits for the last windows. With ``writeBehindDepth`` windows in write-back, the oldest
    /// is awaited before another starts, which bounds the dirty pages one upload holds. Left to itself the
    /// kernel would start write-back only at its dirty threshold (gigabytes), and the fsync would then write
    /// the whole blob.
    ///
    /// `.direct`: large aligned spans go through a second descriptor opened with O_DIRECT (no page-cache
    /// copy; but the blob is not cached afterwards). Unaligned heads and tails (and small writes) stay
    /// buffered; the kernel keeps both views of the file coherent.
    final class FileWriter: BlobUploadWriter, @unchecked Sendable {
        let fd: Int32
        let path: String
        // Only touched by the single task that drives this writer, one write at a time.
        var offset: Int64
        var directFD: Int32 = -1
        var directUnavailable = false
        var staging: UnsafeMutableRawPointer? = nil
        var stagingSize = 0
        let pool: NIOThreadPool
        let mode: BlobWriteMode
        var closed = false
        /// Where the bytes not yet handed to write-back start (`.buffered`).
        var writeBehindFrom: Int64
        /// Windows handed to write-back, oldest first; the oldest is awaited when there are too many.
        var inWriteBack: [(offset: Int64, count: Int64)] = []

        static let alignment = 4096
        /// Writes smaller than this are not worth the O_DIRECT round trip.
        static let directMinimum = 1 << 20
        /// Write-back is started for every this many bytes written (`.buffered`).
        static let writeBehindWindow: Int64 = 8 << 20
        /// Windows in write-back at once before the oldest is awaited: bounds one upload's dirty pages to
        /// about (this + 1) windows while keeping the disk's queue fed.
        static let writeBehindDepth = 4

        init(fd: Int32, path: String, offset: Int64, pool: NIOThreadPool, mode: BlobWriteMode = .buffered) {
            self.fd = fd
            self.path = path
            self.offset = offset
            self.pool = pool
            self.mode = mode
            self.writeBehindFrom = offset
        }

        /// Page-aligned buffers, so direct writes need no staging copy.
        static let alignedAllocator = ByteBufferAllocator(
            allocate: { size in
                var p: UnsafeMutableRawPointer? = nil
                return posix_memalign(&p, 4096, max(size, 1)) == 0 ? p : nil
            },
            reallocate: { old, oldSize, newSize in
                var p: UnsafeMutableRawPointer? = nil
                guard posix_memalign(&p, 4096, max(newSize, 1)) == 0, let p else { return nil }
                if let old {
                    p.copyMemory(from: old, byteCount: min(oldSize, newSize))
                    free(old)
                }
                return p
            },
            deallocate: { free($0) },
            copy: { dst, src, count in dst.copyMemory(from: src, byteCount: count) })

        func makeBuffer(capacity: Int) -> ByteBuffer { Self.alignedAllocator.buffer(capacity: capacity) }

        func write(_ buffer: ByteBuffer) async throws {
            let at = offset
            offset += Int64(buffer.readableBytes)
            try await pool.runIfActive { try self.writeSync(buffer, at: at) }
        }

        static func pwriteAll(_ fd: Int32, _ base: UnsafeRawPointer, _ count: Int, _ at: Int64) throws {
            var done = 0
            while done < count {
                let r = pwrite(fd, base + done, count - done, off_t(at) + off_t(done))
                if r < 0 {
                    if errno == EINTR { continue }
                    throw StorageError("write: \(String(cString: strerror(errno)))")
                }
                done += r
            }
        }

        func openDirect() -> Bool {
            if directFD >= 0 { return true }
            if directUnavailable { return false }
            let d = open(path, O_WRONLY | O_CLOEXEC | berth_o_direct())
            if d < 0 { directUnavailable = true; return false }
            directFD = d
            return true
        }

        func writeSync(_ buffer: ByteBuffer, at: Int64) throws {
            if mode == .buffered {
                try buffer.withUnsafeReadableBytes { ptr in
                    guard let base = ptr.baseAddress, ptr.count > 0 else { return }
                    try Self.pwriteAll(fd, base, ptr.count, at)
                }
                writeBehind(upTo: at + Int64(buffer.readableBytes))
                return
            }
            try buffer.withUnsafeReadableBytes { ptr in
                guard let base = ptr.baseAddress, ptr.count > 0 else { return }
                let a = Int64(Self.alignment)
                // Buffered up to the first aligned offset.
                let head = Int(min(Int64(ptr.count), (a - at % a) % a))
                let alignedCount = (ptr.count - head) / Self.alignment * Self.alignment
                guard alignedCount >= Self.directMinimum, openDirect() else {
                    try Self.pwriteAll(fd, base, ptr.count, at)
                    return
                }
                if head > 0 { try Self.pwriteAll(fd, base, head, at) }
                let source = base + head
                if Int(bitPattern: source) % Self.alignment == 0 {
                    // Already page-aligned memory (makeBuffer): write it directly.
                    do {
                        try Self.pwriteAll(directFD, source, alignedCount, at + Int64(head))
                    } catch {
                        Glibc.close(directFD)
                        directFD = -1
                        directUnavailable = true
                        try Self.pwriteAll(fd, source, alignedCount, at + Int64(head))
                    }
                    let tail = ptr.count - head - alignedCount
                    if tail > 0 { try Self.pwriteAll(fd, source + alignedCount, tail, at + Int64(head + alignedCount)) }
                    return
                }
                if stagingSize < alignedCount {
                    free(staging)
                    var p: UnsafeMutableRawPointer? = nil
                    guard posix_memalign(&p, Self.alignment, alignedCount) == 0, let p else {
                        throw StorageError("cannot allocate an aligned write buffer")
                    }
                    staging = p
                    stagingSize = alignedCount
                }
                staging!.copyMemory(from: base + head, byteCount: alignedCount)
                do {
                    try Self.pwriteAll(directFD, staging!, alignedCount, at + Int64(head))
                } catch {
                    // A filesystem may refuse O_DIRECT writes (EINVAL): fall back for good.
                    Glibc.close(directFD)
                    directFD = -1
                    directUnavailable = true
                    try Self.pwriteAll(fd, base + head, alignedCount, at + Int64(head))
                }
                let tail = ptr.count - head - alignedCount
                if tail > 0 { try Self.pwriteAll(fd, base + head + alignedCount, tail, at + Int64(head + alignedCount)) }
            }
        }

        /// Starts write-back of the completed windows below `end` (errors are left to the fsync at commit).
        func writeBehind(upTo end: Int64) {
            guard end - writeBehindFrom >= Self.writeBehindWindow else { return }
            let count = (end - writeBehindFrom) / Self.writeBehindWindow * Self.writeBehindWindow
            if inWriteBack.count >= Self.writeBehindDepth {
                // A disk slower than the network throttles the upload here instead of filling memory.
                let oldest = inWriteBack.removeFirst()
                _ = berth_start_writeback(fd, oldest.offset, oldest.count, 1)
            }
            _ = berth_start_writeback(fd, writeBehindFrom, count, 0)
            inWriteBack.append((writeBehindFrom, count))
            writeBehindFrom += count
        }

        func close() async throws {
            guard !closed else { return }
            closed = true
            release()
            if offset >= FileSystemBlobStore.trimAfterBytes { FileSystemBlobStore.releaseFreedMemory() }
        }

        func release() {
            _ = Glibc.close(fd)
            if directFD >= 0 { _ = Glibc.close(directFD) }
            free(staging)
            staging = nil
        }

        deinit { if !closed { release() } }
    }
}
