import Foundation
import Testing
@testable import BerthVersions

/// One expected comparison: `a` against `b`.
struct ComparisonCase: Sendable, CustomTestStringConvertible {
    let a: String
    let b: String
    let expected: Order

    init(_ a: String, _ expected: Order, _ b: String) {
        self.a = a
        self.b = b
        self.expected = expected
    }

    var testDescription: String { "\(a.debugDescription) \(expected) \(b.debugDescription)" }
}

/// Shorthands for tables: `ComparisonCase("1.0", .lt, "2.0")`.
extension Order {
    static let lt = Order.less
    static let eq = Order.equal
    static let gt = Order.greater
}

/// Where the shared test data lives: `../shared/fixtures` beside the repository root (the
/// nearest folder above this file holding a `Package.swift`), else `/work/shared/fixtures`;
/// `BERTH_FIXTURES` overrides both.
enum Fixtures {
    static let directory: URL? = {
        let fm = FileManager.default
        var candidates: [URL] = []
        if let env = ProcessInfo.processInfo.environment["BERTH_FIXTURES"], !env.isEmpty {
            candidates.append(URL(fileURLWithPath: env))
        }
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while dir.path != "/" {
            if fm.fileExists(atPath: dir.appendingPathComponent("Package.swift").path) {
                candidates.append(dir.deletingLastPathComponent().appendingPathComponent("shared/fixtures"))
                break
            }
            dir = dir.deletingLastPathComponent()
        }
        candidates.append(URL(fileURLWithPath: "/work/shared/fixtures"))
        var isDirectory: ObjCBool = false
        return candidates.first { fm.fileExists(atPath: $0.path, isDirectory: &isDirectory) && isDirectory.boolValue }
    }()

    static var present: Bool { directory != nil }
}

/// A small deterministic generator (SplitMix64), so generated inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
