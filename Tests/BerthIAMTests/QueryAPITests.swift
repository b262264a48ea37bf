import BerthAuth
import BerthCore
import BerthDirectory
@testable import BerthIAM
import BerthPolicy
import BerthRegistry
import BerthSupport
import BerthStorage
import Foundation
import Testing

func expectError(_ code: String, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code)")
    } catch let e as QueryError {
        #expect(e.code == code, "\(e.message)")
    } catch {
        Issue.record("unexpected \(error)")
    }
}

@Suite struct IAMQueryTests {
    @Test func createUserAnswersInTheQueryShape() async throws {
        let w = try await World()
        let body = try await w.iamCall("CreateUser", ["UserName": "alice", "Path": "/ci/"])
        #expect(body.hasPrefix(#"<CreateUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><CreateUserResult><User><Path>/ci/</Path><UserName>alice</UserName><UserId>AIDA"#))
        #expect(body.contains("<Arn>arn:aws:iam::123456789012:user/ci/alice</Arn><CreateDate>2023-11-14T22:13:20Z</CreateDate></User></CreateUserResult><ResponseMetadata><RequestId>req-1</RequestId></ResponseMetadata></CreateUserResponse>"))
        await expectError("EntityAlreadyExists") { try await w.iamCall("CreateUser", ["UserName": "alice"]) }
        await expectError("ValidationError") { try await w.iamCall("CreateUser", ["UserName": "bad name"]) }
        await expectError("ValidationError") { try await w.iamCall("CreateUser", ["UserName": String(repeating: "a", count: 65)]) }
        await expectError("ValidationError") { try await w.iamCall("CreateUser", [:]) }
        await expectError("ValidationError") { try await w.iamCall("CreateUser", ["UserName": "x", "Path": "nope"]) }
        await expectError("NoSuchEntity") { try await w.iamCall("GetUser", ["UserName": "bob"]) }
        await expectError("InvalidAction") { try await w.iamCall("Frobnicate", [:]) }
        for n in ["bob", "carol", "dave"] { try await w.iamCall("CreateUser", ["UserName": n]) }
        let first = try await w.iamCall("ListUsers", ["MaxItems": "2"])
        #expect(first.contains("<UserName>alice</UserName>") && first.contains("<UserName>bob</UserName>") && !first.contains("carol"))
        #expect(first.contains("<IsTruncated>true</IsTruncated><Marker>"))
        let marker = try #require(first.split(separator: "<Marker>").last?.split(separator: "<").first.map(String.init))
        let second = try await w.iamCall("ListUsers", ["MaxItems": "2", "Marker": marker])
        #expect(second.contains("<UserName>carol</UserName>") && second.contains("<UserName>dave</UserName>") && !second.contains("bob"))
        #expect(second.contains("<IsTruncated>false</IsTruncated>"))
        await expectError("ValidationError") { try await w.iamCall("ListUsers", ["MaxItems": "0"]) }
        let list = try await w.iamCall("ListUsers", [:])
        #expect(list.contains("<Users><member><Path>/ci/</Path><UserName>alice</UserName>"))
        #expect(list.contains("<IsTruncated>false</IsTruncated>"))
    }

    @Test func errorsAreErrorResponses() async throws {
        let w = try await World()
        var form = ["Action": "GetUser", "Version": "2010-05-08", "UserName": "bob"]
        let r = await w.iam.handle(form, principal: World.root(), requestID: "r-9")
        #expect(r.status == 404)
        #expect(String(decoding: r.body, as: UTF8.self) == #"<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name bob cannot be found.</Message></Error><RequestId>r-9</RequestId></ErrorResponse>"#)
        form["Action"] = "CreateUser"
        form["UserName"] = "a<b"
        #expect(await w.iam.handle(form, principal: World.root(), requestID: "r").status == 400)
    }

