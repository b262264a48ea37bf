import BerthCore
import HTTPTypes

/// A `/v2/` request path, parsed. Repository names contain slashes, so the path is read from its end.
public enum OCIRoute: Equatable, Sendable {
    case base
    case catalog
    case tags(RepositoryName)
    case manifest(RepositoryName, String)
    case blob(RepositoryName, String)
    case uploads(RepositoryName)
    case upload(RepositoryName, String)
    case referrers(RepositoryName, String)

    /// Parses a raw (not percent-decoded) request path. Returns nil for paths that are not part of
    /// the API (404), throws `nameInvalid` for API paths whose repository name is not valid.
    ///
    /// The path is read as bytes from its end, segment by segment: no array of segments, and no
    /// copies but the name and the last segment.
    public static func parse(path rawPath: String) throws(BerthError) -> OCIRoute? {
        let slash = UInt8(ascii: "/")
        var rest = rawPath.utf8[...]
        guard rest.starts(with: "/v2".utf8) else { return nil }
        rest = rest.dropFirst(3)
        if rest.isEmpty || rest.elementsEqual(CollectionOfOne(slash)) { return .base }
        guard rest.first == slash else { return nil }
        rest = rest.dropFirst()
        if rest.elementsEqual("_catalog".utf8) { return .catalog }
        // A trailing slash (".../uploads/") ends an empty last segment: drop it.
        let trailingSlash = rest.last == slash
        if trailingSlash { rest = rest.dropLast() }
        // `rest` as segments s[n-1] … s[0] from its end; `head(k)` is the path before the last k segments.
        typealias Bytes = Substring.UTF8View
        func split(_ v: Bytes) -> (last: Bytes, head: Bytes?) {
            guard let i = v.lastIndex(of: slash) else { return (v, nil) }
            return (v[v.index(after: i)...], v[..<i])
        }
        func name(_ v: Bytes) throws(BerthError) -> RepositoryName {
            // The leading segments with their slashes, as they are in the path. Percent-encoding is never
            // valid in a name; refuse it rather than decode it (an encoded slash or dot segment must not
            // sneak past the grammar).
            try RepositoryName(String(Substring(v)))
        }
        func string(_ v: Bytes) -> String { String(Substring(v)) }
        let (s1, h1) = split(rest)
        guard let h1 else { return nil }
        let (s2, h2) = split(h1)
        guard let h2 else { return nil }
        if s2.elementsEqual("tags".utf8), s1.elementsEqual("list".utf8), !trailingSlash {
            return .tags(try name(h2))
        }
        if s2.elementsEqual("blobs".utf8), s1.elementsEqual("uploads".utf8) {
            return .uploads(try name(h2))
        }
        if s2.elementsEqual("uploads".utf8), !trailingSlash {
            let (s3, h3) = split(h2)
            if let h3, s3.elementsEqual("blobs".utf8) { return .upload(try name(h3), string(s1)) }
        }
        if trailingSlash { return nil }
        if s2.elementsEqual("manifests".utf8) { return .manifest(try name(h2), string(s1)) }
        if s2.elementsEqual("blobs".utf8) { return .blob(try name(h2), string(s1)) }
        if s2.elementsEqual("referrers".utf8) { return .referrers(try name(h2), string(s1)) }
        return nil
    }
}

extension OCIRoute {
    /// The repository the route addresses, if any.
    public var repositoryName: RepositoryName? {
        switch self {
        case .base, .catalog: nil
        case .tags(let n), .manifest(let n, _), .blob(let n, _), .uploads(let n), .upload(let n, _), .referrers(let n, _): n
        }
    }

    /// The same route on another repository.
    public func renamed(_ n: RepositoryName) -> OCIRoute {
        switch self {
        case .base, .catalog: self
        case .tags: .tags(n)
        case .manifest(_, let r): .manifest(n, r)
        case .blob(_, let d): .blob(n, d)
        case .uploads: .uploads(n)
        case .upload(_, let id): .upload(n, id)
        case .referrers(_, let d): .referrers(n, d)
        }
    }

    /// ECR Public repositories are addressed as `public/<alias>/<name>` (like `public.ecr.aws/<alias>/<name>`):
    /// the account the alias names and the repository name, or nil for a private repository.
    public var publicRepository: (account: String, name: RepositoryName)? {
        guard let full = repositoryName?.value, full.hasPrefix("public/") else { return nil }
        let parts = full.split(separator: "/", maxSplits: 2)
        guard parts.count == 3, let account = PublicRegistry.account(ofAlias: String(parts[1])),
              let name = try? RepositoryName(String(parts[2])) else { return nil }
        return (account, name)
    }

    /// Whether the request only reads (pulls, lists tags, discovers referrers).
    public static func isPull(_ route: OCIRoute, _ method: HTTPRequest.Method) -> Bool {
        guard method == .get || method == .head else { return false }
        switch route {
        case .tags, .manifest, .blob, .referrers: return true
        default: return false
        }
    }
}
