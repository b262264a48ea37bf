import BerthAuth
import BerthCore
import BerthSupport
import Foundation

/// What an STS session token carries. The token is self-contained: these claims sealed (AES-GCM)
/// with the server key, so no session table is needed and a forged or altered token does not open.
public struct SessionClaims: Sendable, Codable, Equatable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var accountID: String
    public var roleName: String
    /// `AROA…`.
    public var roleID: String
    public var sessionName: String
    /// Seconds since 1970.
    public var expiresAt: Double

    public init(accessKeyID: String, secretAccessKey: String, accountID: String, roleName: String, roleID: String,
                sessionName: String, expiresAt: Double) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.accountID = accountID
        self.roleName = roleName
        self.roleID = roleID
        self.sessionName = sessionName
        self.expiresAt = expiresAt
    }

    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    public var arn: String { ARN.assumedRole(account: accountID, role: roleName, session: sessionName).description }
    /// `aws:userid` of the session.
    public var userID: String { "\(roleID):\(sessionName)" }

    /// The principal of a request signed with these credentials.
    public var principal: Principal {
        var p = Principal(accountID: accountID, arn: arn, accessKeyID: accessKeyID)
        p.userID = userID
        p.sessionExpiry = expiresAt
        return p
    }
}

/// Seals and opens session tokens.
public struct SessionTokenCodec: Sendable {
    let box: SecretBox
    static let context = "berth-sts-session-v1"

    public init(box: SecretBox) {
        self.box = box
    }

    public func seal(_ claims: SessionClaims) throws -> String {
        let json = String(decoding: try JSONEncoder().encode(claims), as: UTF8.self)
        return try box.seal(json, context: Self.context)
    }

    /// The claims of a token this server issued, or nil (expired tokens still open: callers check).
    public func open(_ token: String) -> SessionClaims? {
        guard token.utf8.count < 8192, let json = try? box.open(token, context: Self.context) else { return nil }
        return try? JSONDecoder().decode(SessionClaims.self, from: Data(json.utf8))
    }
}
