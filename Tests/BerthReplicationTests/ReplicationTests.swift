import BerthCore
import BerthRegistry
import BerthReplication
import BerthStorage
import BerthSupport
import Foundation
import NIOCore
import Testing

/// ECR's validation of replication configurations, rule matching and the retry schedule (pure).
@Suite struct ReplicationRulesTests {
    let me = "111111111111"
    func config(_ rules: [ReplicationRule]) -> ReplicationConfiguration { ReplicationConfiguration(rules: rules) }
    func dest(_ region: String, _ id: String = "111111111111") -> ReplicationDestination { ReplicationDestination(region: region, registryId: id) }

    func refused(_ c: ReplicationConfiguration, _ fragment: String) {
        do {
            try ReplicationRules.validate(c, sourceAccount: me, sourceRegion: "us-east-1")
            Issue.record("accepted: \(c)")
        } catch {
            guard case .invalidParameter(let m) = error else { return }
            #expect(m.contains(fragment), "\(m)")
        }
    }

    @Test func validConfigurationsPass() throws {
        try ReplicationRules.validate(config([]), sourceAccount: me, sourceRegion: "us-east-1")
        try ReplicationRules.validate(config([ReplicationRule(destinations: [dest("us-west-2"), dest("us-east-1", "222222222222")],
                                                              prefixes: ["prod", "team/app-", "a."])]),
                                      sourceAccount: me, sourceRegion: "us-east-1")
    }

    @Test func limitsPatternsAndTheSourceItselfAreRefused() {
        refused(config([ReplicationRule(destinations: [dest("us-east-1")])]), "cannot be the same as the source registry")
        refused(config(Array(repeating: ReplicationRule(destinations: [dest("us-west-2")]), count: 11)), "less than or equal to 10")
        refused(config([ReplicationRule(destinations: [])]), "at least one destination")
        refused(config([ReplicationRule(destinations: [dest("US-WEST-2")])]), "region")
        refused(config([ReplicationRule(destinations: [dest("us-west-2", "12345")])]), "registryId")
        refused(config([ReplicationRule(destinations: [dest("us-west-2")], prefixes: ["a"])]), "filter")
        refused(config([ReplicationRule(destinations: [dest("us-west-2")], prefixes: ["Prod"])]), "filter")
        refused(config([ReplicationRule(destinations: [dest("us-west-2")], prefixes: ["/x"])]), "filter")
        let many = (0..<26).map { dest("us-west-2", String(format: "%012d", $0 + 1)) }
        refused(config([ReplicationRule(destinations: many)]), "25 unique destinations")
        // The same destinations in two rules count once.
        let twenty = Array(many.prefix(20))
        #expect(throws: Never.self) {
            try ReplicationRules.validate(config([ReplicationRule(destinations: twenty), ReplicationRule(destinations: twenty)]),
                                          sourceAccount: me, sourceRegion: "us-east-1")
        }
    }

    @Test func filterValuesFollowTheModelsPattern() {
        for ok in ["ab", "prod", "team/app", "team/", "a-", "a._-b", "x/y/z-"] { #expect(ReplicationRules.isFilterValue(ok), "\(ok)") }
        for bad in ["a", "A1", "-a/b", "a//b", "a b", String(repeating: "a", count: 257)] { #expect(!ReplicationRules.isFilterValue(bad), "\(bad)") }
    }

    @Test func rulesMatchByPrefixAndDestinationsAreDeduplicated() {
        let c = config([
            ReplicationRule(destinations: [dest("us-west-2"), dest("eu-west-1")], prefixes: ["prod"]),
            ReplicationRule(destinations: [dest("eu-west-1"), dest("ap-south-1")]),
        ])
        #expect(c.destinations(for: "prod/app") == [dest("us-west-2"), dest("eu-west-1"), dest("ap-south-1")])
        #expect(c.destinations(for: "dev/app") == [dest("eu-west-1"), dest("ap-south-1")])
        let filtered = config([ReplicationRule(destinations: [dest("us-west-2")], prefixes: ["prod", "stage"])])
        #expect(filtered.destinations(for: "stage-x") == [dest("us-west-2")])
        #expect(filtered.destinations(for: "dev").isEmpty)
    }

    @Test func backoffDoublesUpToItsCap() {
        #expect((1...6).map { ReplicationRules.backoff(attempt: $0, base: 1, max: 10) } == [1, 2, 4, 8, 10, 10])
        #expect(ReplicationRules.backoff(attempt: 1_000, base: 2, max: 300) == 300)
    }
}

/// A body of one buffer.
struct Bytes: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let bytes: [UInt8]
    struct AsyncIterator: AsyncIteratorProtocol {
        var bytes: [UInt8]?
        mutating func next() async throws -> ByteBuffer? {
            defer { bytes = nil }
            return bytes.map { ByteBuffer(bytes: $0) }
        }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(bytes: bytes) }
}

