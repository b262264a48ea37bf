import BerthSupport
import Foundation
import Ink

/// Catalog texts (`aboutText`, `usageText`) are user input: they are rendered with Ink, whose output is
/// made inert by modifiers on every fragment that can carry markup or a URL of the author's choosing.
///
/// - raw HTML (block or inline) is shown as escaped text, never passed through;
/// - a link or image keeps its URL only when it is relative or `http`, `https` (or, for links, `mailto`),
///   with no whitespace or control characters (which browsers strip before reading a scheme), and the URL
///   is attribute-escaped; a link's text is Ink's HTML for it only when that is provably inert (escaped text
///   and this renderer's own inline elements), else escaped; other links render as their text, images as
///   their alt text;
/// - a code block's language (raw text in Ink's `class` attribute) is dropped.
///
/// Text itself Ink escapes (`<`, `>`, `&`). What the modifiers cannot prove well-formed is escaped whole.
public enum SafeMarkdown {
    /// The HTML for a catalog text.
    public static func html(_ markdown: String) -> String {
        // Each nested link is rendered (and its text escaped) once per level: brackets nested deeper than
        // any real text are shown as they are, which keeps the work linear.
        guard bracketDepth(markdown) <= maxBracketDepth else { return "<pre>" + escape(markdown) + "</pre>" }
        return render(markdown, declarations: declarations(in: markdown))
    }

    static let maxBracketDepth = 8

    /// How deep `[` nest in a text.
    static func bracketDepth(_ text: String) -> Int {
        var depth = 0, deepest = 0
        for b in text.utf8 {
            if b == UInt8(ascii: "[") { depth += 1; deepest = max(deepest, depth) }
            else if b == UInt8(ascii: "]") { depth = max(0, depth - 1) }
        }
        return deepest
    }

    static func render(_ markdown: String, declarations: [String: Substring]) -> String {
        var parser = MarkdownParser()
        parser.addModifier(Modifier(target: .html) { escape(String($0.markdown)) })
        parser.addModifier(Modifier(target: .links) { link($0.html, $0.markdown, declarations: declarations) })
        parser.addModifier(Modifier(target: .images) { image($0.markdown, declarations: declarations) })
        parser.addModifier(Modifier(target: .codeBlocks) { codeBlock($0.html, markdown: $0.markdown) })
        return parser.html(from: markdown)
    }

    // MARK: links and images

    /// `[text](url)` or `[text][reference]` → (text, url): the URL as Ink reads it (balanced parentheses), the
    /// reference looked up among the document's declarations (Ink uses the name itself when none matches).
    static func splitLink(_ markdown: Substring, declarations: [String: Substring]) -> (text: Substring, url: Substring)? {
        guard markdown.first == "[", let last = markdown.last else { return nil }
        if last == ")" {
            var depth = 0
            var i = markdown.index(before: markdown.endIndex)
            while i > markdown.startIndex {
                i = markdown.index(before: i)
                let c = markdown[i]
                if c == ")" { depth += 1 }
                else if c == "(" {
                    if depth == 0 {
                        guard i > markdown.startIndex, markdown[markdown.index(before: i)] == "]" else { return nil }
                        let textEnd = markdown.index(before: i)
                        guard textEnd > markdown.startIndex else { return nil }
                        return (markdown[markdown.index(after: markdown.startIndex)..<textEnd],
                                markdown[markdown.index(after: i)..<markdown.index(before: markdown.endIndex)])
                    }
                    depth -= 1
                }
            }
            return nil
        }
        if last == "]", let split = markdown.range(of: "][", options: .backwards) {
            let text = markdown[markdown.index(after: markdown.startIndex)..<split.lowerBound]
            let name = markdown[split.upperBound..<markdown.index(before: markdown.endIndex)]
            return (text, declarations[name.lowercased()] ?? name)
        }
        return nil
    }

    static func link(_ html: String, _ markdown: Substring, declarations: [String: Substring]) -> String {
        guard let (text, url) = splitLink(markdown, declarations: declarations) else { return escape(String(markdown)) }
        // Ink wrote `<a href="URL">TITLE</a>`, TITLE being the text's HTML after these same modifiers. It is
        // used only when the URL found above is exactly Ink's (the prefix matches) and TITLE holds nothing
        // but escaped text and the inline elements this renderer emits; else the text is shown escaped.
        let prefix = "<a href=\"" + url + "\">", suffix = "</a>"
        // (Link texts are short: a long one, nested links among them, is escaped without looking, which
        // keeps deeply nested brackets linear.)
        var label = text.utf8.count > maxLinkText ? "" : escape(String(text))
        if text.utf8.count <= maxLinkText, html.utf8.count <= prefix.utf8.count + suffix.utf8.count + 4 * maxLinkText,
           html.hasPrefix(prefix), html.hasSuffix(suffix), html.utf8.count >= prefix.utf8.count + suffix.utf8.count {
            let title = html.dropFirst(prefix.count).dropLast(suffix.count)
            if isInertInline(title) { label = String(title) }
        } else if text.utf8.count > maxLinkText {
            label = escape(String(text))
        }
        guard let safe = safeURL(url, allowMailto: true) else { return label }
        return "<a href=\"\(escape(safe))\" rel=\"nofollow noopener noreferrer\">\(label)</a>"
    }

