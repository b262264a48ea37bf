import BerthCore
import Testing

/// The choice of a repository creation template and the prefix grammar (pure).
@Suite struct CreationTemplateTests {
    func t(_ prefix: String, _ purposes: [RepositoryCreationPurpose], mutability: TagMutability = .mutable) -> RepositoryCreationTemplateRecord {
        RepositoryCreationTemplateRecord(registryID: "111111111111", prefix: prefix, imageTagMutability: mutability,
                                         appliedFor: purposes, createdAt: 1, updatedAt: 1)
    }

    @Test func theLongestCoveringPrefixWinsThenRoot() {
        let all = [t("ROOT", [.createOnPush, .pullThroughCache]), t("prod", [.createOnPush]), t("prod/team", [.createOnPush]),
                   t("prod/team/app", [.replication])]
        #expect(CreationTemplates.template(for: "prod/team/app/web", purpose: .createOnPush, among: all)?.prefix == "prod/team")
        #expect(CreationTemplates.template(for: "prod/team/app/web", purpose: .replication, among: all)?.prefix == "prod/team/app")
        #expect(CreationTemplates.template(for: "prod/other", purpose: .createOnPush, among: all)?.prefix == "prod")
        #expect(CreationTemplates.template(for: "dev/app", purpose: .createOnPush, among: all)?.prefix == "ROOT")
        #expect(CreationTemplates.template(for: "dev/app", purpose: .pullThroughCache, among: all)?.prefix == "ROOT")
        // A template whose appliedFor does not list the purpose is passed over, down to ROOT or nothing.
        #expect(CreationTemplates.template(for: "prod/team/x", purpose: .pullThroughCache, among: all)?.prefix == "ROOT")
        #expect(CreationTemplates.template(for: "dev/app", purpose: .replication, among: all) == nil)
        #expect(CreationTemplates.template(for: "anything", purpose: .createOnPush, among: []) == nil)
    }

    @Test func aPrefixCoversOnlyNamesBelowIt() {
        let prod = t("prod", [.createOnPush])
        #expect(prod.covers("prod/app"))
        #expect(prod.covers("prod/a/b"))
        #expect(!prod.covers("prod"))           // the assumed `/`: the prefix itself is not below it
        #expect(!prod.covers("production/app"))
        #expect(!prod.covers("prod-x/app"))
        #expect(t("ROOT", [.createOnPush]).covers("x"))
        // `root` in lower case is an ordinary prefix.
        #expect(!t("root", [.createOnPush]).covers("app"))
        #expect(t("root", [.createOnPush]).covers("root/app"))
    }

    @Test func prefixesFollowTheModelsPattern() {
        #expect(RepositoryPrefix.normalized("prod/") == "prod")
        #expect(RepositoryPrefix.normalized("prod/team") == "prod/team")
        #expect(RepositoryPrefix.normalized("a__b/c--d/e.f") == "a__b/c--d/e.f")
        #expect(RepositoryPrefix.normalized("ROOT") == "ROOT")
        for bad in ["", "/", "Prod", "prod//x", "/prod", "prod/-x", "a___b", "a..b", "prod/x_", "ROOT/", "ro ot"] {
            #expect(RepositoryPrefix.normalized(bad) == nil, "\(bad)")
        }
    }

    @Test func settingsComeFromTheTemplate() {
        var template = t("prod", [.createOnPush], mutability: .immutableWithExclusion)
        template.exclusionFilters = ["latest"]
        template.encryptionType = "KMS"
        template.kmsKey = ""
        template.resourceTags = [ResourceTag(key: "team", value: "a")]
        template.repositoryPolicy = "{}"
        template.lifecyclePolicy = "{\"rules\":[]}"
        let s = template.repositorySettings
        #expect(s.imageTagMutability == .immutableWithExclusion && s.exclusionFilters == ["latest"])
        #expect(s.encryptionType == "KMS" && s.kmsKey == nil)  // empty: the account's default key
        #expect(s.tags == [ResourceTag(key: "team", value: "a")])
        #expect(s.policy == "{}" && s.lifecyclePolicy == "{\"rules\":[]}")
        #expect(!s.scanOnPush)
    }
}
