import Foundation

extension Policy {
    /// Parses and validates a policy document, refusing it with IAM's `MalformedPolicyDocument` reasons.
    public init(parsing text: String, options: PolicyParseOptions) throws(PolicyError) {
        self = try PolicyDocumentParser(options: options).parse(text)
    }
}

private struct PolicyDocumentParser {
    let options: PolicyParseOptions

    private static let topLevelFields: Set<String> = ["Version", "Id", "Statement"]
    private static let statementFields: Set<String> = [
        "Sid", "Effect", "Principal", "NotPrincipal", "Action", "NotAction", "Resource", "NotResource", "Condition",
    ]

    func parse(_ text: String) throws(PolicyError) -> Policy {
        let scalars = text.unicodeScalars
        guard scalars.count <= options.maximumDocumentLength else {
            throw PolicyError(.documentTooLong(limit: options.maximumDocumentLength))
        }
        if options.restrictsCharacters, !scalars.allSatisfy(Self.isAllowedCharacter) {
            throw PolicyError(.unsupportedCharacter)
        }
        if let limit = options.maximumSize {
            let size = switch options.sizeCounting {
            case .allCharacters: scalars.count
            case .nonWhitespaceCharacters: scalars.lazy.filter { !Self.isWhitespace($0) }.count
            }
            if size > limit { throw PolicyError(.policySizeExceeded(limit: limit, size: size)) }
        }

        let json: PolicyJSON
        do {
            json = try PolicyJSON.parse(text, maximumDepth: options.maximumNestingDepth)
        } catch {
            switch error {
            case .syntax, .trailingCharacters: throw PolicyError(.invalidJSON)
            case let .tooDeeplyNested(limit): throw PolicyError(.tooDeeplyNested(limit: limit))
            case let .duplicateKey(key): throw PolicyError(.duplicateKey(key))
            }
        }
        if options.restrictsCharacters, !Self.allStringsAllowed(json) { throw PolicyError(.unsupportedCharacter) }

        guard case let .object(members) = json else { throw PolicyError(.notAnObject) }
        var version: PolicyVersion?
        var id: String?
        var statementJSON: PolicyJSON?
        for (key, value) in members {
            guard Self.topLevelFields.contains(key) else { throw PolicyError(.unknownField(key)) }
            switch key {
            case "Version":
                guard case let .string(v) = value, let parsed = PolicyVersion(rawValue: v) else {
                    throw PolicyError(.invalidVersion)
                }
                version = parsed
            case "Id":
                guard case let .string(v) = value else { throw PolicyError(.invalidId) }
                id = v
            default:
                statementJSON = value
            }
        }
        if options.requiresCurrentVersion && version != .v2012_10_17 { throw PolicyError(.versionTooOld) }

        let rawStatements: [PolicyJSON]
        switch statementJSON {
        case nil: throw PolicyError(.missingStatement)
        case let .object(o)?: rawStatements = [.object(o)]
        case let .array(a)? where !a.isEmpty: rawStatements = a
        default: throw PolicyError(.invalidStatement)
        }

        var statements: [Statement] = []
        var sids = Set<String>()
        for raw in rawStatements {
            let statement = try parseStatement(raw)
            if options.requiresUniqueSid, let sid = statement.sid, !sid.isEmpty, !sids.insert(sid).inserted {
                throw PolicyError(.duplicateSid(sid))
            }
            statements.append(statement)
        }
        return Policy(version: version, id: id, statements: statements, kind: options.kind)
    }

    // MARK: Statement

