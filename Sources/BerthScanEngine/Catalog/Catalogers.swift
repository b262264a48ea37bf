import Foundation

/// A file handed to catalogers: its path relative to the image root and its contents.
public struct CatalogFile: Sendable, Equatable {
    public var path: String
    public var contents: [UInt8]

    public init(path: String, contents: [UInt8]) {
        self.path = path
        self.contents = contents
    }
}

/// Decides which files catalogers read, and turns their contents into packages.
public enum Catalogers {
    /// True when `path` (relative, `/`-separated, no leading `/`) is a file some cataloger reads.
    public static func wants(_ path: String) -> Bool {
        kind(of: path) != nil
    }

    enum FileKind {
        case dpkgStatus, pythonMetadata, npmPackageJSON, osRelease, apkInstalled, rpmDatabase
    }

    /// Where rpm keeps its SQLite database (RHEL 9 family; Fedora ≥ 36 and openSUSE use `usr/lib/sysimage`).
    static let rpmDatabasePaths: Set<String> = ["var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite"]

    /// True for the package databases that may be larger than ordinary catalog files (rpm's SQLite database).
    public static func isLargeDatabase(_ path: String) -> Bool { rpmDatabasePaths.contains(path) }

    static func kind(of path: String) -> FileKind? {
        if path == "var/lib/dpkg/status" { return .dpkgStatus }
        if path.hasPrefix("var/lib/dpkg/status.d/") {
            let name = path.dropFirst("var/lib/dpkg/status.d/".count)
            if !name.isEmpty, !name.contains("/"), !name.hasSuffix(".md5sums"), !name.hasPrefix(".") { return .dpkgStatus }
            return nil
        }
        if path == "etc/os-release" || path == "usr/lib/os-release" { return .osRelease }
        if path == "lib/apk/db/installed" { return .apkInstalled }
        if rpmDatabasePaths.contains(path) { return .rpmDatabase }
        let components = path.split(separator: "/")
        guard let last = components.last else { return nil }
        if components.count >= 2 {
            let parent = components[components.count - 2]
            if last == "METADATA", parent.hasSuffix(".dist-info") { return .pythonMetadata }
            if last == "PKG-INFO", parent.hasSuffix(".egg-info") { return .pythonMetadata }
        }
        if last.hasSuffix(".egg-info"), last.count > ".egg-info".count, path.contains("-packages/") { return .pythonMetadata }
        if last == "package.json", components.count >= 3 {
            // node_modules/<name>/package.json or node_modules/@scope/<name>/package.json
            let n = components.count
            if components[n - 3] == "node_modules", !components[n - 2].hasPrefix("@") { return .npmPackageJSON }
            if n >= 4, components[n - 4] == "node_modules", components[n - 3].hasPrefix("@") { return .npmPackageJSON }
        }
        return nil
    }

    /// Runs every cataloger on the files it wants; files no cataloger wants are ignored.
    public static func catalog(_ files: [CatalogFile]) -> CatalogResult {
        var result = CatalogResult()
        for file in files.sorted(by: { $0.path < $1.path }) {
            switch kind(of: file.path) {
            case .dpkgStatus: DpkgStatusCataloger.catalog(file, into: &result)
            case .pythonMetadata: PythonMetadataCataloger.catalog(file, into: &result)
            case .npmPackageJSON: NpmPackageCataloger.catalog(file, into: &result)
            case .apkInstalled: ApkInstalledCataloger.catalog(file, into: &result)
            case .rpmDatabase: RpmDatabaseCataloger.catalog(file, into: &result)
            case .osRelease:
                if result.osRelease.isEmpty || file.path == "etc/os-release" {
                    result.osRelease = OSRelease.parse(String(decoding: file.contents, as: UTF8.self))
                }
            case nil: continue
            }
        }
        return result
    }
}

