import BerthCore
import BerthStorage
import BerthSupport
import Crypto
import Foundation
import Logging
import Synchronization

/// The KMS domain service: symmetric keys (`SYMMETRIC_DEFAULT`, AES-256-GCM), their material versions,
/// aliases, states, rotation and key policies, and the cryptographic operations. Both the KMS API door
/// (``KMSService``) and, for envelope encryption, the registry call it; it alone reads and writes the
/// key tables.
///
/// Key material is made here, stored only sealed (``KeyMaterialSealer``, under the master key) and
/// leaves this type only as the plaintext of a data key or a decryption.
///
/// Internal callers (the registry acting for ECR) use the operations without ``authorize(_:action:key:context:viaService:)``,
/// but every cryptographic operation still checks the key's state: a disabled key refuses with
/// `DisabledException`, a key pending deletion with `KMSInvalidStateException`, and a key whose deletion
/// completed no longer exists (its data is unrecoverable).
///
/// Keys and aliases are regional, as in AWS: each belongs to the account × region of the request that
/// created it (``RequestRegion``, bound by ``KMSService`` from the SigV4 scope), and a request sees only
/// its region's keys. They are stored under the owner text a private registry uses (`RegistryID`): the
/// bare account for the home region — so keys made before regions keep their ARNs — and
/// `<account>@<region>` for another region.
public final class KeyService: Sendable {
    /// The home region (the `region` setting): keys stored under the bare account belong to it.
    public let region: String
    /// The regions requests may address (for binding ``RequestRegion``).
    public let regions: RegionSet
    let store: any KeyMetadata
    let sealer: KeyMaterialSealer
    let authorizer: any Authorizer
    let clock: any WallClock
    let logger: Logger
    /// Unsealed material by `keyID#version`. A key's record is read from the store on every use, so a
    /// deleted key is refused before this cache is consulted.
    let materials = BoundedCache<String, [UInt8]>(capacity: 4096)
    /// Key records by id, for at most `recordSeconds`, and only while no key write of this process
    /// happened since they were read (`writes`): a state change made here applies to the next request;
    /// one made by another process sharing the database within `recordSeconds`.
    let records: BoundedCache<String, KMSKeyRecord>
    let writes = Atomic<UInt64>(0)
    public static let recordSeconds = 1.0
    /// Advances with every key write of this process (state, deletion, rotation): what callers caching
    /// the result of a cryptographic operation key their entries by.
    public var generation: UInt64 { writes.load(ordering: .sequentiallyConsistent) }

    /// `ScheduleKeyDeletion`'s waiting period: 7 to 30 days, 30 by default.
    public static let pendingWindowDays = 7...30
    public static let defaultPendingWindowDays = 30
    /// Automatic rotation period: 90 to 2560 days, 365 by default.
    public static let rotationPeriodDays = 90...2560
    public static let defaultRotationPeriodDays = 365
    /// On-demand rotations allowed per key (as in AWS KMS).
    public static let maxOnDemandRotations = 10
    static let day = 86_400.0

