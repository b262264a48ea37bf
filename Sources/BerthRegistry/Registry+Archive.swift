import BerthCore
import BerthStorage
import Logging

/// Why an image's storage class was not changed (beyond a missing repository or image).
public enum ImageStorageClassRefusal: Error, Sendable, Equatable {
    /// ACTIVE indexes of the repository list the image: archiving it alone would break their pulls.
    case referencedByIndexes([Digest])
}

/// The archive storage class (ECR's UpdateImageStorageClass). An archived image stays listed and described
/// (`imageStatus` ARCHIVED) but cannot be pulled on either door until it is restored; deleting it works as
/// for any image, and pushing it again restores it. Berth keeps an archived image's bytes where they were,
/// so a restore is complete at once: the image goes from ARCHIVED straight to ACTIVE (ECR passes through
/// ACTIVATING for up to 20 minutes), with `lastActivatedAt` set.
extension Registry {
    /// Moves an image to `target` (`at`: seconds since 1970, the time recorded as `lastArchivedAt` or
    /// `lastActivatedAt`) and returns its status afterwards. Already in `target`: nothing changes.
    /// Throws `BerthError.nameUnknown` (no repository), `BerthError.manifestUnknown` (no such image) or
    /// `ImageStorageClassRefusal`. The lifecycle runner's `transition` action calls this.
    @discardableResult
    public func updateImageStorageClass(_ digest: Digest, in repository: RepositoryKey, to target: ImageStorageClass,
                                        at: Double) async throws -> ImageStatus {
        manifestCache.remove(repository, digest)
        var outbox: [OutboxEvent] = []
        if let eventSource, let record = try await metadata.manifest(digest, in: repository) {
            outbox = eventSource.storageClassChanged(repository, record, to: target, time: at)
        }
        let change = try await metadata.updateImageStorageClass(digest, in: repository, to: target, at: at, events: outbox)
        // Again after the write: a read that raced with it must not leave the old status cached.
        manifestCache.remove(repository, digest)
        switch change {
        case .updated(let status, let changed):
            guard changed else { return status }
            if archiveTier != nil, let record = try await storedManifest(digest, in: repository) {
                if status == .archived { await tierAfterArchive(record) } else { await tierAfterRestore(record) }
            }
            events.publish(status == .archived ? .imageArchived(repository: repository, digest: digest)
                                               : .imageRestored(repository: repository, digest: digest))
            return status
        case .notFound:
            try await requireRepository(repository)
            throw BerthError.manifestUnknown(digest.description)
        case .referenced(let parents):
            throw ImageStorageClassRefusal.referencedByIndexes(parents)
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
