import BerthCore
import BerthRegistry
import BerthSupport
import Foundation

/// An `ImageIdentifier` of a request, resolved against a repository.
enum ResolvedImage {
    case found(digest: Digest, tag: String?)
    case failed(code: String, reason: String)
}

extension ECRService {
    func imageID(_ digest: String?, _ tag: String?) -> JSONValue {
        var o: [String: JSONValue] = [:]
        if let digest { o["imageDigest"] = .string(digest) }
        if let tag { o["imageTag"] = .string(tag) }
        return .object(o)
    }

    func imageFailure(_ id: JSONValue, _ code: String, _ reason: String) -> JSONValue {
        ["imageId": id, "failureCode": .string(code), "failureReason": .string(reason)]
    }

    /// An `Image` of BatchGetImage and PutImage.
    func imageJSON(_ key: RepositoryKey, _ digest: Digest, _ tag: String?, manifest: String, mediaType: String) -> JSONValue {
        ["registryId": .string(wireID(key)), "repositoryName": .string(key.name),
         "imageId": imageID(digest.description, tag), "imageManifest": .string(manifest),
         "imageManifestMediaType": .string(mediaType)]
    }

    func resolve(_ id: Params, in key: RepositoryKey) async throws -> ResolvedImage {
        let digestText = try id.string("imageDigest")
        let tag = try id.string("imageTag")
        if digestText == nil && tag == nil {
            return .failed(code: "MissingDigestAndTag", reason: "Invalid request parameters: both tag and digest cannot be null")
        }
        var digest: Digest? = nil
        if let digestText {
            guard let d = Digest.parse(digestText) else {
                return .failed(code: "InvalidImageDigest", reason: "Invalid request parameters: image digest should satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'")
            }
            digest = d
        }
        if let tag {
            guard Tag.isValid(tag) else {
                return .failed(code: "InvalidImageTag", reason: "Invalid request parameters: image tag should satisfy the regex '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}'")
            }
            guard let target = try await registry.resolveTag(tag, in: key) else {
                return .failed(code: "ImageNotFound", reason: "Requested image not found")
            }
            if let digest, digest != target {
                return .failed(code: "ImageTagDoesNotMatchDigest", reason: "Invalid request parameters: given tag does not map to the given digest")
            }
            return .found(digest: target, tag: tag)
        }
        guard try await registry.image(digest!, in: key) != nil else {
            return .failed(code: "ImageNotFound", reason: "Requested image not found")
        }
        return .found(digest: digest!, tag: nil)
    }

    func requireRepository(_ key: RepositoryKey) async throws {
        _ = try await registry.repository(key)
    }

    /// The repository a push through the ECR API (`InitiateLayerUpload`, `PutImage`) writes to. A missing
    /// one is created as ECR creates on push — when a `CREATE_ON_PUSH` repository creation template covers
    /// its name, and the caller may `ecr:CreateRepository` — else `RepositoryNotFoundException` (ECR Public
    /// never creates).
    func repositoryForPush(_ principal: Principal, _ key: RepositoryKey) async throws {
        guard flavor == .private, try await registry.findRepository(key) == nil,
              try await registry.creationTemplate(for: key, purpose: .createOnPush) != nil else { return try await requireRepository(key) }
        try await authorize(principal, "CreateRepository", key)
        try await registry.repositoryForECRPush(key)
    }

    /// The `filter` of ListImages and DescribeImages: `tagStatus` (default ANY) and `imageStatus`
    /// (default ACTIVE: archived images are listed only when asked for).
    struct ImageFilter {
        var tagStatus = "ANY"
        var imageStatus = "ACTIVE"

        func matches(_ r: ImageSummary) -> Bool {
            if tagStatus == "TAGGED" && r.tags.isEmpty { return false }
            if tagStatus == "UNTAGGED" && !r.tags.isEmpty { return false }
            return imageStatus == "ANY" || imageStatus == r.status.rawValue
        }
    }

