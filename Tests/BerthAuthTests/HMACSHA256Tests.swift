import Crypto
import Testing
@testable import BerthAuth

@Suite struct HMACSHA256Tests {
    /// RFC 4231 test cases 1, 2 and 6 (the last with a key longer than the block).
    @Test(arguments: [
        ([UInt8](repeating: 0x0B, count: 20), "Hi There",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), "what do ya want for nothing?",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ([UInt8](repeating: 0xAA, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
    ])
    func rfc4231(key: [UInt8], message: String, expected: String) {
        #expect(Bytes.hex(HMACSHA256.authenticationCode(key: key, message: Array(message.utf8))) == expected)
    }

    @Test func agreesWithCryptoHMAC() {
        var generator = SystemRandomNumberGenerator()
        for keyLength in [0, 1, 31, 32, 44, 63, 64, 65, 128, 200] {
            for messageLength in [0, 1, 55, 56, 64, 100, 1000] {
                let key = (0..<keyLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let message = (0..<messageLength).map { _ in UInt8.random(in: 0...255, using: &generator) }
                let reference = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
                #expect(HMACSHA256.authenticationCode(key: key, message: message) == Array(reference))
            }
        }
        #expect(HMACSHA256.digest([]) == Array(SHA256.hash(data: [UInt8]())))
    }
}
