import BerthSupport

/// An ECR lifecycle policy (`lifecyclePolicyText`), parsed and validated as ECR validates it: the rules
/// of AWS's "Lifecycle policy properties" page, with ECR's JSON-schema style messages for structural
/// errors. Pure: no clock, no storage.
public struct LifecyclePolicy: Sendable, Equatable {
    /// The rules, in priority order (lowest `rulePriority` first: evaluated first).
    public let rules: [LifecycleRule]

    /// `LifecyclePolicyText` in botocore's `ecr` model: 100 to 30,720 characters.
    public static let minimumLength = 100
    public static let maximumLength = 30_720
    /// `rulePriority` is 1 to 999.
    public static let priorities: ClosedRange<Int64> = 1...999
    /// A `tagPatternList` entry may hold at most four `*` wildcards.
    public static let maximumWildcards = 4

    public init(rules: [LifecycleRule]) {
        self.rules = rules.sorted { $0.priority < $1.priority }
    }

    /// Parses and validates policy text. The length limits of the API model are checked by the door
    /// (they are the request's constraint, not the policy's); this checks the document.
    public init(parsing text: String) throws(LifecyclePolicyError) {
        let value: JSONValue
        do {
            value = try JSONValue.parse(Array(text.utf8))
        } catch {
            throw LifecyclePolicyError("the lifecycle policy is not valid JSON")
        }
        guard case .object(let root) = value else { throw .type(of: value, allowed: "object") }
        try Self.allowOnly(["rules"], in: root)
        try Self.require(["rules"], in: root)
        guard case .array(let list) = root["rules"]! else { throw .type(of: root["rules"]!, allowed: "array") }
        guard !list.isEmpty else {
            throw LifecyclePolicyError("array is too short: must have at least 1 elements but instance has 0 elements")
        }
        var rules: [LifecycleRule] = []
        for item in list { rules.append(try LifecycleRule(parsing: item)) }
        try Self.checkRuleSet(rules)
        self.init(rules: rules)
    }

    /// The rules across rules: unique priorities, the `any` rule last, one rule for untagged images (per storage class).
    static func checkRuleSet(_ rules: [LifecycleRule]) throws(LifecyclePolicyError) {
        var seen = Set<Int>()
        for rule in rules where !seen.insert(rule.priority).inserted {
            throw LifecyclePolicyError("rulePriority \(rule.priority) is used by more than one rule; each rule must have a unique rulePriority")
        }
        let highest = rules.map(\.priority).max() ?? 0
        for rule in rules where rule.selection.tagStatus == .any && rule.priority != highest {
            throw LifecyclePolicyError("the rule with tagStatus 'any' (rulePriority \(rule.priority)) must have the highest rulePriority value")
        }
        var untagged = Set<LifecycleStorageClass>()
        for rule in rules where rule.selection.tagStatus == .untagged && !untagged.insert(rule.selection.storageClass).inserted {
            throw LifecyclePolicyError("only one rule may select untagged images of the \(rule.selection.storageClass.rawValue) storage class")
        }
    }

    static func require(_ names: [String], in object: [String: JSONValue]) throws(LifecyclePolicyError) {
        let missing = names.filter { object[$0] == nil }
        guard missing.isEmpty else {
            throw LifecyclePolicyError("object has missing required properties (\(quotedList(missing)))")
        }
    }

    static func allowOnly(_ names: Set<String>, in object: [String: JSONValue]) throws(LifecyclePolicyError) {
        let extra = object.keys.filter { !names.contains($0) }.sorted()
        guard extra.isEmpty else {
            throw LifecyclePolicyError("object instance has properties which are not allowed by the schema: \(quotedList(extra))")
        }
    }

    static func quotedList(_ names: [String]) -> String {
        "[" + names.map { "\"\($0)\"" }.joined(separator: ",") + "]"
    }
}

