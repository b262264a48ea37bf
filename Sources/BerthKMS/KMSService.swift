import BerthCore
import BerthPolicy
import BerthSupport
import Foundation
import Logging

/// A response of the AWS JSON 1.1 protocol.
public struct KMSResponse: Sendable, Equatable {
    public let status: Int
    public let body: [UInt8]
    /// The `__type` of an error response (for `x-amzn-ErrorType`).
    public let errorType: String?
}

/// The AWS KMS API (`TrentService.<Operation>`, signing name `kms`) over ``KeyService``, free of HTTP.
/// Each operation validates its members against botocore's `kms` model, resolves the key, authorizes
/// `kms:<Action>` on the key ARN through the key policy, and calls the key service. Errors are mapped to
/// the wire in one place, ``handle(target:body:principal:)``.
public final class KMSService: Sendable {
    public static let targetPrefix = "TrentService."
    public static let signingName = "kms"
    let keys: KeyService
    let logger: Logger

    public init(keys: KeyService, logger: Logger = Logger(label: "berth.kms")) {
        self.keys = keys
        self.logger = logger
    }

    typealias Handler = @Sendable (KMSService, KMSParams, Principal) async throws -> JSONValue

    static let operations: [String: Handler] = [
        "CreateKey": { try await $0.createKey($1, $2) },
        "DescribeKey": { try await $0.describeKey($1, $2) },
        "ListKeys": { try await $0.listKeys($1, $2) },
        "EnableKey": { try await $0.setEnabled($1, $2, true) },
        "DisableKey": { try await $0.setEnabled($1, $2, false) },
        "UpdateKeyDescription": { try await $0.updateKeyDescription($1, $2) },
        "ScheduleKeyDeletion": { try await $0.scheduleKeyDeletion($1, $2) },
        "CancelKeyDeletion": { try await $0.cancelKeyDeletion($1, $2) },
        "EnableKeyRotation": { try await $0.setRotation($1, $2, true) },
        "DisableKeyRotation": { try await $0.setRotation($1, $2, false) },
        "GetKeyRotationStatus": { try await $0.getKeyRotationStatus($1, $2) },
        "RotateKeyOnDemand": { try await $0.rotateKeyOnDemand($1, $2) },
        "ListKeyRotations": { try await $0.listKeyRotations($1, $2) },
        "GetKeyPolicy": { try await $0.getKeyPolicy($1, $2) },
        "PutKeyPolicy": { try await $0.putKeyPolicy($1, $2) },
        "ListKeyPolicies": { try await $0.listKeyPolicies($1, $2) },
        "TagResource": { try await $0.tagResource($1, $2) },
        "UntagResource": { try await $0.untagResource($1, $2) },
        "ListResourceTags": { try await $0.listResourceTags($1, $2) },
        "CreateAlias": { try await $0.createAlias($1, $2) },
        "UpdateAlias": { try await $0.updateAlias($1, $2) },
        "DeleteAlias": { try await $0.deleteAlias($1, $2) },
        "ListAliases": { try await $0.listAliases($1, $2) },
        "Encrypt": { try await $0.encrypt($1, $2) },
        "Decrypt": { try await $0.decrypt($1, $2) },
        "GenerateDataKey": { try await $0.generateDataKey($1, $2, plaintext: true) },
        "GenerateDataKeyWithoutPlaintext": { try await $0.generateDataKey($1, $2, plaintext: false) },
        "ReEncrypt": { try await $0.reEncrypt($1, $2) },
    ]

    /// Whether an `X-Amz-Target` belongs to this API.
    public static func handles(target: String) -> Bool { target.hasPrefix(targetPrefix) }

    /// Runs one operation for an authenticated principal; every error becomes the KMS error body here.
    /// Keys are regional: the region the request was signed for (its SigV4 scope) selects the keys and
    /// aliases it sees, bound as ``RequestRegion`` as `ECRService` binds it.
    public func handle(target: String, body: [UInt8], principal: Principal) async -> KMSResponse {
        guard let region = principal.region, RequestRegion.current?.name != region else {
            return await handleInRegion(target: target, body: body, principal: principal)
        }
        return await RequestRegion.$current.withValue(RequestRegion(region, in: keys.regions)) {
            await handleInRegion(target: target, body: body, principal: principal)
        }
    }

