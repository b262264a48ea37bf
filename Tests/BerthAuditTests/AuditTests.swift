import BerthAudit
import BerthCore
import BerthSupport
import Foundation
import Testing

/// Grants everything to an account's own principals, denies one ARN: enough to see the door authorize.
struct DenyOne: Authorizer {
    let denied: String
    func authorize(_ principal: Principal, action: String, resource: String) async throws {
        if principal.arn == denied { throw BerthError.denied("\(principal.arn) is not authorized to perform: \(action)") }
    }
}

@Suite struct AuditTests {
    static let account = "111111111111"
    static let other = "222222222222"

    static func event(_ n: Int, name: String = "PutImage", account: String = account, user: String? = "alice",
                      repository: String? = "app", params: JSONValue? = nil, at time: Double? = nil) -> AuditEvent {
        let identity = user.map {
            AuditEvent.UserIdentity(type: "IAMUser", principalID: "AIDA\(n)", arn: "arn:aws:iam::\(account):user/\($0)", accountID: account,
                                    accessKeyID: "AKIA\($0.uppercased())", userName: $0)
        }
        return AuditEvent(eventID: String(format: "e%05d", n), eventTime: time ?? Double(1_000 + n), eventSource: "ecr.amazonaws.com",
                          eventName: name, awsRegion: "us-east-1", userIdentity: identity, requestParameters: params,
                          requestID: "r\(n)", readOnly: AuditEvent.isReadOnly(name),
                          resources: repository.map { [AuditEvent.Resource(type: "AWS::ECR::Repository", name: $0)] } ?? [],
                          recipientAccountID: account)
    }

    enum Backend: String, CaseIterable { case sqlite, memory }