/// The worker copying to registries of the same deployment (through `Registry`, on in-memory stores):
/// single images, indexes with their children, referrers, tags, filters and the cross-account policy.
@Suite struct LocalReplicationTests {
    static let source = "111111111111"
    static let other = "222222222222"
    var registry = Registry.inMemory()

    func repo(_ account: String, _ name: String) -> RepositoryKey { RepositoryKey(registry: .private(account), name: try! RepositoryName(name)) }

    func blob(_ text: String, to key: RepositoryKey) async throws -> (digest: Digest, size: Int) {
        let bytes = Array(text.utf8)
        let d = Digest.sha256(of: bytes)
        try await registry.monolithicUpload(key, digest: d, contentLength: Int64(bytes.count), body: Bytes(bytes: bytes))
        return (d, bytes.count)
    }

    /// Pushes an image (a config and one layer) and returns its manifest's digest.
    func image(_ key: RepositoryKey, tag: String?, layer: String, subject: (Digest, Int)? = nil) async throws -> (Digest, Int) {
        let config = try await blob(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#, to: key)
        let l = try await blob(layer, to: key)
        var m = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(config.digest)","size":\#(config.size)},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\#(l.digest)","size":\#(l.size)}]"#
        if let (d, size) = subject {
            m += #","subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(d)","size":\#(size)},"artifactType":"application/vnd.example.sbom""#
        }
        m += "}"
        let bytes = Array(m.utf8)
        let reference: Reference = try tag.map { .tag(try Tag($0)) } ?? .digest(Digest.sha256(of: bytes))
        let pushed = try await registry.putManifest(key, reference: reference, contentType: "application/vnd.oci.image.manifest.v1+json", bytes: bytes)
        return (pushed.digest, bytes.count)
    }

    func service(region: String = "us-east-1") -> ReplicationService {
        ReplicationService(registry: registry, settings: ReplicationSettings(regions: .single(region), retryBaseSeconds: 0.01))
    }

    func configure(_ rules: [ReplicationRule]) async throws {
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: rules), of: .private(Self.source))
    }

    @Test func localDestinationsAreTheRegionsThisDeploymentServes() {
        let s = service(region: "eu-west-1")
        #expect(s.localDestination(region: "eu-west-1", registryId: Self.other) == .private(Self.other))
        #expect(s.localDestination(region: "us-east-1", registryId: Self.other) == nil)
        #expect(s.peer(region: "us-east-1", registryId: Self.other) == nil)
        // With several regions, another served region is that account's registry there.
        let multi = ReplicationService(registry: registry, settings: ReplicationSettings(
            regions: RegionSet(home: "eu-west-1", listed: ["ap-south-1"]),
            peers: [ReplicationPeer(region: "us-west-2", endpoint: "http://127.0.0.1:9", accessKeyId: "a", secretAccessKey: "b")]))
        #expect(multi.localDestination(region: "ap-south-1", registryId: Self.other) == .private(Self.other, region: "ap-south-1"))
        #expect(multi.localDestination(region: "us-west-2", registryId: Self.other) == nil)
        #expect(multi.peer(region: "us-west-2", registryId: Self.other)?.endpoint == "http://127.0.0.1:9")
    }

    @Test func crossAccountNeedsTheDestinationsRegistryPolicy() async throws {
        try await configure([ReplicationRule(destinations: [ReplicationDestination(region: "us-east-1", registryId: Self.other)], prefixes: ["prod"])])
        let src = repo(Self.source, "prod/app")
        let (digest, _) = try await image(src, tag: "v1", layer: "layer one")
        _ = try await image(repo(Self.source, "dev/app"), tag: "v1", layer: "dev layer")  // filtered out: no job
        #expect(try await registry.replicationJobs(state: nil, after: nil, limit: 10).count == 1)

        let worker = service()
        #expect(try await worker.runOnce() == 1)
        var status = try await registry.replicationJobs(of: src, digest: digest)
        #expect(status.map(\.state) == [.failed])
        #expect(status.first?.failureReason?.contains("does not allow ecr:ReplicateImage") == true)
        #expect(try await registry.findRepository(repo(Self.other, "prod/app")) == nil)

        // The destination allows the source account: a new push (or a backfill) replicates.
        try await registry.putRegistryPolicy(of: Self.other, #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\#(Self.source):root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"arn:aws:ecr:us-east-1:\#(Self.other):repository/*"}]}"#)
        #expect(try await registry.backfillReplication(of: .private(Self.source)) == 1)
        #expect(try await worker.runOnce() == 1)
        status = try await registry.replicationJobs(of: src, digest: digest)
        #expect(status.map(\.state) == [.complete])
        let dst = repo(Self.other, "prod/app")
        #expect(try await registry.resolveTag("v1", in: dst) == digest)
        #expect(try await registry.storedManifest(digest, in: dst)?.bytes == registry.storedManifest(digest, in: src)?.bytes)
        // The copy is not replicated again, and the source's other repository never was.
        #expect(try await registry.findRepository(repo(Self.other, "dev/app")) == nil)
        #expect(try await registry.replicationJobs(state: .inProgress, after: nil, limit: 10).isEmpty)
    }

    @Test func indexesTheirChildrenReferrersAndTagsReplicate() async throws {
        let here = ReplicationDestination(region: "us-east-1", registryId: Self.other)
        let elsewhere = ReplicationDestination(region: "eu-west-1", registryId: Self.source)
        try await configure([ReplicationRule(destinations: [here, elsewhere])])
        try await registry.putRegistryPolicy(of: Self.other, #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\#(Self.source):root"},"Action":["ecr:CreateRepository","ecr:ReplicateImage"],"Resource":"*"}]}"#)
        let src = repo(Self.source, "multi")
        let a = try await image(src, tag: nil, layer: "amd64 layer")
        let b = try await image(src, tag: nil, layer: "arm64 layer")
        let index = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(a.0)","size":\#(a.1),"platform":{"architecture":"amd64","os":"linux"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(b.0)","size":\#(b.1),"platform":{"architecture":"arm64","os":"linux"}}]}"#
        let pushed = try await registry.putManifest(src, reference: .tag(try Tag("latest")), contentType: "application/vnd.oci.image.index.v1+json",
                                                    bytes: Array(index.utf8))
        _ = try await registry.putManifest(src, reference: .tag(try Tag("stable")), contentType: "application/vnd.oci.image.index.v1+json",
                                           bytes: Array(index.utf8))
        let sbom = try await image(src, tag: nil, layer: "sbom", subject: (a.0, a.1))

        let worker = service(region: "us-east-1")
        while try await worker.runOnce() > 0 {}
        let jobs = try await registry.replicationJobs(of: src, digest: pushed.digest)
        #expect(jobs.map(\.key.destination) == [elsewhere, here])
        #expect(jobs.map(\.state) == [.failed, .complete])
        // Not this deployment's region, and no peer configured for it: a clear reason.
        #expect(jobs.first?.failureReason?.contains("no replicationPeers entry") == true)

        let dst = repo(Self.other, "multi")
        #expect(try await registry.resolveTag("latest", in: dst) == pushed.digest)
        #expect(try await registry.resolveTag("stable", in: dst) == pushed.digest)
        for child in [a.0, b.0] { #expect(try await registry.storedManifest(child, in: dst) != nil) }
        #expect(try await registry.referrers(dst, of: a.0, artifactType: nil).map(\.digest) == [sbom.0.description])
        // Blobs were copied under the destination account's key domain and read back the same.
        let manifest = try #require(try await registry.storedManifest(a.0, in: dst))
        let parsed = try ManifestParser.parse(manifest.bytes, contentType: manifest.mediaType)
        for d in parsed.requiredBlobs { #expect(try await registry.linkedBlobSize(d, in: dst) == registry.linkedBlobSize(d, in: src)) }
        // A second pass of the same job finds everything present.
        try await registry.enqueueReplication([jobs[1].key])
        #expect(try await worker.runOnce() == 1)
        #expect(try await registry.replicationJobs(of: src, digest: pushed.digest).map(\.state) == [.failed, .complete])
    }
}

/// Reconciliation, the purge of finished jobs and the `ECR Replication Action` events, on a deployment
/// serving two regions (the destination is the source account's registry in the other region).
@Suite struct ReplicationReconciliationTests {
    static let source = "111111111111"
    let registry = Registry(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore(),
                            eventSource: ECREventSource(region: "us-east-1", newID: { UUID().uuidString }))
    let west = ReplicationDestination(region: "us-west-2", registryId: Self.source)

    var helper: LocalReplicationTests { LocalReplicationTests(registry: registry) }
    func service(retention: Double = 100, failedRetention: Double? = nil) -> ReplicationService {
        ReplicationService(registry: registry, settings: ReplicationSettings(
            regions: RegionSet(home: "us-east-1", listed: ["us-west-2"]), retryBaseSeconds: 0.01,
            completeRetentionSeconds: retention, failedRetentionSeconds: failedRetention))
    }
    var src: RepositoryKey { RepositoryKey(registry: .private(Self.source), name: try! RepositoryName("prod/app")) }
    var dst: RepositoryKey { RepositoryKey(registry: .private(Self.source, region: "us-west-2"), name: try! RepositoryName("prod/app")) }

    func replicationEvents() async throws -> [[String: Any]] {
        _ = try await registry.routeEvents(limit: 100) { _ in ["t"] }
        return try await registry.eventDeliveries(state: nil, after: nil, limit: 100).map(\.event)
            .filter { $0.detailType == "ECR Replication Action" }
            .map { try JSONSerialization.jsonObject(with: Data($0.body.utf8)) as! [String: Any] }
    }

    @Test func reconciliationFindsAndRepairsDrift() async throws {
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: [ReplicationRule(destinations: [west], prefixes: ["prod"])]),
                                                       of: .private(Self.source))
        let (a, _) = try await helper.image(src, tag: "v1", layer: "one")
        let (b, _) = try await helper.image(src, tag: "v2", layer: "two")
        let (c, _) = try await helper.image(src, tag: "v3", layer: "three")
        let worker = service()
        while try await worker.runOnce() > 0 {}
        var report = try await worker.reconcile()
        #expect(report.registries == 1 && report.repositories == 1 && report.checked == 3 && report.drift == 0 && report.enqueued == 0)

        // Deleted at the destination by hand (c); a tag moved there (v1 to b's image).
        _ = try await registry.deleteImage(dst, .digest(c))
        _ = try await registry.putManifest(dst, reference: .tag(try Tag("v1")), contentType: "application/vnd.oci.image.manifest.v1+json",
                                           bytes: try #require(try await registry.storedManifest(b, in: src)).bytes)
        report = try await worker.reconcile(full: true)
        #expect(report.checked == 3 && report.missing == 1 && report.tagsDiffering == 1 && report.enqueued == 2, "\(report)")
        #expect(report.full == 1 && report.incremental == 0)
        #expect(try await worker.reconcile(full: true).alreadyQueued == 2)  // the repairs are queued, not checked again
        while try await worker.runOnce() > 0 {}
        #expect(try await registry.resolveTag("v1", in: dst) == a)
        #expect(try await registry.resolveTag("v3", in: dst) == c)
        #expect(try await worker.reconcile(full: true).drift == 0)

        // A destination nothing serves is counted, never checked.
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: [ReplicationRule(destinations: [
            ReplicationDestination(region: "ap-south-1", registryId: Self.source)])]), of: .private(Self.source))
        report = try await worker.reconcile()
        #expect(report.unchecked == 3 && report.enqueued == 0)
    }

    /// Incremental passes check only what changed since the last completed pass (images pushed or tagged,
    /// jobs that FAILED); every `reconcileFullEvery`-th pass, `full`, and changed rules check everything,
    /// which is how drift that starts at a destination is found.
    @Test func incrementalPassesCheckWhatChangedAndFullPassesFindDestinationDrift() async throws {
        let clock = ManualWallClock()
        let registry = Registry(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore(), clock: clock)
        let helper = LocalReplicationTests(registry: registry)
        let worker = ReplicationService(registry: registry, settings: ReplicationSettings(
            regions: RegionSet(home: "us-east-1", listed: ["us-west-2"]), retryBaseSeconds: 0.01, reconcileFullEvery: 3,
            reconcileOverlapSeconds: 60))
        func drain() async throws { while try await worker.runOnce() > 0 {} }
        func hourLater() { clock.advance(by: 3_600) }
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: [ReplicationRule(destinations: [west])]),
                                                       of: .private(Self.source))
        let (a, _) = try await helper.image(src, tag: "v1", layer: "one")
        let (b, _) = try await helper.image(src, tag: "v2", layer: "two")
        try await drain()
        hourLater()
        var report = try await worker.reconcile()  // no mark yet: full
        #expect(report.full == 1 && report.incremental == 0 && report.checked == 2 && report.drift == 0, "\(report)")

        // a deleted at the destination; c pushed; b tagged again at the source.
        hourLater()
        _ = try await registry.deleteImage(dst, .digest(a))
        let (c, _) = try await helper.image(src, tag: "v3", layer: "three")
        _ = try await registry.putManifest(src, reference: .tag(try Tag("latest")), contentType: "application/vnd.oci.image.manifest.v1+json",
                                           bytes: try #require(try await registry.storedManifest(b, in: src)).bytes)
        try await drain()
        clock.advance(by: 120)  // past the overlap: the next pass does not see these pushes again
        report = try await worker.reconcile()
        #expect(report.incremental == 1 && report.full == 0 && report.checked == 2 && report.drift == 0, "\(report)")  // b and c only
        hourLater()
        report = try await worker.reconcile()
        #expect(report.incremental == 1 && report.checked == 0 && report.repositories == 0, "\(report)")
        hourLater()
        report = try await worker.reconcile()  // the third pass since the full one
        #expect(report.full == 1 && report.checked == 3 && report.missing == 1 && report.enqueued == 1, "\(report)")
        try await drain()
        #expect(try await registry.resolveTag("v1", in: dst) == a)

        // A job that gave up since the last pass: its image is checked again.
        hourLater()
        _ = try await registry.deleteImage(dst, .digest(a))
        try await registry.enqueueReplication([ReplicationJobKey(sourceRegistry: src.registryID, repository: src.name, digest: a, destination: west)])
        let due = try #require(try await registry.dueReplicationJobs(limit: 10).first)
        #expect(try await registry.finishReplicationJob(due, .failed(reason: "gave up")))
        report = try await worker.reconcile()
        #expect(report.incremental == 1 && report.checked == 1 && report.missing == 1 && report.enqueued == 1, "\(report)")
        try await drain()
        #expect(try await registry.resolveTag("v1", in: dst) == a)

        // Changed rules, or `full`, make a full pass.
        hourLater()
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: [ReplicationRule(destinations: [west], prefixes: ["prod"])]),
                                                       of: .private(Self.source))
        report = try await worker.reconcile()
        #expect(report.full == 1 && report.checked == 3, "\(report)")
        #expect(try await worker.reconcile().incremental == 1)
        report = try await worker.reconcile(full: true)
        #expect(report.full == 1 && report.checked == 3 && report.drift == 0, "\(report)")
    }

    @Test func finishedJobsAreEventsThenPurgedAndTheDestinationStillAnswers() async throws {
        try await registry.putReplicationConfiguration(ReplicationConfiguration(rules: [
            ReplicationRule(destinations: [west, ReplicationDestination(region: "ap-south-1", registryId: Self.source)])]),
                                                       of: .private(Self.source))
        let (a, _) = try await helper.image(src, tag: "v1", layer: "one")
        _ = try await registry.putManifest(src, reference: .tag(try Tag("latest")), contentType: "application/vnd.oci.image.manifest.v1+json",
                                           bytes: try #require(try await registry.storedManifest(a, in: src)).bytes)
        let worker = service(retention: 0.5)
        while try await worker.runOnce() > 0 {}
        let jobs = try await registry.replicationJobs(of: src, digest: a)
        #expect(jobs.map(\.state) == [.failed, .complete])  // ap-south-1: nothing serves it

        // ECR's event: the destination's account, region and repository ARN; one per tag; FAILED too.
        let events = try await replicationEvents()
        let ok = events.filter { ($0["detail"] as? [String: Any])?["result"] as? String == "SUCCESS" }
        #expect(ok.count == 2)
        for e in ok {
            let detail = try #require(e["detail"] as? [String: Any])
            #expect(e["source"] as? String == "aws.ecr" && e["region"] as? String == "us-west-2" && e["account"] as? String == Self.source)
            #expect(e["resources"] as? [String] == ["arn:aws:ecr:us-west-2:\(Self.source):repository/prod/app"])
            #expect(detail["action-type"] as? String == "REPLICATE" && detail["repository-name"] as? String == "prod/app")
            #expect(detail["image-digest"] as? String == a.description && detail["source-account"] as? String == Self.source)
            #expect(detail["source-region"] as? String == "us-east-1")
        }
        #expect(Set(ok.compactMap { ($0["detail"] as? [String: Any])?["image-tag"] as? String }) == ["v1", "latest"])
        #expect(events.filter { ($0["detail"] as? [String: Any])?["result"] as? String == "FAILED" }.map { $0["region"] as? String } == ["ap-south-1", "ap-south-1"])

        // Past the retention the COMPLETE job goes (FAILED kept: no failed retention); the destination answers.
        try await Task.sleep(for: .milliseconds(600))
        #expect(try await worker.purgeFinishedJobs() == 1)
        #expect(try await registry.replicationJobs(of: src, digest: a).map(\.state) == [.failed])
        let key = ReplicationJobKey(sourceRegistry: src.registryID, repository: "prod/app", digest: a, destination: west)
        #expect(await worker.destinationHas(key, mediaType: "application/vnd.oci.image.manifest.v1+json") == true)
        _ = try await registry.deleteImage(dst, .digest(a))
        #expect(await worker.destinationHas(key, mediaType: "application/vnd.oci.image.manifest.v1+json") == false)
        let nowhere = ReplicationJobKey(sourceRegistry: src.registryID, repository: "prod/app", digest: a,
                                        destination: ReplicationDestination(region: "ap-south-1", registryId: Self.source))
        #expect(await worker.destinationHas(nowhere, mediaType: "application/vnd.oci.image.manifest.v1+json") == nil)
    }
}
