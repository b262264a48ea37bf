import BerthCore
@testable import BerthKMS
import BerthPolicy
import BerthStorage
import BerthSupport
import Foundation
import Testing

/// The KMS API: shapes, errors and key-policy decisions, through `KMSService.handle`.
@Suite struct KMSServiceTests {
    struct Call {
        let response: KMSResponse
        var json: [String: JSONValue] {
            guard case .object(let o)? = try? JSONValue.parse(response.body) else { return [:] }
            return o
        }
        var type: String? { response.errorType }
        func string(_ k: String) -> String? { if case .string(let s)? = json[k] { s } else { nil } }
    }

    let kms: KMSService

    init() {
        let policies = [
            alice.arn: [allow("kms:*")],
            bob.arn: [allow("kms:DescribeKey")],
        ]
        kms = KMSService(keys: makeService(EngineAuthorizer(identityPolicies: policies)))
    }

    func call(_ op: String, _ body: JSONValue, as principal: Principal = root) async -> Call {
        Call(response: await kms.handle(target: "TrentService.\(op)", body: body.encoded(), principal: principal))
    }

    func createKey(_ body: JSONValue = [:], as principal: Principal = root) async throws -> String {
        let r = await call("CreateKey", body, as: principal)
        guard case .object(let m)? = r.json["KeyMetadata"], case .string(let id)? = m["KeyId"] else {
            throw KMSError("Test", "CreateKey failed: \(String(decoding: r.response.body, as: UTF8.self))")
        }
        return id
    }

    static func b64(_ s: String) -> JSONValue { .string(Data(s.utf8).base64EncodedString()) }

    @Test func createDescribeAndListKeys() async throws {
        let r = await call("CreateKey", ["Description": "first", "Tags": [["TagKey": "team", "TagValue": "x"]]])
        #expect(r.type == nil)
        guard case .object(let m)? = r.json["KeyMetadata"] else { Issue.record("no KeyMetadata"); return }
        #expect(m["KeyState"] == "Enabled" && m["KeySpec"] == "SYMMETRIC_DEFAULT" && m["KeyUsage"] == "ENCRYPT_DECRYPT")
        #expect(m["KeyManager"] == "CUSTOMER" && m["Origin"] == "AWS_KMS" && m["Enabled"] == .bool(true))
        #expect(m["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"] && m["AWSAccountId"] == .string(account))
        guard case .string(let id)? = m["KeyId"] else { return }
        #expect(m["Arn"] == .string("arn:aws:kms:us-east-1:\(account):key/\(id)"))
        let d = await call("DescribeKey", ["KeyId": .string(id)])
        #expect(d.json["KeyMetadata"] == r.json["KeyMetadata"])
        _ = try await createKey()
        let l = await call("ListKeys", ["Limit": 1])
        #expect(l.json["Truncated"] == .bool(true))
        let l2 = await call("ListKeys", ["Limit": 1, "Marker": .string(l.string("NextMarker") ?? "")])
        #expect(l2.json["Truncated"] == .bool(false))
        guard case .array(let a)? = l.json["Keys"], case .array(let b)? = l2.json["Keys"] else { return }
        #expect(a.count == 1 && b.count == 1 && a != b)
        let p = await call("GetKeyPolicy", ["KeyId": .string(id), "PolicyName": "default"])
        #expect(p.string("Policy") == KeyPolicies.defaultPolicy(account: account))
        let tags = await call("ListResourceTags", ["KeyId": .string(id)])
        #expect(tags.json["Tags"] == [["TagKey": "team", "TagValue": "x"]])
    }

