import Foundation

/// Why a layer could not be applied.
public enum LayerError: Error, Sendable, Equatable {
    case unreadable(String)
    case unsupportedCompression(String)
    case inflate(InflateError)
    case tar(TarError)
}

extension LayerError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .unreadable(let why): return "layer unreadable: \(why)"
        case .unsupportedCompression(let what): return "unsupported layer compression: \(what)"
        case .inflate(let e): return "layer decompression failed: \(e)"
        case .tar(let e): return "layer archive invalid: \(e)"
        }
    }
}

/// Something in a layer that was ignored, and why.
public struct LayerIssue: Sendable, Equatable, CustomStringConvertible {
    public var layer: Int
    public var path: String
    public var reason: String

    public var description: String { "layer \(layer): \(path): \(reason)" }
}

/// Applies layer archives, bottom to top, to a ``VirtualFileIndex`` without writing anything to disk.
public struct LayerWalker {
    public struct Limits: Sendable {
        /// Wanted files larger than this are skipped (and reported).
        public var maxCatalogFileBytes: Int
        /// All captured contents together; further wanted files are skipped once it is reached.
        public var maxTotalCapturedBytes: Int
        /// Decompressed bytes per layer (a guard against decompression bombs).
        public var maxLayerBytes: Int
        /// Bytes read from storage per step.
        public var readChunkBytes: Int
        /// rpm's SQLite database may be larger than other catalog files; it is captured up to this size.
        public var maxPackageDatabaseBytes: Int
        /// Executables larger than this are not searched for Go build information.
        public var maxGoBinaryBytes: Int
        /// The most bytes of Go build information kept per binary (the binary itself is streamed, not kept).
        public var maxGoBuildInfoBytes: Int

        public init(
            maxCatalogFileBytes: Int = 16 << 20, maxTotalCapturedBytes: Int = 256 << 20,
            maxLayerBytes: Int = 64 << 30, readChunkBytes: Int = 64 << 10,
            maxPackageDatabaseBytes: Int = 128 << 20, maxGoBinaryBytes: Int = 1 << 30, maxGoBuildInfoBytes: Int = 1 << 20
        ) {
            self.maxCatalogFileBytes = maxCatalogFileBytes
            self.maxTotalCapturedBytes = maxTotalCapturedBytes
            self.maxLayerBytes = maxLayerBytes
            self.readChunkBytes = readChunkBytes
            self.maxPackageDatabaseBytes = maxPackageDatabaseBytes
            self.maxGoBinaryBytes = maxGoBinaryBytes
            self.maxGoBuildInfoBytes = maxGoBuildInfoBytes
        }

        /// The largest capture allowed for a wanted file at `path`.
        func captureLimit(_ path: String) -> Int {
            Catalogers.isLargeDatabase(path) ? max(maxPackageDatabaseBytes, maxCatalogFileBytes) : maxCatalogFileBytes
        }
    }

    public let limits: Limits
    public private(set) var index = VirtualFileIndex()
    public private(set) var issues: [LayerIssue] = []
    public private(set) var layersApplied = 0
    private var capturedBytes = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Applies the layer stored in `file` (gzip, zstd or plain tar, detected from its first bytes).
    public mutating func apply(layerFile file: URL) throws(LayerError) {
        try apply(layerFile: file, mediaType: nil)
    }

