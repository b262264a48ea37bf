import BerthApp
import BerthAuth
import BerthCore
import BerthHTTP
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Logging
import Testing

/// A deactivated or deleted access key stops working on the very next request: its SigV4 signatures
/// and the registry tokens made from it. The clock never moves here, so a cache that relied on its
/// age alone would still accept the key.
@Suite struct KeyRevocationTests {
    let clock = ManualWallClock(1_700_000_000)
    static let id = "AKIAIOSFODNN7EXAMPLE"
    static let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

    func services() async throws -> BerthServices {
        var config = BerthConfiguration()
        config.metadataBackend = "memory"
        config.blobBackend = "memory"
        config.rootAccessKeyId = Self.id
        config.rootSecretAccessKey = Self.secret
        let s = try BerthServices.make(config, storage: StorageBackends(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore()),
                                       clock: clock)
        try await s.bootstrap(logger: Logger(label: "test"))
        return s
    }

    func signed() -> SigV4Request {
        let body = Array("{}".utf8)
        let request = SigV4Request(method: "POST", path: "/", headers: [("host", "127.0.0.1:5000"),
                                   ("content-type", "application/x-amz-json-1.1")], payload: .hashing(body))
        let signer = SigV4Signer(accessKeyID: Self.id, secretAccessKey: Self.secret, region: "us-east-1", service: "ecr")
        return signer.sign(request, date: Date(timeIntervalSince1970: clock.now())).applied(to: request)
    }

    @Test func deactivatedAndDeletedKeysStopAtOnce() async throws {
        let s = try await services()
        let directory = s.directory
        let p = try await s.identity.authenticate(signed(), service: "ecr")
        let basic = "Basic " + Data("AWS:\(try s.identity.issueToken(for: p, now: clock.now()).token)".utf8).base64EncodedString()
        #expect(try await s.identity.authenticate(basic: basic)?.arn == p.arn)

        try await directory.setAccessKeyStatus(Self.id, .inactive)
        await #expect(throws: SigV4Error.self) { try await s.identity.authenticate(signed(), service: "ecr") }
        #expect(try await s.identity.authenticate(basic: basic) == nil)

        try await directory.setAccessKeyStatus(Self.id, .active)
        #expect(try await s.identity.authenticate(signed(), service: "ecr").arn == p.arn)
        #expect(try await s.identity.authenticate(basic: basic)?.arn == p.arn)

        try await directory.deleteAccessKey(Self.id)
        await #expect(throws: SigV4Error.self) { try await s.identity.authenticate(signed(), service: "ecr") }
        #expect(try await s.identity.authenticate(basic: basic) == nil)
    }
}