/// A validation failure; `detail` is what follows ECR's "Lifecycle policy validation failure: ".
public struct LifecyclePolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let detail: String
    public init(_ detail: String) { self.detail = detail }
    public var description: String { detail }

    /// The `InvalidParameterException` message ECR gives for an invalid `lifecyclePolicyText`.
    public var ecrMessage: String {
        "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: \(detail)'"
    }

    static func type(of value: JSONValue, allowed: String) -> LifecyclePolicyError {
        let actual: String
        switch value {
        case .null: actual = "null"
        case .bool: actual = "boolean"
        case .int: actual = "integer"
        case .double: actual = "number"
        case .string: actual = "string"
        case .array: actual = "array"
        case .object: actual = "object"
        }
        return LifecyclePolicyError("instance type (\(actual)) does not match any allowed primitive type (allowed: [\"\(allowed)\"])")
    }

    static func notInEnum(_ value: String, _ allowed: [String]) -> LifecyclePolicyError {
        LifecyclePolicyError("instance value (\"\(value)\") not found in enum (possible values: \(LifecyclePolicy.quotedList(allowed)))")
    }
}

public enum LifecycleTagStatus: String, Sendable, Equatable, CaseIterable {
    case tagged, untagged, any
}

/// The storage class a rule selects (`selection.storageClass`) or an image is in.
public enum LifecycleStorageClass: String, Sendable, Equatable, Hashable, CaseIterable {
    case standard, archive
}

public enum LifecycleCountType: String, Sendable, Equatable, CaseIterable {
    case imageCountMoreThan, sinceImagePushed, sinceImagePulled, sinceImageTransitioned

    /// Whether the count is an age (and so needs `countUnit`).
    public var isAge: Bool { self != .imageCountMoreThan }
}

/// What a rule does to the images it marks.
public enum LifecycleAction: Sendable, Equatable, Hashable {
    case expire
    /// Move to another storage class (ECR: `archive` only).
    case transition(LifecycleStorageClass)
}

/// `selection` of a rule.
public struct LifecycleSelection: Sendable, Equatable {
    public var tagStatus: LifecycleTagStatus
    public var tagPrefixList: [String]
    public var tagPatternList: [String]
    public var storageClass: LifecycleStorageClass
    public var countType: LifecycleCountType
    /// An image count, or an age in days (`countUnit` is always `days` for the age count types).
    public var countNumber: Int64
    let patterns: [WildcardPattern]

    public init(tagStatus: LifecycleTagStatus, tagPrefixList: [String] = [], tagPatternList: [String] = [],
                storageClass: LifecycleStorageClass = .standard, countType: LifecycleCountType, countNumber: Int64) {
        self.tagStatus = tagStatus
        self.tagPrefixList = tagPrefixList
        self.tagPatternList = tagPatternList
        self.storageClass = storageClass
        self.countType = countType
        self.countNumber = countNumber
        self.patterns = tagPatternList.map { WildcardPattern.glob($0, questionMark: false) }
    }

    public static func == (a: LifecycleSelection, b: LifecycleSelection) -> Bool {
        a.tagStatus == b.tagStatus && a.tagPrefixList == b.tagPrefixList && a.tagPatternList == b.tagPatternList
            && a.storageClass == b.storageClass && a.countType == b.countType && a.countNumber == b.countNumber
    }

    /// Whether an image with `tags` in `storageClass` is selected. With several prefixes or patterns,
    /// an image is selected only when each of them matches one of its tags (AWS: "only images with all
    /// specified tags are selected").
    public func selects(tags: [String], storageClass: LifecycleStorageClass) -> Bool {
        guard storageClass == self.storageClass else { return false }
        switch tagStatus {
        case .any: return true
        case .untagged: return tags.isEmpty
        case .tagged:
            guard !tags.isEmpty else { return false }
            if !tagPrefixList.isEmpty {
                return tagPrefixList.allSatisfy { prefix in tags.contains { $0.hasPrefix(prefix) } }
            }
            return patterns.allSatisfy { pattern in tags.contains { pattern.matches($0) } }
        }
    }
}