    /// Two concurrent CreateAccessKey for a user with one key: one is created, the other is LimitExceeded.
    @Test func concurrentCreateAccessKeyAtTheLimit() async throws {
        let w = try await World()
        try await w.iamCall("CreateUser", ["UserName": "alice"])
        try await w.iamCall("CreateAccessKey", ["UserName": "alice"])
        let iam = w.iam
        let form = ["Action": "CreateAccessKey", "Version": "2010-05-08", "UserName": "alice"]
        let answers = await withTaskGroup(of: QueryResponse.self) { group in
            for _ in 0..<2 { group.addTask { await iam.handle(form, principal: World.root(), requestID: "r") } }
            var out: [QueryResponse] = []
            for await r in group { out.append(r) }
            return out
        }
        #expect(answers.map(\.status).sorted() == [200, 409])
        #expect(answers.compactMap(\.errorCode) == ["LimitExceeded"])
        #expect(try await w.store.accessKeys(ofAccount: World.account).count == 2)
    }

    @Test func accessKeysAreLimitedAndDeleteConflicts() async throws {
        let w = try await World()
        try await w.iamCall("CreateUser", ["UserName": "alice"])
        let first = try await w.iamCall("CreateAccessKey", ["UserName": "alice"])
        #expect(first.contains("<UserName>alice</UserName><AccessKeyId>AKIA"))
        #expect(first.contains("<Status>Active</Status><SecretAccessKey>"))
        try await w.iamCall("CreateAccessKey", ["UserName": "alice"])
        await expectError("LimitExceeded") { try await w.iamCall("CreateAccessKey", ["UserName": "alice"]) }
        let keys = try await w.store.accessKeys(ofAccount: World.account)
        #expect(keys.count == 2)
        #expect(keys.allSatisfy { $0.principalARN == "arn:aws:iam::123456789012:user/alice" && $0.sealedSecret.hasPrefix("sealed:") })
        await expectError("DeleteConflict") { try await w.iamCall("DeleteUser", ["UserName": "alice"]) }
        try await w.iamCall("UpdateAccessKey", ["UserName": "alice", "AccessKeyId": keys[0].accessKeyID, "Status": "Inactive"])
        #expect(try await w.store.accessKey(keys[0].accessKeyID)?.status == "Inactive")
        await expectError("ValidationError") {
            try await w.iamCall("UpdateAccessKey", ["UserName": "alice", "AccessKeyId": keys[0].accessKeyID, "Status": "Maybe"])
        }
        let listed = try await w.iamCall("ListAccessKeys", ["UserName": "alice"])
        #expect(listed.contains("<Status>Inactive</Status>"))
        for k in keys { try await w.iamCall("DeleteAccessKey", ["UserName": "alice", "AccessKeyId": k.accessKeyID]) }
        await expectError("NoSuchEntity") { try await w.iamCall("DeleteAccessKey", ["UserName": "alice", "AccessKeyId": keys[0].accessKeyID]) }
        try await w.iamCall("DeleteUser", ["UserName": "alice"])
    }

