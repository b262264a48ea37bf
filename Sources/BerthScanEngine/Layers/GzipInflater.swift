import CBerthZlib

/// Why a compressed stream could not be inflated.
public enum InflateError: Error, Sendable, Equatable {
    /// The input is not gzip/zlib data, or is corrupt.
    case corrupt(String)
    /// The input ended before the compressed stream did.
    case truncated
    /// The decompressed output would exceed the configured limit.
    case outputLimitExceeded(Int)
    case zlib(Int32)
    /// The decompressor's library is not installed on this machine.
    case unavailable(String)
}

extension InflateError: CustomStringConvertible {
    public var description: String {
        switch self {
        case .corrupt(let why): return "corrupt compressed data: \(why)"
        case .truncated: return "the compressed data ends early"
        case .outputLimitExceeded(let limit): return "decompressed data exceeds \(limit) bytes"
        case .zlib(let code): return "zlib error \(code)"
        case .unavailable(let why): return why
        }
    }
}

/// Streams gzip (or zlib) data through zlib's `inflate` one chunk at a time.
///
/// Concatenated gzip members are inflated one after another, as `gzip -d` does. Not thread-safe.
public final class GzipInflater {
    private var stream = z_stream()
    private var initialized = false
    private var finishedMember = false
    private var sawInput = false
    private var totalOut = 0
    /// Size of the output buffers handed to the sink.
    public let chunkSize: Int
    /// Maximum total decompressed bytes (a guard against decompression bombs).
    public let maxOutputBytes: Int

    public init(chunkSize: Int = 64 << 10, maxOutputBytes: Int = 16 << 30) throws(InflateError) {
        self.chunkSize = chunkSize
        self.maxOutputBytes = maxOutputBytes
        // 15 + 32: a 32 KiB window, and detect a gzip or zlib header automatically.
        let rc = inflateInit2_(&stream, 15 + 32, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard rc == Z_OK else { throw .zlib(rc) }
        initialized = true
    }

    deinit {
        if initialized { inflateEnd(&stream) }
    }

    /// Inflates `input`, passing every produced chunk to `sink`.
    public func feed(_ input: [UInt8], sink: ([UInt8]) throws -> Void) throws {
        guard !input.isEmpty else { return }
        var output = [UInt8](repeating: 0, count: chunkSize)
        var offset = 0
        var mustDrain = false
        while offset < input.count || mustDrain {
            if finishedMember {
                guard offset < input.count else { return }
                // Another gzip member follows; trailing zero padding is tolerated, as gzip does.
                if input[offset...].allSatisfy({ $0 == 0 }) { return }
                guard inflateReset(&stream) == Z_OK else { throw InflateError.zlib(Z_STREAM_ERROR) }
                finishedMember = false
            }
            sawInput = true
            let consumedBefore = offset
            var rc: Int32 = Z_OK
            var produced = 0
            input.withUnsafeBufferPointer { inBuf in
                output.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_in = UnsafeMutablePointer(mutating: inBuf.baseAddress! + offset)
                    stream.avail_in = UInt32(input.count - offset)
                    stream.next_out = outBuf.baseAddress!
                    stream.avail_out = UInt32(outBuf.count)
                    rc = inflate(&stream, Z_NO_FLUSH)
                    produced = outBuf.count - Int(stream.avail_out)
                    offset = input.count - Int(stream.avail_in)
                }
            }
            switch rc {
            case Z_OK, Z_BUF_ERROR:
                break
            case Z_STREAM_END:
                finishedMember = true
            case Z_DATA_ERROR, Z_NEED_DICT:
                let message = stream.msg.map { String(cString: $0) } ?? "invalid compressed data"
                throw InflateError.corrupt(message)
            default:
                throw InflateError.zlib(rc)
            }
            // A full output buffer may leave output pending inside zlib even when all input is consumed.
            mustDrain = produced == output.count && !finishedMember
            if produced > 0 {
                totalOut += produced
                guard totalOut <= maxOutputBytes else { throw InflateError.outputLimitExceeded(maxOutputBytes) }
                try sink(Array(output[0..<produced]))
            } else if offset == consumedBefore && !finishedMember {
                // With input and output space available zlib always progresses; with no input left we are drained.
                if offset >= input.count { return }
                throw InflateError.corrupt("inflate made no progress")
            }
        }
    }

    /// Checks that the input ended exactly at the end of a compressed member.
    public func finish() throws(InflateError) {
        guard sawInput else { throw .truncated }
        guard finishedMember else { throw .truncated }
    }
}
