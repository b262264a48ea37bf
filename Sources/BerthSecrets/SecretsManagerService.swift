import BerthAuth
import BerthCore
import BerthStorage
import BerthSupport
import Foundation
import Logging

/// A response of the AWS JSON 1.1 protocol.
public struct SecretsResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    public let errorType: String?
}

/// AWS Secrets Manager (`secretsmanager.<Operation>`, signing name `secretsmanager`): the operations a
/// pull through cache's upstream credentials need — CreateSecret, GetSecretValue, PutSecretValue,
/// DescribeSecret, ListSecrets, DeleteSecret. Values are sealed at rest with the server's master key
/// (``SecretBox``, bound to the secret's ARN and version id), as access keys' secrets are. Every operation
/// is authorized as `secretsmanager:<Action>` on the secret's ARN through the policy engine.
public final class SecretsManagerService: Sendable {
    public static let targetPrefix = "secretsmanager."
    public static let signingName = "secretsmanager"
    static let current = "AWSCURRENT"
    static let previous = "AWSPREVIOUS"

    let store: any PullThroughMetadata
    let box: SecretBox
    let region: String
    let authorizer: any Authorizer
    let clock: any WallClock
    let logger: Logger

    public init(store: any PullThroughMetadata, box: SecretBox, region: String, authorizer: any Authorizer,
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth.secretsmanager")) {
        self.store = store
        self.box = box
        self.region = region
        self.authorizer = authorizer
        self.clock = clock
        self.logger = logger
    }

    typealias Handler = @Sendable (SecretsManagerService, SecretsParams, Principal) async throws -> JSONValue

    static let operations: [String: Handler] = [
        "CreateSecret": { try await $0.createSecret($1, $2) },
        "GetSecretValue": { try await $0.getSecretValue($1, $2) },
        "PutSecretValue": { try await $0.putSecretValue($1, $2) },
        "DescribeSecret": { try await $0.describeSecret($1, $2) },
        "ListSecrets": { try await $0.listSecrets($1, $2) },
        "DeleteSecret": { try await $0.deleteSecret($1, $2) },
    ]

    public static func handles(target: String) -> Bool { target.hasPrefix(targetPrefix) }

    public func handle(target: String, body: [UInt8], principal: Principal) async -> SecretsResponse {
        do {
            guard target.hasPrefix(Self.targetPrefix), let op = Self.operations[String(target.dropFirst(Self.targetPrefix.count))] else {
                throw SecretsError("UnknownOperationException", "Unknown operation \(target)")
            }
            let result = try await op(self, try SecretsParams.parse(body), principal)
            return SecretsResponse(status: 200, body: result.encoded(), errorType: nil)
        } catch {
            let e = map(error)
            return SecretsResponse(status: e.status, body: e.json, errorType: e.type)
        }
    }

    func map(_ error: any Error) -> SecretsError {
        if let e = error as? SecretsError { return e }
        if case BerthError.denied(let message)? = error as? BerthError { return .accessDenied(message) }
        logger.error("secretsmanager operation failed", metadata: ["error": "\(error)"])
        return .internalError
    }

    // MARK: names and ARNs

    /// Secret names: 1–512 characters of letters, digits and `/_+=.@-`.
    static func checkName(_ name: String) throws(SecretsError) {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/_+=.@-")
        guard !name.isEmpty, name.allSatisfy({ allowed.contains($0) }) else {
            throw .invalidParameter("Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!")
        }
    }

