import BerthCore
import BerthLifecycle
import BerthSupport
import Testing

let day = 86_400.0
let now = 1_800_000_000.0

/// A digest named by a small number, so tables stay readable.
func dg(_ n: Int) -> Digest {
    let hex = String(n, radix: 16)
    return Digest(algorithm: .sha256, encoded: String(repeating: "0", count: 64 - hex.count) + hex)
}

/// Image `n`, pushed `age` days ago.
func img(_ n: Int, _ tags: [String] = [], age: Double, pulled: Double? = nil, archived: Double? = nil,
         subject: Int? = nil, manifests: [Int] = []) -> LifecycleImage {
    LifecycleImage(digest: dg(n), tags: tags, pushedAt: now - age * day, lastPulledAt: pulled.map { now - $0 * day },
                   archivedAt: archived.map { now - $0 * day }, subject: subject.map(dg), manifests: manifests.map(dg))
}

func rule(_ priority: Int, _ status: LifecycleTagStatus, prefixes: [String] = [], patterns: [String] = [],
          storage: LifecycleStorageClass = .standard, _ type: LifecycleCountType, _ n: Int64,
          _ action: LifecycleAction = .expire) -> LifecycleRule {
    LifecycleRule(priority: priority, selection: LifecycleSelection(tagStatus: status, tagPrefixList: prefixes, tagPatternList: patterns,
                                                                     storageClass: storage, countType: type, countNumber: n),
                  action: action)
}

/// The decisions as (image number, action, rule priority), in the evaluation's order.
func summary(_ e: LifecycleEvaluation) -> [String] {
    e.decisions.map { d in
        let n = Int(d.image.digest.encoded, radix: 16)!
        let a: String
        switch d.action {
        case .expire: a = "expire"
        case .transition: a = "archive"
        }
        var s = "\(n) \(a) r\(d.appliedRulePriority)"
        if case .subjectExpired(let subject) = d.cause { s += " with \(Int(subject.encoded, radix: 16)!)" }
        return s
    }
}

struct EvaluationCase: Sendable, CustomTestStringConvertible {
    let name: String
    let rules: [LifecycleRule]
    let images: [LifecycleImage]
    let expected: [String]
    var testDescription: String { name }
}

