import Foundation

/// A Python package version as PEP 440 defines it, with PEP 440's normalisations and ordering.
public struct PEP440Version: Sendable, Comparable, CustomStringConvertible {
    public enum PreReleaseKind: Int, Sendable, Comparable {
        case alpha = 0, beta = 1, candidate = 2

        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// A local version label segment: numbers sort after strings.
    public enum LocalSegment: Sendable, Equatable {
        case number(Int)
        case text(String)
    }

    public var epoch: Int
    public var release: [Int]
    public var pre: (kind: PreReleaseKind, number: Int)?
    public var post: Int?
    public var dev: Int?
    public var local: [LocalSegment]

    /// Parses `text` leniently as PEP 440 does (case, separators, `alpha`/`c`/`rev` spellings, leading `v`).
    public init?(_ text: String) {
        var s = VersionCursor(text.trimmingCharacters(in: .whitespaces).lowercased())
        _ = s.take("v")
        var epoch = 0
        var release: [Int] = []
        guard let first = s.number() else { return nil }
        if s.take("!") {
            epoch = first
            guard let r = s.number() else { return nil }
            release = [r]
        } else {
            release = [first]
        }
        while s.peek(".") && s.peekDigit(at: 1) {
            _ = s.take(".")
            release.append(s.number()!)
        }
        var pre: (PreReleaseKind, Int)?
        var post: Int?
        var dev: Int?
        // Pre-release.
        let mark = s.position
        _ = s.separator()
        if let kind: PreReleaseKind = s.word(["alpha": .alpha, "beta": .beta, "preview": .candidate, "pre": .candidate,
                               "rc": .candidate, "a": .alpha, "b": .beta, "c": .candidate]) {
            let m2 = s.position
            _ = s.separator()
            if let n = s.number() { pre = (kind, n) } else { s.position = m2; pre = (kind, 0) }
        } else {
            s.position = mark
        }
        // Post-release: "-N" or [sep]("post"|"rev"|"r")[sep][N].
        let mark2 = s.position
        if s.take("-"), let n = s.number() {
            post = n
        } else {
            s.position = mark2
            _ = s.separator()
            if s.word(["post": 0, "rev": 0, "r": 0]) != nil {
                let m3 = s.position
                _ = s.separator()
                if let n = s.number() { post = n } else { s.position = m3; post = 0 }
            } else {
                s.position = mark2
            }
        }
        // Development release.
        let mark3 = s.position
        _ = s.separator()
        if s.word(["dev": 0]) != nil {
            let m4 = s.position
            _ = s.separator()
            if let n = s.number() { dev = n } else { s.position = m4; dev = 0 }
        } else {
            s.position = mark3
        }
        // Local version label.
        var local: [LocalSegment] = []
        if s.take("+") {
            let label = s.rest
            guard !label.isEmpty else { return nil }
            for part in label.split(separator: /[-_.]/, omittingEmptySubsequences: false) {
                guard !part.isEmpty, part.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
                if part.allSatisfy(\.isASCIIDigit), let n = Int(part) { local.append(.number(n)) } else { local.append(.text(String(part))) }
            }
            s.position = s.end
        }
        guard s.atEnd else { return nil }
        self.epoch = epoch
        self.release = release
        self.pre = pre.map { (kind: $0.0, number: $0.1) }
        self.post = post
        self.dev = dev
        self.local = local
    }

    public var description: String {
        var out = epoch > 0 ? "\(epoch)!" : ""
        out += release.map(String.init).joined(separator: ".")
        if let pre { out += ["a", "b", "rc"][pre.kind.rawValue] + "\(pre.number)" }
        if let post { out += ".post\(post)" }
        if let dev { out += ".dev\(dev)" }
        if !local.isEmpty {
            out += "+" + local.map { if case .number(let n) = $0 { "\(n)" } else if case .text(let t) = $0 { t } else { "" } }
                .joined(separator: ".")
        }
        return out
    }