/// One rule of a lifecycle policy.
public struct LifecycleRule: Sendable, Equatable {
    public var priority: Int
    public var description: String?
    public var selection: LifecycleSelection
    public var action: LifecycleAction

    public init(priority: Int, description: String? = nil, selection: LifecycleSelection, action: LifecycleAction = .expire) {
        self.priority = priority
        self.description = description
        self.selection = selection
        self.action = action
    }

    init(parsing value: JSONValue) throws(LifecyclePolicyError) {
        guard case .object(let o) = value else { throw .type(of: value, allowed: "object") }
        try LifecyclePolicy.allowOnly(["rulePriority", "description", "selection", "action"], in: o)
        try LifecyclePolicy.require(["rulePriority", "selection", "action"], in: o)
        let priority = try Self.integer(o["rulePriority"]!, range: LifecyclePolicy.priorities)
        var description: String? = nil
        if let d = o["description"] {
            guard case .string(let s) = d else { throw .type(of: d, allowed: "string") }
            description = s
        }
        let selection = try Self.selection(o["selection"]!)
        let action = try Self.action(o["action"]!)
        if case .transition = action {
            // Only images in the standard class can be moved to archive; archived images can only expire.
            guard selection.countType != .sinceImageTransitioned, selection.storageClass == .standard else {
                throw LifecyclePolicyError("rulePriority \(priority): the transition action applies only to images in the standard storage class, so it cannot be used with countType 'sinceImageTransitioned' or storageClass 'archive'")
            }
        }
        self.init(priority: Int(priority), description: description, selection: selection, action: action)
    }

    static func integer(_ value: JSONValue, range: ClosedRange<Int64>) throws(LifecyclePolicyError) -> Int64 {
        let n: Int64
        switch value {
        case .int(let i): n = i
        case .double(let d) where d.rounded() == d && abs(d) < 1e15: n = Int64(d)
        default: throw .type(of: value, allowed: "integer")
        }
        if n < range.lowerBound {
            throw LifecyclePolicyError("numeric instance is lower than the required minimum (minimum: \(range.lowerBound), found: \(n))")
        }
        if n > range.upperBound {
            throw LifecyclePolicyError("numeric instance is greater than the required maximum (maximum: \(range.upperBound), found: \(n))")
        }
        return n
    }

    static func string<T: RawRepresentable & CaseIterable>(_ value: JSONValue, as: T.Type) throws(LifecyclePolicyError) -> T where T.RawValue == String {
        guard case .string(let s) = value else { throw .type(of: value, allowed: "string") }
        guard let v = T(rawValue: s) else { throw .notInEnum(s, T.allCases.map(\.rawValue)) }
        return v
    }

    static func stringList(_ value: JSONValue, name: String) throws(LifecyclePolicyError) -> [String] {
        guard case .array(let items) = value else { throw .type(of: value, allowed: "array") }
        guard !items.isEmpty else {
            throw LifecyclePolicyError("\(name): array is too short: must have at least 1 elements but instance has 0 elements")
        }
        var out: [String] = []
        for item in items {
            guard case .string(let s) = item else { throw .type(of: item, allowed: "string") }
            guard !s.isEmpty else { throw LifecyclePolicyError("\(name): string \"\" is too short (length: 0, required minimum: 1)") }
            out.append(s)
        }
        return out
    }

