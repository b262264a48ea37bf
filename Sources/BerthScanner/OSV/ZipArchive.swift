import CZlib
import Foundation

/// Why a zip archive, or one of its entries, could not be read.
public enum ZipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No end-of-central-directory record, or a central directory outside the archive.
    case notAZip(String)
    /// A central directory or local header is damaged.
    case corrupt(String)
    /// The entry uses a compression method other than stored (0) or deflate (8), or is encrypted.
    case unsupported(String)
    /// The entry is larger than the limit.
    case tooLarge(Int)

    public var description: String {
        switch self {
        case .notAZip(let s): "not a zip archive: \(s)"
        case .corrupt(let s): "corrupt zip: \(s)"
        case .unsupported(let s): "unsupported zip entry: \(s)"
        case .tooLarge(let n): "entry of \(n) bytes exceeds the limit"
        }
    }
}

/// A minimal zip reader (PKWARE APPNOTE 6.3): the central directory, ZIP64 sizes and offsets, stored and deflated
/// entries (zlib raw inflate), CRC-32 verified. Nothing is extracted to disk; names are returned as written and
/// callers decide what a safe name is (see ``isSafeEntryName(_:)``).
public struct ZipArchive: Sendable {
    /// One central-directory entry.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var method: UInt16
        public var flags: UInt16
        public var crc32: UInt32
        public var compressedSize: Int
        public var uncompressedSize: Int
        public var localHeaderOffset: Int
        public var isDirectory: Bool { name.hasSuffix("/") }
    }

    public let data: Data
    public let entries: [Entry]

    /// Reads the central directory of `data`; at most `maxEntries` entries are accepted.
    public init(data: Data, maxEntries: Int = 4_000_000) throws(ZipError) {
        self.data = data
        let n = data.count
        func u16(_ i: Int) -> Int { Int(data[data.startIndex + i]) | Int(data[data.startIndex + i + 1]) << 8 }
        func u32(_ i: Int) -> Int { u16(i) | u16(i + 2) << 16 }
        func u64(_ i: Int) -> Int? {
            let v = UInt64(u32(i)) | UInt64(u32(i + 4)) << 32
            return v <= UInt64(Int.max) ? Int(v) : nil
        }
        // The end-of-central-directory record: 22 bytes plus a comment of up to 65535 bytes, at the end.
        guard n >= 22 else { throw .notAZip("shorter than an end-of-central-directory record") }
        var eocd = -1
        var i = n - 22
        while i >= max(0, n - 22 - 0xffff) {
            if u32(i) == 0x0605_4b50 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw .notAZip("no end-of-central-directory record") }
        var count = u16(eocd + 10)
        var cdSize = u32(eocd + 12)
        var cdOffset = u32(eocd + 16)
        if count == 0xffff || cdSize == 0xffff_ffff || cdOffset == 0xffff_ffff {
            // ZIP64: a locator just before the record points to the ZIP64 end-of-central-directory record.
            let locator = eocd - 20
            guard locator >= 0, u32(locator) == 0x0706_4b50, let recordOffset = u64(locator + 8),
                  recordOffset >= 0, recordOffset <= locator - 56, u32(recordOffset) == 0x0606_4b50,
                  let c = u64(recordOffset + 32), let s = u64(recordOffset + 40), let o = u64(recordOffset + 48)
            else { throw .corrupt("invalid ZIP64 end-of-central-directory record") }
            count = c
            cdSize = s
            cdOffset = o
        }
        guard count <= maxEntries else { throw .corrupt("\(count) entries exceed the limit of \(maxEntries)") }
        guard cdOffset <= n, cdSize <= n - cdOffset else { throw .notAZip("central directory outside the archive") }
        // Every entry takes at least 46 bytes of the directory, so a lying count cannot make us reserve memory.
        guard count <= cdSize / 46 else { throw .corrupt("\(count) entries cannot fit a \(cdSize)-byte directory") }
        var entries: [Entry] = []
        entries.reserveCapacity(count)
        var p = cdOffset
        let end = cdOffset + cdSize
        for k in 0..<count {
            guard p + 46 <= end, u32(p) == 0x0201_4b50 else { throw .corrupt("central directory entry \(k) damaged") }
            let flags = UInt16(u16(p + 8))
            let method = UInt16(u16(p + 10))
            let crc = UInt32(u32(p + 16))
            var csize = u32(p + 20)
            var usize = u32(p + 24)
            let nameLength = u16(p + 28)
            let extraLength = u16(p + 30)
            let commentLength = u16(p + 32)
            var offset = u32(p + 42)
            let nameStart = p + 46
            let extraStart = nameStart + nameLength
            let next = extraStart + extraLength + commentLength
            guard next <= end else { throw .corrupt("central directory entry \(k) overruns the directory") }
            let name = String(decoding: data[(data.startIndex + nameStart)..<(data.startIndex + extraStart)], as: UTF8.self)
            // ZIP64 extra field (0x0001): the 8-byte values whose 32-bit fields are 0xffffffff, in this order.
            var e = extraStart
            while e + 4 <= extraStart + extraLength {
                let id = u16(e)
                let size = u16(e + 2)
                let body = e + 4
                guard body + size <= extraStart + extraLength else { break }
                if id == 0x0001 {
                    var q = body
                    func take() -> Int? {
                        guard q + 8 <= body + size, let v = u64(q) else { return nil }
                        q += 8
                        return v
                    }
                    if usize == 0xffff_ffff { guard let v = take() else { throw .corrupt("short ZIP64 field") }; usize = v }
                    if csize == 0xffff_ffff { guard let v = take() else { throw .corrupt("short ZIP64 field") }; csize = v }
                    if offset == 0xffff_ffff { guard let v = take() else { throw .corrupt("short ZIP64 field") }; offset = v }
                }
                e = body + size
            }
            entries.append(Entry(name: name, method: method, flags: flags, crc32: crc, compressedSize: csize,
                                 uncompressedSize: usize, localHeaderOffset: offset))
            p = next
        }
        self.entries = entries
    }

    /// True for a relative name without `..` components, backslashes, NUL or a drive letter, so that a name can
    /// never address a file outside a directory it might be joined to ("zip slip").
    public static func isSafeEntryName(_ name: String) -> Bool {
        guard !name.isEmpty, !name.hasPrefix("/"), !name.contains("\\"), !name.contains("\0") else { return false }
        if name.count >= 2, name.dropFirst().first == ":" { return false }
        return !name.split(separator: "/", omittingEmptySubsequences: false).contains("..")
    }

    /// The contents of `entry`, at most `maxBytes` long, CRC-checked.
    public func contents(of entry: Entry, maxBytes: Int) throws(ZipError) -> [UInt8] {
        guard entry.flags & 0x1 == 0 else { throw .unsupported("encrypted") }
        guard entry.method == 0 || entry.method == 8 else { throw .unsupported("compression method \(entry.method)") }
        guard entry.uncompressedSize <= maxBytes else { throw .tooLarge(entry.uncompressedSize) }
        let n = data.count
        let h = entry.localHeaderOffset
        guard h >= 0, h <= n - 30 else { throw .corrupt("local header outside the archive") }
        func u16(_ i: Int) -> Int { Int(data[data.startIndex + i]) | Int(data[data.startIndex + i + 1]) << 8 }
        guard u16(h) | u16(h + 2) << 16 == 0x0403_4b50 else { throw .corrupt("local header signature") }
        let start = h + 30 + u16(h + 26) + u16(h + 28)
        guard start <= n, entry.compressedSize <= n - start else { throw .corrupt("entry data outside the archive") }
        // Deflate never grows data by more than a few bytes per 16 KiB block: a larger claim is a lie.
        guard entry.method == 0 || entry.compressedSize <= entry.uncompressedSize + entry.uncompressedSize / 100 + 1024 else {
            throw .corrupt("compressed size \(entry.compressedSize) implausible for \(entry.uncompressedSize) bytes")
        }
        let compressed = data[(data.startIndex + start)..<(data.startIndex + start + entry.compressedSize)]
        let out: [UInt8]
        if entry.method == 0 {
            guard entry.compressedSize == entry.uncompressedSize else { throw .corrupt("stored entry sizes differ") }
            out = [UInt8](compressed)
        } else {
            out = try Self.inflateRaw(compressed, expected: entry.uncompressedSize)
        }
        let crc = out.withUnsafeBufferPointer { b in
            UInt32(CZlib.crc32(0, b.baseAddress, uInt(b.count)))
        }
        guard crc == entry.crc32 else { throw .corrupt("CRC-32 mismatch") }
        return out
    }

    /// Raw deflate (no zlib/gzip header), producing exactly `expected` bytes.
    static func inflateRaw(_ input: Data, expected: Int) throws(ZipError) -> [UInt8] {
        var stream = z_stream()
        guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt("inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        // One spare byte detects output beyond the declared size.
        var out = [UInt8](repeating: 0, count: expected + 1)
        var rc: Int32 = Z_OK
        var produced = 0
        input.withUnsafeBytes { (inRaw: UnsafeRawBufferPointer) in
            let inBuf = inRaw.bindMemory(to: UInt8.self)
            out.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress ?? UnsafePointer(outBuf.baseAddress!))
                stream.avail_in = uInt(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = uInt(outBuf.count)
                rc = inflate(&stream, Z_FINISH)
                produced = outBuf.count - Int(stream.avail_out)
            }
        }
        guard rc == Z_STREAM_END else {
            throw produced > expected ? .corrupt("entry inflates beyond its declared size") : .corrupt("invalid deflate data (\(rc))")
        }
        guard produced == expected else { throw .corrupt("entry inflated to \(produced) bytes, \(expected) declared") }
        out.removeLast()
        return out
    }
}
