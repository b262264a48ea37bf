import BerthApp
import Foundation
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
}
