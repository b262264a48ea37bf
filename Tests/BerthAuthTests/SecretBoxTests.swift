import Crypto
import Foundation
import Testing
@testable import BerthAuth

@Suite struct SecretBoxTests {
    static let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

    @Test func roundTrip() throws {
        let box = try SecretBox(key: SecretBox.generateKey())
        let sealed = try box.seal(Self.secret, context: "AKIAIOSFODNN7EXAMPLE")
        #expect(sealed.hasPrefix("v1:"))
        #expect(!sealed.contains(Self.secret))
        #expect(try box.open(sealed, context: "AKIAIOSFODNN7EXAMPLE") == Self.secret)
        // A fresh nonce each time.
        #expect(try box.seal(Self.secret) != box.seal(Self.secret))
        #expect(try box.open(box.seal("")) == "")
        #expect(try box.open(box.seal("ünïcødé ✓")) == "ünïcødé ✓")
    }

    @Test func tamperingIsDetected() throws {
        let box = try SecretBox(key: SecretBox.generateKey())
        let sealed = try box.seal(Self.secret)
        var bytes = try #require(Data(base64Encoded: String(sealed.dropFirst(3))))
        for index in [0, 12, bytes.count / 2, bytes.count - 1] {
            var tampered = bytes
            tampered[index] ^= 0x01
            #expect(throws: SecretBoxError.authenticationFailed) {
                try box.open("v1:" + tampered.base64EncodedString())
            }
        }
        bytes.removeLast()
        #expect(throws: SecretBoxError.authenticationFailed) { try box.open("v1:" + bytes.base64EncodedString()) }
    }

    @Test func wrongKeyOrContextFails() throws {
        let sealed = try SecretBox(key: SecretBox.generateKey()).seal(Self.secret, context: "AKIA1")
        #expect(throws: SecretBoxError.authenticationFailed) {
            try SecretBox(key: SecretBox.generateKey()).open(sealed, context: "AKIA1")
        }
        let box = try SecretBox(key: SecretBox.generateKey())
        let bound = try box.seal(Self.secret, context: "AKIA1")
        #expect(throws: SecretBoxError.authenticationFailed) { try box.open(bound, context: "AKIA2") }
    }

    @Test func malformedInput() throws {
        let box = try SecretBox(key: SecretBox.generateKey())
        for input in ["", "v1:", "v2:AAAA", "v1:not base64!", "v1:" + Data(count: 27).base64EncodedString(), Self.secret] {
            #expect(throws: SecretBoxError.malformed) { try box.open(input) }
        }
    }

    @Test func keyMustBe256Bits() {
        #expect(throws: SecretBoxError.invalidKeySize(16)) { try SecretBox(key: SymmetricKey(size: .bits128)) }
    }

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "berth-auth-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func loadOrCreateKeyFile() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secret.key"
        let created = try SecretBox.loadOrCreateKey(atPath: path)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let loaded = try SecretBox.loadOrCreateKey(atPath: path)
        #expect(created == loaded)
        // Sealed with the created key, opened with the reloaded one.
        let sealed = try SecretBox(key: created).seal(Self.secret)
        #expect(try SecretBox(key: loaded).open(sealed) == Self.secret)
        // No temporary files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["secret.key"])
    }

    @Test func keyFileChecks() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secret.key"
        _ = try SecretBox.loadOrCreateKey(atPath: path)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: SecretBoxError.insecureKeyFilePermissions(path: path, mode: "644")) {
            try SecretBox.loadOrCreateKey(atPath: path)
        }
        try Data("too short\n".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: SecretBoxError.keyFileCorrupt(path: path)) { try SecretBox.loadOrCreateKey(atPath: path) }
        #expect(throws: SecretBoxError.self) { try SecretBox.loadOrCreateKey(atPath: directory + "/missing/dir/key") }
    }

    @Test func concurrentCreatorsAgreeOnOneKey() async throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/secret.key"
        let keys = try await withThrowingTaskGroup(of: [UInt8].self) { group in
            for _ in 0..<8 {
                group.addTask { try SecretBox.loadOrCreateKey(atPath: path).withUnsafeBytes { Array($0) } }
            }
            return try await group.reduce(into: Set<[UInt8]>()) { $0.insert($1) }
        }
        #expect(keys.count == 1)
    }
}
