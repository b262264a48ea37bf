#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One module of a Go binary's build information.
public struct GoModule: Sendable, Equatable, Hashable {
    public var path: String
    /// `v1.2.3`, or `(devel)` for a main module built from a checkout.
    public var version: String
    public var sum: String?
    /// The `=>` replacement: a module path and version, or a local directory without a version.
    public var replacement: Replacement?

    public struct Replacement: Sendable, Equatable, Hashable {
        public var path: String
        public var version: String?
        public var sum: String?
    }

    public init(path: String, version: String, sum: String? = nil, replacement: Replacement? = nil) {
        self.path = path
        self.version = version
        self.sum = sum
        self.replacement = replacement
    }
}

/// The build information the Go toolchain (1.18 and later) embeds in executables (`go version -m`).
///
/// Format (Go's `debug/buildinfo`): a 32-byte header in section `.go.buildinfo` — the 14-byte magic
/// `"\xff Go buildinf:"`, the pointer size, a flags byte (bit 1: strings are inline), padding — followed by two
/// uvarint-length-prefixed strings: the Go version and the module information. The module information is framed by
/// 16-byte sentinels and holds tab-separated lines `path`, `mod`, `dep`, `=>` (replaces the line before) and `build`.
/// The pre-1.18 format, which stores pointers instead of inline strings, is recognised but not read.
public struct GoBuildInfo: Sendable, Equatable, Hashable {
    /// For example `go1.22.1`.
    public var goVersion: String
    /// The main package's import path.
    public var path: String?
    public var main: GoModule?
    public var dependencies: [GoModule]

    public init(goVersion: String, path: String? = nil, main: GoModule? = nil, dependencies: [GoModule] = []) {
        self.goVersion = goVersion
        self.path = path
        self.main = main
        self.dependencies = dependencies
    }

    static let magic: [UInt8] = [0xff] + Array(" Go buildinf:".utf8)
    static let headerSize = 32

    /// The outcome of parsing bytes that start at a magic.
    enum ParseOutcome: Equatable {
        case needMore
        case invalid
        /// The pre-1.18 pointer format.
        case legacy
        case parsed(GoBuildInfo)
    }

    /// Parses `bytes`, which start with the magic; a block that would not fit `maxBytes` is invalid.
    static func parse(_ bytes: ArraySlice<UInt8>, maxBytes: Int = .max) -> ParseOutcome {
        let b = bytes
        let s = b.startIndex
        guard b.count >= headerSize else { return .needMore }
        guard b[s..<(s + 14)].elementsEqual(magic) else { return .invalid }
        let ptrSize = b[s + 14]
        let flags = b[s + 15]
        guard ptrSize == 4 || ptrSize == 8 else { return .invalid }
        guard flags & 0x2 != 0 else { return .legacy }
        var i = s + headerSize
        func uvarint() -> Int?? {  // nil: need more; .some(nil): invalid
            var value = 0
            var shift = 0
            while true {
                guard i < b.endIndex else { return .none }
                let byte = b[i]
                i += 1
                guard shift <= 28 else { return .some(nil) }
                value |= Int(byte & 0x7f) << shift
                if byte & 0x80 == 0 { return .some(value) }
                shift += 7
            }
        }
        func field() -> ArraySlice<UInt8>?? {
            guard let length = uvarint() else { return .none }
            guard let length, length <= maxBytes - (i - s) else { return .some(nil) }
            guard length <= b.endIndex - i else { return .none }
            defer { i += length }
            return .some(b[i..<(i + length)])
        }
        guard let versionField = field() else { return .needMore }
        guard let versionBytes = versionField else { return .invalid }
        let version = String(decoding: versionBytes, as: UTF8.self)
        guard version.hasPrefix("go") || version.hasPrefix("devel") else { return .invalid }
        guard let modField = field() else { return .needMore }
        guard let mod = modField else { return .invalid }
        return .parsed(parseModInfo(Array(mod), goVersion: version))
    }

