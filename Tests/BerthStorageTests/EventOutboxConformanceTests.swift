import BerthCore
import BerthStorage
import Testing

/// The event outbox (`EventOutboxMetadata`) on every backend: events written by the changes' own
/// transactions (and only by changes that happened), routing, claims, outcomes, dead letters, purging.
@Suite struct EventOutboxConformance {
    let image = Digest.sha256(of: Array("image".utf8))

    func event(_ id: String, _ time: Double = 1, type: String = "ECR Image Action") -> OutboxEvent {
        OutboxEvent(id: id, time: time, detailType: type, account: registry, body: #"{"id":"\#(id)"}"#)
    }

    func put(_ m: any MetadataStore, tag: String?, events: [OutboxEvent], imageChecks: Bool = false) async throws -> ManifestPutResult {
        let rec = ManifestRecord(digest: image, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                                 subject: nil, annotationsJSON: nil, pushedAt: 1)
        return try await m.putManifest(ManifestPut(record: rec, blobs: [], manifests: [], tag: tag, imageChecks: imageChecks,
                                                   events: events), in: k("r"))
    }

    /// Every event, routed to one target `t`, as the deliveries list shows them.
    func delivered(_ m: any MetadataStore) async throws -> [String] {
        _ = try await m.routeEvents(limit: 100, at: 0) { _ in ["t"] }
        return try await m.deliveries(state: nil, after: nil, limit: 100).map(\.event.id)
    }

    @Test(arguments: Backend.allCases)
    func changesWriteTheirEventsInTheirTransaction(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await put(m, tag: "v1", events: [event("push")])
        // A refused put writes nothing: its event never happened.
        await #expect(throws: ImagePutRefusal.self) { _ = try await put(m, tag: "v1", events: [event("refused")], imageChecks: true) }
        #expect(try await m.deleteTag("nope", in: k("r"), events: { _ in [event("no-tag")] }) == false)
        #expect(try await m.deleteTag("v1", in: k("r"), events: { d in [event("untag-\(d == image)")] }))
        #expect(try await m.deleteImage(.digest(Digest.sha256(of: [1])), in: k("r"), events: { _ in [event("absent")] }) == .notFound)
        let scan = ImageScanRecord(repository: k("r"), digest: image, state: .complete, trigger: "PUSH", requestedAt: 1)
        #expect(try await m.putScan(scan, ifState: .pending, events: [event("stale-scan")]) == false)
        #expect(try await m.putScan(scan, ifState: nil, events: [event("scan", type: "ECR Image Scan")]))
        #expect(try await m.deleteImage(.digest(image), in: k("r"), events: { outcome in
            guard case .deleted(let tags, let gone) = outcome else { return [] }
            return [event("delete-\(tags.count)-\(gone)")]
        }) == .deleted(tags: [], imageDeleted: true))
        try await m.appendEvents([event("appended")])
        #expect(try await delivered(m) == ["push", "untag-true", "scan", "delete-0-true", "appended"])
    }

    @Test(arguments: Backend.allCases)
    func storageClassChangesWriteTheirEventsOnlyWhenTheClassChanges(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.createRepository(k("r"), at: 0)
        _ = try await put(m, tag: "v1", events: [])
        func move(_ target: ImageStorageClass, activating: Bool = false, _ id: String) async throws -> ImageStorageClassChange {
            try await m.updateImageStorageClass(image, in: k("r"), to: target, at: 2, activating: activating, events: [event(id)])
        }
        #expect(try await move(.archive, "archive") == .updated(.archived, changed: true))
        #expect(try await move(.archive, "again") == .updated(.archived, changed: false))
        #expect(try await move(.standard, "restore") == .updated(.active, changed: true))
        #expect(try await m.updateImageStorageClass(Digest.sha256(of: [9]), in: k("r"), to: .archive, at: 5, activating: false,
                                                    events: [event("absent")]) == .notFound)
        // A restore through ACTIVATING writes its event when it completes.
        #expect(try await move(.archive, "archive-2") == .updated(.archived, changed: true))
        #expect(try await move(.standard, activating: true, "activating") == .updated(.activating, changed: true))
        #expect(try await m.finishActivation(image, in: k("r"), at: 3, events: [event("activated")]))
        #expect(try await m.finishActivation(image, in: k("r"), at: 4, events: [event("twice")]) == false)
        #expect(try await delivered(m) == ["archive", "restore", "archive-2", "activated"])
    }

    @Test(arguments: Backend.allCases)
    func routingClaimsAndOutcomes(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.appendEvents([event("a", 10, type: "ECR Image Action"), event("b", 11, type: "ECR Image Scan"), event("c", 12)])
        #expect(try await m.outboxCounts() == OutboxCounts(unrouted: 3, deliveries: [:], oldestPending: 10))
        // Scans go to "scans" only; everything goes to "all"; "none" gets nothing.
        #expect(try await m.routeEvents(limit: 2, at: 100) { e in e.detailType == "ECR Image Scan" ? ["all", "scans"] : ["all"] } == 2)
        #expect(try await m.routeEvents(limit: 10, at: 100) { _ in ["all", "all"] } == 1)
        #expect(try await m.routeEvents(limit: 10, at: 100) { _ in ["late"] } == 0, "an event is routed once")
        let counts = try await m.outboxCounts()
        #expect(counts.unrouted == 0 && counts.deliveries == ["all": [.pending: 3], "scans": [.pending: 1]] && counts.oldestPending == 10)

        // Not due yet, then due; a claim hides the deliveries from other claimers until it ends.
        #expect(try await m.claimDeliveries(at: 99, until: 200, limit: 10).isEmpty)
        let first = try await m.claimDeliveries(at: 100, until: 130, limit: 3)
        #expect(first.map { "\($0.event.id)/\($0.target)" } == ["a/all", "b/all", "b/scans"])
        #expect(first[1].event == event("b", 11, type: "ECR Image Scan") && first[1].attempts == 0 && first[1].state == .pending)
        #expect(try await m.claimDeliveries(at: 110, until: 140, limit: 10).map(\.event.id) == ["c"])
        #expect(try await m.claimDeliveries(at: 120, until: 150, limit: 10).isEmpty, "all claimed")

        #expect(try await m.finishDelivery(sequence: first[0].sequence, target: "all", outcome: .delivered(at: 121)))
        #expect(try await m.finishDelivery(sequence: first[0].sequence, target: "all", outcome: .delivered(at: 122)) == false,
                "a delivered delivery is final")
        #expect(try await m.finishDelivery(sequence: first[1].sequence, target: "all", outcome: .retry(at: 121, next: 160, error: "HTTP 503")))
        #expect(try await m.finishDelivery(sequence: first[2].sequence, target: "scans", outcome: .dead(at: 121, error: "HTTP 400")))
        // The retried one is released but due later; the expired claim on "c" lets it be claimed again.
        #expect(try await m.claimDeliveries(at: 141, until: 170, limit: 10).map(\.event.id) == ["c"])
        let again = try await m.claimDeliveries(at: 160, until: 190, limit: 10)
        #expect(again.map(\.event.id) == ["b"] && again.first?.attempts == 1 && again.first?.lastError == "HTTP 503")

        let dead = try await m.deliveries(state: .dead, after: nil, limit: 10)
        #expect(dead.count == 1 && dead[0].target == "scans" && dead[0].attempts == 1 && dead[0].lastError == "HTTP 400")
        let done = try await m.deliveries(state: .delivered, after: nil, limit: 10)
        #expect(done.map(\.event.id) == ["a"] && done[0].deliveredAt == 121)
        #expect(try await m.deliveries(state: nil, after: first[1].sequence, limit: 10).map(\.event.id) == ["c"])

        // The dead letter comes back, due at once, attempts from zero.
        #expect(try await m.retryDeliveries(sequence: nil, target: "all", at: 200) == 0)
        #expect(try await m.retryDeliveries(sequence: first[2].sequence, target: nil, at: 200) == 1)
        let revived = try await m.claimDeliveries(at: 200, until: 230, limit: 10).filter { $0.target == "scans" }
        #expect(revived.count == 1 && revived[0].attempts == 0 && revived[0].state == .pending)
    }

    @Test(arguments: Backend.allCases)
    func routeAndClaimIsOneStepOfBoth(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.appendEvents([event("a", 10), event("b", 11, type: "ECR Image Scan"), event("c", 12)])
        _ = try await m.routeEvents(limit: 1, at: 50) { _ in ["all"] }
        // Routes at most routeLimit new events, then claims what is due (older deliveries first), at most limit.
        let first = try await m.routeAndClaimDeliveries(routeLimit: 1, at: 100, until: 130, limit: 2) { e in
            e.detailType == "ECR Image Scan" ? ["all", "scans"] : ["all"]
        }
        #expect(first.routed == 1)
        #expect(first.claimed.map { "\($0.event.id)/\($0.target)" } == ["a/all", "b/all"])
        #expect(first.claimed.allSatisfy { $0.state == .pending && $0.attempts == 0 } && first.claimed[1].event == event("b", 11, type: "ECR Image Scan"))
        // What it claimed is hidden from other claimers until the claim ends; what it left is not.
        #expect(try await m.claimDeliveries(at: 110, until: 140, limit: 10).map { "\($0.event.id)/\($0.target)" } == ["b/scans"])
        let second = try await m.routeAndClaimDeliveries(routeLimit: 10, at: 120, until: 150, limit: 10) { _ in ["all", "all"] }
        #expect(second.routed == 1 && second.claimed.map { "\($0.event.id)/\($0.target)" } == ["c/all"])
        let idle = try await m.routeAndClaimDeliveries(routeLimit: 10, at: 125, until: 150, limit: 10) { _ in ["late"] }
        #expect(idle.routed == 0 && idle.claimed.isEmpty, "an event is routed once; claimed deliveries stay claimed")
        // Not due yet: routed now but only claimed once due; an ended claim is claimed again.
        try await m.appendEvents([event("d", 13)])
        let early = try await m.routeAndClaimDeliveries(routeLimit: 10, at: 131, until: 160, limit: 10) { _ in ["all"] }
        #expect(early.routed == 1 && early.claimed.map { "\($0.event.id)/\($0.target)" } == ["a/all", "b/all", "d/all"])
        #expect(try await m.finishDeliveries(early.claimed.map {
            DeliveryResult(sequence: $0.sequence, target: $0.target, outcome: .retry(at: 131, next: 500, error: "HTTP 503"))
        }) == 3)
        #expect(try await m.routeAndClaimDeliveries(routeLimit: 10, at: 499, until: 530, limit: 10) { _ in ["all"] }.claimed
            .map(\.event.id) == ["b", "c"], "b/scans and c/all: their claims ended; the retried wait for their backoff")
        let counts = try await m.outboxCounts()
        #expect(counts.unrouted == 0 && counts.deliveries == ["all": [.pending: 4], "scans": [.pending: 1]])
    }

    @Test(arguments: Backend.allCases)
    func outcomesOfAPassAreRecordedTogether(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.appendEvents([event("a"), event("b"), event("c")])
        _ = try await m.routeEvents(limit: 10, at: 0) { _ in ["t"] }
        let claimed = try await m.claimDeliveries(at: 0, until: 30, limit: 10)
        #expect(claimed.count == 3)
        let results = [
            DeliveryResult(sequence: claimed[0].sequence, target: "t", outcome: .delivered(at: 1)),
            DeliveryResult(sequence: claimed[1].sequence, target: "t", outcome: .retry(at: 1, next: 9, error: "HTTP 502")),
            DeliveryResult(sequence: claimed[2].sequence, target: "t", outcome: .dead(at: 1, error: "HTTP 403")),
            DeliveryResult(sequence: claimed[2].sequence, target: "other", outcome: .delivered(at: 1)),
        ]
        #expect(try await m.finishDeliveries(results) == 3, "the delivery that does not exist is not counted")
        #expect(try await m.finishDeliveries(Array(results.prefix(1))) == 0, "a delivered delivery is final")
        let all = try await m.deliveries(state: nil, after: nil, limit: 10)
        #expect(all.map(\.state) == [.delivered, .pending, .dead] && all.allSatisfy { $0.attempts == 1 && $0.lastAttemptAt == 1 })
        #expect(all[0].deliveredAt == 1 && all[0].lastError == nil && all[1].nextAttemptAt == 9 && all[1].lastError == "HTTP 502")
        #expect(all[2].lastError == "HTTP 403" && all[2].deliveredAt == nil)
        #expect(try await m.outboxCounts().deliveries == ["t": [.delivered: 1, .pending: 1, .dead: 1]])
        let cheap = try await m.outboxCounts(includingDelivered: false)
        #expect(cheap.deliveries == ["t": [.pending: 1, .dead: 1]] && cheap.unrouted == 0, "the delivered ones are not counted")
        #expect(try await m.claimDeliveries(at: 8, until: 30, limit: 10).isEmpty)
        #expect(try await m.claimDeliveries(at: 9, until: 30, limit: 10).count == 1)
    }

    @Test(arguments: Backend.allCases)
    func purgeKeepsWhatIsStillToDeliver(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await m.appendEvents([event("old-done", 1), event("old-pending", 2), event("old-nowhere", 3), event("unrouted", 4)])
        #expect(try await m.routeEvents(limit: 3, at: 0) { e in e.id == "old-nowhere" ? [] : ["t"] } == 3)
        for d in try await m.claimDeliveries(at: 0, until: 10, limit: 10) where d.event.id == "old-done" {
            try await m.finishDelivery(sequence: d.sequence, target: d.target, outcome: .delivered(at: 1))
        }
        #expect(try await m.purgeEvents(before: 10) == 2, "old-done and old-nowhere go; old-pending is pending, unrouted unrouted")
        #expect(try await m.deliveries(state: nil, after: nil, limit: 10).map(\.event.id) == ["old-pending"])
        #expect(try await m.outboxCounts().unrouted == 1)
    }

    @Test(arguments: Backend.persistent)
    func eventsSurviveAReopen(_ backend: Backend) async throws {
        let stores = try await backend.make()
        try await stores.metadata.createRepository(k("r"), at: 0)
        _ = try await put(stores.metadata, tag: "v1", events: [event("push")])
        let (_, reopened) = try #require(try await stores.reopen?())
        #expect(try await delivered(reopened) == ["push"])
    }
}
