import BerthAuth
import BerthCore
import BerthDirectory
import BerthPolicy
import BerthSupport
import Foundation
import Logging

/// The IAM Query API (`Version=2010-05-08`): users, access keys, groups, roles, inline and managed
/// policies of the caller's account. Every action is authorized as `iam:<Action>` on the IAM ARN it
/// touches (the account root may do everything in its own account).
public final class IAMService: Sendable {
    public static let version = "2010-05-08"
    public static let wire = QueryProtocol(namespace: "https://iam.amazonaws.com/doc/2010-05-08/")
    let directory: Directory
    let authorizer: any Authorizer
    let clock: any WallClock
    let logger: Logger
    /// Seals a secret access key for storage, bound to its key id.
    let seal: @Sendable (_ secret: String, _ accessKeyID: String) throws -> String

    public init(directory: Directory, authorizer: any Authorizer, clock: any WallClock = SystemWallClock(),
                logger: Logger = Logger(label: "berth.iam"),
                seal: @escaping @Sendable (String, String) throws -> String) {
        self.directory = directory
        self.authorizer = authorizer
        self.clock = clock
        self.logger = logger
        self.seal = seal
    }

    typealias Handler = @Sendable (IAMService, QueryParams, Principal) async throws -> [XMLNode]

    static let operations: [String: Handler] = baseOperations.merging(perKindOperations) { a, _ in a }
        .merging(oidcOperations) { a, _ in a }

    static let baseOperations: [String: Handler] = [
        "CreateUser": { try await $0.createUser($1, $2) },
        "GetUser": { try await $0.getUser($1, $2) },
        "ListUsers": { try await $0.listUsers($1, $2) },
        "DeleteUser": { try await $0.deleteUser($1, $2) },
        "CreateAccessKey": { try await $0.createAccessKey($1, $2) },
        "ListAccessKeys": { try await $0.listAccessKeys($1, $2) },
        "UpdateAccessKey": { try await $0.updateAccessKey($1, $2) },
        "DeleteAccessKey": { try await $0.deleteAccessKey($1, $2) },
        "CreateGroup": { try await $0.createGroup($1, $2) },
        "GetGroup": { try await $0.getGroup($1, $2) },
        "ListGroups": { try await $0.listEntities(.group, $1, $2) },
        "DeleteGroup": { try await $0.deleteGroup($1, $2) },
        "AddUserToGroup": { try await $0.addUserToGroup($1, $2) },
        "RemoveUserFromGroup": { try await $0.removeUserFromGroup($1, $2) },
        "ListGroupsForUser": { try await $0.listGroupsForUser($1, $2) },
        "CreateRole": { try await $0.createRole($1, $2) },
        "GetRole": { try await $0.getRole($1, $2) },
        "ListRoles": { try await $0.listEntities(.role, $1, $2) },
        "DeleteRole": { try await $0.deleteRole($1, $2) },
        "CreatePolicy": { try await $0.createPolicy($1, $2) },
        "GetPolicy": { try await $0.getPolicy($1, $2) },
        "DeletePolicy": { try await $0.deletePolicy($1, $2) },
        "ListPolicies": { try await $0.listPolicies($1, $2) },
    ]

    /// Put/Get/List/Delete<Kind>Policy, Attach/Detach<Kind>Policy and ListAttached<Kind>Policies.
    static var perKindOperations: [String: Handler] {
        var ops: [String: Handler] = [:]
        for kind in IAMEntityKind.allCases {
            let k = kind.title
            ops["Put\(k)Policy"] = { try await $0.putInlinePolicy(kind, $1, $2) }
            ops["Get\(k)Policy"] = { try await $0.getInlinePolicy(kind, $1, $2) }
            ops["List\(k)Policies"] = { try await $0.listInlinePolicies(kind, $1, $2) }
            ops["Delete\(k)Policy"] = { try await $0.deleteInlinePolicy(kind, $1, $2) }
            ops["Attach\(k)Policy"] = { try await $0.attachPolicy(kind, $1, $2) }
            ops["Detach\(k)Policy"] = { try await $0.detachPolicy(kind, $1, $2) }
            ops["ListAttached\(k)Policies"] = { try await $0.listAttachedPolicies(kind, $1, $2) }
        }
        return ops
    }

