import BerthCore

/// Wraps and unwraps the data keys of encrypted blobs for key domains. A key domain is `AES256` (the
/// registry-managed key) or a KMS key ARN; `BerthApp` implements this over `KeyService`, so the registry
/// never imports KMS. Key problems are thrown as `BerthError.kms` (ECR's `KmsException`).
public protocol BlobKeyring: Sendable {
    /// Changes whenever a key's usability may have changed (enabled, disabled, deletion scheduled,
    /// cancelled or completed): data keys unwrapped before are not used after it changes.
    var generation: UInt64 { get }
    /// The key domain a repository's encryption configuration names, for an account's registry in a
    /// region (nil: the home region, as `RegistryID.region`): `AES256`, or the ARN of the KMS key `kmsKey`
    /// resolves to in that region (that region's `alias/aws/ecr`, created on first use, when it is nil).
    /// Refuses a key that does not exist there, is disabled or is pending deletion.
    func domain(encryptionType: String, kmsKey: String?, account: String, region: String?) async throws -> String
    /// A fresh data key and the same wrapped by `domain`'s key, bound to `context`.
    func newDataKey(domain: String, context: [String: String]) async throws -> (plaintext: [UInt8], wrapped: [UInt8])
    /// `dataKey` wrapped by `domain`'s key, bound to `context`.
    func wrap(_ dataKey: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8]
    /// The data key `wrapped` holds, when `domain`'s key made it with the same `context` and is usable.
    func unwrap(_ wrapped: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8]
}

/// The key domain a repository's encryption configuration names, before any alias is resolved.
struct BlobKeyDomain: Sendable, Hashable {
    var account: String
    /// The repository's region; nil for the home region (see `RegistryID.region`).
    var region: String?
    var encryptionType: String
    var kmsKey: String?

    /// The cache key of the domain as configured (before any alias is resolved).
    var label: String { "\(account)|\(region ?? "")|\(encryptionType)|\(kmsKey ?? "")" }
    var isAES256: Bool { encryptionType == "AES256" }
}
