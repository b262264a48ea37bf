import BerthCore
@testable import BerthECR
import BerthRegistry
import BerthSupport
import Foundation
import Testing

/// The exception texts of ECRError's one message table, each as AWS sends it (see the quotes there).
@Suite struct ECRMessageTests {
    static let reg = "123456789012"
    static let d = "sha256:" + String(repeating: "a", count: 64)

    struct Case: Sendable, CustomTestStringConvertible {
        let error: ECRError
        let type: String
        let message: String
        var testDescription: String { type }
    }

    static let cases: [Case] = [
        Case(error: .repositoryNotFound("oresvc", registry: reg), type: "RepositoryNotFoundException",
             message: "The repository with name 'oresvc' does not exist in the registry with id '123456789012'"),
        Case(error: .repositoryAlreadyExists("dummy-service", registry: reg), type: "RepositoryAlreadyExistsException",
             message: "The repository with name 'dummy-service' already exists in the registry with id '123456789012'"),
        Case(error: .repositoryNotEmpty("hellojs", registry: reg), type: "RepositoryNotEmptyException",
             message: "The repository with name 'hellojs' in registry with id '123456789012' cannot be deleted because it still contains images"),
        Case(error: .repositoryPolicyNotFound("daily/all", registry: reg), type: "RepositoryPolicyNotFoundException",
             message: "Repository policy does not exist for the repository with name 'daily/all' in the registry with id '123456789012'"),
        Case(error: .registryPolicyNotFound(registry: reg), type: "RegistryPolicyNotFoundException",
             message: "Registry policy does not exist in the registry with id '123456789012'"),
        Case(error: .imageNotFound(digest: nil, tag: "28f3d25", repository: "gw", registry: reg), type: "ImageNotFoundException",
             message: "The image with imageId {imageDigest:'null', imageTag:'28f3d25'} does not exist within the repository with name 'gw' in the registry with id '123456789012'"),
        Case(error: .imageNotFound(digest: d, tag: nil, repository: "gw", registry: reg), type: "ImageNotFoundException",
             message: "The image with imageId {imageDigest:'\(d)', imageTag:'null'} does not exist within the repository with name 'gw' in the registry with id '123456789012'"),
        Case(error: .imageTagAlreadyExists("latest", repository: "app_service_image"), type: "ImageTagAlreadyExistsException",
             message: "The image tag 'latest' already exists in the 'app_service_image' repository and cannot be overwritten because the tag is immutable."),
        Case(error: .imageAlreadyExists(digest: d, tag: "v1", repository: "app", registry: reg), type: "ImageAlreadyExistsException",
             message: "Image with digest '\(d)' and tag 'v1' already exists in the repository with name 'app' in registry with id '123456789012'"),
        Case(error: .imageAlreadyExists(digest: d, tag: nil, repository: "app", registry: reg), type: "ImageAlreadyExistsException",
             message: "Image with digest '\(d)' already exists in the repository with name 'app' in registry with id '123456789012'"),
        Case(error: .imageDigestDoesNotMatch(computed: d, given: "sha256:b"), type: "ImageDigestDoesNotMatchException",
             message: "Manifest digest '\(d)' does not match the digest specified 'sha256:b'"),
        Case(error: .referencedImagesNotFound([d], repository: "app", registry: reg), type: "ReferencedImagesNotFoundException",
             message: "Some of the images referenced by the manifest list were not found in the repository with name 'app' in the registry with id '123456789012': [\(d)]"),
        Case(error: .layersNotFound([d, d], repository: "app", registry: reg), type: "LayersNotFoundException",
             message: "Layers with digests '[\(d), \(d)]' required for pushing image into repository with name 'app' in the registry with id '123456789012' do not exist"),
        Case(error: .layerNotFound(d, repository: "app", registry: reg), type: "LayersNotFoundException",
             message: "The layer with digest '\(d)' does not exist in the repository with name 'app' in the registry with id '123456789012'"),
        Case(error: .layerInaccessible(d, repository: "app", registry: reg), type: "LayerInaccessibleException",
             message: "The layer with digest '\(d)' is not associated with an image in the repository with name 'app' in the registry with id '123456789012'"),
        Case(error: .uploadNotFound("u-1", repository: "app", registry: reg), type: "UploadNotFoundException",
             message: "The upload with id 'u-1' does not exist in the repository with name 'app' in the registry with id '123456789012'"),
        Case(error: .emptyUpload("u-1"), type: "EmptyUploadException", message: "The upload with upload ID 'u-1' was empty"),
        Case(error: .layerPartTooSmall(minimum: 5_242_880), type: "LayerPartTooSmallException",
             message: "Layer part size must be at least 5242880 bytes, except for the last part"),
        Case(error: .layerAlreadyExists(d, repository: "app", registry: reg), type: "LayerAlreadyExistsException",
             message: "The layer '\(d)' already exists in the repository with name 'app' in registry with id '123456789012'"),
        Case(error: .invalidLayer(uploadID: "u-1", digest: d), type: "InvalidLayerException",
             message: "The layer digest calculated for upload ID 'u-1' does not match the layer digest '\(d)' that was specified"),
        Case(error: .invalidLayerPart(.notConsecutive(first: 10, lastReceived: 4), uploadID: "u-1", repository: "app", registry: reg,
                                      lastValidByte: 4), type: "InvalidLayerPartException",
             message: "The layer part first byte 10 is not consecutive to the last byte of the previous layer part upload (4)."),
        Case(error: .scanNotFound(digest: d, tag: nil, repository: "app", registry: reg), type: "ScanNotFoundException",
             message: "Image scan does not exist for the image with '{imageDigest:'\(d)', imageTag:'null'}' in the repository with name 'app' in the registry with id '123456789012'"),
        Case(error: .scanQuotaExceeded, type: "LimitExceededException", message: "The scan quota per image has been exceeded. Wait and try again."),
        Case(error: .unsupportedImageType("application/x.sig"), type: "UnsupportedImageTypeException",
             message: "The image type is not supported: artifacts of type 'application/x.sig' cannot be scanned"),
        Case(error: .tooManyTags(limit: 50), type: "TooManyTagsException",
             message: "The list of tags on the repository is over the limit. The maximum number of tags that can be applied to a repository is 50."),
        Case(error: .tagKeyMissing, type: "InvalidTagParameterException", message: "Tag key must not be null"),
        Case(error: .invalidTagKey("aws:x"), type: "InvalidTagParameterException",
             message: "Invalid tag key 'aws:x': keys must be 1 to 128 characters and not start with 'aws:'"),
        Case(error: .invalidTagValue(key: "k"), type: "InvalidTagParameterException",
             message: "Invalid tag value for key 'k': values must be at most 256 characters"),
        Case(error: .tagKeyLength(""), type: "InvalidTagParameterException", message: "Invalid tag key '': keys must be 1 to 128 characters"),
        Case(error: .unknownOperation("X.Y"), type: "UnknownOperationException", message: "Unknown operation X.Y"),
    ]

