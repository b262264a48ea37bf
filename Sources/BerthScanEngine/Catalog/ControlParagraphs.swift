/// A deb822 / RFC 822-style paragraph: fields in order, names compared case-insensitively.
public struct ControlParagraph: Sendable, Equatable {
    public private(set) var fields: [(name: String, value: String)] = []

    public static func == (a: Self, b: Self) -> Bool {
        a.fields.elementsEqual(b.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    /// The first field called `name` (case-insensitive), with continuation lines joined by `\n`.
    public subscript(name: String) -> String? {
        let key = name.lowercased()
        return fields.first { $0.name.lowercased() == key }?.value
    }

    mutating func append(name: String, value: String) { fields.append((name, value)) }

    mutating func continueLast(with line: Substring) {
        guard !fields.isEmpty else { return }
        fields[fields.count - 1].value += "\n" + line.trimmingWhitespace()
    }
}

/// Parses text made of paragraphs separated by blank lines, as dpkg's status file and Python's METADATA headers.
public enum ControlParagraphParser {
    /// The paragraphs of `text`, and the lines that were neither a field nor a continuation (1-based line numbers).
    public static func parse(_ text: String, stopAfterFirst: Bool = false) -> (paragraphs: [ControlParagraph], badLines: [Int]) {
        var paragraphs: [ControlParagraph] = []
        var badLines: [Int] = []
        var current = ControlParagraph()
        var lineNumber = 0
        // "\r\n" is one Character in Swift, so it has to be named as a separator of its own.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) {
                if !current.fields.isEmpty {
                    paragraphs.append(current)
                    current = ControlParagraph()
                    if stopAfterFirst { return (paragraphs, badLines) }
                }
                continue
            }
            if line.first == " " || line.first == "\t" {
                if current.fields.isEmpty { badLines.append(lineNumber) } else { current.continueLast(with: line) }
                continue
            }
            if line.first == "#" { continue }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                badLines.append(lineNumber)
                continue
            }
            let name = line[..<colon].trimmingWhitespace()
            guard !name.contains(" ") else {
                badLines.append(lineNumber)
                continue
            }
            current.append(name: name, value: line[line.index(after: colon)...].trimmingWhitespace())
        }
        if !current.fields.isEmpty { paragraphs.append(current) }
        return (paragraphs, badLines)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s = s.dropLast() }
        return String(s)
    }
}
