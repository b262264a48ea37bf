import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthReplication
import BerthStorage
import BerthSupport
import Foundation
import Synchronization
import Testing

// Golden responses of every ECR operation.
//
// Each case drives one deterministic scenario against an in-memory service with a fixed clock and
// compares the response (status and canonical, pretty-printed JSON body) with
// `Fixtures/<Operation>.<case>.json`, which holds `{"body": {...}, "status": N}`.
//
// Values that are random by nature are checked for their shape and then replaced by placeholders:
// upload ids (`<uploadId>`, `<uploadId-2>`, ...), `authorizationToken` (`<authorizationToken>`) and the
// signature of a `downloadUrl` (`X-Amz-Signature=<signature>`). Nothing else is normalized.
//
// To (re)generate the fixtures: `BERTH_UPDATE_GOLDEN=1 swift test --filter ECRGoldenTests`, then review
// every changed file against the ECR service model before committing it. A missing fixture fails.

// MARK: - Fixture files

enum Golden {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static var updating: Bool { ProcessInfo.processInfo.environment["BERTH_UPDATE_GOLDEN"] == "1" }

    /// Pretty-printed JSON with sorted keys, two-space indentation and a final newline.
    static func render(_ v: JSONValue) -> String {
        var out = ""
        write(v, indent: 0, into: &out)
        return out + "\n"
    }

    private static func write(_ v: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent + 1)
        let end = String(repeating: "  ", count: indent)
        switch v {
        case .array(let a) where a.isEmpty: out += "[]"
        case .object(let o) where o.isEmpty: out += "{}"
        case .array(let a):
            out += "[\n"
            for (i, e) in a.enumerated() {
                out += pad
                write(e, indent: indent + 1, into: &out)
                out += i == a.count - 1 ? "\n" : ",\n"
            }
            out += end + "]"
        case .object(let o):
            out += "{\n"
            let keys = o.keys.sorted()
            for (i, k) in keys.enumerated() {
                out += pad + String(decoding: JSONValue.string(k).encoded(), as: UTF8.self) + ": "
                write(o[k]!, indent: indent + 1, into: &out)
                out += i == keys.count - 1 ? "\n" : ",\n"
            }
            out += end + "}"
        default:
            out += String(decoding: v.encoded(), as: UTF8.self)
        }
    }
}

// MARK: - The world a case runs in

struct GoldenFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// What the injected environment handed out, and the random values to replace by placeholders.
final class GoldenRecorder: Sendable {
    private struct State {
        var tokens: [String] = []
        var signatures: [String] = []
        var redactions: [(value: String, placeholder: String)] = []
        var uploads = 0
    }
    private let state = Mutex(State())

    func issued(token: String) { state.withLock { $0.tokens.append(token) } }
    func issued(signature: String) { state.withLock { $0.signatures.append(signature) } }
    func isIssued(token: String) -> Bool { state.withLock { $0.tokens.contains(token) } }
    func isIssued(signature: String) -> Bool { state.withLock { $0.signatures.contains(signature) } }

    /// Registers an upload id (its shape already checked) to appear as `<uploadId>`, `<uploadId-2>`, ...
    func redactUpload(_ id: String) {
        state.withLock { s in
            s.uploads += 1
            s.redactions.append((id, s.uploads == 1 ? "<uploadId>" : "<uploadId-\(s.uploads)>"))
        }
    }

    var redactions: [(value: String, placeholder: String)] { state.withLock { $0.redactions } }
}

final class GoldenWorld: Sendable {
    static let account = "123456789012"
    static let otherAccount = "210987654321"
    static let start: Double = 1_700_000_000
    static let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAGOLDENROOT000001")
    static let user = Principal(accountID: account, arn: "arn:aws:iam::\(account):user/ci", accessKeyID: "AKIAGOLDENUSER000001")
    /// An upload id of the right shape that was never issued.
    static let unknownUploadID = "00000000-0000-4000-8000-000000000000"

    static let uuidPattern = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    static let tokenPattern = "AKIA[A-Z0-9]{16}\\.[A-Za-z0-9_-]{43}"
    static let downloadURLPattern =
        "http://127\\.0\\.0\\.1:5000/v2/[a-z0-9._/-]+/blobs/sha256:[0-9a-f]{64}\\?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        + "&X-Amz-Credential=AKIA[A-Z0-9]{16}%2F[0-9]{8}%2Fus-east-1%2Fecr%2Faws4_request&X-Amz-Date=[0-9]{8}T[0-9]{6}Z"
        + "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=([0-9a-f]{64})"

