import BerthCore
import BerthSupport

/// What the evaluator knows about one image of a repository.
public struct LifecycleImage: Sendable, Equatable {
    public var digest: Digest
    public var tags: [String]
    public var pushedAt: Double
    /// nil when never pulled.
    public var lastPulledAt: Double?
    /// When the image was moved to the archive storage class; nil while it is in the standard class.
    public var archivedAt: Double?
    /// The image this one refers to (an OCI referrer: signature, SBOM, attestation), if any.
    public var subject: Digest?
    /// The manifests an index lists (empty for an image manifest).
    public var manifests: [Digest]

    public init(digest: Digest, tags: [String] = [], pushedAt: Double, lastPulledAt: Double? = nil, archivedAt: Double? = nil,
                subject: Digest? = nil, manifests: [Digest] = []) {
        self.digest = digest
        self.tags = tags
        self.pushedAt = pushedAt
        self.lastPulledAt = lastPulledAt
        self.archivedAt = archivedAt
        self.subject = subject
        self.manifests = manifests
    }

    public var storageClass: LifecycleStorageClass { archivedAt == nil ? .standard : .archive }
}

/// Why an image gets its action.
public enum LifecycleCause: Sendable, Equatable {
    /// Its own rule (the one of `appliedRulePriority`) marked it.
    case rule
    /// It refers to (`subject`) an image that expires, and goes with it.
    case subjectExpired(Digest)
}

/// The action for one image.
public struct LifecycleDecision: Sendable, Equatable {
    public var image: LifecycleImage
    public var action: LifecycleAction
    /// The rule that marked the image or, for a referrer expiring with its subject, the rule that marked the subject.
    public var appliedRulePriority: Int
    public var cause: LifecycleCause

    public init(image: LifecycleImage, action: LifecycleAction, appliedRulePriority: Int, cause: LifecycleCause = .rule) {
        self.image = image
        self.action = action
        self.appliedRulePriority = appliedRulePriority
        self.cause = cause
    }
}

/// An image a rule marked that stays because an index that stays lists it.
public struct LifecycleRetention: Sendable, Equatable {
    public var digest: Digest
    /// What the rule would have done.
    public var action: LifecycleAction
    public var appliedRulePriority: Int
    /// The index (one of them, the first by digest) that keeps it.
    public var keptBy: Digest

    public init(digest: Digest, action: LifecycleAction, appliedRulePriority: Int, keptBy: Digest) {
        self.digest = digest
        self.action = action
        self.appliedRulePriority = appliedRulePriority
        self.keptBy = keptBy
    }
}

/// The outcome of evaluating a policy on a repository.
public struct LifecycleEvaluation: Sendable, Equatable {
    /// One decision per image with an action, oldest push first (ties by digest).
    public var decisions: [LifecycleDecision]
    /// Images a rule marked but an index that stays protects, by digest.
    public var retained: [LifecycleRetention]

    public var expiring: [LifecycleDecision] { decisions.filter { $0.action == .expire } }
    public var transitioning: [LifecycleDecision] { decisions.filter { $0.action != .expire } }
}

/// Applies a lifecycle policy to a repository's images, as AWS documents ECR's evaluation, plus index
/// and referrer awareness:
///
/// - Each image is considered only by the highest-priority rule (lowest `rulePriority`) whose selection
///   matches it (tag status, tag prefixes or patterns, storage class); lower-priority rules never see it.
/// - A rule then works on the images it considers: `imageCountMoreThan n` keeps the `n` most recently
///   pushed and marks the rest; `sinceImagePushed`/`sinceImagePulled`/`sinceImageTransitioned n days`
///   mark those whose push / last pull (push when never pulled) / archive time is more than `n` days
///   before now. Marked images get the rule's action; an archived image is never selected by a
///   standard-class rule, so it is never transitioned again.
/// - Beyond ECR: an image listed by an index that stays (is not expiring) is not expired and, while that
///   index stays in the standard class, not archived either — expiring an index leaves its manifests to
///   their own rules. An expiring image takes its referrers (images whose `subject` it is) with it,
///   transitively, unless an index that stays lists them.
public struct LifecycleEvaluator: Sendable {
    public let policy: LifecyclePolicy
    public static let secondsPerDay: Double = 86_400

    public init(policy: LifecyclePolicy) { self.policy = policy }

    /// Evaluates at the clock's current time.
    public func evaluate(_ images: [LifecycleImage], clock: any WallClock) -> LifecycleEvaluation {
        evaluate(images, now: clock.now())
    }

