/// Why a tar stream could not be read.
public enum TarError: Error, Sendable, Equatable {
    /// The stream ended inside a header or an entry's data.
    case truncated
    /// A header block failed its checksum or had invalid fields.
    case corruptHeader(String)
    /// A pax or GNU long-name record is larger than the limit.
    case metadataTooLarge(Int)
}

/// The kind of a tar entry.
public enum TarEntryType: Sendable, Equatable {
    case regular
    case hardLink
    case symbolicLink
    case directory
    /// Character or block devices, FIFOs and unknown types.
    case other(UInt8)
}

/// The header of one tar entry, with pax and GNU long names already applied.
public struct TarEntryHeader: Sendable, Equatable {
    /// The path as stored (not normalised).
    public var path: String
    public var type: TarEntryType
    public var size: Int
    public var linkName: String
    /// The permission bits (`0` when the field is unreadable).
    public var mode: Int = 0
}

/// Sees the data of one tar entry as it streams by, without the parser buffering it.
public protocol TarEntryObserver: AnyObject {
    /// Called with successive pieces of the entry's data.
    func consume(_ bytes: ArraySlice<UInt8>)
    /// True once the observer needs no more data.
    var isDone: Bool { get }
}

/// One tar entry and, when it was asked for and small enough, its contents.
public struct TarEntry: Sendable, Equatable {
    public var header: TarEntryHeader
    /// The data, when the entry was captured; `nil` when it was not wanted or exceeded the capture limit.
    public var contents: [UInt8]?
    /// True when the entry was wanted but larger than the capture limit.
    public var exceededCaptureLimit: Bool
}

/// A push parser for ustar, GNU and pax tar streams: feed it bytes as they arrive, it reports entries.
///
/// Only the contents of entries `wantsContents` accepts are kept, each up to `maxCaptureBytes`; everything
/// else is skipped without buffering, so memory stays bounded whatever the archive's size.
public struct TarStreamParser {
    public struct Limits: Sendable {
        /// Largest entry whose contents are captured.
        public var maxCaptureBytes: Int
        /// Largest pax extended header or GNU long name/link record.
        public var maxMetadataBytes: Int

        public init(maxCaptureBytes: Int = 16 << 20, maxMetadataBytes: Int = 1 << 20) {
            self.maxCaptureBytes = maxCaptureBytes
            self.maxMetadataBytes = maxMetadataBytes
        }
    }

    private enum MetadataKind { case longName, longLink, pax, globalPax }

    private enum State {
        case header
        case data(header: TarEntryHeader, remaining: Int, capture: Bool, tooLarge: Bool)
        case metadata(kind: MetadataKind, remaining: Int)
        case padding(remaining: Int)
        case afterFirstZeroBlock
        case end
    }

    public let limits: Limits
    private let wantsContents: (TarEntryHeader) -> Bool
    private let observe: ((TarEntryHeader) -> (any TarEntryObserver)?)?
    private var observer: (any TarEntryObserver)?
    private var state: State = .header
    private var block: [UInt8] = []
    private var buffer: [UInt8] = []
    private var pendingPadding = 0
    private var longName: String?
    private var longLink: String?
    private var pax: [String: String] = [:]

    /// A parser that captures the contents of the entries `wantsContents` accepts.
    public init(limits: Limits = Limits(), wantsContents: @escaping (TarEntryHeader) -> Bool) {
        self.init(limits: limits, wantsContents: wantsContents, observe: nil)
    }

    /// A parser that also streams the data of the regular entries `observe` returns an observer for to that observer.
    public init(
        limits: Limits = Limits(), wantsContents: @escaping (TarEntryHeader) -> Bool,
        observe: ((TarEntryHeader) -> (any TarEntryObserver)?)?
    ) {
        self.limits = limits
        self.wantsContents = wantsContents
        self.observe = observe
        block.reserveCapacity(512)
    }

    /// True once the end-of-archive marker has been read.
    public var reachedEnd: Bool {
        if case .end = state { return true }
        return false
    }

