import Foundation

/// A parsed CVSS v3.0 or v3.1 vector and its base score (FIRST CVSS v3.1 specification, section 7).
public struct CVSS3: Sendable, Equatable {
    public enum Version: String, Sendable {
        case v3_0 = "3.0"
        case v3_1 = "3.1"
    }

    /// Why a vector string was rejected.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public var version: Version
    /// The base metrics, keyed by abbreviation (`AV`, `AC`, `PR`, `UI`, `S`, `C`, `I`, `A`).
    public private(set) var baseMetrics: [String: String]
    /// The vector as given.
    public var vector: String

    private static let baseValues: [String: Set<String>] = [
        "AV": ["N", "A", "L", "P"], "AC": ["L", "H"], "PR": ["N", "L", "H"], "UI": ["N", "R"],
        "S": ["U", "C"], "C": ["H", "L", "N"], "I": ["H", "L", "N"], "A": ["H", "L", "N"],
    ]
    /// Temporal and environmental metrics: accepted and ignored by the base score.
    private static let otherMetrics: Set<String> = [
        "E", "RL", "RC", "CR", "IR", "AR", "MAV", "MAC", "MPR", "MUI", "MS", "MC", "MI", "MA",
    ]

    /// Parses `CVSS:3.x/AV:_/AC:_/PR:_/UI:_/S:_/C:_/I:_/A:_[/temporal and environmental metrics]`.
    public init(vector: String) throws(ParseError) {
        var parts = vector.split(separator: "/", omittingEmptySubsequences: false)
        guard let head = parts.first else { throw ParseError(description: "empty vector") }
        switch head {
        case "CVSS:3.0": version = .v3_0
        case "CVSS:3.1": version = .v3_1
        default: throw ParseError(description: "not a CVSS v3 vector: '\(head)'")
        }
        parts.removeFirst()
        var metrics: [String: String] = [:]
        var seen = Set<String>()
        for part in parts {
            let kv = part.split(separator: ":", omittingEmptySubsequences: false)
            guard kv.count == 2, !kv[1].isEmpty else { throw ParseError(description: "malformed metric '\(part)'") }
            let key = String(kv[0]), value = String(kv[1])
            guard seen.insert(key).inserted else { throw ParseError(description: "metric \(key) repeated") }
            if let allowed = Self.baseValues[key] {
                guard allowed.contains(value) else { throw ParseError(description: "invalid value \(key):\(value)") }
                metrics[key] = value
            } else if !Self.otherMetrics.contains(key) {
                throw ParseError(description: "unknown metric '\(key)'")
            }
        }
        let missing = Self.baseValues.keys.filter { metrics[$0] == nil }.sorted()
        guard missing.isEmpty else { throw ParseError(description: "missing base metrics \(missing.joined(separator: ","))") }
        baseMetrics = metrics
        self.vector = vector
    }

    /// The base score, 0.0 to 10.0 in steps of 0.1.
    public var baseScore: Double {
        let m = baseMetrics
        let changed = m["S"] == "C"
        let av = ["N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2][m["AV"]!]!
        let ac = ["L": 0.77, "H": 0.44][m["AC"]!]!
        let pr = changed ? ["N": 0.85, "L": 0.68, "H": 0.5][m["PR"]!]! : ["N": 0.85, "L": 0.62, "H": 0.27][m["PR"]!]!
        let ui = ["N": 0.85, "R": 0.62][m["UI"]!]!
        let cia = ["H": 0.56, "L": 0.22, "N": 0.0]
        let c = cia[m["C"]!]!, i = cia[m["I"]!]!, a = cia[m["A"]!]!
        let iss = 1 - (1 - c) * (1 - i) * (1 - a)
        let impact = changed ? 7.52 * (iss - 0.029) - 3.25 * pow(iss - 0.02, 15) : 6.42 * iss
        let exploitability = 8.22 * av * ac * pr * ui
        guard impact > 0 else { return 0 }
        let raw = changed ? min(1.08 * (impact + exploitability), 10) : min(impact + exploitability, 10)
        return Self.roundUp(raw, version: version)
    }

    /// The smallest number with one decimal place that is >= `value`.
    ///
    /// v3.1 (Appendix A) works on integers to avoid floating-point artefacts; v3.0 used a plain ceiling.
    public static func roundUp(_ value: Double, version: Version = .v3_1) -> Double {
        switch version {
        case .v3_0:
            return (value * 10).rounded(.up) / 10
        case .v3_1:
            let intInput = Int((value * 100_000).rounded())
            if intInput % 10_000 == 0 { return Double(intInput) / 100_000 }
            return Double(intInput / 10_000 + 1) / 10
        }
    }
}
