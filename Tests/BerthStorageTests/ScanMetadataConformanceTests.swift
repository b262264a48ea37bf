import BerthCore
import BerthStorage
import Testing

@Suite struct ScanMetadataConformance {
    let image = Digest.sha256(of: Array("image".utf8))
    let other = Digest.sha256(of: Array("other".utf8))

    func prepare(_ m: any MetadataStore) async throws {
        try await m.createRepository(k("r"), at: 0)
        for d in [image, other] {
            let rec = ManifestRecord(digest: d, mediaType: MediaType.ociManifest, artifactType: nil, bytes: Array("{}".utf8),
                                     subject: nil, annotationsJSON: nil, pushedAt: 1)
            _ = try await m.putManifest(ManifestPut(record: rec, blobs: [], manifests: [], tag: nil), in: k("r"))
        }
    }

    func finding(_ name: String, _ severity: ScanSeverity) -> ScanFinding {
        ScanFinding(name: name, description: "d \(name)", uri: "https://x/\(name)", severity: severity,
                    attributes: [.init(key: "package_name", value: "p"), .init(key: "package_version", value: "1")],
                    packageName: "p", packageVersion: "1", packageManager: "OS", fixedInVersion: "2", cvssScore: 9.8,
                    cvssVector: "CVSS:3.1/AV:N", source: "Debian", vendorSeverity: "high", relatedVulnerabilities: ["DSA-1"])
    }

    @Test(arguments: Backend.allCases)
    func scansRoundTripWithFindings(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await prepare(m)
        #expect(try await m.scan(image, in: k("r")) == nil)
        var rec = ImageScanRecord(repository: k("r"), digest: image, state: .complete, statusDescription: "ok", trigger: "PUSH",
                                  requestedAt: 5, startedAt: 6, completedAt: 7, manualRequestedAt: 4,
                                  vulnerabilitySourceUpdatedAt: 3, findings: [finding("CVE-1", .critical), finding("CVE-2", .low)])
        #expect(try await m.putScan(rec, ifState: nil))
        #expect(try await m.scan(image, in: k("r")) == rec)
        #expect(rec.severityCounts == [.critical: 1, .low: 1])
        rec.findings = []
        rec.state = .failed
        #expect(try await m.putScan(rec, ifState: .pending) == false, "compare-and-set refuses a different state")
        #expect(try await m.putScan(rec, ifState: .complete))
        #expect(try await m.scan(image, in: k("r"))?.state == .failed)
    }

    @Test(arguments: Backend.allCases)
    func scansOfSeveralImagesInOneRead(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await prepare(m)
        let missing = Digest.sha256(of: Array("missing".utf8))
        #expect(try await m.scans(of: [image, other, missing], in: k("r")).isEmpty)
        #expect(try await m.scans(of: [], in: k("r")).isEmpty)
        let rec = ImageScanRecord(repository: k("r"), digest: image, state: .complete, statusDescription: "ok", trigger: "PUSH",
                                  requestedAt: 5, startedAt: 6, completedAt: 7, findings: [finding("CVE-1", .high)])
        #expect(try await m.putScan(rec, ifState: nil))
        let found = try await m.scans(of: [image, other, missing, image], in: k("r"))
        #expect(found == [image: rec], "with its findings, only the scanned image")
        #expect(try await m.scans(of: [image], in: k("other")).isEmpty, "another repository's image has no scan")
    }

    @Test(arguments: Backend.allCases)
    func scansNeedTheImageAndGoWithIt(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await prepare(m)
        let missing = Digest.sha256(of: Array("missing".utf8))
        let rec = { (d: Digest, repo: RepositoryKey) in
            ImageScanRecord(repository: repo, digest: d, state: .pending, trigger: "MANUAL", requestedAt: 1)
        }
        #expect(try await m.putScan(rec(missing, k("r")), ifState: nil) == false)
        #expect(try await m.putScan(rec(image, k("nope")), ifState: nil) == false)
        #expect(try await m.putScan(rec(image, k("r")), ifState: nil))
        #expect(try await m.deleteImage(.digest(image), in: k("r")) == .deleted(tags: [], imageDeleted: true))
        #expect(try await m.scan(image, in: k("r")) == nil)
        #expect(try await m.putScan(rec(other, k("r")), ifState: nil))
        #expect(try await m.deleteRepository(k("r")))
        #expect(try await m.unfinishedScans(limit: 10).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func unfinishedScansComeOldestFirstWithoutFindings(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        try await prepare(m)
        var a = ImageScanRecord(repository: k("r"), digest: image, state: .inProgress, trigger: "PUSH", requestedAt: 9,
                                findings: [finding("CVE-9", .high)])
        let b = ImageScanRecord(repository: k("r"), digest: other, state: .pending, trigger: "PUSH", requestedAt: 2)
        #expect(try await m.putScan(a, ifState: nil))
        #expect(try await m.putScan(b, ifState: nil))
        a.findings = []
        #expect(try await m.unfinishedScans(limit: 10) == [b, a])
        #expect(try await m.unfinishedScans(limit: 1) == [b])
        var done = b
        done.state = .complete
        #expect(try await m.putScan(done, ifState: .pending))
        #expect(try await m.unfinishedScans(limit: 10) == [a])
    }
}
