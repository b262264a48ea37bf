/// `${aws:username}`-style policy variables, with `${key, 'default'}` and the `${*}`, `${?}`, `${$}` escapes.
enum PolicyVariables {
    /// Splits `text` into policy text and substituted values. Returns `nil` when a variable names a
    /// key the request lacks and has no default: "any attempt to match it fails and causes the
    /// statement to be invalid".
    static func substitute(_ text: String, resolve: (String) -> String?) -> [PatternPiece]? {
        var pieces: [PatternPiece] = []
        var pending = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { break }
            pending += rest[..<start.lowerBound]
            let body = rest[start.upperBound..<end].trimmingWhitespace()
            rest = rest[rest.index(after: end)...]
            switch body {
            case "*", "?", "$":
                if !pending.isEmpty { pieces.append(.pattern(pending)); pending = "" }
                pieces.append(.literal(String(body)))
                continue
            default:
                break
            }
            var key = body
            var fallback: String?
            if let comma = body.firstIndex(of: ",") {
                key = body[..<comma].trimmingWhitespace()
                let raw = body[body.index(after: comma)...].trimmingWhitespace()
                if raw.count >= 2, raw.first == "'", raw.last == "'" {
                    fallback = String(raw.dropFirst().dropLast())
                } else {
                    fallback = String(raw)
                }
            }
            guard let value = resolve(String(key)) ?? fallback else { return nil }
            if !pending.isEmpty { pieces.append(.pattern(pending)); pending = "" }
            pieces.append(.literal(value))
        }
        pending += rest
        if !pending.isEmpty { pieces.append(.pattern(pending)) }
        return pieces
    }

    /// The pieces joined back into one string (for operators without wildcards).
    static func joined(_ pieces: [PatternPiece]) -> String {
        pieces.map { piece in
            switch piece {
            case let .pattern(s), let .literal(s): s
            }
        }.joined()
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
