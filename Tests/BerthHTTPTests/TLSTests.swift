import BerthApp
import Crypto
import Foundation
import Logging
import SwiftASN1
import Testing
import X509

/// The TLS settings, `berth admin tls-init`'s certificates and the certificate reload.
@Suite struct TLSTests {
    func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-tls-\(UUID())").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func certificate(_ path: String) throws -> Certificate {
        try Certificate(pemEncoded: try String(contentsOfFile: path, encoding: .utf8))
    }

    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    /// Validates `leaf` against `ca` as a TLS client connecting to `host` (a name) or `ip` would.
    func verify(_ leaf: Certificate, ca: Certificate, host: String? = nil, ip: String? = nil) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([ca])) {
            RFC5280Policy(validationTime: Date())
            ServerIdentityPolicy(serverHostname: host, serverIP: ip)
        }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore()) { return true }
        return false
    }

    @Test func tlsInitMakesACAAndAServerCertificateThatChainsToIt() async throws {
        let dir = try directory()
        let outcome = try LocalTLSAuthority.run(hosts: ["registry.example.test", "10.1.2.3", "::1"], directory: dir)
        #expect(outcome.createdCA)
        let f = outcome.files
        let ca = try certificate(f.caCertificate)
        let server = try certificate(f.serverCertificate)
        #expect(try mode(f.caKey) == 0o600)
        #expect(try mode(f.serverKey) == 0o600)
        #expect(try mode(f.serverCertificate) == 0o644)
        #expect(try String(contentsOfFile: "\(f.trustDirectory)/ca.crt", encoding: .utf8)
                == String(contentsOfFile: f.caCertificate, encoding: .utf8))
        // Only the CA certificate in the trust directory: skopeo reads any *.key there as a client key.
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.trustDirectory) == ["ca.crt"])

        #expect(try ca.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        #expect(server.issuer == ca.subject)
        let names = try #require(try server.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("registry.example.test")))
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [10, 1, 2, 3]))))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))))
        #expect(names.count == 5)
        #expect(try server.extensions.extendedKeyUsage?.contains(.serverAuth) == true)

        #expect(await verify(server, ca: ca, host: "registry.example.test"))
        #expect(await verify(server, ca: ca, host: "localhost"))
        #expect(await verify(server, ca: ca, ip: "10.1.2.3"))
        #expect(await verify(server, ca: ca, ip: "127.0.0.1"))
        #expect(!(await verify(server, ca: ca, host: "other.example.test")))
        let stranger = try LocalTLSAuthority.run(hosts: ["registry.example.test"], directory: try directory())
        #expect(!(await verify(server, ca: try certificate(stranger.files.caCertificate), host: "localhost")))

        // The server key belongs to the certificate, and the pair loads as the server would load it.
        let bundle = try TLSCertificateBundle.load(certificateFile: f.serverCertificate, keyFile: f.serverKey)
        #expect(bundle.leaf.serialNumber == server.serialNumber)
    }

    @Test func tlsInitReusesItsCAAndIssuesANewServerCertificate() async throws {
        let dir = try directory()
        let first = try LocalTLSAuthority.run(hosts: ["a.test"], directory: dir)
        let caPEM = try String(contentsOfFile: first.files.caCertificate, encoding: .utf8)
        let second = try LocalTLSAuthority.run(hosts: ["b.test"], directory: dir)
        #expect(!second.createdCA)
        #expect(try String(contentsOfFile: first.files.caCertificate, encoding: .utf8) == caPEM)
        #expect(second.server.serialNumber != first.server.serialNumber)
        let ca = try certificate(first.files.caCertificate)
        #expect(await verify(try certificate(second.files.serverCertificate), ca: ca, host: "b.test"))
        #expect(LocalTLSAuthority.instructions(second, port: 5443).contains("--ca-bundle \(dir)/ca.crt"))
    }

    @Test func tlsInitRefusesBadHostsAndAHalfCA() throws {
        #expect(throws: LocalTLSAuthority.InitError.self) { try LocalTLSAuthority.run(hosts: ["bad host"], directory: try directory()) }
        #expect(throws: LocalTLSAuthority.InitError.self) { try LocalTLSAuthority.run(hosts: ["a/b"], directory: try directory()) }
        let dir = try directory()
        let o = try LocalTLSAuthority.run(hosts: [], directory: dir)
        try FileManager.default.removeItem(atPath: o.files.caKey)
        #expect(throws: LocalTLSAuthority.InitError.self) { try LocalTLSAuthority.run(hosts: [], directory: dir) }
    }

    @Test func settingsNeedBothFilesAndCheckThem() throws {
        let dir = try directory()
        let f = try LocalTLSAuthority.run(hosts: [], directory: dir).files
        func problems(_ env: [String: String]) -> String? {
            do {
                _ = try BerthConfiguration.load(file: nil, environment: env)
                return nil
            } catch let e as ConfigurationError {
                return e.description
            } catch {
                return "\(error)"
            }
        }
        #expect(problems(["BERTH_TLS_CERTIFICATE_FILE": f.serverCertificate])?.contains("must be given together") == true)
        #expect(problems(["BERTH_TLS_KEY_FILE": f.serverKey])?.contains("must be given together") == true)
        #expect(problems(["BERTH_TLS_CERTIFICATE_FILE": "\(dir)/missing.crt", "BERTH_TLS_KEY_FILE": f.serverKey])?
            .contains("cannot read the TLS certificate file \(dir)/missing.crt") == true)
        try "not a certificate\n".write(toFile: "\(dir)/junk.crt", atomically: true, encoding: .utf8)
        #expect(problems(["BERTH_TLS_CERTIFICATE_FILE": "\(dir)/junk.crt", "BERTH_TLS_KEY_FILE": f.serverKey])?
            .contains("junk.crt") == true)
        // The CA's key is a valid key, but not the server certificate's.
        #expect(problems(["BERTH_TLS_CERTIFICATE_FILE": f.serverCertificate, "BERTH_TLS_KEY_FILE": f.caKey])?
            .contains("does not belong to the first certificate") == true)
        #expect(problems(["BERTH_TLS_CERTIFICATE_FILE": f.serverCertificate, "BERTH_TLS_KEY_FILE": f.serverCertificate])?
            .contains("is not a PEM private key") == true)

        let c = try BerthConfiguration.load(file: nil, environment: [
            "BERTH_TLS_CERTIFICATE_FILE": f.serverCertificate, "BERTH_TLS_KEY_FILE": f.serverKey, "BERTH_PORT": "5443",
        ])
        #expect(c.servesTLS)
        #expect(c.effectivePublicEndpoint == "https://127.0.0.1:5443")
        // A given endpoint (a proxy in front, say) wins; flags win over the environment.
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-\(UUID()).json").path
        try #"{"tlsCertificateFile": "/nowhere.crt", "tlsKeyFile": "/nowhere.key", "publicEndpoint": "https://registry.example.test"}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        let flagged = try BerthConfiguration.load(file: path, environment: [:],
                                                  overrides: .init(tlsCertificateFile: f.serverCertificate, tlsKeyFile: f.serverKey))
        #expect(flagged.tlsCertificateFile == f.serverCertificate && flagged.tlsKeyFile == f.serverKey)
        #expect(flagged.effectivePublicEndpoint == "https://registry.example.test")
        #expect(!(try BerthConfiguration.load(file: nil, environment: [:])).servesTLS)
    }

    @Test func reloadInstallsNewValidFilesAndKeepsTheOldOnBadOnes() throws {
        let dir = try directory()
        let first = try LocalTLSAuthority.run(hosts: ["a.test"], directory: dir)
        let f = first.files
        let server = try ReloadableTLSServer(certificateFile: f.serverCertificate, keyFile: f.serverKey)
        let logger = Logger(label: "test")
        #expect(server.current.leaf.serialNumber == first.server.serialNumber)
        #expect(server.reload(onlyIfChanged: true, logger: logger) == .unchanged)

        let second = try LocalTLSAuthority.run(hosts: ["a.test"], directory: dir)
        #expect(server.reload(onlyIfChanged: true, logger: logger) == .reloaded)
        #expect(server.current.leaf.serialNumber == second.server.serialNumber)
        #expect(server.reload(onlyIfChanged: true, logger: logger) == .unchanged)
        // SIGHUP reloads even unchanged files.
        #expect(server.reload(onlyIfChanged: false, logger: logger) == .reloaded)

        // A certificate whose key is not the key file's: refused, the previous pair stays, and the
        // poll does not retry (nor log again) until the files change once more.
        let other = try LocalTLSAuthority.run(hosts: ["a.test"], directory: try directory())
        try FileManager.default.removeItem(atPath: f.serverCertificate)
        try FileManager.default.copyItem(atPath: other.files.serverCertificate, toPath: f.serverCertificate)
        guard case .failed(let why) = server.reload(onlyIfChanged: true, logger: logger) else {
            Issue.record("a mismatched pair was installed")
            return
        }
        #expect(why.contains("does not belong"))
        #expect(server.current.leaf.serialNumber == second.server.serialNumber)
        #expect(server.reload(onlyIfChanged: true, logger: logger) == .unchanged)

        try "garbage".write(toFile: f.serverKey, atomically: true, encoding: .utf8)
        guard case .failed = server.reload(onlyIfChanged: false, logger: logger) else {
            Issue.record("a garbage key was installed")
            return
        }
        #expect(server.current.leaf.serialNumber == second.server.serialNumber)

        let third = try LocalTLSAuthority.run(hosts: ["a.test"], directory: dir)
        #expect(server.reload(onlyIfChanged: true, logger: logger) == .reloaded)
        #expect(server.current.leaf.serialNumber == third.server.serialNumber)
    }
}
