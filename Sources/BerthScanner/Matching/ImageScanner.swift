import Foundation

/// The result of scanning one image.
public struct ScanReport: Sendable {
    public var packages: [InstalledPackage]
    public var notInstalled: [NotInstalledPackage]
    public var osRelease: [String: String]
    /// The ecosystem dpkg packages were matched in, or `nil` when the distribution is unknown.
    public var dpkgEcosystem: String?
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
            do { try walker.apply(layerFile: layer.url) } catch { throw .layer(digest: layer.digest, error) }
        }
        return scan(index: walker.index, layerIssues: walker.issues)
    }

    /// Catalogs and matches an already merged file index.
    public func scan(index: VirtualFileIndex, layerIssues: [LayerIssue] = []) -> ScanReport {
        let catalog = Catalogers.catalog(index.catalogFiles())
        var catalogIssues = catalog.issues
        let ecosystem = Matcher.dpkgEcosystem(osRelease: catalog.osRelease)
        if ecosystem == nil, catalog.packages.contains(where: { $0.kind == .deb }) {
            catalogIssues.append(CatalogIssue(
                path: "etc/os-release", reason: "distribution unknown or not Debian; dpkg packages not matched"))
        }
        return ScanReport(
            packages: catalog.packages, notInstalled: catalog.notInstalled, osRelease: catalog.osRelease,
            dpkgEcosystem: ecosystem,
            findings: matcher.findings(for: catalog.packages, dpkgEcosystem: ecosystem),
            layerIssues: layerIssues, catalogIssues: catalogIssues)
    }
}