    /// Runs one action for an authenticated principal.
    public func handle(_ form: [String: String], principal: Principal, requestID: String) async -> QueryResponse {
        let action = form["Action"] ?? ""
        do {
            guard let op = Self.operations[action] else {
                throw QueryError("InvalidAction", "Could not find operation \(action) for version \(Self.version)")
            }
            let result = try await op(self, QueryParams(form), principal)
            return Self.wire.success(action, result, requestID: requestID)
        } catch {
            let e = QueryError(mapping: error)
            if e.status >= 500 { logger.error("iam action failed", metadata: ["error": "\(error)"]) }
            return Self.wire.error(e, requestID: requestID)
        }
    }

    // MARK: helpers

    func authorize(_ p: Principal, _ action: String, _ resource: String) async throws {
        try await authorizer.authorize(p, action: "iam:\(action)", resource: resource)
    }

    func arn(_ kind: IAMEntityKind, _ account: String, path: String = "/", _ name: String) -> String {
        ARN.iam(account: account, type: kind.rawValue, path: path, name: name).description
    }

    func newID(_ prefix: String) -> String {
        // 21 characters like AWS unique ids: the prefix and 17 of [A-Z2-7].
        prefix + AccessKeyGenerator.accessKeyID(prefix: "") + String(AccessKeyGenerator.accessKeyID(prefix: "").prefix(1))
    }

    func requireEntity(_ kind: IAMEntityKind, _ account: String, _ name: String) async throws -> IAMEntityRecord {
        try await directory.requireEntity(IAMEntityKey(kind, account, name))
    }

    /// The caller's user name when a `UserName` is omitted (IAM users act on themselves).
    func userName(_ p: QueryParams, _ principal: Principal) throws -> String? {
        if let n = try p.name("UserName", max: 64, required: false) { return n }
        if case .user(let name) = principal.kind { return name }
        return nil
    }

    func validatePolicy(_ text: String, _ options: PolicyParseOptions) throws {
        do {
            _ = try Policy(parsing: text, options: options)
        } catch {
            switch error.code {
            case .limitExceeded: throw QueryError.limitExceeded(error.message)
            case .malformedPolicyDocument: throw QueryError.malformedPolicy(error.message)
            }
        }
    }

    /// `MaxItems` (1…1000, default 100) and `Marker` paging over a sorted list; `Marker` is opaque
    /// (the base64 of the last key returned). Returns the page and the `IsTruncated`/`Marker` members.
    func page<T>(_ items: [T], _ p: QueryParams, key: (T) -> String) throws -> ([T], [XMLNode]) {
        let max = try p.int("MaxItems") ?? 100
        guard (1...1000).contains(max) else {
            throw QueryError.validation(ValidationMessage(.text("\(max)"), at: "maxItems", .valueBetween(1, 1000)))
        }
        var rest = items[...]
        if let marker = p["Marker"] {
            guard let data = Data(base64Encoded: marker), let last = String(data: data, encoding: .utf8) else {
                throw QueryError.invalidInput("Invalid Marker.")
            }
            rest = rest.drop { key($0) <= last }
        }
        let out = Array(rest.prefix(max))
        guard rest.count > max, let last = out.last else { return (out, [.text("IsTruncated", "false")]) }
        return (out, [.text("IsTruncated", "true"), .text("Marker", Data(key(last).utf8).base64EncodedString())])
    }

    func entityXML(_ e: IAMEntityRecord) -> [XMLNode] {
        let t = e.kind.title
        var out: [XMLNode] = [
            .text("Path", e.path), .text("\(t)Name", e.name), .text("\(t)Id", e.id), .text("Arn", e.arn),
            .text("CreateDate", QueryProtocol.timestamp(e.createdAt)),
        ]
        if e.kind == .role {
            if let d = e.assumeRolePolicy { out.append(.text("AssumeRolePolicyDocument", PercentEncoding.encoded(d))) }
            if let d = e.description { out.append(.text("Description", d)) }
            out.append(.text("MaxSessionDuration", String(e.maxSessionDuration ?? 3600)))
        }
        return out
    }

    // MARK: users

    func createUser(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("UserName")!
        let path = try p.path()
        let account = principal.accountID
        try await authorize(principal, "CreateUser", arn(.user, account, path: path, name))
        let user = IAMEntityRecord(kind: .user, accountID: account, name: name, path: path, id: newID("AIDA"), createdAt: clock.now())
        guard try await directory.createEntity(user) else {
            throw QueryError.alreadyExists("User with name \(name) already exists.")
        }
        return [.element("User", entityXML(user))]
    }

