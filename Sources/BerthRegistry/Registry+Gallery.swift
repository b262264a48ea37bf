import BerthCore
import BerthStorage
import Foundation
import NIOCore

/// Reads for the public gallery (BerthGallery's pages, served by BerthHTTP).
extension Registry {
    /// Every public repository with its catalog data and figures, in one store query (see `GalleryMetadata`).
    public func publicRepositorySummaries(includingTexts: Bool) async throws -> [PublicRepositorySummary] {
        try await metadata.publicRepositorySummaries(includingTexts: includingTexts)
    }

    /// The largest image config the gallery reads to learn an image's platform.
    static let maxGalleryConfigBytes: Int64 = 256 * 1024

    /// The platforms an image runs on: an index's entries' platforms (attestation entries, `unknown/unknown`,
    /// left out), or the `os`/`architecture`/`variant` of an image manifest's config. Empty when neither
    /// says (an artifact, a config too large or unreadable).
    public func platforms(of digest: Digest, in key: RepositoryKey) async throws -> [Descriptor.Platform] {
        guard let record = try await storedManifest(digest, in: key),
              let parsed = try? ManifestParser.parse(record.bytes, contentType: record.mediaType) else { return [] }
        if parsed.isIndex {
            var seen = Set<Descriptor.Platform>()
            return parsed.manifests.compactMap(\.platform).filter {
                $0.architecture != "unknown" && $0.os != "unknown" && seen.insert($0).inserted
            }
        }
        guard let config = parsed.config, let configDigest = Digest.parse(config.digest),
              config.size <= Self.maxGalleryConfigBytes else { return [] }
        var bytes: [UInt8] = []
        do {
            try await readBlob(key, configDigest, range: nil) { buffer in
                guard bytes.count + buffer.readableBytes <= Self.maxGalleryConfigBytes else { throw BerthError.unsupported("config too large") }
                bytes += buffer.readableBytesView
            }
        } catch {
            return []
        }
        struct Config: Decodable {
            var architecture: String?
            var os: String?
            var variant: String?
        }
        guard let c = try? JSONDecoder().decode(Config.self, from: Data(bytes)), let arch = c.architecture, let os = c.os,
              !arch.isEmpty, !os.isEmpty else { return [] }
        return [Descriptor.Platform(architecture: arch, os: os, variant: c.variant)]
    }
}
