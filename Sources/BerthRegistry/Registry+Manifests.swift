import BerthCore
import BerthStorage
import Foundation

/// The result of a manifest push.
public struct PushedManifest: Sendable, Equatable {
    public let digest: Digest
    public let subject: Digest?
    public let created: Bool
}

extension Registry {
    /// PUT /manifests/<reference>: validates, checks references, stores the exact bytes, moves the tag.
    public func putManifest(_ name: RepositoryKey, reference: Reference, contentType: String?,
                            bytes: [UInt8]) async throws -> PushedManifest {
        try await repositoryForPush(name)
        return try await storeManifest(name, reference: reference, contentType: contentType, bytes: bytes, imageChecks: false)
    }

    /// ECR PutImage: like `putManifest`, but never creates the repository, and refuses with an
    /// `ImagePutRefusal` an image that already exists (untagged, or under this tag), an index whose
    /// manifests are missing, and a manifest whose blobs are not linked — decided in the transaction
    /// that writes it, so nothing deleted meanwhile can be referenced by what is stored.
    public func putImage(_ name: RepositoryKey, tag: Tag?, contentType: String?, bytes: [UInt8]) async throws -> PushedManifest {
        let reference: Reference = tag.map { .tag($0) } ?? .digest(Digest.sha256(of: bytes))
        return try await storeManifest(name, reference: reference, contentType: contentType, bytes: bytes, imageChecks: true)
    }

    /// - Parameter replicate: enqueue the replication jobs the registry's rules ask for (a copy made by
    ///   replication is not replicated again, as in ECR).
    func storeManifest(_ name: RepositoryKey, reference: Reference, contentType: String?, bytes: [UInt8],
                       imageChecks: Bool, replicate: Bool = true) async throws -> PushedManifest {
        let parsed = try ManifestParser.parse(bytes, contentType: contentType)
        var digest = Digest.sha256(of: bytes)
        var tag: String? = nil
        switch reference {
        case .tag(let t):
            tag = t.value
        case .digest(let d):
            if d.algorithm != .sha256 {
                var h = DigestHasher(d.algorithm)
                h.update(data: bytes)
                digest = h.finalize()
            }
            guard d == digest else {
                throw BerthError.digestMismatch(expected: d.description, computed: digest.description)
            }
        }
        let subject = parsed.subject.flatMap { Digest.parse($0.digest) }
        var annotations: String? = nil
        if let a = parsed.annotations, !a.isEmpty,
           let data = try? JSONEncoder().encode(a) {
            annotations = String(decoding: data, as: UTF8.self)
        }
        let record = ManifestRecord(
            digest: digest, mediaType: parsed.mediaType, artifactType: parsed.effectiveArtifactType, bytes: bytes,
            subject: subject, annotationsJSON: annotations, pushedAt: clock.now(),
            imageSize: try await imageSize(of: parsed, in: name))
        let outbox = eventSource?.imagePushed(name, digest: digest, tag: tag, manifestMediaType: parsed.mediaType,
                                              artifactMediaType: parsed.config?.mediaType, time: record.pushedAt) ?? []
        var put = ManifestPut(record: record, blobs: parsed.requiredBlobs, manifests: parsed.requiredManifests, tag: tag,
                              imageChecks: imageChecks, events: outbox)
        if replicate { put.replication = try await replicationJobs(for: name, digest: digest) }
        let result = try await metadata.putManifest(put, in: name)
        // Pushing an archived image again restored it: the cached record still says archived.
        if result.restored {
            manifestCache.remove(name, digest)
            events.publish(.imageRestored(repository: name, digest: digest))
        }
        // An ACTIVE image's blobs belong in the primary tier (a restore, or a new image sharing archived layers).
        if archiveTier != nil { await tierAfterRestore(record) }
        events.publish(.manifestPushed(repository: name, digest: digest, mediaType: parsed.mediaType,
                                       tag: tag, previousTagDigest: result.previousTagDigest))
        return PushedManifest(digest: digest, subject: subject, created: result.created)
    }

    /// ECR's `imageSizeInBytes`: the sum of the (compressed) layer sizes; for an index, the largest
    /// size among the manifests it lists.
    func imageSize(of parsed: ParsedManifest, in name: RepositoryKey) async throws -> Int64 {
        if parsed.isIndex {
            var largest: Int64 = 0
            for d in parsed.requiredManifests {
                largest = max(largest, try await metadata.image(d, in: name)?.imageSize ?? 0)
            }
            return largest
        }
        return parsed.layers.reduce(0) { $0 + max(0, $1.size) }
    }

    /// GET/HEAD /manifests/<reference>.
    public func manifest(_ name: RepositoryKey, reference: Reference) async throws -> ManifestRecord {
        if settings.sharedMetadata { return try await checkedManifest(name, reference: reference) }
        let digest: Digest
        switch reference {
        case .tag(let t):
            guard let d = try await metadata.resolveTag(t.value, in: name) else {
                try await requireRepository(name)
                throw BerthError.manifestUnknown(t.value)
            }
            digest = d
        case .digest(let d):
            digest = d
        }
        guard let record = try await storedManifest(digest, in: name) else {
            try await requireRepository(name)
            throw BerthError.manifestUnknown(reference.description)
        }
        // An archived image cannot be pulled until it is restored (ECR: 404).
        guard record.status.isPullable else { throw BerthError.imageArchived(reference.description) }
        return record
    }