    func imageFilter(_ p: Params) throws -> ImageFilter {
        var filter = ImageFilter()
        guard let f = try p.object("filter") else { return filter }
        filter.tagStatus = try f.string("tagStatus") ?? "ANY"
        guard ["TAGGED", "UNTAGGED", "ANY"].contains(filter.tagStatus) else {
            throw ECRError.invalidParameter(ValidationMessage(.text("\(filter.tagStatus)"), at: "filter.tagStatus", .oneOf(["TAGGED", "UNTAGGED", "ANY"])))
        }
        let imageStatus = try f.string("imageStatus")
        filter.imageStatus = imageStatus ?? "ACTIVE"
        guard flavor == .private || imageStatus == nil else {
            throw ECRError.invalidParameter("Invalid parameter at 'filter' failed to satisfy constraint: 'imageStatus is not supported'")
        }
        guard ["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"].contains(filter.imageStatus) else {
            throw ECRError.invalidParameter(ValidationMessage(.text("\(filter.imageStatus)"), at: "filter.imageStatus", .oneOf(["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"])))
        }
        return filter
    }

    /// Walks images in digest order applying the tag filter, for ListImages and DescribeImages.
    func pageOfImages(_ key: RepositoryKey, _ p: Params) async throws -> ([ImageSummary], String?) {
        let limit = try p.maxResults(1, 1000) ?? Self.defaultPageSize
        let filter = try imageFilter(p)
        var after = try ECRService.decodeToken(try p.string("nextToken"))
        var out: [ImageSummary] = []
        let batchSize = 500
        while true {
            let rows = try await registry.images(in: key, after: after, limit: batchSize)
            let batch = rows.prefix(batchSize)
            for (index, r) in batch.enumerated() {
                guard filter.matches(r) else { continue }
                out.append(r)
                if out.count == limit {
                    let more = index < batch.count - 1 || rows.count > batchSize
                    return (out, more ? ECRService.encodeToken(r.digest.description) : nil)
                }
            }
            guard rows.count > batchSize, let last = batch.last else { return (out, nil) }
            after = last.digest.description
        }
    }

    func listImages(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let limit = try p.maxResults(1, 1000) ?? Self.defaultPageSize
        let filter = try imageFilter(p)
        let token = try ECRService.decodeToken(try p.string("nextToken"))
        try await authorize(principal, "ListImages", key)
        try await requireRepository(key)
        // The page is made of image ids (one per tag); the token is the last (digest, tag) returned.
        var lastDigest: String? = nil
        var lastTag: String? = nil
        if let token {
            let parts = token.split(separator: "\t", maxSplits: 1, omittingEmptySubsequences: false)
            lastDigest = String(parts[0])
            lastTag = parts.count > 1 && !parts[1].isEmpty ? String(parts[1]) : nil
        }
        var ids: [(String, String?)] = []
        func entries(_ r: ImageSummary) -> [String?] {
            guard filter.matches(r) else { return [] }
            return r.tags.isEmpty ? [nil] : r.tags.map { $0 }
        }
        var exhausted = false
        // The rest of the image the previous page stopped in.
        if let lastDigest, let lastTag, let d = Digest.parse(lastDigest), let image = try await registry.image(d, in: key) {
            for e in entries(image) where (e ?? "") > lastTag { ids.append((lastDigest, e)) }
        }
        var after = lastDigest
        let batch = 500
        scan: while ids.count < limit {
            let rows = try await registry.images(in: key, after: after, limit: batch)
            for r in rows.prefix(batch) {
                for e in entries(r) {
                    if ids.count == limit { break scan }
                    ids.append((r.digest.description, e))
                }
            }
            guard rows.count > batch, let last = rows.prefix(batch).last else { exhausted = true; break }
            after = last.digest.description
        }
        if ids.count > limit { ids = Array(ids.prefix(limit)) }
        if exhausted { ids.append(("", nil)) }
        var next: String? = nil
        if ids.last?.0 == "" {
            ids.removeLast()
        } else if let last = ids.last {
            next = ECRService.encodeToken(last.0 + "\t" + (last.1 ?? ""))
        }
        var out: [String: JSONValue] = ["imageIds": .array(ids.map { imageID($0.0, $0.1) })]
        if let next { out["nextToken"] = .string(next) }
        return .object(out)
    }

