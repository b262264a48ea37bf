import CBerthZlib
import Foundation
import ZIPFoundation

/// Why a zip archive, or one of its entries, could not be read.
public enum ZipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No end-of-central-directory record, or a central directory outside the archive.
    case notAZip(String)
    /// A central directory, local header or entry's data is damaged.
    case corrupt(String)
    /// The entry uses a compression method other than stored (0) or deflate (8), or is not a regular file.
    case unsupported(String)
    /// The entry is larger than the limit.
    case tooLarge(Int)
    /// The archive as a whole exceeds a limit (entries, total bytes).
    case limitExceeded(String)

    public var description: String {
        switch self {
        case .notAZip(let s): "not a zip archive: \(s)"
        case .corrupt(let s): "corrupt zip: \(s)"
        case .unsupported(let s): "unsupported zip entry: \(s)"
        case .tooLarge(let n): "entry of \(n) bytes exceeds the limit"
        case .limitExceeded(let s): "zip archive exceeds a limit: \(s)"
        }
    }
}

/// An osv.dev export (`<ecosystem>/all.zip`, one `<id>.json` record per entry), read one entry at a time: ZIPFoundation
/// walks the central directory and gives each entry's name, type, sizes and CRC; the record's bytes are read by offset
/// from the file (where the directory and the entry's local header put them) and inflated here with zlib, in one call
/// over exactly the entry's compressed bytes, so the archive is never held in memory. ZIP64 archives are read too.
/// Nothing is extracted to disk. (ZIPFoundation 0.9.20 does not unpack: its Linux inflate loop spins forever on a
/// stream that reaches the end of the file unfinished, weichsel/ZIPFoundation#389, and its in-memory archives trap on
/// reads past the end of the data, which a hostile archive asks for.)
///
/// Berth's limits hold whatever the archive says: at most ``Limits/maxEntries`` entries and
/// ``Limits/maxTotalBytes`` inflated bytes in all (else the archive fails); an entry with an unsafe name (absolute,
/// `..`, backslash, NUL, drive letter), a name longer than ``Limits/maxNameBytes``, a declared size above
/// ``Limits/maxRecordBytes``, a compressed size no deflate stream of that size could have, data that does not end
/// before the central directory starts, data that inflates beyond its declared size or runs past its compressed size,
/// a CRC-32 mismatch or an unknown method is skipped with a reason.
public struct OSVArchive {
    public struct Limits: Sendable {
        /// Records larger than this are skipped.
        public var maxRecordBytes: Int
        /// Entries in the central directory.
        public var maxEntries: Int
        /// Inflated bytes of all records together (a guard against archives of many small bombs).
        public var maxTotalBytes: Int
        /// Entry names longer than this (in UTF-8) are skipped.
        public var maxNameBytes: Int

        public init(maxRecordBytes: Int = 16 << 20, maxEntries: Int = 4_000_000, maxTotalBytes: Int = 64 << 30,
                    maxNameBytes: Int = 4096) {
            self.maxRecordBytes = maxRecordBytes
            self.maxEntries = maxEntries
            self.maxTotalBytes = maxTotalBytes
            self.maxNameBytes = maxNameBytes
        }
    }

    private let archive: Archive
    /// The archive's file, read by offset.
    private let file: ArchiveFile
    /// Where the central directory starts and how many entries the end-of-central-directory record declares.
    private let directory: Directory
    private var declaredEntries: Int { directory.entries }

    /// Opens the archive at `url` (read from the file as entries are reached).
    public init(url: URL) throws(ZipError) {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch { throw .notAZip("\(url.path): \(error)") }
        file = ArchiveFile(handle: handle)
        directory = try Self.directory(read: file.read, size: file.size)
        do { archive = try Archive(url: url, accessMode: .read) } catch { throw .notAZip("\(error)") }
    }

    /// One `*.json` entry of the archive: its contents, or why it was skipped.
    public enum Record {
        case contents([UInt8])
        case skipped(String)
    }

    /// Calls `body` with the name of every `*.json` entry, in central-directory order, and its contents or why it
    /// was skipped; directories and other files are passed over. Throws when the archive itself is damaged (an
    /// unreadable central-directory entry: the entries after it cannot be reached) or exceeds a limit.
    public func forEachRecord(limits: Limits = Limits(), _ body: (String, Record) throws -> Void) throws {
        guard declaredEntries <= limits.maxEntries else {
            throw ZipError.limitExceeded("\(declaredEntries) entries, more than \(limits.maxEntries)")
        }
        var seen = 0
        var totalBytes = 0
        var cursor = directory.offset
        for entry in archive {
            seen += 1
            guard seen <= declaredEntries else { throw ZipError.corrupt("more entries than the directory declares") }
            // The same directory entry ZIPFoundation has just read, for where its data lies.
            let header = try CentralHeader(at: &cursor, in: file)
            let name = entry.path
            guard entry.type != .directory, name.hasSuffix(".json") else { continue }
            guard Self.isSafeEntryName(name) else { try body(name, .skipped("unsafe entry name")); continue }
            guard name.utf8.count <= limits.maxNameBytes else {
                try body(name, .skipped("entry name longer than \(limits.maxNameBytes) bytes"))
                continue
            }
            guard entry.type == .file else { try body(name, .skipped(ZipError.unsupported("not a regular file").description)); continue }
            guard entry.uncompressedSize <= UInt64(limits.maxRecordBytes) else {
                try body(name, .skipped("entry of \(entry.uncompressedSize) bytes exceeds the \(limits.maxRecordBytes)-byte limit"))
                continue
            }
            let size = Int(entry.uncompressedSize)
            totalBytes += size
            guard totalBytes <= limits.maxTotalBytes else {
                throw ZipError.limitExceeded("more than \(limits.maxTotalBytes) bytes of records")
            }
            do {
                try body(name, .contents(try contents(of: entry, header: header, size: size)))
            } catch let e as ZipError {
                try body(name, .skipped(e.description))
            }
        }
        guard seen == declaredEntries else {
            throw ZipError.corrupt("central directory entry \(seen + 1) of \(declaredEntries) unreadable (damaged or encrypted)")
        }
    }