    private func parseStatement(_ raw: PolicyJSON) throws(PolicyError) -> Statement {
        guard case let .object(members) = raw else { throw PolicyError(.invalidStatement) }
        var fields: [String: PolicyJSON] = [:]
        for (key, value) in members {
            if options.kind == .identity && (key == "Principal" || key == "NotPrincipal") {
                throw PolicyError(.principalInIdentityPolicy)
            }
            guard Self.statementFields.contains(key) else { throw PolicyError(.unknownStatementField(key)) }
            fields[key] = value
        }

        var sid: String?
        if let raw = fields["Sid"] {
            guard case let .string(s) = raw else { throw PolicyError(.invalidSid) }
            if options.requiresAlphanumericSid, !s.unicodeScalars.allSatisfy(Self.isAlphanumeric) {
                throw PolicyError(.nonAlphanumericSid(s))
            }
            sid = s
        }

        let effect: Effect
        switch fields["Effect"] {
        case nil: throw PolicyError(.missingEffect)
        case let .string(e)?:
            if let exact = Effect(rawValue: e) {
                effect = exact
            } else if ["allow", "deny"].contains(e.lowercased()) {
                // IAM's syntax check is case-insensitive but its "legacy parsing" is not.
                throw PolicyError(.effectCase(e))
            } else {
                throw PolicyError(.invalidEffect(e))
            }
        default: throw PolicyError(.invalidEffect(""))
        }

        if fields["Action"] != nil && fields["NotAction"] != nil { throw PolicyError(.bothActionAndNotAction) }
        if fields["Resource"] != nil && fields["NotResource"] != nil { throw PolicyError(.bothResourceAndNotResource) }
        if fields["Principal"] != nil && fields["NotPrincipal"] != nil { throw PolicyError(.bothPrincipalAndNotPrincipal) }

        let actions: Statement.Actions
        if let raw = fields["Action"] {
            actions = .actions(try parseActions(raw))
        } else if let raw = fields["NotAction"] {
            actions = .notActions(try parseActions(raw))
        } else {
            throw PolicyError(.missingAction)
        }

        let resources: Statement.Resources
        if let raw = fields["Resource"] {
            resources = .resources(try parseResources(raw))
        } else if let raw = fields["NotResource"] {
            resources = .notResources(try parseResources(raw))
        } else if options.kind == .resource {
            resources = .attachedResource
        } else {
            throw PolicyError(.missingResource)
        }

        var principals: Statement.Principals?
        if options.kind == .resource {
            if let raw = fields["Principal"] {
                principals = .principal(try parsePrincipals(raw))
            } else if let raw = fields["NotPrincipal"] {
                guard effect == .deny else { throw PolicyError(.notPrincipalWithAllow) }
                principals = .notPrincipal(try parsePrincipals(raw))
            } else {
                throw PolicyError(.missingPrincipal)
            }
        }

        var conditions: [Condition] = []
        if let raw = fields["Condition"] { conditions = try parseConditions(raw) }
        return Statement(
            sid: sid, effect: effect, principals: principals, actions: actions, resources: resources,
            conditions: conditions)
    }

    private func stringList(_ raw: PolicyJSON, invalid: PolicyError.Reason) throws(PolicyError) -> [String] {
        switch raw {
        case let .string(s): return [s]
        case let .array(items):
            var out: [String] = []
            for item in items {
                guard case let .string(s) = item else { throw PolicyError(invalid) }
                out.append(s)
            }
            return out
        default: throw PolicyError(invalid)
        }
    }

    private func parseActions(_ raw: PolicyJSON) throws(PolicyError) -> [String] {
        let actions = try stringList(raw, invalid: .invalidActionValue)
        guard !actions.isEmpty else { throw PolicyError(.missingAction) }
        for action in actions where action != "*" {
            let parts = action.split(separator: ":", omittingEmptySubsequences: false)
            if parts.count == 1 { throw PolicyError(.actionWithoutVendor(action)) }
            if parts.count > 2 { throw PolicyError(.actionWithTooManyColons(action)) }
            let vendor = parts[0]
            let valid = !vendor.isEmpty && vendor.unicodeScalars.allSatisfy { Self.isAlphanumeric($0) || $0 == "-" || $0 == "." }
            if !valid { throw PolicyError(.invalidVendor(String(vendor))) }
        }
        return actions
    }

    private func parseResources(_ raw: PolicyJSON) throws(PolicyError) -> [String] {
        let resources = try stringList(raw, invalid: .invalidResourceValue)
        guard !resources.isEmpty else { throw PolicyError(.missingResource) }
        for resource in resources where resource != "*" {
            // arn:partition:service:…; fewer than six fields are completed with "*" when matching.
            guard resource.hasPrefix("arn:"), resource.split(separator: ":", omittingEmptySubsequences: false).count >= 3 else {
                throw PolicyError(.resourceNotARN(resource))
            }
        }
        return resources
    }

    // MARK: Principal

    private func parsePrincipals(_ raw: PolicyJSON) throws(PolicyError) -> PrincipalSet {
        switch raw {
        case let .string(s):
            guard s == "*" else { throw PolicyError(.invalidPrincipal(s)) }
            return .anyone
        case let .object(members):
            guard !members.isEmpty else { throw PolicyError(.invalidPrincipal("{}")) }
            var set = PrincipalSet()
            for (type, value) in members {
                let values = try stringList(value, invalid: .invalidPrincipal("\"\(type)\""))
                guard !values.isEmpty else { throw PolicyError(.invalidPrincipal("\"\(type)\":[]")) }
                for v in values {
                    let described = "\"\(type)\":\"\(v)\""
                    switch type {
                    case "AWS":
                        guard let p = Self.awsPrincipal(v) else { throw PolicyError(.invalidPrincipal(described)) }
                        set.aws.append(p)
                    case "Service":
                        guard Self.isPlainIdentifier(v) else { throw PolicyError(.invalidPrincipal(described)) }
                        set.services.append(v)
                    case "Federated":
                        guard Self.isPlainIdentifier(v) else { throw PolicyError(.invalidPrincipal(described)) }
                        set.federated.append(v)
                    default:
                        throw PolicyError(.invalidPrincipal(described))
                    }
                }
            }
            return set
        default:
            throw PolicyError(.invalidPrincipal(""))
        }
    }

