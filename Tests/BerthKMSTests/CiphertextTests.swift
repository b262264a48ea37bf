@testable import BerthKMS
import Crypto
import Testing

@Suite struct CiphertextBlobTests {
    let keyID = "1234abcd-12ab-34cd-56ef-1234567890ab"
    let material = KeyMaterialSealer.newMaterial()

    func seal(_ text: String, _ context: [String: String] = [:], version: Int = 1) throws -> [UInt8] {
        try CiphertextBlob.seal(Array(text.utf8), keyID: keyID, materialVersion: version, material: material, context: context).bytes
    }

    @Test func layoutIsVersionedAndCarriesKeyAndVersion() throws {
        let bytes = try seal("hello", version: 3)
        #expect(Array(bytes[0..<4]) == [0x42, 0x4B, 0x4D, 0x01])
        #expect(bytes.count == CiphertextBlob.overhead + 5)
        let blob = try #require(CiphertextBlob(bytes))
        #expect(blob.keyID == keyID)
        #expect(blob.materialVersion == 3)
        #expect(blob.bytes == bytes)
        #expect(try blob.open(material: material, context: [:]) == Array("hello".utf8))
        #expect(try seal("hello") != seal("hello"), "a fresh nonce each time")
    }

    @Test func contextIsBoundWhateverItsOrder() throws {
        let bytes = try seal("secret", ["repo": "app", "account": "1"])
        let blob = try #require(CiphertextBlob(bytes))
        #expect(try blob.open(material: material, context: ["account": "1", "repo": "app"]) == Array("secret".utf8))
        for wrong in [[:], ["repo": "app"], ["repo": "app", "account": "2"], ["repo": "app", "account": "1", "x": ""]] as [[String: String]] {
            #expect(throws: KMSError.invalidCiphertext) { try blob.open(material: material, context: wrong) }
        }
        // Keys and values cannot be shifted into each other.
        let a = CiphertextBlob.canonical(["ab": "c"])
        let b = CiphertextBlob.canonical(["a": "bc"])
        #expect(a != b)
    }

    @Test func everyAlteredByteIsRefused() throws {
        let bytes = try seal("do not change me", ["k": "v"])
        var parsed = 0
        for i in bytes.indices {
            var forged = bytes
            forged[i] ^= 0x01
            // The magic does not parse; any other byte (key id, version, nonce, ciphertext, tag) fails the tag.
            guard let blob = CiphertextBlob(forged) else { continue }
            parsed += 1
            #expect(throws: KMSError.invalidCiphertext) { try blob.open(material: material, context: ["k": "v"]) }
        }
        #expect(parsed >= bytes.count - 5, "only the magic and a zero version do not parse")
    }

    @Test func truncatedOrForeignBlobsDoNotParse() throws {
        let bytes = try seal("xyz")
        #expect(CiphertextBlob(Array(bytes.prefix(CiphertextBlob.overhead))) == nil, "no ciphertext left")
        #expect(CiphertextBlob(Array(bytes.prefix(10))) == nil)
        #expect(CiphertextBlob([]) == nil)
        var other = bytes
        other[3] = 0x02
        #expect(CiphertextBlob(other) == nil, "an unknown format version")
        let shorter = try #require(CiphertextBlob(Array(bytes.dropLast())))
        #expect(throws: KMSError.invalidCiphertext) { try shorter.open(material: material, context: [:]) }
    }

    @Test func wrongMaterialIsRefused() throws {
        let blob = try #require(CiphertextBlob(try seal("x")))
        #expect(throws: KMSError.invalidCiphertext) { try blob.open(material: KeyMaterialSealer.newMaterial(), context: [:]) }
    }
}

@Suite struct KeyMaterialSealerTests {
    @Test func sealsBoundToKeyAndVersion() throws {
        let master = SymmetricKey(size: .bits256)
        let sealer = KeyMaterialSealer(masterKey: master)
        let material = KeyMaterialSealer.newMaterial()
        #expect(material.count == 32)
        let sealed = try sealer.seal(material, keyID: "k", version: 1)
        #expect(sealed.count == 61)
        #expect(!sealed.indices.dropLast(31).contains { Array(sealed[$0..<$0 + 32]) == material }, "the material is not in the sealed bytes")
        #expect(try sealer.open(sealed, keyID: "k", version: 1) == material)
        #expect(throws: (any Error).self) { try sealer.open(sealed, keyID: "k", version: 2) }
        #expect(throws: (any Error).self) { try sealer.open(sealed, keyID: "other", version: 1) }
        #expect(throws: (any Error).self) { try KeyMaterialSealer(masterKey: SymmetricKey(size: .bits256)).open(sealed, keyID: "k", version: 1) }
        #expect(try KeyMaterialSealer(masterKey: master).open(sealed, keyID: "k", version: 1) == material, "the same master key opens it again")
    }
}
