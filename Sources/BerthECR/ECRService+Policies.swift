import BerthCore
import BerthPolicy
import BerthRegistry
import BerthSupport
import Foundation

/// Repository policies (Set/Get/DeleteRepositoryPolicy) and the registry policy (Put/Get/DeleteRegistryPolicy).
extension ECRService {
    static let maxPolicyText = 10_240

    func parsePolicyText(_ p: Params, options: PolicyParseOptions, kind: String) throws -> (String, Policy) {
        let text = try p.requiredString("policyText")
        return (text, try checkPolicy(text, options: options, kind: kind, member: "PolicyText"))
    }

    /// A policy document checked as Set/PutRegistryPolicy check theirs (length, then grammar).
    func checkPolicy(_ text: String, options: PolicyParseOptions, kind: String, member: String) throws -> Policy {
        guard text.utf8.count <= Self.maxPolicyText else {
            throw ECRError.invalidParameter("Invalid parameter at '\(member)' failed to satisfy constraint: 'Member must have length less than or equal to \(Self.maxPolicyText)'")
        }
        do {
            return try Policy(parsing: text, options: options)
        } catch {
            throw ECRError.invalidParameter("Invalid parameter at '\(member)' failed to satisfy constraint: 'Invalid \(kind) policy provided: \(error.message)'")
        }
    }

    func registryResource(_ account: String) -> String { ARN.ecrRegistry(region: requestRegion, account: account).description }

    func setRepositoryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let (text, policy) = try parsePolicyText(p, options: .ecrRepositoryPolicy, kind: "repository")
        let force = try p.bool("force") ?? false
        try await authorize(principal, "SetRepositoryPolicy", key)
        if !force, let caller = RequestPrincipal(arn: principal.arn) {
            // Without force, a policy that would deny its author further policy changes is refused.
            let request = AccessRequest(principal: caller, action: "\(actionPrefix)SetRepositoryPolicy", resource: arn(key))
            if case .explicitDeny = PolicyEngine.evaluate(request, identityPolicies: [], resourcePolicies: [policy]) {
                throw ECRError.invalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'The repository policy would prevent the caller from calling SetRepositoryPolicy on the repository in the future; use force to set it anyway'")
            }
        }
        _ = try await registry.updateSettings(key) { $0.policy = text }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "policyText": .string(text)]
    }

    func repositoryPolicyNotFound(_ key: RepositoryKey) -> ECRError {
        .repositoryPolicyNotFound(key.name, registry: wireID(key))
    }

    func getRepositoryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "GetRepositoryPolicy", key)
        guard let text = try await registry.repository(key).settings.policy else { throw repositoryPolicyNotFound(key) }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "policyText": .string(text)]
    }

    func deleteRepositoryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DeleteRepositoryPolicy", key)
        guard let text = try await registry.repository(key).settings.policy else { throw repositoryPolicyNotFound(key) }
        _ = try await registry.updateSettings(key) { $0.policy = nil }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "policyText": .string(text)]
    }


    func registryPolicyNotFound(_ account: String) -> ECRError {
        ECRError.registryPolicyNotFound(registry: account)
    }

    func putRegistryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        let (text, policy) = try parsePolicyText(p, options: .ecrRegistryPolicy, kind: "registry")
        try await authorizer.authorize(principal, action: "ecr:PutRegistryPolicy", resource: registryResource(account))
        if try await registry.accountSetting(.registryPolicyScope, of: storeID(account)) == "V1",
           !Self.fitsRegistryPolicyScopeV1(policy) {
            throw ECRError.invalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid registry policy provided'")
        }
        try await registry.putRegistryPolicy(of: storeID(account), text)
        return ["registryId": .string(account), "policyText": .string(text)]
    }

    /// The actions a registry policy may name under the `V1` registry policy scope (ECR refuses any other;
    /// `V2`, the default, allows every ECR action). `ecr:*` is accepted, as ECR's documentation notes.
    static let registryPolicyScopeV1Actions: Set<String> = ["ecr:replicateimage", "ecr:batchimportupstreamimage", "ecr:createrepository", "ecr:*"]

    static func fitsRegistryPolicyScopeV1(_ policy: Policy) -> Bool {
        policy.statements.allSatisfy { statement in
            guard case .actions(let actions) = statement.actions else { return false }
            return actions.allSatisfy { registryPolicyScopeV1Actions.contains($0.lowercased()) }
        }
    }

    func getRegistryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr:GetRegistryPolicy", resource: registryResource(account))
        guard let text = try await registry.registryPolicy(of: storeID(account)) else { throw registryPolicyNotFound(account) }
        return ["registryId": .string(account), "policyText": .string(text)]
    }

    func deleteRegistryPolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr:DeleteRegistryPolicy", resource: registryResource(account))
        guard let text = try await registry.registryPolicy(of: storeID(account)) else { throw registryPolicyNotFound(account) }
        try await registry.putRegistryPolicy(of: storeID(account), nil)
        return ["registryId": .string(account), "policyText": .string(text)]
    }
}