    /// `scan`: the image's scan, read beforehand (a page of images reads its scans in one go).
    func imageDetail(_ key: RepositoryKey, _ i: ImageSummary, scan: ImageScanRecord?) async throws -> JSONValue {
        var o: [String: JSONValue] = [
            "registryId": .string(wireID(key)),
            "repositoryName": .string(key.name),
            "imageDigest": .string(i.digest.description),
            "imageSizeInBytes": .int(i.imageSize),
            "imagePushedAt": .double(i.pushedAt),
            "imageManifestMediaType": .string(i.mediaType),
            "imageStatus": .string(i.status.rawValue),
        ]
        if !i.tags.isEmpty { o["imageTags"] = .array(i.tags.map { .string($0) }) }
        if let a = i.artifactType { o["artifactMediaType"] = .string(a) }
        if flavor == .public {
            o["imageStatus"] = nil  // not in ECR Public's ImageDetail
            return .object(o)
        }
        if let t = i.lastPulledAt { o["lastRecordedPullTime"] = .double(t) }
        if let t = i.lastArchivedAt { o["lastArchivedAt"] = .double(t) }
        if let t = i.lastActivatedAt { o["lastActivatedAt"] = .double(t) }
        if let s = i.subject { o["subjectManifestDigest"] = .string(s.description) }
        if let scan {
            o["imageScanStatus"] = scanStatusJSON(scan)
            if scan.state == .complete {
                var summary: [String: JSONValue] = ["findingSeverityCounts": severityCountsJSON(scan)]
                if let t = scan.completedAt { summary["imageScanCompletedAt"] = .double(t) }
                if let t = scan.vulnerabilitySourceUpdatedAt { summary["vulnerabilitySourceUpdatedAt"] = .double(t) }
                o["imageScanFindingsSummary"] = .object(summary)
            }
        }
        return .object(o)
    }

