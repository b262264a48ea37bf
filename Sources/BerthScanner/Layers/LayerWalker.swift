import Foundation

/// Why a layer could not be applied.
public enum LayerError: Error, Sendable, Equatable {
    case unreadable(String)
    case unsupportedCompression(String)
    case inflate(InflateError)
    case tar(TarError)
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

        public init(
            maxCatalogFileBytes: Int = 16 << 20, maxTotalCapturedBytes: Int = 256 << 20,
            maxLayerBytes: Int = 64 << 30, readChunkBytes: Int = 64 << 10
        ) {
            self.maxCatalogFileBytes = maxCatalogFileBytes
            self.maxTotalCapturedBytes = maxTotalCapturedBytes
            self.maxLayerBytes = maxLayerBytes
            self.readChunkBytes = readChunkBytes
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

    /// Applies the layer stored in `file` (gzip-compressed or plain tar, detected from its first bytes).
    public mutating func apply(layerFile file: URL) throws(LayerError) {
        let handle: FileHandle
        do { handle = try FileHandle(forReadingFrom: file) } catch { throw .unreadable("\(file.path): \(error)") }
        defer { try? handle.close() }
        let chunk = limits.readChunkBytes
        try apply { () throws(LayerError) -> [UInt8]? in
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
        let layer = layersApplied
        var first = try next()
        guard let head = first else { throw .tar(.truncated) }
        var pending = Pending()
        var capturedSoFar = capturedBytes
        let maxTotal = limits.maxTotalCapturedBytes
        var parser = TarStreamParser(
            limits: .init(maxCaptureBytes: limits.maxCatalogFileBytes),
            wantsContents: { header in
                guard let path = LayerPath.normalize(header.path), Catalogers.wants(path) else { return false }
                return capturedSoFar + header.size <= maxTotal
            })
        var lower = index
        var newIssues: [LayerIssue] = []
        let handleEntry: (TarEntry) -> Void = { entry in
            Self.handle(entry, layer: layer, lower: &lower, pending: &pending, issues: &newIssues)
            if let c = entry.contents { capturedSoFar += c.count }
        }
        func feedTar(_ bytes: [UInt8]) throws(LayerError) {
            do { try parser.feed(bytes, onEntry: handleEntry) } catch let e as TarError { throw .tar(e) } catch {
                throw .tar(.corruptHeader("\(error)"))
            }
        }

        if head.count >= 4, head[0] == 0x28, head[1] == 0xb5, head[2] == 0x2f, head[3] == 0xfd {
            throw .unsupportedCompression("zstd")
        }
        if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b {
            let inflater: GzipInflater
            do { inflater = try GzipInflater(maxOutputBytes: limits.maxLayerBytes) } catch { throw .inflate(error) }
            while let chunk = first {
                do {
                    try inflater.feed(chunk) { out in try feedTar(out) }
                } catch let e as InflateError { throw .inflate(e) } catch let e as LayerError { throw e } catch {
                    throw .unreadable("\(error)")
                }
                // Read on after the tar end marker so that the gzip trailer (CRC, length) is verified.
                first = try next()
            }
            do { try inflater.finish() } catch { throw .inflate(error) }
        } else {
            while let chunk = first {
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
        _ entry: TarEntry, layer: Int, lower: inout VirtualFileIndex, pending: inout Pending, issues: inout [LayerIssue]
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
            guard Catalogers.wants(path) else { return }
            switch entry.header.type {
            case .regular:
                if let contents = entry.contents {
                    pending.additions[path] = .file(contents)
                } else {
                    issues.append(LayerIssue(layer: layer, path: path, reason: entry.exceededCaptureLimit
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
