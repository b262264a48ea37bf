import BerthCore
import Testing

@Suite struct RegistryScanningConfigurationTests {
    @Test func noRulesFollowsTheRepositoryFlag() {
        let c = RegistryScanningConfiguration()
        #expect(c.effective(repository: "app", scanOnPush: true).frequency == "SCAN_ON_PUSH")
        #expect(c.effective(repository: "app", scanOnPush: false).frequency == "MANUAL")
    }

    @Test func matchingRulesWinAndContinuousBeatsPush() {
        let c = RegistryScanningConfiguration(scanType: "BASIC", rules: [
            .init(scanFrequency: "SCAN_ON_PUSH", repositoryFilters: ["*"]),
            .init(scanFrequency: "CONTINUOUS_SCAN", repositoryFilters: ["prod/*", "critical"]),
        ])
        let prod = c.effective(repository: "prod/api", scanOnPush: false)
        #expect(prod.frequency == "CONTINUOUS_SCAN")
        #expect(prod.filters == ["prod/*"])
        #expect(c.effective(repository: "critical", scanOnPush: false).frequency == "CONTINUOUS_SCAN")
        let dev = c.effective(repository: "dev/api", scanOnPush: false)
        #expect(dev.frequency == "SCAN_ON_PUSH")
        #expect(dev.filters == ["*"])
    }

    @Test func aMatchingManualRuleOverridesTheRepositoryFlag() {
        let c = RegistryScanningConfiguration(rules: [.init(scanFrequency: "MANUAL", repositoryFilters: ["legacy*"])])
        #expect(c.effective(repository: "legacy-app", scanOnPush: true).frequency == "MANUAL")
        #expect(c.effective(repository: "new-app", scanOnPush: true).frequency == "SCAN_ON_PUSH")
    }

    @Test func findingsAreOrderedBySeverityThenName() {
        func f(_ n: String, _ s: ScanSeverity) -> ScanFinding {
            ScanFinding(name: n, description: nil, uri: "", severity: s, attributes: [], packageName: "p", packageVersion: "1",
                        packageManager: "OS", source: "Debian")
        }
        let sorted = [f("B", .low), f("A", .undefined), f("C", .critical), f("A", .low)].sorted(by: ScanFinding.reportOrder)
        #expect(sorted.map(\.name) == ["C", "A", "B", "A"])
        #expect(sorted.map(\.severity) == [.critical, .low, .low, .undefined])
        #expect(ScanSeverity.critical < ScanSeverity.informational)
    }
}