    /// Parses the module information text (with or without its sentinels).
    public static func parseModInfo(_ raw: [UInt8], goVersion: String) -> GoBuildInfo {
        var text = raw
        if text.count >= 33, text[text.count - 17] == UInt8(ascii: "\n") {
            text = Array(text[16..<(text.count - 16)])
        } else if !(text.first.map { $0 == UInt8(ascii: "p") || $0 == UInt8(ascii: "m") } ?? false) {
            text = []
        }
        var info = GoBuildInfo(goVersion: goVersion)
        var lastWasMain = false
        for line in String(decoding: text, as: UTF8.self).split(separator: "\n") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            switch f.first {
            case "path" where f.count >= 2:
                info.path = f[1]
            case "mod" where f.count >= 3:
                info.main = GoModule(path: f[1], version: f[2], sum: f.count >= 4 ? f[3] : nil)
                lastWasMain = true
            case "dep" where f.count >= 3:
                info.dependencies.append(GoModule(path: f[1], version: f[2], sum: f.count >= 4 ? f[3] : nil))
                lastWasMain = false
            case "=>" where f.count >= 2:
                let r = GoModule.Replacement(
                    path: f[1], version: f.count >= 3 && !f[2].isEmpty ? f[2] : nil, sum: f.count >= 4 ? f[3] : nil)
                if lastWasMain { info.main?.replacement = r } else if !info.dependencies.isEmpty {
                    info.dependencies[info.dependencies.count - 1].replacement = r
                }
            default:
                continue
            }
        }
        return info
    }

    /// The Go version as an OSV `Go`/`stdlib` version: `go1.22.1` → `1.22.1`, `go1.21` → `1.21.0`,
    /// `go1.22rc1` → `1.22.0-rc.1`; `nil` for development builds.
    public static func stdlibVersion(_ goVersion: String) -> String? {
        var v = Substring(goVersion)
        guard v.hasPrefix("go") else { return nil }
        v = v.dropFirst(2)
        if let cut = v.firstIndex(where: { $0 == " " || $0 == "-" || $0 == "+" }) { v = v[..<cut] }
        var pre: String?
        for tag in ["rc", "beta", "alpha"] {
            if let r = v.range(of: tag) {
                let n = v[r.upperBound...]
                guard !n.isEmpty, n.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
                pre = "\(tag).\(n)"
                v = v[..<r.lowerBound]
                break
            }
        }
        var parts = v.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } })
        else { return nil }
        if parts.count == 2 { parts.append("0") }
        return parts.joined(separator: ".") + (pre.map { "-" + $0 } ?? "")
    }

    /// The packages this binary contains: `stdlib` at the Go version, the main module, and every dependency (by its
    /// replacement when that names a versioned module).
    public func packages(path file: String) -> [InstalledPackage] {
        var out: [InstalledPackage] = []
        if let std = Self.stdlibVersion(goVersion) {
            out.append(InstalledPackage(kind: .golang, name: "stdlib", version: std, path: file))
        }
        for module in (main.map { [$0] } ?? []) + dependencies {
            var name = module.path
            var version = module.version
            if let r = module.replacement {
                if let rv = r.version { name = r.path; version = rv } else { version = "(devel)" }
            }
            guard !name.isEmpty, !version.isEmpty else { continue }
            out.append(InstalledPackage(kind: .golang, name: name, version: version, path: file))
        }
        return out
    }
}

/// Looks for Go build information in an ELF file's bytes as they stream by, holding at most a bounded window.
public final class GoBuildInfoScanner: TarEntryObserver {
    private enum State { case head, searching, collecting, done }
    private var state = State.head
    private var head: [UInt8] = []
    private var carry: [UInt8] = []
    private var collected: [UInt8] = []
    /// The most bytes kept after a magic while its strings are read.
    public let maxBuildInfoBytes: Int
    /// The build information, once found.
    public private(set) var result: GoBuildInfo?
    /// True when the file had the pre-Go 1.18 format, which is not read.
    public private(set) var foundLegacyFormat = false
    public private(set) var isELF = false

    public init(maxBuildInfoBytes: Int = 1 << 20) {
        self.maxBuildInfoBytes = max(maxBuildInfoBytes, GoBuildInfo.headerSize + 2)
    }

    public var isDone: Bool { state == .done }

    /// Scans a whole file held in memory.
    public static func scan(_ bytes: [UInt8], maxBuildInfoBytes: Int = 1 << 20) -> GoBuildInfo? {
        let s = GoBuildInfoScanner(maxBuildInfoBytes: maxBuildInfoBytes)
        s.consume(bytes[...])
        return s.result
    }

    public func consume(_ bytes: ArraySlice<UInt8>) {
        var input = bytes
        while !input.isEmpty {
            switch state {
            case .done:
                return
            case .head:
                let take = min(4 - head.count, input.count)
                head += input.prefix(take)
                if head.count == 4 {
                    guard head == [0x7f, 0x45, 0x4c, 0x46] else { state = .done; return }
                    isELF = true
                    state = .searching
                }
                input = input.dropFirst(take)
            case .searching:
                let data: [UInt8] = carry + input
                input = []
                if let k = Self.find(GoBuildInfo.magic, in: data[...]) {
                    carry = []
                    collected = Array(data[k...].prefix(maxBuildInfoBytes))
                    state = .collecting
                    input = data[(k + collected.count)...]
                    evaluate(&input)
                } else {
                    carry = Array(data.suffix(GoBuildInfo.magic.count - 1))
                }
            case .collecting:
                let take = min(maxBuildInfoBytes - collected.count, input.count)
                collected += input.prefix(take)
                input = input.dropFirst(take)
                evaluate(&input)
            }
        }
    }

    /// Decides on the collected bytes; on a false positive resumes the search just after that magic.
    private func evaluate(_ input: inout ArraySlice<UInt8>) {
        switch GoBuildInfo.parse(collected[...], maxBytes: maxBuildInfoBytes) {
        case .parsed(let info):
            result = info
            state = .done
        case .legacy:
            foundLegacyFormat = true
            state = .done
        case .needMore where collected.count < maxBuildInfoBytes:
            break
        case .needMore, .invalid:
            let rest = Array(collected.dropFirst()) + input
            collected = []
            carry = []
            state = .searching
            input = rest[...]
        }
    }

    static func find(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        return haystack.withUnsafeBytes { h in
            needle.withUnsafeBytes { n in
                // memchr for the first byte, then compare; memmem is not exposed by every libc module.
                let base = h.baseAddress!
                var offset = 0
                let last = h.count - n.count
                while offset <= last {
                    guard let p = memchr(base + offset, Int32(needle[0]), last - offset + 1) else { return nil }
                    let at = base.distance(to: UnsafeRawPointer(p))
                    if memcmp(base + at, n.baseAddress!, n.count) == 0 { return haystack.startIndex + at }
                    offset = at + 1
                }
                return nil
            }
        }
    }
}
