import BerthAuth
import Foundation
import Testing

/// The signer in S3's dialect (what the S3 blob store sends): the path is signed as sent, encoded once.
@Suite struct SigV4S3SignerTests {
    let signer = SigV4Signer(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                             region: "us-east-1", service: "s3")
    let date = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z

    /// AWS's documented example "GET Object" (Amazon S3 API Reference, Signature Version 4, header-based auth).
    @Test func matchesTheDocumentedGetObjectExample() {
        let request = SigV4Request(
            method: "GET", path: "/test.txt",
            headers: [("Host", "examplebucket.s3.amazonaws.com"), ("Range", "bytes=0-9"),
                      ("x-amz-content-sha256", SigV4Payload.emptySHA256Hex)],
            payload: .unavailable)
        let signed = signer.sign(request, date: date)
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(signed.authorization.contains("SignedHeaders=host;range;x-amz-content-sha256;x-amz-date"))
    }

    /// A percent-encoded key is signed as sent, not encoded a second time as other services' paths are
    /// (expected value from an independent HMAC computation of the canonical request).
    @Test func encodedKeysAreSignedOnce() {
        let request = SigV4Request(method: "PUT", path: "/bucket/a%20b/c%2Bd.txt", headers: [("host", "127.0.0.1:9000")],
                                   payload: .unavailable)
        let signed = signer.sign(request, date: date)
        #expect(signed.canonicalRequest.hasPrefix("PUT\n/bucket/a%20b/c%2Bd.txt\n"))
        #expect(signed.signature == "80a362425bc24a5fa54d70fa1166636a65fad4d9514ba00d4841c12746ed732f")
    }
}