    // Blobs and manifests of the scenarios.
    static let layer = Array("layer-bytes".utf8)
    static let config = Array("{}".utf8)
    static let signature = Array(#"{"signed":"sha256"}"#.utf8)
    static var layerDigest: String { Digest.sha256(of: layer).description }
    static var configDigest: String { Digest.sha256(of: config).description }
    static var signatureDigest: String { Digest.sha256(of: signature).description }

    static func imageManifest(annotations: String? = nil, layerDigest: String = layerDigest) -> String {
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#
            + #""config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\#(configDigest)","size":2},"#
            + #""layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\#(layerDigest)","size":11}]"#
            + (annotations.map { #","annotations":\#($0)"# } ?? "") + "}"
    }
    static var manifestV1: String { imageManifest() }
    static var manifestV2: String { imageManifest(annotations: #"{"org.opencontainers.image.version":"2"}"#) }
    static var digestV1: String { Digest.sha256(of: Array(manifestV1.utf8)).description }

    static var referrerManifest: String {
        #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","#
            + #""artifactType":"application/vnd.example.signature.v1+json","#
            + #""config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"\#(configDigest)","size":2},"#
            + #""layers":[{"mediaType":"application/vnd.example.signature.v1+json","digest":"\#(signatureDigest)","size":\#(signature.count)}],"#
            + #""subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(digestV1)","size":\#(manifestV1.utf8.count)},"#
            + #""annotations":{"org.opencontainers.image.created":"2023-11-14T22:13:20Z"}}"#
    }

    let clock: ManualWallClock
    let recorder: GoldenRecorder
    let service: ECRService

    init() {
        let clock = ManualWallClock(Self.start)
        let recorder = GoldenRecorder()
        let registry = Registry.inMemory(clock: clock)
        let env = ECREnvironment(
            region: "us-east-1",
            repositoryURI: { account, name in "\(account).dkr.ecr.us-east-1.localhost:5000/\(name)" },
            proxyEndpoint: { account in "https://\(account).dkr.ecr.us-east-1.localhost:5000" },
            issueToken: { p, now in
                // Like a real registry token: random, so it must be normalized.
                let token = "\(p.accessKeyID).\(GoldenWorld.randomBase64URL(32))"
                recorder.issued(token: token)
                return (token, now + 43200)
            },
            downloadURL: { p, repo, digest, now in
                let f = DateFormatter()
                f.locale = Locale(identifier: "en_US_POSIX")
                f.timeZone = TimeZone(identifier: "UTC")
                f.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
                let date = f.string(from: Date(timeIntervalSince1970: now))
                let sig = (0..<32).map { _ in let b = UInt8.random(in: 0...255); return (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
                recorder.issued(signature: sig)
                return "http://127.0.0.1:5000/v2/\(repo.name)/blobs/\(digest)?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                    + "&X-Amz-Credential=\(p.accessKeyID)%2F\(date.prefix(8))%2Fus-east-1%2Fecr%2Faws4_request&X-Amz-Date=\(date)"
                    + "&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=\(sig)"
            })
        self.clock = clock
        self.recorder = recorder
        // Pull through cache rules: secrets whose name holds "missing" do not exist, any other holds credentials.
        let pullThrough = PullThroughCache(
            store: InMemoryMetadataStore(), registry: registry, settings: PullThroughSettings(),
            credentials: { arn throws(PullThroughRuleError) in
                if arn.contains("missing") { throw .secretNotFound(arn) }
                return UpstreamCredentials(username: "user", password: "token")
            }, clock: clock)
        self.service = ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: clock,
                                  pullThrough: pullThrough)
    }

    static func randomBase64URL(_ n: Int) -> String {
        Data((0..<n).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The world most cases start from. At `start`: repository `app` (tag team=core) is created; at
    /// `start + 60`: its layer and config are pushed and `manifestV1` is put as `v1`. The clock then
    /// reads `start + 120`.
    static func base() async throws -> GoldenWorld {
        let w = GoldenWorld()
        _ = try await w.ok("CreateRepository", ["repositoryName": "app", "tags": [["Key": "team", "Value": "core"]]])
        w.clock.advance(by: 60)
        _ = try await w.pushBlob("app", layer)
        _ = try await w.pushBlob("app", config)
        _ = try await w.putImage("app", manifestV1, tag: "v1")
        w.clock.advance(by: 60)
        return w
    }

    // MARK: calls

    func call(_ op: String, _ body: [String: JSONValue], as p: Principal = root) async -> ECRResponse {
        await raw(ECRService.targetPrefix + op, JSONValue.object(body).encoded(), as: p)
    }

    func raw(_ target: String, _ body: [UInt8], as p: Principal = root) async -> ECRResponse {
        await service.handle(target: target, body: body, principal: p)
    }

    /// A setup step that must succeed.
    @discardableResult
    func ok(_ op: String, _ body: [String: JSONValue]) async throws -> [String: JSONValue] {
        let r = await call(op, body)
        let out = try JSONValue.parseObject(r.body)
        guard r.status == 200 else { throw GoldenFailure("setup \(op) failed: \(r.status) \(String(decoding: r.body, as: UTF8.self))") }
        return out
    }

    /// Starts an upload whose id shows in the response under test: checks its shape and redacts it.
    func initiateUpload(_ repo: String = "app") async throws -> String {
        let out = try await ok("InitiateLayerUpload", ["repositoryName": .string(repo)])
        guard case .string(let id)? = out["uploadId"], id.wholeMatch(of: try Regex(Self.uuidPattern)) != nil else {
            throw GoldenFailure("uploadId missing or not a lowercase UUID: \(out)")
        }
        recorder.redactUpload(id)
        return id
    }

    func uploadPart(_ repo: String, _ id: String, _ bytes: [UInt8], first: Int = 0) async throws {
        try await ok("UploadLayerPart", [
            "repositoryName": .string(repo), "uploadId": .string(id), "partFirstByte": .int(Int64(first)),
            "partLastByte": .int(Int64(first + bytes.count - 1)), "layerPartBlob": .string(Data(bytes).base64EncodedString()),
        ])
    }

    /// Pushes a blob with a single part; the upload id does not show in any response under test.
    @discardableResult
    func pushBlob(_ repo: String, _ bytes: [UInt8]) async throws -> String {
        let started = try await ok("InitiateLayerUpload", ["repositoryName": .string(repo)])
        guard case .string(let id)? = started["uploadId"] else { throw GoldenFailure("no uploadId") }
        try await uploadPart(repo, id, bytes)
        let digest = Digest.sha256(of: bytes).description
        try await ok("CompleteLayerUpload", ["repositoryName": .string(repo), "uploadId": .string(id), "layerDigests": [.string(digest)]])
        return digest
    }

    @discardableResult
    func putImage(_ repo: String, _ manifest: String, tag: String?) async throws -> [String: JSONValue] {
        var body: [String: JSONValue] = ["repositoryName": .string(repo), "imageManifest": .string(manifest)]
        if let tag { body["imageTag"] = .string(tag) }
        return try await ok("PutImage", body)
    }

    // MARK: normalization

    /// Replaces the random values of a response by placeholders, after checking their shape.
    func normalize(_ v: JSONValue, key: String? = nil) throws -> JSONValue {
        switch v {
        case .object(let o):
            var out: [String: JSONValue] = [:]
            for (k, e) in o { out[k] = try normalize(e, key: k) }
            return .object(out)
        case .array(let a):
            return .array(try a.map { try normalize($0, key: key) })
        case .string(let s) where key == "authorizationToken":
            guard let data = Data(base64Encoded: s), let text = String(data: data, encoding: .utf8), text.hasPrefix("AWS:") else {
                throw GoldenFailure("authorizationToken is not base64 of 'AWS:<token>': \(s)")
            }
            let token = String(text.dropFirst(4))
            guard token.wholeMatch(of: try Regex(Self.tokenPattern)) != nil, recorder.isIssued(token: token) else {
                throw GoldenFailure("authorizationToken does not carry an issued token: \(text)")
            }
            return "<authorizationToken>"
        case .string(let s) where key == "downloadUrl":
            guard let m = s.wholeMatch(of: try Regex(Self.downloadURLPattern)), let sig = m.output[1].substring.map(String.init),
                  recorder.isIssued(signature: sig) else {
                throw GoldenFailure("downloadUrl is not a presigned URL this environment issued: \(s)")
            }
            return .string(s.replacingOccurrences(of: "X-Amz-Signature=\(sig)", with: "X-Amz-Signature=<signature>"))
        case .string(var s):
            for r in recorder.redactions { s = s.replacingOccurrences(of: r.value, with: r.placeholder) }
            return .string(s)
        default:
            return v
        }
    }
}

// MARK: - Cases

struct GoldenCase: Sendable, CustomTestStringConvertible {
    /// The operation (or `Protocol` for errors before any operation runs).
    let operation: String
    /// `success[-detail]`, or the expected `__type` with an optional `-detail`.
    let name: String
    let run: @Sendable (GoldenWorld) async throws -> ECRResponse

    init(_ operation: String, _ name: String, run: @escaping @Sendable (GoldenWorld) async throws -> ECRResponse) {
        self.operation = operation
        self.name = name
        self.run = run
    }

    /// A scenario of its own: any calls, the last response is the one compared.
    static func custom(_ operation: String, _ name: String,
                       _ run: @escaping @Sendable (GoldenWorld) async throws -> ECRResponse) -> GoldenCase {
        GoldenCase(operation, name, run: run)
    }

    /// A call of `operation` itself on the base world, after an optional setup.
    static func call(_ operation: String, _ name: String, setup: (@Sendable (GoldenWorld) async throws -> Void)? = nil,
                     as principal: Principal = GoldenWorld.root,
                     _ body: @escaping @Sendable () -> [String: JSONValue]) -> GoldenCase {
        GoldenCase(operation, name) { w in
            try await setup?(w)
            return await w.call(operation, body(), as: principal)
        }
    }

    var file: String { "\(operation).\(name).json" }
    var isSuccess: Bool { name == "success" || name.hasPrefix("success-") }
    /// The `__type` an error case expects.
    var errorType: String { String(name.prefix { $0 != "-" }) }
    var testDescription: String { "\(operation).\(name)" }
}

extension GoldenCase {
    static let app: JSONValue = "app"
    static let appARN: JSONValue = "arn:aws:ecr:us-east-1:123456789012:repository/app"
    static let nopeARN: JSONValue = "arn:aws:ecr:us-east-1:123456789012:repository/nope"
    static func tags(_ n: Int) -> JSONValue { .array((1...n).map { ["Key": .string("k\($0)"), "Value": "v"] }) }

    static let all: [GoldenCase] = repositories + images + layers + settings + scanning + policies + lifecycle + archive + pullThroughCache
        + creationTemplates + replication + protocolErrors

    static let repositories: [GoldenCase] = [
        // CreateRepository
        .call("CreateRepository", "success") { ["repositoryName": "web"] },
        .call("CreateRepository", "success-all-settings") {
            ["repositoryName": "team/web", "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
             "imageTagMutabilityExclusionFilters": [["filterType": "WILDCARD", "filter": "latest"]],
             "imageScanningConfiguration": ["scanOnPush": true], "encryptionConfiguration": ["encryptionType": "KMS"],
             "tags": [["Key": "env", "Value": "dev"]]]
        },
        .call("CreateRepository", "RepositoryAlreadyExistsException") { ["repositoryName": app] },
        .call("CreateRepository", "InvalidParameterException-name") { ["repositoryName": "Bad Name"] },
        .call("CreateRepository", "InvalidParameterException-missing-name") { [:] },
        .call("CreateRepository", "InvalidTagParameterException") { ["repositoryName": "web", "tags": [["Key": "aws:reserved", "Value": "v"]]] },
        .call("CreateRepository", "TooManyTagsException") { ["repositoryName": "web", "tags": tags(51)] },

        // DescribeRepositories
        .call("DescribeRepositories", "success", setup: { try await $0.ok("CreateRepository", ["repositoryName": "lib"]) }) { [:] },
        .call("DescribeRepositories", "success-by-name") { ["repositoryNames": [app]] },
        .call("DescribeRepositories", "success-paginated", setup: { try await $0.ok("CreateRepository", ["repositoryName": "lib"]) }) {
            ["maxResults": 1]
        },
        .call("DescribeRepositories", "RepositoryNotFoundException") { ["repositoryNames": ["nope"]] },
        .call("DescribeRepositories", "InvalidParameterException") { ["repositoryNames": [app], "maxResults": 1] },

        // DeleteRepository
        .call("DeleteRepository", "success") { ["repositoryName": app, "force": true] },
        .call("DeleteRepository", "RepositoryNotEmptyException") { ["repositoryName": app] },
        .call("DeleteRepository", "RepositoryNotFoundException") { ["repositoryName": "nope"] },

        // PutImageTagMutability
        .call("PutImageTagMutability", "success") { ["repositoryName": app, "imageTagMutability": "IMMUTABLE"] },
        .call("PutImageTagMutability", "success-with-exclusion") {
            ["repositoryName": app, "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
             "imageTagMutabilityExclusionFilters": [["filterType": "WILDCARD", "filter": "release-*"]]]
        },
        .call("PutImageTagMutability", "InvalidParameterException") { ["repositoryName": app, "imageTagMutability": "SOMETIMES"] },
        .call("PutImageTagMutability", "RepositoryNotFoundException") { ["repositoryName": "nope", "imageTagMutability": "IMMUTABLE"] },

        // TagResource
        .call("TagResource", "success") { ["resourceArn": appARN, "tags": [["Key": "env", "Value": "prod"]]] },
        .call("TagResource", "InvalidTagParameterException") { ["resourceArn": appARN, "tags": [["Value": "no key"]]] },
        .call("TagResource", "TooManyTagsException") { ["resourceArn": appARN, "tags": tags(50)] },
        .call("TagResource", "RepositoryNotFoundException") { ["resourceArn": nopeARN, "tags": [["Key": "env", "Value": "prod"]]] },
        .call("TagResource", "InvalidParameterException") { ["resourceArn": "arn:aws:s3:::bucket", "tags": [["Key": "env", "Value": "prod"]]] },

        // UntagResource
        .call("UntagResource", "success") { ["resourceArn": appARN, "tagKeys": ["team"]] },
        .call("UntagResource", "RepositoryNotFoundException") { ["resourceArn": nopeARN, "tagKeys": ["team"]] },
        .call("UntagResource", "InvalidParameterException") { ["resourceArn": appARN] },

        // ListTagsForResource
        .call("ListTagsForResource", "success", setup: {
            try await $0.ok("TagResource", ["resourceArn": appARN, "tags": [["Key": "env", "Value": "prod"]]])
        }) { ["resourceArn": appARN] },
        .call("ListTagsForResource", "RepositoryNotFoundException") { ["resourceArn": nopeARN] },
        .call("ListTagsForResource", "InvalidParameterException") { ["resourceArn": "not-an-arn"] },
    ]

    static let images: [GoldenCase] = [
        // ListImages
        .call("ListImages", "success", setup: { w in try await w.putImage("app", GoldenWorld.manifestV1, tag: "latest") }) {
            ["repositoryName": app]
        },
        .call("ListImages", "success-paginated", setup: { w in try await w.putImage("app", GoldenWorld.manifestV1, tag: "latest") }) {
            ["repositoryName": app, "maxResults": 1]
        },
        .call("ListImages", "RepositoryNotFoundException") { ["repositoryName": "nope"] },
        .call("ListImages", "InvalidParameterException") { ["repositoryName": app, "filter": ["tagStatus": "SOMETIMES"]] },

        // DescribeImages
        .call("DescribeImages", "success") { ["repositoryName": app] },
        .call("DescribeImages", "success-after-pull", setup: { w in
            try await w.ok("BatchGetImage", ["repositoryName": app, "imageIds": [["imageTag": "v1"]]])
            w.clock.advance(by: 60)
        }) { ["repositoryName": app, "imageIds": [["imageTag": "v1"]]] },
        .call("DescribeImages", "ImageNotFoundException") { ["repositoryName": app, "imageIds": [["imageTag": "nope"]]] },
        .call("DescribeImages", "RepositoryNotFoundException") { ["repositoryName": "nope"] },
        .call("DescribeImages", "InvalidParameterException") { ["repositoryName": app, "imageIds": [["imageTag": "v1"]], "maxResults": 5] },

        // BatchGetImage
        .call("BatchGetImage", "success") { ["repositoryName": app, "imageIds": [["imageTag": "v1"]]] },
        .call("BatchGetImage", "success-with-failures") {
            ["repositoryName": app,
             "imageIds": [["imageDigest": .string(GoldenWorld.digestV1)], ["imageTag": "missing"], ["imageDigest": "bogus"], [:]]]
        },
        .call("BatchGetImage", "RepositoryNotFoundException") { ["repositoryName": "nope", "imageIds": [["imageTag": "v1"]]] },
        .call("BatchGetImage", "InvalidParameterException") { ["repositoryName": app, "imageIds": []] },

        // BatchDeleteImage
        .call("BatchDeleteImage", "success") { ["repositoryName": app, "imageIds": [["imageTag": "v1"]]] },
        .call("BatchDeleteImage", "success-with-failures") {
            ["repositoryName": app, "imageIds": [["imageTag": "nope"], ["imageDigest": "bogus"], [:]]]
        },
        .call("BatchDeleteImage", "RepositoryNotFoundException") { ["repositoryName": "nope", "imageIds": [["imageTag": "v1"]]] },
        .call("BatchDeleteImage", "InvalidParameterException") { ["repositoryName": app] },

        // PutImage
        .call("PutImage", "success") { ["repositoryName": app, "imageTag": "v2", "imageManifest": .string(GoldenWorld.manifestV2)] },
        .call("PutImage", "ImageAlreadyExistsException") {
            ["repositoryName": app, "imageTag": "v1", "imageManifest": .string(GoldenWorld.manifestV1)]
        },
        .call("PutImage", "ImageTagAlreadyExistsException", setup: {
            try await $0.ok("PutImageTagMutability", ["repositoryName": app, "imageTagMutability": "IMMUTABLE"])
        }) { ["repositoryName": app, "imageTag": "v1", "imageManifest": .string(GoldenWorld.manifestV2)] },
        .call("PutImage", "LayersNotFoundException") {
            ["repositoryName": app, "imageTag": "v3",
             "imageManifest": .string(GoldenWorld.imageManifest(layerDigest: Digest.sha256(of: Array("absent".utf8)).description))]
        },
        .call("PutImage", "ReferencedImagesNotFoundException") {
            ["repositoryName": app, "imageTag": "multi", "imageManifest": .string(
                #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"\#(Digest.sha256(of: Array("absent".utf8)))","size":100,"platform":{"architecture":"amd64","os":"linux"}}]}"#)]
        },
        .call("PutImage", "ImageDigestDoesNotMatchException") {
            ["repositoryName": app, "imageTag": "v2", "imageManifest": .string(GoldenWorld.manifestV2), "imageDigest": .string(GoldenWorld.digestV1)]
        },
        .call("PutImage", "InvalidParameterException") {
            ["repositoryName": app, "imageTag": "v2", "imageManifest": #"{"schemaVersion":2}"#]
        },
        .call("PutImage", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "imageTag": "v1", "imageManifest": .string(GoldenWorld.manifestV1)]
        },

        // ListImageReferrers
        .call("ListImageReferrers", "success", setup: { w in
            try await w.pushBlob("app", GoldenWorld.signature)
            try await w.putImage("app", GoldenWorld.referrerManifest, tag: nil)
        }) { ["repositoryName": app, "subjectId": ["imageDigest": .string(GoldenWorld.digestV1)]] },
        .call("ListImageReferrers", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "subjectId": ["imageDigest": .string(GoldenWorld.digestV1)]]
        },
        .call("ListImageReferrers", "InvalidParameterException") { ["repositoryName": app, "subjectId": ["imageDigest": "bogus"]] },
    ]

    static let layers: [GoldenCase] = [
        // BatchCheckLayerAvailability
        .call("BatchCheckLayerAvailability", "success") {
            ["repositoryName": app, "layerDigests": [.string(GoldenWorld.layerDigest), .string(Digest.sha256(of: Array("absent".utf8)).description), "", "bogus"]]
        },
        .call("BatchCheckLayerAvailability", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "layerDigests": [.string(GoldenWorld.layerDigest)]]
        },
        .call("BatchCheckLayerAvailability", "InvalidParameterException") { ["repositoryName": app] },

        // InitiateLayerUpload
        .custom("InitiateLayerUpload", "success") { w in
            let r = await w.call("InitiateLayerUpload", ["repositoryName": app])
            if case .string(let id)? = try JSONValue.parseObject(r.body)["uploadId"], id.wholeMatch(of: try Regex(GoldenWorld.uuidPattern)) != nil {
                w.recorder.redactUpload(id)
            }
            return r
        },
        .call("InitiateLayerUpload", "RepositoryNotFoundException") { ["repositoryName": "nope"] },

        // UploadLayerPart
        .custom("UploadLayerPart", "success") { w in
            let id = try await w.initiateUpload()
            return await w.call("UploadLayerPart", ["repositoryName": app, "uploadId": .string(id), "partFirstByte": 0, "partLastByte": 9,
                                                    "layerPartBlob": .string(Data("layer-part".utf8).base64EncodedString())])
        },
        .custom("UploadLayerPart", "InvalidLayerPartException") { w in
            let id = try await w.initiateUpload()
            return await w.call("UploadLayerPart", ["repositoryName": app, "uploadId": .string(id), "partFirstByte": 1, "partLastByte": 10,
                                                    "layerPartBlob": .string(Data("layer-part".utf8).base64EncodedString())])
        },
        .call("UploadLayerPart", "UploadNotFoundException") {
            ["repositoryName": app, "uploadId": .string(GoldenWorld.unknownUploadID), "partFirstByte": 0, "partLastByte": 9,
             "layerPartBlob": .string(Data("layer-part".utf8).base64EncodedString())]
        },
        .call("UploadLayerPart", "InvalidParameterException") {
            ["repositoryName": app, "uploadId": "not-an-upload", "partFirstByte": 0, "partLastByte": 9,
             "layerPartBlob": .string(Data("layer-part".utf8).base64EncodedString())]
        },
        .custom("UploadLayerPart", "SerializationException") { w in
            let id = try await w.initiateUpload()
            return await w.call("UploadLayerPart", ["repositoryName": app, "uploadId": .string(id), "partFirstByte": 0, "partLastByte": 9,
                                                    "layerPartBlob": "*not base64*"])
        },
        .call("UploadLayerPart", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "uploadId": .string(GoldenWorld.unknownUploadID), "partFirstByte": 0, "partLastByte": 9,
             "layerPartBlob": .string(Data("layer-part".utf8).base64EncodedString())]
        },

        // CompleteLayerUpload
        .custom("CompleteLayerUpload", "success") { w in
            let id = try await w.initiateUpload()
            try await w.uploadPart("app", id, Array("new-layer".utf8))
            return await w.call("CompleteLayerUpload", ["repositoryName": app, "uploadId": .string(id),
                                                        "layerDigests": [.string(Digest.sha256(of: Array("new-layer".utf8)).description)]])
        },
        .custom("CompleteLayerUpload", "InvalidLayerException") { w in
            let id = try await w.initiateUpload()
            try await w.uploadPart("app", id, Array("new-layer".utf8))
            return await w.call("CompleteLayerUpload", ["repositoryName": app, "uploadId": .string(id),
                                                        "layerDigests": [.string(Digest.sha256(of: Array("other".utf8)).description)]])
        },
        .custom("CompleteLayerUpload", "EmptyUploadException") { w in
            let id = try await w.initiateUpload()
            return await w.call("CompleteLayerUpload", ["repositoryName": app, "uploadId": .string(id),
                                                        "layerDigests": [.string(Digest.sha256(of: Array("new-layer".utf8)).description)]])
        },
        .custom("CompleteLayerUpload", "LayerAlreadyExistsException") { w in
            let id = try await w.initiateUpload()
            try await w.uploadPart("app", id, GoldenWorld.layer)
            return await w.call("CompleteLayerUpload", ["repositoryName": app, "uploadId": .string(id),
                                                        "layerDigests": [.string(GoldenWorld.layerDigest)]])
        },
        .custom("CompleteLayerUpload", "LayerPartTooSmallException") { w in
            let id = try await w.initiateUpload()
            try await w.uploadPart("app", id, Array("a".utf8))
            try await w.uploadPart("app", id, Array("b".utf8), first: 1)
            return await w.call("CompleteLayerUpload", ["repositoryName": app, "uploadId": .string(id),
                                                        "layerDigests": [.string(Digest.sha256(of: Array("ab".utf8)).description)]])
        },
        .call("CompleteLayerUpload", "UploadNotFoundException") {
            ["repositoryName": app, "uploadId": .string(GoldenWorld.unknownUploadID), "layerDigests": [.string(GoldenWorld.layerDigest)]]
        },
        .call("CompleteLayerUpload", "RepositoryNotFoundException") {
            ["repositoryName": "nope", "uploadId": .string(GoldenWorld.unknownUploadID), "layerDigests": [.string(GoldenWorld.layerDigest)]]
        },

        // GetDownloadUrlForLayer
        .call("GetDownloadUrlForLayer", "success") { ["repositoryName": app, "layerDigest": .string(GoldenWorld.layerDigest)] },
        .call("GetDownloadUrlForLayer", "LayersNotFoundException") {
            ["repositoryName": app, "layerDigest": .string(Digest.sha256(of: Array("absent".utf8)).description)]
        },
        .call("GetDownloadUrlForLayer", "LayerInaccessibleException", setup: { try await $0.pushBlob("app", Array("orphan".utf8)) }) {
            ["repositoryName": app, "layerDigest": .string(Digest.sha256(of: Array("orphan".utf8)).description)]
        },
        .call("GetDownloadUrlForLayer", "InvalidParameterException") { ["repositoryName": app, "layerDigest": "bogus"] },
        .call("GetDownloadUrlForLayer", "RepositoryNotFoundException") { ["repositoryName": "nope", "layerDigest": .string(GoldenWorld.layerDigest)] },
    ]

    static let settings: [GoldenCase] = [
        // DescribeRegistry
        .call("DescribeRegistry", "success") { [:] },
        .call("DescribeRegistry", "AccessDeniedException", as: GoldenWorld.user) { [:] },

        // GetAccountSetting
        .call("GetAccountSetting", "success") { ["name": "BASIC_SCAN_TYPE_VERSION"] },
        .call("GetAccountSetting", "success-after-put", setup: {
            try await $0.ok("PutAccountSetting", ["name": "BLOB_MOUNTING", "value": "ENABLED"])
        }) { ["name": "BLOB_MOUNTING"] },
        .call("GetAccountSetting", "ValidationException") { ["name": "NO_SUCH_SETTING"] },
        .call("GetAccountSetting", "InvalidParameterException") { [:] },

        // PutAccountSetting
        .call("PutAccountSetting", "success") { ["name": "BLOB_MOUNTING", "value": "ENABLED"] },
        .call("PutAccountSetting", "ValidationException") { ["name": "BLOB_MOUNTING", "value": "SOMETIMES"] },

        // GetAuthorizationToken
        .call("GetAuthorizationToken", "success") { [:] },
        .call("GetAuthorizationToken", "success-registry-ids") { ["registryIds": [.string(GoldenWorld.account), .string(GoldenWorld.otherAccount)]] },
        .call("GetAuthorizationToken", "InvalidParameterException") { ["registryIds": ["123"]] },
    ]

    static let protocolErrors: [GoldenCase] = [
        .custom("Protocol", "UnknownOperationException") { w in
            await w.raw(ECRService.targetPrefix + "NoSuchOperation", Array("{}".utf8))
        },
        .custom("Protocol", "SerializationException-malformed") { w in
            await w.raw(ECRService.targetPrefix + "CreateRepository", Array("{not json".utf8))
        },
        .custom("Protocol", "SerializationException-not-an-object") { w in
            await w.raw(ECRService.targetPrefix + "CreateRepository", Array("[]".utf8))
        },
        .custom("Protocol", "SerializationException-wrong-type") { w in
            await w.raw(ECRService.targetPrefix + "CreateRepository", Array(#"{"repositoryName":5}"#.utf8))
        },
    ]
}

extension GoldenCase {
    static let pullPolicy: JSONValue = .string(#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":["ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"]}]}"#)
    static let replicationPolicy: JSONValue = .string(#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::210987654321:root"},"Action":"ecr:ReplicateImage","Resource":"arn:aws:ecr:us-east-1:123456789012:repository/*"}]}"#)
    static let lockout: JSONValue = .string(#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"ecr:*"}]}"#)

    static func setPolicy(_ w: GoldenWorld) async throws {
        try await w.ok("SetRepositoryPolicy", ["repositoryName": app, "policyText": pullPolicy])
    }

    static func putRegistryPolicy(_ w: GoldenWorld) async throws {
        try await w.ok("PutRegistryPolicy", ["policyText": replicationPolicy])
    }

    static let policies: [GoldenCase] = [
        .call("SetRepositoryPolicy", "success") { ["repositoryName": app, "policyText": pullPolicy] },
        .call("SetRepositoryPolicy", "success-force-lockout") { ["repositoryName": app, "policyText": lockout, "force": true] },
        .call("SetRepositoryPolicy", "InvalidParameterException-lockout") { ["repositoryName": app, "policyText": lockout] },
        .call("SetRepositoryPolicy", "InvalidParameterException-not-json") { ["repositoryName": app, "policyText": "{nope"] },
        .call("SetRepositoryPolicy", "InvalidParameterException-no-principal") {
            ["repositoryName": app, "policyText": .string(#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"ecr:*"}]}"#)]
        },
        .call("SetRepositoryPolicy", "InvalidParameterException-too-long") {
            ["repositoryName": app, "policyText": .string(String(repeating: " ", count: 10_241))]
        },
        .call("SetRepositoryPolicy", "RepositoryNotFoundException") { ["repositoryName": "nope", "policyText": pullPolicy] },
        .call("GetRepositoryPolicy", "success", setup: setPolicy) { ["repositoryName": app] },
        .call("GetRepositoryPolicy", "RepositoryPolicyNotFoundException") { ["repositoryName": app] },
        .call("GetRepositoryPolicy", "RepositoryNotFoundException") { ["repositoryName": "nope"] },
        .call("DeleteRepositoryPolicy", "success", setup: setPolicy) { ["repositoryName": app] },
        .custom("DeleteRepositoryPolicy", "RepositoryPolicyNotFoundException-after-delete") { w in
            try await setPolicy(w)
            try await w.ok("DeleteRepositoryPolicy", ["repositoryName": app])
            return await w.call("DeleteRepositoryPolicy", ["repositoryName": app])
        },
        .call("PutRegistryPolicy", "success") { ["policyText": replicationPolicy] },
        .call("PutRegistryPolicy", "InvalidParameterException") { ["policyText": "[]"] },
        .call("GetRegistryPolicy", "success", setup: putRegistryPolicy) { [:] },
        .call("GetRegistryPolicy", "RegistryPolicyNotFoundException") { [:] },
        .call("DeleteRegistryPolicy", "success", setup: putRegistryPolicy) { [:] },
        .custom("DeleteRegistryPolicy", "RegistryPolicyNotFoundException-after-delete") { w in
            try await putRegistryPolicy(w)
            try await w.ok("DeleteRegistryPolicy", [:])
            return await w.call("DeleteRegistryPolicy", [:])
        },
    ]
}

// MARK: - Tests

@Suite struct ECRGoldenTests {
    @Test(arguments: GoldenCase.all)
    func golden(_ c: GoldenCase) async throws {
        let world = try await GoldenWorld.base()
        let response = try await c.run(world)

        // The body must be a JSON object for Foundation too, not only for our own parser.
        let foundation = try? JSONSerialization.jsonObject(with: Data(response.body))
        #expect(foundation is [String: Any], "body is not a JSON object: \(String(decoding: response.body, as: UTF8.self))")
        let body = try JSONValue.parseObject(response.body)

        if c.isSuccess {
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            #expect(response.errorType == nil)
        } else {
            #expect((400...599).contains(response.status))
            #expect(body["__type"] == .string(c.errorType), "expected \(c.errorType): \(String(decoding: response.body, as: UTF8.self))")
            #expect(response.errorType.map { JSONValue.string($0) } == body["__type"], "x-amzn-ErrorType must match __type")
            if case .string(let m)? = body["message"] { #expect(!m.isEmpty) } else { Issue.record("error without a message") }
        }

        let normalized = try world.normalize(.object(body))
        let actual = Golden.render(["status": .int(Int64(response.status)), "body": normalized])
        // A random value that was not normalized would make the fixture unstable.
        let uuids = actual.matches(of: try Regex(GoldenWorld.uuidPattern)).map { String(actual[$0.range]) }
        #expect(uuids.allSatisfy { $0 == GoldenWorld.unknownUploadID }, "unnormalized upload ids: \(uuids)")

        let url = Golden.fixtures.appendingPathComponent(c.file)
        if Golden.updating {
            try FileManager.default.createDirectory(at: Golden.fixtures, withIntermediateDirectories: true)
            try Data(actual.utf8).write(to: url)
            return
        }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            Issue.record("missing fixture \(c.file); generate it with BERTH_UPDATE_GOLDEN=1 and review it\n\(actual)")
            return
        }
        let fixture: [String: JSONValue]
        do { fixture = try JSONValue.parseObject(Array(data)) } catch {
            Issue.record("fixture \(c.file) is not a JSON object: \(error)")
            return
        }
        #expect(Set(fixture.keys) == ["status", "body"], "fixture \(c.file) must hold exactly status and body")
        let expected = Golden.render(.object(fixture))
        #expect(actual == expected, "response differs from \(c.file)")
    }

    @Test func everyOperationHasSuccessAndErrorCases() {
        let ops = Set(ECRService.operations.keys)
        #expect(ops.count == 54)
        for op in ops.sorted() {
            let cases = GoldenCase.all.filter { $0.operation == op }
            #expect(cases.contains { $0.isSuccess }, "\(op) has no success case")
            #expect(cases.contains { !$0.isSuccess }, "\(op) has no error case")
        }
        for c in GoldenCase.all {
            #expect(ops.contains(c.operation) || c.operation == "Protocol", "unknown operation \(c.operation)")
        }
        let protocolTypes = Set(GoldenCase.all.filter { $0.operation == "Protocol" }.map(\.errorType))
        #expect(protocolTypes.isSuperset(of: ["UnknownOperationException", "SerializationException"]))
        let files = GoldenCase.all.map(\.file)
        #expect(Set(files).count == files.count, "duplicate case names")
    }

    @Test func noStaleFixtures() throws {
        let present = (try? FileManager.default.contentsOfDirectory(atPath: Golden.fixtures.path)) ?? []
        let known = Set(GoldenCase.all.map(\.file))
        let stale = present.filter { $0.hasSuffix(".json") && !known.contains($0) }.sorted()
        #expect(stale.isEmpty, "fixtures without a case: \(stale)")
        if !Golden.updating {
            #expect(!present.isEmpty, "no fixtures in \(Golden.fixtures.path)")
        }
    }
}
