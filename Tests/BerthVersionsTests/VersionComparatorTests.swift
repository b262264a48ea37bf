import Foundation
import Testing
@testable import BerthVersions

@Suite("version comparator")
struct VersionComparatorTests {
    @Test(arguments: [
        (Ecosystem.debian, "1:1.0-1", "2.0-1", Order.greater),
        (.alpine, "1.2.3_rc1-r0", "1.2.3-r0", .less),
        (.rpm, "1:1.0-1.el9", "1.0-2.el9", .greater),
        (.pypi, "1.0.dev1", "1.0a1", .less),
        (.npm, "v1.0.0-rc.1", "1.0.0", .less),
        (.go, "v1.2.3", "1.2.3", .equal),
    ])
    func dispatchesByEcosystem(_ ecosystem: Ecosystem, _ a: String, _ b: String, _ expected: Order) throws {
        #expect(try VersionComparator.compare(a, b, in: ecosystem) == expected)
    }

    @Test func mapsOSVEcosystemNames() {
        #expect(Ecosystem(osv: "Debian:12") == .debian)
        #expect(Ecosystem(osv: "Ubuntu:22.04:LTS") == .debian)
        #expect(Ecosystem(osv: "Alpine:v3.19") == .alpine)
        #expect(Ecosystem(osv: "Rocky Linux:9") == .rpm)
        #expect(Ecosystem(osv: "PyPI") == .pypi)
        #expect(Ecosystem(osv: "npm") == .npm)
        #expect(Ecosystem(osv: "Go") == .go)
        #expect(Ecosystem(osv: "crates.io") == nil)
        #expect(Ecosystem(osv: "") == nil)
    }

    // MARK: - Hostile input: every comparator must answer (or throw), never crash or hang

    @Test(arguments: Ecosystem.allCases)
    func emptyStringsThrow(_ ecosystem: Ecosystem) {
        #expect(throws: VersionParseError.self) { try VersionComparator.compare("", "1.0.0", in: ecosystem) }
        #expect(throws: VersionParseError.self) { try VersionComparator.compare("1.0.0", "", in: ecosystem) }
        #expect(throws: VersionParseError.self) { try VersionComparator.compare("", "", in: ecosystem) }
    }

    @Test func lenientComparatorsAcceptEmptyStrings() {
        #expect(RpmVersion.rpmvercmp("", "") == .equal)
        #expect(RpmVersion.rpmvercmp("", "1") == .less)
        #expect(RpmVersion.rpmvercmp("", "~1") == .greater)
        #expect(ApkVersion.compare("", "") == .equal)
        #expect(ApkVersion.compare("", "1") == .less)  // as in apk: the side that turns invalid first sorts first
    }

    /// Digit runs far past 64 bits compare by value, in every ecosystem.
    @Test(arguments: Ecosystem.allCases)
    func hugeDigitRuns(_ ecosystem: Ecosystem) throws {
        let nines = String(repeating: "9", count: 40)
        let tenPow = "1" + String(repeating: "0", count: 40)
        let padded = String(repeating: "0", count: 30) + "7"
        let (bigger, smaller, seven) = ecosystem == .go || ecosystem == .npm
            ? ("1.0.\(tenPow)", "1.0.\(nines)", "1.0.7")
            : ("1.\(tenPow)", "1.\(nines)", "1.7")
        #expect(try VersionComparator.compare(bigger, smaller, in: ecosystem) == .greater)
        #expect(try VersionComparator.compare(smaller, bigger, in: ecosystem) == .less)
        #expect(try VersionComparator.compare(bigger, bigger, in: ecosystem) == .equal)
        if ecosystem != .go, ecosystem != .npm, ecosystem != .alpine {
            // leading zeros vanish (apk compares zero-led fractional groups as strings instead)
            #expect(try VersionComparator.compare("1.\(padded)", seven, in: ecosystem) == .equal)
        }
    }

