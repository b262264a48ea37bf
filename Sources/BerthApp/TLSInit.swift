import Crypto
import Foundation
import SwiftASN1
import X509

/// `berth admin tls-init`: a local certificate authority and a server certificate it signed, for a
/// first HTTPS setup without a public CA. The CA is made once per directory and reused by later runs,
/// which issue a new server certificate (a rotation clients need not notice: they trust the CA).
public struct LocalTLSAuthority {
    /// The files, all PEM, in one directory.
    public struct Files: Sendable {
        public let directory: String
        public var caCertificate: String { "\(directory)/ca.crt" }
        public var caKey: String { "\(directory)/ca.key" }
        public var serverCertificate: String { "\(directory)/server.crt" }
        public var serverKey: String { "\(directory)/server.key" }
        /// A directory holding only `ca.crt`: what skopeo's `--cert-dir` and docker's `certs.d/<host:port>`
        /// want (they read every `*.key` there as a client key, so the keys must live elsewhere).
        public var trustDirectory: String { "\(directory)/trust" }

        public init(directory: String) {
            var d = directory
            while d.count > 1 && d.hasSuffix("/") { d.removeLast() }
            self.directory = d
        }
    }

    public struct Outcome: Sendable {
        public let files: Files
        public let createdCA: Bool
        public let server: Certificate
        public let hosts: [String]
    }

    public struct InitError: Error, CustomStringConvertible {
        public let description: String
    }

    /// How long the server certificate is valid: 397 days, the most browsers and Apple's clients accept.
    static let serverValidity: TimeInterval = 397 * 86_400
    static let caValidity: TimeInterval = 10 * 366 * 86_400