    func store(_ backend: Backend) throws -> (any AuditStore, String?) {
        switch backend {
        case .memory: return (InMemoryAuditStore(), nil)
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("berth-audit-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return (try SQLiteAuditStore(path: dir + "/audit.db"), dir)
        }
    }

    /// Each lookup attribute, the account scope, the time range and the newest-first paging.
    @Test(arguments: Backend.allCases)
    func lookupByEachAttribute(_ backend: Backend) async throws {
        let (s, dir) = try store(backend)
        defer { if let dir { try? FileManager.default.removeItem(atPath: dir) } }
        var events = (0..<30).map { Self.event($0) }
        events.append(Self.event(30, name: "DescribeImages", user: "bob", repository: "web"))
        events.append(Self.event(31, name: "CreateUser", account: Self.other, user: "carol", repository: nil))
        try await s.append(events)
        try await s.append([events[0]])  // the same event twice is kept once
        func ids(_ q: AuditQuery) async throws -> [String] { try await s.lookup(q).map(\.eventID) }
        #expect(try await ids(AuditQuery(limit: 100)).count == 32)
        var q = AuditQuery(limit: 100)
        q.account = Self.account
        #expect(try await ids(q).count == 31)
        q.attribute = (.eventName, "DescribeImages"); #expect(try await ids(q) == ["e00030"])
        q.attribute = (.username, "bob"); #expect(try await ids(q) == ["e00030"])
        q.attribute = (.accessKeyID, "AKIABOB"); #expect(try await ids(q) == ["e00030"])
        q.attribute = (.resourceName, "web"); #expect(try await ids(q) == ["e00030"])
        q.attribute = (.resourceType, "AWS::ECR::Repository"); #expect(try await ids(q).count == 31)
        q.attribute = (.readOnly, "true"); #expect(try await ids(q) == ["e00030"])
        q.attribute = (.eventSource, "ecr.amazonaws.com"); #expect(try await ids(q).count == 31)
        q.attribute = (.eventID, "e00007"); #expect(try await ids(q) == ["e00007"])
        q.account = Self.other
        q.attribute = (.username, "carol"); #expect(try await ids(q) == ["e00031"])
        // Time range and paging, newest first.
        var page = AuditQuery(startTime: 1_005, endTime: 1_014, limit: 4)
        page.account = Self.account
        var seen: [String] = []
        while true {
            let got = try await s.lookup(page)
            seen += got.map(\.eventID)
            guard got.count == page.limit, let last = got.last else { break }
            page.after = (last.eventTime, last.eventID)
        }
        #expect(seen == (5...14).reversed().map { String(format: "e%05d", $0) })
        let found = try #require(try await s.lookup(AuditQuery(attribute: (.eventID, "e00003"))).first)
        #expect(found.resources == [AuditEvent.Resource(type: "AWS::ECR::Repository", name: "app")])
        let record = try JSONValue.parse(Array(found.record.utf8))
        #expect(record["eventName"] == "PutImage" && record["userIdentity"]?["userName"] == "alice")
        // Export is oldest first; retention removes what is older than the cutoff.
        #expect(try await s.export(since: 1_028, after: nil, limit: 10).map(\.eventID) == ["e00028", "e00029", "e00030", "e00031"])
        #expect(try await s.removeEvents(before: 1_010) == 10)
        #expect(try await s.lookup(AuditQuery(limit: 100)).count == 22)
    }

    /// The record the stores keep (`encodedRecord`, written directly) is the text of `json`, byte for byte,
    /// whichever members are present.
    @Test func encodedRecordIsTheTextOfJSON() throws {
        var events = [Self.event(1), Self.event(2, user: nil, repository: nil, params: ["repositoryName": "a\"b\\c\n", "é": [1, .null]])]
        var e = Self.event(3, name: "DescribeImages")
        e.errorCode = "RepositoryNotFoundException"
        e.errorMessage = "The repository with name 'x' does not exist"
        e.sourceIPAddress = "10.0.0.1"
        e.userAgent = "aws-cli/2 \u{01}"
        e.responseElements = ["image": ["imageId": ["imageTag": "v1"]]]
        e.resources = [AuditEvent.Resource(type: "AWS::ECR::Repository", name: "app", arn: "arn:aws:ecr:us-east-1:1:repository/app"),
                       AuditEvent.Resource(type: "AWS::KMS::Key", name: "k")]
        events.append(e)
        e.recipientAccountID = nil
        e.userIdentity = .anonymous
        events.append(e)
        e.userIdentity = AuditEvent.UserIdentity(type: "AssumedRole", principalID: "AROA1:s", arn: "arn:aws:sts::1:assumed-role/r/s",
                                                 accountID: "1", accessKeyID: "ASIA1", userName: "s", sessionIssuerARN: "arn:aws:iam::1:role/r")
        e.eventTime = 1_765_112_345.678
        events.append(e)
        for event in events {
            #expect(String(decoding: event.encodedRecord(), as: UTF8.self) == String(decoding: event.json.encoded(), as: UTF8.self))
        }
    }

    @Test func secretsAreHidden() {
        let params: JSONValue = ["userName": "alice", "Password": "hunter2", "nested": ["secretAccessKey": "S", "keep": "k"],
                                 "list": [["layerPartBlob": "AAAA"]], "policyText": "{}",
                                 "SecretString": "upstream-token", "SecretBinary": "c2VjcmV0"]
        let r = AuditRedaction.redacted(params)
        let text = String(decoding: r.encoded(), as: UTF8.self)
        for secret in ["hunter2", "\"S\"", "AAAA", "{}", "upstream-token", "c2VjcmV0"] { #expect(!text.contains(secret), "\(secret) in \(text)") }
        #expect(r["userName"] == "alice" && r["nested"]?["keep"] == "k")
        #expect(r["Password"] == AuditRedaction.hidden)
    }

    @Test func trailBuffersAndFlushes() async throws {
        let store = InMemoryAuditStore()
        let trail = AuditTrail(store: store, retentionDays: 1, clock: ManualWallClock(200_000))
        trail.record(Self.event(1, at: 100))
        trail.record(Self.event(2, at: 199_000))
        #expect(try await store.lookup(AuditQuery()).isEmpty)
        await trail.flush()
        #expect(try await store.lookup(AuditQuery()).count == 2)
        #expect(try await trail.applyRetention() == 1)
        #expect(try await store.lookup(AuditQuery()).map(\.eventID) == ["e00002"])
    }

    /// `LookupEvents` as the CLI sends it: one attribute, times, MaxResults, NextToken; CloudTrail's errors.
    @Test func lookupEventsOverTheWire() async throws {
        let store = InMemoryAuditStore()
        try await store.append((0..<5).map { Self.event($0) } + [Self.event(9, account: Self.other, user: "carol")])
        let trail = AuditTrail(store: store, retentionDays: 90)
        let bob = Principal(accountID: Self.account, arn: "arn:aws:iam::\(Self.account):user/bob", accessKeyID: "AKIAB")
        let service = CloudTrailService(trail: trail, authorizer: DenyOne(denied: bob.arn))
        let root = Principal(accountID: Self.account, arn: Principal.rootARN(Self.account), accessKeyID: "AKIAR")
        let target = CloudTrailService.targetPrefix + "LookupEvents"
        func call(_ body: String, as p: Principal = root) async -> (Int, JSONValue, String?) {
            let r = await service.handle(target: target, body: Array(body.utf8), principal: p)
            return (r.status, (try? JSONValue.parse(r.body)) ?? .null, r.errorType)
        }
        let (status, page1, _) = await call(#"{"MaxResults":2,"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"alice"}]}"#)
        #expect(status == 200)
        guard case .array(let events)? = page1["Events"], let token = page1["NextToken"]?.stringValue else {
            Issue.record("no page: \(page1)"); return
        }
        #expect(events.map { $0["EventId"]?.stringValue } == ["e00004", "e00003"])
        #expect(events[0]["Username"] == "alice" && events[0]["ReadOnly"] == "false")
        #expect(events[0]["Resources"] == [["ResourceType": "AWS::ECR::Repository", "ResourceName": "app"]])
        let (_, page2, _) = await call(#"{"MaxResults":50,"NextToken":"\#(token)"}"#)
        guard case .array(let rest)? = page2["Events"] else { Issue.record("no second page"); return }
        // Another account's events are not this account's to read.
        #expect(rest.map { $0["EventId"]?.stringValue } == ["e00002", "e00001", "e00000"] && page2["NextToken"] == nil)
        #expect(await call(#"{"LookupAttributes":[{"AttributeKey":"Nope","AttributeValue":"x"}]}"#).2 == "InvalidLookupAttributesException")
        #expect(await call(#"{"LookupAttributes":[{"AttributeKey":"Username","AttributeValue":"a"},{"AttributeKey":"EventName","AttributeValue":"b"}]}"#).2
                == "InvalidLookupAttributesException")
        #expect(await call(#"{"StartTime":20,"EndTime":10}"#).2 == "InvalidTimeRangeException")
        #expect(await call(#"{"MaxResults":51}"#).2 == "InvalidMaxResultsException")
        #expect(await call(#"{"NextToken":"!!"}"#).2 == "InvalidNextTokenException")
        #expect(await call("[1]").2 == "SerializationException")
        let denied = await call("{}", as: bob)
        #expect(denied.0 == 400 && denied.2 == "AccessDeniedException")
        let unknown = await service.handle(target: CloudTrailService.targetPrefix + "StartLogging", body: Array("{}".utf8), principal: root)
        #expect(unknown.errorType == "UnknownOperationException")
    }
}