    @Test(arguments: ECRMessageTests.cases) func messageIsAWSs(_ c: Case) {
        #expect(c.error.type == c.type)
        #expect(c.error.message == c.message)
        #expect(c.error.status == 400)
    }

    @Test func invalidLayerPartCarriesTheUploadsIdentity() {
        let e = ECRError.invalidLayerPart(.sizeMismatch, uploadID: "u-1", repository: "app", registry: Self.reg, lastValidByte: 9)
        #expect(e.extra["lastValidByteReceived"] == .int(9))
        #expect(e.extra["uploadId"] == .string("u-1"))
        #expect(e.extra["repositoryName"] == .string("app"))
        #expect(e.extra["registryId"] == .string(Self.reg))
    }

    /// Domain errors reach the wire through the same table.
    @Test func domainErrorsMapThroughTheTable() {
        let ctx = OperationContext(registryID: Self.reg, repositoryName: "app")
        #expect(ECRErrorMapping.map(.nameUnknown("app"), ctx) == .repositoryNotFound("app", registry: Self.reg))
        #expect(ECRErrorMapping.map(.repositoryNotEmpty("app"), ctx) == .repositoryNotEmpty("app", registry: Self.reg))
        #expect(ECRErrorMapping.map(.tagImmutable("v1"), ctx) == .imageTagAlreadyExists("v1", repository: "app"))
        #expect(ECRErrorMapping.map(.manifestUnknown("v1"), ctx) == .imageNotFound(digest: nil, tag: "v1", repository: "app", registry: Self.reg))
        #expect(ECRErrorMapping.map(.manifestUnknown(Self.d), ctx) == .imageNotFound(digest: Self.d, tag: nil, repository: "app", registry: Self.reg))
        #expect(ECRErrorMapping.map(.blobUploadUnknown("u"), ctx) == .uploadNotFound("u", repository: "app", registry: Self.reg))
    }
}

/// Default page sizes and length limits as ECR's and ECR Public's models (botocore) and docs have them.
@Suite struct ECRLimitTests {
    static let account = "123456789012"
    static let root = Principal(accountID: account, arn: Principal.rootARN(account), accessKeyID: "AKIAROOT")

