import BerthCore
import BerthStorage
import Logging

/// Why an image's storage class was not changed (beyond a missing repository or image).
public enum ImageStorageClassRefusal: Error, Sendable, Equatable {
    /// ACTIVE indexes of the repository list the image: archiving it alone would break their pulls.
    case referencedByIndexes([Digest])
}

/// The archive storage class (ECR's UpdateImageStorageClass). An archived image stays listed and described
/// (`imageStatus` ARCHIVED) but cannot be pulled on either door until it is restored — neither its manifest
/// nor the blobs only archived images use; deleting it works as for any image, and pushing it again
/// restores it. Without an archive tier the bytes never move, so a restore is complete at once: ARCHIVED
/// straight to ACTIVE, with `lastActivatedAt` set. With an archive tier (`archiveDirectory`) whose copy
/// holds some of the image's blobs, a restore is ACTIVATING (as in ECR) while the bytes come back in the
/// background (`finishActivations`; resumed after a restart), then ACTIVE.
extension Registry {
    /// Moves an image to `target` (`at`: seconds since 1970, the time recorded as `lastArchivedAt` or
    /// `lastActivatedAt`) and returns its status afterwards. Already in `target`: nothing changes.
    /// Throws `BerthError.nameUnknown` (no repository), `BerthError.manifestUnknown` (no such image) or
    /// `ImageStorageClassRefusal`. The lifecycle runner's `transition` action calls this.
    @discardableResult
    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double) async throws -> ImageStatus {
        manifestCache.remove(repository, digest)
        let activating = target == .standard ? try await hasArchivedBytes(digest, in: repository) : false
        // ECR's UPDATE_STORAGE_CLASS event, written when the image becomes ARCHIVED or ACTIVE (a restore
        // through ACTIVATING writes its event when `finishActivation` completes it).
        var outbox: [OutboxEvent] = []
        if let eventSource, let record = try await metadata.manifest(digest, in: repository) {
            outbox = eventSource.storageClassChanged(repository, record, to: target, time: at)
        }
        let change = try await metadata.updateImageStorageClass(digest, in: repository, to: target, at: at, activating: activating,
                                                                events: outbox)
        // Again after the write: a read that raced with it must not leave the old status cached.
        manifestCache.remove(repository, digest)
        switch change {
        case .updated(let status, let changed):
            guard changed else { return status }
            switch status {
            case .archived:
                if let record = try await storedManifest(digest, in: repository) {
                    // Its blobs may be archived-only now: the cache of pullable blobs forgets them.
                    blobLinks.removeDigests(Set(Self.blobDigests(record)))
                    await tierAfterArchive(record)
                }
                events.publish(.imageArchived(repository: repository, digest: digest))
            case .activating:
                startActivations()
            case .active:
                if archiveTier != nil, let record = try await storedManifest(digest, in: repository) {
                    await tierAfterRestore(record)
                }
                events.publish(.imageRestored(repository: repository, digest: digest))
            }
            return status
        case .notFound:
            try await requireRepository(repository)
            throw BerthError.manifestUnknown(digest.description)
        case .referenced(let parents):
            throw ImageStorageClassRefusal.referencedByIndexes(parents)
        }
    }

    /// Whether some of an image's blobs are in the archive tier (a restore must bring them back first).
    func hasArchivedBytes(_ digest: Digest, in repository: RepositoryKey) async throws -> Bool {
        guard let tier = archiveTier, let record = try await storedManifest(digest, in: repository) else { return false }
        for d in Self.blobDigests(record) where try await tier.isInArchive(d) { return true }
        return false
    }

    /// The lease restores run under: one process brings bytes back at a time.
    public static let activationLease = "archive-restores"

    /// Finishes restores in the background, now (after the lease, if another process holds it).
    func startActivations() {
        Task {
            do {
                _ = try await metadata.waitForLease(Self.activationLease) { try await self.finishActivations() }
            } catch {
                logger.warning("restoring archived images failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Completes every ACTIVATING image whose bytes it can bring back from the archive tier: ACTIVE, with
    /// `lastActivatedAt` the time it completed. An image whose bytes could not all be moved stays
    /// ACTIVATING for the next round. Returns how many completed. Run under `activationLease` (the
    /// schedule in `berth serve`, at start and then every few minutes; and right after a restore request).
    @discardableResult
    public func finishActivations() async throws -> Int {
        var done = 0
        var after: ImageRef? = nil
        while true {
            let batch = try await metadata.activatingImages(after: after, limit: 64)
            guard let last = batch.last else { return done }
            after = last
            for image in batch {
                do {
                    if let tier = archiveTier, let record = try await storedManifest(image.digest, in: image.repository) {
                        for d in Self.blobDigests(record) where try await tier.isInArchive(d) { try await tier.moveFromArchive(d) }
                    }
                } catch {
                    logger.warning("restoring an archived image's bytes failed; retried later", metadata: [
                        "repository": "\(image.repository.name)", "digest": "\(image.digest)", "error": "\(error)"])
                    continue
                }
                manifestCache.remove(image.repository, image.digest)
                let now = clock.now()
                var outbox: [OutboxEvent] = []
                if let eventSource, let record = try await metadata.manifest(image.digest, in: image.repository) {
                    outbox = eventSource.storageClassChanged(image.repository, record, to: .standard, time: now)
                }
                if try await metadata.finishActivation(image.digest, in: image.repository, at: now, events: outbox) {
                    manifestCache.remove(image.repository, image.digest)
                    events.publish(.imageRestored(repository: image.repository, digest: image.digest))
                    done += 1
                }
            }
        }
    }

    // MARK: the archive tier (the `archiveDirectory` setting)

    /// The blob store's archive tier, when it has one.
    var archiveTier: (any BlobTiering)? {
        guard let tier = blobs as? any BlobTiering, tier.hasArchiveTier else { return nil }
        return tier
    }

    /// The blobs (config and layers) a manifest references.
    static func blobDigests(_ record: ManifestRecord) -> [Digest] {
        (try? ManifestParser.parse(record.bytes, contentType: record.mediaType))?.requiredBlobs ?? []
    }

    /// After `record` was archived: moves to the archive tier the blobs of it that only archived images use
    /// (a layer an ACTIVE image of any repository shares never moves). A push that started to use one
    /// meanwhile gets it moved back right after; reads find a blob in either tier in any case. A failure
    /// leaves bytes where they are (logged): the archive itself stands.
    func tierAfterArchive(_ record: ManifestRecord) async {
        guard let tier = archiveTier else { return }
        do {
            let movable = try await metadata.blobsUsedOnlyByArchivedImages(Self.blobDigests(record))
            for d in movable { try await tier.moveToArchive(d) }
            let still = Set(try await metadata.blobsUsedOnlyByArchivedImages(movable))
            for d in movable where !still.contains(d) { try await tier.moveFromArchive(d) }
        } catch {
            logger.warning("moving blobs to the archive tier failed", metadata: ["digest": "\(record.digest)", "error": "\(error)"])
        }
    }

    /// After `record` became ACTIVE (a restore, or any manifest push): its blobs come back from the archive tier.
    func tierAfterRestore(_ record: ManifestRecord) async {
        guard let tier = archiveTier else { return }
        for d in Self.blobDigests(record) {
            do {
                if try await tier.isInArchive(d) { try await tier.moveFromArchive(d) }
            } catch {
                logger.warning("moving a blob back from the archive tier failed", metadata: ["digest": "\(d)", "error": "\(error)"])
            }
        }
    }

    /// Whether any of `manifests` (of `repository`) is ACTIVE, through the manifest cache.
    public func anyPullable(_ manifests: [Digest], in repository: RepositoryKey) async throws -> Bool {
        for d in manifests where try await storedManifest(d, in: repository)?.status.isPullable == true { return true }
        return false
    }
}
