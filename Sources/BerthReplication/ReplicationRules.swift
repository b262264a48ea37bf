import BerthCore

/// Why a replication configuration is refused (ECR `InvalidParameterException`).
public enum ReplicationRuleError: Error, Sendable, Equatable {
    case invalidParameter(String)
}

/// ECR's rules for a replication configuration (botocore's `ReplicationConfiguration` shapes and the
/// limits of ECR's private image replication), pure.
public enum ReplicationRules {
    /// `ReplicationRuleList`: at most 10 rules.
    public static let maxRules = 10
    /// `ReplicationDestinationList`: at most 100 per rule (the model's bound)…
    public static let maxDestinationsPerRule = 100
    /// …and ECR's limit of 25 unique destinations across all rules.
    public static let maxUniqueDestinations = 25
    /// `RepositoryFilterList`: 1 to 100 filters when present.
    public static let maxFiltersPerRule = 100

    static func constraint(_ member: String, _ text: String) -> ReplicationRuleError {
        .invalidParameter("Invalid parameter at '\(member)' failed to satisfy constraint: '\(text)'")
    }

    /// `Region`: `[0-9a-z-]{2,25}`.
    public static func isRegion(_ s: String) -> Bool {
        (2...25).contains(s.utf8.count) && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d }
    }

    /// `RepositoryFilterValue`: 2–256 characters of `^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$`.
    public static func isFilterValue(_ s: String) -> Bool {
        guard (2...256).contains(s.utf8.count) else { return false }
        let parts = s.split(separator: "/", omittingEmptySubsequences: false)
        for (i, part) in parts.enumerated() {
            let last = i == parts.count - 1
            // Components before a `/` start with at least one [a-z0-9]; the last may start with a separator only if empty before it.
            guard let first = part.utf8.first else {
                if last { continue }
                return false
            }
            let alnum: (UInt8) -> Bool = { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) }
            let separator: (UInt8) -> Bool = { $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }
            if !last && !alnum(first) { return false }
            guard part.utf8.allSatisfy({ alnum($0) || separator($0) }) else { return false }
        }
        return true
    }

    /// Checks a configuration put for the registry of `sourceAccount` in `sourceRegion`: the model's
    /// lengths and patterns, ECR's limits, and no destination equal to the source registry itself.
    public static func validate(_ configuration: ReplicationConfiguration, sourceAccount: String,
                                sourceRegion: String) throws(ReplicationRuleError) {
        let rules = configuration.rules
        if rules.count > maxRules {
            throw constraint("replicationConfiguration.rules", "Member must have length less than or equal to \(maxRules)")
        }
        var unique = Set<ReplicationDestination>()
        for (i, rule) in rules.enumerated() {
            let at = "replicationConfiguration.rules.\(i + 1)"
            if rule.destinations.isEmpty {
                throw .invalidParameter("Invalid parameter at '\(at).destinations': a replication rule must have at least one destination")
            }
            if rule.destinations.count > maxDestinationsPerRule {
                throw constraint("\(at).destinations", "Member must have length less than or equal to \(maxDestinationsPerRule)")
            }
            for (j, d) in rule.destinations.enumerated() {
                let dat = "\(at).destinations.\(j + 1)"
                guard isRegion(d.region) else { throw constraint("\(dat).region", "Member must satisfy regular expression pattern: [0-9a-z-]{2,25}") }
                guard AccountID.isValid(d.registryId) else {
                    throw constraint("\(dat).registryId", "Member must satisfy regular expression pattern: [0-9]{12}")
                }
                if d.region == sourceRegion && d.registryId == sourceAccount {
                    // ECR's wording (as moto's tests quote it).
                    throw .invalidParameter("Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication destination cannot be the same as the source registry'")
                }
                unique.insert(d)
            }
            if rule.prefixes.count > maxFiltersPerRule {
                throw constraint("\(at).repositoryFilters", "Member must have length less than or equal to \(maxFiltersPerRule)")
            }
            for (j, f) in rule.prefixes.enumerated() where !isFilterValue(f) {
                throw constraint("\(at).repositoryFilters.\(j + 1).filter",
                                 "Member must satisfy regular expression pattern: ^(?:[a-z0-9]+(?:[._-][a-z0-9]*)*/)*[a-z0-9]*(?:[._-][a-z0-9]*)*$ and have length between 2 and 256")
            }
        }
        if unique.count > maxUniqueDestinations {
            throw .invalidParameter("Invalid parameter at 'replicationConfiguration': a replication configuration may have at most \(maxUniqueDestinations) unique destinations across all rules, got \(unique.count)")
        }
    }

    /// The delay before retry number `attempt` (1 for the first retry): `base · 2^(attempt−1)`, at most `max`.
    public static func backoff(attempt: Int, base: Double, max maximum: Double) -> Double {
        let exponent = Double(Swift.min(Swift.max(attempt - 1, 0), 40))
        return Swift.min(maximum, base * pow2(exponent))
    }

    static func pow2(_ e: Double) -> Double {
        var r = 1.0
        var i = 0.0
        while i < e { r *= 2; i += 1 }
        return r
    }
}
