/// A KMS key as stored: its metadata, policy, tags and rotation settings. The key material is kept
/// apart (``KMSKeyMaterialRecord``), one row per version, sealed.
public struct KMSKeyRecord: Sendable, Equatable {
    /// The key's id, a lowercase UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`).
    public var keyID: String
    public var accountID: String
    public var description: String
    /// `CUSTOMER`, or `AWS` for an AWS-managed-style key (`alias/aws/ecr`).
    public var keyManager: String
    /// `Enabled`, `Disabled` or `PendingDeletion` (KMS's `KeyState`).
    public var state: String
    public var createdAt: Double
    /// When a scheduled deletion completes.
    public var deletionDate: Double?
    public var pendingWindowDays: Int?
    /// The key policy document (the only policy name KMS knows is `default`).
    public var policy: String
    public var tags: [ResourceTag]
    public var rotationEnabled: Bool
    public var rotationPeriodDays: Int?
    /// When automatic rotation next makes a new material version.
    public var nextRotationAt: Double?
    /// The material version new ciphertexts are made with.
    public var currentVersion: Int
    /// How many on-demand rotations were made (KMS allows 10 per key).
    public var onDemandRotations: Int

    public init(keyID: String, accountID: String, description: String = "", keyManager: String = "CUSTOMER",
                state: String = "Enabled", createdAt: Double, deletionDate: Double? = nil, pendingWindowDays: Int? = nil,
                policy: String, tags: [ResourceTag] = [], rotationEnabled: Bool = false, rotationPeriodDays: Int? = nil,
                nextRotationAt: Double? = nil, currentVersion: Int = 1, onDemandRotations: Int = 0) {
        self.keyID = keyID
        self.accountID = accountID
        self.description = description
        self.keyManager = keyManager
        self.state = state
        self.createdAt = createdAt
        self.deletionDate = deletionDate
        self.pendingWindowDays = pendingWindowDays
        self.policy = policy
        self.tags = tags
        self.rotationEnabled = rotationEnabled
        self.rotationPeriodDays = rotationPeriodDays
        self.nextRotationAt = nextRotationAt
        self.currentVersion = currentVersion
        self.onDemandRotations = onDemandRotations
    }
}

/// One version of a key's material, sealed under the registry's master key.
public struct KMSKeyMaterialRecord: Sendable, Equatable {
    public var keyID: String
    /// 1 for the material made with the key; each rotation adds the next.
    public var version: Int
    /// The 32 bytes of AES-256 key material, sealed (never stored in the clear).
    public var sealedMaterial: [UInt8]
    public var createdAt: Double
    /// `AUTOMATIC` or `ON_DEMAND` for material made by a rotation; nil for the first.
    public var rotationType: String?

    public init(keyID: String, version: Int, sealedMaterial: [UInt8], createdAt: Double, rotationType: String? = nil) {
        self.keyID = keyID
        self.version = version
        self.sealedMaterial = sealedMaterial
        self.createdAt = createdAt
        self.rotationType = rotationType
    }
}

/// An alias (`alias/<name>`) of an account, pointing at one of its keys.
public struct KMSAliasRecord: Sendable, Equatable {
    public var accountID: String
    /// The full name, with its `alias/` prefix.
    public var name: String
    public var targetKeyID: String
    public var createdAt: Double
    public var updatedAt: Double

    public init(accountID: String, name: String, targetKeyID: String, createdAt: Double, updatedAt: Double) {
        self.accountID = accountID
        self.name = name
        self.targetKeyID = targetKeyID
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// The outcome of an alias write that checks its target in the same transaction.
public enum KMSAliasWrite: Sendable, Equatable {
    case done
    /// Creating: an alias of that name exists. Updating or deleting: it does not.
    case aliasConflict
    /// The target key is not a key of the alias's account.
    case keyNotFound
}
