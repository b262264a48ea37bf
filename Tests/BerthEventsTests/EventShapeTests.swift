import BerthCore
import BerthEvents
import BerthRegistry
import BerthSupport
import Testing

/// The envelope and `detail` shapes of the events (the ECR user guide's samples), the CloudEvents form,
/// and the signature.
@Suite struct EventShapeTests {
    let source = ECREventSource(region: "us-west-2", newID: { "13cde686-328b-6117-af20-0e5566167482" })
    let repo = RepositoryKey(storedRegistryID: "123456789012", name: "my-repository-name")
    let digest = Digest.parse("sha256:" + String(repeating: "7f", count: 32))!

    func json(_ e: OutboxEvent) throws -> [String: JSONValue] {
        guard case .object(let o) = try JSONValue.parse(Array(e.body.utf8)) else { throw EventPatternError("not an object") }
        return o
    }

    @Test func pushHasTheEnvelopeAndECRDetail() throws {
        let events = source.imagePushed(repo, digest: digest, tag: "latest", manifestMediaType: MediaType.ociManifest,
                                        artifactMediaType: "application/vnd.oci.image.config.v1+json", time: 1_573_869_274)
        let e = try #require(events.first)
        #expect(events.count == 1 && e.detailType == "ECR Image Action" && e.account == "123456789012")
        let o = try json(e)
        #expect(Set(o.keys) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"])
        #expect(o["version"] == .string("0") && o["id"] == .string(e.id) && o["source"] == .string("aws.ecr"))
        #expect(o["time"] == .string("2019-11-16T01:54:34Z") && o["region"] == .string("us-west-2") && o["resources"] == .array([]))
        #expect(o["detail"] == .object([
            "result": .string("SUCCESS"), "repository-name": .string("my-repository-name"),
            "image-digest": .string(digest.description), "action-type": .string("PUSH"), "image-tag": .string("latest"),
            "manifest-media-type": .string(MediaType.ociManifest),
            "artifact-media-type": .string("application/vnd.oci.image.config.v1+json"),
        ]))
        // By digest: no image-tag.
        let byDigest = try json(try #require(source.imagePushed(repo, digest: digest, tag: nil, manifestMediaType: "m",
                                                                artifactMediaType: nil, time: 0).first))
        guard case .object(let d) = byDigest["detail"] else { Issue.record("detail"); return }
        #expect(d["image-tag"] == nil && d["artifact-media-type"] == nil)
    }

    @Test func deleteIsOneEventPerTag() throws {
        let tagged = source.imageDeleted(repo, digest: digest, tags: ["a", "b"], time: 0)
        #expect(try tagged.map { try json($0)["detail"] } == ["a", "b"].map { tag in
            .object(["result": .string("SUCCESS"), "repository-name": .string("my-repository-name"),
                     "image-digest": .string(digest.description), "action-type": .string("DELETE"), "image-tag": .string(tag)])
        })
        let untagged = source.imageDeleted(repo, digest: digest, tags: [], time: 0)
        #expect(untagged.count == 1)
        guard case .object(let d)? = try json(untagged[0])["detail"] else { Issue.record("detail"); return }
        #expect(d["image-tag"] == nil && d["action-type"] == .string("DELETE"))
        // ECR Public sends no events.
        let pub = RepositoryKey(registry: .public("123456789012"), name: try RepositoryName("public-app"))
        #expect(source.imageDeleted(pub, digest: digest, tags: [], time: 0).isEmpty)
    }

    @Test func scanCountsOnlyTheSeveritiesFound() throws {
        func finding(_ s: ScanSeverity) -> ScanFinding {
            ScanFinding(name: "CVE", description: nil, uri: "https://x", severity: s, attributes: [], packageName: "p",
                        packageVersion: "1", packageManager: "OS", source: "Debian")
        }
        let scan = ImageScanRecord(repository: repo, digest: digest, state: .complete, trigger: "PUSH", requestedAt: 0,
                                   findings: Array(repeating: finding(.critical), count: 10) + Array(repeating: finding(.medium), count: 9))
        let e = try #require(source.imageScanned(scan, tags: ["v2", "v1"], time: 1_572_316_608).first)
        let o = try json(e)
        #expect(e.detailType == "ECR Image Scan")
        #expect(o["resources"] == .array([.string("arn:aws:ecr:us-west-2:123456789012:repository/my-repository-name")]))
        #expect(o["detail"] == .object([
            "scan-status": .string("COMPLETE"), "repository-name": .string("my-repository-name"),
            "finding-severity-counts": .object(["CRITICAL": .int(10), "MEDIUM": .int(9)]),
            "image-digest": .string(digest.description), "image-tags": .array([.string("v1"), .string("v2")]),
        ]))
        var pending = scan
        pending.state = .inProgress
        #expect(source.imageScanned(pending, tags: [], time: 0).isEmpty, "only finished scans")
    }

    @Test func storageClassChangesAreImageOrReferrerActions() throws {
        let image = ManifestRecord(digest: digest, mediaType: MediaType.ociManifest, artifactType: "application/vnd.oci.image.config.v1+json",
                                   bytes: [], subject: nil, annotationsJSON: nil, pushedAt: 0)
        let archived = try #require(source.storageClassChanged(repo, image, to: .archive, time: 1_565_053_089).first)
        #expect(archived.detailType == "ECR Image Action")
        #expect(try json(archived)["detail"] == .object([
            "action-type": .string("UPDATE_STORAGE_CLASS"), "target-storage-class": .string("ARCHIVE"),
            "image-digest": .string(digest.description), "repository-name": .string("my-repository-name"),
            "result": .string("SUCCESS"), "manifest-media-type": .string(MediaType.ociManifest),
            "artifact-media-type": .string("application/vnd.oci.image.config.v1+json"),
        ]))
        var sbom = image
        sbom.subject = digest
        sbom.artifactType = "text/sbom+json"
        let restored = try #require(source.storageClassChanged(repo, sbom, to: .standard, time: 1_760_123_582.74).first)
        #expect(restored.detailType == "ECR Referrer Action")
        guard case .object(let d)? = try json(restored)["detail"] else { Issue.record("detail"); return }
        #expect(d["target-storage-class"] == .string("STANDARD") && d["last-activated-at"] == .string("2025-10-10T19:13:02.740Z"))
        #expect(d["artifact-media-type"] == .string("text/sbom+json"))
    }

    @Test func cloudEventsStructuredMode() throws {
        let e = try #require(source.imagePushed(repo, digest: digest, tag: "latest", manifestMediaType: "m", artifactMediaType: nil,
                                                time: 1_573_869_274).first)
        let target = EventTarget(name: "ce", url: "http://x", format: .cloudevents)
        #expect(target.contentType == "application/cloudevents+json")
        guard case .object(let ce) = try JSONValue.parse(target.body(for: e.body)) else { Issue.record("object"); return }
        let eb = try json(e)
        #expect(ce["specversion"] == .string("1.0") && ce["id"] == .string(e.id) && ce["source"] == .string("aws.ecr"))
        #expect(ce["type"] == .string("ECR Image Action") && ce["time"] == .string("2019-11-16T01:54:34Z"))
        #expect(ce["subject"] == .string("my-repository-name") && ce["datacontenttype"] == .string("application/json"))
        #expect(ce["data"] == eb["detail"] && ce["account"] == .string("123456789012") && ce["region"] == .string("us-west-2"))
        #expect(EventTarget(name: "eb", url: "http://x").body(for: e.body) == Array(e.body.utf8))
    }

    @Test func signature() {
        let body = Array(#"{"a":1}"#.utf8)
        let header = EventSignature.value(secret: "s3cret", timestamp: 1_700_000_000, body: body)
        // HMAC-SHA256("s3cret", "1700000000.{"a":1}"), computed independently with Python's hmac module.
        #expect(header == "t=1700000000,v1=" + EventSignatureVector.expected)
        #expect(EventSignature.verify(header, secret: "s3cret", body: body))
        #expect(!EventSignature.verify(header, secret: "other", body: body))
        #expect(!EventSignature.verify(header, secret: "s3cret", body: Array(#"{"a":2}"#.utf8)))
        #expect(!EventSignature.verify("t=1700000001,v1=" + EventSignatureVector.expected, secret: "s3cret", body: body))
        #expect(!EventSignature.verify("garbage", secret: "s3cret", body: body))
    }
}

enum EventSignatureVector {
    static let expected = "1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
}