/// Reads dpkg's `var/lib/dpkg/status` and distroless-style `var/lib/dpkg/status.d/*` files.
public enum DpkgStatusCataloger {
    /// Adds the installed packages of one status file; stanzas not `installed` go to `notInstalled`.
    public static func catalog(_ file: CatalogFile, into result: inout CatalogResult) {
        let text = String(decoding: file.contents, as: UTF8.self)
        let (paragraphs, badLines) = ControlParagraphParser.parse(text)
        if !badLines.isEmpty {
            result.issues.append(CatalogIssue(
                path: file.path, reason: "ignored \(badLines.count) malformed line(s), first at line \(badLines[0])"))
        }
        for (n, p) in paragraphs.enumerated() {
            guard let name = p["Package"], !name.isEmpty, let version = p["Version"], !version.isEmpty else {
                result.issues.append(CatalogIssue(path: file.path, reason: "stanza \(n + 1) has no Package or Version"))
                continue
            }
            // distroless status.d files have no Status field: their presence means installed.
            let status = p["Status"] ?? (file.path == "var/lib/dpkg/status" ? "" : "install ok installed")
            let words = status.split(separator: " ")
            guard words.count == 3, words[2] == "installed" else {
                result.notInstalled.append(NotInstalledPackage(name: name, version: version, status: status, path: file.path))
                continue
            }
            var sourceName = name
            var sourceVersion = version
            if let source = p["Source"], !source.isEmpty {
                let parsed = parseSource(source)
                sourceName = parsed.name
                if let v = parsed.version { sourceVersion = v }
            }
            result.packages.append(InstalledPackage(
                kind: .deb, name: name, version: version, architecture: p["Architecture"],
                sourceName: sourceName, sourceVersion: sourceVersion, path: file.path))
        }
    }

    /// Splits `name (version)` into its parts; the version is optional.
    public static func parseSource(_ field: String) -> (name: String, version: String?) {
        let trimmed = field.trimmingWhitespace()
        guard let open = trimmed.firstIndex(of: "(") else { return (trimmed, nil) }
        let name = trimmed[..<open].trimmingWhitespace()
        let afterOpen = trimmed[trimmed.index(after: open)...]
        guard let close = afterOpen.firstIndex(of: ")") else { return (name, nil) }
        let version = afterOpen[..<close].trimmingWhitespace()
        return (name, version.isEmpty ? nil : version)
    }
}

/// Reads Python `*.dist-info/METADATA` and `*.egg-info/PKG-INFO` (or `*.egg-info` files).
public enum PythonMetadataCataloger {
    public static func catalog(_ file: CatalogFile, into result: inout CatalogResult) {
        let text = String(decoding: file.contents, as: UTF8.self)
        let (paragraphs, _) = ControlParagraphParser.parse(text, stopAfterFirst: true)
        guard let headers = paragraphs.first, let name = headers["Name"], !name.isEmpty,
              let version = headers["Version"], !version.isEmpty
        else {
            result.issues.append(CatalogIssue(path: file.path, reason: "no Name and Version headers"))
            return
        }
        result.packages.append(InstalledPackage(kind: .pypi, name: name, version: version, path: file.path))
    }
}

/// Reads `node_modules/**/package.json`.
public enum NpmPackageCataloger {
    private struct Manifest: Decodable {
        var name: String?
        var version: String?

        enum CodingKeys: String, CodingKey { case name, version }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try? c.decodeIfPresent(String.self, forKey: .name)
            version = try? c.decodeIfPresent(String.self, forKey: .version)
        }
    }

    public static func catalog(_ file: CatalogFile, into result: inout CatalogResult) {
        guard let manifest = try? JSONDecoder().decode(Manifest.self, from: Data(file.contents)) else {
            result.issues.append(CatalogIssue(path: file.path, reason: "not a JSON object"))
            return
        }
        guard let name = manifest.name, !name.isEmpty, let version = manifest.version, !version.isEmpty else {
            result.issues.append(CatalogIssue(path: file.path, reason: "no name and version"))
            return
        }
        result.packages.append(InstalledPackage(kind: .npm, name: name, version: version, path: file.path))
    }
}

/// Parses `os-release` (`KEY=value`, values optionally quoted).
public enum OSRelease {
    public static func parse(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingWhitespace()
            guard !line.hasPrefix("#"), let eq = line.firstIndex(of: "=") else { continue }
            let key = String(line[..<eq])
            var value = Substring(line[line.index(after: eq)...])
            if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q {
                value = value.dropFirst().dropLast()
            }
            out[key] = value.replacingOccurrences(of: "\\\"", with: "\"")
        }
        return out
    }
}
