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
    /// The layer being pushed (a copy of the walker shares it).
    private var inProgress: LayerInProgress?

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

    /// Applies a layer read through `next`, which returns successive chunks and `nil` at the end: pulls the
    /// chunks and pushes them through ``beginLayer(mediaType:)``, ``feed(_:)`` and ``finishLayer()``.
    public mutating func apply(mediaType: String?, reading next: () throws(LayerError) -> [UInt8]?) throws(LayerError) {
        try beginLayer(mediaType: mediaType)
        do {
            while let chunk = try next() {
                guard try feed(chunk) else { break }
            }
            try finishLayer()
        } catch {
            abandonLayer()
            throw error
        }
    }

    /// Starts a layer whose bytes are then pushed with ``feed(_:)`` and ended with ``finishLayer()``; a layer
    /// still in progress is abandoned.
    ///
    /// The compression is taken from the blob's first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar),
    /// as containerd does, because registries hold layers whose media type understates their compression. A
    /// `mediaType` that disagrees with the content is reported as a ``LayerIssue``; an encrypted or
    /// unknown-compression layer media type (`+encrypted`, `+bzip2`, `+xz`, …) is rejected.
    public mutating func beginLayer(mediaType: String?) throws(LayerError) {
        inProgress = nil
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
        inProgress = LayerInProgress(layer: layersApplied, declared: declared, limits: limits, lower: index,
                                     capturedBytes: capturedBytes)
    }

    /// Pushes the layer's next bytes through decompression, the tar parser and the catalogers. Returns false once
    /// the layer needs no more bytes (a plain tar after its end marker; compressed layers are read to the end so
    /// that their trailer is verified). A failure abandons the layer: the index stays as it was.
    @discardableResult
    public mutating func feed(_ chunk: [UInt8]) throws(LayerError) -> Bool {
        guard let layer = inProgress else { throw .unreadable("no layer in progress") }
        do {
            return try layer.feed(chunk)
        } catch {
            inProgress = nil
            throw error
        }
    }

    /// Ends the layer: checks that the compressed stream and the archive ended completely, then applies the
    /// layer's entries over the lower layers. A failure abandons the layer: the index stays as it was.
    public mutating func finishLayer() throws(LayerError) {
        guard let layer = inProgress else { throw .unreadable("no layer in progress") }
        inProgress = nil
        let done = try layer.finish()
        index = done.index
        issues += done.issues
        capturedBytes = done.capturedBytes
        layersApplied += 1
    }

    /// Drops the layer in progress, if any; the index stays as it was before it.
    public mutating func abandonLayer() {
        inProgress = nil
    }

    /// What one layer adds, kept apart from the lower layers until the layer is complete.
    fileprivate struct Pending {
        var additions: [String: VirtualFileIndex.Node] = [:]
        var issues: [LayerIssue] = []
    }

    fileprivate static func handle(
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

/// The state of one layer while its bytes are pushed: the decompressor, the tar parser and what the layer adds.
private final class LayerInProgress {
    /// What the tar parser's callbacks share with the entry handler.
    final class Capture {
        var capturedSoFar: Int
        var goScanner: (path: String, scanner: GoBuildInfoScanner)?
        init(capturedSoFar: Int) { self.capturedSoFar = capturedSoFar }
    }

    let layer: Int
    let declared: LayerCompression?
    let limits: LayerWalker.Limits
    let capture: Capture
    var parser: TarStreamParser
    var lower: VirtualFileIndex
    var pending = LayerWalker.Pending()
    var newIssues: [LayerIssue] = []
    /// How the layer's bytes are read: not known until its first bytes arrive.
    enum Reader {
        /// The first bytes, held until there are enough to tell the compression.
        case sniffing([UInt8])
        case compressed(any LayerDecompressor)
        case plain(bytes: Int)
    }
    var reader = Reader.sniffing([])

    init(layer: Int, declared: LayerCompression?, limits: LayerWalker.Limits, lower: VirtualFileIndex, capturedBytes: Int) {
        self.layer = layer
        self.declared = declared
        self.limits = limits
        self.lower = lower
        let capture = Capture(capturedSoFar: capturedBytes)
        self.capture = capture
        let maxTotal = limits.maxTotalCapturedBytes
        parser = TarStreamParser(
            limits: .init(maxCaptureBytes: max(limits.maxCatalogFileBytes, limits.maxPackageDatabaseBytes)),
            wantsContents: { header in
                guard let path = LayerPath.normalize(header.path), Catalogers.wants(path),
                      header.size <= limits.captureLimit(path)
                else { return false }
                return capture.capturedSoFar + header.size <= maxTotal
            },
            observe: { header in
                // Executables that no cataloger reads by path may be Go binaries: stream them through a scanner.
                capture.goScanner = nil
                guard header.mode & 0o111 != 0, header.size >= 64, header.size <= limits.maxGoBinaryBytes,
                      let path = LayerPath.normalize(header.path), !Catalogers.wants(path)
                else { return nil }
                let scanner = GoBuildInfoScanner(maxBuildInfoBytes: limits.maxGoBuildInfoBytes)
                capture.goScanner = (path, scanner)
                return scanner
            })
    }

    func feed(_ chunk: [UInt8]) throws(LayerError) -> Bool {
        switch reader {
        case .sniffing(let held):
            // 4 bytes tell the compression; a shorter layer is sniffed when it ends.
            let head = held.isEmpty ? chunk : held + chunk
            guard head.count >= 4 else {
                reader = .sniffing(head)
                return true
            }
            try start(sniffing: head)
            return try feed(head)
        case .compressed(let decompressor):
            do {
                try decompressor.feed(chunk) { out in try feedTar(out) }
            } catch let e as InflateError { throw .inflate(e) } catch let e as LayerError { throw e } catch {
                throw .unreadable("\(error)")
            }
            // Read on after the tar end marker so that the trailer (gzip CRC and length, zstd checksum) is verified.
            return true
        case .plain(let bytes):
            guard !parser.reachedEnd else { return false }
            let total = bytes + chunk.count
            reader = .plain(bytes: total)
            guard total <= limits.maxLayerBytes else { throw .inflate(.outputLimitExceeded(limits.maxLayerBytes)) }
            try feedTar(chunk)
            return !parser.reachedEnd
        }
    }

    func finish() throws(LayerError) -> (index: VirtualFileIndex, issues: [LayerIssue], capturedBytes: Int) {
        if case .sniffing(let head) = reader {
            guard !head.isEmpty else { throw .tar(.truncated) }
            try start(sniffing: head)
            _ = try feed(head)
        }
        if case .compressed(let decompressor) = reader {
            do { try decompressor.finish() } catch { throw .inflate(error) }
        }
        do { try parser.finish() } catch { throw .tar(error) }
        // Whiteouts and replacements were applied to the lower layers; now add this layer's own entries.
        for (path, node) in pending.additions { lower.set(path, node) }
        return (lower, newIssues + pending.issues, capture.capturedSoFar)
    }

    /// Chooses the decompressor from the layer's first bytes.
    private func start(sniffing head: [UInt8]) throws(LayerError) {
        let compression = LayerCompression(sniffing: head)
        if let declared, declared != compression {
            newIssues.append(LayerIssue(layer: layer, path: "", reason:
                "media type says \(declared.rawValue) but the content is \(compression.rawValue); read as \(compression.rawValue)"))
        }
        do {
            switch compression {
            case .gzip: reader = .compressed(try GzipInflater(maxOutputBytes: limits.maxLayerBytes))
            case .zstd: reader = .compressed(try ZstdDecompressor(maxOutputBytes: limits.maxLayerBytes))
            case .none: reader = .plain(bytes: 0)
            }
        } catch { throw .inflate(error) }
    }

    private func feedTar(_ bytes: [UInt8]) throws(LayerError) {
        do { try parser.feed(bytes, onEntry: handle) } catch let e as TarError { throw .tar(e) } catch {
            throw .tar(.corruptHeader("\(error)"))
        }
    }

    private func handle(_ entry: TarEntry) {
        var goInfo: GoBuildInfo?
        if let g = capture.goScanner, LayerPath.normalize(entry.header.path) == g.path {
            capture.goScanner = nil
            if g.scanner.foundLegacyFormat {
                newIssues.append(LayerIssue(layer: layer, path: g.path, reason: "Go build information older than Go 1.18 not read"))
            }
            if let info = g.scanner.result {
                let cost = info.dependencies.reduce(64) { $0 + $1.path.utf8.count + $1.version.utf8.count + 32 }
                if capture.capturedSoFar + cost <= limits.maxTotalCapturedBytes {
                    goInfo = info
                    capture.capturedSoFar += cost
                } else {
                    newIssues.append(LayerIssue(layer: layer, path: g.path, reason: "capture budget exhausted, Go build information skipped"))
                }
            }
        }
        LayerWalker.handle(entry, goInfo: goInfo, layer: layer, limits: limits, lower: &lower, pending: &pending, issues: &newIssues)
        if let c = entry.contents { capture.capturedSoFar += c.count }
    }
}
