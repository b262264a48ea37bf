import Foundation

/// Conversion of single-image manifests between Docker Image Manifest V2 schema 2 and the OCI image
/// manifest, as ECR does when a client accepts only the other format ("Amazon ECR image manifest
/// conversion"). Pure and deterministic: the same input always gives the same bytes, so the same digest.
///
/// Converted: the manifest media type, the image config type and these layer types, both ways:
///
/// | Docker V2 schema 2                                    | OCI image-spec v1.1                                   |
/// |-------------------------------------------------------|-------------------------------------------------------|
/// | `application/vnd.docker.container.image.v1+json`      | `application/vnd.oci.image.config.v1+json`            |
/// | `application/vnd.docker.image.rootfs.diff.tar.gzip`   | `application/vnd.oci.image.layer.v1.tar+gzip`         |
/// | `application/vnd.docker.image.rootfs.diff.tar`        | `application/vnd.oci.image.layer.v1.tar`              |
/// | `application/vnd.docker.image.rootfs.foreign.diff.tar.gzip` | `application/vnd.oci.image.layer.nondistributable.v1.tar+gzip` |
/// | `application/vnd.docker.image.rootfs.foreign.diff.tar` | `application/vnd.oci.image.layer.nondistributable.v1.tar` |
///
/// Refused (the conversion would lose or invent meaning): indexes and manifest lists, any field other
/// than `schemaVersion`, `mediaType`, `config` and `layers` (so `annotations`, `subject`, `artifactType`),
/// descriptor fields other than `mediaType`, `digest`, `size` and (layers only) `urls`, config types other
/// than an image config (artifacts), layer types not in the table (zstd, which schema 2 cannot express,
/// and any artifact layer), and an OCI manifest without layers (schema 2 requires at least one).
/// Config and layer blobs are the same bytes in both formats, so their digests do not change.
public enum ManifestConversion {
    /// Why a manifest cannot be converted.
    public struct Refusal: Error, Equatable, Sendable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// A converted manifest: canonical bytes, their media type and their own digest.
    public struct Converted: Equatable, Sendable {
        public let bytes: [UInt8]
        public let mediaType: String
        public let digest: Digest
    }

