import Foundation
@testable import BerthScanEngine

/// The shared fixtures (`../shared/fixtures` next to the package, or `$BERTH_FIXTURES`).
enum Fixtures {
    static let root: URL = {
        if let env = ProcessInfo.processInfo.environment["BERTH_FIXTURES"] { return URL(fileURLWithPath: env) }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/fixtures")
    }()

    static var available: Bool {
        FileManager.default.fileExists(atPath: root.appendingPathComponent("vulndb").path)
    }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    /// The fixture database, loaded once.
    static let database: VulnerabilityDatabase? = try? VulnerabilityDatabase.load(directory: url("vulndb"))
}
