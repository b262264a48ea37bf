import Foundation

enum Better: String, Codable, Sendable {
    case higher, lower, none
}

/// One reported figure. `key` (section + name) is stable across runs so two reports can be compared.
struct Metric: Codable, Sendable {
    var section: String
    var name: String
    /// How this run measured the figure when servers differ (e.g. "single request" or "Link walk, 3 pages").
    /// Shown after the name; not part of `key`, so the two variants still line up in a comparison.
    var variant: String? = nil
    var unit: String
    var value: Double?
    var better: Better
    /// Routine detail (repetitions, ranges, counts).
    var note: String?
    /// Something a reader of a comparison must see: unsupported feature, ignored parameter, errors.
    var warning: String?

    var key: String { section + "|" + name }
    var displayName: String { name + (variant.map { ": " + $0 } ?? "") }
}

struct ReportMeta: Codable, Sendable {
    var tool = "berth-bench"
    var formatVersion = 1
    var url: String
    var runID: String
    var startedAt: String
    var finishedAt: String?
    var quick: Bool
    var durationSeconds: Double
    var serverPID: Int32?
    var host: String
    /// "anonymous" or "HTTP Basic, user X" (never the password). Absent in reports from before --basic-auth.
    var auth: String? = nil
    /// The knobs this run used (sizes, counts, concurrency levels), for reproducibility.
    var parameters: [String: String]?
}

struct Report: Codable, Sendable {
    var meta: ReportMeta
    var metrics: [Metric] = []
    var errors: [String] = []
}

// MARK: Formatting

func formatValue(_ v: Double?, unit: String) -> String {
    guard let v else { return "n/a" }
    if v.isNaN || v.isInfinite { return "n/a" }
    switch unit {
    case "count", "tags", "repos", "pages", "errors", "images", "requests":
        return String(Int(v.rounded()))
    default:
        let a = abs(v)
        if a >= 1000 { return String(format: "%.0f", v) }
        if a >= 100 { return String(format: "%.1f", v) }
        if a >= 10 { return String(format: "%.2f", v) }
        if a >= 1 { return String(format: "%.2f", v) }
        return String(format: "%.3f", v)
    }
}

func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let n = s.count
    if n >= width { return s }
    let fill = String(repeating: " ", count: width - n)
    return right ? fill + s : s + fill
}

func renderTable(_ header: [String], _ rows: [[String]], rightAligned: Set<Int>) -> String {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    var out = ""
    func line(_ cells: [String]) {
        out += cells.enumerated().map { i, c in pad(c, widths[i], right: rightAligned.contains(i)) }
            .joined(separator: "  ")
            .replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression) + "\n"
    }
    line(header)
    line(widths.map { String(repeating: "-", count: $0) })
    for r in rows {
        if r.count == 1 {  // section heading
            out += r[0] + "\n"
        } else {
            line(r)
        }
    }
    return out
}

func measureLabel(_ m: Metric) -> String {
    "  " + m.displayName + (m.unit.isEmpty ? "" : " (\(m.unit))")
}

/// The row label of a comparison: the name, then the variant of each run in column order when they differ,
/// e.g. "unpaginated (no n): single request | Link walk, 3 pages (ms)".
func comparisonLabel(_ a: Metric?, _ b: Metric?) -> String {
    let ref = (a ?? b)!
    guard let a, let b, a.variant != b.variant else { return measureLabel(ref) }
    let variants = (a.variant ?? "?") + " | " + (b.variant ?? "?")
    return "  " + ref.name + ": " + variants + (ref.unit.isEmpty ? "" : " (\(ref.unit))")
}

