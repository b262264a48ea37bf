/// Per-repository settings that ECR exposes (tag mutability, scanning, encryption, resource tags).
public struct RepositorySettings: Sendable, Equatable, Codable {
    /// `MUTABLE`, `IMMUTABLE`, `IMMUTABLE_WITH_EXCLUSION` or `MUTABLE_WITH_EXCLUSION`.
    public var imageTagMutability: String
    /// Wildcard filters (`*` matches any run of characters) that flip the mutability of matching tags.
    public var exclusionFilters: [String]
    public var scanOnPush: Bool
    /// `AES256`, `KMS` or `KMS_DSSE`.
    public var encryptionType: String
    public var kmsKey: String?
    public var tags: [ResourceTag]
    /// The repository policy (ECR `SetRepositoryPolicy`), as the JSON text it was set with.
    public var policy: String? = nil

    public init(imageTagMutability: String = "MUTABLE", exclusionFilters: [String] = [], scanOnPush: Bool = false,
                encryptionType: String = "AES256", kmsKey: String? = nil, tags: [ResourceTag] = []) {
        self.imageTagMutability = imageTagMutability
        self.exclusionFilters = exclusionFilters
        self.scanOnPush = scanOnPush
        self.encryptionType = encryptionType
        self.kmsKey = kmsKey
        self.tags = tags
    }

    public static let mutabilityValues = ["MUTABLE", "IMMUTABLE", "IMMUTABLE_WITH_EXCLUSION", "MUTABLE_WITH_EXCLUSION"]

    /// Whether an existing `tag` may not be moved to another image.
    public func isImmutable(tag: String) -> Bool {
        switch imageTagMutability {
        case "IMMUTABLE": return true
        case "IMMUTABLE_WITH_EXCLUSION": return !exclusionFilters.contains { Wildcard.matches($0, tag) }
        case "MUTABLE_WITH_EXCLUSION": return exclusionFilters.contains { Wildcard.matches($0, tag) }
        default: return false
        }
    }
}

/// A resource tag (`Key`/`Value`), as on AWS resources.
public struct ResourceTag: Sendable, Equatable, Codable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

/// Glob matching where `*` matches any run of characters and `?` (when allowed) one character.
public enum Wildcard {
    public static func matches(_ pattern: String, _ text: String, questionMark: Bool = false) -> Bool {
        let p = Array(pattern.utf8), t = Array(text.utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count, p[pi] == t[ti] || (questionMark && p[pi] == UInt8(ascii: "?")) {
                pi += 1; ti += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