    func handleInRegion(target: String, body: [UInt8], principal: Principal) async -> KMSResponse {
        do {
            guard target.hasPrefix(Self.targetPrefix), let op = Self.operations[String(target.dropFirst(Self.targetPrefix.count))] else {
                throw KMSError("UnknownOperationException", "Unknown operation \(target)")
            }
            let result = try await op(self, try KMSParams.parse(body), principal)
            return KMSResponse(status: 200, body: result.encoded(), errorType: nil)
        } catch {
            return Self.errorResponse(map(error))
        }
    }

    /// The one mapping of errors to KMS's wire errors.
    func map(_ error: any Error) -> KMSError {
        if let e = error as? KMSError { return e }
        if case BerthError.denied(let message)? = error as? BerthError { return .accessDenied(message) }
        logger.error("kms operation failed", metadata: ["error": "\(error)"])
        return .internalError
    }

    public static func errorResponse(_ e: KMSError) -> KMSResponse {
        KMSResponse(status: e.status, body: e.json, errorType: e.type)
    }

    // MARK: helpers

    /// Resolves `KeyId` and authorizes `kms:<action>` on it.
    func authorizedKey(_ p: KMSParams, _ principal: Principal, _ action: String, member: String = "KeyId",
                       allowAlias: Bool = false, context: [String: String]? = nil) async throws -> KMSKeyRecord {
        let key = try await keys.resolve(try p.keyID(member), account: principal.accountID, allowAlias: allowAlias)
        try await keys.authorize(principal, action: "kms:\(action)", key: key, context: context)
        return key
    }

    func keyMetadata(_ k: KMSKeyRecord) -> JSONValue {
        var o: [String: JSONValue] = [
            "AWSAccountId": .string(keys.account(of: k)), "KeyId": .string(k.keyID), "Arn": .string(keys.keyARN(k)),
            "CreationDate": .double(k.createdAt), "Enabled": .bool(k.state == KeyService.KeyState.enabled.rawValue),
            "Description": .string(k.description), "KeyUsage": "ENCRYPT_DECRYPT", "KeyState": .string(k.state),
            "Origin": "AWS_KMS", "KeyManager": .string(k.keyManager), "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT",
            "KeySpec": "SYMMETRIC_DEFAULT", "EncryptionAlgorithms": ["SYMMETRIC_DEFAULT"], "MultiRegion": false,
            "CurrentKeyMaterialId": .string(KeyService.materialID(keyID: k.keyID, version: k.currentVersion)),
        ]
        if let d = k.deletionDate { o["DeletionDate"] = .double(d) }
        if let w = k.pendingWindowDays { o["PendingDeletionWindowInDays"] = .int(Int64(w)) }
        return .object(o)
    }

    static func tagsJSON(_ tags: [ResourceTag]) -> JSONValue {
        .array(tags.map { ["TagKey": .string($0.key), "TagValue": .string($0.value)] })
    }

    static func checkEncryptionAlgorithm(_ p: KMSParams, _ name: String = "EncryptionAlgorithm") throws(KMSError) {
        guard let a = try p.string(name) else { return }
        let known = ["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"]
        guard known.contains(a) else {
            throw .constraint(a, KMSParams.wireName(name), "Member must satisfy enum value set: [\(known.joined(separator: ", "))]")
        }
        guard a == "SYMMETRIC_DEFAULT" else { throw .invalidKeyUsage("The encryption algorithm \(a) is not supported by a SYMMETRIC_DEFAULT key") }
    }

    static let keyPolicyOptions = PolicyParseOptions(kind: .resource, maximumSize: 32_768, sizeCounting: .allCharacters)

