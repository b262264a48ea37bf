import BerthCore
import BerthStorage
import BerthSupport
import Synchronization

/// A manifest as served to a client: the stored one, or its conversion into the format the client accepts.
public struct NegotiatedManifest: Sendable, Equatable {
    /// The stored manifest the answer comes from (its digest is the image's, for pull times).
    public let stored: ManifestRecord
    public let digest: Digest
    public let mediaType: String
    public let bytes: [UInt8]
    /// Whether the client accepts `mediaType`; when false the stored manifest is given as it is.
    public let acceptable: Bool

    /// Whether `bytes` are a conversion of the stored manifest.
    public var isConverted: Bool { digest != stored.digest }

    init(stored: ManifestRecord, acceptable: Bool) {
        self.stored = stored
        digest = stored.digest
        mediaType = stored.mediaType
        bytes = stored.bytes
        self.acceptable = acceptable
    }

    init(stored: ManifestRecord, converted: ManifestConversion.Converted) {
        self.stored = stored
        digest = converted.digest
        mediaType = converted.mediaType
        bytes = converted.bytes
        acceptable = true
    }
}

extension Registry {
    /// GET/HEAD /manifests/<reference> with content negotiation (ECR's image manifest conversion):
    /// by tag, the stored manifest if its type is accepted, else its Docker schema 2 ⇄ OCI conversion if
    /// that type is accepted, else the stored manifest marked not acceptable. By digest, no conversion
    /// (as ECR documents): the stored manifest, or a conversion this process served earlier under that
    /// digest (so a client that pulled by tag can ask again by the digest it was given).
    public func manifest(_ name: RepositoryKey, reference: Reference,
                         accepting: AcceptedMediaTypes) async throws -> NegotiatedManifest {
        switch reference {
        case .tag:
            let record = try await manifest(name, reference: reference)
            return negotiate(name, record, accepting: accepting, byTag: true)
        case .digest(let digest):
            do {
                let record = try await manifest(name, reference: reference)
                return negotiate(name, record, accepting: accepting, byTag: false)
            } catch BerthError.manifestUnknown(let what) {
                if let converted = try await convertedManifest(name, digest) { return converted }
                throw BerthError.manifestUnknown(what)
            }
        }
    }

    /// Chooses what to serve of `record` to a client accepting `accepting`; converts only when pulled by tag.
    public func negotiate(_ name: RepositoryKey, _ record: ManifestRecord, accepting: AcceptedMediaTypes,
                          byTag: Bool) -> NegotiatedManifest {
        if accepting.accepts(record.mediaType) { return NegotiatedManifest(stored: record, acceptable: true) }
        if byTag, let target = ManifestConversion.counterpart(of: record.mediaType), accepting.accepts(target),
           case .success(let converted) = ManifestConversion.convert(record.bytes, from: record.mediaType, to: target) {
            conversions.remember(name, converted: converted.digest, source: record.digest)
            return NegotiatedManifest(stored: record, converted: converted)
        }
        return NegotiatedManifest(stored: record, acceptable: false)
    }

    /// The conversion served earlier under `digest` in `name`, if its source manifest still exists.
    public func convertedManifest(_ name: RepositoryKey, _ digest: Digest) async throws -> NegotiatedManifest? {
        guard let source = conversions.source(name, digest) else { return nil }
        let record: ManifestRecord
        do {
            record = try await manifest(name, reference: .digest(source))
        } catch BerthError.manifestUnknown {
            conversions.forget(name, digest)
            return nil
        }
        guard let target = ManifestConversion.counterpart(of: record.mediaType),
              case .success(let converted) = ManifestConversion.convert(record.bytes, from: record.mediaType, to: target),
              converted.digest == digest else { return nil }
        return NegotiatedManifest(stored: record, converted: converted)
    }
}

/// The digests of conversions this process has served, mapped to the stored manifests they came from
/// (bounded; conversions are deterministic, so an entry is re-checked by converting again when used).
final class ConversionAliases: Sendable {
    struct Key: Hashable { let repository: RepositoryKey; let digest: Digest }
    /// Least recently used aliases are evicted first; they never expire.
    private let entries: BoundedCache<Key, Digest>

    init(limit: Int = 16_384) { entries = BoundedCache(capacity: limit) }

    func remember(_ repository: RepositoryKey, converted: Digest, source: Digest) {
        entries.set(source, forKey: Key(repository: repository, digest: converted))
    }

    func source(_ repository: RepositoryKey, _ converted: Digest) -> Digest? {
        entries.value(forKey: Key(repository: repository, digest: converted))
    }

    func forget(_ repository: RepositoryKey, _ converted: Digest) {
        entries.removeValue(forKey: Key(repository: repository, digest: converted))
    }
}
