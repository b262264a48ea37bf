import BerthCore
import BerthLifecycle
import BerthStorage
import BerthSupport
import Foundation
import Synchronization

/// A repository's lifecycle policy as stored: the text it was put with and when it was last applied.
public struct StoredLifecyclePolicy: Sendable, Equatable {
    public var text: String
    /// ECR's `lastEvaluatedAt`: when a run last applied the policy, seconds since 1970.
    public var lastEvaluatedAt: Double?

    public init(text: String, lastEvaluatedAt: Double?) {
        self.text = text
        self.lastEvaluatedAt = lastEvaluatedAt
    }
}

/// Moves an image to another storage class. The lifecycle run calls it for `transition` actions;
/// nil: the registry's own `updateImageStorageClass` (an image an ACTIVE index lists is skipped).
public typealias LifecycleTransitionHook = @Sendable (_ repository: RepositoryKey, _ digest: Digest, _ target: LifecycleStorageClass) async throws -> Void

/// What a lifecycle run did to one image.
public struct LifecycleOutcome: Sendable, Equatable {
    public enum Result: Sendable, Equatable {
        /// Dry run: what would happen.
        case planned
        case applied
        /// Not applied, with the reason (no transition support, an index still lists it, the image is gone, …).
        case skipped(String)
        case failed(String)
    }
    public var decision: LifecycleDecision
    public var result: Result
}

/// The report of a lifecycle run over one repository.
public struct LifecycleRunReport: Sendable, Equatable {
    public var repository: RepositoryKey
    public var outcomes: [LifecycleOutcome]
    /// Images a rule marked that an index that stays keeps.
    public var retained: [LifecycleRetention]

    public func count(_ action: LifecycleAction?, _ result: LifecycleOutcome.Result) -> Int {
        outcomes.filter { (action == nil || $0.decision.action == action) && $0.result == result }.count
    }
}

/// Lifecycle policies: storage through the repository's settings (so deleting the repository deletes
/// its policy, in both stores), evaluation over the repository's images, and runs that expire through
/// `deleteImage` — the path of `BatchDeleteImage` — and hand transitions to a hook.
extension Registry {
    /// The repository's lifecycle policy, or nil; `nameUnknown` when the repository does not exist.
    public func lifecyclePolicy(_ key: RepositoryKey) async throws -> StoredLifecyclePolicy? {
        let settings = try await repository(key).settings
        return settings.lifecyclePolicy.map { StoredLifecyclePolicy(text: $0, lastEvaluatedAt: settings.lifecycleEvaluatedAt) }
    }

    /// How long a lifecycle policy preview is kept: ECR previews expire too; a day is long enough to read one.
    public static let lifecyclePreviewLifetime: Double = 86_400

    /// Keeps the repository's lifecycle policy preview (replacing the last one) in the metadata store, so
    /// it survives a restart; previews older than `lifecyclePreviewLifetime` are dropped in the same write.
    /// `results` is the caller's encoding of the preview's results.
    public func saveLifecyclePreview(_ key: RepositoryKey, policyText: String, results: [UInt8]) async throws {
        let now = clock.now()
        try await metadata.putLifecyclePreview(StoredLifecyclePreview(policyText: policyText, results: results, createdAt: now),
                                               for: key, expiredBefore: now - Self.lifecyclePreviewLifetime)
    }

    /// The repository's last lifecycle policy preview, unless it expired.
    public func lifecyclePreview(_ key: RepositoryKey) async throws -> (policyText: String, results: [UInt8])? {
        try await metadata.lifecyclePreview(key, notBefore: clock.now() - Self.lifecyclePreviewLifetime)
            .map { ($0.policyText, $0.results) }
    }

    /// Sets (replaces) the lifecycle policy. The caller validated `text` (`LifecyclePolicy(parsing:)`).
    public func putLifecyclePolicy(_ key: RepositoryKey, _ text: String) async throws {
        _ = try await updateSettings(key) {
            if $0.lifecyclePolicy != text { $0.lifecycleEvaluatedAt = nil }
            $0.lifecyclePolicy = text
        }
    }

    /// Removes the lifecycle policy and returns what it was, or nil when there was none (nothing written).
    public func deleteLifecyclePolicy(_ key: RepositoryKey) async throws -> StoredLifecyclePolicy? {
        guard try await lifecyclePolicy(key) != nil else { return nil }
        let previous = Mutex<StoredLifecyclePolicy?>(nil)
        _ = try await updateSettings(key) { settings in
            previous.withLock { $0 = settings.lifecyclePolicy.map { StoredLifecyclePolicy(text: $0, lastEvaluatedAt: settings.lifecycleEvaluatedAt) } }
            settings.lifecyclePolicy = nil
            settings.lifecycleEvaluatedAt = nil
        }
        return previous.withLock { $0 }
    }