    /// `arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 random characters>`.
    func newARN(account: String, name: String) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        let suffix = String((0..<6).map { _ in alphabet.randomElement()! })
        return "arn:aws:secretsmanager:\(region):\(account):secret:\(name)-\(suffix)"
    }

    /// The account and name a `SecretId` (a name, or a full or partial ARN) designates.
    static func locate(_ id: String, defaultAccount: String) -> (account: String, name: String, arn: String?) {
        guard id.hasPrefix("arn:"), let arn = ARN(id), arn.service == "secretsmanager", arn.resource.hasPrefix("secret:") else {
            return (defaultAccount, id, nil)
        }
        let resource = String(arn.resource.dropFirst("secret:".count))
        // A full ARN ends with `-` and six characters; a partial one is the name itself.
        if resource.count > 7, resource.dropLast(6).hasSuffix("-") {
            return (arn.account, String(resource.dropLast(7)), id)
        }
        return (arn.account, resource, nil)
    }

    /// The secret a `SecretId` names, or `ResourceNotFoundException`; a full ARN must match exactly.
    /// A secret whose recovery window has passed is removed here and is not found.
    func find(_ id: String, _ principal: Principal) async throws -> StoredSecret {
        let (account, name, arn) = Self.locate(id, defaultAccount: principal.accountID)
        guard let secret = try await store.secret(account: account, name: name), arn == nil || secret.arn == arn else {
            throw SecretsError.notFound
        }
        if let due = secret.deletionDate, due <= clock.now() {
            try await store.deleteSecret(account: secret.account, name: secret.name)
            throw SecretsError.notFound
        }
        return secret
    }

    func authorize(_ principal: Principal, _ action: String, _ arn: String) async throws {
        try await authorizer.authorize(principal, action: "secretsmanager:\(action)", resource: arn)
    }

    // MARK: values

    func seal(_ value: SecretValue, arn: String, version: String) throws -> StoredSecretVersion.Sealed {
        let context = "\(arn)|\(version)"
        switch value {
        case .string(let s): return .init(string: try box.seal(s, context: context), binary: nil)
        case .binary(let b): return .init(string: nil, binary: try box.seal(b, context: context))
        }
    }

    func open(_ version: StoredSecretVersion, arn: String) throws(SecretsError) -> SecretValue? {
        let context = "\(arn)|\(version.id)"
        do {
            if let s = version.sealedString { return .string(try box.open(s, context: context)) }
            if let b = version.sealedBinary { return .binary(try box.open(b, context: context)) }
            return nil
        } catch {
            throw .decryptionFailure
        }
    }

    /// Adds a version carrying `stages` (AWSCURRENT by default): AWSCURRENT moves to it and the former
    /// current version becomes AWSPREVIOUS; versions left without a label are dropped.
    static func addVersion(_ secret: inout StoredSecret, _ version: StoredSecretVersion) {
        if version.stages.contains(current) {
            for i in secret.versions.indices {
                secret.versions[i].stages.removeAll { $0 == previous }
                if secret.versions[i].stages.contains(current) {
                    secret.versions[i].stages.removeAll { $0 == current }
                    secret.versions[i].stages.append(previous)
                }
            }
        }
        for stage in version.stages where stage != current {
            for i in secret.versions.indices { secret.versions[i].stages.removeAll { $0 == stage } }
        }
        secret.versions.append(version)
        secret.versions.removeAll { $0.stages.isEmpty }
    }

    // MARK: operations

    func createSecret(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let name = try p.requiredString("Name", length: 1...512)
        try Self.checkName(name)
        let description = try p.string("Description", length: 0...2048)
        let kmsKeyID = try p.string("KmsKeyId", length: 0...2048)
        let token = try p.clientRequestToken() ?? UUID().uuidString.lowercased()
        let value = try p.secretValue()
        let tags = try p.tags() ?? []
        if try p.list("AddReplicaRegions") != nil {
            throw SecretsError.invalidRequest("Replication of secrets to other regions is not supported by this deployment.")
        }
        let account = principal.accountID
        let arn = newARN(account: account, name: name)
        try await authorize(principal, "CreateSecret", arn)
        if let existing = try await store.secret(account: account, name: name) {
            // The same request again (same token, same value) answers as the first did.
            if let v = existing.versions.first(where: { $0.id == token }), try open(v, arn: existing.arn) == value {
                return ["ARN": .string(existing.arn), "Name": .string(name), "VersionId": .string(token)]
            }
            if existing.deletedAt != nil {
                throw SecretsError.invalidRequest("You can't create this secret because a secret with this name is already scheduled for deletion.")
            }
            throw SecretsError.exists(name)
        }
        let now = clock.now()
        var versions: [StoredSecretVersion] = []
        if let value {
            let sealed = try seal(value, arn: arn, version: token)
            versions.append(StoredSecretVersion(id: token, sealedString: sealed.string, sealedBinary: sealed.binary,
                                                stages: [Self.current], createdAt: now))
        }
        let secret = StoredSecret(account: account, name: name, arn: arn, description: description, kmsKeyID: kmsKeyID,
                                  createdAt: now, lastChangedAt: now, tags: tags, versions: versions)
        guard try await store.createSecret(secret) else { throw SecretsError.exists(name) }
        var out: [String: JSONValue] = ["ARN": .string(arn), "Name": .string(name)]
        if value != nil { out["VersionId"] = .string(token) }
        return .object(out)
    }

    func getSecretValue(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let id = try p.requiredString("SecretId", length: 1...2048)
        let versionID = try p.string("VersionId", length: 32...64)
        let stage = try p.string("VersionStage", length: 1...256)
        let secret = try await find(id, principal)
        try await authorize(principal, "GetSecretValue", secret.arn)
        if secret.deletedAt != nil { throw SecretsError.markedForDeletion }
        let version: StoredSecretVersion?
        switch (versionID, stage) {
        case (let v?, let s?): version = secret.versions.first { $0.id == v && $0.stages.contains(s) }
        case (let v?, nil): version = secret.versions.first { $0.id == v }
        case (nil, let s): version = secret.versions.first { $0.stages.contains(s ?? Self.current) }
        }
        guard let version, let value = try open(version, arn: secret.arn) else {
            throw SecretsError.valueNotFound(versionID.map { "VersionId: \($0)" } ?? "staging label: \(stage ?? Self.current)")
        }
        let now = clock.now()
        // LastAccessedDate is a date (the day), as AWS keeps it.
        let day = (now / 86_400).rounded(.down) * 86_400
        if secret.lastAccessedAt != day {
            _ = try await store.updateSecret(account: secret.account, name: secret.name) { $0.lastAccessedAt = day }
        }
        var out: [String: JSONValue] = [
            "ARN": .string(secret.arn), "Name": .string(secret.name), "VersionId": .string(version.id),
            "VersionStages": .array(version.stages.map { .string($0) }), "CreatedDate": .double(version.createdAt),
        ]
        switch value {
        case .string(let s): out["SecretString"] = .string(s)
        case .binary(let b): out["SecretBinary"] = .string(b)
        }
        return .object(out)
    }

    func putSecretValue(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let id = try p.requiredString("SecretId", length: 1...2048)
        let token = try p.clientRequestToken() ?? UUID().uuidString.lowercased()
        let stages = try p.stringList("VersionStages", count: 1...20, length: 1...256) ?? [Self.current]
        _ = try p.string("RotationToken", length: 36...256, secret: true)
        guard let value = try p.secretValue() else {
            throw SecretsError.invalidRequest("You must provide either SecretString or SecretBinary.")
        }
        let found = try await find(id, principal)
        try await authorize(principal, "PutSecretValue", found.arn)
        if found.deletedAt != nil { throw SecretsError.markedForDeletion }
        if let v = found.versions.first(where: { $0.id == token }) {
            guard try open(v, arn: found.arn) == value else {
                throw SecretsError("ResourceExistsException", "A version with VersionId \(token) already exists with a different value.")
            }
            return ["ARN": .string(found.arn), "Name": .string(found.name), "VersionId": .string(token),
                    "VersionStages": .array(v.stages.map { .string($0) })]
        }
        let sealed = try seal(value, arn: found.arn, version: token)
        let now = clock.now()
        let version = StoredSecretVersion(id: token, sealedString: sealed.string, sealedBinary: sealed.binary, stages: stages, createdAt: now)
        guard try await store.updateSecret(account: found.account, name: found.name, { s in
            guard s.arn == found.arn else { throw SecretsError.notFound }
            Self.addVersion(&s, version)
            s.lastChangedAt = now
        }) != nil else { throw SecretsError.notFound }
        return ["ARN": .string(found.arn), "Name": .string(found.name), "VersionId": .string(token),
                "VersionStages": .array(stages.map { .string($0) })]
    }

    func describe(_ s: StoredSecret, versionsKey: String) -> [String: JSONValue] {
        var out: [String: JSONValue] = [
            "ARN": .string(s.arn), "Name": .string(s.name), "CreatedDate": .double(s.createdAt),
            "LastChangedDate": .double(s.lastChangedAt), "RotationEnabled": false,
        ]
        if let d = s.description { out["Description"] = .string(d) }
        if let k = s.kmsKeyID { out["KmsKeyId"] = .string(k) }
        if let a = s.lastAccessedAt { out["LastAccessedDate"] = .double(a) }
        if let d = s.deletedAt { out["DeletedDate"] = .double(d) }
        if !s.tags.isEmpty { out["Tags"] = .array(s.tags.map { ["Key": .string($0.key), "Value": .string($0.value)] }) }
        if !s.versions.isEmpty {
            out[versionsKey] = .object(Dictionary(s.versions.map { ($0.id, JSONValue.array($0.stages.map { .string($0) })) },
                                                  uniquingKeysWith: { a, _ in a }))
        }
        return out
    }

    func describeSecret(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let id = try p.requiredString("SecretId", length: 1...2048)
        let secret = try await find(id, principal)
        try await authorize(principal, "DescribeSecret", secret.arn)
        return .object(describe(secret, versionsKey: "VersionIdsToStages"))
    }

    static let filterKeys = ["description", "name", "tag-key", "tag-value", "primary-region", "owning-service", "all"]

    func listSecrets(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let limit = Int(try p.int("MaxResults", range: 1...100) ?? 100)
        let next = try p.string("NextToken", length: 1...4096)
        let includeDeleted = try p.bool("IncludePlannedDeletion") ?? false
        let order = try p.string("SortOrder") ?? "desc"
        guard ["asc", "desc"].contains(order) else {
            throw SecretsError.validation(ValidationMessage(.text(order), at: "sortOrder", .oneOf(["asc", "desc"])))
        }
        let sortBy = try p.string("SortBy") ?? "created-date"
        let sortKeys = ["created-date", "last-accessed-date", "last-changed-date", "name"]
        guard sortKeys.contains(sortBy) else {
            throw SecretsError.validation(ValidationMessage(.text(sortBy), at: "sortBy", .oneOf(sortKeys)))
        }
        var filters: [(String, [String])] = []
        if let l = try p.list("Filters") {
            guard l.count <= 10 else { throw SecretsError.validation(ValidationMessage(.omitted, at: "filters", .lengthAtMost(10))) }
            for f in l {
                guard case .object(let o) = f else { throw p.typeError("Filters", "list of structures") }
                let fp = SecretsParams(o)
                let key = try fp.requiredString("Key")
                guard Self.filterKeys.contains(key) else {
                    throw SecretsError.validation(ValidationMessage(.text(key), at: "filters.member.key", .oneOf(Self.filterKeys)))
                }
                let values = try fp.stringList("Values", count: 1...10, length: 0...512) ?? []
                filters.append((key, values))
            }
        }
        try await authorizer.authorize(principal, action: "secretsmanager:ListSecrets", resource: "*")
        let now = clock.now()
        var secrets = try await store.secrets(account: principal.accountID).filter { s in
            if let due = s.deletionDate, due <= now { return false }
            if s.deletedAt != nil, !includeDeleted { return false }
            return filters.allSatisfy { key, values in values.contains { Self.matches(s, key: key, value: $0) } }
        }
        func sortValue(_ s: StoredSecret) -> String {
            switch sortBy {
            case "name": return s.name
            case "last-accessed-date": return String(format: "%020.3f", s.lastAccessedAt ?? 0) + s.name
            case "last-changed-date": return String(format: "%020.3f", s.lastChangedAt) + s.name
            default: return String(format: "%020.3f", s.createdAt) + s.name
            }
        }
        secrets.sort { order == "asc" ? sortValue($0) < sortValue($1) : sortValue($0) > sortValue($1) }
        var start = 0
        if let next {
            guard let data = Data(base64Encoded: next), let n = Int(String(decoding: data, as: UTF8.self)), n >= 0, n <= secrets.count else {
                throw SecretsError.invalidNextToken
            }
            start = n
        }
        let page = secrets[start..<min(secrets.count, start + limit)]
        var out: [String: JSONValue] = ["SecretList": .array(page.map { .object(describe($0, versionsKey: "SecretVersionsToStages")) })]
        if start + limit < secrets.count { out["NextToken"] = .string(Data(String(start + limit).utf8).base64EncodedString()) }
        return .object(out)
    }

    /// ListSecrets filters: a prefix match (case-sensitive), negated by a leading `!`.
    static func matches(_ s: StoredSecret, key: String, value: String) -> Bool {
        let negate = value.hasPrefix("!")
        let v = negate ? String(value.dropFirst()) : value
        let hit: Bool
        switch key {
        case "name": hit = s.name.hasPrefix(v)
        case "description": hit = (s.description ?? "").hasPrefix(v)
        case "tag-key": hit = s.tags.contains { $0.key.hasPrefix(v) }
        case "tag-value": hit = s.tags.contains { $0.value.hasPrefix(v) }
        case "all": hit = s.name.hasPrefix(v) || (s.description ?? "").hasPrefix(v) || s.tags.contains { $0.key.hasPrefix(v) || $0.value.hasPrefix(v) }
        default: hit = false
        }
        return negate ? !hit : hit
    }

    func deleteSecret(_ p: SecretsParams, _ principal: Principal) async throws -> JSONValue {
        let id = try p.requiredString("SecretId", length: 1...2048)
        let window = try p.int("RecoveryWindowInDays")
        let force = try p.bool("ForceDeleteWithoutRecovery") ?? false
        if force, window != nil {
            throw SecretsError.invalidParameter("You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.")
        }
        if let window, !(7...30).contains(window) {
            throw SecretsError.invalidParameter("The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).")
        }
        let secret = try await find(id, principal)
        try await authorize(principal, "DeleteSecret", secret.arn)
        let now = clock.now()
        if force {
            try await store.deleteSecret(account: secret.account, name: secret.name)
            return ["ARN": .string(secret.arn), "Name": .string(secret.name), "DeletionDate": .double(now)]
        }
        if secret.deletedAt != nil { throw SecretsError.markedForDeletion }
        let due = now + Double(window ?? 30) * 86_400
        _ = try await store.updateSecret(account: secret.account, name: secret.name) { s in
            s.deletedAt = now
            s.deletionDate = due
        }
        return ["ARN": .string(secret.arn), "Name": .string(secret.name), "DeletionDate": .double(due)]
    }

    // MARK: for the pull through cache

    /// Why a secret could not serve as upstream credentials (ECR's error names).
    public enum CredentialFailure: Error, Sendable, Equatable {
        case notFound
        case cannotDecrypt
        case malformed
    }

    /// The `username` and `accessToken` of a secret's current value, as ECR reads them for an upstream.
    public func upstreamCredentials(arn: String) async throws(CredentialFailure) -> (username: String, accessToken: String) {
        let (account, name, _) = Self.locate(arn, defaultAccount: "")
        let stored: StoredSecret?
        do { stored = try await store.secret(account: account, name: name) } catch { throw .notFound }
        guard let secret = stored, secret.arn == arn, secret.deletedAt == nil else { throw .notFound }
        guard let version = secret.versions.first(where: { $0.stages.contains(Self.current) }) else { throw .notFound }
        let value: SecretValue?
        do { value = try open(version, arn: secret.arn) } catch { throw .cannotDecrypt }
        guard case .string(let text)? = value, let json = try? JSONValue.parse(Array(text.utf8)),
              let user = json["username"]?.stringValue, let token = json["accessToken"]?.stringValue
        else { throw .malformed }
        return (user, token)
    }
}

extension StoredSecretVersion {
    /// A value sealed for one version.
    struct Sealed {
        var string: String?
        var binary: String?
    }
}
