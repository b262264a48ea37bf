import BerthLifecycle
import Testing

/// A policy of one rule, from the JSON of its `selection` and `action`.
func policyText(_ selection: String, action: String = #"{"type":"expire"}"#, priority: String = "1") -> String {
    #"{"rules":[{"rulePriority":\#(priority),"description":"a rule","selection":\#(selection),"action":\#(action)}]}"#
}

struct InvalidPolicy: Sendable, CustomTestStringConvertible {
    let name: String
    let text: String
    let error: String
    var testDescription: String { name }
}

@Suite struct LifecyclePolicyGrammarTests {
    static let valid: [(String, String)] = [
        ("untagged count", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#)),
        ("tagged prefixes", policyText(#"{"tagStatus":"tagged","tagPrefixList":["prod","v1"],"countType":"imageCountMoreThan","countNumber":5}"#)),
        ("tagged patterns, four wildcards", policyText(#"{"tagStatus":"tagged","tagPatternList":["*test*1*2*3","prod*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":14}"#)),
        ("any since pulled", policyText(#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"days","countNumber":30}"#)),
        ("transition", policyText(#"{"tagStatus":"any","countType":"sinceImagePushed","countUnit":"days","countNumber":30}"#,
                                  action: #"{"type":"transition","targetStorageClass":"archive"}"#)),
        ("archive expiry", policyText(#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":90}"#)),
        ("explicit standard", policyText(#"{"tagStatus":"untagged","storageClass":"standard","countType":"imageCountMoreThan","countNumber":3}"#)),
        ("priority 999", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, priority: "999")),
        ("several rules, any last", #"{"rules":[{"rulePriority":10,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":100},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#),
    ]

    @Test(arguments: valid) func accepts(_ name: String, _ text: String) throws {
        let policy = try LifecyclePolicy(parsing: text)
        #expect(!policy.rules.isEmpty, "\(name)")
        #expect(policy.rules.map(\.priority) == policy.rules.map(\.priority).sorted())
    }

    @Test func parsesEveryField() throws {
        let policy = try LifecyclePolicy(parsing: Self.valid[2].1)
        let rule = try #require(policy.rules.first)
        #expect(rule.priority == 1)
        #expect(rule.description == "a rule")
        #expect(rule.selection == LifecycleSelection(tagStatus: .tagged, tagPatternList: ["*test*1*2*3", "prod*"],
                                                     countType: .sinceImagePushed, countNumber: 14))
        #expect(rule.action == .expire)
        let transition = try LifecyclePolicy(parsing: Self.valid[4].1)
        #expect(transition.rules[0].action == .transition(.archive))
        let archive = try LifecyclePolicy(parsing: Self.valid[5].1)
        #expect(archive.rules[0].selection.storageClass == .archive)
    }

    static let invalidTable: [(String, String, String)] = [
        ("not JSON", "{rules", "the lifecycle policy is not valid JSON"),
        ("not an object", "[]", #"instance type (array) does not match any allowed primitive type (allowed: ["object"])"#),
        ("no rules", "{}", #"object has missing required properties (["rules"])"#),
        ("empty rules", #"{"rules":[]}"#, "array is too short: must have at least 1 elements but instance has 0 elements"),
        ("unknown top-level member", #"{"rules":[],"x":1}"#, #"object instance has properties which are not allowed by the schema: ["x"]"#),
        ("missing priority", #"{"rules":[{"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
         #"object has missing required properties (["rulePriority"])"#),
        ("priority 0", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, priority: "0"),
         "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
        ("priority 1000", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, priority: "1000"),
         "numeric instance is greater than the required maximum (maximum: 999, found: 1000)"),
        ("priority as string", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1}"#, priority: #""1""#),
         #"instance type (string) does not match any allowed primitive type (allowed: ["integer"])"#),
        ("fractional count", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1.5}"#),
         #"instance type (number) does not match any allowed primitive type (allowed: ["integer"])"#),
        ("count 0", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":0}"#),
         "numeric instance is lower than the required minimum (minimum: 1, found: 0)"),
        ("missing countNumber", policyText(#"{"tagStatus":"untagged","countType":"imageCountMoreThan"}"#),
         #"object has missing required properties (["countNumber"])"#),
        ("bad tagStatus", policyText(#"{"tagStatus":"TAGGED","countType":"imageCountMoreThan","countNumber":1}"#),
         #"instance value ("TAGGED") not found in enum (possible values: ["tagged","untagged","any"])"#),
        ("bad countType", policyText(#"{"tagStatus":"any","countType":"sinceImageBuilt","countUnit":"days","countNumber":1}"#),
         #"instance value ("sinceImageBuilt") not found in enum (possible values: ["imageCountMoreThan","sinceImagePushed","sinceImagePulled","sinceImageTransitioned"])"#),
        ("unknown selection member", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1,"tagSuffixList":["x"]}"#),
         #"object instance has properties which are not allowed by the schema: ["tagSuffixList"]"#),
        ("tagged without a list", policyText(#"{"tagStatus":"tagged","countType":"imageCountMoreThan","countNumber":1}"#),
         "tagPrefixList or tagPatternList must be specified when tagStatus is 'tagged'"),
        ("tagged with both lists", policyText(#"{"tagStatus":"tagged","tagPrefixList":["a"],"tagPatternList":["a*"],"countType":"imageCountMoreThan","countNumber":1}"#),
         "tagPrefixList and tagPatternList cannot both be specified in the same rule"),
        ("untagged with prefixes", policyText(#"{"tagStatus":"untagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1}"#),
         "tagPrefixList and tagPatternList can only be specified when tagStatus is 'tagged'"),
        ("any with patterns", policyText(#"{"tagStatus":"any","tagPatternList":["a*"],"countType":"imageCountMoreThan","countNumber":1}"#),
         "tagPrefixList and tagPatternList can only be specified when tagStatus is 'tagged'"),
        ("empty prefix list", policyText(#"{"tagStatus":"tagged","tagPrefixList":[],"countType":"imageCountMoreThan","countNumber":1}"#),
         "tagPrefixList: array is too short: must have at least 1 elements but instance has 0 elements"),
        ("five wildcards", policyText(#"{"tagStatus":"tagged","tagPatternList":["test*1*2*3*4*5"],"countType":"imageCountMoreThan","countNumber":1}"#),
         #"tagPatternList entry "test*1*2*3*4*5" has more than 4 wildcards (*)"#),
        ("age without unit", policyText(#"{"tagStatus":"any","countType":"sinceImagePushed","countNumber":1}"#),
         "countUnit is required when countType is 'sinceImagePushed'"),
        ("count with unit", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countUnit":"days","countNumber":1}"#),
         "countUnit cannot be specified when countType is 'imageCountMoreThan'"),
        ("hours", policyText(#"{"tagStatus":"any","countType":"sinceImagePulled","countUnit":"hours","countNumber":1}"#),
         #"instance value ("hours") not found in enum (possible values: ["days"])"#),
        ("transitioned without archive class", policyText(#"{"tagStatus":"any","countType":"sinceImageTransitioned","countUnit":"days","countNumber":1}"#),
         "storageClass must be 'archive' when countType is 'sinceImageTransitioned'"),
        ("archive class with push age", policyText(#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImagePushed","countUnit":"days","countNumber":1}"#),
         "storageClass 'archive' can only be used with countType 'sinceImageTransitioned'"),
        ("bad action", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#, action: #"{"type":"delete"}"#),
         #"instance value ("delete") not found in enum (possible values: ["expire","transition"])"#),
        ("transition without target", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#, action: #"{"type":"transition"}"#),
         "targetStorageClass is required when the action type is 'transition'"),
        ("transition to standard", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
                                              action: #"{"type":"transition","targetStorageClass":"standard"}"#),
         #"instance value ("standard") not found in enum (possible values: ["archive"])"#),
        ("expire with target", policyText(#"{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1}"#,
                                          action: #"{"type":"expire","targetStorageClass":"archive"}"#),
         "targetStorageClass can only be specified when the action type is 'transition'"),
        ("transition of archived images", policyText(#"{"tagStatus":"any","storageClass":"archive","countType":"sinceImageTransitioned","countUnit":"days","countNumber":1}"#,
                                                     action: #"{"type":"transition","targetStorageClass":"archive"}"#),
         "rulePriority 1: the transition action applies only to images in the standard storage class, so it cannot be used with countType 'sinceImageTransitioned' or storageClass 'archive'"),
        ("duplicate priority", #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPrefixList":["a"],"countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
         "rulePriority 1 is used by more than one rule; each rule must have a unique rulePriority"),
        ("any not last", #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
         "the rule with tagStatus 'any' (rulePriority 1) must have the highest rulePriority value"),
        ("two untagged rules", #"{"rules":[{"rulePriority":1,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":2,"selection":{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":1},"action":{"type":"expire"}}]}"#,
         "only one rule may select untagged images of the standard storage class"),
        ("description not a string", #"{"rules":[{"rulePriority":1,"description":5,"selection":{"tagStatus":"untagged","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}}]}"#,
         #"instance type (integer) does not match any allowed primitive type (allowed: ["string"])"#),
    ]
    static let invalid = invalidTable.map { InvalidPolicy(name: $0.0, text: $0.1, error: $0.2) }

    @Test(arguments: invalid) func refuses(_ c: InvalidPolicy) {
        #expect(throws: LifecyclePolicyError(c.error)) { try LifecyclePolicy(parsing: c.text) }
    }

    @Test func ecrMessage() {
        let error = LifecyclePolicyError("countUnit is required when countType is 'sinceImagePushed'")
        #expect(error.ecrMessage == "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: countUnit is required when countType is 'sinceImagePushed''")
    }
}
