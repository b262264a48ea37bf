import BerthAuth
import BerthCore
import BerthDirectory
@testable import BerthIAM
import BerthPolicy
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Testing

/// No input makes IAM or STS answer 500: every action is run with every parameter, one at a time, set
/// to odd values (empty, control characters, too long, not a number, not an ARN, not JSON, …) while the
/// others stay valid, on the in-memory store (all of them) and on SQLite (those a store could mishandle).
@Suite struct NoServerErrorForBadInput {
    static let doc = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*","Resource":"*"}]}"#
    static let trust = #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#

    /// Valid values for every parameter any action reads.
    static let valid: [String: String] = [
        "UserName": "alice", "GroupName": "devs", "RoleName": "builder", "PolicyName": "pull", "PolicyDocument": doc,
        "PolicyArn": "arn:aws:iam::123456789012:policy/pull", "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "Status": "Inactive",
        "Path": "/", "PathPrefix": "/", "MaxItems": "10", "AssumeRolePolicyDocument": trust, "MaxSessionDuration": "3600",
        "Description": "d", "Url": "https://token.example.com", "ClientIDList.member.1": "sts.amazonaws.com",
        "ThumbprintList.member.1": String(repeating: "a", count: 40),
        "OpenIDConnectProviderArn": "arn:aws:iam::123456789012:oidc-provider/token.example.com", "Scope": "All",
        "RoleArn": "arn:aws:iam::123456789012:role/builder", "RoleSessionName": "session", "DurationSeconds": "900",
        "WebIdentityToken": "a.b.c",
    ]

    static let odd: [String] = [
        "", "\u{0}", "é😀", String(repeating: "a", count: 3000), "-1", "99999999999999999999", "//",
        "arn:aws:iam::123456789012:", "arn:aws:iam::210987654321:policy/pull", "{", #"{"Statement":"x"}"#, "https://a/../b",
    ]
    /// What a store might mishandle (control characters, non-ASCII, size): the SQLite run uses these.
    static let storageOdd: [String] = ["\u{0}", "a\u{0}b", "é😀", String(repeating: "a", count: 3000)]

    enum Backend: String, CaseIterable, Sendable { case memory, sqlite }

    func store(_ backend: Backend) throws -> any MetadataStore {
        switch backend {
        case .memory: return InMemoryMetadataStore()
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-fuzz-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return try SQLiteMetadataStore(path: dir + "/berth.db")
        }
    }

    @Test(arguments: Backend.allCases)
    func noActionAnswers500(_ backend: Backend) async throws {
        let store = try store(backend)
        let clock = ManualWallClock(1_700_000_000)
        let directory = Directory(store: store)
        let authorizer = PolicyAuthorizer(directory: directory, region: "us-east-1", clock: clock)
        let iam = IAMService(directory: directory, authorizer: authorizer, clock: clock) { secret, _ in "sealed:\(secret)" }
        let sts = STSService(directory: directory, authorizer: authorizer,
                             sessions: SessionTokenCodec(box: try SecretBox(key: SecretBox.generateKey())), clock: clock)
        let account = "123456789012"
        _ = try await store.createAccount(account, at: 0)
        let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT")
        let user = Principal(accountID: account, arn: "arn:aws:iam::\(account):user/alice", accessKeyID: "AKIAUSER")
        let iamActions = IAMService.operations.keys.sorted()
        let stsActions = ["GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity"]
        var failures: [String] = []
        // Some entities to act on, so that the checks after validation run too.
        for (action, params) in [("CreateUser", [:]), ("CreateGroup", [:]), ("CreateRole", [:]), ("CreatePolicy", [:]),
                                 ("AddUserToGroup", [:]), ("CreateOpenIDConnectProvider", [:])] as [(String, [String: String])] {
            var form = Self.valid.merging(params) { $1 }
            form["Action"] = action
            _ = await iam.handle(form, principal: root, requestID: "r")
        }
        for field in Self.valid.keys.sorted() {
            for value in backend == .memory ? Self.odd : Self.storageOdd {
                var form = Self.valid
                form[field] = value
                for action in iamActions {
                    form["Action"] = action
                    for p in backend == .memory ? [root, user] : [root] {
                        let r = await iam.handle(form, principal: p, requestID: "r")
                        if r.status >= 500 { failures.append("\(action) \(field)=\(value.prefix(40).debugDescription): \(r.errorCode ?? "")") }
                    }
                }
                for action in stsActions {
                    form["Action"] = action
                    let r = await sts.handle(form, principal: root, requestID: "r")
                    if r.status >= 500 { failures.append("\(action) \(field)=\(value.prefix(40).debugDescription): \(r.errorCode ?? "")") }
                    let u = await sts.handleUnsigned(form, requestID: "r")
                    if u.status >= 500 { failures.append("unsigned \(action) \(field)=\(value.prefix(40).debugDescription): \(u.errorCode ?? "")") }
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) answers of 500, e.g. \(failures.prefix(20).joined(separator: "\n"))")
    }
}
