import BerthCore
import BerthReplication
import Testing

@Suite struct AuthChallengeTests {
    @Test func bearerChallengeOfDockerHub() {
        let c = AuthChallenge.parse(#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#)
        #expect(c == AuthChallenge(scheme: "bearer", parameters: ["realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                                                                  "scope": "repository:library/alpine:pull"]))
    }

    @Test func basicChallengeQuotedEscapesAndTokens() {
        #expect(AuthChallenge.parse(#"Basic realm="Registry Realm""#) == AuthChallenge(scheme: "basic", parameters: ["realm": "Registry Realm"]))
        #expect(AuthChallenge.parse(#"Bearer realm="a\"b", Service=plain"#)?.parameters == ["realm": "a\"b", "service": "plain"])
        #expect(AuthChallenge.parse("") == nil)
        #expect(AuthChallenge.parse(#"Bearer realm="unterminated"#) == nil)
        #expect(AuthChallenge.parse("Bearer realm") == nil)
    }

    @Test func upstreamURLs() {
        #expect(UpstreamEndpoint.parse("registry-1.docker.io") == UpstreamEndpoint(scheme: "https", authority: "registry-1.docker.io"))
        #expect(UpstreamEndpoint.parse("https://ghcr.io/") == UpstreamEndpoint(scheme: "https", authority: "ghcr.io"))
        #expect(UpstreamEndpoint.parse("http://127.0.0.1:5000") == UpstreamEndpoint(scheme: "http", authority: "127.0.0.1:5000"))
        #expect(UpstreamEndpoint.parse("ftp://x") == nil)
        #expect(UpstreamEndpoint.parse("https://") == nil)
        #expect(UpstreamEndpoint.parse("host/with/path") == nil)
    }
}

@Suite struct PullThroughRulesTests {
    @Test func prefixesFollowECRsPattern() throws {
        #expect(try PullThroughRules.prefix("docker-hub", member: "m") == "docker-hub")
        #expect(try PullThroughRules.prefix("a/b/", member: "m") == "a/b")
        #expect(try PullThroughRules.prefix("ROOT", member: "m") == "ROOT")
        #expect(try PullThroughRules.prefix("a__b.c--d", member: "m") == "a__b.c--d")
        for bad in ["a", String(repeating: "a", count: 31), "Upper", "a//b", "-ab", "ab-", "a___b", "a..b", "a b", "/ab"] {
            #expect(throws: PullThroughRuleError.self, "\(bad)") { try PullThroughRules.prefix(bad, member: "ecrRepositoryPrefix") }
        }
    }

    @Test func credentialARNsFollowECRsPattern() throws {
        try PullThroughRules.checkCredentialARN("arn:aws:secretsmanager:us-east-1:111111111111:secret:ecr-pullthroughcache/hub-AbCdEf")
        for bad in ["arn:aws:secretsmanager:us-east-1:111111111111:secret:other/hub-AbCdEfxxxxxxxxxxx",
                    "arn:aws:iam::111111111111:role/ecr-pullthroughcache/hub-AbCdEfxxxxxxxxxxxxxxxxx",
                    "arn:aws:secretsmanager:us-east-1:1111:secret:ecr-pullthroughcache/"] {
            #expect(throws: PullThroughRuleError.self) { try PullThroughRules.checkCredentialARN(bad) }
        }
    }

    @Test func upstreamsAreMatchedToTheirURLs() throws {
        #expect(try PullThroughRules.upstream(url: "registry-1.docker.io", registry: "docker-hub").1 == "docker-hub")
        #expect(try PullThroughRules.upstream(url: "quay.io", registry: nil).1 == "quay")
        #expect(try PullThroughRules.upstream(url: "http://127.0.0.1:5000", registry: nil).1 == nil)
        #expect(throws: PullThroughRuleError.unsupportedUpstream("The upstream registry URL quay.io does not match the upstream registry docker-hub")) {
            try PullThroughRules.upstream(url: "quay.io", registry: "docker-hub")
        }
        #expect(throws: PullThroughRuleError.self) { try PullThroughRules.upstream(url: "quay.io", registry: "nope") }
    }

    func rule(_ prefix: String, upstream: String = "ROOT") -> PullThroughCacheRuleRecord {
        PullThroughCacheRuleRecord(registryID: "111111111111", ecrRepositoryPrefix: prefix, upstreamRegistryURL: "quay.io", upstreamRegistry: nil,
                                   upstreamRepositoryPrefix: upstream, credentialARN: nil, customRoleARN: nil, createdAt: 0, updatedAt: 0)
    }

    @Test func repositoriesMapToTheLongestPrefix() {
        let rules = [rule("ROOT"), rule("hub"), rule("hub/library", upstream: "mirror")]
        #expect(PullThroughRules.rule(for: "hub/library/alpine", among: rules)?.ecrRepositoryPrefix == "hub/library")
        #expect(PullThroughRules.upstreamRepository(of: "hub/library/alpine", rule: rules[2]) == "mirror/alpine")
        #expect(PullThroughRules.rule(for: "hub/x", among: rules)?.ecrRepositoryPrefix == "hub")
        #expect(PullThroughRules.upstreamRepository(of: "hub/x", rule: rules[1]) == "x")
        #expect(PullThroughRules.rule(for: "hubx/y", among: rules)?.ecrRepositoryPrefix == "ROOT")
        #expect(PullThroughRules.rule(for: "hubx/y", among: [rule("hub")]) == nil)
        #expect(PullThroughRules.upstreamRepository(of: "hub", rule: rules[1]) == nil)
    }
}
