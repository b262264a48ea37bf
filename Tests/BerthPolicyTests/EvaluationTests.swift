import BerthPolicy
import Testing

struct EvaluationTests {
    enum Outcome: Sendable, Equatable {
        case allow
        case explicitDeny(PolicyType, sid: String?)
        case implicitDeny(PolicyType)

        init(_ decision: Decision) {
            switch decision {
            case .allow: self = .allow
            case let .explicitDeny(ref): self = .explicitDeny(ref.policyType, sid: ref.sid)
            case let .implicitDeny(type): self = .implicitDeny(type)
            }
        }
    }

    struct Scenario: Sendable, CustomTestStringConvertible {
        let name: String
        let principal: RequestPrincipal
        let identity: [String]
        let resource: [String]
        let action: String
        let target: String
        let outcome: Outcome
        var testDescription: String { name }

        init(
            _ name: String, _ principal: RequestPrincipal, identity: [String] = [], resource: [String] = [],
            action: String = "ecr:BatchGetImage", target: String = repositoryARN("app"), _ outcome: Outcome
        ) {
            self.name = name
            self.principal = principal
            self.identity = identity
            self.resource = resource
            self.action = action
            self.target = target
            self.outcome = outcome
        }
    }

    // Principals
    static let alice = RequestPrincipal.user(account: account, name: "alice")
    static let bob = RequestPrincipal.user(account: otherAccount, name: "Bob")
    static let carol = RequestPrincipal.user(account: otherAccount, name: "carol")
    static let root = RequestPrincipal.root(account: account)
    static let otherRoot = RequestPrincipal.root(account: otherAccount)
    static let session = RequestPrincipal.assumedRole(account: account, roleName: "builder", sessionName: "ci")
    static let crossSession = RequestPrincipal.assumedRole(account: otherAccount, roleName: "cross-account-read-only-role", sessionName: "cross-account-audit-app")