    public static func == (a: Self, b: Self) -> Bool { compare(a, b) == 0 }

    public static func < (a: Self, b: Self) -> Bool { compare(a, b) < 0 }

    /// Negative, zero or positive, following `packaging.version`'s sort key.
    public static func compare(_ a: Self, _ b: Self) -> Int {
        if a.epoch != b.epoch { return a.epoch < b.epoch ? -1 : 1 }
        let n = max(a.release.count, b.release.count)
        for k in 0..<n {
            let x = k < a.release.count ? a.release[k] : 0
            let y = k < b.release.count ? b.release[k] : 0
            if x != y { return x < y ? -1 : 1 }
        }
        // Pre: a dev-only release sorts before any pre-release; a final release after all of them.
        func preKey(_ v: Self) -> (Int, Int, Int) {
            if let pre = v.pre { return (1, pre.kind.rawValue, pre.number) }
            if v.post == nil && v.dev != nil { return (0, 0, 0) }
            return (2, 0, 0)
        }
        let pa = preKey(a), pb = preKey(b)
        if pa != pb { return pa < pb ? -1 : 1 }
        let posta = a.post.map { $0 + 1 } ?? 0, postb = b.post.map { $0 + 1 } ?? 0
        if posta != postb { return posta < postb ? -1 : 1 }
        let deva = a.dev ?? Int.max, devb = b.dev ?? Int.max
        if deva != devb { return deva < devb ? -1 : 1 }
        // Local: absent sorts first; numbers after text; shorter first when one is a prefix.
        for k in 0..<max(a.local.count, b.local.count) {
            guard k < a.local.count else { return -1 }
            guard k < b.local.count else { return 1 }
            switch (a.local[k], b.local[k]) {
            case (.number(let x), .number(let y)) where x != y: return x < y ? -1 : 1
            case (.text(let x), .text(let y)) where x != y: return x < y ? -1 : 1
            case (.number, .text): return 1
            case (.text, .number): return -1
            default: continue
            }
        }
        return 0
    }
}

/// A small cursor over the characters of a version string.
private struct VersionCursor {
    let chars: [Character]
    var position = 0
    var end: Int { chars.count }
    var atEnd: Bool { position >= chars.count }
    var rest: String { String(chars[min(position, chars.count)...]) }

    init(_ text: String) { chars = Array(text) }

    func peek(_ c: Character) -> Bool { position < chars.count && chars[position] == c }

    func peekDigit(at offset: Int) -> Bool {
        position + offset < chars.count && chars[position + offset].isASCIIDigit
    }

    mutating func take(_ c: Character) -> Bool {
        guard peek(c) else { return false }
        position += 1
        return true
    }

    mutating func separator() -> Bool {
        guard position < chars.count, "-_.".contains(chars[position]) else { return false }
        position += 1
        return true
    }

    /// Digits as a number; `nil` (and no movement) when there are none or the number is absurdly long.
    mutating func number() -> Int? {
        var k = position
        while k < chars.count && chars[k].isASCIIDigit { k += 1 }
        guard k > position, k - position <= 18 else { return nil }
        let n = Int(String(chars[position..<k]))
        position = k
        return n
    }

    /// The longest of `words` at the cursor (keys are tried longest first).
    mutating func word<T>(_ words: [String: T]) -> T? {
        for key in words.keys.sorted(by: { $0.count > $1.count }) {
            let w = Array(key)
            if position + w.count <= chars.count && Array(chars[position..<(position + w.count)]) == w {
                position += w.count
                return words[key]
            }
        }
        return nil
    }
}

/// Compares PEP 440 versions.
public struct PEP440VersionComparator: VersionComparator {
    public init() {}

    public func compare(_ a: String, _ b: String) -> ComparisonResult? {
        guard let x = PEP440Version(a), let y = PEP440Version(b) else { return nil }
        let c = PEP440Version.compare(x, y)
        return c < 0 ? .orderedAscending : c > 0 ? .orderedDescending : .orderedSame
    }
}
