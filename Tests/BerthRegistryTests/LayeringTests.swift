import Foundation
import Testing

/// The stores are the domain's: the ECR door and the scanner reach them only through `Registry`.
/// `Package.swift` does not give those targets `BerthStorage`, but SwiftPM puts every module of the
/// package on the compiler's search path, so an undeclared `import BerthStorage` would still compile.
/// This test refuses it.
@Suite struct LayeringTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    /// The imports of every Swift file of a target, by file name.
    func imports(of target: String) throws -> [String: Set<String>] {
        let dir = Self.sources.appendingPathComponent(target)
        var out: [String: Set<String>] = [:]
        let files = try #require(FileManager.default.enumerator(atPath: dir.path))
        for case let file as String in files where file.hasSuffix(".swift") {
            let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
            out[file] = Set(text.split(separator: "\n").compactMap { line -> String? in
                let words = line.split(separator: " ")
                guard let i = words.firstIndex(of: "import"), i + 1 < words.count,
                      words[..<i].allSatisfy({ $0.hasPrefix("@") || ["public", "internal", "package", "private", "fileprivate"].contains($0) })
                else { return nil }
                return String(words[i + 1])
            })
        }
        return out
    }

    @Test(arguments: ["BerthECR", "BerthScanService", "BerthIAM", "BerthHTTP", "BerthEvents", "BerthGallery"])
    func doorsAndTheScannerDoNotImportTheStores(_ target: String) throws {
        let found = try imports(of: target)
        #expect(!found.isEmpty, "the sources of \(target) were found")
        for (file, names) in found {
            #expect(!names.contains("BerthStorage"), "\(target)/\(file) imports BerthStorage: call Registry instead")
            #expect(!names.contains("BerthPostgres"), "\(target)/\(file) imports BerthPostgres: call Registry instead")
        }
    }
}
