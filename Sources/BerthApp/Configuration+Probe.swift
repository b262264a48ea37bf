import BerthPostgres
import Foundation

extension BerthConfiguration {
    /// Reaches the configured scale-out backends and says what is wrong, one line per problem, each naming its
    /// backend (`berth verify-config`, and `berth admin migrate` for its target): the S3 bucket (a probe object
    /// written, read, listed and deleted; a multipart upload started and aborted) and the PostgreSQL server
    /// (a connection, the right to create tables, a schema not from a newer Berth). Empty for embedded backends.
    public func probeBackends(environment: [String: String] = ProcessInfo.processInfo.environment) async -> [String] {
        var problems: [String] = []
        if blobBackend == "s3" { problems += await s3.probe().map { "S3 blob store: \($0)" } }
        if metadataBackend == "postgres" {
            problems += await PostgresMetadataStore.probe(url: postgresURL, environment: environment).map { "PostgreSQL: \($0)" }
        }
        return problems
    }

    /// What `probeBackends` checked, when it found nothing wrong (for the operator).
    public var probedBackends: [String] {
        var lines: [String] = []
        if blobBackend == "s3", let c = s3.configuration {
            lines.append("S3 blob store: bucket \(c.bucket) at \(c.endpoint) is reachable and writable")
            if let a = c.archiveConfiguration {
                lines.append("S3 archive tier: bucket \(a.bucket), prefix \"\(a.keyPrefix)\"\(c.archive?.storageClass.map { ", storage class \($0)" } ?? "")"
                             + " takes and gives back copies")
            }
        }
        if metadataBackend == "postgres" { lines.append("PostgreSQL: \(postgresURLRedacted ?? "(PG* environment)") is reachable and usable") }
        return lines
    }
}
