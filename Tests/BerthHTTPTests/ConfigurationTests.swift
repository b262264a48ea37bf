import BerthApp
import BerthCore
import BerthReplication
import BerthStorage
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@Suite struct ConfigurationTests {
    func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-\(UUID()).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func defaultsAreTheEmbeddedSetup() throws {
        let c = try BerthConfiguration.load(file: nil, environment: [:])
        #expect(c.dataDir == "./berth-data")
        #expect(c.host == "127.0.0.1")
        #expect(c.port == 5000)
        #expect(c.createOnPush)
        #expect(c.encryptBlobs)
        #expect(c.metadataBackend == "sqlite" && c.blobBackend == "filesystem")
        #expect(c.effectivePublicEndpoint == "http://127.0.0.1:5000")
        #expect(c.registryHost(account: "123456789012") == "127.0.0.1:5000")
    }

    @Test func precedenceIsFileThenEnvironmentThenFlags() throws {
        let path = try file(#"{"port": 6000, "host": "0.0.0.0", "dataDir": "/from/file", "region": "eu-west-1"}"#)
        let c = try BerthConfiguration.load(
            file: path, environment: ["BERTH_PORT": "7000", "BERTH_DATA_DIR": "/from/env"],
            overrides: .init(dataDir: "/from/flag"))
        #expect(c.host == "0.0.0.0")
        #expect(c.port == 7000)
        #expect(c.dataDir == "/from/flag")
        #expect(c.region == "eu-west-1")
    }

    @Test func registryDomainBuildsECRStyleHosts() throws {
        let c = try BerthConfiguration.load(
            file: nil, environment: ["BERTH_PUBLIC_ENDPOINT": "https://registry.example.com:8443", "BERTH_REGISTRY_DOMAIN": "example.com"])
        #expect(c.publicHost == "registry.example.com:8443")
        #expect(c.registryHost(account: "123456789012") == "123456789012.dkr.ecr.us-east-1.example.com:8443")
    }

    /// A URI never carries its scheme's default port (ECR's carry no port at all).
    @Test func defaultPortsAreDroppedFromEndpointsAndHosts() throws {
        let cases: [(endpoint: String, normalized: String, host: String, registryHost: String)] = [
            ("https://registry.example.com:443", "https://registry.example.com", "registry.example.com",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            ("https://registry.example.com:443/", "https://registry.example.com", "registry.example.com",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            ("http://registry.example.com:80", "http://registry.example.com", "registry.example.com",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            ("HTTPS://registry.example.com:443", "https://registry.example.com", "registry.example.com",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            // Not the scheme's default: kept.
            ("http://registry.example.com:443", "http://registry.example.com:443", "registry.example.com:443",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com:443"),
            ("https://registry.example.com:80", "https://registry.example.com:80", "registry.example.com:80",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com:80"),
            ("https://registry.example.com:8443", "https://registry.example.com:8443", "registry.example.com:8443",
             "123456789012.dkr.ecr.us-east-1.amazonaws.com:8443"),
            ("https://[::1]:443", "https://[::1]", "[::1]", "123456789012.dkr.ecr.us-east-1.amazonaws.com"),
            ("http://[::1]:5000", "http://[::1]:5000", "[::1]:5000", "123456789012.dkr.ecr.us-east-1.amazonaws.com:5000"),
        ]
        for c in cases {
            var config = BerthConfiguration()
            config.publicEndpoint = c.endpoint
            #expect(config.effectivePublicEndpoint == c.normalized, "\(c.endpoint)")
            #expect(config.publicHost == c.host, "\(c.endpoint)")
            #expect(config.registryHost(account: "123456789012") == c.host, "\(c.endpoint)")
            config.registryDomain = "amazonaws.com"
            #expect(config.registryHost(account: "123456789012") == c.registryHost, "\(c.endpoint)")
        }
        var local = BerthConfiguration()
        local.port = 80
        #expect(local.effectivePublicEndpoint == "http://127.0.0.1")
        #expect(local.publicHost == "127.0.0.1")
    }

    /// repositoryUri, proxyEndpoint and presigned layer URLs as the ECR API returns them, with the
    /// public endpoint `https://…:443`.
    @Test func ecrURIsCarryNoDefaultPort() async throws {
        var config = BerthConfiguration()
        config.metadataBackend = "memory"
        config.blobBackend = "memory"
        config.rootAccessKeyId = "AKIAIOSFODNN7EXAMPLE"
        config.rootSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        config.accountId = "123456789012"
        config.publicEndpoint = "https://registry.example.com:443"
        config.registryDomain = "amazonaws.com"
        let services = try BerthServices.make(
            config, storage: StorageBackends(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore()))
        try await services.bootstrap(logger: Logger(label: "test"))
        let root = Principal(accountID: config.accountId, arn: Principal.rootARN(config.accountId), accessKeyID: "AKIAIOSFODNN7EXAMPLE")
        func call(_ op: String, _ body: String, publicAPI: Bool = false) async throws -> [String: Any] {
            let service = publicAPI ? services.ecrPublic : services.ecr
            let r = await service.handle(target: service.prefix + op, body: Array(body.utf8), principal: root)
            #expect(r.status == 200, "\(op): \(String(decoding: r.body, as: UTF8.self))")
            return try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any] ?? [:]
        }
        let created = try await call("CreateRepository", #"{"repositoryName":"x/y"}"#)
        let uri = (created["repository"] as? [String: Any])?["repositoryUri"] as? String
        #expect(uri == "123456789012.dkr.ecr.us-east-1.amazonaws.com/x/y")
        let token = try await call("GetAuthorizationToken", "{}")
        let proxy = ((token["authorizationData"] as? [[String: Any]])?.first)?["proxyEndpoint"] as? String
        #expect(proxy == "https://123456789012.dkr.ecr.us-east-1.amazonaws.com")
        let pub = try await call("CreateRepository", #"{"repositoryName":"pub"}"#, publicAPI: true)
        let pubURI = (pub["repository"] as? [String: Any])?["repositoryUri"] as? String
        #expect(pubURI?.hasPrefix("registry.example.com/public/") == true, "\(pubURI ?? "nil")")
        // A layer of an image, then its presigned download URL.
        let layer = Array("layer".utf8)
        let layerDigest = Digest.sha256(of: layer)
        let auth = "Basic " + Data("AWS:\(try services.identity.issueToken(for: root, now: services.clock.now()).token)".utf8).base64EncodedString()
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(layerDigest)","size":5},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"\(layerDigest)","size":5}]}
            """
        try await buildApplication(services).test(.router) { client in
            try await client.execute(uri: "/v2/x/y/blobs/uploads/?digest=\(layerDigest)", method: .post, headers: [.authorization: auth],
                                     body: ByteBuffer(bytes: layer)) { r in #expect(r.status == .created) }
            try await client.execute(uri: "/v2/x/y/manifests/v1", method: .put, headers: [.authorization: auth, .contentType: MediaType.ociManifest],
                                     body: ByteBuffer(string: manifest)) { r in #expect(r.status == .created) }
        }
        let url = try await call("GetDownloadUrlForLayer", #"{"repositoryName":"x/y","layerDigest":"\#(layerDigest)"}"#)
        let download = url["downloadUrl"] as? String ?? ""
        #expect(download.hasPrefix("https://registry.example.com/v2/x/y/blobs/\(layerDigest)?"), "\(download)")
    }

    @Test func oidcJwksDirectoryDefaultsUnderTheDataDirectory() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).effectiveOIDCJwksDirectory == "./berth-data/oidc-jwks")
        let path = try file(#"{"oidcJwksDirectory": "/from/file"}"#)
        #expect(try BerthConfiguration.load(file: path, environment: [:]).effectiveOIDCJwksDirectory == "/from/file")
        let c = try BerthConfiguration.load(file: path, environment: ["BERTH_OIDC_JWKS_DIRECTORY": "/etc/berth/jwks"])
        #expect(c.oidcJwksDirectory == "/etc/berth/jwks")
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: try file(#"{"oidcJwksDirectory": ""}"#), environment: [:]) }
    }

    @Test func authCacheSecondsFromFileAndEnvironment() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).authCacheSeconds == 1)
        #expect(try BerthConfiguration.load(file: try file(#"{"authCacheSeconds": 0.25}"#), environment: [:]).authCacheSeconds == 0.25)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_AUTH_CACHE_SECONDS": "0"]).authCacheSeconds == 0)
        for bad in ["-1", "301", "nan", "soon"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try BerthConfiguration.load(file: nil, environment: ["BERTH_AUTH_CACHE_SECONDS": bad]) }
        }
    }

    @Test func postgresMetadataBackendFromFileAndEnvironment() throws {
        let fromFile = try BerthConfiguration.load(
            file: try file(#"{"metadataBackend": "postgres", "postgresURL": "postgres://berth:pw@db:5432/reg"}"#), environment: [:])
        #expect(fromFile.metadataBackend == "postgres" && fromFile.postgresURL == "postgres://berth:pw@db:5432/reg")
        #expect(fromFile.postgresURLRedacted == "postgres://berth:redacted@db:5432/reg")
        let fromEnv = try BerthConfiguration.load(file: nil, environment: [
            "BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": "postgres:///reg?host=/run/postgresql"])
        #expect(fromEnv.metadataBackend == "postgres" && fromEnv.postgresURL == "postgres:///reg?host=/run/postgresql")
        // Without a URL the PG* variables say where (read when the store connects).
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_METADATA_BACKEND": "postgres"]).postgresURL == nil)
        for bad in ["mysql://db/reg", "postgres://db/reg?sslmode=maybe", "postgres://db:0/reg"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try BerthConfiguration.load(file: nil, environment: ["BERTH_METADATA_BACKEND": "postgres", "BERTH_POSTGRES_URL": bad])
            }
        }
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: nil, environment: ["BERTH_METADATA_BACKEND": "mysql"]) }
    }

    @Test func blobIOThreadsFromFileAndEnvironment() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).blobIOThreads == 16)
        #expect(try BerthConfiguration.load(file: try file(#"{"blobIOThreads": 4}"#), environment: [:]).blobIOThreads == 4)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_BLOB_IO_THREADS": "64"]).blobIOThreads == 64)
        for bad in ["0", "257", "many"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try BerthConfiguration.load(file: nil, environment: ["BERTH_BLOB_IO_THREADS": bad]) }
        }
    }

    @Test func galleryCanBeSwitchedOff() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).galleryEnabled)
        #expect(try !BerthConfiguration.load(file: nil, environment: ["BERTH_GALLERY_ENABLED": "false"]).galleryEnabled)
        #expect(try !BerthConfiguration.load(file: try file(#"{"galleryEnabled": false}"#), environment: [:]).galleryEnabled)
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: nil, environment: ["BERTH_GALLERY_ENABLED": "maybe"]) }
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).galleryCacheSeconds == 2)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_GALLERY_CACHE_SECONDS": "0"]).galleryCacheSeconds == 0)
        #expect(try BerthConfiguration.load(file: try file(#"{"galleryCacheSeconds": 10}"#), environment: [:]).galleryCacheSeconds == 10)
        for bad in ["-1", "61", "soon"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try BerthConfiguration.load(file: nil, environment: ["BERTH_GALLERY_CACHE_SECONDS": bad]) }
        }
    }

    @Test func auditSettingsFromFileAndEnvironment() throws {
        let d = try BerthConfiguration.load(file: nil, environment: [:])
        #expect(d.auditEnabled && d.auditRetentionDays == 90 && !d.auditRegistryReads)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_AUDIT_REGISTRY_READS": "true"]).auditRegistryReads)
        let f = try BerthConfiguration.load(file: try file(#"{"auditEnabled": false, "auditRetentionDays": 7}"#), environment: [:])
        #expect(!f.auditEnabled && f.auditRetentionDays == 7)
        let e = try BerthConfiguration.load(file: nil, environment: ["BERTH_AUDIT_ENABLED": "false", "BERTH_AUDIT_RETENTION_DAYS": "30"])
        #expect(!e.auditEnabled && e.auditRetentionDays == 30)
        for bad in ["0", "3651", "forever"] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try BerthConfiguration.load(file: nil, environment: ["BERTH_AUDIT_RETENTION_DAYS": bad]) }
        }
    }

    @Test func eventTargetsFromFileAndEnvironment() throws {
        let d = try BerthConfiguration.load(file: nil, environment: [:])
        #expect(d.events.targets.isEmpty && d.events.maxAttempts == 12 && d.events.retentionDays == 7)
        let f = try BerthConfiguration.load(file: try file("""
            {"eventTargets": [{"name": "ci", "url": "https://ci.example/hook", "secret": "k", "format": "cloudevents",
                               "pattern": {"source": ["aws.ecr"], "detail": {"repository-name": [{"prefix": "team/"}]}}}],
             "eventMaxAttempts": 5, "eventRetryBaseSeconds": 2}
            """), environment: [:])
        #expect(f.events.maxAttempts == 5 && f.events.retryBaseSeconds == 2)
        let target = try #require(try f.events.delivery().targets.first)
        #expect(target.name == "ci" && target.format == .cloudevents && target.secret == "k" && target.timeoutSeconds == 10)
        #expect(target.wants(.object(["source": .string("aws.ecr"), "detail": .object(["repository-name": .string("team/app")])])))
        #expect(!target.wants(.object(["source": .string("aws.ecr"), "detail": .object(["repository-name": .string("app")])])))
        // What verify-config prints: the pattern as written, the secret hidden.
        let printed = String(decoding: try JSONEncoder().encode(f.events.targets), as: UTF8.self)
        #expect(printed.contains(#""secret":"(hidden)""#) && !printed.contains(#""k""#) && printed.contains(#""prefix":"team\/""#))
        let e = try BerthConfiguration.load(file: nil, environment: [
            "BERTH_EVENT_TARGETS": #"[{"name": "a", "url": "http://127.0.0.1:9/x"}]"#, "BERTH_EVENT_MAX_ATTEMPTS": "3"])
        #expect(e.events.targets.map(\.name) == ["a"] && e.events.maxAttempts == 3)
        let bad = [
            #"[{"name": "a", "url": "ftp://x"}]"#, #"[{"name": "a b", "url": "http://x"}]"#,
            #"[{"name": "a", "url": "http://x", "format": "xml"}]"#, #"[{"name": "a", "url": "http://x", "pattern": {"source": "aws.ecr"}}]"#,
            #"[{"name": "a", "url": "http://x"}, {"name": "a", "url": "http://y"}]"#, #"[{"name": "a", "url": "http://x", "colour": 1}]"#,
            "not json",
        ]
        for targets in bad {
            #expect(throws: ConfigurationError.self, "\(targets)") {
                try BerthConfiguration.load(file: nil, environment: ["BERTH_EVENT_TARGETS": targets])
            }
        }
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: nil, environment: ["BERTH_EVENT_MAX_ATTEMPTS": "0"]) }
    }

    @Test func replicationPeersFromFileAndEnvironment() throws {
        let d = try BerthConfiguration.load(file: nil, environment: [:])
        #expect(d.replication.peers.isEmpty && d.replication.maxAttempts == 20 && d.replication.concurrency == 4)
        let f = try BerthConfiguration.load(file: try file("""
            {"region": "eu-west-1", "replicationPeers": [{"region": "us-west-2", "endpoint": "https://west.example", "accessKeyId": "AKIA1",
                                    "secretAccessKey": "s3cret"}], "replicationMaxAttempts": 5}
            """), environment: [:])
        let settings = f.replication.settings(regions: f.regionSet)
        #expect(settings.regions.home == "eu-west-1" && settings.maxAttempts == 5)
        #expect(settings.peers == [ReplicationPeer(region: "us-west-2", endpoint: "https://west.example", accessKeyId: "AKIA1", secretAccessKey: "s3cret")])
        // What verify-config prints: the secret hidden.
        let printed = String(decoding: try JSONEncoder().encode(f.replication.peers), as: UTF8.self)
        #expect(printed.contains(#""secretAccessKey":"(hidden)""#) && !printed.contains("s3cret"))
        let e = try BerthConfiguration.load(file: nil, environment: [
            "BERTH_REPLICATION_PEERS": #"[{"region": "us-west-2", "registryId": "210987654321", "endpoint": "http://127.0.0.1:9", "accessKeyId": "a", "secretAccessKey": "b"}]"#,
            "BERTH_REPLICATION_RETRY_MAX_SECONDS": "5"])
        #expect(e.replication.peers.first?.registryId == "210987654321" && e.replication.retryMaxSeconds == 5)
        let bad = [
            #"[{"region": "us-west-2", "endpoint": "ftp://x", "accessKeyId": "a", "secretAccessKey": "b"}]"#,
            #"[{"region": "US", "endpoint": "http://x", "accessKeyId": "a", "secretAccessKey": "b"}]"#,
            #"[{"region": "us-west-2", "registryId": "12", "endpoint": "http://x", "accessKeyId": "a", "secretAccessKey": "b"}]"#,
            #"[{"region": "us-west-2", "endpoint": "http://x", "accessKeyId": "a", "secretAccessKey": "b", "colour": 1}]"#,
            #"[{"region": "us-west-2", "endpoint": "http://x", "accessKeyId": "a"}]"#, "not json",
        ]
        for peers in bad {
            #expect(throws: ConfigurationError.self, "\(peers)") {
                try BerthConfiguration.load(file: nil, environment: ["BERTH_REPLICATION_PEERS": peers])
            }
        }
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: nil, environment: ["BERTH_REPLICATION_CONCURRENCY": "0"]) }
    }

    @Test func replicationReconciliationAndRetention() throws {
        let d = try BerthConfiguration.load(file: nil, environment: [:]).replication
        #expect(d.reconcileIntervalSeconds == 3_600 && d.completeRetentionDays == 7 && d.failedRetentionDays == 30)
        let s = d.settings(regions: .single("us-east-1"))
        #expect(s.reconcileIntervalSeconds == 3_600 && s.completeRetentionSeconds == 7 * 86_400 && s.failedRetentionSeconds == 30 * 86_400)
        let f = try BerthConfiguration.load(file: try file(#"{"replicationReconcileIntervalSeconds": 0, "replicationCompleteRetentionDays": 1, "replicationFailedRetentionDays": 0}"#),
                                            environment: [:]).replication
        #expect(f.reconcileIntervalSeconds == 0 && f.settings(regions: .single("us-east-1")).failedRetentionSeconds == nil)
        let e = try BerthConfiguration.load(file: nil, environment: ["BERTH_REPLICATION_RECONCILE_INTERVAL_SECONDS": "60",
                                                                     "BERTH_REPLICATION_COMPLETE_RETENTION_DAYS": "0.5",
                                                                     "BERTH_REPLICATION_FAILED_RETENTION_DAYS": "2"]).replication
        #expect(e.reconcileIntervalSeconds == 60 && e.completeRetentionDays == 0.5 && e.failedRetentionDays == 2)
        #expect(d.reconcileFullEvery == 24 && s.reconcileFullEvery == 24)
        let full = try BerthConfiguration.load(file: try file(#"{"replicationReconcileFullEvery": 1}"#), environment: [:]).replication
        #expect(full.settings(regions: .single("us-east-1")).reconcileFullEvery == 1)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_REPLICATION_RECONCILE_FULL_EVERY": "6"]).replication.reconcileFullEvery == 6)
        for bad in [["BERTH_REPLICATION_RECONCILE_INTERVAL_SECONDS": "-1"], ["BERTH_REPLICATION_RECONCILE_INTERVAL_SECONDS": "hourly"],
                    ["BERTH_REPLICATION_RECONCILE_FULL_EVERY": "0"], ["BERTH_REPLICATION_RECONCILE_FULL_EVERY": "daily"],
                    ["BERTH_REPLICATION_COMPLETE_RETENTION_DAYS": "0"],
                    ["BERTH_REPLICATION_COMPLETE_RETENTION_DAYS": "10", "BERTH_REPLICATION_FAILED_RETENTION_DAYS": "5"]] {
            #expect(throws: ConfigurationError.self, "\(bad)") { try BerthConfiguration.load(file: nil, environment: bad) }
        }
    }

    @Test func lifecycleIntervalFromFileAndEnvironment() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).lifecycleIntervalSeconds == 86_400)
        #expect(try BerthConfiguration.load(file: try file(#"{"lifecycleIntervalSeconds": 3600}"#), environment: [:]).lifecycleIntervalSeconds == 3600)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_LIFECYCLE_INTERVAL_SECONDS": "0"]).lifecycleIntervalSeconds == 0)
        for bad in ["-1", "daily"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try BerthConfiguration.load(file: nil, environment: ["BERTH_LIFECYCLE_INTERVAL_SECONDS": bad])
            }
        }
    }

    /// The claim a chunk holds on its upload (docs/s3.md): short by default, since a live writer renews it.
    @Test func uploadWriterTimeoutFromFileAndEnvironment() throws {
        #expect(try BerthConfiguration.load(file: nil, environment: [:]).uploadWriterTimeoutSeconds == 30)
        #expect(try BerthConfiguration.load(file: try file(#"{"uploadWriterTimeoutSeconds": 10}"#), environment: [:]).uploadWriterTimeoutSeconds == 10)
        #expect(try BerthConfiguration.load(file: nil, environment: ["BERTH_UPLOAD_WRITER_TIMEOUT_SECONDS": "1200"]).uploadWriterTimeoutSeconds == 1200)
        for bad in ["9", "0", "-30", "soon"] {
            #expect(throws: ConfigurationError.self, "\(bad)") {
                try BerthConfiguration.load(file: nil, environment: ["BERTH_UPLOAD_WRITER_TIMEOUT_SECONDS": bad])
            }
        }
    }

    @Test func everyProblemIsReported() throws {
        do {
            _ = try BerthConfiguration.load(
                file: nil,
                environment: ["BERTH_PORT": "x", "BERTH_CREATE_ON_PUSH": "maybe", "BERTH_ACCOUNT_ID": "12",
                              "BERTH_LOG_LEVEL": "loud", "BERTH_ROOT_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"])
            Issue.record("invalid settings were accepted")
        } catch let e as ConfigurationError {
            #expect(e.problems.count >= 5, "\(e.problems)")
        }
        let bad = try file(#"{"port": 1, "colour": "blue"}"#)
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: bad, environment: [:]) }
        #expect(throws: ConfigurationError.self) { try BerthConfiguration.load(file: "/nonexistent.json", environment: [:]) }
    }

    @Test func encryptBlobsIsAFileKeyAndAnEnvironmentVariable() throws {
        let path = try file(#"{"encryptBlobs": false}"#)
        #expect(try !BerthConfiguration.load(file: path, environment: [:]).encryptBlobs)
        #expect(try BerthConfiguration.load(file: path, environment: ["BERTH_ENCRYPT_BLOBS": "true"]).encryptBlobs)
        #expect(try !BerthConfiguration.load(file: nil, environment: ["BERTH_ENCRYPT_BLOBS": "off"]).encryptBlobs)
        #expect(throws: (any Error).self) { try BerthConfiguration.load(file: nil, environment: ["BERTH_ENCRYPT_BLOBS": "maybe"]) }
    }
}
