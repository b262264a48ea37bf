import BerthApp
import BerthStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// The Query door lets exactly one STS action in without a signature: AssumeRoleWithWebIdentity.
@Suite struct WebIdentityHTTPTests {
    func app() async throws -> some ApplicationProtocol {
        buildApplication(try await inMemoryServices { $0.oidcJwksDirectory = noJWKSDirectory() })
    }

    func post(_ client: some TestClientProtocol, _ body: String) async throws -> (HTTPResponse.Status, String) {
        try await client.execute(uri: "/", method: .post, headers: [.contentType: "application/x-www-form-urlencoded; charset=utf-8"],
                                 body: ByteBuffer(string: body)) { r in (r.status, String(buffer: r.body)) }
    }

    @Test func onlyAssumeRoleWithWebIdentityIsUnsigned() async throws {
        let app = try await app()
        try await app.test(.router) { client in
            let (status, body) = try await post(client, "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A000000000000%3Arole%2Fci&RoleSessionName=s1&WebIdentityToken=not.a.jwt")
            #expect(status == .badRequest)
            #expect(body.contains("<Code>InvalidIdentityToken</Code>"), "\(body)")
            #expect(body.hasPrefix(#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#))
            let (s2, b2) = try await post(client, "Action=GetCallerIdentity&Version=2011-06-15")
            #expect(s2 == .forbidden)
            #expect(b2.contains("<Code>MissingAuthenticationToken</Code>"), "\(b2)")
            let (s3, b3) = try await post(client, "Action=ListOpenIDConnectProviders&Version=2010-05-08")
            #expect(s3 == .forbidden && b3.contains("<Code>MissingAuthenticationToken</Code>"), "\(b3)")
        }
    }
}
