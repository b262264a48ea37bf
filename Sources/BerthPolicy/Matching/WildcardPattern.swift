import BerthSupport

/// Part of a pattern: policy text, where `*` and `?` are wildcards, or substituted text, matched literally.
enum PatternPiece: Sendable, Hashable {
    case pattern(String)
    case literal(String)
}

/// Policy patterns: text with substituted pieces matched literally, and `Resource` ARNs.
extension WildcardPattern {
    /// A plain glob: `*` is any run of characters, `?` any one character, colons included.
    static func glob(_ pieces: [PatternPiece], caseInsensitive: Bool = false) -> WildcardPattern {
        var tokens: [Token] = []
        for piece in pieces {
            switch piece {
            case let .literal(text):
                tokens += (caseInsensitive ? text.lowercased() : text).map(Token.literal)
            case let .pattern(text):
                appendGlob(text, caseInsensitive: caseInsensitive, to: &tokens)
            }
        }
        return WildcardPattern(tokens: tokens, caseInsensitive: caseInsensitive)
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
