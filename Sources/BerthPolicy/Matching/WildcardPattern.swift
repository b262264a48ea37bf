/// Part of a pattern: policy text, where `*` and `?` are wildcards, or substituted text, matched literally.
enum PatternPiece: Sendable, Hashable {
    case pattern(String)
    case literal(String)
}

/// A compiled `*`/`?` pattern, matched without backtracking blow-up.
struct WildcardPattern: Sendable {
    enum Token: Sendable, Equatable {
        case literal(Character)
        /// `?`; in the first five ARN segments it does not match a colon.
        case one(crossesColon: Bool)
        /// `*`; in the first five ARN segments it crosses a colon only when it ends its segment.
        case run(crossesColon: Bool)
    }

    let tokens: [Token]
    let caseInsensitive: Bool
    private let hasWildcard: Bool

    init(tokens: [Token], caseInsensitive: Bool) {
        var collapsed: [Token] = []
        for token in tokens {
            if token == .run(crossesColon: true), let last = collapsed.last, case .run = last {
                collapsed[collapsed.count - 1] = .run(crossesColon: true)
                continue
            }
            if case .run(false) = token, let last = collapsed.last, case .run = last { continue }
            collapsed.append(token)
        }
        self.tokens = collapsed
        self.caseInsensitive = caseInsensitive
        self.hasWildcard = collapsed.contains { if case .literal = $0 { false } else { true } }
    }

    /// A plain glob: `*` is any run of characters, `?` any one character, colons included.
    static func glob(_ pieces: [PatternPiece], caseInsensitive: Bool = false) -> WildcardPattern {
        var tokens: [Token] = []
        for piece in pieces {
            switch piece {
            case let .literal(text):
                tokens += (caseInsensitive ? text.lowercased() : text).map(Token.literal)
            case let .pattern(text):
                for c in caseInsensitive ? text.lowercased() : text {
                    switch c {
                    case "*": tokens.append(.run(crossesColon: true))
                    case "?": tokens.append(.one(crossesColon: true))
                    default: tokens.append(.literal(c))
                    }
                }
            }
        }
        return WildcardPattern(tokens: tokens, caseInsensitive: caseInsensitive)
    }

    static func glob(_ text: String, caseInsensitive: Bool = false) -> WildcardPattern {
        glob([.pattern(text)], caseInsensitive: caseInsensitive)
    }

    /// A `Resource` element ARN: wildcards stay inside the first five colon-separated segments,
    /// except that "if the * wildcard is the last character of a resource ARN segment, it can expand
    /// to match beyond the colon boundaries"; in the resource part they match anything.
    static func resourceARN(_ pieces: [PatternPiece]) -> WildcardPattern {
        var chars: [(Character, isPattern: Bool)] = []
        for piece in pieces {
            switch piece {
            case let .literal(text): chars += text.map { ($0, false) }
            case let .pattern(text): chars += text.map { ($0, true) }
            }
        }
        var tokens: [Token] = []
        var colons = 0
        for (i, (c, isPattern)) in chars.enumerated() {
            let inResourcePart = colons >= 5
            if isPattern && c == "*" {
                let endsSegment = i + 1 == chars.count || chars[i + 1].0 == ":"
                tokens.append(.run(crossesColon: inResourcePart || endsSegment))
            } else if isPattern && c == "?" {
                tokens.append(.one(crossesColon: inResourcePart))
            } else {
                if c == ":" { colons += 1 }
                tokens.append(.literal(c))
            }
        }
        return WildcardPattern(tokens: tokens, caseInsensitive: false)
    }

    func matches(_ subject: String) -> Bool {
        let text = Array(caseInsensitive ? subject.lowercased() : subject)
        if !hasWildcard {
            return tokens.count == text.count && zip(tokens, text).allSatisfy { $0 == .literal($1) }
        }
        let n = text.count
        var reachable = [Bool](repeating: false, count: n + 1)
        reachable[0] = true
        var next = [Bool](repeating: false, count: n + 1)
        for token in tokens {
            switch token {
            case let .literal(c):
                next[0] = false
                for j in stride(from: 1, through: n, by: 1) { next[j] = reachable[j - 1] && text[j - 1] == c }
            case let .one(cross):
                next[0] = false
                for j in stride(from: 1, through: n, by: 1) {
                    next[j] = reachable[j - 1] && (cross || text[j - 1] != ":")
                }
            case let .run(cross):
                next[0] = reachable[0]
                for j in stride(from: 1, through: n, by: 1) {
                    next[j] = reachable[j] || (next[j - 1] && (cross || text[j - 1] != ":"))
                }
            }
            swap(&reachable, &next)
            if !reachable.contains(true) { return false }
        }
        return reachable[n]
    }
}

/// ARN comparison for the `Arn*` condition operators: "Each of the six colon-delimited components
/// of the ARN is checked separately and each can include" `*` and `?`.
enum ARNMatcher {
    static func matches(pattern: [PatternPiece], value: String) -> Bool {
        let patternComponents = splitPieces(pattern)
        let valueComponents = value.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false).map(String.init)
        if patternComponents.count == 1 {
            return WildcardPattern.glob(patternComponents[0]).matches(value)
        }
        guard valueComponents.count == 6 else { return false }
        let last = patternComponents.count - 1
        for (i, component) in patternComponents.enumerated() {
            // A pattern with fewer than six components lets its last one cover the rest of the value.
            let subject = i == last ? valueComponents[i...].joined(separator: ":") : valueComponents[i]
            if !WildcardPattern.glob(component).matches(subject) { return false }
        }
        return true
    }

    /// Splits a pattern at its first five colons, keeping literal pieces literal.
    private static func splitPieces(_ pieces: [PatternPiece]) -> [[PatternPiece]] {
        var components: [[PatternPiece]] = [[]]
        for piece in pieces {
            switch piece {
            case let .literal(text):
                components[components.count - 1].append(.literal(text))
            case let .pattern(text):
                var current = ""
                for c in text {
                    if c == ":" && components.count < 6 {
                        components[components.count - 1].append(.pattern(current))
                        components.append([])
                        current = ""
                    } else {
                        current.append(c)
                    }
                }
                components[components.count - 1].append(.pattern(current))
            }
        }
        return components
    }
}