    private static func awsPrincipal(_ v: String) -> PrincipalSet.AWSPrincipal? {
        if v == "*" { return .anyone }
        if isAccountID(v) { return .account(v) }
        // "You cannot use a wildcard to match part of a principal name or ARN."
        guard !v.contains("*"), !v.contains("?") else { return nil }
        let parts = v.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0] == "arn", !parts[1].isEmpty, parts[3].isEmpty, isAccountID(String(parts[4])) else {
            return nil
        }
        let account = String(parts[4])
        let resource = parts[5]
        switch parts[2] {
        case "iam":
            if resource == "root" { return .account(account) }
            for prefix in ["user/", "role/"] where resource.hasPrefix(prefix) && resource.count > prefix.count {
                return .arn(v)
            }
            return nil
        case "sts":
            if resource.hasPrefix("assumed-role/") {
                let pieces = resource.split(separator: "/", omittingEmptySubsequences: false)
                return pieces.count == 3 && !pieces[1].isEmpty && !pieces[2].isEmpty ? .arn(v) : nil
            }
            if resource.hasPrefix("federated-user/") && resource.count > "federated-user/".count { return .arn(v) }
            return nil
        default:
            return nil
        }
    }

    private static func isAccountID(_ s: String) -> Bool {
        s.utf8.count == 12 && s.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
    }

    private static func isPlainIdentifier(_ s: String) -> Bool {
        !s.isEmpty && !s.contains("*") && !s.contains("?") && !s.contains(where: \.isWhitespace)
    }

    // MARK: Condition

    private func parseConditions(_ raw: PolicyJSON) throws(PolicyError) -> [Condition] {
        guard case let .object(operators) = raw else { throw PolicyError(.invalidCondition) }
        var conditions: [Condition] = []
        for (name, body) in operators {
            guard let (op, qualifier, ifExists) = Condition.parseOperatorName(name) else {
                throw PolicyError(.unknownConditionOperator(name))
            }
            guard case let .object(keys) = body, !keys.isEmpty else { throw PolicyError(.invalidCondition) }
            for (key, value) in keys {
                guard !key.isEmpty else { throw PolicyError(.invalidCondition) }
                var values: [String] = []
                switch value {
                case let .array(items):
                    guard !items.isEmpty else { throw PolicyError(.invalidCondition) }
                    for item in items {
                        guard let text = item.scalarText else { throw PolicyError(.invalidCondition) }
                        values.append(text)
                    }
                default:
                    guard let text = value.scalarText else { throw PolicyError(.invalidCondition) }
                    values.append(text)
                }
                for v in values where !Self.isValid(v, for: op) {
                    throw PolicyError(.invalidConditionValue(operator: name, value: v))
                }
                conditions.append(Condition(op, qualifier: qualifier, ifExists: ifExists, key: key, values: values))
            }
        }
        return conditions
    }

    private static func isValid(_ value: String, for op: ConditionOperator) -> Bool {
        switch op {
        case .dateEquals, .dateNotEquals, .dateLessThan, .dateLessThanEquals, .dateGreaterThan, .dateGreaterThanEquals:
            PolicyDate.parse(value) != nil
        case .numericEquals, .numericNotEquals, .numericLessThan, .numericLessThanEquals, .numericGreaterThan,
             .numericGreaterThanEquals:
            PolicyNumber.parse(value) != nil
        case .ipAddress, .notIpAddress:
            IPAddressRange(value) != nil
        case .bool, .null:
            ["true", "false"].contains(value.lowercased())
        case .binaryEquals:
            Data(base64Encoded: value) != nil
        default:
            true
        }
    }

    // MARK: Characters

    private static func isAllowedCharacter(_ s: Unicode.Scalar) -> Bool {
        s == "\t" || s == "\n" || s == "\r" || (0x20...0xFF).contains(s.value)
    }

    private static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        s == " " || s == "\t" || s == "\n" || s == "\r"
    }

    private static func isAlphanumeric(_ s: Unicode.Scalar) -> Bool {
        ("0"..."9").contains(s) || ("a"..."z").contains(s) || ("A"..."Z").contains(s)
    }

    private static func allStringsAllowed(_ value: PolicyJSON) -> Bool {
        switch value {
        case let .string(s): s.unicodeScalars.allSatisfy(isAllowedCharacter)
        case let .array(items): items.allSatisfy(allStringsAllowed)
        case let .object(members):
            members.allSatisfy { $0.key.unicodeScalars.allSatisfy(isAllowedCharacter) && allStringsAllowed($0.value) }
        default: true
        }
    }
}
