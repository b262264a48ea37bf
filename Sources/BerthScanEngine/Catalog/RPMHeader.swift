/// Why an rpm header blob could not be read.
public struct RPMHeaderError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

/// An rpm header (the "header blob" rpm stores per package in its database), parsed far enough to read tags.
///
/// Layout (rpm `lib/header.c`, big-endian): optional 8-byte magic `8e ad e8 01 00 00 00 00`, then `il` (index entry
/// count) and `dl` (data length) as 32-bit integers, `il` 16-byte entries (tag, type, offset, count), then `dl` bytes
/// of data the entries point into. Every offset and count is bounds-checked; nothing is trusted.
public struct RPMHeader: Sendable, Equatable {
    /// Tags read by the rpm cataloger.
    public enum Tag {
        public static let name: Int32 = 1000
        public static let version: Int32 = 1001
        public static let release: Int32 = 1002
        public static let epoch: Int32 = 1003
        public static let arch: Int32 = 1022
        public static let sourceRPM: Int32 = 1044
    }

    struct Entry: Sendable, Equatable {
        var type: UInt32
        var offset: Int
        var count: Int
    }

    private let data: [UInt8]
    private let entries: [Int32: Entry]

    /// rpm's own limits: at most 0xffff index entries and 256 MiB of data.
    static let maxEntries = 0xffff
    static let maxData = 0x0fff_ffff

    public init(parsing blob: [UInt8]) throws(RPMHeaderError) {
        var start = 0
        if blob.count >= 8, blob[0] == 0x8e, blob[1] == 0xad, blob[2] == 0xe8, blob[3] == 0x01 { start = 8 }
        guard blob.count - start >= 8 else { throw RPMHeaderError(description: "header shorter than 8 bytes") }
        let il = Int(Self.u32(blob, start))
        let dl = Int(Self.u32(blob, start + 4))
        guard il >= 1, il <= Self.maxEntries else { throw RPMHeaderError(description: "index count \(il) out of range") }
        guard dl <= Self.maxData else { throw RPMHeaderError(description: "data length \(dl) out of range") }
        let indexStart = start + 8
        let dataStart = indexStart + il * 16
        guard dataStart + dl <= blob.count else {
            throw RPMHeaderError(description: "header of \(il) entries and \(dl) data bytes exceeds the blob's \(blob.count) bytes")
        }
        data = Array(blob[dataStart..<(dataStart + dl)])
        var entries: [Int32: Entry] = [:]
        for k in 0..<il {
            let p = indexStart + k * 16
            let tag = Int32(bitPattern: Self.u32(blob, p))
            let type = Self.u32(blob, p + 4)
            let offset = Int(Int32(bitPattern: Self.u32(blob, p + 8)))
            let count = Int(Self.u32(blob, p + 12))
            guard offset >= 0, offset <= dl else { throw RPMHeaderError(description: "tag \(tag) offset \(offset) out of range") }
            if entries[tag] == nil { entries[tag] = Entry(type: type, offset: offset, count: count) }
        }
        self.entries = entries
    }

    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    /// The value of a STRING, STRING_ARRAY or I18NSTRING tag (the first element of an array), or `nil`.
    public func string(_ tag: Int32) -> String? {
        guard let e = entries[tag], [6, 8, 9].contains(e.type), e.count >= 1, e.offset < data.count else { return nil }
        guard let end = data[e.offset...].firstIndex(of: 0) else { return nil }
        return String(decoding: data[e.offset..<end], as: UTF8.self)
    }

    /// The first value of an INT32 tag, or `nil`.
    public func int32(_ tag: Int32) -> Int32? {
        guard let e = entries[tag], e.type == 4, e.count >= 1, e.offset + 4 <= data.count else { return nil }
        return Int32(bitPattern: Self.u32(data, e.offset))
    }
}
