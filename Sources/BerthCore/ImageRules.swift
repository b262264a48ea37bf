/// ECR PutImage's refusals. The store decides them in the transaction that writes the image, so a
/// concurrent delete can never slip between the check and the write; the ECR door maps each to its
/// exception (`ImageAlreadyExistsException`, `ReferencedImagesNotFoundException`, `LayersNotFoundException`).
public enum ImagePutRefusal: Error, Sendable, Equatable {
    /// The image exists and no tag was given, or the given tag already names it.
    case imageAlreadyExists(digest: Digest, tag: String?)
    /// A manifest an index lists is not in the repository.
    case referencedImagesNotFound([Digest])
    /// Blobs (config and layers) not linked to the repository.
    case layersNotFound([Digest])
}

/// What to delete: an image by digest, or one tag of an image (ECR's BatchDeleteImage by tag, where
/// removing an image's last tag deletes the image).
public enum ImageDeletionTarget: Sendable, Equatable {
    case digest(Digest)
    /// The tag, if it still names the digest.
    case tag(String, of: Digest)
}

/// The outcome of deleting an image.
public enum ImageDeletion: Sendable, Equatable {
    /// `tags`: the tags removed (all of the image's when deleted by digest); `imageDeleted`: whether
    /// the manifest itself was deleted.
    case deleted(tags: [String], imageDeleted: Bool)
    /// No such image (or the tag no longer names it).
    case notFound
    /// A manifest of the repository (an index) references the image, which therefore stays: the
    /// referencing manifests, by digest.
    case referenced(by: [Digest])
}
