import Foundation
import Testing
@testable import BerthAuth

/// The constants of the AWS Signature Version 4 test suite.
enum AWSTestSuite {
    static let accessKeyID = "AKIDEXAMPLE"
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    static let region = "us-east-1"
    static let service = "service"
    static let amzDate = "20150830T123600Z"
    /// 2015-08-30T12:36:00Z.
    static let date = Date(timeIntervalSince1970: 1_440_938_160)
    static let host = "example.amazonaws.com"

    static let verifier = SigV4Verifier(region: region, services: [service])
    static let signer = SigV4Signer(accessKeyID: accessKeyID, secretAccessKey: secret, region: region, service: service)

    static func credentials(token: String? = nil) -> (String) async throws -> SigV4Credential? {
        { id in id == accessKeyID ? SigV4Credential(secretAccessKey: secret, sessionToken: token) : nil }
    }
}

/// One `header-signed-request.txt` of the official suite.
///
/// Source: the AWS SigV4 test suite as kept in awslabs/aws-c-auth, `tests/aws-signing-test-suite/v4/<name>/`
/// (the suite formerly published at docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html).
/// Signatures are copied verbatim; the obs-folded `get-header-value-multiline` lines are given as the repeated
/// fields an HTTP server presents them as. Each was cross-checked with botocore (scripts/botocore_reference.py).
struct HeaderVector: Sendable, CustomTestStringConvertible {
    var name: String
    var method: String = "GET"
    var path: String = "/"
    var query: String? = nil
    var headers: [(name: String, value: String)] = []
    var body: String = ""
    var sessionToken: String? = nil
    var signature: String
    var signedHeaders: String = "host;x-amz-date"
    /// False for the `-unnormalized` vectors: they sign the path as sent, which only the verifier accepts.
    var signerReproduces = true

    var testDescription: String { name }

    var authorization: String {
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
            + "SignedHeaders=\(signedHeaders), Signature=\(signature)"
    }

    /// The request before signing: `Host`, the vector's own headers, in order.
    var unsignedRequest: SigV4Request {
        SigV4Request(method: method, path: path, query: query, headers: [("Host", AWSTestSuite.host)] + headers,
                     payload: .hashing(Array(body.utf8)))
    }

    /// The request as received, signed.
    var signedRequest: SigV4Request {
        var request = unsignedRequest
        request.headers.append(("X-Amz-Date", AWSTestSuite.amzDate))
        if let sessionToken { request.headers.append(("X-Amz-Security-Token", sessionToken)) }
        request.headers.append(("Authorization", authorization))
        return request
    }
}

let stsToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