    static func image(_ markdown: Substring, declarations: [String: Substring]) -> String {
        guard markdown.first == "!", let (alt, url) = splitLink(markdown.dropFirst(), declarations: declarations) else {
            return escape(String(markdown))
        }
        guard let safe = safeURL(url, allowMailto: false) else { return escape(String(alt)) }
        return "<img src=\"\(escape(safe))\" alt=\"\(escape(String(alt)))\" loading=\"lazy\">"
    }

    /// The longest link text (UTF-8 bytes) rendered with its formatting.
    static let maxLinkText = 1000

    static let inlineTags: Set<Substring> = ["<em>", "</em>", "<strong>", "</strong>", "<code>", "</code>", "<br>", "<del>", "</del>", "</a>"]

    /// Whether a piece of HTML is escaped text with only the inline elements Ink and this renderer write:
    /// `em`, `strong`, `code`, `del`, `br`, and `a`/`img` exactly as `link`/`image` write them (their
    /// attribute values escaped, so without `"`, `<` or `>`). A raw `>` outside such a tag fails too.
    static func isInertInline(_ html: Substring) -> Bool {
        var rest = html
        while let i = rest.firstIndex(where: { $0 == "<" || $0 == ">" }) {
            guard rest[i] == "<", let close = rest[i...].firstIndex(of: ">") else { return false }
            let tag = rest[i...close]
            rest = rest[rest.index(after: close)...]
            if inlineTags.contains(tag) { continue }
            if tag.hasPrefix("<a href=\""), tag.hasSuffix("\" rel=\"nofollow noopener noreferrer\">"),
               tag.dropFirst(9).dropLast(37).allSatisfy({ $0 != "\"" && $0 != "<" }) { continue }
            if tag.hasPrefix("<img src=\""), tag.hasSuffix("\" loading=\"lazy\">"),
               let alt = tag.range(of: "\" alt=\""),
               tag[tag.index(tag.startIndex, offsetBy: 10)..<alt.lowerBound].allSatisfy({ $0 != "\"" && $0 != "<" }),
               tag[alt.upperBound...].dropLast(17).allSatisfy({ $0 != "\"" && $0 != "<" }) { continue }
            return false
        }
        return true
    }

    /// The URL to emit, or nil: relative URLs, and absolute ones with an allowed scheme. Anything with
    /// whitespace or control characters is refused (browsers drop tabs and newlines inside a URL and
    /// control characters around it before they read the scheme: `java\nscript:` is `javascript:`).
    public static func safeURL(_ raw: Substring, allowMailto: Bool) -> String? {
        let url = raw.trimmingSpaces
        guard !url.isEmpty, !url.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7f || $0.properties.isWhitespace }) else {
            return nil
        }
        if let end = url.firstIndex(where: { $0 == ":" || $0 == "/" || $0 == "?" || $0 == "#" }), url[end] == ":" {
            let scheme = url[url.startIndex..<end].lowercased()
            guard scheme == "http" || scheme == "https" || (allowMailto && scheme == "mailto") else { return nil }
        }
        return String(url)
    }

    /// `[name]: url` lines, by lower-cased name (as Ink keeps them).
    static func declarations(in markdown: String) -> [String: Substring] {
        var found: [String: Substring] = [:]
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: true) {
            let t = line.trimmingSpaces
            guard t.first == "[", let close = t.range(of: "]:") else { continue }
            let name = t[t.index(after: t.startIndex)..<close.lowerBound]
            found[name.lowercased()] = t[close.upperBound...].trimmingSpaces
        }
        return found
    }

    // MARK: code blocks

    /// Ink writes `<pre><code class="language-LANG">CODE</code></pre>`, with LANG raw and CODE escaped (so
    /// CODE has no `>`): the code is what follows the last `>` before the closing tags.
    static func codeBlock(_ html: String, markdown: Substring) -> String {
        let open = "<pre><code", close = "</code></pre>"
        guard html.hasPrefix(open), html.hasSuffix(close) else { return "<pre><code>\(escape(String(markdown)))</code></pre>" }
        let body = html.dropLast(close.count)
        guard let tagEnd = body.lastIndex(of: ">") else { return "<pre><code>\(escape(String(markdown)))</code></pre>" }
        return "<pre><code>" + body[body.index(after: tagEnd)...] + close
    }

    // MARK: escaping

    /// Escapes text for HTML content and double- or single-quoted attributes.
    public static func escape(_ s: String) -> String { Markup.escape(s) }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return s
    }
}