func renderReport(_ report: Report) -> String {
    var rows: [[String]] = []
    var lastSection = ""
    for m in report.metrics {
        if m.section != lastSection {
            rows.append([m.section])
            lastSection = m.section
        }
        let note = [m.warning.map { "WARNING: " + $0 }, m.note].compactMap { $0 }.joined(separator: "; ")
        rows.append([measureLabel(m), formatValue(m.value, unit: m.unit), note])
    }
    var out = "berth-bench \(report.meta.url)  run \(report.meta.runID)\(report.meta.quick ? " (quick)" : "")  started \(report.meta.startedAt)"
    out += (report.meta.auth.map { "  auth: \($0)" } ?? "") + "\n\n"
    out += renderTable(["measure", "value", "note"], rows, rightAligned: [1])
    if !report.errors.isEmpty {
        out += "\nerrors:\n" + report.errors.map { "  - " + $0 }.joined(separator: "\n") + "\n"
    }
    return out
}

/// Side-by-side comparison: measure | A | B | B/A ratio (with better/worse marker).
func renderComparison(_ a: Report, _ b: Report, labelA: String, labelB: String) -> String {
    var bByKey: [String: Metric] = [:]
    for m in b.metrics { bByKey[m.key] = m }
    var keys: [String] = a.metrics.map(\.key)
    var seen = Set(keys)
    for m in b.metrics where !seen.contains(m.key) { keys.append(m.key); seen.insert(m.key) }
    var aByKey: [String: Metric] = [:]
    for m in a.metrics { aByKey[m.key] = m }

    var rows: [[String]] = []
    var lastSection = ""
    for k in keys {
        let ma = aByKey[k]
        let mb = bByKey[k]
        let ref = (ma ?? mb)!
        if ref.section != lastSection {
            rows.append([ref.section])
            lastSection = ref.section
        }
        var ratio = ""
        if let va = ma?.value, let vb = mb?.value, va != 0, ref.better != .none {
            let r = vb / va
            ratio = String(format: "%.2fx", r)
            let goodness = ref.better == .higher ? r : 1 / r
            if goodness > 1.05 { ratio += " better" } else if goodness < 0.95 { ratio += " worse" } else { ratio += " ~" }
        }
        rows.append([
            comparisonLabel(ma, mb),
            ma.map { formatValue($0.value, unit: $0.unit) } ?? "-",
            mb.map { formatValue($0.value, unit: $0.unit) } ?? "-",
            ratio,
        ])
    }
    func run(_ r: Report) -> String { "run \(r.meta.runID)" + (r.meta.auth.map { ", " + $0 } ?? "") }
    var out = "\(labelA): \(a.meta.url) (\(run(a)))   \(labelB): \(b.meta.url) (\(run(b)))\n"
    if a.meta.parameters != b.meta.parameters || a.meta.quick != b.meta.quick {
        out += "WARNING: the two runs used different parameters; figures are not directly comparable\n"
    }
    out += "ratio = \(labelB) / \(labelA); 'better'/'worse' is from \(labelB)'s point of view (±5% shown as ~)\n\n"
    out += renderTable(["measure", labelA, labelB, "ratio"], rows, rightAligned: [1, 2, 3])
    for (label, r) in [(labelA, a), (labelB, b)] where !r.errors.isEmpty {
        out += "\n\(label) errors:\n" + r.errors.map { "  - " + $0 }.joined(separator: "\n") + "\n"
    }
    var notes: [String] = []
    for (label, r) in [(labelA, a), (labelB, b)] {
        for m in r.metrics { if let n = m.warning, !n.isEmpty { notes.append("\(label): \(m.section) / \(m.displayName): \(n)") } }
    }
    if !notes.isEmpty {
        out += "\nwarnings:\n" + notes.map { "  - " + $0 }.joined(separator: "\n") + "\n"
    }
    return out
}

func writeJSON(_ report: Report, to path: String) throws {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try enc.encode(report)
    try data.write(to: URL(fileURLWithPath: path))
}

func readReport(_ path: String) throws -> Report {
    let data = try Data(contentsOf: URL(fileURLWithPath: path))
    return try JSONDecoder().decode(Report.self, from: data)
}
