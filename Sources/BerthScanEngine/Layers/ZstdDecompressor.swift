import CZstdRuntime

/// Streams Zstandard data (RFC 8878) through libzstd one chunk at a time.
///
/// libzstd is opened at run time the first time a zstd layer is met (``ZstdLibrary``); without it the layer
/// fails with a clear ``InflateError/unavailable(_:)`` instead of Berth needing zstd headers to build.
///
/// Concatenated frames and skippable frames are handled as `zstd -d` does; frame checksums are verified when
/// present. The window is limited to `ZSTD_WINDOWLOG_LIMIT_DEFAULT` (128 MiB), so a frame cannot make the decoder
/// allocate more than that. Errors are reported as ``InflateError``. Not thread-safe.
public final class ZstdDecompressor: LayerDecompressor {
    private let context: UnsafeMutableRawPointer
    private var sawInput = false
    /// True when the last call ended exactly at a frame boundary.
    private var atFrameBoundary = true
    private var totalOut = 0
    /// Size of the output buffers handed to the sink.
    public let chunkSize: Int
    /// Maximum total decompressed bytes (a guard against decompression bombs).
    public let maxOutputBytes: Int

    public init(chunkSize: Int = 128 << 10, maxOutputBytes: Int = 16 << 30) throws(InflateError) {
        try ZstdLibrary.require()
        guard let context = berth_zstd_create_dctx() else { throw .corrupt("zstd: cannot allocate a decompression context") }
        self.context = context
        self.chunkSize = max(chunkSize, 1)
        self.maxOutputBytes = maxOutputBytes
    }

    deinit { _ = berth_zstd_free_dctx(context) }

    /// Decompresses `input`, passing every produced chunk to `sink`.
    public func feed(_ input: [UInt8], sink: ([UInt8]) throws -> Void) throws {
        guard !input.isEmpty else { return }
        sawInput = true
        var output = [UInt8](repeating: 0, count: chunkSize)
        var position = 0
        while true {
            let before = position
            var rc = 0
            var produced = 0
            input.withUnsafeBytes { inBuf in
                output.withUnsafeMutableBytes { outBuf in
                    var inb = berth_zstd_in_buffer(src: inBuf.baseAddress, size: inBuf.count, pos: position)
                    var outb = berth_zstd_out_buffer(dst: outBuf.baseAddress, size: outBuf.count, pos: 0)
                    rc = berth_zstd_decompress_stream(context, &outb, &inb)
                    position = inb.pos
                    produced = outb.pos
                }
            }
            if berth_zstd_is_error(rc) != 0 {
                throw InflateError.corrupt("zstd: " + String(cString: berth_zstd_error_name(rc)))
            }
            atFrameBoundary = rc == 0
            if produced > 0 {
                totalOut += produced
                guard totalOut <= maxOutputBytes else { throw InflateError.outputLimitExceeded(maxOutputBytes) }
                try sink(Array(output[0..<produced]))
            }
            if produced == 0 && position == before && position < input.count {
                throw InflateError.corrupt("zstd: decompression made no progress")
            }
            // Done with this input once it is consumed and the output buffer was not filled (nothing left to flush).
            if position >= input.count && produced < output.count { return }
        }
    }

    /// Checks that the input ended exactly at the end of a frame.
    public func finish() throws(InflateError) {
        guard sawInput, atFrameBoundary else { throw .truncated }
    }
}

/// The system's libzstd, opened on first use.
public enum ZstdLibrary {
    /// Whether libzstd (`libzstd.so.1`, Debian's `libzstd1`) could be loaded.
    public static var isAvailable: Bool { berth_zstd_load() != 0 }

    /// Throws ``InflateError/unavailable(_:)`` naming why libzstd could not be loaded.
    public static func require() throws(InflateError) {
        guard berth_zstd_load() == 0 else { return }
        let why = berth_zstd_load_error().map { String(cString: $0) } ?? "unknown error"
        throw .unavailable("zstd layers need the zstd library (Debian package libzstd1): \(why)")
    }
}

/// A streaming decompressor for layer blobs.
public protocol LayerDecompressor: AnyObject {
    /// Decompresses `input`, passing every produced chunk to `sink`.
    func feed(_ input: [UInt8], sink: ([UInt8]) throws -> Void) throws
    /// Checks that the compressed stream ended completely.
    func finish() throws(InflateError)
}

extension GzipInflater: LayerDecompressor {}

/// How a layer blob is compressed.
public enum LayerCompression: String, Sendable, Equatable, CaseIterable {
    case none
    case gzip
    case zstd

    /// The compression a layer media type names; `nil` for media types that are not (known) tar layers.
    ///
    /// OCI `application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]` (and the non-distributable variants) and
    /// Docker `application/vnd.docker.image.rootfs.diff.tar[.gzip|.zstd]` are known.
    public init?(mediaType: String) {
        let base = mediaType.split(separator: ";", maxSplits: 1).first.map { $0.trimmingWhitespace() } ?? mediaType
        switch base {
        case "application/vnd.oci.image.layer.v1.tar",
             "application/vnd.oci.image.layer.nondistributable.v1.tar",
             "application/vnd.docker.image.rootfs.diff.tar":
            self = .none
        case "application/vnd.oci.image.layer.v1.tar+gzip",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip":
            self = .gzip
        case "application/vnd.oci.image.layer.v1.tar+zstd",
             "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
             "application/vnd.docker.image.rootfs.diff.tar.zstd":
            self = .zstd
        default:
            return nil
        }
    }

    /// The compression the first bytes of a blob show: gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar.
    public init(sniffing head: [UInt8]) {
        if head.count >= 4, head[0] == 0x28, head[1] == 0xb5, head[2] == 0x2f, head[3] == 0xfd {
            self = .zstd
        } else if head.count >= 2, head[0] == 0x1f, head[1] == 0x8b {
            self = .gzip
        } else {
            self = .none
        }
    }
}
