/// A Semantic Versioning 2.0.0 version, `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`, with
/// SemVer precedence: build metadata is ignored (so `1.0.0+a == 1.0.0+b`), a pre-release sorts
/// before its release, pre-release identifiers compare numerically when both are numeric,
/// by ASCII otherwise, numeric before alphanumeric, and a shorter list first.
///
/// Numbers may have any number of digits (npm caps them at 2^53 - 1 and strings at 256
/// characters; this type does not).
public struct SemanticVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// How much a version string may depart from the bare SemVer grammar.
    public enum Dialect: Sendable, Hashable {
        /// Exactly the SemVer 2.0.0 grammar.
        case strict
        /// As npm's `semver.clean`: surrounding white space and a leading run of `=` and `v`
        /// are dropped (`=v1.2.3`, ` v 1.2.3 `).
        case npm
        /// As Go's `golang.org/x/mod/semver`: a leading `v` (optional here, since OSV writes Go
        /// versions without it) and the shorthands `v1` and `v1.2` for `v1.0.0` and `v1.2.0`.
        case go
    }

    /// The major version, in decimal without leading zeros.
    public let major: String
    /// The minor version, in decimal without leading zeros.
    public let minor: String
    /// The patch version, in decimal without leading zeros.
    public let patch: String
    /// The dot-separated pre-release identifiers; empty for a release.
    public let prerelease: [String]
    /// The dot-separated build metadata identifiers, which take no part in ordering.
    public let build: [String]

    /// True when the version has pre-release identifiers.
    public var isPrerelease: Bool { !prerelease.isEmpty }

    /// The canonical form, without any prefix: `1.2.0-rc.1+build.5`.
    public var description: String {
        var s = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty { s += "-" + prerelease.joined(separator: ".") }
        if !build.isEmpty { s += "+" + build.joined(separator: ".") }
        return s
    }

    /// Parses a version under the given dialect's tolerance.
    public init(parsing string: String, dialect: Dialect = .strict) throws(VersionParseError) {
        func fail(_ reason: String) -> VersionParseError { VersionParseError("semver", string, reason) }
        var s: ArraySlice<UInt8>
        switch dialect {
        case .strict:
            s = Array(string.utf8)[...]
        case .npm:
            // semver.clean: trim, drop /^[=v]+/, and the parser trims once more
            let trimmed = string.trimmingWhitespace()
            let bare = trimmed.drop { $0 == "=" || $0 == "v" }
            s = Array(String(bare).trimmingWhitespace().utf8)[...]
        case .go:
            s = Array(string.utf8)[...]
            if s.first == UInt8(ascii: "v") { s = s.dropFirst() }
        }
        guard !s.isEmpty else { throw fail("version string is empty") }

        func number(_ name: String) throws(VersionParseError) -> String {
            let digits = s.prefix(while: ASCII.isDigit)
            guard !digits.isEmpty else { throw fail("\(name) version is not a number") }
            guard digits.count == 1 || digits.first != ASCII.zero else {
                throw fail("\(name) version has a leading zero")
            }
            s = s[digits.endIndex...]
            return String(decoding: digits, as: UTF8.self)
        }
        func dot(_ name: String) throws(VersionParseError) -> Bool {
            guard let c = s.first else {
                guard dialect == .go else { throw fail("missing \(name) version") }
                return false  // Go shorthand: v1 and v1.2
            }
            guard c == UInt8(ascii: ".") else { throw fail("unexpected character before \(name) version") }
            s = s.dropFirst()
            return true
        }
        func identifiers(_ part: String, numericRule: Bool) throws(VersionParseError) -> [String] {
            var out: [String] = []
            repeat {
                s = s.dropFirst()  // the "-", "+" or "."
                let id = s.prefix { ASCII.isAlnum($0) || $0 == UInt8(ascii: "-") }
                guard !id.isEmpty else { throw fail("empty \(part) identifier") }
                if numericRule, id.count > 1, id.first == ASCII.zero, id.allSatisfy(ASCII.isDigit) {
                    throw fail("numeric \(part) identifier has a leading zero")
                }
                out.append(String(decoding: id, as: UTF8.self))
                s = s[id.endIndex...]
            } while s.first == UInt8(ascii: ".")
            return out
        }

        var parts = (major: try number("major"), minor: "0", patch: "0")
        var pre: [String] = []
        var meta: [String] = []
        if try dot("minor") {
            parts.minor = try number("minor")
            if try dot("patch") {
                parts.patch = try number("patch")
                if s.first == UInt8(ascii: "-") { pre = try identifiers("pre-release", numericRule: true) }
                if s.first == UInt8(ascii: "+") { meta = try identifiers("build", numericRule: false) }
            }
        }
        (major, minor, patch) = parts
        (prerelease, build) = (pre, meta)
        guard s.isEmpty else { throw fail("unexpected character after version") }
    }

    public static func < (a: SemanticVersion, b: SemanticVersion) -> Bool { compare(a, b) == .less }

    public static func == (a: SemanticVersion, b: SemanticVersion) -> Bool { compare(a, b) == .equal }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(major)
        hasher.combine(minor)
        hasher.combine(patch)
        hasher.combine(prerelease)
    }

    /// SemVer precedence (§11).
    public static func compare(_ a: SemanticVersion, _ b: SemanticVersion) -> Order {
        let core = Order(DecimalNumber(digits: a.major), DecimalNumber(digits: b.major))
            .then(Order(DecimalNumber(digits: a.minor), DecimalNumber(digits: b.minor)))
            .then(Order(DecimalNumber(digits: a.patch), DecimalNumber(digits: b.patch)))
        guard core == .equal else { return core }
        switch (a.prerelease.isEmpty, b.prerelease.isEmpty) {
        case (true, true): return .equal
        case (true, false): return .greater
        case (false, true): return .less
        case (false, false): break
        }
        for (x, y) in zip(a.prerelease, b.prerelease) {
            let r = compareIdentifiers(x, y)
            if r != .equal { return r }
        }
        return Order(a.prerelease.count, b.prerelease.count)
    }

    private static func compareIdentifiers(_ x: String, _ y: String) -> Order {
        let (a, b) = (Array(x.utf8)[...], Array(y.utf8)[...])
        switch (a.allSatisfy(ASCII.isDigit), b.allSatisfy(ASCII.isDigit)) {
        case (true, true): return compareDigitRuns(a, b)
        case (true, false): return .less
        case (false, true): return .greater
        case (false, false): return compareBytes(a, b)
        }
    }
}