    /// Every image of the repository as the lifecycle evaluator sees it (an index with the manifests it lists).
    public func lifecycleImages(_ key: RepositoryKey) async throws -> [LifecycleImage] {
        _ = try await repository(key)
        var out: [LifecycleImage] = []
        var after: String? = nil
        let pageSize = 1_000
        while true {
            let rows = try await images(in: key, after: after, limit: pageSize)
            for summary in rows.prefix(pageSize) {
                var children: [Digest] = []
                if MediaType.isIndex(summary.mediaType), let record = try await storedManifest(summary.digest, in: key),
                   let parsed = try? ManifestParser.parse(record.bytes, contentType: record.mediaType) {
                    children = parsed.requiredManifests
                }
                out.append(LifecycleImage(digest: summary.digest, tags: summary.tags, pushedAt: summary.pushedAt,
                                          lastPulledAt: summary.lastPulledAt,
                                          archivedAt: summary.status == .archived ? summary.lastArchivedAt : nil,
                                          subject: summary.subject, manifests: children))
            }
            guard rows.count > pageSize, let last = rows.prefix(pageSize).last else { break }
            after = last.digest.description
        }
        return out
    }

    /// Evaluates `policy` on the repository's images now, without changing anything (the preview).
    public func evaluateLifecycle(_ key: RepositoryKey, policy: LifecyclePolicy) async throws -> LifecycleEvaluation {
        try await flushPulls()
        return LifecycleEvaluator(policy: policy).evaluate(try await lifecycleImages(key), now: clock.now())
    }

    /// Runs the repository's stored lifecycle policy: expires through `deleteImage` (indexes and
    /// referrers are handled by the evaluator's order: an image an index still lists is skipped, never
    /// forced), transitions through `transition`, and records `lastEvaluatedAt`. With `dryRun` nothing
    /// changes. nil when the repository has no lifecycle policy.
    public func runLifecycle(_ key: RepositoryKey, dryRun: Bool, transition: LifecycleTransitionHook?) async throws -> LifecycleRunReport? {
        guard let stored = try await lifecyclePolicy(key) else { return nil }
        let policy: LifecyclePolicy
        do {
            policy = try LifecyclePolicy(parsing: stored.text)
        } catch {
            throw BerthError.internalError("stored lifecycle policy of \(key.registryID)/\(key.name) is invalid: \(error.detail)")
        }
        let evaluation = try await evaluateLifecycle(key, policy: policy)
        var outcomes: [LifecycleOutcome] = []
        if dryRun {
            outcomes = evaluation.decisions.map { LifecycleOutcome(decision: $0, result: .planned) }
        } else {
            outcomes = try await apply(evaluation.decisions, in: key, transition: transition)
            let now = clock.now()
            let text = stored.text
            _ = try await updateSettings(key) { if $0.lifecyclePolicy == text { $0.lifecycleEvaluatedAt = now } }
        }
        return LifecycleRunReport(repository: key, outcomes: outcomes, retained: evaluation.retained)
    }

    /// Applies decisions: expirations in rounds (an index before the manifests it lists, so a manifest
    /// whose only listing index expires in the same run goes too), then transitions.
    func apply(_ decisions: [LifecycleDecision], in key: RepositoryKey, transition: LifecycleTransitionHook?) async throws -> [LifecycleOutcome] {
        var results: [Digest: LifecycleOutcome.Result] = [:]
        var pending = decisions.filter { $0.action == .expire }
        var referencedBy: [Digest: [Digest]] = [:]
        while !pending.isEmpty {
            var next: [LifecycleDecision] = []
            for decision in pending {
                let digest = decision.image.digest
                switch try await deleteImage(key, .digest(digest)) {
                case .deleted: results[digest] = .applied
                case .notFound: results[digest] = .skipped("the image no longer exists")
                case .referenced(let parents):
                    referencedBy[digest] = parents
                    next.append(decision)
                }
            }
            if next.count == pending.count {
                for decision in next {
                    let parents = referencedBy[decision.image.digest, default: []].map(\.description).joined(separator: ", ")
                    results[decision.image.digest] = .skipped("an index still lists it: \(parents)")
                }
                break
            }
            pending = next
        }
        for decision in decisions {
            guard case .transition(let target) = decision.action else { continue }
            do {
                if let transition {
                    try await transition(key, decision.image.digest, target)
                } else {
                    // The registry's own storage class change (ECR's UpdateImageStorageClass).
                    try await updateImageStorageClass(decision.image.digest, in: key, to: target == .archive ? .archive : .standard,
                                                      at: clock.now())
                }
                results[decision.image.digest] = .applied
            } catch let refusal as ImageStorageClassRefusal {
                // An ACTIVE index lists it: archiving it alone would break the index's pulls.
                results[decision.image.digest] = .skipped("\(refusal)")
            } catch {
                results[decision.image.digest] = .failed("\(error)")
            }
        }
        return decisions.map { LifecycleOutcome(decision: $0, result: results[$0.image.digest] ?? .skipped("not applied")) }
    }

    /// The repositories of the private registries (of every account and region, or of one account's
    /// regions) that have a lifecycle policy.
    public func repositoriesWithLifecyclePolicy(account: String? = nil) async throws -> [RepositoryKey] {
        let registries = try await metadata.registryIDs().filter { id in
            let r = RegistryID(storedValue: id)
            return !r.isPublic && (account == nil || r.account == account)
        }
        var keys: [RepositoryKey] = []
        for account in registries {
            var last: String? = nil
            repeat {
                let page = try await catalog(account, PageRequest(limit: PageRequest.maxLimit, last: last))
                for name in page.items {
                    let key = RepositoryKey(storedRegistryID: account, name: name)
                    if try await findRepository(key)?.settings.lifecyclePolicy != nil { keys.append(key) }
                }
                last = page.next
            } while last != nil
        }
        return keys
    }
}