    /// The contents of `entry` (whose central directory entry is `header`), exactly `size` bytes, CRC-checked: the
    /// entry's bytes are read from the file by offset, and must end before the central directory starts; deflate data
    /// is inflated in one zlib call over exactly those bytes, into room for one byte more than `size`.
    private func contents(of entry: Entry, header: CentralHeader, size: Int) throws(ZipError) -> [UInt8] {
        guard header.crc32 == entry.checksum, header.uncompressedSize == entry.uncompressedSize,
              header.compressedSize == entry.compressedSize
        else { throw .corrupt("sizes or CRC-32 differ between the central directory and the data descriptor") }
        // The local header ZIPFoundation read for the entry: its method, and the name and extra field before the data.
        guard directory.offset >= 30, header.localHeaderOffset <= UInt64(directory.offset - 30) else {
            throw .corrupt("local header outside the archive's entries")
        }
        let local = [UInt8](file.read(Int(header.localHeaderOffset), 30))
        guard local.count == 30, le32(local, 0) == 0x0403_4b50 else { throw .corrupt("local header unreadable") }
        let method = le16(local, 8)
        guard method == 0 || method == 8 else { throw .unsupported("compression method \(method)") }
        let dataOffset = Int(header.localHeaderOffset) + 30 + le16(local, 26) + le16(local, 28)
        let compressed = Int(clamping: header.compressedSize)
        // Deflate never grows data by more than a few bytes per 16 KiB block: a larger claim is a lie.
        if method == 8, compressed > size + size / 100 + 1024 {
            throw .corrupt("compressed size \(compressed) implausible for \(size) bytes")
        }
        let length = method == 8 ? compressed : size
        guard dataOffset + length <= directory.offset else {
            throw .corrupt("entry data runs past the start of the central directory")
        }
        let bytes = [UInt8](file.read(dataOffset, length))
        guard bytes.count == length else { throw .corrupt("entry data ends early") }
        let out = method == 8 ? try Self.inflate(bytes, size: size) : bytes
        let crc = out.withUnsafeBufferPointer { UInt32(truncatingIfNeeded: crc32(0, $0.baseAddress, UInt32($0.count))) }
        guard crc == header.crc32 else { throw .corrupt("CRC-32 mismatch") }
        return out
    }

    /// Inflates the raw deflate stream `input`, which must end inside it and inflate to exactly `size` bytes. One call
    /// of zlib's `inflate` with `Z_FINISH` and room for `size + 1` bytes runs until the stream ends, the input is used
    /// up or the room is full: there is no loop to spin.
    static func inflate(_ input: [UInt8], size: Int) throws(ZipError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("zlib could not start")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: size + 1)
        let (rc, produced) = input.withUnsafeBufferPointer { inBuf in
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress.map { UnsafeMutablePointer(mutating: $0) }  // zlib only reads it
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                let rc = CBerthZlib.inflate(&stream, Z_FINISH)
                return (rc, outBuf.count - Int(stream.avail_out))
            }
        }
        switch rc {
        case Z_STREAM_END:
            guard produced == size else { throw .corrupt("entry inflated to \(produced) bytes, \(size) declared") }
            out.removeLast()
            return out
        case Z_OK, Z_BUF_ERROR:
            if produced > size { throw .corrupt("entry inflates beyond its declared size") }
            throw .corrupt("deflate data runs past the entry")
        default:
            throw .corrupt("deflate data: \(stream.msg.map { String(cString: $0) } ?? "zlib error \(rc)")")
        }
    }

    /// True for a relative name without `..` components, backslashes, NUL or a drive letter, so that a name can
    /// never address a file outside a directory it might be joined to ("zip slip").
    public static func isSafeEntryName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), !name.contains("\0") else { return false }
        if name.count >= 2, name.dropFirst().first == ":" { return false }
        return !name.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    /// Where the central directory starts, and the entry count it declares.
    struct Directory: Equatable {
        var entries: Int
        var offset: Int
    }

    /// The entry count and the start of the central directory, from the end-of-central-directory record, or the ZIP64
    /// record right before it, found as ZIPFoundation finds them. ZIPFoundation ends its walk of the directory silently
    /// at an entry it cannot read (damaged, encrypted), so the count is read here to tell a complete walk from a cut
    /// one; entries' data must end before the directory's start.
    static func directory(read: (Int, Int) -> Data, size: () -> Int) throws(ZipError) -> Directory {
        let n = size()
        guard n >= 22 else { throw .notAZip("shorter than an end-of-central-directory record") }
        // The record: 22 bytes plus a comment of up to 65535 bytes, at the end.
        let tailStart = max(0, n - 22 - 0xffff)
        let tail = [UInt8](read(tailStart, n - tailStart))
        guard tail.count == n - tailStart,
              let found = stride(from: tail.count - 22, through: 0, by: -1).first(where: { le32(tail, $0) == 0x0605_4b50 })
        else { throw .notAZip("no end-of-central-directory record") }
        var count = UInt64(le16(tail, found + 10))
        var offset = UInt64(le32(tail, found + 16))
        // ZIP64: a locator (20 bytes) right before the record, and the ZIP64 record (56 bytes) right before that.
        let eocd = tailStart + found
        if eocd > 20 + 56 {
            let z = [UInt8](read(eocd - 76, 76))
            if z.count == 76, le32(z, 56) == 0x0706_4b50, le32(z, 0) == 0x0606_4b50, le16(z, 14) >= 45 {
                count = le64(z, 32)
                offset = le64(z, 48)
            }
        }
        // Every entry takes at least 46 bytes of the directory, which lies before the end record.
        guard count <= UInt64(n / 46) else { throw .corrupt("\(count) entries cannot fit a \(n)-byte archive") }
        guard offset <= UInt64(eocd) else { throw .notAZip("central directory at \(offset), after its end record") }
        return Directory(entries: Int(count), offset: Int(offset))
    }
}