    static func selection(_ value: JSONValue) throws(LifecyclePolicyError) -> LifecycleSelection {
        guard case .object(let s) = value else { throw .type(of: value, allowed: "object") }
        try LifecyclePolicy.allowOnly(["tagStatus", "tagPrefixList", "tagPatternList", "storageClass", "countType", "countUnit", "countNumber"], in: s)
        try LifecyclePolicy.require(["tagStatus", "countType", "countNumber"], in: s)
        let tagStatus = try string(s["tagStatus"]!, as: LifecycleTagStatus.self)
        let countType = try string(s["countType"]!, as: LifecycleCountType.self)
        let countNumber = try integer(s["countNumber"]!, range: 1...Int64(Int32.max))
        let prefixes = try s["tagPrefixList"].map { v throws(LifecyclePolicyError) in try stringList(v, name: "tagPrefixList") } ?? []
        let patterns = try s["tagPatternList"].map { v throws(LifecyclePolicyError) in try stringList(v, name: "tagPatternList") } ?? []
        switch tagStatus {
        case .tagged:
            if s["tagPrefixList"] != nil && s["tagPatternList"] != nil {
                throw LifecyclePolicyError("tagPrefixList and tagPatternList cannot both be specified in the same rule")
            }
            if prefixes.isEmpty && patterns.isEmpty {
                throw LifecyclePolicyError("tagPrefixList or tagPatternList must be specified when tagStatus is 'tagged'")
            }
        case .untagged, .any:
            if s["tagPrefixList"] != nil || s["tagPatternList"] != nil {
                throw LifecyclePolicyError("tagPrefixList and tagPatternList can only be specified when tagStatus is 'tagged'")
            }
        }
        for pattern in patterns where pattern.filter({ $0 == "*" }).count > LifecyclePolicy.maximumWildcards {
            throw LifecyclePolicyError("tagPatternList entry \"\(pattern)\" has more than \(LifecyclePolicy.maximumWildcards) wildcards (*)")
        }
        var storageClass = LifecycleStorageClass.standard
        if let v = s["storageClass"] { storageClass = try string(v, as: LifecycleStorageClass.self) }
        if countType == .sinceImageTransitioned {
            if s["storageClass"] == nil || storageClass != .archive {
                throw LifecyclePolicyError("storageClass must be 'archive' when countType is 'sinceImageTransitioned'")
            }
        } else if storageClass != .standard {
            throw LifecyclePolicyError("storageClass 'archive' can only be used with countType 'sinceImageTransitioned'")
        }
        if countType.isAge {
            guard let unit = s["countUnit"] else {
                throw LifecyclePolicyError("countUnit is required when countType is '\(countType.rawValue)'")
            }
            guard case .string(let u) = unit else { throw .type(of: unit, allowed: "string") }
            guard u == "days" else { throw .notInEnum(u, ["days"]) }
        } else if s["countUnit"] != nil {
            throw LifecyclePolicyError("countUnit cannot be specified when countType is 'imageCountMoreThan'")
        }
        return LifecycleSelection(tagStatus: tagStatus, tagPrefixList: prefixes, tagPatternList: patterns,
                                  storageClass: storageClass, countType: countType, countNumber: countNumber)
    }

    static func action(_ value: JSONValue) throws(LifecyclePolicyError) -> LifecycleAction {
        guard case .object(let a) = value else { throw .type(of: value, allowed: "object") }
        try LifecyclePolicy.allowOnly(["type", "targetStorageClass"], in: a)
        try LifecyclePolicy.require(["type"], in: a)
        guard case .string(let type) = a["type"]! else { throw .type(of: a["type"]!, allowed: "string") }
        switch type {
        case "expire":
            if a["targetStorageClass"] != nil {
                throw LifecyclePolicyError("targetStorageClass can only be specified when the action type is 'transition'")
            }
            return .expire
        case "transition":
            guard let target = a["targetStorageClass"] else {
                throw LifecyclePolicyError("targetStorageClass is required when the action type is 'transition'")
            }
            guard case .string(let t) = target else { throw .type(of: target, allowed: "string") }
            guard t == "archive" else { throw .notInEnum(t, ["archive"]) }
            return .transition(.archive)
        default:
            throw .notInEnum(type, ["expire", "transition"])
        }
    }
}