    /// Makes (or reuses) the CA in `directory` and issues a server certificate for `hosts` (DNS names and
    /// IP addresses) plus `localhost` and `127.0.0.1`. Keys are written mode 0600, certificates 0644,
    /// each by a rename so a running server never reads half a file.
    public static func run(hosts given: [String], directory: String, now: Date = Date()) throws -> Outcome {
        let files = Files(directory: directory)
        var hosts: [String] = []
        for h in given + ["localhost", "127.0.0.1"] {
            let name = h.hasPrefix("[") && h.hasSuffix("]") ? String(h.dropFirst().dropLast()) : h
            guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == "/" || $0 == ":" && ipBytes(name) == nil })
            else { throw InitError(description: "not a host name or IP address: \(h)") }
            if !hosts.contains(name.lowercased()) { hosts.append(name.lowercased()) }
        }
        try FileManager.default.createDirectory(atPath: files.trustDirectory, withIntermediateDirectories: true)
        let fm = FileManager.default
        let caCertificate: Certificate
        let caKey: Certificate.PrivateKey
        let createdCA: Bool
        switch (fm.fileExists(atPath: files.caCertificate), fm.fileExists(atPath: files.caKey)) {
        case (true, true):
            do {
                caCertificate = try Certificate(pemEncoded: try String(contentsOfFile: files.caCertificate, encoding: .utf8))
                caKey = try Certificate.PrivateKey(pemEncoded: try String(contentsOfFile: files.caKey, encoding: .utf8))
            } catch {
                throw InitError(description: "cannot reuse the CA in \(files.directory): \(error)")
            }
            guard caKey.publicKey == caCertificate.publicKey else {
                throw InitError(description: "\(files.caKey) is not the key of \(files.caCertificate)")
            }
            createdCA = false
        case (false, false):
            let key = P256.Signing.PrivateKey()
            caKey = Certificate.PrivateKey(key)
            let name = try DistinguishedName {
                OrganizationName("Berth")
                CommonName("Berth local CA \(String(UInt32.random(in: 0...UInt32.max), radix: 16))")
            }
            caCertificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: caKey.publicKey,
                notValidBefore: now - 300, notValidAfter: now + caValidity, issuer: name, subject: name,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: caKey.publicKey)
                },
                issuerPrivateKey: caKey)
            try write(key.pemRepresentation, to: files.caKey, mode: 0o600)
            try write(try caCertificate.serializeAsPEM().pemString, to: files.caCertificate, mode: 0o644)
            createdCA = true
        default:
            throw InitError(description: "\(files.directory) has only one of ca.crt and ca.key; remove it or restore the other")
        }
        try write(try caCertificate.serializeAsPEM().pemString, to: "\(files.trustDirectory)/ca.crt", mode: 0o644)

        let serverKey = P256.Signing.PrivateKey()
        let serverPublic = Certificate.PublicKey(serverKey.publicKey)
        let names: [GeneralName] = hosts.map { host in
            if let ip = ipBytes(host) { return .ipAddress(ASN1OctetString(contentBytes: ip[...])) }
            return .dnsName(host)
        }
        let caSKI = try caCertificate.extensions.subjectKeyIdentifier?.keyIdentifier
            ?? SubjectKeyIdentifier(hash: caCertificate.publicKey).keyIdentifier
        let server = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: serverPublic,
            notValidBefore: now - 300, notValidAfter: min(now + serverValidity, caCertificate.notValidAfter),
            issuer: caCertificate.subject,
            subject: try DistinguishedName {
                OrganizationName("Berth")
                CommonName(hosts[0])
            },
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: serverPublic)
                AuthorityKeyIdentifier(keyIdentifier: caSKI)
            },
            issuerPrivateKey: caKey)
        // Key first: a server polling the files sees a new key with the old certificate (refused, kept
        // the old pair) for at most a moment, never a certificate whose key is not yet there.
        try write(serverKey.pemRepresentation, to: files.serverKey, mode: 0o600)
        try write(try server.serializeAsPEM().pemString, to: files.serverCertificate, mode: 0o644)
        return Outcome(files: files, createdCA: createdCA, server: server, hosts: hosts)
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address, nil for anything else.
    static func ipBytes(_ s: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, s, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, s, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    /// Writes `text` to a new file beside `path` with `mode`, then renames it over `path`.
    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw InitError(description: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Foundation.write(fd, $0.baseAddress! + written, bytes.count - written) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw InitError(description: "cannot write \(temporary): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        // The mode given to open is narrowed by the umask; set it exactly.
        fchmod(fd, mode)
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw InitError(description: "cannot rename \(temporary) to \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// What to do next: the settings to set and how each client trusts the CA.
    public static func instructions(_ o: Outcome, port: Int) -> String {
        let f = o.files
        let host = o.hosts[0]
        let hostPort = "\(host.contains(":") ? "[\(host)]" : host):\(port)"
        return """
        \(o.createdCA ? "Created a local CA" : "Reused the local CA") and issued a server certificate (serial \(o.server.serialNumber), valid until \(o.server.notValidAfter)) for: \(o.hosts.joined(separator: ", "))

          \(f.caCertificate)       the CA certificate: what clients trust
          \(f.caKey)       the CA key (0600): keep it private; tls-init reuses it to issue the next server certificate
          \(f.serverCertificate)   the server certificate
          \(f.serverKey)   the server key (0600)
          \(f.trustDirectory)/ca.crt  a copy of the CA certificate alone, for --cert-dir and certs.d

        Serve HTTPS (a running server picks up new files on SIGHUP or within seconds):
          berth serve --tls-certificate-file \(f.serverCertificate) --tls-key-file \(f.serverKey)
          or BERTH_TLS_CERTIFICATE_FILE=\(f.serverCertificate) BERTH_TLS_KEY_FILE=\(f.serverKey)
          or "tlsCertificateFile" / "tlsKeyFile" in the config file

        Trust the CA:
          skopeo:   skopeo copy --dest-cert-dir \(f.trustDirectory) … docker://\(hostPort)/…   (--src-cert-dir when pulling; --cert-dir for login/inspect)
          podman:   sudo mkdir -p /etc/containers/certs.d/\(hostPort) && sudo cp \(f.caCertificate) /etc/containers/certs.d/\(hostPort)/ca.crt
                    (or podman login/push/pull --cert-dir \(f.trustDirectory))
          docker:   sudo mkdir -p /etc/docker/certs.d/\(hostPort) && sudo cp \(f.caCertificate) /etc/docker/certs.d/\(hostPort)/ca.crt
          aws CLI:  aws ecr … --endpoint-url https://\(hostPort) --ca-bundle \(f.caCertificate)   (or AWS_CA_BUNDLE=\(f.caCertificate))
          oras:     oras push/pull --ca-file \(f.caCertificate) \(hostPort)/…
          boto3:    boto3.client("ecr", endpoint_url="https://\(hostPort)", verify="\(f.caCertificate)")
          curl:     curl --cacert \(f.caCertificate) https://\(hostPort)/v2/
        """
    }
}
