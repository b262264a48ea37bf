import BerthCore
import BerthStorage

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
        let change = try await metadata.updateImageStorageClass(digest, in: repository, to: target, at: at)
        // Again after the write: a read that raced with it must not leave the old status cached.
        manifestCache.remove(repository, digest)
        switch change {
        case .updated(let status, _):
            return status
        case .notFound:
            try await requireRepository(repository)
            throw BerthError.manifestUnknown(digest.description)
        case .referenced(let parents):
            throw ImageStorageClassRefusal.referencedByIndexes(parents)
        }
    }

    /// Whether any of `manifests` (of `repository`) is ACTIVE, through the manifest cache.
    public func anyPullable(_ manifests: [Digest], in repository: RepositoryKey) async throws -> Bool {
        for d in manifests where try await storedManifest(d, in: repository)?.status.isPullable == true { return true }
        return false
    }
}