    func describeImages(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "DescribeImages", key)
        try await requireRepository(key)
        try await registry.flushPulls()
        if let ids = try p.objectList("imageIds") {
            try p.checkCount("imageIds", ids.count, 1...100)
            if try p.int("maxResults") != nil || p.string("nextToken") != nil {
                throw ECRError.invalidParameter("Invalid parameter: maxResults and nextToken cannot be specified together with imageIds")
            }
            var details: [JSONValue] = []
            var seen = Set<Digest>()
            for id in ids {
                switch try await resolve(id, in: key) {
                case .found(let d, _):
                    guard seen.insert(d).inserted, let i = try await registry.image(d, in: key) else { continue }
                    details.append(try await imageDetail(key, i, scan: try await registry.scan(d, in: key)))
                case .failed(let code, let reason):
                    throw try imageLookupError(id, code: code, reason: reason, in: key)
                }
            }
            return ["imageDetails": .array(details)]
        }
        let (images, next) = try await pageOfImages(key, p)
        var details: [JSONValue] = []
        let scans = try await registry.scans(of: images.map(\.digest), in: key)
        for i in images { details.append(try await imageDetail(key, i, scan: scans[i.digest])) }
        var out: [String: JSONValue] = ["imageDetails": .array(details)]
        if let next { out["nextToken"] = .string(next) }
        return .object(out)
    }

    func batchGetImage(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let ids = try p.requiredObjectList("imageIds", count: 1...100)
        let accepted = try p.stringList("acceptedMediaTypes")
        if let accepted { try p.checkCount("acceptedMediaTypes", accepted.count, 1...100) }
        try await authorize(principal, "BatchGetImage", key)
        try await requireRepository(key)
        // ECR's image manifest conversion: an image asked for by tag alone comes as its Docker schema 2 ⇄ OCI
        // conversion when only that format is accepted; the digest reported is the conversion's own.
        let accepting = AcceptedMediaTypes(list: accepted)
        var images: [JSONValue] = []
        var failures: [JSONValue] = []
        for id in ids {
            let digestText = try id.string("imageDigest")
            let tagText = try id.string("imageTag")
            let given = imageID(digestText, tagText)
            switch try await resolve(id, in: key) {
            case .failed(let code, let reason):
                // A digest a conversion was served under (pulled by tag before) resolves to that conversion.
                if code == "ImageNotFound", tagText == nil, let d = digestText.flatMap({ Digest.parse($0) }) {
                    do {
                        if let converted = try await registry.convertedManifest(key, d), accepting.accepts(converted.mediaType) {
                            await registry.notePull(key, converted.stored.digest, byTag: false, by: principal)
                            images.append(imageJSON(key, converted.digest, nil, manifest: String(decoding: converted.bytes, as: UTF8.self),
                                                    mediaType: converted.mediaType))
                            continue
                        }
                    } catch BerthError.imageArchived {
                        failures.append(Self.archivedFailure(given))
                        continue
                    }
                }
                failures.append(imageFailure(given, code, reason))
            case .found(let d, let tag):
                guard let m = try await registry.storedManifest(d, in: key) else {
                    failures.append(imageFailure(given, "ImageNotFound", "Requested image not found"))
                    continue
                }
                guard m.status.isPullable else {
                    failures.append(Self.archivedFailure(given))
                    continue
                }
                let served = registry.negotiate(key, m, accepting: accepting, byTag: tag != nil && digestText == nil)
                guard served.acceptable else {
                    failures.append(imageFailure(given, "ImageNotFound", "Requested image is not available in any of the accepted media types"))
                    continue
                }
                // An entry naming a tag (alone or with its digest) is a top-level pull.
                await registry.notePull(key, d, byTag: tag != nil, by: principal)
                images.append(imageJSON(key, served.digest, tag, manifest: String(decoding: served.bytes, as: UTF8.self),
                                        mediaType: served.mediaType))
            }
        }
        return ["images": .array(images), "failures": .array(failures)]
    }

    /// BatchGetImage's failure for an archived image: not found, as ECR's pulls of archived images are (404).
    static func archivedFailure(_ id: JSONValue) -> JSONValue {
        ["imageId": id, "failureCode": "ImageNotFound",
         "failureReason": "Requested image is archived and cannot be pulled until it is restored to the STANDARD storage class"]
    }

    func batchDeleteImage(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let ids = try p.requiredObjectList("imageIds", count: 1...100)
        try await authorize(principal, "BatchDeleteImage", key)
        try await requireRepository(key)
        var deleted: [JSONValue] = []
        var failures: [JSONValue] = []
        for id in ids {
            let given = imageID(try id.string("imageDigest"), try id.string("imageTag"))
            switch try await resolve(id, in: key) {
            case .failed(let code, let reason):
                failures.append(imageFailure(given, code, reason))
            case .found(let d, let tag):
                // By tag: the tag goes, and the image with it when that was its last tag (as ECR does).
                // By digest: the image with all its tags, unless an index lists it. One transaction each.
                switch try await registry.deleteImage(key, tag.map { .tag($0, of: d) } ?? .digest(d)) {
                case .deleted(let tags, _):
                    if tags.isEmpty { deleted.append(imageID(d.description, nil)) }
                    for t in tags { deleted.append(imageID(d.description, t)) }
                case .notFound:
                    failures.append(imageFailure(given, "ImageNotFound", "Requested image not found"))
                case .referenced:
                    failures.append(imageFailure(given, "ImageReferencedByManifestList", "Requested image is referenced by an image index"))
                }
            }
        }
        return ["imageIds": .array(deleted), "failures": .array(failures)]
    }

    func putImage(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let manifest = try p.requiredString("imageManifest")
        let bytes = Array(manifest.utf8)
        guard (1...ManifestParser.maxSize).contains(bytes.count) else {
            throw ECRError.invalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'Member must have length between 1 and 4194304'")
        }
        let mediaType = try p.string("imageManifestMediaType")
        let tag = try p.string("imageTag")
        if let tag {
            // ImageTag: 1–300 characters in the model; then the tag grammar.
            guard (1...300).contains(tag.utf8.count) else {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "imageTag", .other("Member must have length \(tag.isEmpty ? "greater than or equal to 1" : "less than or equal to 300")")))
            }
            guard Tag.isValid(tag) else {
                throw ECRError.invalidParameter("Invalid parameter at 'imageTag' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}''")
            }
        }
        let givenDigest = try p.string("imageDigest")
        try await authorize(principal, "PutImage", key)
        try await repositoryForPush(principal, key)
        if mediaType == nil {
            let doc: [String: JSONValue]? = try? JSONValue.parseObject(bytes)
            guard case .string? = doc?["mediaType"] else {
                throw ECRError.invalidParameter("Invalid parameter at 'imageManifest' failed to satisfy constraint: 'the manifest has no mediaType and imageManifestMediaType was not given'")
            }
        }
        let parsed = try ManifestParser.parse(bytes, contentType: mediaType)
        let computed = Digest.sha256(of: bytes)
        if let givenDigest {
            guard let d = Digest.parse(givenDigest) else {
                throw ECRError.invalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Invalid digest'")
            }
            guard d == computed else {
                throw ECRError.imageDigestDoesNotMatch(computed: computed.description, given: d.description)
            }
        }
        let pushed: PushedManifest
        do {
            pushed = try await registry.putImage(key, tag: try tag.map { try Tag($0) }, contentType: mediaType ?? parsed.mediaType,
                                                 bytes: bytes)
        } catch let refusal as ImagePutRefusal {
            switch refusal {
            case .imageAlreadyExists(let digest, let tag):
                throw ECRError.imageAlreadyExists(digest: digest.description, tag: tag, repository: key.name, registry: wireID(key))
            case .referencedImagesNotFound(let digests):
                throw ECRError.referencedImagesNotFound(digests.map(\.description), repository: key.name, registry: wireID(key))
            case .layersNotFound(let digests):
                throw ECRError.layersNotFound(digests.map(\.description), repository: key.name, registry: wireID(key))
            }
        }
        return ["image": imageJSON(key, pushed.digest, tag, manifest: manifest, mediaType: parsed.mediaType)]
    }

    func listImageReferrers(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        guard let subject = try p.object("subjectId") else { throw p.missing("subjectId") }
        let d = try subject.requiredString("imageDigest")
        guard let digest = Digest.parse(d) else {
            throw ECRError.invalidParameter("Invalid parameter at 'subjectId.imageDigest' failed to satisfy constraint: 'Invalid digest'")
        }
        var types: [String]? = nil
        var artifactStatus = "ACTIVE"  // ECR: only ACTIVE artifacts unless the filter asks for others
        if let f = try p.object("filter") {
            types = try f.stringList("artifactTypes")
            if let t = types, t.count > 5 {
                throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "filter.artifactTypes", .lengthAtMost(5)))
            }
            artifactStatus = try f.string("artifactStatus") ?? "ACTIVE"
            guard ["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"].contains(artifactStatus) else {
                throw ECRError.invalidParameter(ValidationMessage(.text("\(artifactStatus)"), at: "filter.artifactStatus", .oneOf(["ACTIVE", "ARCHIVED", "ACTIVATING", "ANY"])))
            }
        }
        let limit = try p.maxResults(1, 50) ?? 50
        let after = try ECRService.decodeToken(try p.string("nextToken"))
        try await authorize(principal, "ListImageReferrers", key)
        try await requireRepository(key)
        var refs = try await registry.referrers(key, of: digest, artifactType: nil)
        if let types, !types.isEmpty { refs = refs.filter { types.contains($0.artifactType ?? "") } }
        if let after { refs = refs.filter { $0.digest > after } }
        // Each referrer's status (an archived signature stays listed only when asked for).
        var statuses: [String: String] = [:]
        for r in refs {
            var status = ImageStatus.active
            if let d = Digest.parse(r.digest), let m = try await registry.storedManifest(d, in: key) { status = m.status }
            statuses[r.digest] = status.rawValue
        }
        if artifactStatus != "ANY" { refs = refs.filter { statuses[$0.digest] == artifactStatus } }
        let page = Array(refs.prefix(limit))
        var out: [String: JSONValue] = ["referrers": .array(page.map { r in
            var o: [String: JSONValue] = ["digest": .string(r.digest), "mediaType": .string(r.mediaType), "size": .int(r.size),
                                          "artifactStatus": .string(statuses[r.digest] ?? "ACTIVE")]
            if let a = r.artifactType { o["artifactType"] = .string(a) }
            if let ann = r.annotations { o["annotations"] = .object(ann.mapValues { .string($0) }) }
            return .object(o)
        })]
        if refs.count > limit, let last = page.last { out["nextToken"] = .string(ECRService.encodeToken(last.digest)) }
        return .object(out)
    }
}