    func getUser(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let account = principal.accountID
        guard let name = try userName(p, principal) else {
            // The root user describes itself.
            try await authorize(principal, "GetUser", Principal.rootARN(account))
            let created = try await directory.account(account)?.createdAt ?? 0
            return [.element("User", [
                .text("UserId", account), .text("Arn", Principal.rootARN(account)),
                .text("CreateDate", QueryProtocol.timestamp(created)),
            ])]
        }
        try await authorize(principal, "GetUser", arn(.user, account, name))
        return [.element("User", entityXML(try await requireEntity(.user, account, name)))]
    }

    func listUsers(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        try await listEntities(.user, p, principal)
    }

    func listEntities(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let account = principal.accountID
        try await authorize(principal, "List\(kind.title)s", arn(kind, account, "*"))
        let prefix = p["PathPrefix"] ?? "/"
        let all = try await directory.entities(kind, account: account).filter { $0.path.hasPrefix(prefix) }
        let (items, more) = try page(all, p) { $0.name }
        return [.list("\(kind.title)s", items.map(entityXML))] + more
    }

    func deleteUser(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("UserName")!
        let account = principal.accountID
        let user = try await requireEntity(.user, account, name)
        try await authorize(principal, "DeleteUser", user.arn)
        try await directory.deleteEntity(IAMEntityKey(.user, account, name))
        return []
    }

    // MARK: access keys

    func keyOwner(_ p: QueryParams, _ principal: Principal) async throws -> (name: String?, arn: String) {
        let account = principal.accountID
        guard let name = try userName(p, principal) else { return (nil, Principal.rootARN(account)) }
        return (name, try await requireEntity(.user, account, name).arn)
    }

    func createAccessKey(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let account = principal.accountID
        let owner = try await keyOwner(p, principal)
        try await authorize(principal, "CreateAccessKey", owner.arn)
        let id = AccessKeyGenerator.accessKeyID()
        let secret = AccessKeyGenerator.secretAccessKey()
        let now = clock.now()
        // The quota (AccessKeysPerUser) is checked with the insert, in one transaction.
        try await directory.addAccessKey(AccessKeyRecord(accessKeyID: id, accountID: account, principalARN: owner.arn,
                                                         sealedSecret: try seal(secret, id), createdAt: now))
        var key: [XMLNode] = []
        if let n = owner.name { key.append(.text("UserName", n)) }
        key += [.text("AccessKeyId", id), .text("Status", "Active"), .text("SecretAccessKey", secret),
                .text("CreateDate", QueryProtocol.timestamp(now))]
        return [.element("AccessKey", key)]
    }

    func listAccessKeys(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let owner = try await keyOwner(p, principal)
        try await authorize(principal, "ListAccessKeys", owner.arn)
        let all = try await directory.accessKeys(account: principal.accountID, principalARN: owner.arn)
        let (keys, more) = try page(all, p) { $0.accessKeyID }
        return [.list("AccessKeyMetadata", keys.map { k in
            var m: [XMLNode] = []
            if let n = owner.name { m.append(.text("UserName", n)) }
            return m + [.text("AccessKeyId", k.accessKeyID), .text("Status", k.status),
                        .text("CreateDate", QueryProtocol.timestamp(k.createdAt))]
        })] + more
    }

    func ownedKey(_ p: QueryParams, _ principal: Principal, _ action: String) async throws -> AccessKeyRecord {
        let id = try p.required("AccessKeyId")
        let owner = try await keyOwner(p, principal)
        try await authorize(principal, action, owner.arn)
        guard let k = try await directory.accessKey(id), k.accountID == principal.accountID, k.principalARN == owner.arn else {
            throw QueryError.noSuchEntity("The Access Key with id \(id) cannot be found.")
        }
        return k
    }

    func updateAccessKey(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let text = try p.required("Status")
        guard let status = AccessKeyStatus(rawValue: text) else {
            throw QueryError.validation(ValidationMessage(.text("\(text)"), at: "status", .oneOf(["Active", "Inactive"])))
        }
        let k = try await ownedKey(p, principal, "UpdateAccessKey")
        try await directory.setAccessKeyStatus(k.accessKeyID, status)
        return []
    }

    func deleteAccessKey(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let k = try await ownedKey(p, principal, "DeleteAccessKey")
        try await directory.deleteAccessKey(k.accessKeyID)
        return []
    }

    // MARK: groups

    func createGroup(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("GroupName", max: 128)!
        let path = try p.path()
        let account = principal.accountID
        try await authorize(principal, "CreateGroup", arn(.group, account, path: path, name))
        let group = IAMEntityRecord(kind: .group, accountID: account, name: name, path: path, id: newID("AGPA"), createdAt: clock.now())
        guard try await directory.createEntity(group) else {
            throw QueryError.alreadyExists("Group with name \(name) already exists.")
        }
        return [.element("Group", entityXML(group))]
    }

