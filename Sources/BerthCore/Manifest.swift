import Foundation

/// A manifest or index after parsing and validation; the exact bytes are kept alongside it.
public struct ParsedManifest: Sendable, Equatable {
    public let mediaType: String
    public let config: Descriptor?
    public let layers: [Descriptor]
    public let manifests: [Descriptor]
    public let subject: Descriptor?
    public let artifactType: String?
    public let annotations: [String: String]?

    public var isIndex: Bool { MediaType.isIndex(mediaType) }

    /// Blobs that must exist in the repository (config and layers, except foreign layers with `urls`).
    public var requiredBlobs: [Digest] {
        var out: [Digest] = []
        if let c = config, let d = Digest.parse(c.digest) { out.append(d) }
        for l in layers where (l.urls ?? []).isEmpty && !l.mediaType.contains(".foreign.") {
            if let d = Digest.parse(l.digest) { out.append(d) }
        }
        return out
    }

    /// Manifests that must exist in the repository (for an index).
    public var requiredManifests: [Digest] { manifests.compactMap { Digest.parse($0.digest) } }

    /// The artifact type a referrers response reports: `artifactType`, else the config media type.
    public var effectiveArtifactType: String? {
        if let a = artifactType { return a }
        if !isIndex, let c = config { return c.mediaType }
        return nil
    }
}

/// Parses and validates manifest bytes pushed with a given `Content-Type`.
public enum ManifestParser {
    /// The largest manifest accepted (4 MiB, as ECR and the distribution-spec suggest).
    public static let maxSize = 4 * 1024 * 1024

    struct Raw: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var artifactType: String?
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
        var subject: Descriptor?
        var annotations: [String: String]?
        var fsLayers: [AnyDecodable]?
        var signatures: [AnyDecodable]?
    }

    struct AnyDecodable: Decodable { init(from decoder: any Decoder) throws {} }

    public static func parse(_ bytes: [UInt8], contentType: String?) throws(BerthError) -> ParsedManifest {
        guard bytes.count <= maxSize else { throw .manifestTooLarge(limit: maxSize) }
        let ct = contentType.map(MediaType.normalize)
        if ct == MediaType.dockerSchema1 || ct == MediaType.dockerSchema1Signed {
            throw .manifestInvalid("Docker schema 1 manifests are not supported")
        }
        let raw: Raw
        do {
            raw = try JSONDecoder().decode(Raw.self, from: Data(bytes))
        } catch {
            throw .manifestInvalid("manifest is not valid JSON of the expected shape: \(describe(error))")
        }
        if raw.schemaVersion == 1 || raw.fsLayers != nil || raw.mediaType == MediaType.dockerSchema1
            || raw.mediaType == MediaType.dockerSchema1Signed {
            throw .manifestInvalid("Docker schema 1 manifests are not supported")
        }
        guard raw.schemaVersion == 2 else {
            throw .manifestInvalid("schemaVersion must be 2")
        }
        // Decide the media type: the body's field wins, and Content-Type must agree with it.
        let mediaType: String
        if let m = raw.mediaType {
            guard MediaType.manifestTypes.contains(m) else {
                throw .manifestInvalid("unsupported manifest media type \(m)")
            }
            if let ct, MediaType.manifestTypes.contains(ct), ct != m {
                throw .manifestInvalid("Content-Type \(ct) does not match the manifest's mediaType \(m)")
            }
            if let ct, !MediaType.manifestTypes.contains(ct), !isGeneric(ct) {
                throw .manifestInvalid("Content-Type \(ct) does not match the manifest's mediaType \(m)")
            }
            mediaType = m
        } else if let ct, MediaType.manifestTypes.contains(ct) {
            if ct == MediaType.dockerManifest || ct == MediaType.dockerManifestList {
                throw .manifestInvalid("Docker manifests must carry a mediaType field")
            }
            mediaType = ct
        } else {
            mediaType = raw.manifests != nil ? MediaType.ociIndex : MediaType.ociManifest
        }

        let isIndex = MediaType.isIndex(mediaType)
        if isIndex {
            guard let manifests = raw.manifests else { throw .manifestInvalid("an index must list manifests") }
            if raw.config != nil || raw.layers != nil {
                throw .manifestInvalid("an index must not have config or layers")
            }
            for m in manifests { try validate(m, field: "manifests") }
        } else {
            guard let config = raw.config else { throw .manifestInvalid("an image manifest must have a config") }
            guard let layers = raw.layers else { throw .manifestInvalid("an image manifest must have layers") }
            if raw.manifests != nil { throw .manifestInvalid("an image manifest must not list manifests") }
            try validate(config, field: "config")
            for l in layers { try validate(l, field: "layers") }
            if mediaType == MediaType.dockerManifest, layers.isEmpty {
                throw .manifestInvalid("a Docker image manifest must have at least one layer")
            }
        }
        if let s = raw.subject { try validate(s, field: "subject") }
        return ParsedManifest(
            mediaType: mediaType, config: raw.config, layers: raw.layers ?? [], manifests: raw.manifests ?? [],
            subject: raw.subject, artifactType: raw.artifactType, annotations: raw.annotations)
    }

    static func isGeneric(_ ct: String) -> Bool {
        ct == "application/json" || ct == "application/octet-stream" || ct.isEmpty
    }

    static func validate(_ d: Descriptor, field: String) throws(BerthError) {
        guard Digest.parse(d.digest) != nil else {
            throw .manifestInvalid("\(field): invalid digest \(d.digest)")
        }
        guard d.size >= 0 else { throw .manifestInvalid("\(field): negative size") }
        guard !d.mediaType.isEmpty else { throw .manifestInvalid("\(field): missing mediaType") }
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c),
             DecodingError.keyNotFound(_, let c), DecodingError.dataCorrupted(let c):
            let path = c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
        default:
            return "\(error)"
        }
    }
}
