/// Percent-encoding (RFC 3986 §2.1) on bytes, with the variants Berth's protocols need: SigV4's canonical
/// encoding (every byte but the unreserved ones, upper-case hex, `/` optionally kept), IAM's encoding of
/// policy documents (the same set), and decoding with or without form rules (`+` as a space).
public enum PercentEncoding {
    private static let upperHex: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 unreserved characters: `A-Z a-z 0-9 - . _ ~`.
    @inline(__always)
    public static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Appends `bytes` with every byte but the unreserved ones (and `/` when `keepSlash`) as `%XX`, upper-case.
    public static func encode(_ bytes: some Sequence<UInt8>, keepSlash: Bool = false, into out: inout [UInt8]) {
        for byte in bytes {
            if isUnreserved(byte) || (keepSlash && byte == UInt8(ascii: "/")) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(upperHex[Int(byte >> 4)])
                out.append(upperHex[Int(byte & 0x0F)])
            }
        }
    }

    /// `encode` of a string's UTF-8, as a string: only unreserved characters stay as they are.
    public static func encoded(_ string: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        encode(string.utf8, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes `%XX` escapes leniently, as SigV4 canonicalizes a query: a `%` not followed by two hex
    /// digits stays literal, and `+` stays `+`.
    public static func decodeLeniently(_ bytes: some Collection<UInt8>) -> [UInt8] {
        decode(bytes, formRules: false) ?? []
    }

    /// Decodes an `application/x-www-form-urlencoded` name or value: `+` is a space, and a `%` not followed
    /// by two hex digits, or bytes that are not UTF-8, make it nil.
    public static func decodeFormComponent(_ bytes: some Collection<UInt8>) -> String? {
        decode(bytes, formRules: true).flatMap { String(validating: $0, as: UTF8.self) }
    }

    /// With `formRules`, `+` is a space and a malformed escape is an error (nil); without, both stay as written.
    private static func decode(_ bytes: some Collection<UInt8>, formRules: Bool) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                let first = bytes.index(after: index)
                let second = first == bytes.endIndex ? first : bytes.index(after: first)
                if second != bytes.endIndex, let high = hexValue(bytes[first]), let low = hexValue(bytes[second]) {
                    out.append(high << 4 | low)
                    index = bytes.index(after: second)
                    continue
                }
                if formRules { return nil }
            }
            out.append(formRules && byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            index = bytes.index(after: index)
        }
        return out
    }

    /// The value of an ASCII hex digit, either case, or nil.
    @inline(__always)
    public static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
