import Foundation

/// An image's platform, as an index entry describes it.
public struct ImagePlatform: Sendable, Equatable, Hashable, Codable, CustomStringConvertible {
    public var os: String
    public var architecture: String
    public var variant: String?
    public var osVersion: String?

    enum CodingKeys: String, CodingKey {
        case os, architecture, variant
        case osVersion = "os.version"
    }

    public init(os: String, architecture: String, variant: String? = nil, osVersion: String? = nil) {
        self.os = os
        self.architecture = architecture
        self.variant = variant
        self.osVersion = osVersion
    }

    /// `os/architecture[/variant]`, as `docker --platform` writes it.
    public var description: String { "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "") }
}

/// A platform image manifest of an index that a scanner should scan.
public struct PlatformManifest: Sendable, Equatable {
    public var digest: String
    public var mediaType: String
    public var size: Int?
    public var platform: ImagePlatform
}

/// Why an index could not be read.
public struct PlatformIndexError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}

/// Chooses which manifests of a multi-platform image to scan.
public enum PlatformManifests {
    /// The result of a selection: what to scan, and what was left out and why.
    public struct Selection: Sendable, Equatable {
        public var manifests: [PlatformManifest]
        public var skipped: [(digest: String, reason: String)]

        public static func == (a: Self, b: Self) -> Bool {
            a.manifests == b.manifests && a.skipped.elementsEqual(b.skipped) { $0.digest == $1.digest && $0.reason == $1.reason }
        }
    }

    static let indexTypes: Set<String> = [
        "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
    static let imageTypes: Set<String> = [
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
    ]

    private struct Index: Decodable {
        var mediaType: String?
        var manifests: [Descriptor]?
        var layers: [Descriptor]?
        var config: Descriptor?
    }

    private struct Descriptor: Decodable {
        var mediaType: String?
        var digest: String?
        var size: Int?
        var platform: ImagePlatform?
        var artifactType: String?
        var annotations: [String: String]?
    }

    /// The platform image manifests of an OCI image index or Docker manifest list, in index order, one per digest.
    ///
    /// Left out (and listed in ``Selection/skipped``): BuildKit attestation manifests (platform `unknown/unknown`, or
    /// annotation `vnd.docker.reference.type: attestation-manifest`), entries that are not image manifests (nested
    /// indexes, artifacts with an `artifactType`, other media types), entries without a platform or a valid digest,
    /// and repeated digests. Throws when `json` is not an index (for example a single image manifest).
    public static func select(fromIndex json: Data) throws(PlatformIndexError) -> Selection {
        guard json.count <= 4 << 20 else { throw PlatformIndexError(description: "index larger than 4 MiB") }
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: json) } catch {
            throw PlatformIndexError(description: "not a JSON index: \(error)")
        }
        if let type = index.mediaType, !indexTypes.contains(type) {
            throw PlatformIndexError(description: "media type \(type) is not an image index")
        }
        guard let entries = index.manifests, index.layers == nil, index.config == nil else {
            throw PlatformIndexError(description: "no manifests[]: not an image index")
        }
        var selection = Selection(manifests: [], skipped: [])
        var seen = Set<String>()
        for entry in entries {
            let digest = entry.digest ?? ""
            func skip(_ reason: String) { selection.skipped.append((digest, reason)) }
            guard isDigest(digest) else { skip("invalid digest"); continue }
            let type = entry.mediaType ?? ""
            if entry.annotations?["vnd.docker.reference.type"] == "attestation-manifest" {
                skip("attestation manifest"); continue
            }
            guard imageTypes.contains(type) else {
                skip(indexTypes.contains(type) ? "nested index" : "not an image manifest (\(type.isEmpty ? "no media type" : type))")
                continue
            }
            if let artifact = entry.artifactType, !artifact.isEmpty { skip("artifact \(artifact)"); continue }
            guard let platform = entry.platform else { skip("no platform"); continue }
            if platform.os == "unknown" || platform.architecture == "unknown" {
                skip("platform \(platform) (attestation or non-image)"); continue
            }
            guard !platform.os.isEmpty, !platform.architecture.isEmpty else { skip("incomplete platform"); continue }
            guard seen.insert(digest).inserted else { skip("duplicate digest"); continue }
            selection.manifests.append(PlatformManifest(digest: digest, mediaType: type, size: entry.size, platform: platform))
        }
        return selection
    }

    static func isDigest(_ s: String) -> Bool {
        let parts = s.split(separator: ":", maxSplits: 1)
        guard parts.count == 2 else { return false }
        let hex = parts[1]
        let lengthOK = parts[0] == "sha256" ? hex.count == 64 : parts[0] == "sha512" ? hex.count == 128 : false
        return lengthOK && hex.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}
