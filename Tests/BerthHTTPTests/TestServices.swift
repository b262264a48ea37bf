import BerthApp
import BerthRegistry
import BerthStorage
import BerthSupport
import Foundation
import Logging

/// The services of a server on in-memory storage, bootstrapped with the AWS documentation's example
/// root key (AKIAIOSFODNN7EXAMPLE), for tests that drive the doors.
func inMemoryServices(clock: any WallClock = SystemWallClock(),
                      configure: (inout BerthConfiguration) -> Void = { _ in }) async throws -> BerthServices {
    var config = BerthConfiguration()
    config.metadataBackend = "memory"
    config.blobBackend = "memory"
    config.rootAccessKeyId = "AKIAIOSFODNN7EXAMPLE"
    config.rootSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    configure(&config)
    let services = try BerthServices.make(
        config, storage: StorageBackends(blobs: InMemoryBlobStore(), metadata: InMemoryMetadataStore()), clock: clock)
    try await services.bootstrap(logger: Logger(label: "test"))
    return services
}

/// A directory with no JWKS files: no web identity token verifies.
func noJWKSDirectory() -> String {
    FileManager.default.temporaryDirectory.appendingPathComponent("berth-none-\(UUID())").path
}