    /// Inputs of about 100,000 characters, valid and not, in every ecosystem: each comparison
    /// must finish quickly.
    @Test(arguments: Ecosystem.allCases)
    func veryLongStrings(_ ecosystem: Ecosystem) throws {
        let n = 100_000
        let semverLike = ecosystem == .npm || ecosystem == .go
        let longNumber = String(repeating: "8", count: n)
        let longDotted = semverLike
            ? "1.0.0-" + Array(repeating: "1", count: n / 2).joined(separator: ".")
            : Array(repeating: "1", count: n / 2).joined(separator: ".")
        let base = semverLike ? "1.0.0" : "1"
        let inputs = [
            semverLike ? "1.0.\(longNumber)" : longNumber,
            longDotted,
            base + String(repeating: "~", count: n),
            base + String(repeating: "a", count: n),
            base + String(repeating: "_", count: n),
            base + String(repeating: "é", count: n / 2),
            String(repeating: "x", count: n),
            base + "-" + String(repeating: "-", count: n),
        ]
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for a in inputs {
                for b in inputs + [base] {
                    let forward = try? VersionComparator.compare(a, b, in: ecosystem)
                    let backward = try? VersionComparator.compare(b, a, in: ecosystem)
                    #expect(forward == backward?.reversed)
                }
            }
        }
        #expect(elapsed < .seconds(30), "\(ecosystem): \(elapsed)")
        // the long, valid ones really parse and order
        if !semverLike {
            #expect(try VersionComparator.compare(longDotted, longDotted + ".1", in: ecosystem) == .less)
        }
        #expect(try VersionComparator.compare(inputs[0], base, in: ecosystem) == .greater)
    }

    @Test func rawComparatorsOnLongHostileInput() {
        let n = 100_000
        let hostile = [
            String(repeating: "~", count: n), String(repeating: "^", count: n),
            String(repeating: "9", count: n), String(repeating: "0", count: n),
            String(repeating: "-r", count: n / 2), String(repeating: "_p", count: n / 2),
            String(repeating: "~a", count: n / 2), String(repeating: "α", count: n / 2),
            String(repeating: "1.", count: n / 2), "",
        ]
        for a in hostile {
            for b in hostile {
                #expect(RpmVersion.rpmvercmp(a, b) == RpmVersion.rpmvercmp(b, a).reversed)
                #expect(ApkVersion.compare(a, b) == ApkVersion.compare(b, a).reversed)
            }
        }
    }

    /// Non-ASCII never matches an ASCII digit or letter: the strict schemes reject it, rpm
    /// treats it as a separator (as rpm does), and nothing crashes on odd scalars.
    @Test(arguments: [
        "1.0é", "１.０.０", "1.0\u{0}", "1.0😀", "1.0\u{301}", "١٢٣", "1.0\u{FFFD}", "\u{FEFF}1.0",
    ])
    func nonASCII(_ input: String) {
        for ecosystem in Ecosystem.allCases where ecosystem != .rpm {
            #expect(throws: VersionParseError.self, "\(ecosystem)") {
                try VersionComparator.compare(input, "1.0", in: ecosystem)
            }
        }
        #expect(throws: Never.self) { _ = try? VersionComparator.compare(input, "1.0", in: .rpm) }
        #expect(RpmVersion.rpmvercmp(input, input) == .equal)
    }

    /// Random strings over each scheme's alphabet: comparisons are antisymmetric, and sorting
    /// with them gives a consistent (transitive) order.
    @Test(arguments: Ecosystem.allCases)
    func randomInputsGiveATotalOrder(_ ecosystem: Ecosystem) throws {
        var rng = SplitMix64(state: 0xBE27 &+ UInt64(ecosystem.hashValue & 0xFF))
        let pieces: [String] = switch ecosystem {
        case .debian: ["0", "1", "9", "10", "01", ".", "+", "~", "-", ":", "a", "Z", "deb12u", "b"]
        case .alpine: ["0", "1", "9", "10", "01", ".", "_alpha", "_p", "_rc", "~ab", "-r", "a", "z"]
        case .rpm: ["0", "1", "9", "10", "01", ".", "~", "^", "-", ":", "a", "el", "_", "é"]
        case .pypi: ["0", "1", "10", "01", ".", "-", "a", "b", "rc", "post", "dev", "+", "x", "!"]
        case .npm, .go: ["0", "1", "10", "01", ".", "-", "+", "alpha", "x", "v", "="]
        }
        var valid: [String] = []
        for _ in 0..<3000 {
            var s = ecosystem == .npm || ecosystem == .go ? "1.2." : "1"
            for _ in 0..<Int.random(in: 0...7, using: &rng) { s += pieces.randomElement(using: &rng)! }
            if (try? VersionComparator.compare(s, s, in: ecosystem)) == .equal { valid.append(s) }
        }
        #expect(valid.count > 100, "\(ecosystem): only \(valid.count) valid samples")
        let sample = Array(valid.prefix(250))
        for a in sample {
            for b in sample {
                let (forward, backward) = try (
                    VersionComparator.compare(a, b, in: ecosystem), VersionComparator.compare(b, a, in: ecosystem))
                #expect(forward == backward.reversed)
            }
        }
        let sorted = try sample.sorted { try VersionComparator.compare($0, $1, in: ecosystem) == .less }
        for i in sorted.indices {
            for j in sorted.indices where i < j {
                #expect(try VersionComparator.compare(sorted[i], sorted[j], in: ecosystem) != .greater,
                        "\(ecosystem): \(sorted[i]) sorted before \(sorted[j])")
            }
        }
    }
}
