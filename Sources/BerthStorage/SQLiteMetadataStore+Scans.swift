import BerthCore
import Foundation

extension SQLiteMetadataStore {
    static func optional(_ d: Double?) -> SQLiteValue { d.map { .real($0) } ?? .null }

    public func putScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?, events: [OutboxEvent]) async throws -> Bool {
        let findings = try JSONEncoder().encode(scan.findings)
        return try await db.write { c in
            try c.transaction {
                guard let id = try Self.repoID(c, scan.repository) else { return false }
                let d = SQLiteValue.text(scan.digest.description)
                let exists = try c.query("SELECT 1 FROM manifests WHERE repo_id = ? AND digest = ?", [.integer(id), d]) { _ in true }
                guard !exists.isEmpty else { return false }
                if let expected {
                    let current = try c.query("SELECT state FROM image_scans WHERE repo_id = ? AND digest = ?",
                                              [.integer(id), d]) { $0.text(0) }.first
                    guard current == expected.rawValue else { return false }
                }
                try c.execute("""
                    INSERT OR REPLACE INTO image_scans(repo_id, digest, state, description, trigger, requested_at,
                        started_at, completed_at, manual_requested_at, source_updated_at, findings)
                    VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.integer(id), d, .text(scan.state.rawValue), scan.statusDescription.map { .text($0) } ?? .null,
                          .text(scan.trigger), .real(scan.requestedAt), Self.optional(scan.startedAt),
                          Self.optional(scan.completedAt), Self.optional(scan.manualRequestedAt),
                          Self.optional(scan.vulnerabilitySourceUpdatedAt), .blob([UInt8](findings))])
                try Self.insertEvents(c, events)
                return true
            }
        }
    }

    static func scanRecord(_ row: SQLiteRow, _ key: RepositoryKey, findings: Bool) throws -> ImageScanRecord? {
        guard let digest = Digest.parse(row.text(0)), let state = ImageScanState(rawValue: row.text(1)) else { return nil }
        func opt(_ i: Int32) -> Double? { row.isNull(i) ? nil : row.double(i) }
        var decoded: [ScanFinding] = []
        if findings, !row.isNull(9) {
            decoded = try JSONDecoder().decode([ScanFinding].self, from: Data(row.blob(9)))
        }
        return ImageScanRecord(repository: key, digest: digest, state: state, statusDescription: row.optionalText(2),
                               trigger: row.text(3), requestedAt: row.double(4), startedAt: opt(5), completedAt: opt(6),
                               manualRequestedAt: opt(7), vulnerabilitySourceUpdatedAt: opt(8), findings: decoded)
    }

    static let scanColumns = """
        s.digest, s.state, s.description, s.trigger, s.requested_at, s.started_at, s.completed_at,
        s.manual_requested_at, s.source_updated_at
        """

    public func scan(_ digest: Digest, in repository: RepositoryKey) async throws -> ImageScanRecord? {
        try await db.read { c in
            guard let id = try Self.repoID(c, repository) else { return nil }
            return try c.query("SELECT \(Self.scanColumns), s.findings FROM image_scans s WHERE s.repo_id = ? AND s.digest = ?",
                               [.integer(id), .text(digest.description)]) {
                try Self.scanRecord($0, repository, findings: true)
            }.first ?? nil
        }
    }

    public func unfinishedScans(limit: Int) async throws -> [ImageScanRecord] {
        try await db.read { c in
            try c.query("""
                SELECT \(Self.scanColumns), NULL, r.registry_id, r.name FROM image_scans s
                JOIN repositories r ON r.id = s.repo_id
                WHERE s.state IN ('PENDING', 'IN_PROGRESS')
                ORDER BY s.requested_at, r.registry_id, r.name, s.digest LIMIT ?
                """, [.integer(Int64(limit))]) { row -> ImageScanRecord? in
                try Self.scanRecord(row, RepositoryKey(storedRegistryID: row.text(10), name: row.text(11)), findings: false)
            }.compactMap { $0 }
        }
    }
}
