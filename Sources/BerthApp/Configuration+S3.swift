import BerthS3
import BerthStorage

/// The settings of the S3 blob backend (`blobBackend: s3`): flat keys of the configuration file
/// (`s3Endpoint`, …) and `BERTH_S3_*` variables, kept in one value so the main configuration stays short.
public struct S3Settings: Sendable, Equatable, Decodable {
    /// `http(s)://host[:port]` of the object store.
    public var endpoint: String? = nil
    public var bucket: String? = nil
    /// The signing region; default `us-east-1`.
    public var region: String = "us-east-1"
    /// Path-style URLs (`endpoint/bucket/key`, default, what MinIO and SeaweedFS expect) or virtual-hosted ones.
    public var pathStyle: Bool = true
    /// Credentials; from `BERTH_S3_ACCESS_KEY_ID`/`BERTH_S3_SECRET_ACCESS_KEY`, else `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`.
    public var accessKeyId: String? = nil
    public var secretAccessKey: String? = nil
    /// Answer blob GETs (and `GetDownloadUrlForLayer`) with presigned URLs of the bucket, as Distribution's
    /// `redirect` does, for blobs stored as pushed (not sealed): clients then download from the object store.
    public var redirect: Bool = false
    /// The archive tier (docs/s3.md "The archive tier"): another bucket of the same store and/or a key prefix
    /// for the objects of blobs that only archived images use, optionally in another storage class. Off
    /// unless a bucket or a prefix is given.
    public var archiveBucket: String? = nil
    public var archivePrefix: String? = nil
    public var archiveStorageClass: String? = nil

    public init() {}

    enum CodingKeys: String, CodingKey, CaseIterable {
        case s3Endpoint, s3Bucket, s3Region, s3PathStyle, s3AccessKeyId, s3SecretAccessKey, s3Redirect
        case s3ArchiveBucket, s3ArchivePrefix, s3ArchiveStorageClass
    }

    static var keys: [String] { CodingKeys.allCases.map(\.rawValue) }

