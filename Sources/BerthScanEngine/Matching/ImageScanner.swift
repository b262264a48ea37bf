import Foundation

/// The result of scanning one image.
public struct ScanReport: Sendable {
    public var packages: [InstalledPackage]
    public var notInstalled: [NotInstalledPackage]
    public var osRelease: [String: String]
    /// The ecosystem dpkg packages were matched in, or `nil` when the distribution is unknown.
    public var dpkgEcosystem: String?
    /// The ecosystem each OS package kind (deb, apk, rpm) was matched in; kinds without one were not matched.
    public var osEcosystems: [InstalledPackage.Kind: String] = [:]
    public var findings: [Finding]
    public var layerIssues: [LayerIssue]
    public var catalogIssues: [CatalogIssue]

    /// Number of findings per severity, every severity present (ECR's `findingSeverityCounts`).
    public var severityCounts: [FindingSeverity: Int] {
        var counts = Dictionary(uniqueKeysWithValues: FindingSeverity.allCases.map { ($0, 0) })
        for f in findings { counts[f.severity, default: 0] += 1 }
        return counts
    }
}

/// Why an image could not be scanned.
public enum ScanError: Error, Sendable, Equatable {
    case layout(OCILayoutError)
    case layer(digest: String, LayerError)
}

/// Scans images: walks their layers, catalogs packages, and matches them against a database.
public struct ImageScanner: Sendable {
    public let matcher: Matcher
    public let limits: LayerWalker.Limits

    public init(matcher: Matcher, limits: LayerWalker.Limits = .init()) {
        self.matcher = matcher
        self.limits = limits
    }

    /// Scans the image tagged `tag` in the OCI image layout at `layout`.
    public func scan(layout: URL, tag: String?) throws(ScanError) -> ScanReport {
        let image = OCIImageLayout(root: layout)
        let layers: [OCIImageLayout.Layer]
        do { layers = try image.layers(tag: tag) } catch { throw .layout(error) }
        var walker = LayerWalker(limits: limits)
        for layer in layers {
            do { try walker.apply(layerFile: layer.url, mediaType: layer.mediaType) } catch { throw .layer(digest: layer.digest, error) }
        }
        return scan(index: walker.index, layerIssues: walker.issues)
    }

    /// Catalogs and matches an already merged file index.
    public func scan(index: VirtualFileIndex, layerIssues: [LayerIssue] = []) -> ScanReport {
        var catalog = Catalogers.catalog(index.catalogFiles())
        for (path, info) in index.goBinaries() { catalog.packages += info.packages(path: path) }
        var catalogIssues = catalog.issues
        let ecosystems = Matcher.osEcosystems(osRelease: catalog.osRelease)
        let ecosystem = ecosystems[.deb]
        let distro = catalog.osRelease["ID"].map { "'\($0)'" } ?? "unknown"
        for (kind, what) in [(InstalledPackage.Kind.deb, "dpkg"), (.apk, "apk"), (.rpm, "rpm")]
        where ecosystems[kind] == nil && catalog.packages.contains(where: { $0.kind == kind }) {
            let reason = kind == .deb
                ? "distribution unknown or not Debian; dpkg packages not matched"
                : "no OSV ecosystem for distribution \(distro) \(catalog.osRelease["VERSION_ID"] ?? ""); \(what) packages not matched"
            catalogIssues.append(CatalogIssue(path: "etc/os-release", reason: reason))
        }
        return ScanReport(
            packages: catalog.packages, notInstalled: catalog.notInstalled, osRelease: catalog.osRelease,
            dpkgEcosystem: ecosystem, osEcosystems: ecosystems,
            findings: matcher.findings(for: catalog.packages, osEcosystems: ecosystems),
            layerIssues: layerIssues, catalogIssues: catalogIssues)
    }
}
