// swift-tools-version:6.2
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "berth",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "berth", targets: ["berth"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/JohnSundell/Ink.git", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CSQLite",
            path: "Sources/CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .systemLibrary(name: "CBerthShims", path: "Sources/CBerthShims"),
        // The shared leaf: small concepts every layer needs (clock, caches, codecs), with no Berth dependency.
        .target(
            name: "BerthSupport",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthCore",
            dependencies: [
                "BerthSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthAuth",
            dependencies: [
                "BerthSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthStorage",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "CSQLite",
                "CBerthShims",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The PostgreSQL metadata store (scale-out): its own target, so that building the embedded store does not wait for postgres-nio.
        .target(
            name: "BerthPostgres",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Blobs in an S3-compatible object store, over async-http-client, signed with BerthAuth's SigV4 signer.
        .target(
            name: "BerthS3",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthAuth",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Lifecycle policies: the lifecyclePolicyText grammar and the pure evaluator.
        .target(
            name: "BerthLifecycle",
            dependencies: ["BerthSupport", "BerthCore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthRegistry",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthLifecycle",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .systemLibrary(
            name: "CBerthZlib",
            path: "Sources/CBerthZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // libzstd is opened at run time (dlopen): building needs no zstd headers, scanning a zstd layer needs libzstd1.
        .target(name: "CZstdRuntime", linkerSettings: [.linkedLibrary("dl")]),
        .target(
            name: "BerthVersions",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthPolicy",
            dependencies: ["BerthSupport"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthScanEngine",
            dependencies: ["CBerthZlib", "CZstdRuntime", "CSQLite", "BerthVersions", "BerthSupport",
                           .product(name: "ZIPFoundation", package: "ZIPFoundation")],
            exclude: ["README.md"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthScanService",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthRegistry",
                "BerthScanEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthECR",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthRegistry",
                "BerthReplication",
                "BerthPolicy",
                "BerthLifecycle",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Secrets Manager: secrets sealed at rest (upstream credentials of pull through cache rules) and its JSON API.
        .target(
            name: "BerthSecrets",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthAuth",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Registry to registry: the outbound OCI client (token flow) and the pull through cache.
        .target(
            name: "BerthReplication",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthAuth",
                "BerthPolicy",
                "BerthStorage",
                "BerthRegistry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // KMS-compatible keys: the key service (domain, over the metadata store) and the KMS JSON API.
        .target(
            name: "BerthKMS",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthPolicy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthDirectory",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthPolicy",
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthIAM",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthDirectory",
                "BerthPolicy",
                "BerthAuth",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Event notifications (docs/events.md): EventBridge patterns, CloudEvents, signed webhook delivery
        // from the metadata store's outbox, over async-http-client.
        .target(
            name: "BerthEvents",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthRegistry",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The audit trail: CloudTrail-shaped records of every request, their store and LookupEvents.
        .target(
            name: "BerthAudit",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The public gallery's pages: Mustache templates and Ink Markdown, pure (view models in, HTML out), in a target
        // of their own so that nothing else waits for the two libraries.
        .target(
            name: "BerthGallery",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Ink", package: "Ink"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthHTTP",
            dependencies: [
                "BerthSupport",
                "BerthGallery",
                "BerthCore",
                "BerthRegistry",
                "BerthAuth",
                "BerthECR",
                "BerthIAM",
                "BerthDirectory",
                "BerthKMS",
                "BerthAudit",
                "BerthSecrets",
                "BerthReplication",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "BerthApp",
            dependencies: [
                "BerthSupport",
                "BerthCore",
                "BerthStorage",
                "BerthRegistry",
                "BerthHTTP",
                "BerthAuth",
                "BerthECR",
                "BerthScanService",
                "BerthIAM",
                "BerthDirectory",
                "BerthKMS",
                "BerthLifecycle",
                "BerthAudit",
                "BerthEvents",
                "BerthPostgres",
                "BerthS3",
                "BerthSecrets",
                "BerthReplication",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "berth",
            dependencies: [
                "BerthApp",
                "BerthAudit",
                "BerthCore",
                "BerthRegistry",
                "BerthScanEngine",
                "BerthScanService",
                "CBerthShims",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "BerthSupportTests", dependencies: ["BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthCoreTests", dependencies: ["BerthCore", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthStorageTests", dependencies: ["BerthStorage", "BerthCore", "BerthPostgres", "BerthS3", "BerthAuth",
                                                            .product(name: "PostgresNIO", package: "postgres-nio")],
                    exclude: ["Fixtures"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthLifecycleTests", dependencies: ["BerthLifecycle", "BerthCore", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthVersionsTests", dependencies: ["BerthVersions"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthPolicyTests", dependencies: ["BerthPolicy", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthScanEngineTests", dependencies: ["BerthScanEngine", "CBerthZlib", "CZstdRuntime", "CSQLite"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthScanServiceTests",
                    dependencies: ["BerthScanService", "BerthScanEngine", "BerthRegistry", "BerthStorage", "BerthCore",
                                   .product(name: "NIOPosix", package: "swift-nio")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthAuthTests", dependencies: ["BerthAuth", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthECRTests", dependencies: ["BerthSupport", "BerthECR", "BerthRegistry", "BerthCore", "BerthReplication", "BerthStorage"],
                    exclude: ["Fixtures"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthDirectoryTests", dependencies: ["BerthDirectory", "BerthStorage", "BerthCore"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthIAMTests", dependencies: ["BerthSupport", "BerthIAM", "BerthDirectory", "BerthStorage", "BerthCore", "BerthPolicy", "BerthAuth", "BerthRegistry",
                                                    .product(name: "Crypto", package: "swift-crypto"),
                                                    .product(name: "_CryptoExtras", package: "swift-crypto")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthKMSTests",
                    dependencies: ["BerthKMS", "BerthStorage", "BerthCore", "BerthSupport", "BerthPolicy",
                                   .product(name: "Crypto", package: "swift-crypto")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthRegistryTests", dependencies: ["BerthRegistry", "BerthStorage", "BerthCore", "BerthLifecycle", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthReplicationTests",
                    dependencies: ["BerthReplication", "BerthSecrets", "BerthRegistry", "BerthStorage", "BerthCore", "BerthSupport", "BerthAuth",
                                   .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                                   .product(name: "NIOHTTP1", package: "swift-nio")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "BerthAuditTests", dependencies: ["BerthAudit", "BerthSupport", "BerthCore"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthGalleryTests", dependencies: ["BerthGallery", "BerthCore", "BerthSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "BerthEventsTests",
                    dependencies: ["BerthEvents", "BerthRegistry", "BerthStorage", "BerthCore", "BerthSupport",
                                   .product(name: "Prometheus", package: "swift-prometheus")],
                    swiftSettings: swiftSettings),
        .testTarget(
            name: "BerthHTTPTests",
            dependencies: [
                "BerthSupport", "BerthApp", "BerthHTTP", "BerthAuth", "BerthIAM", "BerthRegistry", "BerthReplication",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
