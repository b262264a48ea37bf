import BerthCore
import BerthStorage
import Testing

@Suite struct KeyMetadataConformance {
    let a = "111111111111"
    let b = "222222222222"

    func key(_ id: String, account: String, state: String = "Enabled") -> KMSKeyRecord {
        KMSKeyRecord(keyID: id, accountID: account, description: "d \(id)", state: state, createdAt: 10, policy: "{}",
                     tags: [ResourceTag(key: "team", value: "x")])
    }

    func material(_ id: String, _ version: Int, rotation: String? = nil) -> KMSKeyMaterialRecord {
        KMSKeyMaterialRecord(keyID: id, version: version, sealedMaterial: Array(repeating: UInt8(version), count: 61),
                             createdAt: Double(version), rotationType: rotation)
    }

    @Test(arguments: Backend.allCases)
    func keysRoundTripAndUpdateInOneTransaction(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let k1 = key("k1", account: a)
        #expect(try await m.createKMSKey(k1, material: material("k1", 1)))
        #expect(try await m.createKMSKey(k1, material: material("k1", 1)) == false, "an id is used once")
        #expect(try await m.createKMSKey(key("k2", account: a), material: material("k2", 1)))
        #expect(try await m.createKMSKey(key("k3", account: b), material: material("k3", 1)))
        #expect(try await m.kmsKey("k1") == k1)
        #expect(try await m.kmsKey("nope") == nil)
        #expect(try await m.kmsKeys(account: a, after: nil, limit: 10).map(\.keyID) == ["k1", "k2"])
        #expect(try await m.kmsKeys(account: a, after: "k1", limit: 10).map(\.keyID) == ["k2"])
        #expect(try await m.kmsKeys(account: a, after: nil, limit: 1).map(\.keyID) == ["k1"])

        let rotated = try await m.updateKMSKey("k1", addingMaterial: material("k1", 2, rotation: "ON_DEMAND")) { k in
            k.currentVersion = 2
            k.rotationEnabled = true
            k.rotationPeriodDays = 90
            k.nextRotationAt = 500
            k.tags.append(ResourceTag(key: "env", value: "prod"))
        }
        #expect(rotated?.currentVersion == 2)
        #expect(try await m.kmsKey("k1") == rotated)
        #expect(try await m.kmsKeyMaterials("k1") == [material("k1", 1), material("k1", 2, rotation: "ON_DEMAND")])
        #expect(try await m.kmsKeyMaterial("k1", version: 2) == material("k1", 2, rotation: "ON_DEMAND"))
        #expect(try await m.kmsKeyMaterial("k1", version: 3) == nil)

        struct Refused: Error {}
        await #expect(throws: Refused.self) {
            _ = try await m.updateKMSKey("k1", addingMaterial: material("k1", 3)) { k in
                k.currentVersion = 3
                throw Refused()
            }
        }
        #expect(try await m.kmsKey("k1")?.currentVersion == 2, "a refused update changes nothing")
        #expect(try await m.kmsKeyMaterial("k1", version: 3) == nil, "nor adds material")
        #expect(try await m.updateKMSKey("nope", addingMaterial: nil) { $0.state = "Disabled" } == nil)
    }

    /// KMS keys of another region are stored under `<account>@<region>` (as `RegistryID` stores
    /// registries): every store keeps them and their aliases apart from the account's home-region ones.
    @Test(arguments: Backend.allCases)
    func regionalOwnersAreSeparateNamespaces(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        let eu = "\(a)@eu-west-1"
        #expect(try await m.createKMSKey(key("k1", account: a), material: material("k1", 1)))
        #expect(try await m.createKMSKey(key("k2", account: eu), material: material("k2", 1)))
        #expect(try await m.kmsKeys(account: a, after: nil, limit: 10).map(\.keyID) == ["k1"])
        #expect(try await m.kmsKeys(account: eu, after: nil, limit: 10).map(\.keyID) == ["k2"])
        #expect(try await m.kmsKey("k2")?.accountID == eu)
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: a, name: "alias/app", targetKeyID: "k1", createdAt: 1, updatedAt: 1)) == .done)
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: eu, name: "alias/app", targetKeyID: "k2", createdAt: 1, updatedAt: 1)) == .done)
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: eu, name: "alias/x", targetKeyID: "k1", createdAt: 1, updatedAt: 1))
            == .keyNotFound, "an alias points at a key of its own owner")
        #expect(try await m.kmsAlias(account: a, name: "alias/app")?.targetKeyID == "k1")
        #expect(try await m.kmsAlias(account: eu, name: "alias/app")?.targetKeyID == "k2")
        #expect(try await m.kmsAliases(account: eu, keyID: nil).map(\.targetKeyID) == ["k2"])
        #expect(try await m.deleteKMSAlias(account: eu, name: "alias/app"))
        #expect(try await m.kmsAlias(account: a, name: "alias/app")?.targetKeyID == "k1")
    }

    @Test(arguments: Backend.allCases)
    func dueKeysAndDeletionTakeMaterialAndAliases(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        var k1 = key("k1", account: a)
        k1.state = "PendingDeletion"
        k1.deletionDate = 100
        k1.pendingWindowDays = 7
        #expect(try await m.createKMSKey(k1, material: material("k1", 1)))
        var k2 = key("k2", account: a)
        k2.rotationEnabled = true
        k2.nextRotationAt = 50
        #expect(try await m.createKMSKey(k2, material: material("k2", 1)))
        #expect(try await m.createKMSKey(key("k3", account: a), material: material("k3", 1)))
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: a, name: "alias/one", targetKeyID: "k1", createdAt: 1, updatedAt: 1)) == .done)

        #expect(try await m.kmsKeysDue(at: 10, limit: 10).isEmpty)
        #expect(try await m.kmsKeysDue(at: 60, limit: 10).map(\.keyID) == ["k2"])
        #expect(try await m.kmsKeysDue(at: 100, limit: 10).map(\.keyID) == ["k1", "k2"])

        #expect(try await m.deleteKMSKey("k1", dueBy: 99) == false, "not yet due")
        #expect(try await m.deleteKMSKey("k3", dueBy: 1_000) == false, "not pending deletion")
        #expect(try await m.deleteKMSKey("k1", dueBy: 100))
        #expect(try await m.kmsKey("k1") == nil)
        #expect(try await m.kmsKeyMaterials("k1").isEmpty)
        #expect(try await m.kmsAlias(account: a, name: "alias/one") == nil)
    }

    @Test(arguments: Backend.allCases)
    func aliasesCheckTheirTargetInTheirAccount(_ backend: Backend) async throws {
        let m = try await backend.make().metadata
        #expect(try await m.createKMSKey(key("k1", account: a), material: material("k1", 1)))
        #expect(try await m.createKMSKey(key("k2", account: a), material: material("k2", 1)))
        #expect(try await m.createKMSKey(key("kb", account: b), material: material("kb", 1)))
        let alias = KMSAliasRecord(accountID: a, name: "alias/app", targetKeyID: "k1", createdAt: 5, updatedAt: 5)
        #expect(try await m.createKMSAlias(alias) == .done)
        #expect(try await m.createKMSAlias(alias) == .aliasConflict)
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: a, name: "alias/x", targetKeyID: "kb", createdAt: 5, updatedAt: 5))
            == .keyNotFound, "a key of another account")
        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: b, name: "alias/app", targetKeyID: "kb", createdAt: 5, updatedAt: 5))
            == .done, "names are per account")
        #expect(try await m.kmsAlias(account: a, name: "alias/app") == alias)

        #expect(try await m.updateKMSAlias(account: a, name: "alias/app", targetKeyID: "k2", at: 9) == .done)
        #expect(try await m.updateKMSAlias(account: a, name: "alias/none", targetKeyID: "k2", at: 9) == .aliasConflict)
        #expect(try await m.updateKMSAlias(account: a, name: "alias/app", targetKeyID: "kb", at: 9) == .keyNotFound)
        let updated = try await m.kmsAlias(account: a, name: "alias/app")
        #expect(updated?.targetKeyID == "k2" && updated?.updatedAt == 9 && updated?.createdAt == 5)

        #expect(try await m.createKMSAlias(KMSAliasRecord(accountID: a, name: "alias/b", targetKeyID: "k1", createdAt: 6, updatedAt: 6)) == .done)
        #expect(try await m.kmsAliases(account: a, keyID: nil).map(\.name) == ["alias/app", "alias/b"])
        #expect(try await m.kmsAliases(account: a, keyID: "k1").map(\.name) == ["alias/b"])
        #expect(try await m.deleteKMSAlias(account: a, name: "alias/b"))
        #expect(try await m.deleteKMSAlias(account: a, name: "alias/b") == false)
        #expect(try await m.kmsAliases(account: b, keyID: nil).map(\.name) == ["alias/app"])
    }
}