    public init(store: any KeyMetadata, masterKey: SymmetricKey, region: String, regions: RegionSet? = nil, authorizer: any Authorizer,
                clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "berth.kms")) {
        self.store = store
        self.sealer = KeyMaterialSealer(masterKey: masterKey)
        self.region = region
        self.regions = regions ?? .single(region)
        self.authorizer = authorizer
        self.clock = clock
        self.logger = logger
        records = BoundedCache(capacity: 10_000, timeToLive: Self.recordSeconds, clock: clock)
    }

    /// Every key write goes through here: cached records filled before it are no longer used.
    func writing<T>(_ body: () async throws -> T) async rethrows -> T {
        defer { writes.add(1, ordering: .sequentiallyConsistent) }
        writes.add(1, ordering: .sequentiallyConsistent)
        return try await body()
    }

    // MARK: regions and names

    /// The region the current request addresses (the home region outside a request).
    public var requestRegion: String { RequestRegion.name(or: region) }

    /// The owner text keys and aliases of `account` in `region` are stored under (nil: the request's
    /// region): the account for the home region, else `<account>@<region>`, as `RegistryID` stores it.
    public func owner(_ account: String, region: String? = nil) -> String {
        let r = region ?? requestRegion
        return RegistryID.private(account, region: r == self.region ? nil : r).storedValue
    }

    /// The account (12 digits) a key belongs to.
    public func account(of key: KMSKeyRecord) -> String { RegistryID(storedValue: key.accountID).account }
    /// The region a key belongs to.
    public func region(of key: KMSKeyRecord) -> String { RegistryID(storedValue: key.accountID).region ?? region }

    public func keyARN(_ key: KMSKeyRecord) -> String { keyARN(account: account(of: key), keyID: key.keyID, region: region(of: key)) }
    /// A key ARN of `account` in `region` (nil: the request's region).
    public func keyARN(account: String, keyID: String, region: String? = nil) -> String {
        ARN(service: "kms", region: region ?? requestRegion, account: account, resource: "key/\(keyID)").description
    }
    /// `KeyMaterialId` of a material version: 64 hex digits naming it (a SHA-256 of the key id and
    /// version; it reveals nothing of the material).
    public static func materialID(keyID: String, version: Int) -> String {
        SHA256.hash(data: Array("berth kms material \(keyID)#\(version)".utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// An alias ARN of `account` in `region` (nil: the request's region).
    public func aliasARN(account: String, name: String, region: String? = nil) -> String {
        ARN(service: "kms", region: region ?? requestRegion, account: account, resource: name).description
    }

    /// What a `KeyId` parameter names.
    enum KeyReference: Equatable {
        case key(id: String, account: String)
        case alias(name: String, account: String)
    }

    /// Reads a key id, key ARN, alias name or alias ARN; `account` is the caller's, for bare ids and names.
    /// An ARN naming a region other than `region` names no key (as in AWS, where keys are regional).
    func reference(_ identifier: String, account: String, region: String) throws(KMSError) -> KeyReference {
        if identifier.hasPrefix("alias/") { return .alias(name: identifier, account: account) }
        if identifier.hasPrefix("arn:") {
            guard let arn = ARN(identifier), arn.service == "kms", arn.region == region, AccountID.isValid(arn.account) else {
                throw .notFound("Invalid arn \(identifier)")
            }
            if arn.resource.hasPrefix("alias/") { return .alias(name: arn.resource, account: arn.account) }
            if arn.resource.hasPrefix("key/"), let id = Self.keyID(String(arn.resource.dropFirst(4))) {
                return .key(id: id, account: arn.account)
            }
            throw .notFound("Invalid arn \(identifier)")
        }
        guard let id = Self.keyID(identifier) else { throw .notFound("Invalid keyId '\(identifier)'") }
        return .key(id: id, account: account)
    }

    /// A key id in its canonical lowercase form, or nil when `text` is not a UUID.
    static func keyID(_ text: String) -> String? {
        guard text.utf8.count == 36, let u = UUID(uuidString: text) else { return nil }
        return u.uuidString.lowercased()
    }

    /// The key an identifier names (key id, key ARN, alias name or alias ARN; aliases only when
    /// `allowAlias`), as `NotFoundException` when there is none. A key whose scheduled deletion is due
    /// is deleted here, so it is never used after its deletion date. Only keys of `region` (nil: the
    /// request's region) are found.
    public func resolve(_ identifier: String, account: String, allowAlias: Bool = true, region: String? = nil) async throws -> KMSKeyRecord {
        let r = region ?? requestRegion
        switch try reference(identifier, account: account, region: r) {
        case let .key(id, account):
            return try await load(id, account: owner(account, region: r), notFound: keyARN(account: account, keyID: id, region: r))
        case let .alias(name, account):
            guard allowAlias else { throw KMSError.notFound("Invalid keyId '\(identifier)': an alias is not allowed here") }
            let arn = aliasARN(account: account, name: name, region: r)
            guard let alias = try await store.kmsAlias(account: owner(account, region: r), name: name) else {
                throw KMSError.aliasNotFound(arn)
            }
            return try await load(alias.targetKeyID, account: owner(account, region: r), notFound: arn)
        }
    }

    /// The key with this id of `account` (an owner text, see ``owner(_:region:)``), after completing its deletion if that is due.
    func load(_ keyID: String, account: String?, notFound: String) async throws -> KMSKeyRecord {
        let generation = writes.load(ordering: .sequentiallyConsistent)
        var found = records.value(forKey: keyID, generation: generation)
        if found == nil {
            found = try await store.kmsKey(keyID)
            if let found { records.set(found, forKey: keyID, generation: generation) }
        }
        guard let key = found, account == nil || key.accountID == account else {
            throw KMSError.keyNotFound(notFound)
        }
        if try await completeDeletionIfDue(key) { throw KMSError.keyNotFound(notFound) }
        return key
    }

    /// Deletes a key whose deletion date has passed; true when it is gone.
    func completeDeletionIfDue(_ key: KMSKeyRecord) async throws -> Bool {
        let now = clock.now()
        guard key.state == KeyState.pendingDeletion.rawValue, let date = key.deletionDate, date <= now else { return false }
        if try await writing({ try await store.deleteKMSKey(key.keyID, dueBy: now) }) {
            logger.notice("KMS key deleted", metadata: ["key": "\(keyARN(key))"])
        }
        materials.removeAll { $0.hasPrefix(key.keyID) }
        return true
    }

    // MARK: state

    /// A key's state, as KMS names it.
    public enum KeyState: String, Sendable {
        case enabled = "Enabled"
        case disabled = "Disabled"
        case pendingDeletion = "PendingDeletion"
    }

    /// The state of the key an identifier names; `NotFoundException` when there is none (or its
    /// deletion completed).
    public func keyState(_ identifier: String, account: String) async throws -> KeyState {
        let key = try await resolve(identifier, account: account)
        return KeyState(rawValue: key.state) ?? .disabled
    }

    /// Refuses cryptographic use of a key that is not enabled.
    public func requireUsable(_ key: KMSKeyRecord) throws(KMSError) {
        switch KeyState(rawValue: key.state) {
        case .enabled?: return
        case .pendingDeletion?: throw .pendingDeletion(keyARN(key))
        default: throw .disabled(keyARN(key))
        }
    }

    /// Refuses changes that KMS allows only on customer managed keys.
    func requireCustomerManaged(_ key: KMSKeyRecord, _ what: String) throws(KMSError) {
        guard key.keyManager == "CUSTOMER" else { throw .unsupported("\(what) is not supported on AWS managed key \(keyARN(key))") }
    }

    // MARK: authorization

    /// Condition keys of a KMS request: `kms:CallerAccount`, `kms:ViaService` (internal callers acting
    /// for a service), `kms:EncryptionContext:<key>`, `kms:EncryptionContextKeys`, and the key's tags
    /// as `aws:ResourceTag/<key>`.
    public static func conditions(caller: Principal, encryptionContext: [String: String]? = nil, viaService: String? = nil,
                                  requestTags: [String: String]? = nil, resourceTags: [ResourceTag] = []) -> AuthorizationContext {
        var values = ["kms:CallerAccount": caller.accountID]
        for t in resourceTags { values["aws:ResourceTag/\(t.key)"] = t.value }
        if let viaService { values["kms:ViaService"] = viaService }
        var sets: [String: [String]] = [:]
        if let encryptionContext {
            for (k, v) in encryptionContext { values["kms:EncryptionContext:\(k)"] = v }
            sets["kms:EncryptionContextKeys"] = encryptionContext.keys.sorted()
        }
        return AuthorizationContext(requestTags: requestTags, values: values, valueSets: sets)
    }

    /// Authorizes `action` (`kms:Encrypt`, …) on a key through its key policy (identity policies count
    /// where the key policy delegates to the account). `viaService` is the service endpoint an internal
    /// caller acts through (`ecr.<region>.amazonaws.com`): `kms:ViaService`.
    public func authorize(_ principal: Principal, action: String, key: KMSKeyRecord, context: [String: String]? = nil,
                          viaService: String? = nil, requestTags: [String: String]? = nil) async throws {
        try await authorizer.authorize(principal, action: action, resource: keyARN(key), keyPolicy: key.policy,
                                       context: Self.conditions(caller: principal, encryptionContext: context,
                                                                viaService: viaService, requestTags: requestTags,
                                                                resourceTags: key.tags))
    }

    /// Authorizes an action that has no key to consult (`kms:CreateKey`, `kms:ListKeys`, alias ARNs):
    /// identity policies alone decide.
    public func authorize(_ principal: Principal, action: String, resource: String = "*", requestTags: [String: String]? = nil) async throws {
        try await authorizer.authorize(principal, action: action, resource: resource,
                                       context: Self.conditions(caller: principal, requestTags: requestTags))
    }

    // MARK: keys

    /// Creates a symmetric encryption key with fresh material in `region` (nil: the request's region).
    /// `policy` nil writes the default key policy.
    public func createKey(account: String, description: String = "", policy: String? = nil, tags: [ResourceTag] = [],
                          keyManager: String = "CUSTOMER", rotationPeriodDays: Int? = nil, region: String? = nil) async throws -> KMSKeyRecord {
        let now = clock.now()
        let id = UUID().uuidString.lowercased()
        var key = KMSKeyRecord(keyID: id, accountID: owner(account, region: region), description: description, keyManager: keyManager,
                               createdAt: now, policy: policy ?? KeyPolicies.defaultPolicy(account: account), tags: tags)
        if let rotationPeriodDays {
            key.rotationEnabled = true
            key.rotationPeriodDays = rotationPeriodDays
            key.nextRotationAt = now + Double(rotationPeriodDays) * Self.day
        }
        let material = KMSKeyMaterialRecord(keyID: id, version: 1,
                                            sealedMaterial: try sealer.seal(KeyMaterialSealer.newMaterial(), keyID: id, version: 1),
                                            createdAt: now)
        guard try await writing({ try await store.createKMSKey(key, material: material) }) else { throw KMSError.internalError }
        return key
    }

    /// Applies a change to a key in one store transaction; the key must still exist.
    func update(_ key: KMSKeyRecord, adding material: KMSKeyMaterialRecord? = nil,
                _ change: @escaping @Sendable (inout KMSKeyRecord) throws -> Void) async throws -> KMSKeyRecord {
        guard let updated = try await writing({ try await store.updateKMSKey(key.keyID, addingMaterial: material, change) }) else {
            throw KMSError.keyNotFound(keyARN(key))
        }
        return updated
    }

    public func setEnabled(_ key: KMSKeyRecord, _ enabled: Bool) async throws {
        if !enabled { try requireCustomerManaged(key, "DisableKey") }
        let arn = keyARN(key)
        _ = try await update(key) { k in
            guard k.state != KeyState.pendingDeletion.rawValue else { throw KMSError.pendingDeletion(arn) }
            k.state = enabled ? KeyState.enabled.rawValue : KeyState.disabled.rawValue
        }
    }

    /// Puts the key in `PendingDeletion` for `days` (7–30); it is deleted, with its material and
    /// aliases, once the date passes.
    public func scheduleDeletion(_ key: KMSKeyRecord, days: Int = KeyService.defaultPendingWindowDays) async throws -> KMSKeyRecord {
        try requireCustomerManaged(key, "ScheduleKeyDeletion")
        guard Self.pendingWindowDays.contains(days) else {
            throw KMSError.constraint("\(days)", "pendingWindowInDays",
                                      "Member must have value \(days < 7 ? "greater than or equal to 7" : "less than or equal to 30")")
        }
        let arn = keyARN(key)
        let date = clock.now() + Double(days) * Self.day
        return try await update(key) { k in
            guard k.state != KeyState.pendingDeletion.rawValue else { throw KMSError.pendingDeletion(arn) }
            k.state = KeyState.pendingDeletion.rawValue
            k.deletionDate = date
            k.pendingWindowDays = days
        }
    }

    /// Takes a key out of `PendingDeletion`; it is then `Disabled`, as in AWS.
    public func cancelDeletion(_ key: KMSKeyRecord) async throws {
        let arn = keyARN(key)
        _ = try await update(key) { k in
            guard k.state == KeyState.pendingDeletion.rawValue else { throw KMSError.invalidState("\(arn) is not pending deletion.") }
            k.state = KeyState.disabled.rawValue
            k.deletionDate = nil
            k.pendingWindowDays = nil
        }
    }

    /// Turns automatic rotation on (every `periodDays`) or off.
    public func setRotation(_ key: KMSKeyRecord, enabled: Bool, periodDays: Int? = nil) async throws {
        try requireCustomerManaged(key, enabled ? "EnableKeyRotation" : "DisableKeyRotation")
        try requireUsable(key)
        let now = clock.now()
        let arn = keyARN(key)
        _ = try await update(key) { k in
            switch KeyState(rawValue: k.state) {
            case .pendingDeletion?: throw KMSError.pendingDeletion(arn)
            case .disabled?: throw KMSError.disabled(arn)
            default: break
            }
            k.rotationEnabled = enabled
            if enabled {
                let days = periodDays ?? k.rotationPeriodDays ?? Self.defaultRotationPeriodDays
                k.rotationPeriodDays = days
                k.nextRotationAt = now + Double(days) * Self.day
            } else {
                k.nextRotationAt = nil
            }
        }
    }

    /// Makes a new material version current; older versions keep decrypting what they encrypted.
    /// `onDemand` counts against the key's 10 on-demand rotations.
    @discardableResult
    public func rotate(_ key: KMSKeyRecord, onDemand: Bool) async throws -> KMSKeyRecord {
        if onDemand { try requireCustomerManaged(key, "RotateKeyOnDemand") }
        try requireUsable(key)
        let now = clock.now()
        let version = key.currentVersion + 1
        let material = KMSKeyMaterialRecord(
            keyID: key.keyID, version: version,
            sealedMaterial: try sealer.seal(KeyMaterialSealer.newMaterial(), keyID: key.keyID, version: version),
            createdAt: now, rotationType: onDemand ? "ON_DEMAND" : "AUTOMATIC")
        let arn = keyARN(key)
        let limit = Self.maxOnDemandRotations
        return try await update(key, adding: material) { k in
            guard k.currentVersion == version - 1 else {
                throw KMSError("ConflictException", "A rotation of \(arn) is already in progress.")
            }
            switch KeyState(rawValue: k.state) {
            case .pendingDeletion?: throw KMSError.pendingDeletion(arn)
            case .disabled?: throw KMSError.disabled(arn)
            default: break
            }
            if onDemand {
                guard k.onDemandRotations < limit else {
                    throw KMSError.limitExceeded("The on-demand rotations of \(arn) have reached the limit of \(limit).")
                }
                k.onDemandRotations += 1
            } else if let days = k.rotationPeriodDays {
                k.nextRotationAt = now + Double(days) * Self.day
            }
            k.currentVersion = version
        }
    }

    /// The key's material versions, oldest first (the sealed bytes are not exposed).
    public func rotations(_ key: KMSKeyRecord) async throws -> [(version: Int, createdAt: Double, rotationType: String?)] {
        try await store.kmsKeyMaterials(key.keyID).map { ($0.version, $0.createdAt, $0.rotationType) }
    }

    public func putPolicy(_ key: KMSKeyRecord, _ policy: String) async throws {
        try requireCustomerManaged(key, "PutKeyPolicy")
        _ = try await update(key) { $0.policy = policy }
    }

    public func setDescription(_ key: KMSKeyRecord, _ description: String) async throws {
        _ = try await update(key) { $0.description = description }
    }

    /// Adds or replaces tags; at most 50 per key.
    public func tag(_ key: KMSKeyRecord, _ tags: [ResourceTag]) async throws {
        _ = try await update(key) { k in
            for t in tags {
                if let i = k.tags.firstIndex(where: { $0.key == t.key }) { k.tags[i] = t } else { k.tags.append(t) }
            }
            guard k.tags.count <= 50 else { throw KMSError.limitExceeded("A KMS key can have at most 50 tags.") }
        }
    }

    public func untag(_ key: KMSKeyRecord, _ keys: [String]) async throws {
        _ = try await update(key) { k in k.tags.removeAll { keys.contains($0.key) } }
    }

    /// An account's keys in the request's region, in key-id order after `last`, at most `limit`.
    public func keys(account: String, after last: String?, limit: Int) async throws -> [KMSKeyRecord] {
        try await store.kmsKeys(account: owner(account), after: last, limit: limit)
    }

    // MARK: aliases

    /// Checks an alias name: `alias/` then letters, digits, `/`, `_`, `-`; `alias/aws/` is reserved for
    /// AWS managed keys unless `reserved` is allowed.
    public static func checkAliasName(_ name: String, reserved: Bool = false) throws(KMSError) {
        guard (1...256).contains(name.utf8.count),
              name.utf8.allSatisfy({ c in
                  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A)
                      || c == UInt8(ascii: ":") || c == UInt8(ascii: "/") || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
              }) else {
            throw .constraint(name, "aliasName", "Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$")
        }
        guard name.hasPrefix("alias/"), name.utf8.count > 6 else {
            throw .invalidAlias("Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
        }
        if !reserved, name.hasPrefix("alias/aws/") {
            throw .invalidAlias("Alias names that begin with alias/aws/ are reserved for AWS managed keys.")
        }
    }

    /// Aliases, like keys, belong to an account × region: `target` must be a key of the same account and
    /// region (nil: the request's region).
    public func createAlias(_ name: String, account: String, target: KMSKeyRecord, reserved: Bool = false, region: String? = nil) async throws {
        try Self.checkAliasName(name, reserved: reserved)
        let owner = owner(account, region: region)
        guard target.accountID == owner else { throw KMSError.keyNotFound(keyARN(target)) }
        if target.state == KeyState.pendingDeletion.rawValue { throw KMSError.pendingDeletion(keyARN(target)) }
        let now = clock.now()
        switch try await store.createKMSAlias(KMSAliasRecord(accountID: owner, name: name, targetKeyID: target.keyID,
                                                             createdAt: now, updatedAt: now)) {
        case .done: return
        case .aliasConflict:
            throw KMSError("AlreadyExistsException", "An alias with the name \(aliasARN(account: account, name: name, region: region)) already exists")
        case .keyNotFound: throw KMSError.keyNotFound(keyARN(target))
        }
    }

    public func updateAlias(_ name: String, account: String, target: KMSKeyRecord) async throws {
        guard target.accountID == owner(account) else { throw KMSError.keyNotFound(keyARN(target)) }
        if target.state == KeyState.pendingDeletion.rawValue { throw KMSError.pendingDeletion(keyARN(target)) }
        switch try await store.updateKMSAlias(account: owner(account), name: name, targetKeyID: target.keyID, at: clock.now()) {
        case .done: return
        case .aliasConflict: throw KMSError.aliasNotFound(aliasARN(account: account, name: name))
        case .keyNotFound: throw KMSError.keyNotFound(keyARN(target))
        }
    }

    public func deleteAlias(_ name: String, account: String) async throws {
        guard try await store.deleteKMSAlias(account: owner(account), name: name) else {
            throw KMSError.aliasNotFound(aliasARN(account: account, name: name))
        }
    }

    /// The alias `name` of `account` in the request's region.
    public func alias(_ name: String, account: String) async throws -> KMSAliasRecord? {
        try await store.kmsAlias(account: owner(account), name: name)
    }

    /// The aliases of `account` in the request's region (of one key when `keyID` is given).
    public func aliases(account: String, keyID: String? = nil) async throws -> [KMSAliasRecord] {
        try await store.kmsAliases(account: owner(account), keyID: keyID)
    }

    /// The account's AWS-managed-style key behind `alias` (`alias/aws/ecr`) in `region` (nil: the
    /// request's region), created on first use there with the policy AWS gives such keys (use through
    /// the service's endpoint in that region by principals of the account) and yearly automatic rotation.
    public func ensureAWSManagedKey(account: String, alias: String = "alias/aws/ecr", region: String? = nil) async throws -> KMSKeyRecord {
        let r = region ?? requestRegion
        if let existing = try await store.kmsAlias(account: owner(account, region: r), name: alias) {
            return try await load(existing.targetKeyID, account: owner(account, region: r),
                                  notFound: aliasARN(account: account, name: alias, region: r))
        }
        let service = String(alias.dropFirst("alias/aws/".count))
        let key = try await createKey(
            account: account, description: "Default key that protects my \(service.uppercased()) data when no other key is defined",
            policy: KeyPolicies.awsManagedPolicy(account: account, service: service, region: r), keyManager: "AWS",
            rotationPeriodDays: Self.defaultRotationPeriodDays, region: r)
        do {
            try await createAlias(alias, account: account, target: key, reserved: true, region: r)
            return key
        } catch let e as KMSError where e.type == "AlreadyExistsException" {
            // Another request made it first: drop ours, use theirs.
            let now = clock.now()
            _ = try await update(key) { k in
                k.state = KeyState.pendingDeletion.rawValue
                k.deletionDate = now
            }
            _ = try await writing { try await store.deleteKMSKey(key.keyID, dueBy: now) }
            return try await ensureAWSManagedKey(account: account, alias: alias, region: r)
        }
    }

    // MARK: cryptography

    /// The unsealed material of one version of a key.
    func material(_ keyID: String, version: Int) async throws -> [UInt8]? {
        let cacheKey = "\(keyID)#\(version)"
        if let hit = materials.value(forKey: cacheKey) { return hit }
        guard let record = try await store.kmsKeyMaterial(keyID, version: version) else { return nil }
        let material: [UInt8]
        do {
            material = try sealer.open(record.sealedMaterial, keyID: keyID, version: version)
        } catch {
            logger.error("KMS key material does not open with the master key", metadata: ["key": "\(keyID)", "version": "\(version)"])
            throw KMSError.internalError
        }
        materials.set(material, forKey: cacheKey)
        return material
    }

    /// Encrypts up to 4 KiB (or a data key) under the key's current material, bound to `context`.
    public func encrypt(_ plaintext: [UInt8], with key: KMSKeyRecord, context: [String: String]) async throws -> [UInt8] {
        try requireUsable(key)
        guard let material = try await material(key.keyID, version: key.currentVersion) else { throw KMSError.internalError }
        return try CiphertextBlob.seal(plaintext, keyID: key.keyID, materialVersion: key.currentVersion, material: material,
                                       context: context).bytes
    }

    /// The key a ciphertext blob was made with: `InvalidCiphertextException` when the blob is not one of
    /// ours or its key no longer exists (a forged key id cannot be told from a deleted key), or, when
    /// `region` is given, is a key of another region (which that region's KMS does not know).
    public func key(of ciphertext: [UInt8], region: String? = nil) async throws -> (KMSKeyRecord, CiphertextBlob) {
        guard let blob = CiphertextBlob(ciphertext) else { throw KMSError.invalidCiphertext }
        do {
            let key = try await load(blob.keyID, account: nil, notFound: blob.keyID)
            if let region, self.region(of: key) != region { throw KMSError.invalidCiphertext }
            return (key, blob)
        } catch let e as KMSError where e.type == "NotFoundException" {
            throw KMSError.invalidCiphertext
        }
    }

    /// Decrypts a blob made by ``encrypt(_:with:context:)`` with the same `context`.
    public func decrypt(_ blob: CiphertextBlob, with key: KMSKeyRecord, context: [String: String]) async throws -> [UInt8] {
        try requireUsable(key)
        guard blob.keyID == key.keyID, let material = try await material(key.keyID, version: blob.materialVersion) else {
            throw KMSError.invalidCiphertext
        }
        return try blob.open(material: material, context: context)
    }

    /// A data key: `byteCount` random bytes, and the same encrypted under a KMS key.
    public struct DataKey: Sendable {
        /// The key itself; keep it in memory only as long as needed.
        public let plaintext: [UInt8]
        /// The ciphertext blob to store next to the data (opens with ``KeyService/decryptDataKey(_:context:)``).
        public let ciphertext: [UInt8]
        public let keyARN: String
    }

    /// Generates a data key under `key` (which must be enabled), bound to `context`.
    public func generateDataKey(with key: KMSKeyRecord, context: [String: String], byteCount: Int = 32) async throws -> DataKey {
        guard (1...1024).contains(byteCount) else {
            throw KMSError.constraint("\(byteCount)", "numberOfBytes", "Member must have value between 1 and 1024")
        }
        let plaintext = SymmetricKey(size: SymmetricKeySize(bitCount: byteCount * 8)).withUnsafeBytes { Array($0) }
        return DataKey(plaintext: plaintext, ciphertext: try await encrypt(plaintext, with: key, context: context), keyARN: keyARN(key))
    }

    /// Generates a data key under the key `keyID` names (key id, key ARN, alias or alias ARN) of `account`:
    /// the registry's entry point for envelope encryption.
    public func generateDataKey(keyID: String, account: String, context: [String: String], byteCount: Int = 32) async throws -> DataKey {
        try await generateDataKey(with: resolve(keyID, account: account), context: context, byteCount: byteCount)
    }

    /// Opens a data key made by ``generateDataKey(keyID:account:context:byteCount:)`` with the same
    /// `context`. Throws `InvalidCiphertextException` for an altered blob, a wrong context or a deleted
    /// key, `DisabledException` or `KMSInvalidStateException` when its key is not enabled.
    public func decryptDataKey(_ ciphertext: [UInt8], context: [String: String]) async throws -> [UInt8] {
        let (key, blob) = try await key(of: ciphertext)
        return try await decrypt(blob, with: key, context: context)
    }

    // MARK: background work

    /// Completes the deletions and automatic rotations that are due; returns how many of each.
    @discardableResult
    public func runDueWork(limit: Int = 100) async throws -> (deleted: Int, rotated: Int) {
        var deleted = 0
        var rotated = 0
        for key in try await store.kmsKeysDue(at: clock.now(), limit: limit) {
            if try await completeDeletionIfDue(key) {
                deleted += 1
            } else if key.rotationEnabled, key.state == KeyState.enabled.rawValue {
                do {
                    try await rotate(key, onDemand: false)
                    rotated += 1
                } catch let e as KMSError {
                    logger.warning("automatic KMS key rotation skipped", metadata: ["key": "\(keyARN(key))", "error": "\(e.message)"])
                }
            }
        }
        return (deleted, rotated)
    }
}
