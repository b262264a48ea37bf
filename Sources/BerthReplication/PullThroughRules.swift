import BerthCore

/// Why a pull through cache rule operation was refused, in ECR's terms (the ECR door maps each case to
/// its exception `__type`).
public enum PullThroughRuleError: Error, Sendable, Equatable {
    case invalidParameter(String)
    case alreadyExists(prefix: String, registry: String)
    case notFound(prefix: String, registry: String)
    case limitExceeded(Int)
    case unsupportedUpstream(String)
    case secretNotFound(String)
    case unableToDecryptSecret(String)
    case unableToAccessSecret(String)
}

/// ECR's validation of pull through cache rules, and how a rule maps repository names (pure).
public enum PullThroughRules {
    /// ECR's quota of pull through cache rules per registry.
    public static let maxRules = 50

    /// The `UpstreamRegistry` enum and each upstream's URL, as the ECR documentation gives them
    /// (`nil`: any host of the form the check accepts).
    public static let upstreams: [String: @Sendable (String) -> Bool] = [
        "ecr": { host in host.hasSuffix(".amazonaws.com") && host.contains(".dkr.ecr.") },
        "ecr-public": { $0 == "public.ecr.aws" },
        "quay": { $0 == "quay.io" },
        "k8s": { $0 == "registry.k8s.io" },
        "docker-hub": { $0 == "registry-1.docker.io" },
        "github-container-registry": { $0 == "ghcr.io" },
        "azure-container-registry": { $0.hasSuffix(".azurecr.io") },
        "gitlab-container-registry": { $0 == "registry.gitlab.com" },
        "chainguard": { $0 == "cgr.dev" },
    ]
    public static let upstreamNames = ["ecr", "ecr-public", "quay", "k8s", "docker-hub", "github-container-registry",
                                       "azure-container-registry", "gitlab-container-registry", "chainguard"]
    /// Upstreams ECR reaches only with credentials.
    public static let credentialRequired: Set<String> = ["docker-hub", "github-container-registry", "azure-container-registry",
                                                         "gitlab-container-registry"]

    /// `PullThroughCacheRuleRepositoryPrefix`: 2–30 characters of the pattern, or `ROOT`; returned without a trailing `/`.
    public static func prefix(_ value: String, member: String) throws(PullThroughRuleError) -> String {
        guard (2...30).contains(value.count) else {
            throw .invalidParameter("Invalid parameter at '\(member)' failed to satisfy constraint: 'Member must have length between 2 and 30'")
        }
        guard let prefix = RepositoryPrefix.normalized(value) else {
            throw .invalidParameter("Invalid parameter at '\(member)' failed to satisfy constraint: 'must satisfy regular expression '\(RepositoryPrefix.pattern)''")
        }
        return prefix
    }

    /// `CredentialArn`: 50–612 characters, `arn:aws(-\w+)*:secretsmanager:…:secret:ecr-pullthroughcache/…`.
    public static func checkCredentialARN(_ arn: String) throws(PullThroughRuleError) {
        guard (50...612).contains(arn.count) else {
            throw .invalidParameter("Invalid parameter at 'credentialArn' failed to satisfy constraint: 'Member must have length between 50 and 612'")
        }
        let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        let allowedName = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-")
        guard parts.count == 6, parts[0] == "arn", parts[1].hasPrefix("aws"), parts[2] == "secretsmanager",
              parts[5].hasPrefix("secret:ecr-pullthroughcache/"),
              parts[5].dropFirst("secret:ecr-pullthroughcache/".count).count > 0,
              parts[5].dropFirst("secret:ecr-pullthroughcache/".count).allSatisfy({ allowedName.contains($0) })
        else {
            throw .invalidParameter("Invalid parameter at 'credentialArn' failed to satisfy constraint: 'must satisfy regular expression '^arn:aws(-\\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr\\-pullthroughcache\\/[a-zA-Z0-9\\/_+=.@-]+$''")
        }
    }

    /// `CustomRoleArn`: at most 2048 characters.
    public static func checkCustomRoleARN(_ arn: String) throws(PullThroughRuleError) {
        guard arn.count <= 2048 else {
            throw .invalidParameter("Invalid parameter at 'customRoleArn' failed to satisfy constraint: 'Member must have length less than or equal to 2048'")
        }
    }

    /// The upstream named by a rule's URL and `upstreamRegistry`. A known upstream's URL must be its own;
    /// without `upstreamRegistry`, a known URL names its upstream and any other OCI registry is taken as
    /// is (Berth's extension: ECR refuses those).
    public static func upstream(url: String, registry: String?) throws(PullThroughRuleError) -> (UpstreamEndpoint, String?) {
        guard let endpoint = UpstreamEndpoint.parse(url) else {
            throw .unsupportedUpstream("Invalid upstreamRegistryUrl: \(url)")
        }
        let host = endpoint.authority
        if let registry {
            guard let matches = upstreams[registry] else {
                throw .invalidParameter("Invalid parameter at 'upstreamRegistry' failed to satisfy constraint: 'Member must satisfy enum value set: [\(upstreamNames.joined(separator: ", "))]'")
            }
            guard matches(host) else {
                throw .unsupportedUpstream("The upstream registry URL \(url) does not match the upstream registry \(registry)")
            }
            return (endpoint, registry)
        }
        return (endpoint, upstreamNames.first { upstreams[$0]!(host) })
    }

    /// The upstream repository of a cached repository name under `rule`, nil when the rule does not cover it.
    public static func upstreamRepository(of name: String, rule: PullThroughCacheRuleRecord) -> String? {
        let rest: Substring
        if rule.ecrRepositoryPrefix == "ROOT" {
            rest = Substring(name)
        } else {
            guard name.hasPrefix(rule.ecrRepositoryPrefix + "/") else { return nil }
            rest = name.dropFirst(rule.ecrRepositoryPrefix.count + 1)
        }
        guard !rest.isEmpty else { return nil }
        return rule.upstreamRepositoryPrefix == "ROOT" ? String(rest) : rule.upstreamRepositoryPrefix + "/" + rest
    }

    /// The rule covering a repository: the longest matching prefix, `ROOT` last.
    public static func rule(for name: String, among rules: [PullThroughCacheRuleRecord]) -> PullThroughCacheRuleRecord? {
        rules.filter { upstreamRepository(of: name, rule: $0) != nil }
            .max { a, b in
                let la = a.ecrRepositoryPrefix == "ROOT" ? 0 : a.ecrRepositoryPrefix.count
                let lb = b.ecrRepositoryPrefix == "ROOT" ? 0 : b.ecrRepositoryPrefix.count
                return la < lb
            }
    }
}