@Suite struct LifecycleEvaluatorTests {
    static let cases: [EvaluationCase] = [
        EvaluationCase(name: "untagged: keep the newest 2",
                       rules: [rule(1, .untagged, .imageCountMoreThan, 2)],
                       images: [img(1, age: 5), img(2, age: 4), img(3, age: 3), img(4, age: 2), img(5, ["v1"], age: 10)],
                       expected: ["1 expire r1", "2 expire r1"]),
        EvaluationCase(name: "count not exceeded",
                       rules: [rule(1, .untagged, .imageCountMoreThan, 3)],
                       images: [img(1, age: 5), img(2, age: 4), img(3, age: 3)],
                       expected: []),
        EvaluationCase(name: "tagged prefix: every prefix must match a tag",
                       rules: [rule(1, .tagged, prefixes: ["prod", "v"], .imageCountMoreThan, 1)],
                       images: [img(1, ["prod-1", "v1"], age: 9), img(2, ["prod-2"], age: 8), img(3, ["prod-3", "v3"], age: 1),
                                img(4, ["v4"], age: 10)],
                       expected: ["1 expire r1"]),
        EvaluationCase(name: "tagged pattern with wildcards",
                       rules: [rule(1, .tagged, patterns: ["release-*-rc*"], .sinceImagePushed, 7)],
                       images: [img(1, ["release-1.0-rc1"], age: 8), img(2, ["release-1.0"], age: 30), img(3, ["release-2.0-rc2"], age: 6),
                                img(4, [], age: 100)],
                       expected: ["1 expire r1"]),
        EvaluationCase(name: "pattern without wildcard is an exact tag",
                       rules: [rule(1, .tagged, patterns: ["latest"], .sinceImagePushed, 1)],
                       images: [img(1, ["latest"], age: 3), img(2, ["latest-1"], age: 3)],
                       expected: ["1 expire r1"]),
        EvaluationCase(name: "age boundary: exactly n days is not older than n days",
                       rules: [rule(1, .any, .sinceImagePushed, 14)],
                       images: [img(1, age: 14), img(2, age: 14.01)],
                       expected: ["2 expire r1"]),
        EvaluationCase(name: "since pulled falls back to push time",
                       rules: [rule(1, .any, .sinceImagePulled, 30)],
                       images: [img(1, age: 100, pulled: 2), img(2, age: 100), img(3, age: 10), img(4, age: 100, pulled: 31)],
                       expected: ["2 expire r1", "4 expire r1"]),
        EvaluationCase(name: "an image is considered only by its highest-priority rule",
                       rules: [rule(1, .tagged, prefixes: ["keep"], .imageCountMoreThan, 100), rule(2, .any, .sinceImagePushed, 1)],
                       images: [img(1, ["keep-1"], age: 50), img(2, ["other"], age: 50), img(3, age: 50)],
                       expected: ["2 expire r2", "3 expire r2"]),
        EvaluationCase(name: "counts are per rule, over the images that rule considers",
                       rules: [rule(1, .tagged, prefixes: ["prod"], .imageCountMoreThan, 1), rule(2, .any, .imageCountMoreThan, 2)],
                       images: [img(1, ["prod-a"], age: 1), img(2, ["prod-b"], age: 2), img(3, ["dev"], age: 3), img(4, age: 4), img(5, age: 5)],
                       expected: ["5 expire r2", "2 expire r1"]),
        EvaluationCase(name: "push-time ties are broken by digest",
                       rules: [rule(1, .untagged, .imageCountMoreThan, 1)],
                       images: [img(7, age: 1), img(3, age: 1)],
                       expected: ["3 expire r1"]),
        EvaluationCase(name: "transition to archive",
                       rules: [rule(1, .any, .sinceImagePushed, 30, .transition(.archive))],
                       images: [img(1, age: 31), img(2, age: 29)],
                       expected: ["1 archive r1"]),
        EvaluationCase(name: "an archived image is not transitioned again; archive rules expire it",
                       rules: [rule(1, .any, storage: .archive, .sinceImageTransitioned, 90),
                               rule(2, .any, .sinceImagePushed, 30, .transition(.archive))],
                       images: [img(1, age: 200, archived: 100), img(2, age: 200, archived: 10), img(3, age: 40)],
                       expected: ["1 expire r1", "3 archive r2"]),
        EvaluationCase(name: "transition and expire rules together",
                       rules: [rule(1, .untagged, .imageCountMoreThan, 1),
                               rule(2, .any, .sinceImagePulled, 60, .transition(.archive))],
                       images: [img(1, age: 3), img(2, age: 2), img(3, ["v1"], age: 90), img(4, ["v2"], age: 90, pulled: 1)],
                       expected: ["3 archive r2", "1 expire r1"]),
        EvaluationCase(name: "a kept index keeps the platform manifests it lists",
                       rules: [rule(1, .untagged, .sinceImagePushed, 1)],
                       images: [img(10, ["v1"], age: 5, manifests: [11, 12]), img(11, age: 5), img(12, age: 5), img(13, age: 5)],
                       expected: ["13 expire r1"]),
        EvaluationCase(name: "an expiring index leaves its manifests to their own rules",
                       rules: [rule(1, .tagged, prefixes: ["old"], .sinceImagePushed, 1), rule(2, .untagged, .imageCountMoreThan, 1)],
                       images: [img(10, ["old"], age: 5, manifests: [11, 12]), img(11, age: 5), img(12, age: 4)],
                       expected: ["10 expire r1", "11 expire r2"]),
        EvaluationCase(name: "a manifest listed by two indexes stays while one of them stays",
                       rules: [rule(1, .tagged, prefixes: ["old"], .sinceImagePushed, 1), rule(2, .untagged, .sinceImagePushed, 1)],
                       images: [img(10, ["old"], age: 5, manifests: [11]), img(20, ["new"], age: 5, manifests: [11]), img(11, age: 5)],
                       expected: ["10 expire r1"]),
        EvaluationCase(name: "nested indexes protect down the tree",
                       rules: [rule(1, .untagged, .sinceImagePushed, 1)],
                       images: [img(10, ["v"], age: 5, manifests: [20]), img(20, age: 5, manifests: [30]), img(30, age: 5)],
                       expected: []),
        EvaluationCase(name: "referrers expire with their subject",
                       rules: [rule(1, .tagged, prefixes: ["old"], .sinceImagePushed, 1)],
                       images: [img(1, ["old"], age: 5), img(2, age: 4, subject: 1), img(3, age: 3, subject: 2), img(4, age: 3)],
                       expected: ["1 expire r1", "2 expire r1 with 1", "3 expire r1 with 2"]),
        EvaluationCase(name: "a referrer expired by its own rule keeps that rule",
                       rules: [rule(1, .tagged, prefixes: ["old"], .sinceImagePushed, 1), rule(2, .untagged, .sinceImagePushed, 1)],
                       images: [img(1, ["old"], age: 5), img(2, age: 4, subject: 1)],
                       expected: ["1 expire r1", "2 expire r2"]),
        EvaluationCase(name: "a referrer of a kept platform manifest stays with it",
                       rules: [rule(1, .untagged, .sinceImagePushed, 1)],
                       images: [img(10, ["v"], age: 5, manifests: [11]), img(11, age: 5), img(12, ["sig"], age: 5, subject: 11)],
                       expected: []),
        EvaluationCase(name: "referrers of a transitioned image stay",
                       rules: [rule(1, .tagged, prefixes: ["app"], .sinceImagePushed, 1, .transition(.archive))],
                       images: [img(1, ["app"], age: 5), img(2, age: 5, subject: 1)],
                       expected: ["1 archive r1"]),
        EvaluationCase(name: "a platform manifest is not archived while its index stays standard",
                       rules: [rule(1, .untagged, .sinceImagePushed, 1, .transition(.archive))],
                       images: [img(10, ["v"], age: 5, manifests: [11]), img(11, age: 5), img(12, age: 5)],
                       expected: ["12 archive r1"]),
    ]