    func getGroup(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("GroupName", max: 128)!
        let account = principal.accountID
        let group = try await requireEntity(.group, account, name)
        try await authorize(principal, "GetGroup", group.arn)
        let users = try await directory.users(inGroup: name, account: account)
        let (members, more) = try page(users, p) { $0.name }
        return [.element("Group", entityXML(group)), .list("Users", members.map(entityXML))] + more
    }

    func deleteGroup(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("GroupName", max: 128)!
        let account = principal.accountID
        let group = try await requireEntity(.group, account, name)
        try await authorize(principal, "DeleteGroup", group.arn)
        try await directory.deleteEntity(IAMEntityKey(.group, account, name))
        return []
    }

    func membership(_ p: QueryParams, _ principal: Principal, _ action: String) async throws -> (group: String, user: String) {
        let group = try p.name("GroupName", max: 128)!
        let user = try p.name("UserName")!
        let account = principal.accountID
        let g = try await requireEntity(.group, account, group)
        _ = try await requireEntity(.user, account, user)
        try await authorize(principal, action, g.arn)
        return (group, user)
    }

    func addUserToGroup(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let m = try await membership(p, principal, "AddUserToGroup")
        try await directory.addUser(m.user, toGroup: m.group, account: principal.accountID)
        return []
    }

    func removeUserFromGroup(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let m = try await membership(p, principal, "RemoveUserFromGroup")
        guard try await directory.removeUser(m.user, fromGroup: m.group, account: principal.accountID) else {
            throw QueryError.noSuchEntity("The user with name \(m.user) is not a member of group \(m.group).")
        }
        return []
    }

    func listGroupsForUser(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("UserName")!
        let account = principal.accountID
        let user = try await requireEntity(.user, account, name)
        try await authorize(principal, "ListGroupsForUser", user.arn)
        let groups = try await directory.groups(ofUser: name, account: account)
        let (items, more) = try page(groups, p) { $0.name }
        return [.list("Groups", items.map(entityXML))] + more
    }

    // MARK: roles

    func createRole(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("RoleName")!
        let path = try p.path()
        let trust = try p.required("AssumeRolePolicyDocument")
        let duration = try p.int("MaxSessionDuration") ?? 3600
        guard (3600...43200).contains(duration) else {
            throw QueryError.validation(ValidationMessage(.text("\(duration)"), at: "maxSessionDuration", .valueBetween(3600, 43200)))
        }
        if let d = p["Description"], d.utf8.count > 1000 {
            throw QueryError.validation(ValidationMessage(.omitted, at: "description", .lengthAtMost(1000)))
        }
        var trustOptions = PolicyParseOptions.resource
        trustOptions.maximumSize = 2048
        trustOptions.restrictsCharacters = true
        try validatePolicy(trust, trustOptions)
        let account = principal.accountID
        try await authorize(principal, "CreateRole", arn(.role, account, path: path, name))
        let role = IAMEntityRecord(kind: .role, accountID: account, name: name, path: path, id: newID("AROA"),
                                   createdAt: clock.now(), assumeRolePolicy: trust, maxSessionDuration: duration,
                                   description: p["Description"])
        guard try await directory.createEntity(role) else {
            throw QueryError.alreadyExists("Role with name \(name) already exists.")
        }
        return [.element("Role", entityXML(role))]
    }

    func getRole(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("RoleName")!
        let role = try await requireEntity(.role, principal.accountID, name)
        try await authorize(principal, "GetRole", role.arn)
        return [.element("Role", entityXML(role))]
    }

    func deleteRole(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("RoleName")!
        let account = principal.accountID
        let role = try await requireEntity(.role, account, name)
        try await authorize(principal, "DeleteRole", role.arn)
        try await directory.deleteEntity(IAMEntityKey(.role, account, name))
        return []
    }

    // MARK: inline policies

    func entityName(_ kind: IAMEntityKind, _ p: QueryParams) throws -> String {
        try p.name("\(kind.title)Name", max: kind == .group ? 128 : 64)!
    }

