import CoreMetrics
import Hummingbird
import NIOCore
import Prometheus
import Synchronization

/// The server's request metrics, kept with swift-metrics in a Prometheus registry and served at
/// `GET /metrics` in Prometheus' text format:
///
/// - `berth_http_requests_total{door,operation,status}`: requests answered;
/// - `berth_http_request_duration_seconds{door,operation}`: time until the answer's head is ready (a
///   streamed body, such as a blob download, is not included);
/// - `berth_http_request_bytes_total{door,operation}`: request bytes as declared by `Content-Length`
///   (bodies sent with chunked transfer encoding are not counted);
/// - `berth_http_response_bytes_total{door,operation}`: response body bytes (its `Content-Length`);
/// - `berth_uploads_in_flight`: blob uploads receiving data right now (OCI PATCH, PUT and monolithic
///   POST; ECR `UploadLayerPart`).
///
/// Each registry is owned by its ``BerthMetrics``: the server makes one, tests make their own and run in
/// parallel. The global `MetricsSystem` is bootstrapped with the server's registry once, by `berth serve`.
/// The label values are fixed strings and the metric objects are made once per label set, so recording a
/// request is one dictionary lookup under a lock and a few atomic or locked increments.
public final class BerthMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let uploads: CoreMetrics.Meter

    /// Storage accounting gauges, when the server has a registry to read them from (`StorageMetrics`).
    public let storage = Mutex<StorageMetrics?>(nil)

    static let requests = "berth_http_requests_total"
    static let duration = "berth_http_request_duration_seconds"
    static let bytesInName = "berth_http_request_bytes_total"
    static let bytesOutName = "berth_http_response_bytes_total"
    static let uploadsName = "berth_uploads_in_flight"
    /// From half a millisecond (a cached manifest) to a minute (a large upload's last part).
    static let buckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500),
        .seconds(5), .seconds(10), .seconds(30), .seconds(60),
    ]

    struct Key: Hashable {
        let door: Door
        let operation: String
        let status: UInt16
    }

    /// The metric objects of one label set.
    struct Series: Sendable {
        let requests: CoreMetrics.Counter
        let duration: CoreMetrics.Timer
        let bytesIn: CoreMetrics.Counter
        let bytesOut: CoreMetrics.Counter
    }

    struct OperationKey: Hashable {
        let door: Door
        let operation: String
    }

    struct Tables {
        var series: [Key: Series] = [:]
        var perOperation: [OperationKey: (CoreMetrics.Timer, CoreMetrics.Counter, CoreMetrics.Counter)] = [:]
    }

    private let tables = Mutex(Tables())

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.duration] = Self.buckets
        self.factory = factory
        uploads = CoreMetrics.Meter(label: Self.uploadsName, factory: factory)
        uploads.set(0)
    }

    /// Records one answered request.
    func record(_ record: RequestRecord, status: Int, bytesIn: Int, bytesOut: Int, elapsed: Duration) {
        let (door, operation) = record.both
        let series = self.series(Key(door: door, operation: operation, status: UInt16(clamping: status)))
        series.requests.increment()
        series.duration.recordNanoseconds(Self.nanoseconds(elapsed))
        if bytesIn > 0 { series.bytesIn.increment(by: bytesIn) }
        if bytesOut > 0 { series.bytesOut.increment(by: bytesOut) }
    }

    func series(_ key: Key) -> Series {
        tables.withLock { t in
            if let s = t.series[key] { return s }
            let op = OperationKey(door: key.door, operation: key.operation)
            let shared: (CoreMetrics.Timer, CoreMetrics.Counter, CoreMetrics.Counter)
            if let found = t.perOperation[op] {
                shared = found
            } else {
                let labels = [("door", key.door.label), ("operation", key.operation)]
                shared = (CoreMetrics.Timer(label: Self.duration, dimensions: labels, factory: factory),
                          CoreMetrics.Counter(label: Self.bytesInName, dimensions: labels, factory: factory),
                          CoreMetrics.Counter(label: Self.bytesOutName, dimensions: labels, factory: factory))
                t.perOperation[op] = shared
            }
            let counter = CoreMetrics.Counter(label: Self.requests, dimensions: [("door", key.door.label), ("operation", key.operation),
                                                                     ("status", String(key.status))], factory: factory)
            let s = Series(requests: counter, duration: shared.0, bytesIn: shared.1, bytesOut: shared.2)
            t.series[key] = s
            return s
        }
    }

    /// Runs a blob upload's transfer while `berth_uploads_in_flight` counts it.
    func trackingUpload<T>(_ body: () async throws -> T) async rethrows -> T {
        uploads.increment()
        defer { uploads.decrement() }
        return try await body()
    }

    /// The Prometheus text exposition of every metric in the registry.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }

    /// `GET /metrics`.
    func response() -> Response {
        let bytes = exposition()
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8",
                                               .contentLength: String(bytes.count)],
                        body: .init(byteBuffer: buffer))
    }

    static func bytesIn(_ request: Request) -> Int {
        request.headers[.contentLength].flatMap { Int($0) } ?? 0
    }

    static func nanoseconds(_ d: Duration) -> Int64 {
        let (seconds, attoseconds) = d.components
        return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
    }
}