    /// Checks a key policy's grammar and, unless bypassed, that the caller could still change it afterwards
    /// (KMS's policy lockout safety check).
    func checkPolicy(_ text: String, for arn: String, _ principal: Principal, bypass: Bool) async throws {
        guard text.utf8.count <= 32_768 else {
            throw KMSError.limitExceeded("The key policy is larger than 32768 bytes.")
        }
        do {
            _ = try Policy(parsing: text, options: Self.keyPolicyOptions)
        } catch {
            throw KMSError.malformedPolicy(error.message)
        }
        if bypass { return }
        do {
            try await keys.authorizer.authorize(principal, action: "kms:PutKeyPolicy", resource: arn, keyPolicy: text,
                                                context: KeyService.conditions(caller: principal))
        } catch BerthError.denied {
            throw KMSError.malformedPolicy("The new key policy will not allow you to update the key policy in the future.")
        }
    }

    // MARK: keys

    func createKey(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let description = try p.string("Description", length: 0...8192) ?? ""
        let tags = try p.tags() ?? []
        let policy = try p.string("Policy", length: 1...131_072)
        if let spec = try p.string("KeySpec") ?? p.string("CustomerMasterKeySpec"), spec != "SYMMETRIC_DEFAULT" {
            throw KMSError.unsupported("KeySpec \(spec) is not supported: Berth makes SYMMETRIC_DEFAULT keys only.")
        }
        if let usage = try p.string("KeyUsage"), usage != "ENCRYPT_DECRYPT" {
            throw KMSError.unsupported("KeyUsage \(usage) is not supported: Berth keys are ENCRYPT_DECRYPT keys.")
        }
        if let origin = try p.string("Origin"), origin != "AWS_KMS" {
            throw KMSError.unsupported("Origin \(origin) is not supported: Berth generates its key material (AWS_KMS).")
        }
        if try p.string("CustomKeyStoreId") != nil || p.string("XksKeyId") != nil {
            throw KMSError.unsupported("Custom key stores are not supported.")
        }
        if try p.bool("MultiRegion") == true { throw KMSError.unsupported("Multi-Region keys are not supported.") }
        try await keys.authorize(principal, action: "kms:CreateKey",
                                 requestTags: tags.isEmpty ? nil : Dictionary(tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }))
        if let policy {
            // The safety check needs the key's ARN; the id is not known yet, and the check does not depend on it.
            try await checkPolicy(policy, for: keys.keyARN(account: principal.accountID, keyID: "*"), principal,
                                  bypass: try p.bool("BypassPolicyLockoutSafetyCheck") ?? false)
        }
        let key = try await keys.createKey(account: principal.accountID, description: description, policy: policy, tags: tags)
        return ["KeyMetadata": keyMetadata(key)]
    }

    func describeKey(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        try p.checkGrantTokens()
        let key = try await authorizedKey(p, principal, "DescribeKey", allowAlias: true)
        return ["KeyMetadata": keyMetadata(key)]
    }

    func listKeys(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let (limit, after) = try p.page()
        try await keys.authorize(principal, action: "kms:ListKeys")
        let found = try await keys.keys(account: principal.accountID, after: after, limit: limit + 1)
        let page = found.prefix(limit)
        var o: [String: JSONValue] = [
            "Keys": .array(page.map { ["KeyId": .string($0.keyID), "KeyArn": .string(keys.keyARN($0))] }),
            "Truncated": .bool(found.count > limit),
        ]
        if found.count > limit, let last = page.last { o["NextMarker"] = .string(KMSParams.marker(last.keyID)) }
        return .object(o)
    }

    func setEnabled(_ p: KMSParams, _ principal: Principal, _ enabled: Bool) async throws -> JSONValue {
        let key = try await authorizedKey(p, principal, enabled ? "EnableKey" : "DisableKey")
        try await keys.setEnabled(key, enabled)
        return [:]
    }

    func updateKeyDescription(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let description = try p.requiredString("Description", length: 0...8192)
        let key = try await authorizedKey(p, principal, "UpdateKeyDescription")
        try await keys.setDescription(key, description)
        return [:]
    }

    func scheduleKeyDeletion(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let days = try p.int("PendingWindowInDays", range: KeyService.pendingWindowDays) ?? KeyService.defaultPendingWindowDays
        let key = try await authorizedKey(p, principal, "ScheduleKeyDeletion")
        let scheduled = try await keys.scheduleDeletion(key, days: days)
        return ["KeyId": .string(keys.keyARN(scheduled)), "DeletionDate": .double(scheduled.deletionDate ?? 0),
                "KeyState": .string(scheduled.state), "PendingWindowInDays": .int(Int64(days))]
    }

    func cancelKeyDeletion(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let key = try await authorizedKey(p, principal, "CancelKeyDeletion")
        try await keys.cancelDeletion(key)
        return ["KeyId": .string(keys.keyARN(key))]
    }

    // MARK: rotation

    func setRotation(_ p: KMSParams, _ principal: Principal, _ enabled: Bool) async throws -> JSONValue {
        let days = enabled ? try p.int("RotationPeriodInDays", range: KeyService.rotationPeriodDays) : nil
        let key = try await authorizedKey(p, principal, enabled ? "EnableKeyRotation" : "DisableKeyRotation")
        try await keys.setRotation(key, enabled: enabled, periodDays: days)
        return [:]
    }

    func getKeyRotationStatus(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let key = try await authorizedKey(p, principal, "GetKeyRotationStatus")
        var o: [String: JSONValue] = ["KeyRotationEnabled": .bool(key.rotationEnabled), "KeyId": .string(keys.keyARN(key))]
        if key.rotationEnabled {
            if let d = key.rotationPeriodDays { o["RotationPeriodInDays"] = .int(Int64(d)) }
            if let n = key.nextRotationAt { o["NextRotationDate"] = .double(n) }
        }
        return .object(o)
    }

    func rotateKeyOnDemand(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let key = try await authorizedKey(p, principal, "RotateKeyOnDemand")
        try await keys.rotate(key, onDemand: true)
        return ["KeyId": .string(keys.keyARN(key))]
    }

    func listKeyRotations(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let (limit, after) = try p.page()
        if let include = try p.string("IncludeKeyMaterial"), !["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"].contains(include) {
            throw KMSError.constraint(include, "includeKeyMaterial", "Member must satisfy enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]")
        }
        let includeAll = try p.string("IncludeKeyMaterial") == "ALL_KEY_MATERIAL"
        let key = try await authorizedKey(p, principal, "ListKeyRotations")
        let start = after.flatMap(Int.init) ?? 0
        let all = try await keys.rotations(key).filter { (includeAll || $0.rotationType != nil) && $0.version > start }
        let page = all.prefix(limit)
        var o: [String: JSONValue] = [
            "Rotations": .array(page.map { r in
                var entry: [String: JSONValue] = [
                    "KeyId": .string(keys.keyARN(key)), "KeyMaterialId": .string(KeyService.materialID(keyID: key.keyID, version: r.version)),
                    "KeyMaterialState": r.version == key.currentVersion ? "CURRENT" : "NON_CURRENT",
                ]
                if let type = r.rotationType {
                    entry["RotationDate"] = .double(r.createdAt)
                    entry["RotationType"] = .string(type)
                }
                return .object(entry)
            }),
            "Truncated": .bool(all.count > limit),
        ]
        if all.count > limit, let last = page.last { o["NextMarker"] = .string(KMSParams.marker(String(last.version))) }
        return .object(o)
    }

    // MARK: policies and tags

    func policyName(_ p: KMSParams) throws(KMSError) {
        let name = try p.string("PolicyName", length: 1...128) ?? "default"
        guard name == "default" else { throw KMSError.notFound("No such policy exists: \(name). The only key policy name is default.") }
    }

    func getKeyPolicy(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        try policyName(p)
        let key = try await authorizedKey(p, principal, "GetKeyPolicy")
        return ["Policy": .string(key.policy), "PolicyName": "default"]
    }

    func listKeyPolicies(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        _ = try await authorizedKey(p, principal, "ListKeyPolicies")
        return ["PolicyNames": ["default"], "Truncated": false]
    }

    func putKeyPolicy(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        try policyName(p)
        let policy = try p.requiredString("Policy", length: 1...131_072)
        let key = try await authorizedKey(p, principal, "PutKeyPolicy")
        try await checkPolicy(policy, for: keys.keyARN(key), principal, bypass: try p.bool("BypassPolicyLockoutSafetyCheck") ?? false)
        try await keys.putPolicy(key, policy)
        return [:]
    }

    func tagResource(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        guard let tags = try p.tags() else { throw p.missing("Tags") }
        let key = try await keys.resolve(try p.keyID(), account: principal.accountID, allowAlias: false)
        try await keys.authorize(principal, action: "kms:TagResource", key: key,
                                 requestTags: Dictionary(tags.map { ($0.key, $0.value) }, uniquingKeysWith: { _, b in b }))
        if key.state == KeyService.KeyState.pendingDeletion.rawValue { throw KMSError.pendingDeletion(keys.keyARN(key)) }
        try await keys.tag(key, tags)
        return [:]
    }

    func untagResource(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let tagKeys = try p.requiredStringList("TagKeys")
        let key = try await authorizedKey(p, principal, "UntagResource")
        if key.state == KeyService.KeyState.pendingDeletion.rawValue { throw KMSError.pendingDeletion(keys.keyARN(key)) }
        try await keys.untag(key, tagKeys)
        return [:]
    }

    func listResourceTags(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let (limit, after) = try p.page(maxLimit: 50, defaultLimit: 50)
        let key = try await authorizedKey(p, principal, "ListResourceTags")
        let sorted = key.tags.sorted { $0.key < $1.key }.filter { after == nil || $0.key > after! }
        let page = Array(sorted.prefix(limit))
        var o: [String: JSONValue] = ["Tags": Self.tagsJSON(page), "Truncated": .bool(sorted.count > limit)]
        if sorted.count > limit, let last = page.last { o["NextMarker"] = .string(KMSParams.marker(last.key)) }
        return .object(o)
    }

    // MARK: aliases

    func createAlias(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let name = try p.requiredString("AliasName", length: 1...256)
        try KeyService.checkAliasName(name)
        let key = try await keys.resolve(try p.keyID("TargetKeyId"), account: principal.accountID, allowAlias: false)
        try await keys.authorize(principal, action: "kms:CreateAlias", resource: keys.aliasARN(account: principal.accountID, name: name))
        try await keys.authorize(principal, action: "kms:CreateAlias", key: key)
        try await keys.createAlias(name, account: principal.accountID, target: key)
        return [:]
    }

    /// `AliasName` of an existing alias, authorized for `action` on the alias ARN and on the key it
    /// points at now.
    func existingAlias(_ p: KMSParams, _ principal: Principal, _ action: String) async throws -> String {
        let name = try p.requiredString("AliasName", length: 1...256)
        try KeyService.checkAliasName(name)
        let account = principal.accountID
        guard let alias = try await keys.alias(name, account: account) else {
            throw KMSError.aliasNotFound(keys.aliasARN(account: account, name: name))
        }
        try await keys.authorize(principal, action: action, resource: keys.aliasARN(account: account, name: name))
        if let current = try? await keys.resolve(alias.targetKeyID, account: account, allowAlias: false) {
            try await keys.authorize(principal, action: action, key: current)
        }
        return name
    }

    func updateAlias(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let name = try await existingAlias(p, principal, "kms:UpdateAlias")
        let target = try await keys.resolve(try p.keyID("TargetKeyId"), account: principal.accountID, allowAlias: false)
        try await keys.authorize(principal, action: "kms:UpdateAlias", key: target)
        try await keys.updateAlias(name, account: principal.accountID, target: target)
        return [:]
    }

    func deleteAlias(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let name = try await existingAlias(p, principal, "kms:DeleteAlias")
        try await keys.deleteAlias(name, account: principal.accountID)
        return [:]
    }

    func listAliases(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        // KMS: 1 to 100 aliases a page, 50 by default.
        let (limit, after) = try p.page(maxLimit: 100, defaultLimit: 50)
        let account = principal.accountID
        var keyID: String?
        if let id = try p.string("KeyId", length: 1...2048) {
            let key = try await keys.resolve(id, account: account, allowAlias: false)
            try await keys.authorize(principal, action: "kms:ListAliases", key: key)
            keyID = key.keyID
        } else {
            try await keys.authorize(principal, action: "kms:ListAliases")
        }
        let all = try await keys.aliases(account: account, keyID: keyID).filter { after == nil || $0.name > after! }
        let page = all.prefix(limit)
        var o: [String: JSONValue] = [
            "Aliases": .array(page.map { a in
                ["AliasName": .string(a.name), "AliasArn": .string(keys.aliasARN(account: account, name: a.name)),
                 "TargetKeyId": .string(a.targetKeyID), "CreationDate": .double(a.createdAt), "LastUpdatedDate": .double(a.updatedAt)]
            }),
            "Truncated": .bool(all.count > limit),
        ]
        if all.count > limit, let last = page.last { o["NextMarker"] = .string(KMSParams.marker(last.name)) }
        return .object(o)
    }

    // MARK: cryptographic operations

    /// The encryption context member: at most 8 KiB of keys and values together.
    static func encryptionContext(_ p: KMSParams, _ name: String = "EncryptionContext") throws(KMSError) -> [String: String] {
        let context = try p.stringMap(name) ?? [:]
        let size = context.reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        guard size <= 8192 else { throw .validation("The encryption context is larger than 8192 bytes.") }
        return context
    }

    /// `DryRun`: the request was authorized and the key is usable; nothing is done.
    static func checkDryRun(_ p: KMSParams) throws(KMSError) {
        if try p.bool("DryRun") == true { throw .dryRun }
    }

    static func refuseRecipient(_ p: KMSParams) throws(KMSError) {
        if p.members["Recipient"].map({ $0 != .null }) == true {
            throw .validation("Recipient (attested Nitro Enclaves requests) is not supported.")
        }
    }

    func encrypt(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let plaintext = try p.requiredBlob("Plaintext", length: 1...4096)
        let context = try Self.encryptionContext(p)
        try p.checkGrantTokens()
        try Self.checkEncryptionAlgorithm(p)
        let key = try await authorizedKey(p, principal, "Encrypt", allowAlias: true, context: context)
        try keys.requireUsable(key)
        try Self.checkDryRun(p)
        let blob = try await keys.encrypt(plaintext, with: key, context: context)
        return ["CiphertextBlob": .string(Data(blob).base64EncodedString()), "KeyId": .string(keys.keyARN(key)),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"]
    }

    /// The key of a ciphertext, checked against an optional `KeyId` and authorized for `action`.
    func ciphertextKey(_ ciphertext: [UInt8], expected: String?, _ principal: Principal, _ action: String,
                       context: [String: String]) async throws -> (KMSKeyRecord, CiphertextBlob) {
        let (key, blob) = try await keys.key(of: ciphertext, region: keys.requestRegion)
        if let expected {
            let named = try await keys.resolve(expected, account: principal.accountID)
            guard named.keyID == key.keyID else { throw KMSError.incorrectKey(keys.keyARN(named)) }
        }
        try await keys.authorize(principal, action: action, key: key, context: context)
        return (key, blob)
    }

    func decrypt(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let ciphertext = try p.requiredBlob("CiphertextBlob", length: 1...6144)
        let context = try Self.encryptionContext(p)
        try p.checkGrantTokens()
        try Self.checkEncryptionAlgorithm(p)
        try Self.refuseRecipient(p)
        let (key, blob) = try await ciphertextKey(ciphertext, expected: try p.string("KeyId", length: 1...2048), principal,
                                                  "kms:Decrypt", context: context)
        try keys.requireUsable(key)
        try Self.checkDryRun(p)
        let plaintext = try await keys.decrypt(blob, with: key, context: context)
        return ["KeyId": .string(keys.keyARN(key)), "Plaintext": .string(Data(plaintext).base64EncodedString()),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "KeyMaterialId": .string(KeyService.materialID(keyID: key.keyID, version: blob.materialVersion))]
    }

    func generateDataKey(_ p: KMSParams, _ principal: Principal, plaintext withPlaintext: Bool) async throws -> JSONValue {
        let spec = try p.string("KeySpec")
        let count = try p.int("NumberOfBytes", range: 1...1024)
        let context = try Self.encryptionContext(p)
        try p.checkGrantTokens()
        if withPlaintext { try Self.refuseRecipient(p) }
        let bytes: Int
        switch (spec, count) {
        case ("AES_256"?, nil): bytes = 32
        case ("AES_128"?, nil): bytes = 16
        case (let s?, nil): throw KMSError.constraint(s, "keySpec", "Member must satisfy enum value set: [AES_256, AES_128]")
        case (nil, let n?): bytes = n
        case (nil, nil): throw KMSError.validation("Please specify either number of bytes or key spec.")
        case (_?, _?): throw KMSError.validation("Please specify either number of bytes or key spec, not both.")
        }
        let key = try await authorizedKey(p, principal, withPlaintext ? "GenerateDataKey" : "GenerateDataKeyWithoutPlaintext",
                                          allowAlias: true, context: context)
        try keys.requireUsable(key)
        try Self.checkDryRun(p)
        let dataKey = try await keys.generateDataKey(with: key, context: context, byteCount: bytes)
        var o: [String: JSONValue] = ["CiphertextBlob": .string(Data(dataKey.ciphertext).base64EncodedString()),
                                      "KeyId": .string(dataKey.keyARN),
                                      "KeyMaterialId": .string(KeyService.materialID(keyID: key.keyID, version: key.currentVersion))]
        if withPlaintext { o["Plaintext"] = .string(Data(dataKey.plaintext).base64EncodedString()) }
        return .object(o)
    }

    func reEncrypt(_ p: KMSParams, _ principal: Principal) async throws -> JSONValue {
        let ciphertext = try p.requiredBlob("CiphertextBlob", length: 1...6144)
        let sourceContext = try Self.encryptionContext(p, "SourceEncryptionContext")
        let destinationContext = try Self.encryptionContext(p, "DestinationEncryptionContext")
        try p.checkGrantTokens()
        try Self.checkEncryptionAlgorithm(p, "SourceEncryptionAlgorithm")
        try Self.checkEncryptionAlgorithm(p, "DestinationEncryptionAlgorithm")
        let (source, blob) = try await ciphertextKey(ciphertext, expected: try p.string("SourceKeyId", length: 1...2048), principal,
                                                     "kms:ReEncryptFrom", context: sourceContext)
        let destination = try await authorizedKey(p, principal, "ReEncryptTo", member: "DestinationKeyId", allowAlias: true,
                                                  context: destinationContext)
        try keys.requireUsable(source)
        try keys.requireUsable(destination)
        try Self.checkDryRun(p)
        let plaintext = try await keys.decrypt(blob, with: source, context: sourceContext)
        let out = try await keys.encrypt(plaintext, with: destination, context: destinationContext)
        return ["CiphertextBlob": .string(Data(out).base64EncodedString()), "SourceKeyId": .string(keys.keyARN(source)),
                "KeyId": .string(keys.keyARN(destination)), "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "SourceKeyMaterialId": .string(KeyService.materialID(keyID: source.keyID, version: blob.materialVersion)),
                "DestinationKeyMaterialId": .string(KeyService.materialID(keyID: destination.keyID, version: destination.currentVersion))]
    }
}
