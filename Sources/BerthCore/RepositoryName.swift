/// A repository name: the grammar shared by the OCI distribution-spec and ECR's API model
/// (`repositoryName`), 2–256 characters, lowercase:
///
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
public struct RepositoryName: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String
    public var description: String { value }

    public static let minLength = 2
    public static let maxLength = 256

    public init(_ string: some StringProtocol) throws(BerthError) {
        try self.init(String(string))
    }

    public init(_ s: String) throws(BerthError) {
        guard RepositoryName.isValid(s) else { throw .nameInvalid(s) }
        value = s
    }

    /// A hand-written matcher for the grammar (no regex engine on the hot path).
    public static func isValid(_ s: String) -> Bool {
        if let r = s.utf8.withContiguousStorageIfAvailable({ isValid(bytes: $0) }) { return r }
        return Array(s.utf8).withUnsafeBufferPointer { isValid(bytes: $0) }
    }

    static func isValid(bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count >= minLength, bytes.count <= maxLength else { return false }
        var i = 0
        // Each path component: alnum+ (separator alnum+)*; components joined by single slashes.
        while true {
            guard i < bytes.count, isAlnum(bytes[i]) else { return false }
            while i < bytes.count, isAlnum(bytes[i]) { i += 1 }
            if i == bytes.count { return true }
            let c = bytes[i]
            if c == UInt8(ascii: "/") {
                i += 1
                continue
            }
            // A separator: ".", "_", "__" or one or more "-".
            if c == UInt8(ascii: ".") {
                i += 1
            } else if c == UInt8(ascii: "_") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "_") { i += 1 }
            } else if c == UInt8(ascii: "-") {
                while i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            } else {
                return false
            }
            guard i < bytes.count, isAlnum(bytes[i]) else { return false }
        }
    }

    @inline(__always) static func isAlnum(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39)
    }

    public static func < (a: RepositoryName, b: RepositoryName) -> Bool { a.value < b.value }
}

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
public struct Tag: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let value: String
    public var description: String { value }
    public static let maxLength = 128

    public init(_ string: some StringProtocol) throws(BerthError) {
        let s = String(string)
        guard Tag.isValid(s) else { throw .tagInvalid(s) }
        value = s
    }

    public static func isValid(_ s: String) -> Bool {
        let bytes = s.utf8
        guard let first = bytes.first, bytes.count <= maxLength else { return false }
        func word(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == UInt8(ascii: "_")
        }
        guard word(first) else { return false }
        return bytes.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    public static func < (a: Tag, b: Tag) -> Bool { a.value < b.value }
}

/// A manifest reference: a tag or a digest.
public enum Reference: Hashable, Sendable, CustomStringConvertible {
    case tag(Tag)
    case digest(Digest)

    /// Anything containing ':' is taken as a digest, everything else as a tag.
    public init(parsing s: some StringProtocol) throws(BerthError) {
        if s.utf8.contains(UInt8(ascii: ":")) {
            self = .digest(try Digest(parsing: s))
        } else {
            guard Tag.isValid(String(s)) else { throw .tagInvalid(String(s)) }
            self = .tag(try Tag(s))
        }
    }

    public var description: String {
        switch self {
        case .tag(let t): return t.value
        case .digest(let d): return d.description
        }
    }
}

/// A registry: an account's private registry in one region, or its ECR Public registry (a separate
/// namespace of repositories, as in AWS, and global). The stores key repositories by `storedValue`;
/// nothing else spells it.
public struct RegistryID: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable { case `private`, `public` }
    /// The owning account (12 digits).
    public let account: String
    public let kind: Kind
    /// The region of a private registry; nil for the deployment's home region (see `RegionSet`) and for
    /// public registries.
    public let region: String?

    public static func `private`(_ account: String, region: String? = nil) -> RegistryID {
        RegistryID(account: account, kind: .private, region: region)
    }
    public static func `public`(_ account: String) -> RegistryID { RegistryID(account: account, kind: .public) }

    private static let publicPrefix = "public:"
    private static let regionSeparator: Character = "@"

    /// The text the stores key repositories and registry settings by: the account (home region),
    /// `<account>@<region>` (another region), or `public:` + the account.
    public var storedValue: String {
        switch kind {
        case .public: Self.publicPrefix + account
        case .private: region.map { "\(account)\(Self.regionSeparator)\($0)" } ?? account
        }
    }

    /// Reads `storedValue` back.
    public init(storedValue: String) {
        if storedValue.hasPrefix(Self.publicPrefix) {
            self.init(account: String(storedValue.dropFirst(Self.publicPrefix.count)), kind: .public)
        } else if let at = storedValue.firstIndex(of: Self.regionSeparator) {
            self.init(account: String(storedValue[..<at]), kind: .private,
                      region: String(storedValue[storedValue.index(after: at)...]))
        } else {
            self.init(account: storedValue, kind: .private)
        }
    }

    public init(account: String, kind: Kind, region: String? = nil) {
        self.account = account
        self.kind = kind
        self.region = kind == .public ? nil : region
    }

    public var isPublic: Bool { kind == .public }
    public var description: String { storedValue }

    /// The region's name for ARNs and events: `region`, else `home`.
    public func regionName(home: String) -> String { region ?? home }
}

/// A repository within a registry: the registry's stored id (`RegistryID.storedValue`) and the name.
public struct RepositoryKey: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// `registry.storedValue`: what the stores key repositories by.
    public let registryID: String
    public let name: String

    public init(registryID: String, name: RepositoryName) {
        self.registryID = registryID
        self.name = name.value
    }

    public init(registry: RegistryID, name: RepositoryName) {
        self.init(registryID: registry.storedValue, name: name)
    }

    /// The registry the repository belongs to.
    public var registry: RegistryID { RegistryID(storedValue: registryID) }

    /// For values read back from storage, which only ever holds validated names.
    public init(storedRegistryID registryID: String, name: String) {
        self.registryID = registryID
        self.name = name
    }

    public var description: String { "\(registryID)/\(name)" }

    public static func < (a: RepositoryKey, b: RepositoryKey) -> Bool {
        (a.registryID, a.name) < (b.registryID, b.name)
    }
}

/// An AWS account id, the registry id of its private registry: exactly 12 digits.
public enum AccountID {
    public static func isValid(_ s: String) -> Bool {
        s.utf8.count == 12 && s.utf8.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }
}
