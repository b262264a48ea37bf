import BerthAuth
import BerthCore
import BerthDirectory
import BerthPolicy
import BerthSupport
import Foundation
import Logging

/// The STS Query API (`Version=2011-06-15`): GetCallerIdentity, AssumeRole and (unsigned)
/// AssumeRoleWithWebIdentity.
public final class STSService: Sendable {
    public static let version = "2011-06-15"
    public static let wire = QueryProtocol(namespace: "https://sts.amazonaws.com/doc/2011-06-15/")

    let directory: Directory
    let authorizer: PolicyAuthorizer
    let sessions: SessionTokenCodec
    let clock: any WallClock
    let logger: Logger
    /// OIDC issuers' signing keys, for AssumeRoleWithWebIdentity.
    let webIdentityKeys: any WebIdentityKeySource

    /// The one action AWS accepts without a signature.
    public static let unsignedActions: Set<String> = ["AssumeRoleWithWebIdentity"]

    public init(directory: Directory, authorizer: PolicyAuthorizer, sessions: SessionTokenCodec,
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth.sts"),
                webIdentityKeys: any WebIdentityKeySource = NoWebIdentityKeys()) {
        self.directory = directory
        self.authorizer = authorizer
        self.sessions = sessions
        self.clock = clock
        self.logger = logger
        self.webIdentityKeys = webIdentityKeys
    }

    /// Runs an action that needs no caller credentials (AssumeRoleWithWebIdentity).
    public func handleUnsigned(_ form: [String: String], requestID: String) async -> QueryResponse {
        let action = form["Action"] ?? ""
        do {
            guard Self.unsignedActions.contains(action) else {
                throw QueryError("MissingAuthenticationToken", "Request is missing Authentication Token", status: 403)
            }
            return Self.wire.success(action, try await assumeRoleWithWebIdentity(QueryParams(form)), requestID: requestID)
        } catch {
            let e = QueryError(mapping: error)
            if e.status >= 500 { logger.error("sts action failed", metadata: ["error": "\(error)"]) }
            return Self.wire.error(e, requestID: requestID)
        }
    }

    public func handle(_ form: [String: String], principal: Principal, requestID: String) async -> QueryResponse {
        let action = form["Action"] ?? ""
        do {
            let p = QueryParams(form)
            let result: [XMLNode]
            switch action {
            case "GetCallerIdentity": result = try await getCallerIdentity(principal)
            case "AssumeRole": result = try await assumeRole(p, principal)
            case "AssumeRoleWithWebIdentity": result = try await assumeRoleWithWebIdentity(p)
            default: throw QueryError("InvalidAction", "Could not find operation \(action) for version \(Self.version)")
            }
            return Self.wire.success(action, result, requestID: requestID)
        } catch {
            let e = QueryError(mapping: error)
            if e.status >= 500 { logger.error("sts action failed", metadata: ["error": "\(error)"]) }
            return Self.wire.error(e, requestID: requestID)
        }
    }

    func getCallerIdentity(_ principal: Principal) async throws -> [XMLNode] {
        var userID = principal.userID ?? principal.accountID
        if case .user(let name) = principal.kind,
           let u = try await directory.entity(IAMEntityKey(.user, principal.accountID, name)) {
            userID = u.id
        }
        return [.text("UserId", userID), .text("Account", principal.accountID), .text("Arn", principal.arn)]
    }

    /// `arn:aws:iam::<account>:role/<path><name>` → account, path, name.
    static func parseRoleARN(_ arn: String) -> (account: String, path: String, name: String)? {
        guard let parsed = ARN(arn), parsed.partition == "aws", parsed.service == "iam", parsed.region.isEmpty,
              AccountID.isValid(parsed.account), parsed.resource.hasPrefix("role/") else { return nil }
        let rest = parsed.resource.dropFirst(4)  // "/path/name"
        guard let slash = rest.lastIndex(of: "/") else { return nil }
        let name = String(rest[rest.index(after: slash)...])
        guard !name.isEmpty else { return nil }
        return (parsed.account, String(rest[...slash]), name)
    }

    func assumeRole(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let roleARN = try p.required("RoleArn")
        guard roleARN.utf8.count >= 20, roleARN.utf8.count <= 2048 else {
            throw QueryError.validation(ValidationMessage(.text("\(roleARN)"), at: "roleArn", .lengthAtLeast(20)))
        }
        guard let session = try p.name("RoleSessionName", max: 64), session.utf8.count >= 2 else {
            throw QueryError.validation(ValidationMessage(.omitted, at: "roleSessionName", .lengthAtLeast(2)))
        }
        if p["Policy"] != nil || p["PolicyArns.member.1.arn"] != nil {
            throw QueryError.validation("Session policies are not supported by this server.")
        }
        let duration = try p.int("DurationSeconds") ?? 3600
        guard (900...43200).contains(duration) else {
            throw QueryError.validation(ValidationMessage(.text("\(duration)"), at: "durationSeconds", .valueBetween(900, 43200)))
        }
        let denied = QueryError.accessDenied("User: \(principal.arn) is not authorized to perform: sts:AssumeRole on resource: \(roleARN)")
        guard let parsed = Self.parseRoleARN(roleARN) else {
            throw QueryError.validation("\(roleARN) is invalid")
        }
        guard let role = try await directory.entity(IAMEntityKey(.role, parsed.account, parsed.name)), role.path == parsed.path else {
            throw denied
        }
        do {
            try await authorizer.authorizeAssumeRole(principal, role: role)
        } catch is BerthError {
            throw denied
        }
        let maxDuration = role.maxSessionDuration ?? 3600
        if duration > maxDuration {
            throw QueryError.validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        }
        if case .assumedRole = principal.kind, duration > 3600 {
            throw QueryError.validation("The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.")
        }
        return try sessionCredentials(role: role, session: session, duration: duration)
    }

