import BerthCore
import BerthStorage
import Foundation
import Testing

/// The image rules each store decides in one transaction: ECR PutImage's checks, deleting an image
/// (by digest or by tag), and read-modify-write of repository settings.
@Suite struct ImageRulesConformance {
    let layer = Digest.sha256(of: Array("layer".utf8))
    let config = Digest.sha256(of: Array("config".utf8))
    let child = Digest.sha256(of: Array("child".utf8))
    let index = Digest.sha256(of: Array("index".utf8))

    func rec(_ d: Digest) -> ManifestRecord {
        ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{\(d)}".utf8),
                       subject: nil, annotationsJSON: nil, pushedAt: 1)
    }

    func image(_ d: Digest, blobs: [Digest] = [], manifests: [Digest] = [], tag: String? = nil) -> ManifestPut {
        ManifestPut(record: rec(d), blobs: blobs, manifests: manifests, tag: tag, imageChecks: true)
    }

    @Test(arguments: Backend.allCases)
    func putImageRefusesWhatECRRefuses(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0, settings: RepositorySettings(imageTagMutability: .immutable))
        await #expect(throws: ImagePutRefusal.layersNotFound([config, layer])) {
            _ = try await m.putManifest(image(child, blobs: [config, layer], tag: "v1"), in: k("r"))
        }
        try await m.recordBlob(layer, size: 5, linkTo: k("r"), at: 0)
        await #expect(throws: ImagePutRefusal.layersNotFound([config]), "every missing blob, and only those") {
            _ = try await m.putManifest(image(child, blobs: [config, layer], tag: "v1"), in: k("r"))
        }
        #expect(try await m.manifest(child, in: k("r")) == nil, "a refused put stores nothing")
        try await m.recordBlob(config, size: 2, linkTo: k("r"), at: 0)
        _ = try await m.putManifest(image(child, blobs: [config, layer], tag: "v1"), in: k("r"))
        await #expect(throws: ImagePutRefusal.imageAlreadyExists(digest: child, tag: "v1"), "before the immutability check") {
            _ = try await m.putManifest(image(child, blobs: [config, layer], tag: "v1"), in: k("r"))
        }
        await #expect(throws: ImagePutRefusal.imageAlreadyExists(digest: child, tag: nil)) {
            _ = try await m.putManifest(image(child, blobs: [config, layer]), in: k("r"))
        }
        // The same image under another tag is a new tag, not an existing image.
        let another = try await m.putManifest(image(child, blobs: [config, layer], tag: "v2"), in: k("r"))
        #expect(another == ManifestPutResult(created: false, previousTagDigest: nil))
        let missing = Digest.sha256(of: Array("missing".utf8))
        await #expect(throws: ImagePutRefusal.referencedImagesNotFound([missing]), "the first missing child") {
            _ = try await m.putManifest(image(index, manifests: [child, missing, Digest.sha256(of: Array("x".utf8))]), in: k("r"))
        }
        await #expect(throws: BerthError.tagImmutable("v1"), "the immutability rule still applies") {
            _ = try await m.putManifest(image(index, manifests: [child], tag: "v1"), in: k("r"))
        }
        // Without imageChecks (the OCI door), pushing an existing image again is a no-op, not an error.
        let again = try await m.putManifest(ManifestPut(record: rec(child), blobs: [config, layer], manifests: [], tag: "v1"), in: k("r"))
        #expect(again == ManifestPutResult(created: false, previousTagDigest: nil))
    }

    @Test(arguments: Backend.allCases)
    func deletingByDigestRefusesAnImageAnIndexLists(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await m.putManifest(image(child, tag: "b"), in: k("r"))
        _ = try await m.putManifest(image(child, tag: "a"), in: k("r"))
        _ = try await m.putManifest(image(index, manifests: [child], tag: "list"), in: k("r"))
        #expect(try await m.deleteImage(.digest(child), in: k("r")) == .referenced(by: [index]))
        #expect(try await m.image(child, in: k("r"))?.tags == ["a", "b"], "a refused delete changes nothing")
        #expect(try await m.deleteImage(.digest(index), in: k("r")) == .deleted(tags: ["list"], imageDeleted: true))
        #expect(try await m.deleteImage(.digest(child), in: k("r")) == .deleted(tags: ["a", "b"], imageDeleted: true))
        #expect(try await m.manifest(child, in: k("r")) == nil)
        #expect(try await m.listTags(in: k("r"), after: nil, limit: 10) == [])
        #expect(try await m.deleteImage(.digest(child), in: k("r")) == .notFound)
        #expect(try await m.deleteImage(.digest(child), in: k("nope")) == .notFound)
    }

    @Test(arguments: Backend.allCases)
    func deletingTheLastTagDeletesTheImage(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await m.putManifest(image(child, tag: "a"), in: k("r"))
        _ = try await m.putManifest(image(child, tag: "b"), in: k("r"))
        _ = try await m.putManifest(image(layer, tag: "other"), in: k("r"))
        #expect(try await m.deleteImage(.tag("other", of: child), in: k("r")) == .notFound, "the tag names another image")
        #expect(try await m.resolveTag("other", in: k("r")) == layer)
        #expect(try await m.deleteImage(.tag("a", of: child), in: k("r")) == .deleted(tags: ["a"], imageDeleted: false))
        #expect(try await m.image(child, in: k("r"))?.tags == ["b"])
        #expect(try await m.deleteImage(.tag("b", of: child), in: k("r")) == .deleted(tags: ["b"], imageDeleted: true))
        #expect(try await m.manifest(child, in: k("r")) == nil)
        #expect(try await m.deleteImage(.tag("b", of: child), in: k("r")) == .notFound)
        // An image an index lists keeps existing, untagged, when its last tag goes: the index stays whole.
        _ = try await m.putManifest(image(child, tag: "c"), in: k("r"))
        _ = try await m.putManifest(image(index, manifests: [child]), in: k("r"))
        #expect(try await m.deleteImage(.tag("c", of: child), in: k("r")) == .deleted(tags: ["c"], imageDeleted: false))
        #expect(try await m.image(child, in: k("r"))?.tags == [])
    }

    @Test(arguments: Backend.allCases)
    func settingsUpdatesReadAndWriteInOneStep(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        #expect(try await m.updateRepositorySettings(k("nope")) { $0.scanOnPush = true } == nil)
        // Concurrent updates of different parts of the settings all land.
        try await withThrowingTaskGroup(of: Void.self) { g in
            for i in 0..<24 {
                g.addTask {
                    _ = try await m.updateRepositorySettings(k("r")) { $0.tags.append(ResourceTag(key: "k\(i)", value: "\(i)")) }
                }
            }
            g.addTask { _ = try await m.updateRepositorySettings(k("r")) { $0.policy = "{}" } }
            g.addTask { _ = try await m.updateRepositorySettings(k("r")) { $0.imageTagMutability = .immutable } }
            try await g.waitForAll()
        }
        let settings = try #require(try await m.repository(k("r"))?.settings)
        #expect(Set(settings.tags.map(\.key)) == Set((0..<24).map { "k\($0)" }))
        #expect(settings.policy == "{}")
        #expect(settings.imageTagMutability == .immutable)
        struct TooMany: Error {}
        await #expect(throws: TooMany.self) {
            _ = try await m.updateRepositorySettings(k("r")) { s in
                s.tags = []
                throw TooMany()
            }
        }
        #expect(try await m.repository(k("r"))?.settings.tags.count == 24, "an update that throws changes nothing")
    }

    /// PutImage of an index races a delete of its child: the check and the write are one transaction on
    /// both sides, so either the index is stored and its child still exists, or the put was refused and
    /// the child is gone. Never an index listing a deleted manifest.
    @Test(arguments: Backend.allCases)
    func putImageAndAConcurrentDeleteLeaveNoHalfState(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        for round in 0..<40 {
            let c = Digest.sha256(of: Array("child\(round)".utf8))
            let i = Digest.sha256(of: Array("index\(round)".utf8))
            _ = try await m.putManifest(image(c), in: k("r"))
            async let put: Bool = {
                do {
                    _ = try await m.putManifest(image(i, manifests: [c], tag: "t\(round)"), in: k("r"))
                    return true
                } catch ImagePutRefusal.referencedImagesNotFound {
                    return false
                }
            }()
            async let deletion = m.deleteImage(.digest(c), in: k("r"))
            let (stored, deleted) = try await (put, deletion)
            let index = try await m.manifest(i, in: k("r"))
            let child = try await m.manifest(c, in: k("r"))
            if stored {
                #expect(deleted == .referenced(by: [i]), "round \(round): the index came first")
                #expect(index != nil && child != nil)
            } else {
                #expect(deleted == .deleted(tags: [], imageDeleted: true), "round \(round): the delete came first")
                #expect(index == nil && child == nil)
            }
        }
    }
}
