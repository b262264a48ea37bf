import BerthSupport

/// ECR's `ScanStatus` values that Berth's basic scanner produces.
public enum ImageScanState: String, Sendable, Codable, CaseIterable {
    case pending = "PENDING"
    case inProgress = "IN_PROGRESS"
    case complete = "COMPLETE"
    case failed = "FAILED"
    case unsupportedImage = "UNSUPPORTED_IMAGE"

    /// Whether the scan has ended (successfully or not).
    public var isFinal: Bool { self == .complete || self == .failed || self == .unsupportedImage }
}

/// ECR's finding severities, most severe first.
public enum ScanSeverity: String, Sendable, Codable, CaseIterable, Comparable {
    case critical = "CRITICAL"
    case high = "HIGH"
    case medium = "MEDIUM"
    case low = "LOW"
    case informational = "INFORMATIONAL"
    case undefined = "UNDEFINED"

    public var rank: Int { Self.allCases.firstIndex(of: self)! }
    public static func < (a: ScanSeverity, b: ScanSeverity) -> Bool { a.rank < b.rank }
}

/// One stored vulnerability finding of an image, with what both ECR finding shapes need.
public struct ScanFinding: Sendable, Equatable, Codable {
    public var name: String
    public var description: String?
    public var uri: String
    public var severity: ScanSeverity
    /// ECR `attributes` (`package_name`, `package_version`, `CVSS3_SCORE`, `CVSS3_VECTOR`), in order.
    public var attributes: [Attribute]
    public var packageName: String
    public var packageVersion: String
    /// The package manager / cataloger (`dpkg`, `python`, `npm`, …).
    public var packageManager: String
    public var arch: String?
    /// Where the package database was found in the image.
    public var filePath: String?
    public var fixedInVersion: String?
    public var cvssScore: Double?
    public var cvssVector: String?
    /// The advisory's source (feed), e.g. `Debian`.
    public var source: String
    /// Vendor severity as written (e.g. the Debian urgency).
    public var vendorSeverity: String?
    public var relatedVulnerabilities: [String]

    public struct Attribute: Sendable, Equatable, Codable {
        public var key: String
        public var value: String
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    public init(name: String, description: String?, uri: String, severity: ScanSeverity, attributes: [Attribute],
                packageName: String, packageVersion: String, packageManager: String, arch: String? = nil,
                filePath: String? = nil, fixedInVersion: String? = nil, cvssScore: Double? = nil,
                cvssVector: String? = nil, source: String, vendorSeverity: String? = nil,
                relatedVulnerabilities: [String] = []) {
        self.name = name
        self.description = description
        self.uri = uri
        self.severity = severity
        self.attributes = attributes
        self.packageName = packageName
        self.packageVersion = packageVersion
        self.packageManager = packageManager
        self.arch = arch
        self.filePath = filePath
        self.fixedInVersion = fixedInVersion
        self.cvssScore = cvssScore
        self.cvssVector = cvssVector
        self.source = source
        self.vendorSeverity = vendorSeverity
        self.relatedVulnerabilities = relatedVulnerabilities
    }

    /// The order findings are reported in: most severe first, then by name and package.
    public static func reportOrder(_ a: ScanFinding, _ b: ScanFinding) -> Bool {
        if a.severity != b.severity { return a.severity < b.severity }
        if a.name != b.name { return a.name < b.name }
        if a.packageName != b.packageName { return a.packageName < b.packageName }
        return a.packageVersion < b.packageVersion
    }
}

/// The scan of one image (manifest) in one repository: its status and, once complete, its findings.
public struct ImageScanRecord: Sendable, Equatable {
    public var repository: RepositoryKey
    public var digest: Digest
    public var state: ImageScanState
    /// ECR's `ScanStatusDescription`.
    public var statusDescription: String?
    /// What asked for the scan: `PUSH`, `MANUAL` or `CONTINUOUS`.
    public var trigger: String
    public var requestedAt: Double
    public var startedAt: Double?
    public var completedAt: Double?
    /// When StartImageScan last asked for this image (ECR allows one a day).
    public var manualRequestedAt: Double?
    /// The newest `modified` of the vulnerability database the scan used.
    public var vulnerabilitySourceUpdatedAt: Double?
    public var findings: [ScanFinding]

    public init(repository: RepositoryKey, digest: Digest, state: ImageScanState, statusDescription: String? = nil,
                trigger: String, requestedAt: Double, startedAt: Double? = nil, completedAt: Double? = nil,
                manualRequestedAt: Double? = nil, vulnerabilitySourceUpdatedAt: Double? = nil,
                findings: [ScanFinding] = []) {
        self.repository = repository
        self.digest = digest
        self.state = state
        self.statusDescription = statusDescription
        self.trigger = trigger
        self.requestedAt = requestedAt
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.manualRequestedAt = manualRequestedAt
        self.vulnerabilitySourceUpdatedAt = vulnerabilitySourceUpdatedAt
        self.findings = findings
    }

    /// Number of findings per severity; only severities that occur (as ECR reports them).
    public var severityCounts: [ScanSeverity: Int] {
        findings.reduce(into: [:]) { $0[$1.severity, default: 0] += 1 }
    }
}

/// A registry's scanning configuration (ECR's `RegistryScanningConfiguration`).
public struct RegistryScanningConfiguration: Sendable, Equatable, Codable {
    public var scanType: String
    public var rules: [Rule]

    public struct Rule: Sendable, Equatable, Codable {
        /// `SCAN_ON_PUSH`, `CONTINUOUS_SCAN` or `MANUAL`.
        public var scanFrequency: String
        /// Wildcard repository filters (`*` matches any run of characters).
        public var repositoryFilters: [String]
        public init(scanFrequency: String, repositoryFilters: [String]) {
            self.scanFrequency = scanFrequency
            self.repositoryFilters = repositoryFilters
        }
    }

    public init(scanType: String = "BASIC", rules: [Rule] = []) {
        self.scanType = scanType
        self.rules = rules
    }

    public static let scanTypes = ["BASIC", "ENHANCED"]
    public static let frequencies = ["SCAN_ON_PUSH", "CONTINUOUS_SCAN", "MANUAL"]

    /// How a repository is scanned: the most frequent registry rule whose filters match it
    /// (`CONTINUOUS_SCAN` over `SCAN_ON_PUSH` over `MANUAL`); when no rule matches, the repository's
    /// own scan-on-push flag (ECR's repository-level setting).
    public func effective(repository name: String, scanOnPush: Bool) -> (frequency: String, filters: [String]) {
        var best: (frequency: String, filters: [String])? = nil
        for rule in rules {
            let matched = rule.repositoryFilters.filter { WildcardPattern.glob($0, questionMark: false).matches(name) }
            guard !matched.isEmpty else { continue }
            if best == nil || Self.weight(rule.scanFrequency) > Self.weight(best!.frequency) {
                best = (rule.scanFrequency, matched)
            }
        }
        if let best { return best }
        return scanOnPush ? ("SCAN_ON_PUSH", []) : ("MANUAL", [])
    }

    static func weight(_ frequency: String) -> Int {
        switch frequency {
        case "CONTINUOUS_SCAN": return 2
        case "SCAN_ON_PUSH": return 1
        default: return 0
        }
    }

    /// The account setting the configuration is stored under.
    public static let settingName = "REGISTRY_SCANNING_CONFIGURATION"
}
