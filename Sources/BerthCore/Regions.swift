import BerthSupport

/// The regions one deployment presents (setting `regions`). Each account × region is a separate registry
/// with its own repositories, settings, policies, scanning and replication configuration.
///
/// The **home region** is the region whose registries are stored under the bare account id — the registries
/// every Berth before regions wrote — so data made by an earlier version belongs to it unchanged. It is
/// recorded in the metadata database on first start and never moves after, even if the `region` setting
/// does (see `RegionSet.recorded(home:)`); another region's registry is stored as `<account>@<region>`.
public struct RegionSet: Sendable, Hashable, CustomStringConvertible {
    /// The region stored under the bare account id.
    public let home: String
    /// The region clients get when they name none (`region` setting): `/v2/` requests on a host and with a
    /// token that name no region, and what `DescribeRegistry` and friends answer for those.
    public let defaultRegion: String
    /// Regions served besides nothing else; ignored when `acceptsAny`.
    public let listed: [String]
    /// `"*"`: any well-formed region name (as AWS emulators do for CI).
    public let acceptsAny: Bool

    public init(home: String, defaultRegion: String? = nil, listed: [String] = [], acceptsAny: Bool = false) {
        self.home = home
        self.defaultRegion = defaultRegion ?? home
        var all = [self.defaultRegion]
        for r in listed where !all.contains(r) { all.append(r) }
        self.listed = all
        self.acceptsAny = acceptsAny
    }

    /// One region only (the deployment before regions, and tests).
    public static func single(_ region: String) -> RegionSet { RegionSet(home: region) }

    /// Whether requests may address `region`.
    public func accepts(_ region: String) -> Bool {
        acceptsAny ? Self.isWellFormed(region) : listed.contains(region)
    }

    /// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, `ap-southeast-5`: two lowercase
    /// letters, one or more lowercase words, a number.
    public static func isWellFormed(_ region: String) -> Bool {
        let parts = region.split(separator: "-", omittingEmptySubsequences: false)
        guard region.utf8.count <= 32, parts.count >= 3, parts[0].utf8.count == 2,
              parts[0].utf8.allSatisfy({ $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }),
              let last = parts.last, !last.isEmpty, last.utf8.count <= 2,
              last.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return false }
        return parts.dropFirst().dropLast().allSatisfy { word in
            !word.isEmpty && word.utf8.allSatisfy { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") }
        }
    }

    /// The region request facts name, as a registry: nil for the home region (stored under the bare account).
    public func storageRegion(_ region: String) -> String? { region == home ? nil : region }

    public var description: String { acceptsAny ? "*" : listed.joined(separator: ",") }
}

/// The region the request being served addresses, for the code below the HTTP layer that keys registries
/// (`ECRService`, the `/v2/` door, the policy engine's resource lookups). Set once per request by the door
/// that authenticated it (`RequestRegion.$current.withValue(…)`); nil outside a request (background work),
/// which addresses the home region.
public struct RequestRegion: Sendable, Hashable {
    /// The region's name, e.g. `eu-central-1`.
    public let name: String
    /// nil when `name` is the home region (see `RegionSet.storageRegion`).
    public let storageRegion: String?

    public init(_ name: String, in regions: RegionSet) {
        self.name = name
        self.storageRegion = regions.storageRegion(name)
    }

    @TaskLocal public static var current: RequestRegion?

    /// The private registry of `account` in the current request's region.
    public static func privateRegistry(_ account: String) -> RegistryID {
        .private(account, region: current?.storageRegion)
    }

    /// The current request's region name, or `fallback` (the deployment's default) outside a request.
    public static func name(or fallback: String) -> String { current?.name ?? fallback }
}