    public func evaluate(_ images: [LifecycleImage], now: Double) -> LifecycleEvaluation {
        // 1. Each image to the first rule (by priority) that selects it.
        var considered = [[Int]](repeating: [], count: policy.rules.count)
        for (i, image) in images.enumerated() {
            let storage = image.storageClass
            if let r = policy.rules.firstIndex(where: { $0.selection.selects(tags: image.tags, storageClass: storage) }) {
                considered[r].append(i)
            }
        }
        // 2. Each rule marks among the images it considers. Ties in push time are broken by digest.
        let ids = images.map(\.digest.description)
        var marked: [Int: (LifecycleAction, Int)] = [:]
        for (r, rule) in policy.rules.enumerated() {
            for i in Self.mark(rule.selection, considered[r], images, ids, now: now) { marked[i] = (rule.action, rule.priority) }
        }
        // 3. Index protection and referrer cascade, to a fixed point.
        var index: [Digest: Int] = [:]
        for (i, image) in images.enumerated() { index[image.digest] = i }
        var parents = [[Int]](repeating: [], count: images.count)
        var referrers = [[Int]](repeating: [], count: images.count)
        for (i, image) in images.enumerated() {
            for child in image.manifests { if let c = index[child] { parents[c].append(i) } }
            if let subject = image.subject, let s = index[subject], s != i { referrers[s].append(i) }
        }
        var expiring = Set<Int>()
        var cascade: [Int: (subject: Int, priority: Int)] = [:]
        var work = marked.filter { $0.value.0 == .expire }.map(\.key)
        while let i = work.popLast() {
            guard expiring.insert(i).inserted else { continue }
            let priority = cascade[i]?.priority ?? marked[i]!.1
            for r in referrers[i] where !expiring.contains(r) && cascade[r] == nil && marked[r]?.0 != .expire {
                cascade[r] = (i, priority)
                work.append(r)
            }
        }
        var retainedBy: [Int: Int] = [:]
        var changed = true
        while changed {
            changed = false
            for i in expiring {
                let keeper = parents[i].filter { !expiring.contains($0) }.min { ids[$0] < ids[$1] }
                let orphaned = cascade[i].map { !expiring.contains($0.subject) } ?? false
                if let keeper {
                    expiring.remove(i)
                    if cascade[i] == nil { retainedBy[i] = keeper }
                    changed = true
                } else if orphaned {
                    expiring.remove(i)
                    changed = true
                }
            }
        }
        // 4. Transitions: not while an index listing the image stays in the standard class.
        var decisions: [LifecycleDecision] = []
        var retained: [LifecycleRetention] = []
        let pushOrder = images.indices.sorted { (images[$0].pushedAt, ids[$0]) < (images[$1].pushedAt, ids[$1]) }
        for i in pushOrder {
            let image = images[i]
            if expiring.contains(i) {
                if let c = cascade[i], marked[i]?.0 != .expire {
                    decisions.append(LifecycleDecision(image: image, action: .expire, appliedRulePriority: c.priority,
                                                       cause: .subjectExpired(images[c.subject].digest)))
                } else {
                    decisions.append(LifecycleDecision(image: image, action: .expire, appliedRulePriority: marked[i]!.1))
                }
            } else if let mark = marked[i] {
                let (action, priority) = mark
                if action == .expire {
                    if let keeper = retainedBy[i] {
                        retained.append(LifecycleRetention(digest: image.digest, action: action, appliedRulePriority: priority, keptBy: images[keeper].digest))
                    }
                    continue
                }
                let standardParents = parents[i].filter { p in
                    !expiring.contains(p) && images[p].archivedAt == nil && marked[p].map { $0.0 == .expire } ?? true
                }
                if let keeper = standardParents.min(by: { ids[$0] < ids[$1] }) {
                    retained.append(LifecycleRetention(digest: image.digest, action: action, appliedRulePriority: priority, keptBy: images[keeper].digest))
                } else {
                    decisions.append(LifecycleDecision(image: image, action: action, appliedRulePriority: priority))
                }
            }
        }
        retained.sort { $0.digest.description < $1.digest.description }
        return LifecycleEvaluation(decisions: decisions, retained: retained)
    }

    /// The images (indices into `images`) a rule marks among those it considers.
    static func mark(_ selection: LifecycleSelection, _ candidates: [Int], _ images: [LifecycleImage], _ ids: [String],
                     now: Double) -> [Int] {
        switch selection.countType {
        case .imageCountMoreThan:
            guard candidates.count > selection.countNumber else { return [] }
            let newestFirst = candidates.sorted { (images[$0].pushedAt, ids[$0]) > (images[$1].pushedAt, ids[$1]) }
            return Array(newestFirst.dropFirst(Int(selection.countNumber)))
        case .sinceImagePushed, .sinceImagePulled, .sinceImageTransitioned:
            let limit = Double(selection.countNumber) * secondsPerDay
            return candidates.filter { i in
                let image = images[i]
                let since: Double
                switch selection.countType {
                case .sinceImagePulled: since = image.lastPulledAt ?? image.pushedAt
                case .sinceImageTransitioned: since = image.archivedAt ?? image.pushedAt
                default: since = image.pushedAt
                }
                return now - since > limit
            }
        }
    }
}