    /// New temporary credentials for a role session: `Credentials` and `AssumedRoleUser`.
    func sessionCredentials(role: IAMEntityRecord, session: String, duration: Int) throws -> [XMLNode] {
        let expires = (clock.now() + Double(duration)).rounded(.down)
        let claims = SessionClaims(
            accessKeyID: AccessKeyGenerator.accessKeyID(prefix: AccessKeyGenerator.temporaryPrefix),
            secretAccessKey: AccessKeyGenerator.secretAccessKey(), accountID: role.accountID, roleName: role.name,
            roleID: role.id, sessionName: session, expiresAt: expires)
        return [
            .element("Credentials", [
                .text("AccessKeyId", claims.accessKeyID), .text("SecretAccessKey", claims.secretAccessKey),
                .text("SessionToken", try sessions.seal(claims)), .text("Expiration", QueryProtocol.timestamp(expires)),
            ]),
            .element("AssumedRoleUser", [.text("AssumedRoleId", claims.userID), .text("Arn", claims.arn)]),
        ]
    }

    /// Trades an OIDC ID token (a CI job's, say) for role credentials. The token must be signed by a key
    /// in the issuer's installed JWKS, the issuer must be an OIDC provider of the role's account, one
    /// of its audiences one of the provider's client ids, and the role's trust policy must allow the
    /// provider as `Federated` principal with the token's claims as `<issuer>:sub`, `:aud`, `:amr`.
    func assumeRoleWithWebIdentity(_ p: QueryParams) async throws -> [XMLNode] {
        let roleARN = try p.required("RoleArn")
        guard roleARN.utf8.count >= 20, roleARN.utf8.count <= 2048 else {
            throw QueryError.validation(ValidationMessage(.text("\(roleARN)"), at: "roleArn", .lengthAtLeast(20)))
        }
        guard let session = try p.name("RoleSessionName", max: 64), session.utf8.count >= 2 else {
            throw QueryError.validation(ValidationMessage(.omitted, at: "roleSessionName", .lengthAtLeast(2)))
        }
        let token = try p.required("WebIdentityToken")
        guard (4...20000).contains(token.utf8.count) else {
            throw QueryError.validation(ValidationMessage(.omitted, at: "webIdentityToken", .lengthAtMost(20000)))
        }
        if p["Policy"] != nil || p["PolicyArns.member.1.arn"] != nil {
            throw QueryError.validation("Session policies are not supported by this server.")
        }
        if p["ProviderId"] != nil {
            throw QueryError.validation("ProviderId is only for OAuth 2.0 providers, which this server does not support.")
        }
        let duration = try p.int("DurationSeconds") ?? 3600
        guard (900...43200).contains(duration) else {
            throw QueryError.validation(ValidationMessage(.text("\(duration)"), at: "durationSeconds", .valueBetween(900, 43200)))
        }
        let jwt = try WebIdentityToken(token)
        let denied = QueryError.accessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity")
        guard let parsed = Self.parseRoleARN(roleARN) else { throw QueryError.validation("\(roleARN) is invalid") }
        guard let role = try await directory.entity(IAMEntityKey(.role, parsed.account, parsed.name)), role.path == parsed.path else {
            throw denied
        }
        // The issuer is read before the signature is checked only to find whose keys to check it with.
        guard jwt.issuer.hasPrefix("https://") else {
            throw WebIdentityTokenError.invalid("No OpenIDConnect provider found in your account for \(jwt.issuer)")
        }
        let url = String(jwt.issuer.dropFirst(8))
        guard let provider = try await directory.oidcProvider(arn: OIDCProviderRecord.arn(account: role.accountID, url: url)) else {
            throw WebIdentityTokenError.invalid("No OpenIDConnect provider found in your account for \(jwt.issuer)")
        }
        guard let keys = await webIdentityKeys.keys(forIssuer: provider.url) else {
            throw QueryError("IDPCommunicationError", "No signing keys are installed for \(jwt.issuer) (its JWKS file is missing or unreadable).")
        }
        try jwt.verify(with: keys, now: clock.now())
        guard let audience = jwt.audiences.first(where: { provider.clientIDs.contains($0) }) else {
            throw WebIdentityTokenError.invalid("Incorrect token audience")
        }
        var context: [String: ContextValue] = [
            "\(provider.url):sub": .single(jwt.subject),
            "\(provider.url):aud": .single(audience),
        ]
        if let amr = jwt.authenticationMethods { context["\(provider.url):amr"] = .multiple(amr) }
        do {
            try authorizer.authorizeWebIdentity(provider: provider.arn, role: role, context: context)
        } catch is BerthError {
            throw denied
        }
        if duration > role.maxSessionDuration ?? 3600 {
            throw QueryError.validation("The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
        }
        logger.info("web identity assumed role", metadata: [
            "role": "\(role.arn)", "provider": "\(provider.arn)", "subject": "\(jwt.subject)", "session": "\(session)",
        ])
        return try sessionCredentials(role: role, session: session, duration: duration) + [
            .text("SubjectFromWebIdentityToken", jwt.subject),
            .text("Provider", jwt.issuer),
            .text("Audience", audience),
        ]
    }
}
