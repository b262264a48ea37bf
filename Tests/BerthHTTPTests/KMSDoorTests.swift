import BerthApp
import BerthAuth
import BerthHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// KMS on the AWS JSON door: `TrentService.*` targets, SigV4 for service `kms`, the door's own label.
@Suite struct KMSDoorTests {
    static let id = "AKIAIOSFODNN7EXAMPLE"
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    /// The headers of a signed `POST /`. The host is signed (the verifier requires it) as the router
    /// test framework sends it: the request's authority `localhost`, not a header field.
    func headers(_ operation: String, _ body: String, service: String = "kms") -> HTTPFields {
        let base: [(name: String, value: String)] = [
            ("host", "localhost"), ("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "TrentService.\(operation)"),
        ]
        let request = SigV4Request(method: "POST", path: "/", headers: base, payload: .hashing(Array(body.utf8)))
        let signed = SigV4Signer(accessKeyID: Self.id, secretAccessKey: Self.secret, region: "us-east-1", service: service)
            .sign(request, date: Date()).applied(to: request)
        var fields = HTTPFields()
        for (name, value) in signed.headers where name != "host" { fields.append(HTTPField(name: HTTPField.Name(name)!, value: value)) }
        return fields
    }

    @Test func trentServiceTargetsReachKMS() async throws {
        let services = try await inMemoryServices()
        try await buildApplication(services).test(.router) { client in
            let body = #"{"Description":"door"}"#
            let keyID: String = try await client.execute(uri: "/", method: .post, headers: headers("CreateKey", body),
                                                         body: ByteBuffer(string: body)) { r in
                #expect(r.status == .ok)
                #expect(r.headers[.contentType] == "application/x-amz-json-1.1")
                let text = String(buffer: r.body)
                #expect(text.contains(#""KeySpec":"SYMMETRIC_DEFAULT""#), "\(text)")
                let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                return ((object?["KeyMetadata"] as? [String: Any])?["KeyId"] as? String) ?? ""
            }
            #expect(try await services.keys.keyState(keyID, account: services.config.accountId) == .enabled)

            // Signed for another service: refused by the door before KMS runs, with the SigV4 error type.
            let describe = #"{"KeyId":"\#(keyID)"}"#
            try await client.execute(uri: "/", method: .post, headers: headers("DescribeKey", describe, service: "ecr"),
                                     body: ByteBuffer(string: describe)) { r in
                #expect(r.status.code >= 400 && r.status.code < 500)
                #expect(r.headers[HTTPField.Name("x-amzn-ErrorType")!] != nil)
            }
            // Unsigned.
            try await client.execute(uri: "/", method: .post, headers: [HTTPField.Name("X-Amz-Target")!: "TrentService.ListKeys"],
                                     body: ByteBuffer(string: "{}")) { r in
                #expect(r.status.code == 400 || r.status.code == 403)
                #expect(String(buffer: r.body).contains("MissingAuthenticationToken"))
            }
            // An operation KMS does not have.
            try await client.execute(uri: "/", method: .post, headers: headers("Sign", "{}"), body: ByteBuffer(string: "{}")) { r in
                #expect(r.status == .badRequest)
                #expect(r.headers[HTTPField.Name("x-amzn-ErrorType")!] == "UnknownOperationException")
            }
            try await client.execute(uri: "/metrics", method: .get) { r in
                let text = String(buffer: r.body)
                #expect(text.contains(#"berth_http_requests_total{door="kms",operation="CreateKey",status="200"}"#), "\(text)")
                #expect(text.contains(#"door="kms",operation="unknown""#))
            }
        }
    }
}
