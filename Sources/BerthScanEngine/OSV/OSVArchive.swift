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

/// An osv.dev export (`<ecosystem>/all.zip`, one `<id>.json` record per entry), read with ZIPFoundation one entry at
/// a time: the central directory is walked and each record is inflated from the file when it is reached, so the
/// archive is never held in memory. ZIP64 archives are read too. Nothing is extracted to disk. (ZIPFoundation's
/// in-memory archives are not used: 0.9.20 traps on reads past the end of the data, which a hostile archive asks for.)
///
/// Berth's limits hold whatever the archive says: at most ``Limits/maxEntries`` entries and
/// ``Limits/maxTotalBytes`` inflated bytes in all (else the archive fails); an entry with an unsafe name (absolute,
/// `..`, backslash, NUL, drive letter), a name longer than ``Limits/maxNameBytes``, a declared size above
/// ``Limits/maxRecordBytes``, a compressed size no deflate stream of that size could have, data that inflates beyond
/// its declared size or runs past its compressed size, a CRC-32 mismatch or an unknown method is skipped with a reason.
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
    /// The entry count the end-of-central-directory record declares.
    private let declaredEntries: Int

    /// Opens the archive at `url` (read from the file as entries are reached).
    public init(url: URL) throws(ZipError) {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: url) } catch { throw .notAZip("\(url.path): \(error)") }
        defer { try? handle.close() }
        let declared = try Self.declaredEntryCount { offset, count in
            try? handle.seek(toOffset: UInt64(offset))
            return (try? handle.read(upToCount: count)) ?? Data()
        } size: { (try? handle.seekToEnd()).map { Int($0) } ?? 0 }
        do { archive = try Archive(url: url, accessMode: .read) } catch { throw .notAZip("\(error)") }
        declaredEntries = declared
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
        for entry in archive {
            seen += 1
            guard seen <= declaredEntries else { throw ZipError.corrupt("more entries than the directory declares") }
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
                try body(name, .contents(try contents(of: entry, size: size)))
            } catch let e as ZipError {
                try body(name, .skipped(e.description))
            }
        }
        guard seen == declaredEntries else {
            throw ZipError.corrupt("central directory entry \(seen + 1) of \(declaredEntries) unreadable (damaged or encrypted)")
        }
    }

    /// The contents of `entry`, streamed out of the archive by ZIPFoundation, exactly `size` bytes, CRC-checked.
    private func contents(of entry: Entry, size: Int) throws(ZipError) -> [UInt8] {
        let compressed = Int(clamping: entry.compressedSize)
        // Deflate never grows data by more than a few bytes per 16 KiB block: a larger claim is a lie.
        if entry.isCompressed, compressed > size + size / 100 + 1024 {
            throw .corrupt("compressed size \(compressed) implausible for \(size) bytes")
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        // A deflated entry is read in one piece of its compressed size and one byte: its stream must end inside it.
        // ZIPFoundation reads on while a stream has not ended (and, on Linux, spins at the end of the file), so a
        // second piece means the data runs past the entry; it is refused before it is read on.
        let piece = entry.isCompressed ? compressed + 1 : max(1, min(size, 1 << 20))
        var pieceEnded = false
        let crc: CRC32
        do {
            crc = try archive.extract(entry, bufferSize: piece, skipCRC32: false) { data in
                if entry.isCompressed {
                    if pieceEnded { throw ZipError.corrupt("deflate data runs past the entry") }
                    pieceEnded = data.count < piece
                } else if data.isEmpty && size > 0 {
                    // ZIPFoundation reads a stored entry by the directory's size, empty pieces past the end of the file.
                    throw ZipError.corrupt("entry data ends early")
                }
                guard out.count + data.count <= size else { throw ZipError.corrupt("entry inflates beyond its declared size") }
                out.append(contentsOf: data)
            }
        } catch let e as ZipError {
            throw e
        } catch Archive.ArchiveError.invalidCompressionMethod {
            throw .unsupported("compression method")
        } catch {
            throw .corrupt("\(error)")
        }
        guard out.count == size else { throw .corrupt("entry inflated to \(out.count) bytes, \(size) declared") }
        guard crc == entry.checksum else { throw .corrupt("CRC-32 mismatch") }
        return out
    }

    /// True for a relative name without `..` components, backslashes, NUL or a drive letter, so that a name can
    /// never address a file outside a directory it might be joined to ("zip slip").
    public static func isSafeEntryName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), !name.contains("\0") else { return false }
        if name.count >= 2, name.dropFirst().first == ":" { return false }
        return !name.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    /// The entry count of the end-of-central-directory record, or of the ZIP64 record right before it, found as
    /// ZIPFoundation finds them. ZIPFoundation ends its walk of the directory silently at an entry it cannot read
    /// (damaged, encrypted), so the count is read here to tell a complete walk from a cut one.
    static func declaredEntryCount(read: (Int, Int) -> Data, size: () -> Int) throws(ZipError) -> Int {
        let n = size()
        guard n >= 22 else { throw .notAZip("shorter than an end-of-central-directory record") }
        func u16(_ b: [UInt8], _ i: Int) -> Int { Int(b[i]) | Int(b[i + 1]) << 8 }
        func u32(_ b: [UInt8], _ i: Int) -> Int { u16(b, i) | u16(b, i + 2) << 16 }
        func u64(_ b: [UInt8], _ i: Int) -> UInt64 { UInt64(u32(b, i)) | UInt64(u32(b, i + 4)) << 32 }
        // The record: 22 bytes plus a comment of up to 65535 bytes, at the end.
        let tailStart = max(0, n - 22 - 0xffff)
        let tail = [UInt8](read(tailStart, n - tailStart))
        guard tail.count == n - tailStart,
              let found = stride(from: tail.count - 22, through: 0, by: -1).first(where: { u32(tail, $0) == 0x0605_4b50 })
        else { throw .notAZip("no end-of-central-directory record") }
        var count = UInt64(u16(tail, found + 10))
        // ZIP64: a locator (20 bytes) right before the record, and the ZIP64 record (56 bytes) right before that.
        let eocd = tailStart + found
        if eocd > 20 + 56 {
            let z = [UInt8](read(eocd - 76, 76))
            if z.count == 76, u32(z, 56) == 0x0706_4b50, u32(z, 0) == 0x0606_4b50, u16(z, 14) >= 45 {
                count = u64(z, 32)
            }
        }
        // Every entry takes at least 46 bytes of the directory.
        guard count <= UInt64(n / 46) else { throw .corrupt("\(count) entries cannot fit a \(n)-byte archive") }
        return Int(count)
    }
}