    /// Consumes `bytes`, calling `onEntry` for every entry completed.
    public mutating func feed(_ bytes: [UInt8], onEntry: (TarEntry) throws -> Void) throws {
        var i = 0
        while i < bytes.count {
            switch state {
            case .end:
                return
            case .header, .afterFirstZeroBlock:
                let take = min(512 - block.count, bytes.count - i)
                block.append(contentsOf: bytes[i..<(i + take)])
                i += take
                if block.count == 512 {
                    try processHeaderBlock(onEntry: onEntry)
                    block.removeAll(keepingCapacity: true)
                }
            case .data(let header, let remaining, let capture, let tooLarge):
                let take = min(remaining, bytes.count - i)
                if capture { buffer.append(contentsOf: bytes[i..<(i + take)]) }
                if let o = observer {
                    if o.isDone { observer = nil } else { o.consume(bytes[i..<(i + take)]) }
                }
                i += take
                let left = remaining - take
                if left == 0 {
                    observer = nil
                    let entry = TarEntry(header: header, contents: capture ? buffer : nil, exceededCaptureLimit: tooLarge)
                    buffer = []
                    state = pendingPadding > 0 ? .padding(remaining: pendingPadding) : .header
                    try onEntry(entry)
                } else {
                    state = .data(header: header, remaining: left, capture: capture, tooLarge: tooLarge)
                }
            case .metadata(let kind, let remaining):
                let take = min(remaining, bytes.count - i)
                buffer.append(contentsOf: bytes[i..<(i + take)])
                i += take
                let left = remaining - take
                if left == 0 {
                    try finishMetadata(kind)
                    buffer = []
                    state = pendingPadding > 0 ? .padding(remaining: pendingPadding) : .header
                } else {
                    state = .metadata(kind: kind, remaining: left)
                }
            case .padding(let remaining):
                let take = min(remaining, bytes.count - i)
                i += take
                state = remaining - take == 0 ? .header : .padding(remaining: remaining - take)
            }
        }
    }

    /// Checks that the stream did not end inside an entry. A stream ending between entries without the
    /// end-of-archive blocks is accepted, as GNU tar and Go's archive/tar do.
    public func finish() throws(TarError) {
        switch state {
        case .end, .afterFirstZeroBlock: return
        case .header:
            if !block.isEmpty { throw .truncated }
            if longName != nil || longLink != nil || !pax.isEmpty { throw .truncated }
        case .data, .metadata, .padding:
            throw .truncated
        }
    }