    @Test func unsupportedAndInvalidRequestsGetModelErrors() async throws {
        #expect(await call("CreateKey", ["KeySpec": "RSA_2048"]).type == "UnsupportedOperationException")
        #expect(await call("CreateKey", ["KeyUsage": "SIGN_VERIFY"]).type == "UnsupportedOperationException")
        #expect(await call("CreateKey", ["Origin": "EXTERNAL"]).type == "UnsupportedOperationException")
        #expect(await call("CreateKey", ["Policy": "not json"]).type == "MalformedPolicyDocumentException")
        #expect(await call("CreateKey", ["Tags": [["TagKey": "aws:x", "TagValue": "y"]]]).type == "TagException")
        #expect(await call("CreateKey", ["Description": 5]).type == "SerializationException")
        #expect(await call("Nope", [:]).type == "UnknownOperationException")
        #expect(await call("DescribeKey", [:]).type == "ValidationException")
        #expect(await call("DescribeKey", ["KeyId": "alias/none"]).type == "NotFoundException")
        let id = try await createKey()
        let s = await call("ScheduleKeyDeletion", ["KeyId": .string(id), "PendingWindowInDays": 3])
        #expect(s.type == "ValidationException")
        #expect(s.string("message")?.contains("pendingWindowInDays") == true)
        #expect(await call("EnableKeyRotation", ["KeyId": .string(id), "RotationPeriodInDays": 30]).type == "ValidationException")
        #expect(await call("GenerateDataKey", ["KeyId": .string(id)]).type == "ValidationException")
        #expect(await call("GenerateDataKey", ["KeyId": .string(id), "KeySpec": "AES_256", "NumberOfBytes": 32]).type == "ValidationException")
        #expect(await call("GenerateDataKey", ["KeyId": .string(id), "NumberOfBytes": 2000]).type == "ValidationException")
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64(String(repeating: "x", count: 4097))]).type == "ValidationException")
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"]).type
            == "InvalidKeyUsageException")
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x"), "DryRun": true]).response.status == 412)
        #expect(await call("Decrypt", ["CiphertextBlob": Self.b64("garbage")]).type == "InvalidCiphertextException")
        #expect(await call("EnableKey", ["KeyId": "alias/x"]).type == "NotFoundException")
        #expect(await call("GetKeyPolicy", ["KeyId": .string(id), "PolicyName": "other"]).type == "NotFoundException")
        #expect(await call("CreateAlias", ["AliasName": "alias/aws/mine", "TargetKeyId": .string(id)]).type == "InvalidAliasNameException")
        #expect(await call("ListAliases", ["Limit": 101]).type == "ValidationException")
        #expect(await call("ListResourceTags", ["KeyId": .string(id), "Limit": 51]).type == "ValidationException")
        #expect(await call("ListKeys", ["Marker": "%%%"]).type == "InvalidMarkerException")
    }

    @Test func cryptographicRoundTripsThroughTheAPI() async throws {
        let id = try await createKey()
        #expect(await call("CreateAlias", ["AliasName": "alias/app", "TargetKeyId": .string(id)]).type == nil)
        let e = await call("Encrypt", ["KeyId": "alias/app", "Plaintext": Self.b64("top secret"), "EncryptionContext": ["repo": "a"]])
        #expect(e.string("KeyId") == "arn:aws:kms:us-east-1:\(account):key/\(id)")
        let blob = JSONValue.string(e.string("CiphertextBlob") ?? "")
        let d = await call("Decrypt", ["CiphertextBlob": blob, "EncryptionContext": ["repo": "a"]])
        #expect(d.string("Plaintext") == Data("top secret".utf8).base64EncodedString())
        #expect(await call("Decrypt", ["CiphertextBlob": blob]).type == "InvalidCiphertextException")
        #expect(await call("Decrypt", ["CiphertextBlob": blob, "EncryptionContext": ["repo": "b"]]).type == "InvalidCiphertextException")
        let other = try await createKey()
        #expect(await call("Decrypt", ["CiphertextBlob": blob, "EncryptionContext": ["repo": "a"], "KeyId": .string(other)]).type
            == "IncorrectKeyException")

        let g = await call("GenerateDataKey", ["KeyId": .string(id), "KeySpec": "AES_256"])
        #expect(Data(base64Encoded: g.string("Plaintext") ?? "")?.count == 32)
        let gd = await call("Decrypt", ["CiphertextBlob": .string(g.string("CiphertextBlob") ?? "")])
        #expect(gd.string("Plaintext") == g.string("Plaintext"))
        let w = await call("GenerateDataKeyWithoutPlaintext", ["KeyId": .string(id), "NumberOfBytes": 16])
        #expect(w.json["Plaintext"] == nil && w.string("CiphertextBlob") != nil)

        let re = await call("ReEncrypt", ["CiphertextBlob": blob, "SourceEncryptionContext": ["repo": "a"],
                                          "DestinationKeyId": .string(other), "DestinationEncryptionContext": ["x": "y"]])
        #expect(re.string("SourceKeyId")?.hasSuffix(id) == true && re.string("KeyId")?.hasSuffix(other) == true)
        let rd = await call("Decrypt", ["CiphertextBlob": .string(re.string("CiphertextBlob") ?? ""), "EncryptionContext": ["x": "y"]])
        #expect(rd.string("Plaintext") == Data("top secret".utf8).base64EncodedString())

        #expect(await call("DisableKey", ["KeyId": .string(id)]).type == nil)
        #expect(await call("Decrypt", ["CiphertextBlob": blob, "EncryptionContext": ["repo": "a"]]).type == "DisabledException")
        #expect(await call("EnableKey", ["KeyId": .string(id)]).type == nil)
        let sched = await call("ScheduleKeyDeletion", ["KeyId": .string(id), "PendingWindowInDays": 7])
        #expect(sched.json["KeyState"] == "PendingDeletion" && sched.json["PendingWindowInDays"] == 7)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x")]).type == "KMSInvalidStateException")
        #expect(await call("CancelKeyDeletion", ["KeyId": .string(id)]).type == nil)
        guard case .object(let m)? = await call("DescribeKey", ["KeyId": .string(id)]).json["KeyMetadata"] else { return }
        #expect(m["KeyState"] == "Disabled")
    }

    @Test func rotationThroughTheAPI() async throws {
        let id = try await createKey()
        let e = await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("before")])
        #expect(await call("GetKeyRotationStatus", ["KeyId": .string(id)]).json["KeyRotationEnabled"] == .bool(false))
        #expect(await call("EnableKeyRotation", ["KeyId": .string(id), "RotationPeriodInDays": 180]).type == nil)
        let status = await call("GetKeyRotationStatus", ["KeyId": .string(id)])
        #expect(status.json["KeyRotationEnabled"] == .bool(true) && status.json["RotationPeriodInDays"] == 180)
        #expect(await call("RotateKeyOnDemand", ["KeyId": .string(id)]).type == nil)
        let rotations = await call("ListKeyRotations", ["KeyId": .string(id)])
        guard case .array(let list)? = rotations.json["Rotations"] else { Issue.record("no Rotations"); return }
        #expect(list.count == 1)
        let all = await call("ListKeyRotations", ["KeyId": .string(id), "IncludeKeyMaterial": "ALL_KEY_MATERIAL"])
        guard case .array(let versions)? = all.json["Rotations"], versions.count == 2,
              case .object(let first) = versions[0], case .object(let second) = versions[1] else { Issue.record("\(all.json)"); return }
        #expect(first["KeyMaterialState"] == "NON_CURRENT" && first["RotationType"] == nil)
        #expect(second["KeyMaterialState"] == "CURRENT" && second["RotationType"] == "ON_DEMAND")
        guard case .object(let meta)? = await call("DescribeKey", ["KeyId": .string(id)]).json["KeyMetadata"] else { return }
        #expect(meta["CurrentKeyMaterialId"] == second["KeyMaterialId"])
        let d = await call("Decrypt", ["CiphertextBlob": .string(e.string("CiphertextBlob") ?? "")])
        #expect(d.string("Plaintext") == Data("before".utf8).base64EncodedString(), "old material still decrypts")
        #expect(d.json["KeyMaterialId"] == first["KeyMaterialId"], "decrypted with the first material")
        if case .string(let mid)? = first["KeyMaterialId"] { #expect(mid.utf8.count == 64) }
        #expect(await call("DisableKeyRotation", ["KeyId": .string(id)]).type == nil)
    }

    @Test func keyPolicyDecidesWithIdentityPoliciesWhereItDelegates() async throws {
        // Default policy: the account is delegated; alice's identity policy allows kms:*, bob's only DescribeKey.
        let id = try await createKey()
        let plaintext = Self.b64("p")
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext], as: alice).type == nil)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext], as: bob).type == "AccessDeniedException")
        #expect(await call("DescribeKey", ["KeyId": .string(id)], as: bob).type == nil)

        // A policy naming bob directly, and no longer delegating to the account: alice's identity
        // policy no longer counts; root keeps PutKeyPolicy so the lockout check passes.
        let policy = """
            {"Version":"2012-10-17","Statement":[
              {"Sid":"admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\(account):root"},"Action":"kms:PutKeyPolicy","Resource":"*"},
              {"Sid":"bob","Effect":"Allow","Principal":{"AWS":"\(bob.arn)"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
               "Condition":{"StringEquals":{"kms:EncryptionContext:team":"blue"}}}]}
            """
        #expect(await call("PutKeyPolicy", ["KeyId": .string(id), "Policy": .string(policy)]).type == nil)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext], as: alice).type == "AccessDeniedException")
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext], as: bob).type == "AccessDeniedException",
                "the condition needs the context")
        let ok = await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext, "EncryptionContext": ["team": "blue"]], as: bob)
        #expect(ok.type == nil)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": plaintext, "EncryptionContext": ["team": "red"]], as: bob).type
            == "AccessDeniedException")
        #expect(await call("DescribeKey", ["KeyId": .string(id)]).type == "AccessDeniedException",
                "not even the root user may do what the key policy does not allow")

        // The lockout safety check: a policy that would lock the caller out is refused unless bypassed.
        let lockout = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"\#(bob.arn)"},"Action":"kms:Encrypt","Resource":"*"}]}"#
        #expect(await call("PutKeyPolicy", ["KeyId": .string(id), "Policy": .string(lockout)]).type == "MalformedPolicyDocumentException")
        #expect(await call("PutKeyPolicy", ["KeyId": .string(id), "Policy": .string(lockout), "BypassPolicyLockoutSafetyCheck": true]).type == nil)

        // An explicit Deny wins over everything.
        let deny = try await createKey(["Policy": .string("""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\(account):root"},"Action":"kms:*","Resource":"*"},
              {"Effect":"Deny","Principal":{"AWS":"\(alice.arn)"},"Action":"kms:Decrypt","Resource":"*"}]}
            """)])
        let blob = await call("Encrypt", ["KeyId": .string(deny), "Plaintext": plaintext], as: alice)
        #expect(blob.type == nil)
        #expect(await call("Decrypt", ["CiphertextBlob": .string(blob.string("CiphertextBlob") ?? "")], as: alice).type == "AccessDeniedException")
        #expect(await call("Decrypt", ["CiphertextBlob": .string(blob.string("CiphertextBlob") ?? "")]).type == nil)
    }

    @Test func resourceTagsAreConditionKeys() async throws {
        let policy = """
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::\(account):root"},"Action":"kms:*","Resource":"*"},
              {"Effect":"Deny","Principal":"*","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/frozen":"yes"}}}]}
            """
        let id = try await createKey(["Policy": .string(policy)])
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x")]).type == nil)
        #expect(await call("TagResource", ["KeyId": .string(id), "Tags": [["TagKey": "frozen", "TagValue": "yes"]]]).type == nil)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x")]).type == "AccessDeniedException")
        #expect(await call("UntagResource", ["KeyId": .string(id), "TagKeys": ["frozen"]]).type == nil)
        #expect(await call("Encrypt", ["KeyId": .string(id), "Plaintext": Self.b64("x")]).type == nil)
    }

    @Test func awsManagedKeyIsUsableOnlyViaTheService() async throws {
        let keys = kms.keys
        let key = try await keys.ensureAWSManagedKey(account: account, alias: "alias/aws/ecr")
        await #expect(throws: BerthError.self) { try await keys.authorize(alice, action: "kms:GenerateDataKey", key: key) }
        try await keys.authorize(alice, action: "kms:GenerateDataKey", key: key, viaService: "ecr.us-east-1.amazonaws.com")
        await #expect(throws: BerthError.self) {
            try await keys.authorize(alice, action: "kms:GenerateDataKey", key: key, viaService: "s3.us-east-1.amazonaws.com")
        }
        let foreign = Principal(accountID: otherAccount, arn: "arn:aws:iam::\(otherAccount):root", accessKeyID: "AKIAX")
        await #expect(throws: BerthError.self) {
            try await keys.authorize(foreign, action: "kms:Decrypt", key: key, viaService: "ecr.us-east-1.amazonaws.com")
        }
        #expect(await call("DescribeKey", ["KeyId": "alias/aws/ecr"]).type == nil)
        #expect(await call("Encrypt", ["KeyId": "alias/aws/ecr", "Plaintext": Self.b64("x")]).type == "AccessDeniedException")
    }
}
