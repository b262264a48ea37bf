/// Reads apk's `lib/apk/db/installed` (Alpine, Wolfi, Chainguard).
///
/// The database is a sequence of records separated by blank lines; every line is `<letter>:<value>`. Used here:
/// `P` name, `V` version, `A` architecture, `o` origin (the aports source package, which OSV's Alpine
/// advisories are keyed by; the name when absent). Other letters (files, checksums, …) are ignored.
public enum ApkInstalledCataloger {
    public static func catalog(_ file: CatalogFile, into result: inout CatalogResult) {
        let text = String(decoding: file.contents, as: UTF8.self)
        var record: [Character: String] = [:]
        var recordNumber = 0
        var badLines: [Int] = []
        var lineNumber = 0
        func flush() {
            guard !record.isEmpty else { return }
            recordNumber += 1
            defer { record = [:] }
            guard let name = record["P"], !name.isEmpty, let version = record["V"], !version.isEmpty else {
                result.issues.append(CatalogIssue(path: file.path, reason: "record \(recordNumber) has no P or V"))
                return
            }
            let origin = record["o"].flatMap { $0.isEmpty ? nil : $0 } ?? name
            result.packages.append(InstalledPackage(
                kind: .apk, name: name, version: version, architecture: record["A"].flatMap { $0.isEmpty ? nil : $0 },
                sourceName: origin, sourceVersion: version, path: file.path))
        }
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                flush()
                continue
            }
            guard line.count >= 2, let key = line.first, line[line.index(after: line.startIndex)] == ":" else {
                badLines.append(lineNumber)
                continue
            }
            let value = String(line.dropFirst(2)).trimmingWhitespace()
            // The first occurrence wins (a record never repeats P/V/o/A; files repeat F/R).
            if record[key] == nil { record[key] = value }
        }
        flush()
        if !badLines.isEmpty {
            result.issues.append(CatalogIssue(
                path: file.path, reason: "ignored \(badLines.count) malformed line(s), first at line \(badLines[0])"))
        }
    }
}
