#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// POSIX reading and creation of the SecretBox key file (the module's only file I/O).
enum KeyFile {
    /// The key at `path`, or `nil` when there is no file.
    static func read(_ path: String) throws(SecretBoxError) -> SymmetricKey? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw .keyFile(path: path, reason: currentErrorDescription())
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .keyFile(path: path, reason: currentErrorDescription()) }
        let mode = UInt32(info.st_mode)
        guard mode & UInt32(S_IFMT) == UInt32(S_IFREG) else { throw .keyFile(path: path, reason: "not a regular file") }
        guard mode & 0o077 == 0 else {
            throw .insecureKeyFilePermissions(path: path, mode: String(mode & 0o777, radix: 8))
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while contents.count <= 4096 {
            let count = buffer.withUnsafeMutableBytes { posixRead(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .keyFile(path: path, reason: currentErrorDescription())
            }
            if count == 0 { break }
            contents.append(contentsOf: buffer[..<count])
        }
        let text = String(decoding: contents.filter { !Self.isWhitespace($0) }, as: UTF8.self)
        guard let bytes = Data(base64Encoded: text), bytes.count == SecretBox.keyByteCount else {
            throw .keyFileCorrupt(path: path)
        }
        return SymmetricKey(data: bytes)
    }

    /// Writes `contents` to a new file at `path` with mode 0600; `false` if a file appeared there first.
    static func createExclusively(_ path: String, contents: [UInt8]) throws(SecretBoxError) -> Bool {
        var suffix = SystemRandomNumberGenerator()
        let temporary = path + ".tmp-" + String(suffix.next(), radix: 36)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .keyFile(path: temporary, reason: currentErrorDescription()) }
        defer { unlink(temporary) }
        let written = write(fd, contents, path: temporary)
        close(fd)
        try written.get()
        // link() never replaces an existing file, unlike rename().
        if link(temporary, path) != 0 {
            if errno == EEXIST { return false }
            throw .keyFile(path: path, reason: currentErrorDescription())
        }
        syncParentDirectory(of: path)
        return true
    }

    /// Sets mode 0600 exactly (the mode given to `open` is filtered by the umask), writes and fsyncs.
    private static func write(_ fd: Int32, _ contents: [UInt8], path: String) -> Result<Void, SecretBoxError> {
        guard fchmod(fd, 0o600) == 0 else { return .failure(.keyFile(path: path, reason: currentErrorDescription())) }
        var written = 0
        while written < contents.count {
            let count = contents[written...].withUnsafeBytes { posixWrite(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(.keyFile(path: path, reason: currentErrorDescription()))
            }
            written += count
        }
        guard fsync(fd) == 0 else { return .failure(.keyFile(path: path, reason: currentErrorDescription())) }
        return .success(())
    }

    private static func syncParentDirectory(of path: String) {
        let directory = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)]) : "."
        let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }

    private static func currentErrorDescription() -> String {
        String(cString: strerror(errno))
    }
}

@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(fd, buffer, count)
}

@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
    write(fd, buffer, count)
}
