/// A `WWW-Authenticate` challenge of a registry: `Bearer realm="…",service="…",scope="…"` (the token
/// flow of Docker Hub, GHCR and Quay) or `Basic realm="…"`. Pure, so it is tested without I/O.
public struct AuthChallenge: Sendable, Equatable {
    /// Lower-cased: `bearer` or `basic`.
    public var scheme: String
    /// Parameters with lower-cased names.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses one challenge; nil for an empty or unreadable header.
    public static func parse(_ header: String) -> AuthChallenge? {
        var rest = Substring(header).drop { $0 == " " }
        let scheme = rest.prefix { $0 != " " }
        guard !scheme.isEmpty else { return nil }
        rest = rest.dropFirst(scheme.count)
        var parameters: [String: String] = [:]
        while true {
            rest = rest.drop { $0 == " " || $0 == "," }
            guard !rest.isEmpty else { break }
            let name = rest.prefix { $0 != "=" && $0 != " " && $0 != "," }
            rest = rest.dropFirst(name.count).drop { $0 == " " }
            guard rest.first == "=" else { return nil }
            rest = rest.dropFirst().drop { $0 == " " }
            var value = ""
            if rest.first == "\"" {
                rest = rest.dropFirst()
                var escaped = false
                var closed = false
                while let c = rest.first {
                    rest = rest.dropFirst()
                    if escaped { value.append(c); escaped = false; continue }
                    if c == "\\" { escaped = true; continue }
                    if c == "\"" { closed = true; break }
                    value.append(c)
                }
                guard closed else { return nil }
            } else {
                let token = rest.prefix { $0 != "," && $0 != " " }
                value = String(token)
                rest = rest.dropFirst(token.count)
            }
            guard !name.isEmpty else { return nil }
            parameters[name.lowercased()] = value
        }
        return AuthChallenge(scheme: scheme.lowercased(), parameters: parameters)
    }
}

/// An upstream registry's location: scheme and authority (`registry-1.docker.io`, `127.0.0.1:5000`).
public struct UpstreamEndpoint: Sendable, Hashable {
    public var scheme: String
    public var authority: String

    public init(scheme: String, authority: String) {
        self.scheme = scheme
        self.authority = authority
    }

    /// An `upstreamRegistryUrl` as ECR takes it: a host (`https` implied), or a URL with `https://` or
    /// `http://`; a trailing `/` is ignored. Nil when it is none of these.
    public static func parse(_ url: String) -> UpstreamEndpoint? {
        var text = Substring(url)
        var scheme = "https"
        if text.hasPrefix("https://") {
            text = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            scheme = "http"
            text = text.dropFirst(7)
        } else if text.contains("://") {
            return nil
        }
        while text.hasSuffix("/") { text = text.dropLast() }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]")
        guard !text.isEmpty, text.count <= 253, text.allSatisfy({ allowed.contains($0) }), !text.hasPrefix("."), !text.hasPrefix(":") else { return nil }
        return UpstreamEndpoint(scheme: scheme, authority: text.lowercased())
    }

    public var base: String { "\(scheme)://\(authority)" }
}
