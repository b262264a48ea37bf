import BerthCore
import BerthStorage
import Foundation

extension Registry {
    /// The registry's scanning configuration (ECR's default when none was put: `BASIC`, no rules).
    public func scanningConfiguration(_ registryID: String) async throws -> RegistryScanningConfiguration {
        guard let text = try await metadata.accountSetting(registryID, RegistryScanningConfiguration.settingName),
              let config = try? JSONDecoder().decode(RegistryScanningConfiguration.self, from: Data(text.utf8))
        else { return RegistryScanningConfiguration() }
        return config
    }

    public func putScanningConfiguration(_ registryID: String, _ config: RegistryScanningConfiguration) async throws {
        let text = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
        try await metadata.putAccountSetting(registryID, RegistryScanningConfiguration.settingName, text)
    }

    /// How a repository's images are scanned: `SCAN_ON_PUSH`, `CONTINUOUS_SCAN` or `MANUAL`, and the
    /// registry filters that decided it.
    public func scanFrequency(_ record: RepositoryRecord) async throws -> (frequency: String, filters: [String]) {
        try await scanningConfiguration(record.key.registryID)
            .effective(repository: record.key.name, scanOnPush: record.settings.scanOnPush)
    }

    /// Queues a scan of an image: stores it as `PENDING` and tells the scan workers.
    /// `manual` scans (StartImageScan) are limited to one per image per day, as ECR's are.
    @discardableResult
    public func requestScan(_ key: RepositoryKey, _ digest: Digest, trigger: String, manual: Bool = false) async throws -> ImageScanRecord {
        let now = clock.now()
        let previous = try await metadata.scan(digest, in: key)
        if manual, let last = previous?.manualRequestedAt, now - last < Self.manualScanInterval {
            throw BerthError.tooManyRequests("The scan quota per image has been exceeded. Wait and try again.")
        }
        if let previous, !previous.state.isFinal, !manual {
            return previous
        }
        let record = ImageScanRecord(
            repository: key, digest: digest, state: .pending, trigger: trigger, requestedAt: now,
            manualRequestedAt: manual ? now : previous?.manualRequestedAt)
        guard try await metadata.putScan(record, ifState: nil) else {
            throw BerthError.manifestUnknown(digest.description)
        }
        events.publish(.scanRequested(repository: key, digest: digest))
        return record
    }

    /// ECR allows one StartImageScan per image every 24 hours.
    public static let manualScanInterval: Double = 24 * 3600
}

extension Registry {
    /// An image's scan (with its findings), or nil when it was never scanned.
    public func scan(_ digest: Digest, in name: RepositoryKey) async throws -> ImageScanRecord? {
        try await metadata.scan(digest, in: name)
    }

    /// The scans of several images of a repository, by digest, in one store read (images never scanned are absent).
    public func scans(of digests: [Digest], in name: RepositoryKey) async throws -> [Digest: ImageScanRecord] {
        try await metadata.scans(of: digests, in: name)
    }

    /// Stores a scan's progress or outcome, replacing the image's previous scan, if the image still
    /// exists and, when `expected` is given, its current scan is in that state (so a newer request is
    /// never overwritten by an older run). False otherwise.
    @discardableResult
    public func recordScan(_ scan: ImageScanRecord, ifState expected: ImageScanState?) async throws -> Bool {
        var outbox: [OutboxEvent] = []
        if let eventSource, scan.state.isFinal {
            let tags = try await metadata.image(scan.digest, in: scan.repository)?.tags ?? []
            outbox = eventSource.imageScanned(scan, tags: tags, time: scan.completedAt ?? clock.now())
        }
        return try await metadata.putScan(scan, ifState: expected, events: outbox)
    }

    /// The queue: scans not yet finished, oldest request first, without findings.
    public func unfinishedScans(limit: Int) async throws -> [ImageScanRecord] {
        try await metadata.unfinishedScans(limit: limit)
    }
}