    private mutating func processHeaderBlock(onEntry: (TarEntry) throws -> Void) throws {
        if block.allSatisfy({ $0 == 0 }) {
            if case .afterFirstZeroBlock = state { state = .end } else { state = .afterFirstZeroBlock }
            return
        }
        if case .afterFirstZeroBlock = state {
            throw TarError.corruptHeader("data after an end-of-archive block")
        }
        try verifyChecksum()
        let typeflag = block[156]
        let declaredSize = try Self.parseNumber(block[124..<136], field: "size")
        let ustar = block[257..<263].elementsEqual("ustar\0".utf8)
        var name = Self.cString(block[0..<100])
        if ustar {
            let prefix = Self.cString(block[345..<500])
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        var link = Self.cString(block[157..<257])

        let padding = (512 - declaredSize % 512) % 512
        switch typeflag {
        case UInt8(ascii: "L"), UInt8(ascii: "K"), UInt8(ascii: "x"), UInt8(ascii: "g"):
            guard declaredSize <= limits.maxMetadataBytes else { throw TarError.metadataTooLarge(declaredSize) }
            let kind: MetadataKind = switch typeflag {
            case UInt8(ascii: "L"): .longName
            case UInt8(ascii: "K"): .longLink
            case UInt8(ascii: "x"): .pax
            default: .globalPax
            }
            pendingPadding = padding
            buffer = []
            if declaredSize == 0 {
                try finishMetadata(kind)
                state = .header
            } else {
                state = .metadata(kind: kind, remaining: declaredSize)
            }
            return
        default:
            break
        }

        if let p = pax["path"] { name = p }
        if let n = longName { name = n }
        if let l = pax["linkpath"] { link = l }
        if let l = longLink { link = l }
        var size = declaredSize
        if let s = pax["size"] {
            guard let v = Int(s), v >= 0 else { throw TarError.corruptHeader("pax size '\(s)'") }
            size = v
        }
        longName = nil
        longLink = nil
        pax = [:]

        var type: TarEntryType = switch typeflag {
        case 0, UInt8(ascii: "0"), UInt8(ascii: "7"): .regular
        case UInt8(ascii: "1"): .hardLink
        case UInt8(ascii: "2"): .symbolicLink
        case UInt8(ascii: "5"): .directory
        default: .other(typeflag)
        }
        // Header-only types carry no data whatever their size field says (as Go's archive/tar).
        switch type {
        case .hardLink, .symbolicLink, .directory: size = 0
        case .other(let t) where [UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6")].contains(t): size = 0
        default: break
        }
        if type == .regular && name.hasSuffix("/") {
            // Pre-POSIX tars mark directories with a trailing slash only.
            type = .directory
            size = 0
        }
        let mode = (try? Self.parseNumber(block[100..<108], field: "mode")) ?? 0
        let header = TarEntryHeader(path: name, type: type, size: size, linkName: link, mode: mode)
        observer = type == .regular && size > 0 ? observe?(header) : nil
        let wanted = type == .regular && wantsContents(header)
        let capture = wanted && size <= limits.maxCaptureBytes
        pendingPadding = (512 - size % 512) % 512
        buffer = []
        if capture { buffer.reserveCapacity(size) }
        if size == 0 {
            state = .header
            try onEntry(TarEntry(header: header, contents: capture ? [] : nil, exceededCaptureLimit: false))
        } else {
            state = .data(header: header, remaining: size, capture: capture, tooLarge: wanted && !capture)
        }
    }

    private mutating func finishMetadata(_ kind: MetadataKind) throws {
        switch kind {
        case .longName: longName = Self.cString(buffer[...])
        case .longLink: longLink = Self.cString(buffer[...])
        case .pax: pax = try Self.parsePax(buffer)
        case .globalPax: break
        }
    }

    private func verifyChecksum() throws(TarError) {
        guard let stored = try? Self.parseNumber(block[148..<156], field: "checksum") else {
            throw .corruptHeader("unreadable checksum")
        }
        var unsigned = 0
        var signed = 0
        for (k, byte) in block.enumerated() {
            let b = (148..<156).contains(k) ? UInt8(ascii: " ") : byte
            unsigned += Int(b)
            signed += Int(Int8(bitPattern: b))
        }
        guard stored == unsigned || stored == signed else { throw .corruptHeader("checksum mismatch") }
    }

    /// Parses an octal field (NUL/space padded) or a GNU base-256 field.
    static func parseNumber(_ field: ArraySlice<UInt8>, field name: String) throws(TarError) -> Int {
        guard let first = field.first else { return 0 }
        if first & 0x80 != 0 {
            // Base-256: big-endian two's complement in the remaining bits.
            guard first & 0x40 == 0 else { throw .corruptHeader("negative \(name)") }
            var value = Int(first & 0x3f)
            for b in field.dropFirst() {
                guard value <= (Int.max >> 8) else { throw .corruptHeader("\(name) too large") }
                value = value << 8 | Int(b)
            }
            return value
        }
        var value = 0
        var seenDigit = false
        var ended = false
        for b in field {
            if b == 0 || b == UInt8(ascii: " ") {
                if seenDigit { ended = true }
                continue
            }
            guard !ended, b >= UInt8(ascii: "0"), b <= UInt8(ascii: "7") else {
                throw .corruptHeader("invalid \(name) field")
            }
            guard value <= (Int.max >> 3) else { throw .corruptHeader("\(name) too large") }
            value = value << 3 | Int(b - UInt8(ascii: "0"))
            seenDigit = true
        }
        return value
    }

    /// Parses pax records: `"<length> <key>=<value>\n"`, where length counts the whole record.
    static func parsePax(_ data: [UInt8]) throws(TarError) -> [String: String] {
        var out: [String: String] = [:]
        var i = 0
        while i < data.count {
            if data[i] == 0 { break }
            var length = 0
            var j = i
            while j < data.count, data[j] >= 48, data[j] <= 57, j - i < 10 {
                length = length * 10 + Int(data[j] - 48)
                j += 1
            }
            guard j > i, j < data.count, data[j] == UInt8(ascii: " "), length > j - i + 1, i + length <= data.count,
                  data[i + length - 1] == UInt8(ascii: "\n")
            else { throw .corruptHeader("malformed pax record") }
            let record = data[(j + 1)..<(i + length - 1)]
            guard let eq = record.firstIndex(of: UInt8(ascii: "=")) else { throw .corruptHeader("pax record without '='") }
            let key = String(decoding: record[record.startIndex..<eq], as: UTF8.self)
            let value = String(decoding: record[(eq + 1)...], as: UTF8.self)
            out[key] = value
            i += length
        }
        return out
    }

    static func cString(_ bytes: ArraySlice<UInt8>) -> String {
        let end = bytes.firstIndex(of: 0) ?? bytes.endIndex
        return String(decoding: bytes[bytes.startIndex..<end], as: UTF8.self)
    }
}