    @Test(arguments: cases) func evaluates(_ c: EvaluationCase) {
        let evaluation = LifecycleEvaluator(policy: LifecyclePolicy(rules: c.rules)).evaluate(c.images, now: now)
        #expect(summary(evaluation) == c.expected)
    }

    @Test func retainedImagesNameTheirIndex() {
        let policy = LifecyclePolicy(rules: [rule(1, .untagged, .sinceImagePushed, 1)])
        let e = LifecycleEvaluator(policy: policy).evaluate([img(10, ["v1"], age: 5, manifests: [11]), img(11, age: 5)], now: now)
        #expect(e.decisions.isEmpty)
        #expect(e.retained == [LifecycleRetention(digest: dg(11), action: .expire, appliedRulePriority: 1, keptBy: dg(10))])
    }

    @Test func usesTheInjectedClock() {
        let clock = ManualWallClock(now)
        let evaluator = LifecycleEvaluator(policy: LifecyclePolicy(rules: [rule(1, .any, .sinceImagePushed, 10)]))
        let images = [img(1, age: 5)]
        #expect(evaluator.evaluate(images, clock: clock).decisions.isEmpty)
        clock.advance(by: 6 * day)
        #expect(summary(evaluator.evaluate(images, clock: clock)) == ["1 expire r1"])
    }

    @Test func parsedPolicyEvaluates() throws {
        let policy = try LifecyclePolicy(parsing: #"{"rules":[{"rulePriority":2,"selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":1},"action":{"type":"expire"}},{"rulePriority":1,"selection":{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":2},"action":{"type":"expire"}}]}"#)
        let e = LifecycleEvaluator(policy: policy).evaluate([img(1, ["v1"], age: 4), img(2, ["v2"], age: 3), img(3, ["v3"], age: 2),
                                                             img(4, age: 6), img(5, age: 1)], now: now)
        #expect(summary(e) == ["4 expire r2", "1 expire r1"])
    }

    @Test func fiftyThousandImages() {
        let policy = LifecyclePolicy(rules: [rule(1, .tagged, patterns: ["build-*"], .imageCountMoreThan, 100), rule(2, .any, .sinceImagePushed, 30)])
        let images = (0..<50_000).map { i in img(i + 1, i % 3 == 0 ? [] : ["build-\(i)"], age: Double(i % 90)) }
        let e = LifecycleEvaluator(policy: policy).evaluate(images, now: now)
        #expect(e.decisions.count > 30_000)
    }
}
