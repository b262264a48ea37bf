/// The merged view of an image's layers, restricted to the files catalogers read.
///
/// Layers are applied bottom to top with OCI whiteout semantics: `.wh.<name>` hides `<name>` of lower layers,
/// `.wh..wh..opq` hides everything lower layers put in its directory, and an entry replaces what lower layers
/// had at its path (a non-directory also hides what was below that path).
public struct VirtualFileIndex: Sendable, Equatable {
    public enum Node: Sendable, Equatable {
        case file([UInt8])
        case symbolicLink(String)
        /// A Go executable, represented by the build information found in it (its bytes are not kept).
        case goBinary(GoBuildInfo)
    }

    public private(set) var nodes: [String: Node] = [:]
    /// For every directory that has a tracked node somewhere below it, how many.
    private var nodesBelow: [String: Int] = [:]

    public init() {}

    /// The node at a normalised path.
    public subscript(path: String) -> Node? { nodes[path] }

    mutating func set(_ path: String, _ node: Node) {
        if nodes.updateValue(node, forKey: path) == nil { adjustAncestors(of: path, by: 1) }
    }

    mutating func remove(_ path: String) {
        if nodes.removeValue(forKey: path) != nil { adjustAncestors(of: path, by: -1) }
    }

    /// Removes `path` and everything below it.
    mutating func removeTree(_ path: String) {
        remove(path)
        removeChildren(of: path)
    }

    /// Removes everything below directory `path` (`""` is the root).
    mutating func removeChildren(of path: String) {
        let count = path.isEmpty ? nodes.count : nodesBelow[path] ?? 0
        guard count > 0 else { return }
        let prefix = path.isEmpty ? "" : path + "/"
        for key in nodes.keys where key.hasPrefix(prefix) { remove(key) }
    }

    private mutating func adjustAncestors(of path: String, by delta: Int) {
        var dir = LayerPath.parent(path)
        while !dir.isEmpty {
            let n = (nodesBelow[dir] ?? 0) + delta
            nodesBelow[dir] = n == 0 ? nil : n
            dir = LayerPath.parent(dir)
        }
    }

    /// Follows symbolic links from `path` to a file, at most `maxHops` times; `nil` for loops, dangling links
    /// and links that leave the root.
    public func resolve(_ path: String, maxHops: Int = 16) -> (path: String, contents: [UInt8])? {
        var current = path
        for _ in 0...maxHops {
            switch nodes[current] {
            case .file(let contents)?:
                return (current, contents)
            case .symbolicLink(let target)?:
                let joined = target.hasPrefix("/") ? String(target.dropFirst()) : LayerPath.join(LayerPath.parent(current), target)
                guard let next = Self.lexicallyClean(joined) else { return nil }
                current = next
            case nil, .goBinary?:
                return nil
            }
        }
        return nil
    }

    /// Resolves `.` and `..` like a kernel at the root (`..` of the root is the root).
    static func lexicallyClean(_ path: String) -> String? {
        var parts: [Substring] = []
        for c in path.split(separator: "/") {
            if c == "." { continue }
            if c == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(c)
        }
        return parts.isEmpty ? nil : parts.joined(separator: "/")
    }

    /// The Go executables found in the layers, by path.
    public func goBinaries() -> [(path: String, info: GoBuildInfo)] {
        nodes.keys.sorted().compactMap { path in
            guard case .goBinary(let info)? = nodes[path] else { return nil }
            return (path, info)
        }
    }

    /// Every tracked path that catalogers want, with symbolic links resolved to their target's contents.
    public func catalogFiles() -> [CatalogFile] {
        nodes.keys.sorted().compactMap { path in
            guard Catalogers.wants(path), let resolved = resolve(path) else { return nil }
            return CatalogFile(path: path, contents: resolved.contents)
        }
    }
}