    /// Layer media types: (Docker V2 schema 2, OCI).
    public static let layerTypes: [(docker: String, oci: String)] = [
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("application/vnd.docker.image.rootfs.diff.tar", "application/vnd.oci.image.layer.v1.tar"),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
         "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar", "application/vnd.oci.image.layer.nondistributable.v1.tar"),
    ]

    /// The other format of a convertible manifest media type (Docker schema 2 ⇄ OCI image manifest), else nil.
    public static func counterpart(of mediaType: String) -> String? {
        switch mediaType {
        case MediaType.dockerManifest: MediaType.ociManifest
        case MediaType.ociManifest: MediaType.dockerManifest
        default: nil
        }
    }

    /// Converts `bytes`, a stored manifest of type `mediaType`, to `target`.
    public static func convert(_ bytes: [UInt8], from mediaType: String, to target: String) -> Result<Converted, Refusal> {
        do {
            return .success(try convertOrThrow(bytes, from: mediaType, to: target))
        } catch {
            return .failure(error)
        }
    }

    static func convertOrThrow(_ bytes: [UInt8], from mediaType: String, to target: String) throws(Refusal) -> Converted {
        guard counterpart(of: mediaType) == target else {
            throw Refusal(reason: "no conversion from \(mediaType) to \(target)")
        }
        let toDocker = target == MediaType.dockerManifest
        let m: StrictManifest
        do {
            m = try JSONDecoder().decode(StrictManifest.self, from: Data(bytes))
        } catch {
            throw Refusal(reason: "the manifest is not a plain image manifest: \(ManifestParser.describe(error))")
        }
        guard m.schemaVersion == 2 else { throw Refusal(reason: "schemaVersion must be 2") }
        if let declared = m.mediaType, declared != mediaType {
            throw Refusal(reason: "the manifest's mediaType \(declared) is not \(mediaType)")
        }
        if let extra = m.extraKeys.first {
            throw Refusal(reason: "field \(extra) has no equivalent in \(target)")
        }
        guard let config = m.config, let layers = m.layers else {
            throw Refusal(reason: "an image manifest needs config and layers")
        }
        guard MediaType.isImageConfig(config.mediaType) else {
            throw Refusal(reason: "config media type \(config.mediaType) is not an image config")
        }
        if let extra = config.extraKeys.first ?? (config.urls != nil ? "urls" : nil) {
            throw Refusal(reason: "config field \(extra) has no equivalent in \(target)")
        }
        if toDocker && layers.isEmpty {
            throw Refusal(reason: "a Docker image manifest must have at least one layer")
        }
        let convertedConfig = Descriptor(mediaType: toDocker ? MediaType.dockerConfig : MediaType.ociConfig,
                                         digest: config.digest, size: config.size)
        var converted: [Descriptor] = []
        for (i, l) in layers.enumerated() {
            if let extra = l.extraKeys.first {
                throw Refusal(reason: "layers[\(i)] field \(extra) has no equivalent in \(target)")
            }
            let pair = layerTypes.first { (toDocker ? $0.oci : $0.docker) == l.mediaType }
            guard let pair else {
                throw Refusal(reason: "layers[\(i)] media type \(l.mediaType) has no equivalent in \(target)")
            }
            converted.append(Descriptor(mediaType: toDocker ? pair.docker : pair.oci, digest: l.digest, size: l.size,
                                        urls: l.urls))
        }
        var json = CanonicalJSON()
        json.raw("{\"schemaVersion\":2,\"mediaType\":")
        json.string(target)
        json.raw(",\"config\":")
        json.descriptor(convertedConfig, dockerOrder: toDocker)
        json.raw(",\"layers\":[")
        for (i, l) in converted.enumerated() {
            if i > 0 { json.raw(",") }
            json.descriptor(l, dockerOrder: toDocker)
        }
        json.raw("]}")
        return Converted(bytes: json.bytes, mediaType: target, digest: .sha256(of: json.bytes))
    }

    /// A decoded image manifest that remembers every key it did not expect.
    struct StrictManifest: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var config: StrictDescriptor?
        var layers: [StrictDescriptor]?
        var extraKeys: [String]

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            schemaVersion = try c.decodeIfPresent(Int.self, forKey: AnyKey("schemaVersion"))
            mediaType = try c.decodeIfPresent(String.self, forKey: AnyKey("mediaType"))
            config = try c.decodeIfPresent(StrictDescriptor.self, forKey: AnyKey("config"))
            layers = try c.decodeIfPresent([StrictDescriptor].self, forKey: AnyKey("layers"))
            extraKeys = c.allKeys.map(\.stringValue)
                .filter { !["schemaVersion", "mediaType", "config", "layers"].contains($0) }.sorted()
        }
    }

    struct StrictDescriptor: Decodable {
        var mediaType: String
        var digest: String
        var size: Int64
        var urls: [String]?
        var extraKeys: [String]

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyKey.self)
            mediaType = try c.decode(String.self, forKey: AnyKey("mediaType"))
            digest = try c.decode(String.self, forKey: AnyKey("digest"))
            size = try c.decode(Int64.self, forKey: AnyKey("size"))
            urls = try c.decodeIfPresent([String].self, forKey: AnyKey("urls"))
            extraKeys = c.allKeys.map(\.stringValue)
                .filter { !["mediaType", "digest", "size", "urls"].contains($0) }.sorted()
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { return nil }
    }

    /// Compact JSON with a fixed key order: Docker's (`mediaType`, `size`, `digest`, `urls`, as Docker
    /// writes schema 2) or OCI's (`mediaType`, `digest`, `size`, `urls`, as image-spec's Go types write it).
    struct CanonicalJSON {
        var bytes: [UInt8] = []

        mutating func raw(_ s: String) { bytes.append(contentsOf: s.utf8) }

        mutating func string(_ s: String) {
            bytes.append(UInt8(ascii: "\""))
            for b in s.utf8 {
                switch b {
                case UInt8(ascii: "\""): raw("\\\"")
                case UInt8(ascii: "\\"): raw("\\\\")
                case 0x0A: raw("\\n")
                case 0x0D: raw("\\r")
                case 0x09: raw("\\t")
                case 0..<0x20:
                    let hex = String(b, radix: 16)
                    raw("\\u" + String(repeating: "0", count: 4 - hex.count) + hex)
                default: bytes.append(b)
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }

        mutating func descriptor(_ d: Descriptor, dockerOrder: Bool) {
            raw("{\"mediaType\":")
            string(d.mediaType)
            if dockerOrder {
                raw(",\"size\":\(d.size),\"digest\":")
                string(d.digest)
            } else {
                raw(",\"digest\":")
                string(d.digest)
                raw(",\"size\":\(d.size)")
            }
            if let urls = d.urls {
                raw(",\"urls\":[")
                for (i, u) in urls.enumerated() {
                    if i > 0 { raw(",") }
                    string(u)
                }
                raw("]")
            }
            raw("}")
        }
    }
}
