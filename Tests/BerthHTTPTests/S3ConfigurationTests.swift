import BerthApp
import Foundation
import Testing

/// `blobBackend: s3` and its settings: file keys, `BERTH_S3_*` variables, the `AWS_*` credential fallback.
@Suite struct S3ConfigurationTests {
    func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("berth-s3-\(UUID()).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func settingsComeFromTheFile() throws {
        let c = try BerthConfiguration.load(file: try file("""
            {"blobBackend": "s3", "s3Endpoint": "http://127.0.0.1:8333", "s3Bucket": "blobs", "s3Region": "eu-west-1",
             "s3PathStyle": false, "s3AccessKeyId": "AK", "s3SecretAccessKey": "SK"}
            """), environment: [:])
        #expect(c.blobBackend == "s3")
        let s3 = try #require(c.s3.configuration)
        #expect(s3.endpoint == "http://127.0.0.1:8333" && s3.bucket == "blobs" && s3.region == "eu-west-1")
        #expect(!s3.pathStyle && s3.accessKeyID == "AK" && s3.secretAccessKey == "SK")
    }

    @Test func environmentOverridesTheFileAndAWSVariablesAreTheFallback() throws {
        let path = try file(#"{"blobBackend": "s3", "s3Endpoint": "http://file:1", "s3Bucket": "file-bucket"}"#)
        let c = try BerthConfiguration.load(file: path, environment: [
            "BERTH_S3_BUCKET": "env-bucket", "BERTH_S3_PATH_STYLE": "false", "BERTH_S3_REGION": "ap-south-1",
            "AWS_ACCESS_KEY_ID": "AWSKEY", "AWS_SECRET_ACCESS_KEY": "AWSSECRET",
        ])
        let s3 = try #require(c.s3.configuration)
        #expect(s3.endpoint == "http://file:1" && s3.bucket == "env-bucket" && s3.region == "ap-south-1" && !s3.pathStyle)
        #expect(s3.accessKeyID == "AWSKEY" && s3.secretAccessKey == "AWSSECRET")
        let berth = try BerthConfiguration.load(file: path, environment: [
            "BERTH_S3_ENDPOINT": "https://s3.example.com", "BERTH_S3_ACCESS_KEY_ID": "BK", "BERTH_S3_SECRET_ACCESS_KEY": "BS",
            "AWS_ACCESS_KEY_ID": "AWSKEY", "AWS_SECRET_ACCESS_KEY": "AWSSECRET",
        ])
        #expect(berth.s3.configuration?.endpoint == "https://s3.example.com")
        #expect(berth.s3.configuration?.accessKeyID == "BK" && berth.s3.configuration?.secretAccessKey == "BS")
        // Credentials in the file win over the generic AWS_* variables (not over BERTH_S3_*).
        let fileKeys = try file(#"{"blobBackend": "s3", "s3Endpoint": "http://h:1", "s3Bucket": "b", "s3AccessKeyId": "F", "s3SecretAccessKey": "FS"}"#)
        let c2 = try BerthConfiguration.load(file: fileKeys, environment: ["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "AS"])
        #expect(c2.s3.configuration?.accessKeyID == "F")
    }

    @Test func missingOrBadSettingsAreNamed() throws {
        do {
            _ = try BerthConfiguration.load(file: try file(#"{"blobBackend": "s3"}"#), environment: [:])
            Issue.record("an incomplete S3 configuration was accepted")
        } catch let e as ConfigurationError {
            let text = e.description
            #expect(text.contains("s3Endpoint") && text.contains("s3Bucket") && text.contains("s3AccessKeyId"), "\(text)")
        }
        let bad = [
            #"{"blobBackend": "s3", "s3Endpoint": "s3.example.com", "s3Bucket": "b", "s3AccessKeyId": "a", "s3SecretAccessKey": "s"}"#,
            #"{"blobBackend": "s3", "s3Endpoint": "http://h/path", "s3Bucket": "b", "s3AccessKeyId": "a", "s3SecretAccessKey": "s"}"#,
            #"{"blobBackend": "s3", "s3Endpoint": "http://h", "s3Bucket": "a/b", "s3AccessKeyId": "a", "s3SecretAccessKey": "s"}"#,
            #"{"blobBackend": "s3", "s3Endpoint": "http://h", "s3Bucket": "b", "s3AccessKeyId": "a", "s3SecretAccessKey": "s", "s3Bogus": 1}"#,
            #"{"blobBackend": "s3", "s3Endpoint": "http://h", "s3Bucket": "b", "s3PathStyle": "yes", "s3AccessKeyId": "a", "s3SecretAccessKey": "s"}"#,
        ]
        for json in bad {
            #expect(throws: ConfigurationError.self, "\(json)") { try BerthConfiguration.load(file: try file(json), environment: [:]) }
        }
        #expect(throws: ConfigurationError.self) {
            try BerthConfiguration.load(file: nil, environment: ["BERTH_BLOB_BACKEND": "s3", "BERTH_S3_PATH_STYLE": "maybe"])
        }
    }

    /// The archive tier: `s3ArchivePrefix`/`s3ArchiveBucket`/`s3ArchiveStorageClass` from the file or
    /// `BERTH_S3_ARCHIVE_*`, validated at load (a storage class alone, an overlapping prefix, a class that
    /// needs `RestoreObject`, `archiveDirectory` with S3).
    @Test func archiveTierSettings() throws {
        let base = #""blobBackend": "s3", "s3Endpoint": "http://h:1", "s3Bucket": "b", "s3AccessKeyId": "a", "s3SecretAccessKey": "s""#
        let c = try BerthConfiguration.load(file: try file("{\(base), \"s3ArchivePrefix\": \"cold/\", \"s3ArchiveStorageClass\": \"STANDARD_IA\"}"),
                                            environment: [:])
        let archive = try #require(c.s3.configuration?.archive)
        #expect(archive.bucket == nil && archive.keyPrefix == "cold/" && archive.storageClass == "STANDARD_IA")
        #expect(c.s3.configuration?.archiveConfiguration?.keyPrefix == "cold/" && c.s3.configuration?.archiveConfiguration?.bucket == "b")
        let env = try BerthConfiguration.load(file: try file("{\(base)}"), environment: [
            "BERTH_S3_ARCHIVE_BUCKET": "cold-bucket", "BERTH_S3_ARCHIVE_STORAGE_CLASS": "GLACIER_IR"])
        let fromEnv = try #require(env.s3.configuration?.archive)
        #expect(fromEnv.bucket == "cold-bucket" && fromEnv.keyPrefix == nil && fromEnv.storageClass == "GLACIER_IR")
        #expect(env.s3.configuration?.archiveConfiguration?.bucket == "cold-bucket")
        #expect(try BerthConfiguration.load(file: try file("{\(base)}"), environment: [:]).s3.configuration?.archive == nil)
        let refused = [
            ("\"s3ArchiveStorageClass\": \"STANDARD_IA\"", "names no place"),
            ("\"s3ArchivePrefix\": \"\"", "overlaps"),
            ("\"s3ArchivePrefix\": \"blobs/archive/\"", "overlaps"),
            ("\"s3ArchivePrefix\": \"cold/\", \"s3ArchiveStorageClass\": \"DEEP_ARCHIVE\"", "RestoreObject"),
            ("\"s3ArchiveBucket\": \"cold\", \"s3ArchiveStorageClass\": \"standard\"", "must be one of"),
            ("\"s3ArchiveBucket\": \"\"", "must not be empty"),
            ("\"s3ArchivePrefix\": \"cold/\", \"archiveDirectory\": \"/tmp/archive\"", "archiveDirectory"),
        ]
        for (extra, message) in refused {
            do {
                _ = try BerthConfiguration.load(file: try file("{\(base), \(extra)}"), environment: [:])
                Issue.record("accepted: \(extra)")
            } catch let e as ConfigurationError {
                #expect(e.description.contains(message), "\(extra): \(e.description)")
            }
        }
    }

    @Test func s3SettingsAreIgnoredByOtherBackends() throws {
        let c = try BerthConfiguration.load(file: try file(#"{"s3Bucket": "unused"}"#), environment: [:])
        #expect(c.blobBackend == "filesystem")
        #expect(c.s3.bucket == "unused")
    }
}