    /// Applies the layer stored in `file`; `mediaType` is the descriptor's, when known (see ``apply(mediaType:reading:)``).
    public mutating func apply(layerFile file: URL, mediaType: String?) throws(LayerError) {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: file) } catch { throw .unreadable("\(file.path): \(error)") }
        defer { try? handle.close() }
        let chunk = limits.readChunkBytes
        try apply(mediaType: mediaType) { () throws(LayerError) -> [UInt8]? in
            do {
                guard let data = try handle.read(upToCount: chunk), !data.isEmpty else { return nil }
                return [UInt8](data)
            } catch {
                throw .unreadable("\(file.path): \(error)")
            }
        }
    }

    /// Applies a layer read through `next`, which returns successive chunks and `nil` at the end.
    public mutating func apply(reading next: () throws(LayerError) -> [UInt8]?) throws(LayerError) {
        try apply(mediaType: nil, reading: next)
    }

    /// Applies a layer read through `next`, which returns successive chunks and `nil` at the end.
    ///
    /// The compression is taken from the blob's first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar),
    /// as containerd does, because registries hold layers whose media type understates their compression. A
    /// `mediaType` that disagrees with the content is reported as a ``LayerIssue``; an encrypted or
    /// unknown-compression layer media type (`+encrypted`, `+bzip2`, `+xz`, …) is rejected.
    public mutating func apply(mediaType: String?, reading next: () throws(LayerError) -> [UInt8]?) throws(LayerError) {
        let layer = layersApplied
        var declared: LayerCompression?
        if let mediaType {
            declared = LayerCompression(mediaType: mediaType)
            if declared == nil, let plus = mediaType.lastIndex(of: "+") ?? mediaType.lastIndex(of: ".") {
                let suffix = mediaType[mediaType.index(after: plus)...]
                if !["tar", "gzip", "zstd"].contains(suffix), mediaType.contains("tar") {
                    throw .unsupportedCompression(mediaType)
                }
            }
        }
        var first = try next()
        guard let head = first else { throw .tar(.truncated) }
        var pending = Pending()
        var capturedSoFar = capturedBytes
        let maxTotal = limits.maxTotalCapturedBytes
        let limits = self.limits
        var goScanner: (path: String, scanner: GoBuildInfoScanner)?
        var parser = TarStreamParser(
            limits: .init(maxCaptureBytes: max(limits.maxCatalogFileBytes, limits.maxPackageDatabaseBytes)),
            wantsContents: { header in
                guard let path = LayerPath.normalize(header.path), Catalogers.wants(path),
                      header.size <= limits.captureLimit(path)
                else { return false }
                return capturedSoFar + header.size <= maxTotal
            },
            observe: { header in
                // Executables that no cataloger reads by path may be Go binaries: stream them through a scanner.
                goScanner = nil
                guard header.mode & 0o111 != 0, header.size >= 64, header.size <= limits.maxGoBinaryBytes,
                      let path = LayerPath.normalize(header.path), !Catalogers.wants(path)
                else { return nil }
                let scanner = GoBuildInfoScanner(maxBuildInfoBytes: limits.maxGoBuildInfoBytes)
                goScanner = (path, scanner)
                return scanner
            })
        var lower = index
        var newIssues: [LayerIssue] = []
        let handleEntry: (TarEntry) -> Void = { entry in
            var goInfo: GoBuildInfo?
            if let g = goScanner, LayerPath.normalize(entry.header.path) == g.path {
                goScanner = nil
                if g.scanner.foundLegacyFormat {
                    newIssues.append(LayerIssue(layer: layer, path: g.path, reason: "Go build information older than Go 1.18 not read"))
                }
                if let info = g.scanner.result {
                    let cost = info.dependencies.reduce(64) { $0 + $1.path.utf8.count + $1.version.utf8.count + 32 }
                    if capturedSoFar + cost <= maxTotal {
                        goInfo = info
                        capturedSoFar += cost
                    } else {
                        newIssues.append(LayerIssue(layer: layer, path: g.path, reason: "capture budget exhausted, Go build information skipped"))
                    }
                }
            }
            Self.handle(entry, goInfo: goInfo, layer: layer, limits: limits, lower: &lower, pending: &pending, issues: &newIssues)
            if let c = entry.contents { capturedSoFar += c.count }
        }
        func feedTar(_ bytes: [UInt8]) throws(LayerError) {
            do { try parser.feed(bytes, onEntry: handleEntry) } catch let e as TarError { throw .tar(e) } catch {
                throw .tar(.corruptHeader("\(error)"))
            }
        }

        let compression = LayerCompression(sniffing: head)
        if let declared, declared != compression {
            newIssues.append(LayerIssue(layer: layer, path: "", reason:
                "media type says \(declared.rawValue) but the content is \(compression.rawValue); read as \(compression.rawValue)"))
        }
        let decompressor: (any LayerDecompressor)?
        do {
            switch compression {
            case .gzip: decompressor = try GzipInflater(maxOutputBytes: limits.maxLayerBytes)
            case .zstd: decompressor = try ZstdDecompressor(maxOutputBytes: limits.maxLayerBytes)
            case .none: decompressor = nil
            }
        } catch { throw .inflate(error) }
        if let decompressor {
            while let chunk = first {
                do {
                    try decompressor.feed(chunk) { out in try feedTar(out) }
                } catch let e as InflateError { throw .inflate(e) } catch let e as LayerError { throw e } catch {
                    throw .unreadable("\(error)")
                }
                // Read on after the tar end marker so that the trailer (gzip CRC and length, zstd checksum) is verified.
                first = try next()
            }
            do { try decompressor.finish() } catch { throw .inflate(error) }
        } else {
            var plainBytes = 0
            while let chunk = first {
                plainBytes += chunk.count
                guard plainBytes <= limits.maxLayerBytes else { throw .inflate(.outputLimitExceeded(limits.maxLayerBytes)) }
                try feedTar(chunk)
                if parser.reachedEnd { break }
                first = try next()
            }
        }
        do { try parser.finish() } catch { throw .tar(error) }

        // Whiteouts and replacements were applied to the lower layers; now add this layer's own entries.
        for (path, node) in pending.additions { lower.set(path, node) }
        index = lower
        issues += newIssues + pending.issues
        capturedBytes = capturedSoFar
        layersApplied += 1
    }

    /// What one layer adds, kept apart from the lower layers until the layer is complete.
    private struct Pending {
        var additions: [String: VirtualFileIndex.Node] = [:]
        var issues: [LayerIssue] = []
    }

    private static func handle(
        _ entry: TarEntry, goInfo: GoBuildInfo?, layer: Int, limits: Limits,
        lower: inout VirtualFileIndex, pending: inout Pending, issues: inout [LayerIssue]
    ) {
        let raw = entry.header.path
        guard let path = LayerPath.normalize(raw) else {
            if raw.hasPrefix("/") && raw.contains(where: { $0 != "/" }) || raw.split(separator: "/").contains("..") {
                issues.append(LayerIssue(layer: layer, path: raw, reason: "absolute or '..' path ignored"))
            }
            return
        }
        let dir = LayerPath.parent(path)
        let name = LayerPath.base(path)
        if name == ".wh..wh..opq" {
            lower.removeChildren(of: dir)
            return
        }
        if name.hasPrefix(".wh.") {
            let hidden = String(name.dropFirst(4))
            guard !hidden.isEmpty, hidden != ".", hidden != ".." else { return }
            lower.removeTree(LayerPath.join(dir, hidden))
            return
        }
        switch entry.header.type {
        case .directory:
            // A directory replaces a lower non-directory at the same path.
            lower.remove(path)
            pending.additions[path] = nil
        default:
            lower.removeTree(path)
            pending.additions[path] = nil
            if let goInfo {
                pending.additions[path] = .goBinary(goInfo)
                return
            }
            if entry.header.type == .hardLink, let target = LayerPath.normalize(entry.header.linkName),
               case .goBinary(let info)? = pending.additions[target] ?? lower[target] {
                pending.additions[path] = .goBinary(info)
                return
            }
            guard Catalogers.wants(path) else { return }
            switch entry.header.type {
            case .regular:
                if let contents = entry.contents {
                    pending.additions[path] = .file(contents)
                } else {
                    let tooLarge = entry.exceededCaptureLimit || entry.header.size > limits.captureLimit(path)
                    issues.append(LayerIssue(layer: layer, path: path, reason: tooLarge
                        ? "larger than the catalog file limit, skipped" : "capture budget exhausted, skipped"))
                }
            case .symbolicLink:
                pending.additions[path] = .symbolicLink(entry.header.linkName)
            case .hardLink:
                // A hard link names an earlier entry of the same archive.
                if let target = LayerPath.normalize(entry.header.linkName),
                   case .file(let contents)? = pending.additions[target] ?? lower[target] {
                    pending.additions[path] = .file(contents)
                } else {
                    issues.append(LayerIssue(layer: layer, path: path, reason: "hard link to untracked '\(entry.header.linkName)'"))
                }
            default:
                break
            }
        }
    }
}
