import BerthSupport

/// How a resource-policy statement's `Principal` names the caller.
enum PrincipalMatch: Sendable, Equatable, Comparable {
    /// Through the caller's account (`123456789012` / `…:root`): authority delegated to that account.
    case account
    /// `*`, the caller's own ARN, its role's ARN, or its service: granted to the caller directly.
    case direct
}

/// Whether a statement applies to a request and, for resource policies, how it named the caller.
enum StatementMatch: Sendable, Equatable {
    case notApplicable
    /// `principal` is `nil` for identity-policy statements.
    case applies(principal: PrincipalMatch?)
}

extension Statement {
    func match(_ request: AccessRequest, in policy: Policy) -> StatementMatch {
        guard matchesAction(request.action) else { return .notApplicable }

        var principalMatch: PrincipalMatch?
        switch principals {
        case nil:
            principalMatch = nil
        case let .principal(set)?:
            guard let m = set.match(request.principal) else { return .notApplicable }
            principalMatch = m
        case let .notPrincipal(set)?:
            guard !set.exempts(request.principal) else { return .notApplicable }
            principalMatch = .direct
        }

        let variables = policy.supportsPolicyVariables
        switch resources {
        case .attachedResource:
            break
        case let .resources(patterns):
            var matched = false
            for pattern in patterns {
                guard let m = Self.resource(pattern, matches: request.resource, request: request, variables: variables) else {
                    return .notApplicable
                }
                if m { matched = true; break }
            }
            if !matched { return .notApplicable }
        case let .notResources(patterns):
            for pattern in patterns {
                guard let m = Self.resource(pattern, matches: request.resource, request: request, variables: variables) else {
                    return .notApplicable
                }
                if m { return .notApplicable }
            }
        }

        for condition in conditions {
            // An unresolvable policy variable makes the statement invalid: it applies neither way.
            guard condition.isSatisfied(by: request, variables: variables) == true else { return .notApplicable }
        }
        return .applies(principal: principalMatch)
    }

    /// "The prefix and the action name are case insensitive"; `*` and `?` are wildcards.
    func matchesAction(_ action: String) -> Bool {
        switch actions {
        case let .actions(patterns):
            patterns.contains { WildcardPattern.glob($0, caseInsensitive: true).matches(action) }
        case let .notActions(patterns):
            !patterns.contains { WildcardPattern.glob($0, caseInsensitive: true).matches(action) }
        }
    }

    /// Whether a `Resource` pattern covers `resource`; `nil` when a policy variable cannot be resolved.
    static func resource(_ pattern: String, matches resource: String, request: AccessRequest, variables: Bool) -> Bool? {
        if pattern == "*" { return true }
        // Fewer than six fields: the missing ones are wildcards.
        var full = pattern
        let colons = pattern.reduce(0) { $1 == ":" ? $0 + 1 : $0 }
        if colons < 5 { full += String(repeating: ":*", count: 5 - colons) }
        var pieces: [PatternPiece] = [.pattern(full)]
        if variables, full.contains("${") {
            // Variables are substituted only in the resource part, after the fifth colon.
            var index = full.startIndex
            var seen = 0
            while seen < 5, let colon = full[index...].firstIndex(of: ":") {
                index = full.index(after: colon)
                seen += 1
            }
            guard let tail = PolicyVariables.substitute(String(full[index...]), resolve: request.variable) else {
                return nil
            }
            pieces = [.pattern(String(full[..<index]))] + tail
        }
        return WildcardPattern.resourceARN(pieces).matches(resource)
    }
}

extension AccessRequest {
    /// A single-valued context key as a policy variable; "you cannot use a multivalued context key as a policy variable".
    func variable(_ key: String) -> String? {
        guard case let .single(v)? = value(forKey: key) else { return nil }
        return v
    }
}

extension PrincipalSet {
    /// How this `Principal` element names `principal`, or `nil` when it does not.
    func match(_ principal: RequestPrincipal) -> PrincipalMatch? {
        if isWildcard { return .direct }
        var best: PrincipalMatch?
        for entry in aws {
            switch entry {
            case .anyone:
                return .direct
            case let .account(id):
                // The account ARN and ID "delegate permissions to the account"; the root user is the account itself.
                if principal.accountID == id, principal.kind != .service, principal.kind != .anonymous {
                    best = max(best ?? .account, principal.isRoot ? .direct : .account)
                }
            case let .arn(arn):
                if arn == principal.arn || (principal.kind == .assumedRole && arn == principal.roleARN) {
                    return .direct
                }
            }
        }
        if let name = principal.serviceName, services.contains(name) { return .direct }
        if let provider = principal.federatedProvider, federated.contains(provider) { return .direct }
        return best
    }

    /// `NotPrincipal` exempts a caller only when it names every identity in the caller's chain
    /// (account, then role, then session or user): "AWS might validate the account first and then the user".
    func exempts(_ principal: RequestPrincipal) -> Bool {
        if isWildcard || aws.contains(.anyone) { return true }
        return principal.identityChain.allSatisfy { link in
            switch link {
            case let .account(id): aws.contains(.account(id))
            case let .arn(arn): aws.contains(.arn(arn))
            case let .service(name): services.contains(name)
            case .anonymous: false
            }
        }
    }
}
