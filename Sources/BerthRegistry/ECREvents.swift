import BerthCore
import BerthStorage
import BerthSupport
import Foundation

/// The events Amazon ECR sends to EventBridge, made from the registry's changes (docs/events.md): the
/// EventBridge envelope (`version` "0", `id`, `detail-type`, `source` "aws.ecr", `account`, `time`,
/// `region`, `resources`, `detail`) with ECR's `detail` shapes, as the ECR user guide's "Amazon ECR
/// events and EventBridge" shows them. Private repositories only (ECR Public sends none).
public struct ECREventSource: Sendable {
    public let region: String
    let newID: @Sendable () -> String

    public init(region: String, newID: @escaping @Sendable () -> String = { TimeOrderedUUID.shared.next() }) {
        self.region = region
        self.newID = newID
    }

    public static let source = "aws.ecr"
    public static let imageAction = "ECR Image Action"
    public static let imageScan = "ECR Image Scan"
    public static let referrerAction = "ECR Referrer Action"
    public static let replicationAction = "ECR Replication Action"

    /// One event in EventBridge's envelope.
    /// `region`: the repository's registry's region (nil: the home region, `self.region`).
    public func event(detailType: String, account: String, region: String? = nil, time: Double, resources: [String],
                      detail: [String: JSONValue]) -> OutboxEvent {
        let id = newID()
        let envelope: JSONValue = .object([
            "version": .string("0"), "id": .string(id), "detail-type": .string(detailType),
            "source": .string(Self.source), "account": .string(account), "time": .string(UTCTimestamp.iso8601(time)),
            "region": .string(region ?? self.region), "resources": .array(resources.map(JSONValue.string)), "detail": .object(detail),
        ])
        return OutboxEvent(id: id, time: time, detailType: detailType, account: account,
                           body: String(decoding: envelope.encoded(), as: UTF8.self))
    }

    /// `ECR Image Action`, `action-type` `PUSH`: a manifest stored (by tag or by digest).
    public func imagePushed(_ repository: RepositoryKey, digest: Digest, tag: String?, manifestMediaType: String,
                            artifactMediaType: String?, time: Double) -> [OutboxEvent] {
        guard !repository.registry.isPublic else { return [] }
        var detail: [String: JSONValue] = [
            "result": .string("SUCCESS"), "repository-name": .string(repository.name),
            "image-digest": .string(digest.description), "action-type": .string("PUSH"),
            "manifest-media-type": .string(manifestMediaType),
        ]
        if let tag { detail["image-tag"] = .string(tag) }
        if let artifactMediaType { detail["artifact-media-type"] = .string(artifactMediaType) }
        return [event(detailType: Self.imageAction, account: repository.registry.account, region: repository.registry.region, time: time, resources: [], detail: detail)]
    }

    /// `ECR Image Action`, `action-type` `DELETE`: one event per tag removed (an image deleted without
    /// a tag: one event without `image-tag`). Lifecycle expirations take this road too.
    public func imageDeleted(_ repository: RepositoryKey, digest: Digest, tags: [String], time: Double) -> [OutboxEvent] {
        guard !repository.registry.isPublic else { return [] }
        let names: [String?] = tags.isEmpty ? [nil] : tags
        return names.map { tag in
            var detail: [String: JSONValue] = [
                "result": .string("SUCCESS"), "repository-name": .string(repository.name),
                "image-digest": .string(digest.description), "action-type": .string("DELETE"),
            ]
            if let tag { detail["image-tag"] = .string(tag) }
            return event(detailType: Self.imageAction, account: repository.registry.account, region: repository.registry.region, time: time, resources: [], detail: detail)
        }
    }

    /// `ECR Image Scan` (basic scanning): a scan that ended. `finding-severity-counts` holds only the
    /// severities found, as ECR's does.
    public func imageScanned(_ scan: ImageScanRecord, tags: [String], time: Double) -> [OutboxEvent] {
        let repository = scan.repository
        guard !repository.registry.isPublic, scan.state.isFinal else { return [] }
        var counts: [String: JSONValue] = [:]
        for (severity, n) in scan.severityCounts where n > 0 { counts[severity.rawValue] = .int(Int64(n)) }
        let arn = ARN.ecrRepository(region: repository.registry.region ?? region, account: repository.registry.account, name: repository.name)
        return [event(detailType: Self.imageScan, account: repository.registry.account, region: repository.registry.region, time: time, resources: ["\(arn)"], detail: [
            "scan-status": .string(scan.state.rawValue), "repository-name": .string(repository.name),
            "finding-severity-counts": .object(counts), "image-digest": .string(scan.digest.description),
            "image-tags": .array(tags.sorted().map(JSONValue.string)),
        ])]
    }

    /// `ECR Image Action`, `action-type` `UPDATE_STORAGE_CLASS`: an image archived (`target-storage-class`
    /// `ARCHIVE`) or restored (`STANDARD`, with `last-activated-at`). A referrer (a manifest with a
    /// subject: a signature, an SBOM) is an `ECR Referrer Action`, as in ECR.
    public func storageClassChanged(_ repository: RepositoryKey, _ manifest: ManifestRecord, to target: ImageStorageClass,
                                    time: Double) -> [OutboxEvent] {
        guard !repository.registry.isPublic else { return [] }
        var detail: [String: JSONValue] = [
            "action-type": .string("UPDATE_STORAGE_CLASS"), "target-storage-class": .string(target.rawValue),
            "image-digest": .string(manifest.digest.description), "repository-name": .string(repository.name),
            "result": .string("SUCCESS"), "manifest-media-type": .string(manifest.mediaType),
        ]
        if let artifact = manifest.artifactType { detail["artifact-media-type"] = .string(artifact) }
        if target == .standard { detail["last-activated-at"] = .string(UTCTimestamp.iso8601(time, millis: true)) }
        return [event(detailType: manifest.subject == nil ? Self.imageAction : Self.referrerAction,
                      account: repository.registry.account, region: repository.registry.region, time: time, resources: [], detail: detail)]
    }

    /// `ECR Replication Action`, `action-type` `REPLICATE`: a replication job finished, `result` `SUCCESS`
    /// (COMPLETE) or `FAILED`. As ECR sends it, the event belongs to the destination — `account` and
    /// `region` are the destination registry's, `resources` the destination repository's ARN — and
    /// `source-account` / `source-region` say where the image came from; one event per tag of the image
    /// (one without `image-tag` for an untagged image).
    public func replicationFinished(_ key: ReplicationJobKey, succeeded: Bool, tags: [String], time: Double) -> [OutboxEvent] {
        let source = key.source.registry
        guard !source.isPublic else { return [] }
        let d = key.destination
        let arn = ARN.ecrRepository(region: d.region, account: d.registryId, name: key.repository)
        let names: [String?] = tags.isEmpty ? [nil] : tags.sorted()
        return names.map { tag in
            var detail: [String: JSONValue] = [
                "result": .string(succeeded ? "SUCCESS" : "FAILED"), "repository-name": .string(key.repository),
                "image-digest": .string(key.digest.description), "source-account": .string(source.account),
                "action-type": .string("REPLICATE"), "source-region": .string(source.region ?? region),
            ]
            if let tag { detail["image-tag"] = .string(tag) }
            return event(detailType: Self.replicationAction, account: d.registryId, region: d.region, time: time,
                         resources: ["\(arn)"], detail: detail)
        }
    }
}
