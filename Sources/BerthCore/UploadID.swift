import Foundation

/// The id of a blob upload session: a UUID in lower case, as Berth creates them. Both doors take ids from
/// clients (an OCI `Location` path, ECR's `uploadId`) and check them here before any lookup.
public enum UploadID {
    /// A new id.
    public static func generate() -> String {
        UUID().uuidString.lowercased()
    }

    /// `text` in canonical form (lower case) when it is a UUID, hex digits in either case
    /// (`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}`, ECR's pattern); nil otherwise.
    public static func canonical(_ text: String) -> String? {
        let utf8 = text.utf8
        guard utf8.count == 36 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(36)
        for (i, b) in utf8.enumerated() {
            if i == 8 || i == 13 || i == 18 || i == 23 {
                guard b == UInt8(ascii: "-") else { return nil }
                out.append(b)
            } else {
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): out.append(b)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): out.append(b + 0x20)
                default: return nil
                }
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether `text` is an id exactly as Berth creates them (canonical, lower case): the only ids a
    /// session can have, so anything else is unknown without looking it up.
    public static func isCanonical(_ text: String) -> Bool {
        canonical(text) == text
    }
}
