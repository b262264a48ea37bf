/// A package found in an image's file system.
public struct InstalledPackage: Sendable, Equatable, Hashable {
    /// The packaging system a package was installed by.
    public enum Kind: String, Sendable, Hashable, Codable {
        case deb
        case pypi
        case npm
        /// Alpine (or Wolfi/Chainguard) `lib/apk/db/installed`.
        case apk
        /// `var/lib/rpm/rpmdb.sqlite`.
        case rpm
        /// A Go module (or `stdlib`) compiled into a Go binary.
        case golang = "go"
    }

    public var kind: Kind
    public var name: String
    public var version: String
    public var architecture: String?
    /// The source package: dpkg `Source`, apk origin, rpm SOURCERPM name; for other kinds equal to ``name``.
    public var sourceName: String
    /// The source package version (dpkg); for other kinds equal to ``version`` (Go's stdlib: without `go`).
    public var sourceVersion: String
    /// The file the package was read from (for Go modules, the binary), relative to the image root.
    public var path: String

    public init(
        kind: Kind, name: String, version: String, architecture: String? = nil,
        sourceName: String? = nil, sourceVersion: String? = nil, path: String
    ) {
        self.kind = kind
        self.name = name
        self.version = version
        self.architecture = architecture
        self.sourceName = sourceName ?? name
        self.sourceVersion = sourceVersion ?? version
        self.path = path
    }
}

/// A dpkg stanza that is known but not installed (for example `deinstall ok config-files`).
public struct NotInstalledPackage: Sendable, Equatable {
    public var name: String
    public var version: String
    public var status: String
    public var path: String
}

/// Something a cataloger could not use, and why.
public struct CatalogIssue: Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var reason: String

    public var description: String { "\(path): \(reason)" }
}

/// What catalogers found in a set of files.
public struct CatalogResult: Sendable, Equatable {
    public var packages: [InstalledPackage] = []
    public var notInstalled: [NotInstalledPackage] = []
    public var issues: [CatalogIssue] = []
    /// `/etc/os-release` (or `/usr/lib/os-release`) fields, when present.
    public var osRelease: [String: String] = [:]

    public init() {}
}