    func putInlinePolicy(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let policyName = try p.name("PolicyName", max: 128)!
        let document = try p.required("PolicyDocument")
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "Put\(kind.title)Policy", entity.arn)
        try validatePolicy(document, Directory.inlinePolicyOptions(kind))
        // The quota is for all inline policies of the entity together, checked with the write.
        try await directory.putInlinePolicy(IAMEntityKey(kind, principal.accountID, name), name: policyName, document: document)
        return []
    }

    func getInlinePolicy(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let policyName = try p.name("PolicyName", max: 128)!
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "Get\(kind.title)Policy", entity.arn)
        guard let doc = try await directory.inlinePolicy(IAMEntityKey(kind, principal.accountID, name), name: policyName) else {
            throw QueryError.noSuchEntity("The \(kind.rawValue) policy with name \(policyName) cannot be found.")
        }
        return [.text("\(kind.title)Name", name), .text("PolicyName", policyName),
                .text("PolicyDocument", PercentEncoding.encoded(doc))]
    }

    func listInlinePolicies(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "List\(kind.title)Policies", entity.arn)
        let names = try await directory.inlinePolicies(IAMEntityKey(kind, principal.accountID, name)).map(\.name)
        let (items, more) = try page(names, p) { $0 }
        return [.strings("PolicyNames", items)] + more
    }

    func deleteInlinePolicy(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let policyName = try p.name("PolicyName", max: 128)!
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "Delete\(kind.title)Policy", entity.arn)
        guard try await directory.deleteInlinePolicy(IAMEntityKey(kind, principal.accountID, name), name: policyName) else {
            throw QueryError.noSuchEntity("The \(kind.rawValue) policy with name \(policyName) cannot be found.")
        }
        return []
    }

    // MARK: managed policies

    /// A managed policy by ARN: an AWS managed ECR policy or a customer managed one of the caller's account.
    func resolvePolicy(_ arn: String, _ principal: Principal) async throws -> (name: String, arn: String, record: ManagedPolicyRecord?) {
        if let m = Directory.awsManagedPolicy(arn: arn) { return (m.name, m.arn, nil) }
        guard arn.hasPrefix("arn:aws:iam::"), arn.utf8.count <= 2048 else {
            throw QueryError.invalidInput("ARN \(arn) is not valid.")
        }
        guard let r = try await directory.managedPolicy(arn: arn), r.accountID == principal.accountID else {
            throw QueryError.noSuchEntity("Policy \(arn) does not exist or is not attachable.")
        }
        return (r.name, r.arn, r)
    }

    /// A stable 21-character id for an AWS managed policy.
    static func awsManagedPolicyID(_ arn: String) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var out = "ANPA"
        for round in 0..<17 {
            for b in arn.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ UInt64(round)) &* 0x100_0000_01b3
            out.append(alphabet[Int(h >> 59)])
        }
        return out
    }

    func policyXML(_ name: String, _ arn: String, _ r: ManagedPolicyRecord?, attachments: Int) -> [XMLNode] {
        var out: [XMLNode] = [
            .text("PolicyName", name), .text("PolicyId", r?.id ?? Self.awsManagedPolicyID(arn)),
            .text("Arn", arn), .text("Path", r?.path ?? "/"), .text("DefaultVersionId", "v1"),
            .text("AttachmentCount", String(attachments)), .text("PermissionsBoundaryUsageCount", "0"),
            .text("IsAttachable", "true"),
        ]
        if let d = r?.description { out.append(.text("Description", d)) }
        let t = QueryProtocol.timestamp(r?.createdAt ?? 1_575_936_000)
        out += [.text("CreateDate", t), .text("UpdateDate", t)]
        return out
    }

    func createPolicy(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try p.name("PolicyName", max: 128)!
        let path = try p.path()
        let document = try p.required("PolicyDocument")
        let account = principal.accountID
        let record = ManagedPolicyRecord(accountID: account, name: name, path: path, id: newID("ANPA"), document: document,
                                         description: p["Description"], createdAt: clock.now())
        try await authorize(principal, "CreatePolicy", record.arn)
        try validatePolicy(document, .iamManagedPolicy)
        guard try await directory.createManagedPolicy(record) else {
            throw QueryError.alreadyExists("A policy called \(name) already exists. Duplicate names are not allowed.")
        }
        return [.element("Policy", policyXML(name, record.arn, record, attachments: 0))]
    }

    func getPolicy(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let policy = try await resolvePolicy(try p.required("PolicyArn"), principal)
        try await authorize(principal, "GetPolicy", policy.arn)
        let count = try await directory.attachmentCount(arn: policy.arn)
        return [.element("Policy", policyXML(policy.name, policy.arn, policy.record, attachments: count))]
    }

    func deletePolicy(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let arn = try p.required("PolicyArn")
        let policy = try await resolvePolicy(arn, principal)
        try await authorize(principal, "DeletePolicy", policy.arn)
        guard policy.record != nil else {
            throw QueryError("UnmodifiableEntity", "Cannot delete an AWS managed policy: \(arn)")
        }
        try await directory.deleteManagedPolicy(arn: policy.arn)
        return []
    }

    func listPolicies(_ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        try await authorize(principal, "ListPolicies", ARN.iam(account: principal.accountID, type: "policy", name: "*").description)
        var all: [(arn: String, name: String, record: ManagedPolicyRecord?)] = []
        if p["Scope"] != "Local" { all += ManagedPolicy.allCases.map { ($0.arn, $0.name, nil) } }
        if p["Scope"] != "AWS" { all += try await directory.managedPolicies(account: principal.accountID).map { ($0.arn, $0.name, $0) } }
        let (items, more) = try page(all.sorted { $0.arn < $1.arn }, p) { $0.arn }
        var out: [[XMLNode]] = []
        for i in items { out.append(policyXML(i.name, i.arn, i.record, attachments: try await directory.attachmentCount(arn: i.arn))) }
        return [.list("Policies", out)] + more
    }

    func attachPolicy(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let entity = try await requireEntity(kind, principal.accountID, name)
        let policy = try await resolvePolicy(try p.required("PolicyArn"), principal)
        try await authorize(principal, "Attach\(kind.title)Policy", entity.arn)
        try await directory.attachPolicy(IAMEntityKey(kind, principal.accountID, name), arn: policy.arn)
        return []
    }

    func detachPolicy(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let arn = try p.required("PolicyArn")
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "Detach\(kind.title)Policy", entity.arn)
        guard try await directory.detachPolicy(IAMEntityKey(kind, principal.accountID, name), arn: arn) else {
            throw QueryError.noSuchEntity("Policy \(arn) was not found.")
        }
        return []
    }

    func listAttachedPolicies(_ kind: IAMEntityKind, _ p: QueryParams, _ principal: Principal) async throws -> [XMLNode] {
        let name = try entityName(kind, p)
        let entity = try await requireEntity(kind, principal.accountID, name)
        try await authorize(principal, "ListAttached\(kind.title)Policies", entity.arn)
        var items: [[XMLNode]] = []
        let (arns, more) = try page(try await directory.attachedPolicies(IAMEntityKey(kind, principal.accountID, name)), p) { $0 }
        for arn in arns {
            let policyName = Directory.awsManagedPolicy(arn: arn)?.name ?? arn.split(separator: "/").last.map(String.init) ?? arn
            items.append([.text("PolicyName", policyName), .text("PolicyArn", arn)])
        }
        return [.list("AttachedPolicies", items)] + more
    }
}

