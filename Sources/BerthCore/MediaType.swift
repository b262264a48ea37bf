/// Media types the registry understands.
public enum MediaType {
    public static let ociManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let ociIndex = "application/vnd.oci.image.index.v1+json"
    public static let ociConfig = "application/vnd.oci.image.config.v1+json"
    public static let ociEmpty = "application/vnd.oci.empty.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerSchema1 = "application/vnd.docker.distribution.manifest.v1+json"
    public static let dockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"

    /// Manifest media types that can be stored.
    public static let manifestTypes: Set<String> = [ociManifest, ociIndex, dockerManifest, dockerManifestList]

    public static func isIndex(_ t: String) -> Bool { t == ociIndex || t == dockerManifestList }
    public static func isImageConfig(_ t: String) -> Bool { t == ociConfig || t == dockerConfig }

    /// Strips parameters (`; charset=...`) and whitespace, lowercases.
    public static func normalize(_ t: String) -> String {
        let base = t.split(separator: ";", maxSplits: 1).first.map(String.init) ?? t
        return base.trimmingSpaces().lowercased()
    }
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
