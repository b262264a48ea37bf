import Foundation

/// Why an OCI image layout could not be read.
public enum OCILayoutError: Error, Sendable, Equatable {
    case unreadable(String)
    case invalid(String)
    case notFound(String)
}

/// An OCI image layout directory (index.json, blobs/<alg>/<hex>), read far enough to list an image's layers.
public struct OCIImageLayout: Sendable {
    public let root: URL

    public init(root: URL) {
        self.root = root
    }

    struct Descriptor: Decodable {
        var mediaType: String?
        var digest: String
        var size: Int?
        var annotations: [String: String]?
        var platform: Platform?
    }

    struct Platform: Decodable {
        var architecture: String?
        var os: String?
    }

    struct Index: Decodable {
        var manifests: [Descriptor]
    }

    struct Manifest: Decodable {
        var mediaType: String?
        var config: Descriptor?
        var layers: [Descriptor]?
        var manifests: [Descriptor]?
    }

    /// A layer of an image: where its blob is and its media type.
    public struct Layer: Sendable, Equatable {
        public var digest: String
        public var mediaType: String?
        public var url: URL
    }

    /// The layers, bottom first, of the image tagged `tag` (`org.opencontainers.image.ref.name`), or of the only image.
    public func layers(tag: String?) throws(OCILayoutError) -> [Layer] {
        let index: Index = try decode(root.appendingPathComponent("index.json"))
        let candidates = tag.map { t in index.manifests.filter { $0.annotations?["org.opencontainers.image.ref.name"] == t } }
            ?? index.manifests
        guard let descriptor = candidates.first else { throw .notFound("no manifest for tag \(tag ?? "(any)")") }
        var manifest: Manifest = try decode(try blobURL(descriptor.digest))
        // An image index: pick linux/amd64, else the first entry that is not an attestation manifest.
        if manifest.layers == nil, let all = manifest.manifests, !all.isEmpty {
            let entries = all.filter { e in
                e.platform?.os != "unknown" && e.platform?.architecture != "unknown"
                    && e.annotations?["vnd.docker.reference.type"] != "attestation-manifest"
            }
            guard !entries.isEmpty else { throw .notFound("the index lists no image manifest") }
            let pick = entries.first { $0.platform?.os == "linux" && $0.platform?.architecture == "amd64" } ?? entries[0]
            manifest = try decode(try blobURL(pick.digest))
        }
        guard let layers = manifest.layers else { throw .invalid("manifest has no layers") }
        var out: [Layer] = []
        for layer in layers {
            out.append(Layer(digest: layer.digest, mediaType: layer.mediaType, url: try blobURL(layer.digest)))
        }
        return out
    }

    /// The file of a blob; the digest is validated so it cannot name a path outside `blobs/`.
    public func blobURL(_ digest: String) throws(OCILayoutError) -> URL {
        let parts = digest.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, parts[0] == "sha256" || parts[0] == "sha512",
              parts[1].count == (parts[0] == "sha256" ? 64 : 128),
              parts[1].utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) })
        else { throw .invalid("invalid digest '\(digest)'") }
        return root.appendingPathComponent("blobs").appendingPathComponent(String(parts[0]))
            .appendingPathComponent(String(parts[1]))
    }

    private func decode<T: Decodable>(_ url: URL) throws(OCILayoutError) -> T {
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .unreadable(url.lastPathComponent) }
        guard data.count <= 4 << 20 else { throw .invalid("\(url.lastPathComponent) is larger than 4 MiB") }
        do { return try JSONDecoder().decode(T.self, from: data) } catch {
            throw .invalid("\(url.lastPathComponent): \(error)")
        }
    }
}
