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
    public static func parse(path rawPath: String) throws(BerthError) -> OCIRoute? {
        guard rawPath.hasPrefix("/v2") else { return nil }
        var rest = rawPath.dropFirst(3)
        if rest.isEmpty || rest == "/" { return .base }
        guard rest.first == "/" else { return nil }
        rest = rest.dropFirst()
        if rest == "_catalog" { return .catalog }
        // Substrings of the path: no copies but the name and the last segment.
        var parts = rest.split(separator: "/", omittingEmptySubsequences: false)
        // A trailing slash (".../uploads/") yields an empty last element.
        let trailingSlash = parts.last?.isEmpty == true
        if trailingSlash { parts.removeLast() }
        guard parts.count >= 2 else { return nil }
        func name(_ count: Int) throws(BerthError) -> RepositoryName {
            // The first `count` segments with their slashes, as they are in the path.
            // Percent-encoding is never valid in a name; refuse it rather than decode it
            // (an encoded slash or dot segment must not sneak past the grammar).
            try RepositoryName(rest[rest.startIndex..<parts[count - 1].endIndex])
        }
        let n = parts.count
        if n >= 3, parts[n - 2] == "tags", parts[n - 1] == "list", !trailingSlash {
            return .tags(try name(n - 2))
        }
        if n >= 3, parts[n - 2] == "blobs", parts[n - 1] == "uploads" {
            return .uploads(try name(n - 2))
        }
        if n >= 4, parts[n - 3] == "blobs", parts[n - 2] == "uploads", !trailingSlash {
            return .upload(try name(n - 3), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "manifests", !trailingSlash {
            return .manifest(try name(n - 2), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "blobs", !trailingSlash {
            return .blob(try name(n - 2), String(parts[n - 1]))
        }
        if n >= 3, parts[n - 2] == "referrers", !trailingSlash {
            return .referrers(try name(n - 2), String(parts[n - 1]))
        }
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
