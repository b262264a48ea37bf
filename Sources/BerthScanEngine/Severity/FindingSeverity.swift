/// The severity levels of an ECR basic-scan finding.
public enum FindingSeverity: String, Sendable, Equatable, Hashable, CaseIterable, Codable {
    case informational = "INFORMATIONAL"
    case low = "LOW"
    case medium = "MEDIUM"
    case high = "HIGH"
    case critical = "CRITICAL"
    case undefined = "UNDEFINED"

    /// Position when listing most severe first: CRITICAL 0, HIGH 1, MEDIUM 2, LOW 3, INFORMATIONAL 4, UNDEFINED 5.
    public var rank: Int {
        switch self {
        case .critical: 0
        case .high: 1
        case .medium: 2
        case .low: 3
        case .informational: 4
        case .undefined: 5
        }
    }

    /// The qualitative band of a CVSS v3 base score.
    ///
    /// 0.0 is INFORMATIONAL (CVSS "None"), 0.1–3.9 LOW, 4.0–6.9 MEDIUM, 7.0–8.9 HIGH, 9.0–10.0 CRITICAL;
    /// a score outside 0–10 is UNDEFINED.
    public init(cvssScore score: Double) {
        switch score {
        case 0.0: self = .informational
        case 0.0..<4.0: self = .low
        case 4.0..<7.0: self = .medium
        case 7.0..<9.0: self = .high
        case 9.0...10.0: self = .critical
        default: self = .undefined
        }
    }
}

/// Which rule decided a finding's severity.
public enum SeveritySource: Sendable, Equatable {
    /// The Debian Security Tracker urgency (`ecosystem_specific.urgency`).
    case debianUrgency(String)
    /// The highest CVSS v3 base score among the advisory's vectors.
    case cvssV3(score: Double, vector: String)
    /// Nothing usable: no urgency that maps and no valid CVSS v3 vector.
    case none
}

/// Maps an advisory to an ECR severity.
public enum SeverityRule {
    /// The severity of an advisory with an optional Debian `urgency` and its CVSS vectors.
    ///
    /// 1. A Debian urgency decides when it is one of `unimportant` (INFORMATIONAL), `low`, `medium`, `high`.
    /// 2. `not yet assigned`, or no urgency: the highest CVSS v3.x base score decides (see ``FindingSeverity/init(cvssScore:)``).
    /// 3. Any other urgency (for example `end-of-life`), or no valid CVSS v3 vector: UNDEFINED.
    public static func severity(urgency: String?, cvssVectors: [String]) -> (FindingSeverity, SeveritySource) {
        if let urgency {
            switch urgency.lowercased() {
            case "unimportant": return (.informational, .debianUrgency(urgency))
            case "low": return (.low, .debianUrgency(urgency))
            case "medium": return (.medium, .debianUrgency(urgency))
            case "high": return (.high, .debianUrgency(urgency))
            case "not yet assigned", "": break
            default: return (.undefined, .none)
            }
        }
        var best: CVSS3?
        var bestScore = -1.0
        for vector in cvssVectors {
            guard let cvss = try? CVSS3(vector: vector) else { continue }
            let score = cvss.baseScore
            if score > bestScore {
                best = cvss
                bestScore = score
            }
        }
        guard let best else { return (.undefined, .none) }
        return (FindingSeverity(cvssScore: bestScore), .cvssV3(score: bestScore, vector: best.vector))
    }
}
