import BerthEvents
import BerthSupport
import Testing

/// EventBridge's pattern matching (the common subset) against an ECR event, as a table.
@Suite struct EventPatternTests {
    static let push = """
        {"version":"0","id":"e1","detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012",
         "time":"2026-01-01T00:00:00Z","region":"us-east-1","resources":[],
         "detail":{"result":"SUCCESS","repository-name":"team/app","image-digest":"sha256:ab","action-type":"PUSH",
                   "image-tag":"v1.2","count":5,"tags":["a","b"]}}
        """

    static let cases: [(pattern: String, matches: Bool)] = [
        (#"{"source":["aws.ecr"]}"#, true),
        (#"{"source":["aws.s3"]}"#, false),
        (#"{"source":["aws.s3","aws.ecr"]}"#, true),
        (#"{"detail-type":["ECR Image Action"],"detail":{"action-type":["PUSH"]}}"#, true),
        (#"{"detail-type":["ECR Image Action"],"detail":{"action-type":["DELETE"]}}"#, false),
        (#"{"detail":{"repository-name":[{"prefix":"team/"}]}}"#, true),
        (#"{"detail":{"repository-name":[{"prefix":"other/"}]}}"#, false),
        (#"{"detail":{"image-tag":[{"suffix":".2"}]}}"#, true),
        (#"{"detail":{"action-type":[{"equals-ignore-case":"push"}]}}"#, true),
        (#"{"detail":{"action-type":[{"anything-but":"DELETE"}]}}"#, true),
        (#"{"detail":{"action-type":[{"anything-but":["PUSH","DELETE"]}]}}"#, false),
        (#"{"detail":{"repository-name":[{"anything-but":{"prefix":"team/"}}]}}"#, false),
        (#"{"detail":{"repository-name":[{"anything-but":{"prefix":"other/"}}]}}"#, true),
        (#"{"detail":{"missing":[{"anything-but":"x"}]}}"#, false),
        (#"{"detail":{"image-tag":[{"exists":true}]}}"#, true),
        (#"{"detail":{"missing":[{"exists":false}]}}"#, true),
        (#"{"detail":{"image-tag":[{"exists":false}]}}"#, false),
        (#"{"nothing":{"deeper":[{"exists":false}]}}"#, true),
        (#"{"detail":{"count":[5]}}"#, true),
        (#"{"detail":{"count":[5.0]}}"#, true),
        (#"{"detail":{"count":["5"]}}"#, false),
        (#"{"detail":{"count":[{"numeric":[">",4,"<=",5]}]}}"#, true),
        (#"{"detail":{"count":[{"numeric":["<",5]}]}}"#, false),
        (#"{"detail":{"tags":["b"]}}"#, true),
        (#"{"detail":{"tags":["c"]}}"#, false),
        (#"{"detail":{"tags":[{"anything-but":"c"}]}}"#, true),
        (#"{"detail":{"tags":[{"anything-but":"a"}]}}"#, false),
        (#"{"detail":{"result":["SUCCESS"]},"source":["aws.ecr"],"region":["us-west-2"]}"#, false),
        (#"{"detail":{"result":[null]}}"#, false),
    ]

    @Test(arguments: cases.indices)
    func matches(_ i: Int) throws {
        let (text, expected) = Self.cases[i]
        let pattern = try EventPattern(parsing: text)
        #expect(pattern.matches(text: Self.push) == expected, "\(text)")
    }

    static let invalid = [
        "[]", "{}", #"{"source":"aws.ecr"}"#, #"{"source":[]}"#, #"{"detail":{}}"#, #"{"source":[["a"]]}"#,
        #"{"source":[{"prefix":1}]}"#, #"{"source":[{"wildcard":"a*"}]}"#, #"{"source":[{"prefix":"a","suffix":"b"}]}"#,
        #"{"detail":{"n":[{"numeric":[">"]}]}}"#, #"{"detail":{"n":[{"numeric":["~",1]}]}}"#,
        #"{"source":[{"anything-but":[]}]}"#, "not json",
    ]

    @Test(arguments: invalid)
    func refuses(_ text: String) {
        #expect(throws: EventPatternError.self) { try EventPattern(parsing: text) }
    }
}
