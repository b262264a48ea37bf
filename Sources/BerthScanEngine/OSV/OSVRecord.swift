import BerthSupport
import Foundation

/// One advisory in the Open Source Vulnerability format (https://ossf.github.io/osv-schema/).
///
/// Only the parts a scanner needs are modelled; unknown fields are ignored.
public struct OSVRecord: Sendable, Equatable, Decodable {
    public var id: String
    /// The `modified` timestamp as written in the record (RFC 3339).
    public var modified: String
    public var published: String?
    public var withdrawn: String?
    public var aliases: [String]
    public var related: [String]
    public var summary: String?
    public var details: String?
    public var severity: [OSVSeverity]
    public var affected: [OSVAffected]
    public var references: [OSVReference]

    enum CodingKeys: String, CodingKey {
        case id, modified, published, withdrawn, aliases, related, summary, details, severity, affected, references
    }

    public init(
        id: String, modified: String, published: String? = nil, withdrawn: String? = nil,
        aliases: [String] = [], related: [String] = [], summary: String? = nil, details: String? = nil,
        severity: [OSVSeverity] = [], affected: [OSVAffected] = [], references: [OSVReference] = []
    ) {
        self.id = id
        self.modified = modified
        self.published = published
        self.withdrawn = withdrawn
        self.aliases = aliases
        self.related = related
        self.summary = summary
        self.details = details
        self.severity = severity
        self.affected = affected
        self.references = references
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        modified = try c.decode(String.self, forKey: .modified)
        published = try c.decodeIfPresent(String.self, forKey: .published)
        withdrawn = try c.decodeIfPresent(String.self, forKey: .withdrawn)
        aliases = try c.decodeIfPresent([String].self, forKey: .aliases) ?? []
        related = try c.decodeIfPresent([String].self, forKey: .related) ?? []
        summary = try c.decodeIfPresent(String.self, forKey: .summary)
        details = try c.decodeIfPresent(String.self, forKey: .details)
        severity = try c.decodeIfPresent([OSVSeverity].self, forKey: .severity) ?? []
        affected = try c.decodeIfPresent([OSVAffected].self, forKey: .affected) ?? []
        references = try c.decodeIfPresent([OSVReference].self, forKey: .references) ?? []
    }
}

/// A `severity[]` entry: a scoring system and its score or vector string.
public struct OSVSeverity: Sendable, Equatable, Decodable {
    /// For example `CVSS_V3`, `CVSS_V4`, `CVSS_V2`, `Ubuntu`.
    public var type: String
    public var score: String

    public init(type: String, score: String) {
        self.type = type
        self.score = score
    }
}

/// A `references[]` entry.
public struct OSVReference: Sendable, Equatable, Decodable {
    public var type: String
    public var url: String

    public init(type: String, url: String) {
        self.type = type
        self.url = url
    }
}

/// The package an `affected[]` entry is about.
public struct OSVPackage: Sendable, Equatable, Decodable {
    /// For example `Debian:12`, `Alpine:v3.20`, `PyPI`, `npm`.
    public var ecosystem: String
    public var name: String
    public var purl: String?

    public init(ecosystem: String, name: String, purl: String? = nil) {
        self.ecosystem = ecosystem
        self.name = name
        self.purl = purl
    }
}

/// An `affected[]` entry: one package with the versions the advisory applies to.
public struct OSVAffected: Sendable, Equatable, Decodable {
    public var package: OSVPackage
    public var ranges: [OSVRange]
    public var versions: [String]
    public var severity: [OSVSeverity]
    public var ecosystemSpecific: JSONValue?
    public var databaseSpecific: JSONValue?

    enum CodingKeys: String, CodingKey {
        case package, ranges, versions, severity
        case ecosystemSpecific = "ecosystem_specific"
        case databaseSpecific = "database_specific"
    }

    public init(
        package: OSVPackage, ranges: [OSVRange] = [], versions: [String] = [], severity: [OSVSeverity] = [],
        ecosystemSpecific: JSONValue? = nil, databaseSpecific: JSONValue? = nil
    ) {
        self.package = package
        self.ranges = ranges
        self.versions = versions
        self.severity = severity
        self.ecosystemSpecific = ecosystemSpecific
        self.databaseSpecific = databaseSpecific
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        package = try c.decode(OSVPackage.self, forKey: .package)
        ranges = try c.decodeIfPresent([OSVRange].self, forKey: .ranges) ?? []
        versions = try c.decodeIfPresent([String].self, forKey: .versions) ?? []
        severity = try c.decodeIfPresent([OSVSeverity].self, forKey: .severity) ?? []
        ecosystemSpecific = try c.decodeIfPresent(JSONValue.self, forKey: .ecosystemSpecific)
        databaseSpecific = try c.decodeIfPresent(JSONValue.self, forKey: .databaseSpecific)
    }

    /// The Debian Security Tracker urgency (`ecosystem_specific.urgency`), if present.
    public var urgency: String? {
        ecosystemSpecific?["urgency"]?.stringValue
    }
}

/// A `ranges[]` entry: an ordered list of version events of one kind.
public struct OSVRange: Sendable, Equatable, Decodable {
    public var type: OSVRangeType
    public var repo: String?
    public var events: [OSVEvent]

    public init(type: OSVRangeType, repo: String? = nil, events: [OSVEvent]) {
        self.type = type
        self.repo = repo
        self.events = events
    }
}

/// The kind of versions a range's events are written in.
public enum OSVRangeType: Sendable, Equatable, Decodable {
    case ecosystem
    case semver
    case git
    case other(String)

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        switch raw {
        case "ECOSYSTEM": self = .ecosystem
        case "SEMVER": self = .semver
        case "GIT": self = .git
        default: self = .other(raw)
        }
    }
}

/// One event of a range: a version where the vulnerability starts or stops.
public enum OSVEvent: Sendable, Equatable, Decodable {
    case introduced(String)
    case fixed(String)
    case lastAffected(String)
    case limit(String)

    enum CodingKeys: String, CodingKey {
        case introduced, fixed, limit
        case lastAffected = "last_affected"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        var found: [OSVEvent] = []
        if let v = try c.decodeIfPresent(String.self, forKey: .introduced) { found.append(.introduced(v)) }
        if let v = try c.decodeIfPresent(String.self, forKey: .fixed) { found.append(.fixed(v)) }
        if let v = try c.decodeIfPresent(String.self, forKey: .lastAffected) { found.append(.lastAffected(v)) }
        if let v = try c.decodeIfPresent(String.self, forKey: .limit) { found.append(.limit(v)) }
        guard found.count == 1, let event = found.first else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "an event needs exactly one of introduced, fixed, last_affected, limit (found \(found.count))"
            ))
        }
        self = event
    }

    /// The version string the event carries.
    public var version: String {
        switch self {
        case .introduced(let v), .fixed(let v), .lastAffected(let v), .limit(let v): v
        }
    }
}
