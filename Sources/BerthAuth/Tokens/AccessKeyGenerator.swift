/// Generates AWS-shaped access key ids and secret access keys from a cryptographically secure generator.
public enum AccessKeyGenerator {
    /// The prefix of long-term (IAM user) access key ids.
    public static let longTermPrefix = "AKIA"
    /// The prefix of temporary (STS) access key ids.
    public static let temporaryPrefix = "ASIA"

    private static let base32: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)
    private static let base64: [UInt8] =
        Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `prefix` followed by 16 characters of `[A-Z2-7]`, e.g. `AKIAIOSFODNN7EXAMPLE`.
    public static func accessKeyID(prefix: String = longTermPrefix) -> String {
        var generator = SystemRandomNumberGenerator()
        return accessKeyID(prefix: prefix, using: &generator)
    }

    /// 40 characters of `[A-Za-z0-9+/]`, like AWS secret access keys (240 bits).
    public static func secretAccessKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return secretAccessKey(using: &generator)
    }

    /// ``accessKeyID(prefix:)`` drawing from `generator` (tests pass a seeded one).
    public static func accessKeyID(prefix: String = longTermPrefix, using generator: inout some RandomNumberGenerator)
        -> String
    {
        // 256 is a multiple of 32 and of 64, so masking a uniform byte keeps the draw uniform.
        prefix + draw(16, from: base32, mask: 31, using: &generator)
    }

    /// ``secretAccessKey()`` drawing from `generator`.
    public static func secretAccessKey(using generator: inout some RandomNumberGenerator) -> String {
        draw(40, from: base64, mask: 63, using: &generator)
    }

    /// Whether `id` has the shape this generator produces (`AKIA`/`ASIA` and 16 base32 characters).
    public static func isWellFormedAccessKeyID(_ id: String) -> Bool {
        let utf8 = Array(id.utf8)
        guard utf8.count == 20, id.hasPrefix(longTermPrefix) || id.hasPrefix(temporaryPrefix) else { return false }
        return utf8[4...].allSatisfy(base32.contains)
    }

    private static func draw(
        _ count: Int, from alphabet: [UInt8], mask: UInt8, using generator: inout some RandomNumberGenerator
    ) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(count)
        while out.count < count {
            var word = generator.next()
            for _ in 0..<8 where out.count < count {
                out.append(alphabet[Int(UInt8(truncatingIfNeeded: word) & mask)])
                word >>= 8
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