    /// Reads the `s3*` keys of the configuration object (the other keys are the main configuration's).
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        endpoint = try c.decodeIfPresent(String.self, forKey: .s3Endpoint)
        bucket = try c.decodeIfPresent(String.self, forKey: .s3Bucket)
        region = try c.decodeIfPresent(String.self, forKey: .s3Region) ?? region
        pathStyle = try c.decodeIfPresent(Bool.self, forKey: .s3PathStyle) ?? pathStyle
        accessKeyId = try c.decodeIfPresent(String.self, forKey: .s3AccessKeyId)
        secretAccessKey = try c.decodeIfPresent(String.self, forKey: .s3SecretAccessKey)
        redirect = try c.decodeIfPresent(Bool.self, forKey: .s3Redirect) ?? redirect
        archiveBucket = try c.decodeIfPresent(String.self, forKey: .s3ArchiveBucket)
        archivePrefix = try c.decodeIfPresent(String.self, forKey: .s3ArchivePrefix)
        archiveStorageClass = try c.decodeIfPresent(String.self, forKey: .s3ArchiveStorageClass)
    }

    /// Applies `BERTH_S3_*` (and the `AWS_*` credential fallback) from `env`; `bool` parses a boolean variable.
    mutating func apply(env: (String) -> String?, bool: (String, (Bool) -> Void) -> Void) {
        if let v = env("BERTH_S3_ENDPOINT") { endpoint = v }
        if let v = env("BERTH_S3_BUCKET") { bucket = v }
        if let v = env("BERTH_S3_REGION") { region = v }
        if let v = env("BERTH_S3_ARCHIVE_BUCKET") { archiveBucket = v }
        if let v = env("BERTH_S3_ARCHIVE_PREFIX") { archivePrefix = v }
        if let v = env("BERTH_S3_ARCHIVE_STORAGE_CLASS") { archiveStorageClass = v }
        var pathStyle = self.pathStyle
        bool("BERTH_S3_PATH_STYLE") { pathStyle = $0 }
        self.pathStyle = pathStyle
        var redirect = self.redirect
        bool("BERTH_S3_REDIRECT") { redirect = $0 }
        self.redirect = redirect
        if let v = env("BERTH_S3_ACCESS_KEY_ID") ?? (accessKeyId == nil ? env("AWS_ACCESS_KEY_ID") : nil) { accessKeyId = v }
        if let v = env("BERTH_S3_SECRET_ACCESS_KEY") ?? (secretAccessKey == nil ? env("AWS_SECRET_ACCESS_KEY") : nil) {
            secretAccessKey = v
        }
    }

    /// What is wrong with these settings for `blobBackend: s3`.
    func problems(blobBackend: String) -> [String] {
        guard blobBackend == "s3" else { return [] }
        var p: [String] = []
        if let e = endpoint {
            if !(e.hasPrefix("http://") || e.hasPrefix("https://")) { p.append("s3Endpoint must start with http:// or https://, got \(e)") }
        } else {
            p.append("blobBackend s3 needs s3Endpoint (BERTH_S3_ENDPOINT)")
        }
        if bucket == nil { p.append("blobBackend s3 needs s3Bucket (BERTH_S3_BUCKET)") }
        if accessKeyId == nil || secretAccessKey == nil {
            p.append("blobBackend s3 needs s3AccessKeyId and s3SecretAccessKey (BERTH_S3_* or AWS_* variables)")
        }
        if region.isEmpty { p.append("s3Region must not be empty") }
        if archiveBucket?.isEmpty == true { p.append("s3ArchiveBucket must not be empty") }
        if archiveStorageClass != nil && archiveBucket == nil && archivePrefix == nil {
            p.append("s3ArchiveStorageClass needs s3ArchiveBucket or s3ArchivePrefix (BERTH_S3_ARCHIVE_*): it names no place by itself")
        }
        if p.isEmpty, let c = configuration {
            do { _ = try S3BlobStore(c) } catch { p.append("\(error)") }
        }
        return p
    }

    /// The store's configuration, when every required setting is there.
    public var configuration: S3Configuration? {
        guard let endpoint, let bucket, let accessKeyId, let secretAccessKey else { return nil }
        return S3Configuration(endpoint: endpoint, bucket: bucket, region: region, pathStyle: pathStyle,
                               accessKeyID: accessKeyId, secretAccessKey: secretAccessKey, archive: archive)
    }

    /// The archive tier's location, when a bucket or a prefix is set.
    var archive: S3ArchiveLocation? {
        guard archiveBucket != nil || archivePrefix != nil else { return nil }
        return S3ArchiveLocation(bucket: archiveBucket, keyPrefix: archivePrefix, storageClass: archiveStorageClass)
    }
}

extension S3Settings {
    /// The settings as the configuration file spells them, the secret redacted (for `berth verify-config`).
    public var effectiveEntries: [String: Any] {
        var entries: [String: Any] = ["s3Region": region, "s3PathStyle": pathStyle, "s3Redirect": redirect]
        if let endpoint { entries["s3Endpoint"] = endpoint }
        if let bucket { entries["s3Bucket"] = bucket }
        if let accessKeyId { entries["s3AccessKeyId"] = accessKeyId }
        if secretAccessKey != nil { entries["s3SecretAccessKey"] = "(redacted)" }
        if let archiveBucket { entries["s3ArchiveBucket"] = archiveBucket }
        if let archivePrefix { entries["s3ArchivePrefix"] = archivePrefix }
        if let archiveStorageClass { entries["s3ArchiveStorageClass"] = archiveStorageClass }
        return entries
    }

    /// Writes, reads, lists and deletes a probe object in the bucket; one sentence per problem found.
    public func probe() async -> [String] {
        guard let configuration else { return problems(blobBackend: "s3") }
        let store: S3BlobStore
        do { store = try S3BlobStore(configuration) } catch { return ["\(error)"] }
        return await store.probe()
    }
}
