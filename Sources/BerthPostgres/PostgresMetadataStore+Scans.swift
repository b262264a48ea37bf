import BerthCore
import BerthStorage
import Foundation

extension PostgresMetadataStore {
    public func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?, events: [OutboxEvent]) async throws -> Bool {
        let findings = try JSONEncoder().encode(scan.findings)
        return try await transaction { c in
            guard let id = try await Self.repoID(c, scan.repository) else { return false }
            let d = PGValue.text(scan.digest.description)
            guard try await c.exists("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?", [.integer(id), d]) else { return false }
            if let expected {
                let current = try await c.query("SELECT state FROM image_scans WHERE repo_id = ? AND digest = ?",
                                                [.integer(id), d]) { try $0.text(0) }.first
                guard current == expected.rawValue else { return false }
            }
            try await c.execute("""
                INSERT INTO image_scans(repo_id, digest, state, description, trigger, requested_at,
                    started_at, completed_at, manual_requested_at, source_updated_at, findings)
                VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(repo_id, digest) DO UPDATE SET state = excluded.state, description = excluded.description,
                    trigger = excluded.trigger, requested_at = excluded.requested_at, started_at = excluded.started_at,
                    completed_at = excluded.completed_at, manual_requested_at = excluded.manual_requested_at,
                    source_updated_at = excluded.source_updated_at, findings = excluded.findings
                """, [.integer(id), d, .text(scan.state.rawValue), .optional(scan.statusDescription),
                      .text(scan.trigger), .real(scan.requestedAt), .optional(scan.startedAt),
                      .optional(scan.completedAt), .optional(scan.manualRequestedAt),
                      .optional(scan.vulnerabilitySourceUpdatedAt), .blob([UInt8](findings))])
            try await insertEvents(c, events)
            return true
        }
    }

    static func scanRecord(_ row: PGRow, _ key: RepositoryKey, findings: Bool) throws -> ImageScanRecord? {
        guard let digest = Digest.parse(try row.text(0)), let state = ImageScanState(rawValue: try row.text(1)) else { return nil }
        var decoded: [ScanFinding] = []
        if findings, !row.isNull(9) {
            decoded = try JSONDecoder().decode([ScanFinding].self, from: Data(try row.blob(9)))
        }
        return ImageScanRecord(repository: key, digest: digest, state: state, statusDescription: try row.optionalText(2),
                               trigger: try row.text(3), requestedAt: try row.double(4), startedAt: try row.optionalDouble(5),
                               completedAt: try row.optionalDouble(6), manualRequestedAt: try row.optionalDouble(7),
                               vulnerabilitySourceUpdatedAt: try row.optionalDouble(8), findings: decoded)
    }

    static let scanColumns = """
        s.digest, s.state, s.description, s.trigger, s.requested_at, s.started_at, s.completed_at,
        s.manual_requested_at, s.source_updated_at
        """

    public func scan(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageScanRecord? {
        try await read { c in
            try await c.query("""
                SELECT \(Self.scanColumns), s.findings FROM repositories r JOIN image_scans s ON s.repo_id = r.id AND s.digest = ?
                WHERE r.registry_id = ? AND r.name = ?
                """, [.text(digest.description)] + Self.repoValues(repository)) {
                try Self.scanRecord($0, repository, findings: true)
            }.first ?? nil
        }
    }

    public func scans(of digests: [Digest], in repository: RepositoryKey) async throws -> [Digest: ImageScanRecord] {
        guard !digests.isEmpty else { return [:] }
        return try await read { c in
            let rows = try await c.query("""
                SELECT \(Self.scanColumns), s.findings FROM repositories r JOIN image_scans s ON s.repo_id = r.id
                WHERE r.registry_id = $1 AND r.name = $2 AND s.digest = ANY($3::text[])
                """, Self.repoValues(repository) + [.texts(digests.map(\.description))]) {
                try Self.scanRecord($0, repository, findings: true)
            }
            return Dictionary(rows.compactMap { $0.map { ($0.digest, $0) } }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func unfinishedScans(limit: Int) async throws -> [ImageScanRecord] {
        try await read { c in
            try await c.query("""
                SELECT \(Self.scanColumns), NULL, r.registry_id, r.name FROM image_scans s
                JOIN repositories r ON r.id = s.repo_id
                WHERE s.state IN ('PENDING', 'IN_PROGRESS')
                ORDER BY s.requested_at, r.registry_id, r.name, s.digest LIMIT ?
                """, [.integer(Int64(limit))]) { row -> ImageScanRecord? in
                try Self.scanRecord(row, RepositoryKey(storedRegistryID: try row.text(10), name: try row.text(11)), findings: false)
            }.compactMap { $0 }
        }
    }
}
