import CZstdRuntime
import Foundation
@testable import BerthScanEngine

/// A fresh directory under the system temporary directory, removed by `cleanup()`.
struct TempDir {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("berth-scan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ relative: String) -> URL { url.appendingPathComponent(relative) }

    func write(_ relative: String, _ contents: String, mode: Int = 0o644) throws {
        let file = path(relative)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(contents.utf8).write(to: file)
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: file.path)
    }

    func cleanup() { try? FileManager.default.removeItem(at: url) }
}

/// The absolute path of an executable on `PATH`, or `nil`.
func which(_ tool: String) -> String? {
    let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
    for dir in dirs + ["/usr/bin", "/usr/local/bin"] {
        let candidate = "\(dir)/\(tool)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}

/// Runs a tool and fails when it exits with a non-zero status.
@discardableResult
func run(_ tool: String, _ arguments: [String], in directory: URL? = nil, input: Data? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: which(tool) ?? tool)
    process.arguments = arguments
    if let directory { process.currentDirectoryURL = directory }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    if input != nil { process.standardInput = stdin }
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
    }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: output, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw NSError(domain: "run", code: Int(process.terminationStatus), userInfo: [NSLocalizedDescriptionKey: "\(tool) \(arguments): \(text)"])
    }
    return text
}

/// zstd-compresses `data` with libzstd (one frame, content checksum on).
func zstd(_ data: [UInt8], level: Int32 = 3) -> [UInt8] {
    precondition(berth_zstd_load() != 0, "libzstd.so.1 is needed by the zstd tests")
    let cctx = berth_zstd_create_cctx()!
    defer { _ = berth_zstd_free_cctx(cctx) }
    _ = berth_zstd_cctx_set_parameter(cctx, Int32(BERTH_ZSTD_C_CHECKSUM_FLAG), 1)
    _ = berth_zstd_cctx_set_parameter(cctx, Int32(BERTH_ZSTD_C_COMPRESSION_LEVEL), level)
    var out = [UInt8](repeating: 0, count: berth_zstd_compress_bound(data.count))
    let n = data.withUnsafeBytes { src in
        out.withUnsafeMutableBytes { dst in
            berth_zstd_compress2(cctx, dst.baseAddress, dst.count, src.baseAddress, src.count)
        }
    }
    precondition(berth_zstd_is_error(n) == 0)
    return Array(out[0..<n])
}

/// Writes a one-image OCI layout (index.json, manifest, config, layers) for scanner tests.
func writeOCILayout(at root: URL, tag: String, layers: [(mediaType: String, bytes: [UInt8])]) throws {
    func sha256(_ bytes: [UInt8]) throws -> String {
        let tmp = root.appendingPathComponent("tmp-\(UUID().uuidString)")
        try Data(bytes).write(to: tmp)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let out = try run("sha256sum", [tmp.path])
        return String(out.prefix(64))
    }
    let blobs = root.appendingPathComponent("blobs/sha256")
    try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
    func put(_ bytes: [UInt8]) throws -> (String, Int) {
        let hex = try sha256(bytes)
        try Data(bytes).write(to: blobs.appendingPathComponent(hex))
        return ("sha256:" + hex, bytes.count)
    }
    let config = Array(#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.utf8)
    let (configDigest, configSize) = try put(config)
    var layerJSON: [String] = []
    for layer in layers {
        let (d, n) = try put(layer.bytes)
        layerJSON.append(#"{"mediaType":"\#(layer.mediaType)","digest":"\#(d)","size":\#(n)}"#)
    }
    let manifest = Array(#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":\#(configSize)},"layers":[\#(layerJSON.joined(separator: ","))]}"#.utf8)
    let (md, mn) = try put(manifest)
    let index = #"{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(md)","size":\#(mn),"annotations":{"org.opencontainers.image.ref.name":"\#(tag)"}}]}"#
    try Data(index.utf8).write(to: root.appendingPathComponent("index.json"))
    try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: root.appendingPathComponent("oci-layout"))
}

/// A database of OSV records written inline.
func database(feed: String, _ records: [String]) -> VulnerabilityDatabase {
    var db = VulnerabilityDatabase()
    for (k, r) in records.enumerated() { db.add(feed: feed, file: "\(k).json", data: Data(r.utf8)) }
    return db
}

/// An OSV record with one ECOSYSTEM range `introduced 0, fixed <fixed>`.
func osvRecord(id: String, ecosystem: String, name: String, fixed: String, type: String = "ECOSYSTEM") -> String {
    #"{"id":"\#(id)","modified":"2025-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"\#(ecosystem)","name":"\#(name)"},"ranges":[{"type":"\#(type)","events":[{"introduced":"0"},{"fixed":"\#(fixed)"}]}]}]}"#
}
