import BerthCore
import BerthReplication
import BerthSupport

/// Replication (docs/replication.md): PutReplicationConfiguration, DescribeRegistry's
/// `replicationConfiguration` and DescribeImageReplicationStatus. The configuration belongs to the
/// caller's private registry in the request's region; the jobs it makes are worked by `ReplicationService`.
extension ECRService {
    /// Reads a `ReplicationConfiguration` structure (types as the protocol requires; lengths and patterns
    /// are `ReplicationRules.validate`'s).
    func replicationConfiguration(_ p: Params) throws -> ReplicationConfiguration {
        guard let c = try p.object("replicationConfiguration") else { throw p.missing("replicationConfiguration") }
        guard let rules = try c.objectList("rules") else { throw c.missing("replicationConfiguration.rules") }
        var out: [ReplicationRule] = []
        for r in rules {
            guard let destinations = try r.objectList("destinations") else { throw r.missing("replicationConfiguration.rules.member.destinations") }
            var rule = ReplicationRule(destinations: try destinations.map { d in
                ReplicationDestination(region: try d.requiredString("region"), registryId: try d.requiredString("registryId"))
            })
            if let filters = try r.objectList("repositoryFilters") {
                try r.checkCount("replicationConfiguration.rules.member.repositoryFilters", filters.count, 1...ReplicationRules.maxFiltersPerRule)
                rule.prefixes = try filters.map { f in
                    let type = try f.requiredString("filterType")
                    guard type == "PREFIX_MATCH" else {
                        throw ECRError.invalidParameter("Invalid parameter at 'filterType' failed to satisfy constraint: 'Member must satisfy enum value set: [PREFIX_MATCH]'")
                    }
                    return try f.requiredString("filter")
                }
            }
            out.append(rule)
        }
        return ReplicationConfiguration(rules: out)
    }

    func replicationConfigurationJSON(_ c: ReplicationConfiguration) -> JSONValue {
        ["rules": .array(c.rules.map { rule in
            var o: [String: JSONValue] = [
                "destinations": .array(rule.destinations.map { ["region": .string($0.region), "registryId": .string($0.registryId)] }),
            ]
            if !rule.prefixes.isEmpty {
                o["repositoryFilters"] = .array(rule.prefixes.map { ["filter": .string($0), "filterType": "PREFIX_MATCH"] })
            }
            return .object(o)
        })]
    }

    func putReplicationConfiguration(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let configuration = try replicationConfiguration(p)
        do {
            try ReplicationRules.validate(configuration, sourceAccount: principal.accountID, sourceRegion: requestRegion)
        } catch {
            switch error { case .invalidParameter(let m): throw ECRError.invalidParameter(m) }
        }
        try await authorizer.authorize(principal, action: "ecr:PutReplicationConfiguration", resource: registryResource(principal.accountID))
        try await registry.putReplicationConfiguration(configuration, of: RegistryID(storedValue: storeID(principal.accountID)))
        return ["replicationConfiguration": replicationConfigurationJSON(configuration)]
    }

    func describeRegistry(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await authorizer.authorize(principal, action: "ecr:DescribeRegistry", resource: registryARN(principal.accountID))
        let configuration = try await registry.replicationConfiguration(of: RegistryID(storedValue: storeID(principal.accountID)))
        return ["registryId": .string(principal.accountID), "replicationConfiguration": replicationConfigurationJSON(configuration)]
    }

    func describeImageReplicationStatus(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DescribeImageReplicationStatus", key)
        try await requireRepository(key)
        let (digest, id) = try await requireImage(p, in: key)
        var statuses: [(destination: ReplicationDestination, state: ReplicationJobState, failure: String?)] =
            try await registry.replicationJobs(of: key, digest: digest).map { ($0.key.destination, $0.state, $0.failureReason) }
        // A destination of the current rules without a job (a finished job purged past its retention, an
        // image pushed before its rule): the destination itself says whether the image is there.
        if let replication {
            let known = Set(statuses.map(\.destination))
            let configuration = try await registry.replicationConfiguration(of: key.registry)
            let mediaType = try await registry.image(digest, in: key)?.mediaType ?? MediaType.ociManifest
            for d in configuration.destinations(for: key.name) where !known.contains(d) {
                let job = ReplicationJobKey(sourceRegistry: key.registryID, repository: key.name, digest: digest, destination: d)
                if await replication.destinationHas(job, mediaType: mediaType) == true { statuses.append((d, .complete, nil)) }
            }
            statuses.sort { ($0.destination.region, $0.destination.registryId) < ($1.destination.region, $1.destination.registryId) }
        }
        return ["repositoryName": .string(key.name), "imageId": id,
                "replicationStatuses": .array(statuses.map { s in
                    var o: [String: JSONValue] = ["region": .string(s.destination.region), "registryId": .string(s.destination.registryId),
                                                  "status": .string(s.state.rawValue)]
                    if s.state == .failed, let reason = s.failure { o["failureCode"] = .string(reason) }
                    return .object(o)
                })]
    }
}
