import BerthCore
import BerthDirectory
import BerthSupport
import Foundation

/// IAM OpenID Connect providers: the issuers whose ID tokens AssumeRoleWithWebIdentity accepts.
/// Berth stores the thumbprints but verifies tokens with the issuer's JWKS file instead (it is offline).
extension IAMService {
    static let oidcOperations: [String: Handler] = [
        "CreateOpenIDConnectProvider": { try await $0.createOIDCProvider($1, $2) },
        "GetOpenIDConnectProvider": { try await $0.getOIDCProvider($1, $2) },
        "ListOpenIDConnectProviders": { try await $0.listOIDCProviders($1, $2) },
        "DeleteOpenIDConnectProvider": { try await $0.deleteOIDCProvider($1, $2) },
    ]

    static let maxClientIDs = 100
    static let maxThumbprints = 5

    /// `https://host[:port][/path]` → `host[:port][/path]`; InvalidInput otherwise.
    static func oidcURL(_ url: String) throws -> String {
        guard (1...255).contains(url.utf8.count) else {
            throw QueryError.validation(ValidationMessage(.omitted, at: "url", .lengthAtMost(255)))
        }
        guard url.lowercased().hasPrefix("https://") else { throw QueryError.invalidInput("The URL must begin with https://: \(url)") }
        let rest = url.dropFirst(8)
        let host = rest.prefix { $0 != "/" }
        let allowed = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_~/:%")
        guard !host.isEmpty, !host.hasPrefix("."), !host.hasPrefix(":"), rest.unicodeScalars.allSatisfy(allowed.contains),
              !rest.contains("//"), !rest.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) else {
            throw QueryError.invalidInput("Invalid Url: \(url)")
        }
        return String(rest)
    }

    /// `Name.member.1`, `Name.member.2`, … in order.
    static func members(_ p: QueryParams, _ name: String) -> [String] {
        var out: [String] = []
        var i = 1
        while let v = p["\(name).member.\(i)"] {
            out.append(v)
            i += 1
        }
        return out
    }

    func requireOIDCProvider(_ p: QueryParams, _ principal: Principal) async throws -> OIDCProviderRecord {
        let arn = try p.required("OpenIDConnectProviderArn")
        let prefix = ARN.oidcProvider(account: principal.accountID, url: "").description
        guard (20...2048).contains(arn.utf8.count), arn.hasPrefix("arn:aws:iam::"), arn.contains(":oidc-provider/") else {
            throw QueryError.invalidInput("ARN \(arn) is not valid.")
        }
        guard arn.hasPrefix(prefix), let provider = try await directory.oidcProvider(arn: arn) else {
            throw QueryError.noSuchEntity("OpenIDConnect Provider not found for arn \(arn)")
        }
        return provider
    }

    func createOIDCProvider(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let url = try Self.oidcURL(try p.required("Url"))
        var clientIDs: [String] = []
        for id in Self.members(p, "ClientIDList") where !clientIDs.contains(id) {
            guard (1...255).contains(id.utf8.count) else {
                throw QueryError.validation(ValidationMessage(.omitted, at: "clientIDList", .lengthBetween(1, 255)))
            }
            clientIDs.append(id)
        }
        guard clientIDs.count <= Self.maxClientIDs else {
            throw QueryError.limitExceeded("Cannot exceed quota for ClientIdsPerOpenIdConnectProvider: \(Self.maxClientIDs)")
        }
        let thumbprints = Self.members(p, "ThumbprintList")
        for t in thumbprints where t.utf8.count != 40 || !t.utf8.allSatisfy({ $0 < 0x80 && Character(UnicodeScalar($0)).isHexDigit }) {
            throw QueryError.validation(ValidationMessage(.text("\(t)"), at: "thumbprintList", .other("Member must be 40 hexadecimal characters")))
        }
        guard thumbprints.count <= Self.maxThumbprints else {
            throw QueryError.limitExceeded("Thumbprint list must contain fewer than \(Self.maxThumbprints + 1) entries.")
        }
        if p["Tags.member.1.Key"] != nil { throw QueryError.invalidInput("Tags on OpenID Connect providers are not supported by this server.") }
        let record = OIDCProviderRecord(accountID: principal.accountID, url: url, clientIDs: clientIDs, thumbprints: thumbprints,
                                        createdAt: clock.now())
        try await authorize(principal, "CreateOpenIDConnectProvider", record.arn)
        guard try await directory.createOIDCProvider(record) else {
            throw QueryError.alreadyExists("Provider with url https://\(url) already exists.")
        }
        return [.text("OpenIDConnectProviderArn", record.arn)]
    }

    func getOIDCProvider(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let provider = try await requireOIDCProvider(p, principal)
        try await authorize(principal, "GetOpenIDConnectProvider", provider.arn)
        return [
            .text("Url", provider.url), .strings("ClientIDList", provider.clientIDs),
            .strings("ThumbprintList", provider.thumbprints), .text("CreateDate", QueryProtocol.timestamp(provider.createdAt)),
        ]
    }

    func listOIDCProviders(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        try await authorize(principal, "ListOpenIDConnectProviders", ARN.oidcProvider(account: principal.accountID, url: "*").description)
        let providers = try await directory.oidcProviders(account: principal.accountID)
        return [.list("OpenIDConnectProviderList", providers.map { [.text("Arn", $0.arn)] })]
    }

    func deleteOIDCProvider(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let provider = try await requireOIDCProvider(p, principal)
        try await authorize(principal, "DeleteOpenIDConnectProvider", provider.arn)
        try await directory.deleteOIDCProvider(arn: provider.arn)
        return []
    }
}
