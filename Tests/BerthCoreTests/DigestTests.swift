import BerthCore
import Testing

@Suite struct DigestTests {
    @Test func parsesSHA256() throws {
        let hex = String(repeating: "a", count: 64)
        let d = try Digest(parsing: "sha256:\(hex)")
        #expect(d.algorithm == .sha256)
        #expect(d.encoded == hex)
        #expect(d.description == "sha256:\(hex)")
    }

    @Test func parsesSHA512() throws {
        let d = try Digest(parsing: "sha512:" + String(repeating: "0", count: 128))
        #expect(d.algorithm == .sha512)
    }

    @Test(arguments: [
        "", "sha256", "sha256:", "sha256:abc", "md5:" + String(repeating: "a", count: 32),
        "sha256:" + String(repeating: "A", count: 64), "sha256:" + String(repeating: "g", count: 64),
        "sha256:" + String(repeating: "a", count: 65), "SHA256:" + String(repeating: "a", count: 64),
        "sha256:../../" + String(repeating: "a", count: 58), "sha512:" + String(repeating: "a", count: 64),
    ])
    func rejectsMalformed(_ s: String) {
        #expect(throws: BerthError.digestInvalid(s)) { try Digest(parsing: s) }
    }

    @Test func hashesKnownVectors() {
        #expect(Digest.sha256(of: Array("".utf8)).encoded == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(Digest.sha256(of: Array("abc".utf8)).encoded == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func incrementalHashMatchesOneShot() {
        let bytes = (0..<10_000).map { UInt8($0 % 251) }
        var h = DigestHasher()
        h.update(data: bytes[0..<3333])
        h.update(data: bytes[3333...])
        #expect(h.finalize() == Digest.sha256(of: bytes))
        var h512 = DigestHasher(.sha512)
        h512.update(data: Array("abc".utf8))
        #expect(h512.finalize().encoded.hasPrefix("ddaf35a193617aba"))
    }
}
