import BerthCore

extension InMemoryMetadataStore {
    public func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?, events: [OutboxEvent]) async throws -> Bool {
        state.withLock { s in
            guard var r = s.repos[scan.repository], r.manifests[scan.digest] != nil else { return false }
            if let expected, r.scans[scan.digest]?.state != expected { return false }
            r.scans[scan.digest] = scan
            s.repos[scan.repository] = r
            s.outbox.append(events)
            return true
        }
    }

    public func scan(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageScanRecord? {
        state.withLock { $0.repos[repository]?.scans[digest] }
    }

    public func unfinishedScans(limit: Int) async throws -> [ImageScanRecord] {
        state.withLock { s in
            let all = s.repos.values.flatMap { $0.scans.values.filter { !$0.state.isFinal } }
            return Array(all.sorted {
                ($0.requestedAt, $0.repository.registryID, $0.repository.name, $0.digest.description)
                    < ($1.requestedAt, $1.repository.registryID, $1.repository.name, $1.digest.description)
            }.prefix(limit)).map { var r = $0; r.findings = []; return r }
        }
    }
}
