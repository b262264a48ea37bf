import ArgumentParser
import BerthApp
import BerthAudit
import BerthSupport
import Foundation

/// `berth audit export`: the audit trail as JSON lines (one CloudTrail record per line, oldest first).
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Read the audit trail.", subcommands: [AuditExport.self])
}

struct AuditExport: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export", abstract: "Print audit events as JSON lines, oldest first (works while the server runs).")
    @OptionGroup var options: CommonOptions
    @Option(name: .long, help: "Events from this time on: RFC 3339 (2026-12-01T00:00:00Z), a date (2026-12-01) or epoch seconds.")
    var since: String
    @Option(name: .long, help: "Events up to this time (same forms); default: now.")
    var until: String?

    static func time(_ text: String) -> Double? {
        UTCTimestamp.parseRFC3339(text) ?? UTCTimestamp.parseRFC3339(text + "T00:00:00Z") ?? UTCTimestamp.parseEpochSeconds(text)
    }

    func run() async throws {
        guard let from = Self.time(since) else { throw ValidationError("--since: not a time: \(since)") }
        let to = try until.map { text -> Double in
            guard let t = Self.time(text) else { throw ValidationError("--until: not a time: \(text)") }
            return t
        }
        let services = try await adminServices(options)
        guard let audit = services.audit else { throw ValidationError("the audit trail is off (auditEnabled is false)") }
        var cursor: (time: Double, id: String)?
        var out = FileHandle.standardOutput
        while true {
            let page = try await audit.store.export(since: from, after: cursor, limit: 1_000)
            for e in page {
                if let to, e.eventTime > to { return }
                print(e.record, to: &out)
            }
            guard page.count == 1_000, let last = page.last else { return }
            cursor = (last.eventTime, last.eventID)
        }
    }
}

extension FileHandle: @retroactive TextOutputStream {
    public func write(_ string: String) { write(Data(string.utf8)) }
}
