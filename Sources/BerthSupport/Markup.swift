/// Text escaped for XML and HTML, in content and in single- or double-quoted attributes: the Query
/// protocol's XML answers (IAM, STS), S3 request bodies and the gallery's pages share it.
public enum Markup {
    /// `&`, `<`, `>`, `"` and `'` as entities (`'` as `apostrophe`: `&#39;` by default, which HTML 4 and
    /// XML both read; `&apos;` where a wire format spells it so); with `carriageReturn`, `\r` as `&#13;`
    /// too, so an XML parser does not fold it into a line feed.
    public static func escape(_ s: String, apostrophe: String = "&#39;", carriageReturn: Bool = false) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += apostrophe
            case "\r" where carriageReturn: out += "&#13;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}