    /// GET/HEAD /manifests/<reference> where several nodes share the metadata: what the reference names now,
    /// and its status, are read from the store on every request (one statement, `manifestState`), so a tag moved
    /// or a manifest deleted or archived through another node is seen on the next request here; the record's
    /// immutable part (the body) comes from this process's cache when it holds the same push of it.
    func checkedManifest(_ name: RepositoryKey, reference: Reference) async throws -> ManifestRecord {
        let query: ManifestStateQuery = switch reference {
        case .tag(let t): .tag(t.value)
        case .digest(let d): .digest(d)
        }
        let unknown = switch reference {
        case .tag(let t): BerthError.manifestUnknown(t.value)
        case .digest: BerthError.manifestUnknown(reference.description)
        }
        guard let state = try await metadata.manifestState(query, in: name) else {
            try await requireRepository(name)
            throw unknown
        }
        var record: ManifestRecord
        if let cached = manifestCache.get(name, state.digest), cached.pushedAt == state.pushedAt {
            record = cached
        } else {
            guard let stored = try await metadata.manifest(state.digest, in: name) else {
                try await requireRepository(name)
                throw unknown
            }
            manifestCache.put(name, stored)
            record = stored
        }
        record.status = state.status
        guard record.status.isPullable else { throw BerthError.imageArchived(reference.description) }
        return record
    }

    /// DELETE /manifests/<reference>: by tag removes only the tag; by digest the manifest and its tags,
    /// unless an index of the repository lists it (`manifestReferenced`, the rule `deleteImage` applies).
    public func deleteManifest(_ name: RepositoryKey, reference: Reference) async throws {
        switch reference {
        case .tag(let t):
            let now = clock.now()
            var outbox: TagDeletionEvents? = nil
            if let source = eventSource {
                let tag = t.value
                outbox = { @Sendable (digest: Digest) -> [OutboxEvent] in
                    source.imageDeleted(name, digest: digest, tags: [tag], time: now)
                }
            }
            guard try await metadata.deleteTag(t.value, in: name, events: outbox) else {
                try await requireRepository(name)
                throw BerthError.manifestUnknown(t.value)
            }
            events.publish(.tagDeleted(repository: name, tag: t.value))
        case .digest(let d):
            switch try await deleteImage(name, .digest(d)) {
            case .deleted: return
            case .notFound:
                try await requireRepository(name)
                throw BerthError.manifestUnknown(d.description)
            case .referenced(let parents):
                throw BerthError.manifestReferenced(digest: d.description, by: parents.map(\.description))
            }
        }
    }

    /// Deletes an image by the rules both doors share, in one store transaction (`ImageDeletion`):
    /// by digest, the manifest and all its tags unless an index of the repository lists it; by tag
    /// (ECR's BatchDeleteImage), the tag, and the image with it when that was its last tag and no
    /// index lists it. Publishes `tagDeleted` / `manifestDeleted` for what went.
    public func deleteImage(_ name: RepositoryKey, _ target: ImageDeletionTarget) async throws -> ImageDeletion {
        let digest: Digest
        switch target {
        case .digest(let d), .tag(_, of: let d): digest = d
        }
        manifestCache.remove(name, digest)
        let now = clock.now()
        var outbox: ImageDeletionEvents? = nil
        if let source = eventSource {
            outbox = { @Sendable (outcome: ImageDeletion) -> [OutboxEvent] in
                guard case .deleted(let tags, _) = outcome else { return [] }
                return source.imageDeleted(name, digest: digest, tags: tags, time: now)
            }
        }
        let outcome = try await metadata.deleteImage(target, in: name, events: outbox)
        manifestCache.remove(name, digest)
        if case .deleted(let tags, let imageDeleted) = outcome {
            if case .tag = target { for t in tags { events.publish(.tagDeleted(repository: name, tag: t)) } }
            if imageDeleted { events.publish(.manifestDeleted(repository: name, digest: digest)) }
        }
        return outcome
    }

    /// GET /referrers/<digest>: descriptors of the manifests whose subject is `digest`,
    /// optionally only those of one artifact type.
    public func referrers(_ name: RepositoryKey, of digest: Digest, artifactType: String?) async throws -> [Descriptor] {
        let rows = try await metadata.referrers(of: digest, in: name)
        return rows.compactMap { row in
            if let artifactType, row.artifactType != artifactType { return nil }
            var annotations: [String: String]? = nil
            if let json = row.annotationsJSON {
                annotations = try? JSONDecoder().decode([String: String].self, from: Data(json.utf8))
            }
            return Descriptor(mediaType: row.mediaType, digest: row.digest.description, size: row.size,
                              annotations: annotations, artifactType: row.artifactType)
        }
    }
}