    func services() -> (ECRService, ECRService) {
        let registry = Registry.inMemory()
        let env = ECREnvironment(
            region: "us-east-1", repositoryURI: { "127.0.0.1:5000/\($1)" }, proxyEndpoint: { _ in "http://127.0.0.1:5000" },
            issueToken: { _, now in ("tok", now + 43200) }, downloadURL: { _, k, d, _ in "http://127.0.0.1:5000/v2/\(k.name)/blobs/\(d)" })
        return (ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock()),
                ECRService(registry: registry, authorizer: AccountRootAuthorizer(), environment: env, clock: ManualWallClock(), flavor: .public))
    }

    func call(_ s: ECRService, _ op: String, _ body: JSONValue) async -> (Int, [String: JSONValue]) {
        let r = await s.handle(target: s.prefix + op, body: body.encoded(), principal: Self.root)
        return (r.status, (try? JSONValue.parseObject(r.body)) ?? [:])
    }

    func count(_ v: JSONValue?) -> Int { if case .array(let a)? = v { a.count } else { -1 } }

    /// "If maxResults is not used, DescribeRepositories returns up to 100 results and a nextToken value."
    @Test(arguments: [false, true]) func describeRepositoriesPagesBy100ByDefault(publicAPI: Bool) async {
        let (priv, pub) = services()
        let s = publicAPI ? pub : priv
        for i in 0..<105 { _ = await call(s, "CreateRepository", ["repositoryName": .string("r\(i)")]) }
        let (status, first) = await call(s, "DescribeRepositories", [:])
        #expect(status == 200)
        #expect(count(first["repositories"]) == 100)
        guard case .string(let token)? = first["nextToken"] else { Issue.record("no nextToken"); return }
        let (_, second) = await call(s, "DescribeRepositories", ["nextToken": .string(token)])
        #expect(count(second["repositories"]) == 5)
        #expect(second["nextToken"] == nil)
        let (_, all) = await call(s, "DescribeRepositories", ["maxResults": 1000])
        #expect(count(all["repositories"]) == 105)
    }

    /// ImageTag is 1–300 characters: a longer tag is InvalidParameterException naming the length.
    @Test func putImageRefusesTagsOver300Characters() async {
        let (s, _) = services()
        _ = await call(s, "CreateRepository", ["repositoryName": "app"])
        let manifest = #"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        let (status, out) = await call(s, "PutImage", ["repositoryName": "app", "imageManifest": .string(manifest),
                                                        "imageTag": .string(String(repeating: "t", count: 301))])
        #expect(status == 400)
        #expect(out["__type"] == "InvalidParameterException")
        #expect(out["message"] == "1 validation error detected: Value at 'imageTag' failed to satisfy constraint: Member must have length less than or equal to 300")
    }

    /// LayerPartBlob is at most 20971520 bytes.
    @Test func uploadLayerPartRefusesPartsOver20MiB() async {
        let (s, _) = services()
        _ = await call(s, "CreateRepository", ["repositoryName": "app"])
        let (_, started) = await call(s, "InitiateLayerUpload", ["repositoryName": "app"])
        guard case .string(let id)? = started["uploadId"] else { Issue.record("no uploadId"); return }
        let size = ECRService.maxPartSize + 1
        let blob = Data(count: size).base64EncodedString()
        let (status, out) = await call(s, "UploadLayerPart", ["repositoryName": "app", "uploadId": .string(id), "partFirstByte": 0,
                                                               "partLastByte": .int(Int64(size - 1)), "layerPartBlob": .string(blob)])
        #expect(status == 400)
        #expect(out["__type"] == "InvalidParameterException")
        #expect(out["message"] == "1 validation error detected: Value at 'layerPartBlob' failed to satisfy constraint: Member must have length less than or equal to 20971520")
    }

    /// ECR Public's RepositoryName is 2–205 characters on every operation, ECR's 2–256.
    @Test func publicRepositoryNamesAreAtMost205Characters() async {
        let (priv, pub) = services()
        let name = String(repeating: "a", count: 206)
        for op in ["DescribeImages", "GetRepositoryCatalogData", "InitiateLayerUpload", "DeleteRepository"] {
            let (status, out) = await call(pub, op, ["repositoryName": .string(name)])
            #expect(status == 400, "\(op)")
            #expect(out["message"] == "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length between 2 and 205'", "\(op)")
        }
        let (status, out) = await call(priv, "DescribeImages", ["repositoryName": .string(name)])
        #expect(status == 400)
        #expect(out["__type"] == "RepositoryNotFoundException")
        let (longStatus, long) = await call(priv, "DescribeImages", ["repositoryName": .string(String(repeating: "a", count: 257))])
        #expect(longStatus == 400)
        #expect(long["message"] == "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'Member must have length between 2 and 256'")
    }

    func tags(_ n: Int, from start: Int = 0) -> JSONValue {
        .array((start..<(start + n)).map { ["Key": .string("k\($0)"), "Value": "v"] })
    }

    /// Tags a repository may carry: 50 on ECR, 200 on ECR Public (TagResource as well as CreateRepository).
    @Test func tagLimitsPerFlavor() async {
        let (priv, pub) = services()
        _ = await call(priv, "CreateRepository", ["repositoryName": "app"])
        _ = await call(pub, "CreateRepository", ["repositoryName": "web"])
        let privARN = JSONValue.string("arn:aws:ecr:us-east-1:\(Self.account):repository/app")
        let pubARN = JSONValue.string("arn:aws:ecr-public::\(Self.account):repository/web")
        var (status, out) = await call(priv, "TagResource", ["resourceArn": privARN, "tags": tags(50)])
        #expect(status == 200)
        (status, out) = await call(priv, "TagResource", ["resourceArn": privARN, "tags": tags(1, from: 50)])
        #expect(out["__type"] == "TooManyTagsException")
        (status, out) = await call(pub, "TagResource", ["resourceArn": pubARN, "tags": tags(200)])
        #expect(status == 200, "\(out)")
        (status, out) = await call(pub, "TagResource", ["resourceArn": pubARN, "tags": tags(1, from: 200)])
        #expect(out["__type"] == "TooManyTagsException")
        #expect(out["message"] == .string(ECRError.tooManyTags(limit: 200).message))
        (status, out) = await call(pub, "CreateRepository", ["repositoryName": "many", "tags": tags(200)])
        #expect(status == 200)
        // UntagResource on ECR Public: tagKeys max 200, each 1–128 characters.
        (status, out) = await call(pub, "UntagResource", ["resourceArn": pubARN, "tagKeys": [.string(String(repeating: "k", count: 129))]])
        #expect(out["__type"] == "InvalidTagParameterException")
        (status, out) = await call(pub, "UntagResource", ["resourceArn": pubARN, "tagKeys": .array((0..<201).map { .string("k\($0)") })])
        #expect(out["__type"] == "InvalidParameterException")
        (status, out) = await call(pub, "UntagResource", ["resourceArn": pubARN, "tagKeys": ["k0", "k1"]])
        #expect(status == 200)
    }

    /// ECR Public's resourceArn is 1–2048 characters on every tag operation.
    @Test func publicResourceARNsAreAtMost2048Characters() async {
        let (_, pub) = services()
        let long = JSONValue.string("arn:aws:ecr-public::\(Self.account):repository/" + String(repeating: "a", count: 2049))
        for (op, extra) in [("TagResource", ["tags": tags(1)]), ("UntagResource", ["tagKeys": ["k"]]), ("ListTagsForResource", [:])] as [(String, [String: JSONValue])] {
            var body = extra
            body["resourceArn"] = long
            let (status, out) = await call(pub, op, .object(body))
            #expect(status == 400, "\(op)")
            #expect(out["__type"] == "InvalidParameterException", "\(op)")
            #expect(out["message"] == "1 validation error detected: Value at 'resourceArn' failed to satisfy constraint: Member must have length less than or equal to 2048", "\(op)")
        }
        let (status, out) = await call(pub, "ListTagsForResource", ["resourceArn": ""])
        #expect(status == 400)
        #expect(out["message"] == "1 validation error detected: Value at 'resourceArn' failed to satisfy constraint: Member must have length greater than or equal to 1")
    }

    /// BatchCheckLayerAvailability takes digests of at most 1000 characters (a longer one is refused as a
    /// parameter; a malformed one up to 1000 characters is a failure of the batch).
    @Test(arguments: [false, true]) func batchedLayerDigestsAreAtMost1000Characters(publicAPI: Bool) async {
        let (priv, pub) = services()
        let s = publicAPI ? pub : priv
        _ = await call(s, "CreateRepository", ["repositoryName": "app"])
        let (status, out) = await call(s, "BatchCheckLayerAvailability", ["repositoryName": "app",
                                                                           "layerDigests": [.string("sha256:" + String(repeating: "a", count: 994))]])
        #expect(status == 400)
        #expect(out["__type"] == "InvalidParameterException")
        #expect(out["message"] == "1 validation error detected: Value at 'layerDigests' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 1000]")
        let (okStatus, ok) = await call(s, "BatchCheckLayerAvailability", ["repositoryName": "app",
                                                                           "layerDigests": [.string("sha256:" + String(repeating: "a", count: 993))]])
        #expect(okStatus == 200)
        #expect(count(ok["failures"]) == 1)
    }
}