/// The archive's file, read by offset.
private final class ArchiveFile {
    private let handle: FileHandle
    /// A window of the file that small reads are served from (the directory is read a few bytes at a time, in order).
    private var window = Data()
    private var windowStart = 0

    init(handle: FileHandle) { self.handle = handle }
    deinit { try? handle.close() }

    /// Up to `count` bytes at `offset` (fewer at the end of the file).
    func read(_ offset: Int, _ count: Int) -> Data {
        guard offset >= 0, count > 0, (try? handle.seek(toOffset: UInt64(offset))) != nil else { return Data() }
        return (try? handle.read(upToCount: count)) ?? Data()
    }

    /// Up to `count` bytes at `offset`, through a window of 64 KiB or `count` bytes read ahead.
    func readAhead(_ offset: Int, _ count: Int) -> Data {
        guard offset >= 0, count > 0 else { return Data() }
        if offset < windowStart || offset + count > windowStart + window.count {
            window = read(offset, max(count, 64 << 10))
            windowStart = offset
        }
        let from = window.startIndex + (offset - windowStart)
        return window[from..<min(from + count, window.endIndex)]
    }

    func size() -> Int { (try? handle.seekToEnd()).map { Int(clamping: $0) } ?? 0 }
}

/// The fields of a central directory entry that say where its data lies and what it holds (ZIP64 values applied).
private struct CentralHeader {
    var crc32: UInt32
    var compressedSize: UInt64
    var uncompressedSize: UInt64
    var localHeaderOffset: UInt64

    /// Reads the entry at `cursor` and moves `cursor` past it.
    init(at cursor: inout Int, in file: ArchiveFile) throws(ZipError) {
        let fixed = [UInt8](file.readAhead(cursor, 46))
        guard fixed.count == 46, le32(fixed, 0) == 0x0201_4b50 else {
            throw .corrupt("central directory entry at \(cursor) unreadable")
        }
        crc32 = UInt32(le32(fixed, 16))
        compressedSize = UInt64(le32(fixed, 20))
        uncompressedSize = UInt64(le32(fixed, 24))
        localHeaderOffset = UInt64(le32(fixed, 42))
        let nameLength = le16(fixed, 28), extraLength = le16(fixed, 30), commentLength = le16(fixed, 32)
        // The ZIP64 extra field (id 1) holds, in this order, each of these whose 32-bit field is all ones.
        var extra = [UInt8](file.readAhead(cursor + 46 + nameLength, extraLength))
        while extra.count >= 4 {
            let id = le16(extra, 0), length = le16(extra, 2)
            let field = [UInt8](extra.dropFirst(4).prefix(length))
            if id == 1 {
                var at = 0
                func next(_ value: inout UInt64) {
                    guard value == 0xffff_ffff, at + 8 <= field.count else { return }
                    value = le64(field, at)
                    at += 8
                }
                next(&uncompressedSize)
                next(&compressedSize)
                next(&localHeaderOffset)
                break
            }
            extra = [UInt8](extra.dropFirst(4 + length))
        }
        cursor += 46 + nameLength + extraLength + commentLength
    }
}

private func le16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
private func le32(_ b: [UInt8], _ i: Int) -> Int { le16(b, i) | le16(b, i + 2) << 16 }
private func le64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(le32(b, i)) | UInt64(le32(b, i + 4)) << 32 }