    // Identity policies
    static func idp(_ statements: String) -> String { #"{"Version":"2012-10-17","Statement":[\#(statements)]}"# }
    static let allowAll = idp(#"{"Effect":"Allow","Action":"ecr:*","Resource":"*"}"#)
    static let allowPull = idp(#"{"Effect":"Allow","Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"arn:aws:ecr:*:111122223333:repository/*"}"#)
    static let denyDelete = idp(#"{"Sid":"NoDelete","Effect":"Deny","Action":"ecr:Delete*","Resource":"*"}"#)
    static let allowAllDenyPull = idp(#"{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"DenyPull","Effect":"Deny","Action":"ecr:BatchGetImage","Resource":"*"}"#)
    static let allowExceptIAM = idp(#"{"Effect":"Allow","NotAction":"iam:*","Resource":"*"}"#)
    static let denyOutsideReadOnly = idp(#"{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"ReadOnly","Effect":"Deny","NotAction":["ecr:BatchGetImage","ecr:Get*","ecr:Describe*","ecr:List*"],"Resource":"*"}"#)
    static let denyOutsideProd = idp(#"{"Effect":"Allow","Action":"ecr:*","Resource":"*"},{"Sid":"OnlyProd","Effect":"Deny","Action":"ecr:*","NotResource":"arn:aws:ecr:*:*:repository/prod-*"}"#)

    // Resource policies
    static func rp(_ principal: String, effect: String = "Allow", sid: String = "S", action: String = #""ecr:*""#) -> String {
        #"{"Version":"2012-10-17","Statement":[{"Sid":"\#(sid)","Effect":"\#(effect)","Principal":\#(principal),"Action":\#(action)}]}"#
    }
    static let rpAlice = rp(#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#)
    static let rpOwnAccount = rp(#"{"AWS":"111122223333"}"#)
    static let rpOwnRoot = rp(#"{"AWS":"arn:aws:iam::111122223333:root"}"#)
    static let rpAnyone = rp(#""*""#)
    static let rpAnyoneAWS = rp(#"{"AWS":"*"}"#)
    static let rpDenyAnyone = rp(#""*""#, effect: "Deny", sid: "DenyAll")
    static let rpOtherAccount = rp(#"{"AWS":"444455556666"}"#)
    static let rpOtherRoot = rp(#"{"AWS":"arn:aws:iam::444455556666:root"}"#)
    static let rpBob = rp(#"{"AWS":"arn:aws:iam::444455556666:user/Bob"}"#)
    static let rpRole = rp(#"{"AWS":"arn:aws:iam::111122223333:role/builder"}"#)
    static let rpSession = rp(#"{"AWS":"arn:aws:sts::111122223333:assumed-role/builder/ci"}"#)
    static let rpOtherRole = rp(#"{"AWS":"arn:aws:iam::111122223333:role/deployer"}"#)
    static let rpCodeBuild = rp(#"{"Service":"codebuild.amazonaws.com"}"#)
    static let rpPullOnly = rp(#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#, action: #"["ecr:BatchGetImage"]"#)
    static let rpExceptBob = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"DenyAllButBob","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::444455556666:user/Bob","arn:aws:iam::444455556666:root"]},"Action":"ecr:*"}]}"#
    static let rpExceptBobOnly = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"DenyAllButBob","Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::444455556666:user/Bob"},"Action":"ecr:*"}]}"#
    static let rpExceptAuditSession = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"Audit","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app","arn:aws:iam::444455556666:role/cross-account-read-only-role","arn:aws:iam::444455556666:root"]},"Action":"ecr:*"}]}"#
    static let rpExceptAuditSessionNoRole = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*"},{"Sid":"Audit","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:sts::444455556666:assumed-role/cross-account-read-only-role/cross-account-audit-app","arn:aws:iam::444455556666:root"]},"Action":"ecr:*"}]}"#

    static let scenarios: [Scenario] = [
        // Same account
        Scenario("same account: identity allow", alice, identity: [allowAll], .allow),
        Scenario("same account: identity allow scoped to repositories", alice, identity: [allowPull], .allow),
        Scenario("same account: identity allow for another action", alice, identity: [allowPull], action: "ecr:PutImage", .implicitDeny(.identityBased)),
        Scenario("same account: nothing attached", alice, .implicitDeny(.identityBased)),
        Scenario("same account: resource policy names the user", alice, resource: [rpAlice], .allow),
        Scenario("same account: resource policy names the account only", alice, resource: [rpOwnAccount], .implicitDeny(.identityBased)),
        Scenario("same account: resource policy names the account root ARN only", alice, resource: [rpOwnRoot], .implicitDeny(.identityBased)),
        Scenario("same account: account principal plus identity allow", alice, identity: [allowAll], resource: [rpOwnAccount], .allow),
        Scenario("same account: resource policy Principal *", alice, resource: [rpAnyone], .allow),
        Scenario("same account: resource policy AWS *", alice, resource: [rpAnyoneAWS], .allow),
        Scenario("same account: resource policy allows another action", alice, resource: [rpPullOnly], action: "ecr:PutImage", .implicitDeny(.identityBased)),
        Scenario("same account: identity allow, resource deny", alice, identity: [allowAll], resource: [rpDenyAnyone], .explicitDeny(.resourceBased, sid: "DenyAll")),
        Scenario("same account: identity deny beats resource allow", alice, identity: [allowAllDenyPull], resource: [rpAlice], .explicitDeny(.identityBased, sid: "DenyPull")),
        Scenario("same account: deny in a second identity policy", alice, identity: [allowAll, denyDelete], action: "ecr:DeleteRepository", .explicitDeny(.identityBased, sid: "NoDelete")),
        Scenario("same account: deny for other actions does not apply", alice, identity: [allowAll, denyDelete], action: "ecr:PutImage", .allow),
        Scenario("NotAction deny blocks writes", alice, identity: [denyOutsideReadOnly], action: "ecr:PutImage", .explicitDeny(.identityBased, sid: "ReadOnly")),
        Scenario("NotAction deny lets reads through", alice, identity: [denyOutsideReadOnly], action: "ecr:GetDownloadUrlForLayer", .allow),
        Scenario("NotResource deny blocks other repositories", alice, identity: [denyOutsideProd], target: repositoryARN("dev-api"), .explicitDeny(.identityBased, sid: "OnlyProd")),
        Scenario("NotResource deny lets prod through", alice, identity: [denyOutsideProd], target: repositoryARN("prod-api"), .allow),
        Scenario("NotAction allow covers other services", alice, identity: [allowExceptIAM], .allow),
        Scenario("NotAction allow excludes the listed service", alice, identity: [allowExceptIAM], action: "iam:CreateUser", target: "*", .implicitDeny(.identityBased)),
        // Root user
        Scenario("root in its own account needs no policy", root, .allow),
        Scenario("root ignores identity policies", root, identity: [allowAllDenyPull], .allow),
        Scenario("root is bound by a resource policy deny", root, resource: [rpDenyAnyone], .explicitDeny(.resourceBased, sid: "DenyAll")),
        // Role sessions
        Scenario("session: resource policy names the role", session, resource: [rpRole], .allow),
        Scenario("session: resource policy names the session", session, resource: [rpSession], .allow),
        Scenario("session: resource policy names another role", session, resource: [rpOtherRole], .implicitDeny(.identityBased)),
        Scenario("session: identity policy of the role", session, identity: [allowAll], .allow),
        // Cross account
        Scenario("cross account: identity allow only", bob, identity: [allowAll], .implicitDeny(.resourceBased)),
        Scenario("cross account: resource allow only", bob, resource: [rpOtherAccount], .implicitDeny(.identityBased)),
        Scenario("cross account: both allow (account principal)", bob, identity: [allowAll], resource: [rpOtherAccount], .allow),
        Scenario("cross account: both allow (root ARN principal)", bob, identity: [allowAll], resource: [rpOtherRoot], .allow),
        Scenario("cross account: both allow (user principal)", bob, identity: [allowAll], resource: [rpBob], .allow),
        Scenario("cross account: user principal names someone else", carol, identity: [allowAll], resource: [rpBob], .implicitDeny(.resourceBased)),
        Scenario("cross account: Principal * still needs identity allow", bob, resource: [rpAnyone], .implicitDeny(.identityBased)),
        Scenario("cross account: Principal * with identity allow", bob, identity: [allowAll], resource: [rpAnyone], .allow),
        Scenario("cross account: identity scoped to another account's repositories", bob, identity: [allowPull], resource: [rpOtherAccount], .allow),
        Scenario("cross account: resource deny", bob, identity: [allowAll], resource: [rpOtherAccount, rpDenyAnyone], .explicitDeny(.resourceBased, sid: "DenyAll")),
        Scenario("cross account: root of the trusted account", otherRoot, resource: [rpOtherAccount], .allow),
        Scenario("cross account: root without a resource grant", otherRoot, .implicitDeny(.resourceBased)),
        Scenario("cross account: own-account grant does not cover others", bob, identity: [allowAll], resource: [rpOwnAccount], .implicitDeny(.resourceBased)),
        // Anonymous and services
        Scenario("anonymous: public resource policy", .anonymous, resource: [rpAnyone], .allow),
        Scenario("anonymous: AWS * counts as public", .anonymous, resource: [rpAnyoneAWS], .allow),
        Scenario("anonymous: account grant is not public", .anonymous, resource: [rpOwnAccount], .implicitDeny(.resourceBased)),
        Scenario("anonymous: identity policies never apply", .anonymous, identity: [allowAll], .implicitDeny(.resourceBased)),
        Scenario("anonymous: public deny", .anonymous, resource: [rpAnyone, rpDenyAnyone], .explicitDeny(.resourceBased, sid: "DenyAll")),
        Scenario("service principal granted", .service("codebuild.amazonaws.com"), resource: [rpCodeBuild], .allow),
        Scenario("other service principal", .service("lambda.amazonaws.com"), resource: [rpCodeBuild], .implicitDeny(.resourceBased)),
        Scenario("service principal is not an account member", .service("codebuild.amazonaws.com"), resource: [rpOwnAccount], .implicitDeny(.resourceBased)),
        // NotPrincipal with Deny
        Scenario("NotPrincipal: Bob and his account are exempt", bob, identity: [allowAll], resource: [rpExceptBob], .allow),
        Scenario("NotPrincipal: others in Bob's account are denied", carol, identity: [allowAll], resource: [rpExceptBob], .explicitDeny(.resourceBased, sid: "DenyAllButBob")),
        Scenario("NotPrincipal: Bob's account root is exempt", otherRoot, resource: [rpExceptBob], .allow),
        Scenario("NotPrincipal: other accounts are denied", alice, identity: [allowAll], resource: [rpExceptBob], .explicitDeny(.resourceBased, sid: "DenyAllButBob")),
        Scenario("NotPrincipal: anonymous is denied", .anonymous, resource: [rpExceptBob], .explicitDeny(.resourceBased, sid: "DenyAllButBob")),
        Scenario("NotPrincipal without the account ARN denies the account", bob, identity: [allowAll], resource: [rpExceptBobOnly], .explicitDeny(.resourceBased, sid: "DenyAllButBob")),
        Scenario("NotPrincipal: session, role and account all named", crossSession, identity: [allowAll], resource: [rpExceptAuditSession], .allow),
        Scenario("NotPrincipal: role ARN missing denies the session", crossSession, identity: [allowAll], resource: [rpExceptAuditSessionNoRole], .explicitDeny(.resourceBased, sid: "Audit")),
    ]

    @Test(arguments: scenarios)
    func evaluatesLikeAWS(_ s: Scenario) throws {
        let request = AccessRequest(principal: s.principal, action: s.action, resource: s.target)
        let decision = PolicyEngine.evaluate(
            request, identityPolicies: try s.identity.map(parseIdentity), resourcePolicies: try s.resource.map(parseResource))
        #expect(Outcome(decision) == s.outcome)
    }

    @Test func reportsWhichStatementsDecided() throws {
        let request = AccessRequest(principal: Self.bob, action: "ecr:BatchGetImage", resource: repositoryARN("app"))
        let decision = PolicyEngine.evaluate(
            request, identityPolicies: [try parseIdentity(Self.denyDelete), try parseIdentity(Self.allowAll)],
            resourcePolicies: [try parseResource(Self.rpCodeBuild), try parseResource(Self.rpOtherAccount)])
        #expect(decision == .allow(.identityAndResourcePolicies(
            identity: StatementReference(policyType: .identityBased, policyIndex: 1, statementIndex: 0, sid: nil),
            resource: StatementReference(policyType: .resourceBased, policyIndex: 1, statementIndex: 0, sid: "S"))))
        let rootDecision = PolicyEngine.evaluate(AccessRequest(principal: Self.root, action: "ecr:PutImage", resource: repositoryARN("x")), identityPolicies: [], resourcePolicies: [])
        #expect(rootDecision == .allow(.accountRoot))
    }

    @Test func resourceAccountComesFromTheARN() {
        #expect(AccessRequest(principal: Self.alice, action: "ecr:PutImage", resource: repositoryARN("x", account: otherAccount)).resourceAccount == otherAccount)
        #expect(AccessRequest(principal: Self.alice, action: "ecr:GetAuthorizationToken", resource: "*").resourceAccount == account)
        #expect(AccessRequest(principal: Self.alice, action: "ecr:PutImage", resource: repositoryARN("x")).isSameAccount)
    }

    @Test func getAuthorizationTokenNeedsResourceStar() throws {
        let request = AccessRequest(principal: Self.alice, action: "ecr:GetAuthorizationToken", resource: "*")
        #expect(PolicyEngine.evaluate(request, identityPolicies: [try parseIdentity(Self.allowAll)], resourcePolicies: []).isAllowed)
        #expect(!PolicyEngine.evaluate(request, identityPolicies: [try parseIdentity(Self.allowPull)], resourcePolicies: []).isAllowed)
    }

    struct MessageCase: Sendable, CustomTestStringConvertible {
        let name: String
        let principal: RequestPrincipal
        let identity: [String]
        let resource: [String]
        let message: String
        var testDescription: String { name }
    }

    static let repo = repositoryARN("app")
    static let messages: [MessageCase] = [
        MessageCase(name: "implicit, identity-based", principal: alice, identity: [], resource: [],
                    message: "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: ecr:BatchGetImage on resource: \(repo) because no identity-based policy allows the ecr:BatchGetImage action"),
        MessageCase(name: "implicit, resource-based", principal: bob, identity: [allowAll], resource: [],
                    message: "User: arn:aws:iam::444455556666:user/Bob is not authorized to perform: ecr:BatchGetImage on resource: \(repo) because no resource-based policy allows the ecr:BatchGetImage action"),
        MessageCase(name: "explicit, identity-based", principal: alice, identity: [allowAllDenyPull], resource: [],
                    message: "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: ecr:BatchGetImage on resource: \(repo) with an explicit deny in an identity-based policy"),
        MessageCase(name: "explicit, resource-based", principal: alice, identity: [allowAll], resource: [rpDenyAnyone],
                    message: "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: ecr:BatchGetImage on resource: \(repo) with an explicit deny in a resource-based policy"),
        MessageCase(name: "anonymous", principal: .anonymous, identity: [], resource: [],
                    message: "User: anonymous is not authorized to perform: ecr:BatchGetImage on resource: \(repo) because no resource-based policy allows the ecr:BatchGetImage action"),
        MessageCase(name: "role session", principal: session, identity: [], resource: [],
                    message: "User: arn:aws:sts::111122223333:assumed-role/builder/ci is not authorized to perform: ecr:BatchGetImage on resource: \(repo) because no identity-based policy allows the ecr:BatchGetImage action"),
    ]

    @Test(arguments: messages)
    func accessDeniedMessagesUseAWSWording(_ m: MessageCase) throws {
        let request = AccessRequest(principal: m.principal, action: "ecr:BatchGetImage", resource: Self.repo)
        let decision = PolicyEngine.evaluate(request, identityPolicies: try m.identity.map(parseIdentity), resourcePolicies: try m.resource.map(parseResource))
        #expect(decision.accessDeniedMessage(for: request) == m.message)
    }

    @Test func allowedRequestsHaveNoMessage() throws {
        let request = AccessRequest(principal: Self.alice, action: "ecr:BatchGetImage", resource: Self.repo)
        #expect(PolicyEngine.evaluate(request, identityPolicies: [try parseIdentity(Self.allowAll)], resourcePolicies: []).accessDeniedMessage(for: request) == nil)
    }

    struct ContextCase: Sendable, CustomTestStringConvertible {
        let principal: RequestPrincipal
        let key: String
        let value: ContextValue?
        var testDescription: String { "\(principal.principalType) \(key)" }
    }

    static let derivedContext: [ContextCase] = [
        ContextCase(principal: alice, key: "aws:PrincipalArn", value: "arn:aws:iam::111122223333:user/alice"),
        ContextCase(principal: session, key: "aws:PrincipalArn", value: "arn:aws:iam::111122223333:role/builder"),
        ContextCase(principal: root, key: "aws:PrincipalArn", value: "arn:aws:iam::111122223333:root"),
        ContextCase(principal: .anonymous, key: "aws:PrincipalArn", value: nil),
        ContextCase(principal: alice, key: "aws:PrincipalAccount", value: "111122223333"),
        ContextCase(principal: alice, key: "AWS:USERNAME", value: "alice"),
        ContextCase(principal: session, key: "aws:username", value: nil),
        ContextCase(principal: root, key: "aws:username", value: nil),
        ContextCase(principal: root, key: "aws:userid", value: "111122223333"),
        ContextCase(principal: alice, key: "aws:PrincipalType", value: "User"),
        ContextCase(principal: session, key: "aws:PrincipalType", value: "AssumedRole"),
        ContextCase(principal: root, key: "aws:PrincipalType", value: "Account"),
        ContextCase(principal: .anonymous, key: "aws:PrincipalType", value: "Anonymous"),
        ContextCase(principal: .service("codebuild.amazonaws.com"), key: "aws:PrincipalServiceName", value: "codebuild.amazonaws.com"),
        ContextCase(principal: .service("codebuild.amazonaws.com"), key: "aws:PrincipalIsAWSService", value: "true"),
        ContextCase(principal: alice, key: "aws:PrincipalIsAWSService", value: "false"),
    ]

    @Test(arguments: derivedContext)
    func derivesGlobalContextKeysFromThePrincipal(_ c: ContextCase) {
        let request = AccessRequest(principal: c.principal, action: "ecr:ListImages", resource: Self.repo)
        #expect(request.value(forKey: c.key) == c.value)
    }

    @Test func explicitContextOverridesDerivedKeys() {
        let request = AccessRequest(principal: Self.alice, action: "ecr:ListImages", resource: Self.repo, sourceIP: "203.0.113.1", secureTransport: true,
                                    context: ["aws:SourceIp": "198.51.100.1"])
        #expect(request.value(forKey: "aws:sourceip") == "198.51.100.1")
        #expect(request.value(forKey: "aws:SecureTransport") == "true")
    }

    struct ARNCase: Sendable, CustomTestStringConvertible {
        let arn: String
        let kind: RequestPrincipal.Kind?
        var testDescription: String { arn }
    }

    static let principalARNs: [ARNCase] = [
        ARNCase(arn: "arn:aws:iam::111122223333:root", kind: .rootUser),
        ARNCase(arn: "arn:aws:iam::111122223333:user/division/alice", kind: .user),
        ARNCase(arn: "arn:aws:sts::111122223333:assumed-role/builder/ci", kind: .assumedRole),
        ARNCase(arn: "arn:aws:sts::111122223333:federated-user/bob", kind: .federatedUser),
        ARNCase(arn: "arn:aws:iam::111122223333:role/builder", kind: nil),
        ARNCase(arn: "arn:aws:iam::1111:user/a", kind: nil),
        ARNCase(arn: "arn:aws:sts::111122223333:assumed-role/builder", kind: nil),
        ARNCase(arn: "not-an-arn", kind: nil),
    ]

    @Test(arguments: principalARNs)
    func readsPrincipalsFromARNs(_ c: ARNCase) {
        let p = RequestPrincipal(arn: c.arn)
        #expect(p?.kind == c.kind)
        if let p { #expect(p.accountID == account && p.arn == c.arn) }
    }

    @Test func parsedSessionKnowsItsRole() throws {
        let p = try #require(RequestPrincipal(arn: "arn:aws:sts::111122223333:assumed-role/builder/ci"))
        #expect(p.principalARN == "arn:aws:iam::111122223333:role/builder")
        #expect(RequestPrincipal(arn: "arn:aws:iam::111122223333:user/division/alice")?.username == "alice")
        #expect(RequestPrincipal(arn: "arn:aws:iam::111122223333:root")?.isRoot == true)
    }
}
