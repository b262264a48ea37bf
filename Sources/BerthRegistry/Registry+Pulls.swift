import BerthCore
import BerthStorage
import BerthSupport
import Logging
import Synchronization

/// ECR's `lastRecordedPullTime` and the gallery's download counts, kept without a store write per pull:
/// pulls are noted in memory (per image: the latest time, and how many GETs named a tag or the digest) and
/// written in one transaction per flush — every `pullTimeFlushSeconds` by the server, at shutdown, and
/// before every read that shows pull times (DescribeImages), so what clients see is exact. A crash loses
/// at most the pulls of one interval. Pulls by principals on the registry's pull time update exclusion
/// list do not move the pull time (they still count as downloads); the list is cached per account and
/// reloaded only after this process changes it.
final class PullRecorder: Sendable {
    struct PullKey: Hashable {
        let repository: RepositoryKey
        let digest: Digest
    }

    /// What was noted of one image since the last flush.
    struct Noted: Equatable {
        var lastPulledAt: Double?
        var byTag: Int64 = 0
        var byDigest: Int64 = 0

        mutating func add(_ other: Noted) {
            if let t = other.lastPulledAt { lastPulledAt = max(t, lastPulledAt ?? t) }
            byTag += other.byTag
            byDigest += other.byDigest
        }
    }

    /// Pulls noted since the last flush.
    let pending = Mutex<[PullKey: Noted]>([:])
    /// The last flush started; the next one waits for it, so flushes write in order and a flush that
    /// returns has written every pull noted before it was called.
    let tail = Mutex<Task<Void, any Error>?>(nil)

    struct Exclusions {
        /// Match keys (`PullRecorder.matchKey`) of each account's exclusions, once loaded.
        var byAccount: [String: Set<String>] = [:]
        /// Advanced by every change; a load that raced with one is not kept.
        var generation: UInt64 = 0
    }
    let exclusions = Mutex(Exclusions())

    /// Notes one pull: at `time` (nil: not recorded as a pull time), by tag or by digest.
    func note(_ repository: RepositoryKey, _ digest: Digest, at time: Double?, byTag: Bool) {
        let noted = Noted(lastPulledAt: time, byTag: byTag ? 1 : 0, byDigest: byTag ? 0 : 1)
        pending.withLock { p in p[PullKey(repository: repository, digest: digest), default: Noted()].add(noted) }
    }

    func take() -> [PullKey: Noted] {
        pending.withLock { p in
            let taken = p
            p = [:]
            return taken
        }
    }

    /// Puts back pulls whose write failed, adding them to those noted meanwhile.
    func restore(_ pulls: [PullKey: Noted]) {
        pending.withLock { p in
            for (k, n) in pulls { p[k, default: Noted()].add(n) }
        }
    }

    /// What identifies a principal on an exclusion list, across the forms of its ARN: `<account>:role:<name>`
    /// for a role (`arn:aws:iam::<account>:role/<path><name>`, and the sessions of it,
    /// `arn:aws:sts::<account>:assumed-role/<name>/<session>`), `<account>:user:<name>` for a user. IAM
    /// names are unique in an account whatever their path. Nil for anything else (the root, unknown forms).
    static func matchKey(arn: String) -> String? {
        guard let parsed = ARN(arn) else { return nil }
        let parts = parsed.resource.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        switch (parsed.service, parts[0]) {
        case ("iam", "role"): return "\(parsed.account):role:\(parts[parts.count - 1])"
        case ("iam", "user"): return "\(parsed.account):user:\(parts[parts.count - 1])"
        case ("sts", "assumed-role") where parts.count == 3: return "\(parsed.account):role:\(parts[1])"
        default: return nil
        }
    }
}

extension Registry {
    /// ECR's limit of pull time update exclusions per registry.
    public static let maxPullTimeExclusions = 100

    /// Notes that `principal` pulled an image (a manifest GET on /v2/, or a BatchGetImage entry), naming a
    /// tag (`byTag`) or the digest; written in batches by `flushPulls`. The pull time is not noted when the
    /// principal is on the registry's pull time update exclusion list; the download always is.
    public func notePull(_ repository: RepositoryKey, _ digest: Digest, byTag: Bool, by principal: Principal?) async {
        let now = clock.now()
        var time: Double? = now
        if let principal {
            do {
                // Most registries exclude no one: the principal's ARN is parsed only when this one does.
                let excluded = try await excludedPullers(of: repository.registryID)
                if !excluded.isEmpty, let key = PullRecorder.matchKey(arn: principal.arn), excluded.contains(key) { time = nil }
            } catch {
                // The list could not be read: count the pull (a pull time too recent is the safe error).
                logger.warning("reading pull time update exclusions failed", metadata: ["error": "\(error)"])
            }
        }
        pulls.note(repository, digest, at: time, byTag: byTag)
    }

    /// Writes the pull times and downloads noted so far, in one store transaction; returns when they (and those of any
    /// flush before) are stored. On failure they are kept for the next flush.
    public func flushPulls() async throws {
        let recorder = pulls
        let metadata = self.metadata
        let task: Task<Void, any Error> = recorder.tail.withLock { tail in
            let previous = tail
            let next = Task {
                _ = await previous?.result
                let batch = recorder.take()
                guard !batch.isEmpty else { return }
                do {
                    try await metadata.recordPulls(batch.map { k, n in
                        ImagePulls(repository: k.repository, digest: k.digest, lastPulledAt: n.lastPulledAt, byTag: n.byTag, byDigest: n.byDigest)
                    })
                } catch {
                    recorder.restore(batch)
                    throw error
                }
            }
            tail = next
            return next
        }
        try await task.value
    }

    /// How many images have pulls waiting for the next flush.
    public var pendingPullCount: Int { pulls.pending.withLock { $0.count } }

    /// The match keys of an account's exclusions, from the cache (loaded from the store on first use).
    func excludedPullers(of account: String) async throws -> Set<String> {
        let (cached, generation) = pulls.exclusions.withLock { ($0.byAccount[account], $0.generation) }
        if let cached { return cached }
        let keys = Set(try await metadata.pullTimeExclusions(of: account).compactMap { PullRecorder.matchKey(arn: $0.principalARN) })
        pulls.exclusions.withLock { e in
            if e.generation == generation { e.byAccount[account] = keys }
        }
        return keys
    }

    private func forgetExclusions(of account: String) {
        pulls.exclusions.withLock { e in
            e.byAccount[account] = nil
            e.generation &+= 1
        }
    }

    /// Adds a principal to an account's pull time update exclusions (ECR RegisterPullTimeUpdateExclusion).
    public func registerPullTimeExclusion(_ principalARN: String, of account: String) async throws -> PullTimeExclusionInsert {
        defer { forgetExclusions(of: account) }
        return try await metadata.addPullTimeExclusion(PullTimeExclusion(principalARN: principalARN, createdAt: clock.now()),
                                                       to: account, limit: Self.maxPullTimeExclusions)
    }

    /// Removes a principal from the exclusions; false when it was not on them.
    public func deregisterPullTimeExclusion(_ principalARN: String, of account: String) async throws -> Bool {
        defer { forgetExclusions(of: account) }
        return try await metadata.removePullTimeExclusion(principalARN, from: account)
    }

    /// An account's pull time update exclusions, in ARN order.
    public func pullTimeExclusions(of account: String) async throws -> [PullTimeExclusion] {
        try await metadata.pullTimeExclusions(of: account)
    }
}
