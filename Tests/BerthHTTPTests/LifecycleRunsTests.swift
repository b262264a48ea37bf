import BerthApp
import BerthCore
import BerthRegistry
import Testing

@Suite struct LifecycleRunsTests {
    static let policy = #"{"rules":[{"rulePriority":1,"description":"keep the newest untagged image","selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#

    /// One repository's failure (a stored policy this version cannot read) does not stop the others.
    @Test func aFailingRepositoryDoesNotStopTheRun() async throws {
        let services = try await inMemoryServices()
        let account = services.config.accountId
        let good = RepositoryKey(registryID: account, name: try RepositoryName("good"))
        let bad = RepositoryKey(registryID: account, name: try RepositoryName("bad"))
        let none = RepositoryKey(registryID: account, name: try RepositoryName("none"))
        for key in [good, bad, none] { _ = try await services.registry.createRepository(key, settings: RepositorySettings()) }
        try await services.registry.putLifecyclePolicy(good, Self.policy)
        _ = try await services.registry.updateSettings(bad) { $0.lifecyclePolicy = #"{"rules":"not a list"}"# }

        let result = try await LifecycleRuns.run(services, dryRun: false)
        #expect(result.reports.map(\.repository) == [good])
        #expect(result.failures.map(\.repository) == [bad])
        #expect(try await services.registry.lifecyclePolicy(good)?.lastEvaluatedAt != nil)
        let lines = LifecycleRuns.lines(result, dryRun: false)
        #expect(lines.first?.hasPrefix("\(account)/bad\t-\t-\trun failed (") == true)
        #expect(lines.last == "1 repositories: 0 images expired, 0 transitioned, 0 skipped, 0 failed, 0 kept by an index; 1 repositories could not be run")

        // one repository asked for by name: its failure is the run's
        await #expect(throws: BerthError.self) { _ = try await LifecycleRuns.run(services, repository: "bad", dryRun: true) }
        await #expect(throws: BerthError.internalError("repository none of \(account) has no lifecycle policy")) {
            _ = try await LifecycleRuns.run(services, repository: "none", dryRun: true)
        }
        let one = try await LifecycleRuns.run(services, repository: "good", dryRun: true)
        #expect(LifecycleRuns.lines(one, dryRun: true) == ["1 repositories: 0 images would expire, 0 would transition, 0 skipped, 0 failed, 0 kept by an index"])
    }
}
