import BerthCore
import BerthRegistry
import BerthSupport
import Foundation
import NIOCore

/// A request body already in memory, as an async sequence of one buffer.
struct InMemoryBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer?
    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        mutating func next() async throws -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}

extension ECRService {
    /// The part size InitiateLayerUpload suggests (ECR suggests parts of this order).
    static let partSize: Int64 = 10 * 1024 * 1024
    /// Every part but the last must be at least this large (as with ECR and S3 multipart uploads).
    static let minimumPartSize: Int64 = 5 * 1024 * 1024
    /// The largest part UploadLayerPart takes (LayerPartBlob max in ECR's model).
    static let maxPartSize = 20_971_520
    /// The longest digest BatchCheckLayerAvailability takes (BatchedOperationLayerDigest max in the model).
    static let maxBatchedLayerDigestLength = 1000

    func batchCheckLayerAvailability(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let digests = try p.requiredStringList("layerDigests", count: 1...100)
        // BatchedOperationLayerDigest: at most 1000 characters in the model (ECR and ECR Public).
        guard digests.allSatisfy({ $0.utf8.count <= Self.maxBatchedLayerDigestLength }) else {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "layerDigests", .other("Member must satisfy constraint: [Member must have length less than or equal to \(Self.maxBatchedLayerDigestLength)]")))
        }
        try await authorize(principal, "BatchCheckLayerAvailability", key)
        try await requireRepository(key)
        var layers: [JSONValue] = []
        var failures: [JSONValue] = []
        for text in digests {
            if text.isEmpty {
                failures.append(["layerDigest": .string(text), "failureCode": "MissingLayerDigest",
                                 "failureReason": "The layer digest must not be empty"])
                continue
            }
            guard let d = Digest.parse(text) else {
                failures.append(["layerDigest": .string(text), "failureCode": "InvalidLayerDigest",
                                 "failureReason": "Invalid layer digest: must satisfy the regex '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+'"])
                continue
            }
            if let size = try await registry.linkedBlobSize(d, in: key) {
                // A layer that only archived images use (LayerAvailability ARCHIVED in botocore's model)
                // cannot be pulled until one of them is restored.
                let parents = try await registry.referencingManifests(of: d, in: key)
                var archived = false
                if !parents.isEmpty { archived = try await !registry.anyPullable(parents, in: key) }
                layers.append(["layerDigest": .string(text), "layerAvailability": archived ? "ARCHIVED" : "AVAILABLE",
                               "layerSize": .int(size)])
            } else {
                layers.append(["layerDigest": .string(text), "layerAvailability": "UNAVAILABLE"])
            }
        }
        return ["layers": .array(layers), "failures": .array(failures)]
    }

    func initiateLayerUpload(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, "InitiateLayerUpload", key)
        try await repositoryForPush(principal, key)
        let s = try await registry.startUpload(key)
        return ["uploadId": .string(s.id), "partSize": .int(Self.partSize)]
    }

    func uploadID(_ p: Params) throws -> String {
        let id = try p.requiredString("uploadId")
        guard let canonical = UploadID.canonical(id) else {
            throw ECRError.invalidParameter("Invalid parameter at 'uploadId' failed to satisfy constraint: 'must satisfy regular expression '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}''")
        }
        return canonical
    }

    func uploadLayerPart(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let id = try uploadID(p)
        let first = try p.requiredInt("partFirstByte")
        let last = try p.requiredInt("partLastByte")
        let blob = try p.requiredString("layerPartBlob")
        for (field, value) in [("partFirstByte", first), ("partLastByte", last)] where value < 0 {
            throw ECRError.invalidParameter(ValidationMessage(.text("\(value)"), at: field, .valueAtLeast(0)))
        }
        guard let data = Data(base64Encoded: blob) else {
            throw ECRError.serialization("Unable to decode 'layerPartBlob': it is not valid base64")
        }
        // LayerPartBlob: at most 20971520 bytes (20 MiB) in the model.
        guard data.count <= Self.maxPartSize else {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "layerPartBlob", .lengthAtMost(Self.maxPartSize)))
        }
        try await authorize(principal, "UploadLayerPart", key)
        try await requireRepository(key)
        let session = try await registry.uploadSession(key, id)
        func invalidPart(_ reason: ECRError.InvalidPartReason) -> ECRError {
            .invalidLayerPart(reason, uploadID: id, repository: key.name, registry: wireID(key), lastValidByte: max(0, session.offset - 1))
        }
        guard first >= 0, last >= first, last - first + 1 == Int64(data.count) else {
            throw invalidPart(.sizeMismatch)
        }
        guard first == session.offset else {
            throw invalidPart(session.offset == 0 ? .firstPartNotAtZero(first) : .notConsecutive(first: first, lastReceived: session.offset - 1))
        }
        var buffer = ByteBufferAllocator().buffer(capacity: data.count)
        buffer.writeBytes(data)
        do {
            _ = try await registry.appendChunk(key, upload: id, range: ByteRange(start: first, end: last),
                                               contentLength: Int64(data.count), body: InMemoryBody(buffer: buffer))
        } catch let e as BerthError {
            switch e {
            case .rangeNotSatisfiable, .sizeInvalid: throw invalidPart(.other("\(e)"))
            default: throw e
            }
        }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "uploadId": .string(id),
                "lastByteReceived": .int(last)]
    }

    func completeLayerUpload(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let id = try uploadID(p)
        let digests = try p.requiredStringList("layerDigests", count: 1...100)
        guard let digest = Digest.parse(digests[0]) else {
            throw ECRError.invalidParameter("Invalid parameter at 'layerDigests' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+''")
        }
        try await authorize(principal, "CompleteLayerUpload", key)
        try await requireRepository(key)
        let session = try await registry.uploadSession(key, id)
        guard session.offset > 0 else {
            throw ECRError.emptyUpload(id)
        }
        // A part smaller than the minimum that another part followed; the sizes are stored with the upload
        // session (not in this process), since the parts may have reached other nodes.
        if let smallest = session.smallestInnerChunk, smallest < Self.minimumPartSize {
            throw ECRError.layerPartTooSmall(minimum: Self.minimumPartSize)
        }
        if try await registry.linkedBlobSize(digest, in: key) != nil {
            try await registry.cancelUpload(key, upload: id)
            throw ECRError.layerAlreadyExists(digest.description, repository: key.name, registry: wireID(key))
        }
        do {
            _ = try await registry.completeUpload(key, upload: id, digest: digest, range: nil, contentLength: 0,
                                                  body: InMemoryBody(buffer: nil))
        } catch BerthError.digestMismatch {
            throw ECRError.invalidLayer(uploadID: id, digest: digest.description)
        }
        return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name), "uploadId": .string(id),
                "layerDigest": .string(digest.description)]
    }

    func getDownloadUrlForLayer(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let text = try p.requiredString("layerDigest")
        guard let digest = Digest.parse(text) else {
            throw ECRError.invalidParameter("Invalid parameter at 'layerDigest' failed to satisfy constraint: 'must satisfy regular expression '[a-zA-Z0-9-_+.]+:[a-fA-F0-9]+''")
        }
        try await authorize(principal, "GetDownloadUrlForLayer", key)
        try await requireRepository(key)
        guard try await registry.linkedBlobSize(digest, in: key) != nil else {
            throw ECRError.layerNotFound(digest.description, repository: key.name, registry: wireID(key))
        }
        let parents = try await registry.referencingManifests(of: digest, in: key)
        guard !parents.isEmpty else {
            throw ECRError.layerInaccessible(digest.description, repository: key.name, registry: wireID(key))
        }
        // A layer only archived images use cannot be downloaded until one of them is restored.
        guard try await registry.anyPullable(parents, in: key) else {
            throw ECRError("LayerInaccessibleException",
                           "The layer with digest '\(digest)' belongs only to archived images in the repository with name '\(key.name)' in the registry with id '\(wireID(key))'; restore one of them to the STANDARD storage class first")
        }
        let url = try await env.downloadURL(principal, key, digest, clock.now())
        return ["downloadUrl": .string(url), "layerDigest": .string(digest.description)]
    }
}
