import BerthCore
import BerthKMS
import BerthRegistry
import BerthSupport
@preconcurrency import Crypto
import Foundation

/// The registry's blob keyring (docs/encryption.md) over `KeyService`: `AES256` data keys are wrapped by a
/// registry-managed key derived from the master key; `KMS` data keys by the repository's KMS key, with the
/// key's state checked on every wrap and unwrap.
public struct KeyServiceBlobKeyring: BlobKeyring {
    let keys: KeyService
    /// Wraps `AES256` data keys: HKDF-SHA256 of the master key, so it is never stored.
    let registryKey: SymmetricKey
    static let aes256 = "AES256"
    static let awsManagedAlias = "alias/aws/ecr"

    public init(keys: KeyService, masterKey: SymmetricKey) {
        self.keys = keys
        registryKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, info: Array("berth blob AES256 wrapping key v1".utf8),
                                            outputByteCount: 32)
    }

    public var generation: UInt64 { keys.generation }

    /// KMS errors as the registry reports them (ECR's `KmsException`).
    func kms<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as KMSError {
            if e.status >= 500 { throw BerthError.internalError("KMS: \(e.message)") }
            throw BerthError.kms(kmsError: e.type, message: e.message)
        }
    }

    /// Keys are regional: `kmsKey` is resolved among the keys of the repository's region (`region`, nil
    /// for the home region), whatever region the request that asks is in.
    public func domain(encryptionType: String, kmsKey: String?, account: String, region: String?) async throws -> String {
        if encryptionType == Self.aes256 { return Self.aes256 }
        let region = region ?? keys.region
        return try await kms {
            let key: KMSKeyRecord
            if kmsKey == nil || kmsKey == Self.awsManagedAlias
                || (kmsKey!.hasSuffix(":" + Self.awsManagedAlias) && ARN(kmsKey!)?.region == region) {
                key = try await keys.ensureAWSManagedKey(account: account, alias: Self.awsManagedAlias, region: region)
            } else {
                key = try await keys.resolve(kmsKey!, account: account, region: region)
            }
            try keys.requireUsable(key)
            return keys.keyARN(key)
        }
    }

    /// The key a KMS domain (a key ARN) names, in the region the ARN names.
    func key(_ domain: String) async throws -> KMSKeyRecord {
        let parts = domain.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard parts.count == 6 else { throw BerthError.kms(kmsError: "NotFoundException", message: "Key '\(domain)' does not exist") }
        return try await keys.resolve(domain, account: String(parts[4]), region: String(parts[3]))
    }

    static func aad(_ context: [String: String]) -> [UInt8] {
        Array(context.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "\n").utf8)
    }

    public func newDataKey(domain: String, context: [String: String]) async throws -> (plaintext: [UInt8], wrapped: [UInt8]) {
        if domain == Self.aes256 {
            let plaintext = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            return (plaintext, try await wrap(plaintext, domain: domain, context: context))
        }
        return try await kms {
            let dataKey = try await keys.generateDataKey(with: try await key(domain), context: context)
            return (dataKey.plaintext, dataKey.ciphertext)
        }
    }

    public func wrap(_ dataKey: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8] {
        if domain == Self.aes256 {
            return Array(try AES.GCM.seal(dataKey, using: registryKey, authenticating: Self.aad(context)).combined!)
        }
        return try await kms { try await keys.encrypt(dataKey, with: try await key(domain), context: context) }
    }

    public func unwrap(_ wrapped: [UInt8], domain: String, context: [String: String]) async throws -> [UInt8] {
        if domain == Self.aes256 {
            do {
                return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: wrapped), using: registryKey, authenticating: Self.aad(context)))
            } catch {
                throw BerthError.internalError("the AES256 data key of a blob does not open with this registry's master key")
            }
        }
        return try await kms {
            let (key, blob) = try await keys.key(of: wrapped)
            guard keys.keyARN(key) == domain else { throw KMSError.invalidCiphertext }
            return try await keys.decrypt(blob, with: key, context: context)
        }
    }
}
