import Foundation
import Testing
@testable import BerthScanEngine

@Suite struct CVSS3Tests {
    /// Scores checked against NVD for well-known vectors and against an independent Python port of the
    /// FIRST v3.1 formulas for vectors sampled from the fixture database.
    static let known: [(String, Double)] = [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
        ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N", 0.0),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3),
        ("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.8),
        ("CVSS:3.0/AV:N/AC:H/PR:L/UI:N/S:U/C:L/I:L/A:N", 4.2),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:H/A:H", 8.3),
        ("CVSS:3.0/AV:L/AC:L/PR:H/UI:N/S:C/C:N/I:N/A:H", 6.0),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N", 8.2),
        ("CVSS:3.0/AV:N/AC:H/PR:H/UI:R/S:C/C:H/I:N/A:N", 5.4),
        ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:N/I:H/A:N", 5.5),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:R/S:U/C:N/I:L/A:N", 2.8),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N", 5.8),
        ("CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:N/I:H/A:N", 4.7),
        ("CVSS:3.0/AV:L/AC:L/PR:N/UI:N/S:C/C:L/I:L/A:N", 5.7),
        ("CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:H", 6.6),
        ("CVSS:3.0/AV:L/AC:H/PR:H/UI:N/S:U/C:N/I:N/A:H", 4.1),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:C/C:N/I:N/A:H", 6.5),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:R/S:C/C:L/I:L/A:N", 4.8),
        ("CVSS:3.0/AV:A/AC:H/PR:N/UI:N/S:C/C:H/I:N/A:N", 6.1),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8),
        ("CVSS:3.1/AV:P/AC:H/PR:L/UI:N/S:C/C:H/I:L/A:N", 5.6),
        ("CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:N/A:N", 6.8),
        ("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:L/I:L/A:L", 6.6),
        ("CVSS:3.0/AV:L/AC:L/PR:N/UI:N/S:U/C:L/I:N/A:N", 4.0),
        // Temporal and environmental metrics do not change the base score.
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:C/CR:H/MAV:L", 9.8),
    ]

    @Test(arguments: known) func baseScore(vector: String, score: Double) throws {
        #expect(try CVSS3(vector: vector).baseScore == score)
    }

    @Test func roundUpFollowsAppendixA() {
        #expect(CVSS3.roundUp(4.02) == 4.1)
        #expect(CVSS3.roundUp(4.0) == 4.0)
        #expect(CVSS3.roundUp(4.000_000_000_02) == 4.0)  // v3.1 avoids the v3.0 floating-point artefact
        #expect(CVSS3.roundUp(4.000_01) == 4.1)
    }

    @Test(arguments: [
        "", "CVSS:2.0/AV:N", "AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:",
        "CVSS:3.1//AV:N", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    ])
    func rejectsMalformedVectors(vector: String) {
        #expect(throws: CVSS3.ParseError.self) { try CVSS3(vector: vector) }
    }

    @Test(.enabled(if: Fixtures.available)) func everyFixtureVectorParses() throws {
        let db = try #require(Fixtures.database)
        for advisory in db.advisories {
            for s in advisory.record.severity where s.type == "CVSS_V3" {
                let score = try CVSS3(vector: s.score).baseScore
                #expect(score >= 0 && score <= 10)
            }
        }
    }
}

@Suite struct SeverityRuleTests {
    @Test func bands() {
        #expect(FindingSeverity(cvssScore: 0.0) == .informational)
        #expect(FindingSeverity(cvssScore: 0.1) == .low)
        #expect(FindingSeverity(cvssScore: 3.9) == .low)
        #expect(FindingSeverity(cvssScore: 4.0) == .medium)
        #expect(FindingSeverity(cvssScore: 6.9) == .medium)
        #expect(FindingSeverity(cvssScore: 7.0) == .high)
        #expect(FindingSeverity(cvssScore: 8.9) == .high)
        #expect(FindingSeverity(cvssScore: 9.0) == .critical)
        #expect(FindingSeverity(cvssScore: 10.0) == .critical)
        #expect(FindingSeverity(cvssScore: 10.1) == .undefined)
        #expect(FindingSeverity(cvssScore: -1) == .undefined)
    }

    static let critical = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
    static let medium = "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N"

    @Test func debianUrgencyDecidesWhenAssigned() {
        #expect(SeverityRule.severity(urgency: "unimportant", cvssVectors: [Self.critical]).0 == .informational)
        #expect(SeverityRule.severity(urgency: "low", cvssVectors: [Self.critical]).0 == .low)
        #expect(SeverityRule.severity(urgency: "medium", cvssVectors: []).0 == .medium)
        #expect(SeverityRule.severity(urgency: "high", cvssVectors: []).0 == .high)
        #expect(SeverityRule.severity(urgency: "high", cvssVectors: []).1 == .debianUrgency("high"))
    }

    @Test func notYetAssignedOrMissingFallsBackToTheHighestCVSS() {
        let (s, source) = SeverityRule.severity(urgency: "not yet assigned", cvssVectors: [Self.medium, Self.critical])
        #expect(s == .critical)
        #expect(source == .cvssV3(score: 9.8, vector: Self.critical))
        #expect(SeverityRule.severity(urgency: nil, cvssVectors: [Self.medium]).0 == .medium)
        #expect(SeverityRule.severity(urgency: nil, cvssVectors: ["garbage", Self.medium]).0 == .medium)
        #expect(SeverityRule.severity(urgency: "not yet assigned", cvssVectors: []) == (.undefined, .none))
        #expect(SeverityRule.severity(urgency: nil, cvssVectors: []).0 == .undefined)
    }

    @Test func unknownUrgencyIsUndefined() {
        #expect(SeverityRule.severity(urgency: "end-of-life", cvssVectors: [Self.critical]).0 == .undefined)
    }
}
