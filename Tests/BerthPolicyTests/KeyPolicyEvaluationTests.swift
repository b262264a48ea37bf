import BerthPolicy
import Testing

/// KMS's rules: the key policy is required; naming the account delegates to identity policies.
@Suite struct KeyPolicyEvaluationTests {
    static let account = "111122223333"
    static let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    static let alice = RequestPrincipal.user(account: account, name: "alice")
    static let root = RequestPrincipal.root(account: account)
    static let foreignUser = RequestPrincipal.user(account: "444455556666", name: "eve")

    static func policy(_ text: String, _ kind: PolicyParseOptions = .resource) throws -> Policy { try Policy(parsing: text, options: kind) }
    static let delegating = #"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#
    static let encryptAllowed = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#

    func decide(_ who: RequestPrincipal, _ keyPolicy: String, identity: [String] = [], action: String = "kms:Encrypt",
                context: [String: ContextValue] = [:]) throws -> Decision {
        let request = AccessRequest(principal: who, action: action, resource: Self.key, context: context)
        return PolicyEngine.evaluateKeyPolicy(request, identityPolicies: try identity.map { try Self.policy($0, .identity) },
                                              keyPolicy: try Self.policy(keyPolicy))
    }

    @Test func delegationNeedsAnIdentityPolicy() throws {
        #expect(try decide(Self.alice, Self.delegating) == .implicitDeny(.identityBased))
        #expect(try decide(Self.alice, Self.delegating, identity: [Self.encryptAllowed]).isAllowed)
        #expect(try decide(Self.alice, Self.delegating, identity: [Self.encryptAllowed], action: "kms:Decrypt") == .implicitDeny(.identityBased))
        #expect(try decide(Self.root, Self.delegating) == .allow(.accountRoot))
    }

    @Test func withoutTheKeyPolicyNothingIsAllowedNotEvenRoot() throws {
        let onlyBob = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/bob"},"Action":"kms:*","Resource":"*"}]}"#
        #expect(try decide(Self.alice, onlyBob, identity: [Self.encryptAllowed]) == .implicitDeny(.resourceBased))
        #expect(try decide(Self.root, onlyBob) == .implicitDeny(.resourceBased))
        #expect(try decide(.user(account: Self.account, name: "bob"), onlyBob).isAllowed, "named directly: no identity policy needed")
    }

    @Test func denyWinsAndConditionsSeeTheContext() throws {
        let conditional = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:repo":"app"}}},{"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"StringNotEquals":{"kms:CallerAccount":"111122223333"}}}]}"#
        #expect(try decide(Self.alice, conditional, context: ["kms:EncryptionContext:repo": "app", "kms:CallerAccount": "111122223333"]).isAllowed)
        #expect(!(try decide(Self.alice, conditional, context: ["kms:EncryptionContext:repo": "web", "kms:CallerAccount": "111122223333"]).isAllowed))
        let denied = try decide(Self.foreignUser, conditional, identity: [Self.encryptAllowed], context: ["kms:CallerAccount": "444455556666"])
        guard case .explicitDeny = denied else { Issue.record("expected an explicit deny, got \(denied)"); return }
        let identityDeny = #"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:*","Resource":"*"}]}"#
        guard case .explicitDeny = try decide(Self.alice, Self.delegating, identity: [Self.encryptAllowed, identityDeny]) else {
            Issue.record("an identity Deny wins"); return
        }
    }

    @Test func crossAccountNeedsBothSides() throws {
        let grantsOther = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:Encrypt","Resource":"*"}]}"#
        #expect(try decide(Self.foreignUser, grantsOther) == .implicitDeny(.identityBased))
        #expect(try decide(Self.foreignUser, grantsOther, identity: [Self.encryptAllowed]).isAllowed)
        #expect(try decide(Self.foreignUser, Self.delegating, identity: [Self.encryptAllowed]) == .implicitDeny(.resourceBased))
    }
}