let headerVectors: [HeaderVector] = [
    HeaderVector(name: "get-vanilla-query",
                 signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    HeaderVector(name: "get-header-key-duplicate",
                 headers: [("My-Header1", "value2"), ("My-Header1", "value2"), ("My-Header1", "value1")],
                 signature: "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
                 signedHeaders: "host;my-header1;x-amz-date"),
    HeaderVector(name: "get-header-value-multiline",
                 headers: [("My-Header1", "value1"), ("My-Header1", "value2"), ("My-Header1", "value3")],
                 signature: "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790",
                 signedHeaders: "host;my-header1;x-amz-date"),
    HeaderVector(name: "get-header-value-order",
                 headers: [("My-Header1", "value4"), ("My-Header1", "value1"), ("My-Header1", "value3"),
                           ("My-Header1", "value2")],
                 signature: "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
                 signedHeaders: "host;my-header1;x-amz-date"),
    HeaderVector(name: "get-header-value-trim",
                 headers: [("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
                 signature: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
                 signedHeaders: "host;my-header1;my-header2;x-amz-date"),
    HeaderVector(name: "get-vanilla-query-order-key-case", query: "Param2=value2&Param1=value1",
                 signature: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    HeaderVector(name: "get-vanilla-query-unreserved",
                 query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz="
                     + "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                 signature: "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"),
    HeaderVector(name: "get-vanilla-utf8-query", query: "ሴ=bar",
                 signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
    // The same request as a client puts it on the wire: the query percent-encoded.
    HeaderVector(name: "get-vanilla-utf8-query (encoded on the wire)", query: "%E1%88%B4=bar",
                 signature: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"),
    HeaderVector(name: "get-vanilla-empty-query-key", query: "Param1=value1",
                 signature: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"),
    HeaderVector(name: "get-unreserved", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
                 signature: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"),
    HeaderVector(name: "get-utf8", path: "/ሴ",
                 signature: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    HeaderVector(name: "get-space-normalized", path: "/example space/",
                 signature: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"),
    HeaderVector(name: "get-slash-normalized", path: "//",
                 signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    HeaderVector(name: "get-slash-unnormalized", path: "//",
                 signature: "c88bcd3d312d75078c0cd961d6deae3f4c754924b01669efcfcb439fd5e5b76e",
                 signerReproduces: false),
    HeaderVector(name: "get-slashes-normalized", path: "//example//",
                 signature: "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"),
    HeaderVector(name: "get-slashes-unnormalized", path: "//example//",
                 signature: "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5",
                 signerReproduces: false),
    HeaderVector(name: "get-slash-dot-slash-normalized", path: "/./",
                 signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    HeaderVector(name: "get-slash-pointless-dot-normalized", path: "/./example",
                 signature: "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"),
    HeaderVector(name: "get-relative-normalized", path: "/example/..",
                 signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    HeaderVector(name: "get-relative-relative-normalized", path: "/example1/example2/../..",
                 signature: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    HeaderVector(name: "get-vanilla-with-session-token",
                 sessionToken: "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
                 signature: "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
                 signedHeaders: "host;x-amz-date;x-amz-security-token"),
    HeaderVector(name: "post-vanilla", method: "POST",
                 signature: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    HeaderVector(name: "post-vanilla-query", method: "POST", query: "Param1=value1",
                 signature: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"),
    HeaderVector(name: "post-header-key-sort", method: "POST", headers: [("My-Header1", "value1")],
                 signature: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
                 signedHeaders: "host;my-header1;x-amz-date"),
    HeaderVector(name: "post-x-www-form-urlencoded", method: "POST",
                 headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Content-Length", "13"),
                           ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
                 body: "Param1=value1",
                 signature: "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
                 signedHeaders: "content-length;content-type;host;x-amz-content-sha256;x-amz-date"),
    HeaderVector(name: "post-x-www-form-urlencoded-parameters", method: "POST",
                 headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"),
                           ("Content-Length", "13"),
                           ("x-amz-content-sha256", "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e")],
                 body: "Param1=value1",
                 signature: "328d1b9eaadca9f5818ef05e8392801e091653bafec24fcab71e7344e7f51422",
                 signedHeaders: "content-length;content-type;host;x-amz-content-sha256;x-amz-date"),
    HeaderVector(name: "post-sts-header-before", method: "POST", sessionToken: stsToken,
                 signature: "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
                 signedHeaders: "host;x-amz-date;x-amz-security-token"),
]

/// One `query-signed-request.txt` of the official suite (presigned, `X-Amz-Expires=3600`, the empty body's hash
/// as payload), from the same aws-c-auth directory.
struct PresignedVector: Sendable, CustomTestStringConvertible {
    var name: String
    var path: String = "/"
    var query: String
    var headers: [(name: String, value: String)] = []
    var signature: String

    var testDescription: String { name }

    var signedRequest: SigV4Request {
        SigV4Request(method: "GET", path: path, query: query + "&X-Amz-Signature=" + signature,
                     headers: [("Host", AWSTestSuite.host)] + headers + [("X-Amz-Date", AWSTestSuite.amzDate)],
                     payload: .sha256Hex(SigV4Payload.emptySHA256Hex))
    }
}

private let presignedAuth = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z"

let presignedVectors: [PresignedVector] = [
    PresignedVector(name: "get-header-value-multiline (query)",
                    query: presignedAuth + "&X-Amz-SignedHeaders=host%3Bmy-header1&X-Amz-Expires=3600",
                    headers: [("My-Header1", "value1"), ("My-Header1", "value2"), ("My-Header1", "value3")],
                    signature: "07f38a7bae261a5b2eec137361e6403c191bbf8e3f75466bb8114a08acd99936"),
    PresignedVector(name: "get-vanilla-query-order-key-case (query)",
                    query: "Param2=value2&Param1=value1&" + presignedAuth + "&X-Amz-SignedHeaders=host&X-Amz-Expires=3600",
                    signature: "86012e2c9ad4d77369f5d81c11f75158aae4f895a085212cc6d3f923d300bed5"),
    PresignedVector(name: "get-vanilla-utf8-query (query)",
                    query: "ሴ=bar&" + presignedAuth + "&X-Amz-SignedHeaders=host&X-Amz-Expires=3600",
                    signature: "0bdd809b1519ac4f0c1dc3540e2cc46bd0c7f778eda408b2ebf3b913d21ff600"),
]