extension IAMEntityKind {
    /// `User`, `Group`, `Role`: as in action and member names.
    var title: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
}

extension QueryError {
    /// The Query error for a rule the directory enforced.
    init(_ e: DirectoryError) {
        switch e {
        case .noSuchEntity(let key):
            self = .noSuchEntity("The \(key.kind.rawValue) with name \(key.name) cannot be found.")
        case .noSuchPolicy(let arn):
            self = .noSuchEntity("Policy \(arn) does not exist or is not attachable.")
        case .entityInUse(let key):
            switch key.kind {
            case .user: self = .deleteConflict("Cannot delete entity, must delete access keys, policies and group memberships first.")
            case .group: self = .deleteConflict("Cannot delete entity, must remove users and policies from group first.")
            case .role: self = .deleteConflict("Cannot delete entity, must delete policies first.")
            }
        case .policyAttached:
            self = .deleteConflict("Cannot delete a policy attached to entities.")
        case .accessKeyQuota(let limit):
            self = .limitExceeded("Cannot exceed quota for AccessKeysPerUser: \(limit)")
        case .groupsPerUserQuota(let limit):
            self = .limitExceeded("Cannot exceed quota for GroupsPerUser: \(limit)")
        case .attachedPolicyQuota(let kind, let limit):
            self = .limitExceeded("Cannot exceed quota for PoliciesPer\(kind.title): \(limit)")
        case .inlinePolicySizeQuota(let key, let limit):
            self = .limitExceeded("Maximum policy size of \(limit) bytes exceeded for \(key.kind.rawValue) \(key.name)")
        case .accessKeyOfAnotherAccount(let id, _):
            self = .invalidInput("The access key \(id) belongs to another account.")
        }
    }
}
