import BerthCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Content-addressed blobs on a local filesystem. All blocking I/O runs on a thread pool.
public final class FileSystemBlobStore: BlobStore {
    public let layout: FileSystemLayout
    private let pool: NIOThreadPool
    private let readChunkSize: Int

    public init(root: String, threadPool: NIOThreadPool = .singleton, readChunkSize: Int = 1 << 20) throws {
        layout = FileSystemLayout(root: root)
        pool = threadPool
        self.readChunkSize = readChunkSize
        try Self.makeDirectories(layout.blobsDirectory)
        try Self.makeDirectories(layout.uploadsDirectory)
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
        let path = layout.blobPath(digest)
        return try await run {
            var st = stat()
            if stat(path, &st) != 0 {
                if errno == ENOENT { return nil }
                throw StorageError("stat: \(String(cString: strerror(errno)))")
            }
            return Int64(st.st_size)
        }
    }

    public func read(_ digest: Digest, range: ByteRange?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        try await readFile(layout.blobPath(digest), start: range?.start ?? 0, length: range?.count, into: consumer)
    }

    /// Reads a file in chunks, reading the next chunk while the consumer handles the current one.
    func readFile(_ path: String, start: Int64, length: Int64?, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let fd = try await run { () throws -> Int32 in
            let fd = open(path, O_RDONLY | O_CLOEXEC)
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
        @Sendable func readChunk(_ offset: Int64, _ count: Int) throws -> ByteBuffer {
            var buf = ByteBufferAllocator().buffer(capacity: count)
            let n = buf.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { ptr -> Int in
                var done = 0
                while done < count {
                    let r = pread(fd, ptr.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                    if r < 0 { if errno == EINTR { continue }; return -1 }
                    if r == 0 { break }
                    done += r
                }
                return done
            }
            _ = n
            guard buf.readableBytes == count else { throw StorageError("short read of \(path)") }
            return buf
        }
        var offset = start
        let end = start + total
        var next: Task<ByteBuffer, any Error>? = nil
        func schedule(_ at: Int64) -> Task<ByteBuffer, any Error>? {
            guard at < end else { return nil }
            let count = Int(min(Int64(chunk), end - at))
            let pool = self.pool
            return Task { try await pool.runIfActive { try readChunk(at, count) } }
        }
        next = schedule(offset)
        while let current = next {
            let buf = try await current.value
            offset += Int64(buf.readableBytes)
            next = schedule(offset)
            do {
                try await consumer(buf)
            } catch {
                if let n = next { _ = try? await n.value }
                throw error
            }
        }
    }

    public func openUpload(id: String, at offset: Int64) async throws -> any BlobUploadWriter {
        let path = try layout.uploadPath(id)
        let fd = try await run { () throws -> Int32 in
            let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            if fd < 0 { throw StorageError("open upload: \(String(cString: strerror(errno)))") }
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
        return FileWriter(fd: fd, offset: offset, pool: pool)
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
        try await readFile(try layout.uploadPath(id), start: 0, length: length, into: consumer)
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

    public func delete(_ digest: Digest) async throws {
        let path = layout.blobPath(digest)
        try await run { _ = unlink(path) }
    }

    /// Writes with pwrite(2) at an advancing offset; one writer per upload at a time.
    final class FileWriter: BlobUploadWriter, @unchecked Sendable {
        let fd: Int32
        // Only touched by the single task that drives this writer.
        var offset: Int64
        let pool: NIOThreadPool
        var closed = false

        init(fd: Int32, offset: Int64, pool: NIOThreadPool) {
            self.fd = fd
            self.offset = offset
            self.pool = pool
        }

        func write(_ buffer: ByteBuffer) async throws {
            let at = offset
            offset += Int64(buffer.readableBytes)
            let fd = self.fd
            try await pool.runIfActive {
                try buffer.withUnsafeReadableBytes { ptr in
                    var done = 0
                    while done < ptr.count {
                        let r = pwrite(fd, ptr.baseAddress! + done, ptr.count - done, off_t(at) + off_t(done))
                        if r < 0 {
                            if errno == EINTR { continue }
                            throw StorageError("write: \(String(cString: strerror(errno)))")
                        }
                        done += r
                    }
                }
            }
        }

        func close() async throws {
            guard !closed else { return }
            closed = true
            _ = Glibc.close(fd)
        }

        deinit { if !closed { _ = Glibc.close(fd) } }
    }
}