    @Test func policyDocumentsAreValidatedAndReturnedURLEncoded() async throws {
        let w = try await World()
        try await w.iamCall("CreateUser", ["UserName": "alice"])
        let doc = allow(#""ecr:BatchGetImage""#)
        try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "pull", "PolicyDocument": doc])
        let got = try await w.iamCall("GetUserPolicy", ["UserName": "alice", "PolicyName": "pull"])
        #expect(got.contains("<PolicyDocument>\(PercentEncoding.encoded(doc))</PolicyDocument>"))
        #expect(got.contains("%7B%22Version%22%3A%222012-10-17%22"))
        #expect(try await w.iamCall("ListUserPolicies", ["UserName": "alice"]).contains("<PolicyNames><member>pull</member></PolicyNames>"))
        await expectError("MalformedPolicyDocument") {
            try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "bad", "PolicyDocument": "{"])
        }
        await expectError("MalformedPolicyDocument") {
            try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "bad",
                                                  "PolicyDocument": #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"ecr:*","Resource":"*"}]}"#])
        }
        await expectError("LimitExceeded") {
            try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "big",
                                                  "PolicyDocument": allow("[" + (1...200).map { #""ecr:Action\#($0)""# }.joined(separator: ",") + "]")])
        }
        // 2,048 characters for all of a user's inline policies together.
        let half = allow("[" + (1...60).map { #""ecr:Action\#($0)""# }.joined(separator: ",") + "]")
        try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "half", "PolicyDocument": half])
        try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "half", "PolicyDocument": half])
        await expectError("LimitExceeded") {
            try await w.iamCall("PutUserPolicy", ["UserName": "alice", "PolicyName": "other", "PolicyDocument": half])
        }
        try await w.iamCall("DeleteUserPolicy", ["UserName": "alice", "PolicyName": "half"])
        await expectError("NoSuchEntity") { try await w.iamCall("GetUserPolicy", ["UserName": "alice", "PolicyName": "nope"]) }
        await expectError("NoSuchEntity") { try await w.iamCall("PutUserPolicy", ["UserName": "bob", "PolicyName": "p", "PolicyDocument": doc]) }
        try await w.iamCall("DeleteUserPolicy", ["UserName": "alice", "PolicyName": "pull"])
        // Nothing that failed validation was stored.
        #expect(try await w.store.inlinePolicies(IAMEntityKey(.user, World.account, "alice")).isEmpty)
    }

    @Test func managedPoliciesAndAttachments() async throws {
        let w = try await World()
        try await w.iamCall("CreateUser", ["UserName": "alice"])
        let created = try await w.iamCall("CreatePolicy", ["PolicyName": "pull", "PolicyDocument": allow(#""ecr:BatchGetImage""#)])
        #expect(created.contains("<Arn>arn:aws:iam::123456789012:policy/pull</Arn>"))
        await expectError("EntityAlreadyExists") {
            try await w.iamCall("CreatePolicy", ["PolicyName": "pull", "PolicyDocument": allow(#""ecr:BatchGetImage""#)])
        }
        let arn = "arn:aws:iam::123456789012:policy/pull"
        try await w.iamCall("AttachUserPolicy", ["UserName": "alice", "PolicyArn": arn])
        try await w.iamCall("AttachUserPolicy", ["UserName": "alice", "PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryFullAccess.arn])
        await expectError("NoSuchEntity") {
            try await w.iamCall("AttachUserPolicy", ["UserName": "alice", "PolicyArn": "arn:aws:iam::aws:policy/NoSuchPolicy"])
        }
        #expect(try await w.iamCall("GetPolicy", ["PolicyArn": arn]).contains("<AttachmentCount>1</AttachmentCount>"))
        #expect(try await w.iamCall("GetPolicy", ["PolicyArn": ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn])
            .contains("<PolicyName>AmazonEC2ContainerRegistryReadOnly</PolicyName>"))
        let attached = try await w.iamCall("ListAttachedUserPolicies", ["UserName": "alice"])
        #expect(attached.contains("<member><PolicyName>pull</PolicyName><PolicyArn>\(arn)</PolicyArn></member>"))
        await expectError("DeleteConflict") { try await w.iamCall("DeletePolicy", ["PolicyArn": arn]) }
        try await w.iamCall("DetachUserPolicy", ["UserName": "alice", "PolicyArn": arn])
        try await w.iamCall("DeletePolicy", ["PolicyArn": arn])
        await expectError("NoSuchEntity") { try await w.iamCall("GetPolicy", ["PolicyArn": arn]) }
    }

    @Test func groupsAndRoles() async throws {
        let w = try await World()
        try await w.iamCall("CreateUser", ["UserName": "alice"])
        try await w.iamCall("CreateGroup", ["GroupName": "devs"])
        try await w.iamCall("AddUserToGroup", ["GroupName": "devs", "UserName": "alice"])
        try await w.iamCall("PutGroupPolicy", ["GroupName": "devs", "PolicyName": "p", "PolicyDocument": allow(#""ecr:*""#)])
        let group = try await w.iamCall("GetGroup", ["GroupName": "devs"])
        #expect(group.contains("<Group><Path>/</Path><GroupName>devs</GroupName><GroupId>AGPA"))
        #expect(group.contains("<Users><member><Path>/</Path><UserName>alice</UserName>"))
        await expectError("DeleteConflict") { try await w.iamCall("DeleteUser", ["UserName": "alice"]) }
        await expectError("NoSuchEntity") { try await w.iamCall("AddUserToGroup", ["GroupName": "nope", "UserName": "alice"]) }

        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#
        let role = try await w.iamCall("CreateRole", ["RoleName": "r", "AssumeRolePolicyDocument": trust, "MaxSessionDuration": "7200"])
        #expect(role.contains("<AssumeRolePolicyDocument>\(PercentEncoding.encoded(trust))</AssumeRolePolicyDocument>"))
        #expect(role.contains("<MaxSessionDuration>7200</MaxSessionDuration>"))
        await expectError("MalformedPolicyDocument") {
            try await w.iamCall("CreateRole", ["RoleName": "r2", "AssumeRolePolicyDocument": allow(#""sts:AssumeRole""#)])
        }
        await expectError("ValidationError") {
            try await w.iamCall("CreateRole", ["RoleName": "r3", "AssumeRolePolicyDocument": trust, "MaxSessionDuration": "60"])
        }
        try await w.iamCall("PutRolePolicy", ["RoleName": "r", "PolicyName": "p", "PolicyDocument": allow(#""ecr:*""#)])
        await expectError("DeleteConflict") { try await w.iamCall("DeleteRole", ["RoleName": "r"]) }
        try await w.iamCall("DeleteRolePolicy", ["RoleName": "r", "PolicyName": "p"])
        try await w.iamCall("DeleteRole", ["RoleName": "r"])
        await expectError("NoSuchEntity") { try await w.iamCall("GetRole", ["RoleName": "r"]) }
    }

    @Test func iamActionsAreAuthorized() async throws {
        let w = try await World()
        try await w.createUser("reader", attached: [ManagedPolicy.amazonEC2ContainerRegistryReadOnly.arn])
        await expectError("AccessDenied") { try await w.iamCall("CreateUser", ["UserName": "x"], as: World.user("reader")) }
        try await w.createUser("admin", policies: [allow(#""iam:*""#)])
        try await w.iamCall("CreateUser", ["UserName": "x"], as: World.user("admin"))
        // Without UserName, a user manages its own keys.
        try await w.createUser("self", policies: [allow(#""iam:CreateAccessKey""#, "arn:aws:iam::123456789012:user/${aws:username}")])
        let own = try await w.iamCall("CreateAccessKey", [:], as: World.user("self"))
        #expect(own.contains("<UserName>self</UserName>"))
        await expectError("AccessDenied") { try await w.iamCall("CreateAccessKey", ["UserName": "x"], as: World.user("self")) }
    }

    @Test func formBodiesParse() {
        #expect(QueryProtocol.parseForm(Array("Action=CreateUser&UserName=a%2Bb+c&Empty=".utf8)) == ["Action": "CreateUser", "UserName": "a+b c", "Empty": ""])
        #expect(QueryProtocol.parseForm(Array("A=%zz".utf8)) == nil)
        #expect(QueryProtocol.parseForm(Array("A=%4".utf8)) == nil)
        #expect(QueryProtocol.parseForm(Array("A=%FF".utf8)) == nil)
        #expect(PercentEncoding.encoded(#"{"a": "b/c"}"#) == "%7B%22a%22%3A%20%22b%2Fc%22%7D")
        #expect(XMLNode.escape("<a&'\">") == "&lt;a&amp;&apos;&quot;&gt;")
    }
}

@Suite struct STSTests {
    func sts(_ w: World, _ action: String, _ params: [String: String], as p: Principal) async throws -> String {
        var form = params
        form["Action"] = action
        form["Version"] = "2011-06-15"
        let r = await w.sts.handle(form, principal: p, requestID: "req")
        let body = String(decoding: r.body, as: UTF8.self)
        if let code = r.errorCode { throw QueryError(code, body, status: r.status) }
        return body
    }

    @Test func getCallerIdentity() async throws {
        let w = try await World()
        try await w.createUser("alice")
        let root = try await sts(w, "GetCallerIdentity", [:], as: World.root())
        #expect(root.contains("<GetCallerIdentityResult><UserId>123456789012</UserId><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:root</Arn></GetCallerIdentityResult>"))
        #expect(root.hasPrefix(#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">"#))
        let user = try await sts(w, "GetCallerIdentity", [:], as: World.user("alice"))
        #expect(value("UserId", in: user)?.hasPrefix("AIDA") == true)
    }

    @Test func assumeRoleChecksTrustAndIdentityAndIssuesSealedCredentials() async throws {
        let w = try await World()
        try await w.createUser("alice", policies: [allow(#""sts:AssumeRole""#)])
        try await w.createUser("bob")
        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":"sts:AssumeRole"}]}"#
        try await w.iamCall("CreateRole", ["RoleName": "builder", "AssumeRolePolicyDocument": trust])
        let arn = "arn:aws:iam::123456789012:role/builder"
        await expectError("AccessDenied") { _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.user("bob")) }
        // Same account, no trust for the root: denied too (the trust policy must always allow).
        await expectError("AccessDenied") { _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.root()) }
        await expectError("AccessDenied") {
            _ = try await sts(w, "AssumeRole", ["RoleArn": "arn:aws:iam::123456789012:role/nope", "RoleSessionName": "s1"], as: World.user("alice"))
        }
        await expectError("ValidationError") {
            _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1", "DurationSeconds": "7200"], as: World.user("alice"))
        }
        await expectError("ValidationError") {
            _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1", "DurationSeconds": "899"], as: World.user("alice"))
        }
        let body = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "build-1", "DurationSeconds": "900"], as: World.user("alice"))
        #expect(body.contains("<Arn>arn:aws:sts::123456789012:assumed-role/builder/build-1</Arn>"))
        #expect(value("Expiration", in: body) == "2023-11-14T22:28:20Z")
        let key = try #require(value("AccessKeyId", in: body))
        #expect(key.hasPrefix("ASIA"))
        let token = try #require(value("SessionToken", in: body))
        let claims = try #require(w.sessions.open(XMLUnescape(token)))
        #expect(claims.accessKeyID == key)
        #expect(claims.principal.arn == "arn:aws:sts::123456789012:assumed-role/builder/build-1")
        #expect(claims.principal.userID?.hasPrefix("AROA") == true)
        #expect(w.sessions.open("BERTH" + token.dropFirst(5)) == nil)
    }

    @Test func trustNamingTheAccountNeedsTheCallersIdentityPolicy() async throws {
        let w = try await World()
        try await w.createUser("alice", policies: [allow(#""sts:AssumeRole""#)])
        try await w.createUser("bob")
        let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}]}"#
        try await w.iamCall("CreateRole", ["RoleName": "any", "AssumeRolePolicyDocument": trust])
        let arn = "arn:aws:iam::123456789012:role/any"
        _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.user("alice"))
        _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.root())
        await expectError("AccessDenied") { _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.user("bob")) }
        // Another account's root is not trusted.
        await expectError("AccessDenied") { _ = try await sts(w, "AssumeRole", ["RoleArn": arn, "RoleSessionName": "s1"], as: World.root(World.other)) }
    }
}

/// The text of the first `<tag>…</tag>` in a Query-protocol XML body.
func value(_ tag: String, in body: String) -> String? {
    guard let a = body.range(of: "<\(tag)>"), let b = body.range(of: "</\(tag)>", range: a.upperBound..<body.endIndex) else { return nil }
    return String(body[a.upperBound..<b.lowerBound])
}

func XMLUnescape(_ s: String) -> String {
    s.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
        .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
        .replacingOccurrences(of: "&amp;", with: "&")
}
