import Foundation

/// A Semantic Versioning 2.0.0 version (`MAJOR.MINOR.PATCH[-pre][+build]`), with SemVer precedence.
///
/// Parsing is lenient like npm's loose mode: a leading `v` or `=`, and missing minor or patch (read as 0).
public struct SemanticVersion: Sendable, Comparable, CustomStringConvertible {
    public enum Identifier: Sendable, Equatable {
        case numeric(Int)
        case alphanumeric(String)
    }

    public var major: Int
    public var minor: Int
    public var patch: Int
    public var prerelease: [Identifier]
    public var build: [String]

    public init?(_ text: String) {
        var s = Substring(text.trimmingCharacters(in: .whitespaces))
        if s.hasPrefix("v") || s.hasPrefix("=") { s = s.dropFirst() }
        var buildPart: Substring?
        if let plus = s.firstIndex(of: "+") {
            buildPart = s[s.index(after: plus)...]
            s = s[..<plus]
        }
        var prePart: Substring?
        if let dash = s.firstIndex(of: "-") {
            prePart = s[s.index(after: dash)...]
            s = s[..<dash]
        }
        let core = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(core.count) else { return nil }
        var numbers: [Int] = []
        for part in core {
            guard !part.isEmpty, part.count <= 18, part.allSatisfy(\.isASCIIDigit), let n = Int(part) else { return nil }
            numbers.append(n)
        }
        while numbers.count < 3 { numbers.append(0) }
        major = numbers[0]
        minor = numbers[1]
        patch = numbers[2]
        prerelease = []
        if let prePart {
            for id in prePart.split(separator: ".", omittingEmptySubsequences: false) {
                guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return nil }
                if id.allSatisfy(\.isASCIIDigit), id.count <= 18, let n = Int(id) {
                    prerelease.append(.numeric(n))
                } else {
                    prerelease.append(.alphanumeric(String(id)))
                }
            }
        }
        build = buildPart.map { $0.split(separator: ".").map(String.init) } ?? []
    }

    public var description: String {
        var out = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty {
            out += "-" + prerelease.map { if case .numeric(let n) = $0 { "\(n)" } else if case .alphanumeric(let s) = $0 { s } else { "" } }
                .joined(separator: ".")
        }
        if !build.isEmpty { out += "+" + build.joined(separator: ".") }
        return out
    }

    /// Equal in precedence: build metadata is ignored.
    public static func == (a: Self, b: Self) -> Bool { compare(a, b) == 0 }

    public static func < (a: Self, b: Self) -> Bool { compare(a, b) < 0 }

    public static func compare(_ a: Self, _ b: Self) -> Int {
        for (x, y) in [(a.major, b.major), (a.minor, b.minor), (a.patch, b.patch)] where x != y {
            return x < y ? -1 : 1
        }
        if a.prerelease.isEmpty != b.prerelease.isEmpty { return a.prerelease.isEmpty ? 1 : -1 }
        for k in 0..<max(a.prerelease.count, b.prerelease.count) {
            guard k < a.prerelease.count else { return -1 }
            guard k < b.prerelease.count else { return 1 }
            switch (a.prerelease[k], b.prerelease[k]) {
            case (.numeric(let x), .numeric(let y)) where x != y: return x < y ? -1 : 1
            case (.alphanumeric(let x), .alphanumeric(let y)) where x != y: return x < y ? -1 : 1
            case (.numeric, .alphanumeric): return -1
            case (.alphanumeric, .numeric): return 1
            default: continue
            }
        }
        return 0
    }
}

/// Compares SemVer versions.
public struct SemanticVersionComparator: VersionComparator {
    public init() {}

    public func compare(_ a: String, _ b: String) -> ComparisonResult? {
        guard let x = SemanticVersion(a), let y = SemanticVersion(b) else { return nil }
        let c = SemanticVersion.compare(x, y)
        return c < 0 ? .orderedAscending : c > 0 ? .orderedDescending : .orderedSame
    }
}
