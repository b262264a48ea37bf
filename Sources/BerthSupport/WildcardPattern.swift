/// A compiled `*`/`?` pattern, matched without backtracking blow-up: the one glob matcher of Berth (IAM
/// policies, ECR tag mutability exclusions, scanning filters). `PatternPiece`s and ARN rules are BerthPolicy's.
public struct WildcardPattern: Sendable {
    public enum Token: Sendable, Equatable {
        case literal(Character)
        /// `?`; in the first five ARN segments it does not match a colon.
        case one(crossesColon: Bool)
        /// `*`; in the first five ARN segments it crosses a colon only when it ends its segment.
        case run(crossesColon: Bool)
    }

    public let tokens: [Token]
    public let caseInsensitive: Bool
    private let hasWildcard: Bool

    /// A pattern of `tokens`; with `caseInsensitive`, literal tokens must already be lower-case.
    public init(tokens: [Token], caseInsensitive: Bool) {
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

    /// A plain glob: `*` is any run of characters and `?` (unless `questionMark` is false, when it is
    /// literal) any one character, colons included.
    public static func glob(_ text: String, caseInsensitive: Bool = false, questionMark: Bool = true) -> WildcardPattern {
        var tokens: [Token] = []
        tokens.reserveCapacity(text.count)
        appendGlob(text, caseInsensitive: caseInsensitive, questionMark: questionMark, to: &tokens)
        return WildcardPattern(tokens: tokens, caseInsensitive: caseInsensitive)
    }

    /// Appends the tokens of glob text (see `glob`).
    public static func appendGlob(_ text: String, caseInsensitive: Bool, questionMark: Bool = true, to tokens: inout [Token]) {
        for c in caseInsensitive ? text.lowercased() : text {
            switch c {
            case "*": tokens.append(.run(crossesColon: true))
            case "?" where questionMark: tokens.append(.one(crossesColon: true))
            default: tokens.append(.literal(c))
            }
        }
    }

    /// Whether `subject` matches, in time proportional to the pattern's length times the subject's.
    public func matches(_ subject: String) -> Bool {
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
