import CBerthZlib
import Foundation
@testable import BerthScanEngine

/// Builds tar archives in memory for tests, including malformed ones.
struct TarBuilder {
    private(set) var bytes: [UInt8] = []

    static func header(name: String, size: Int, type: UInt8 = UInt8(ascii: "0"), link: String = "",
                       sizeField: [UInt8]? = nil, corruptChecksum: Bool = false, mode: Int = 0o644) -> [UInt8] {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ s: String, at offset: Int, max: Int) {
            for (k, b) in s.utf8.prefix(max).enumerated() { h[offset + k] = b }
        }
        put(name, at: 0, max: 100)
        put(String(format: "%07o\0", mode), at: 100, max: 8)
        put("0000000\0", at: 108, max: 8)
        put("0000000\0", at: 116, max: 8)
        if let sizeField { for (k, b) in sizeField.prefix(12).enumerated() { h[124 + k] = b } } else {
            put(String(format: "%011o\0", size), at: 124, max: 12)
        }
        put("00000000000\0", at: 136, max: 12)
        h[156] = type
        put(link, at: 157, max: 100)
        put("ustar\0", at: 257, max: 6)
        put("00", at: 263, max: 2)
        for k in 148..<156 { h[k] = UInt8(ascii: " ") }
        var sum = h.reduce(0) { $0 + Int($1) }
        if corruptChecksum { sum += 1 }
        put(String(format: "%06o\0 ", sum), at: 148, max: 8)
        return h
    }

    static func padded(_ data: [UInt8]) -> [UInt8] {
        data + [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }

    mutating func file(_ name: String, _ contents: String) { file(name, Array(contents.utf8)) }

    mutating func file(_ name: String, _ contents: [UInt8], mode: Int = 0o644) {
        bytes += Self.header(name: name, size: contents.count, mode: mode) + Self.padded(contents)
    }

    mutating func directory(_ name: String) { bytes += Self.header(name: name, size: 0, type: UInt8(ascii: "5")) }

    mutating func symlink(_ name: String, to target: String) {
        bytes += Self.header(name: name, size: 0, type: UInt8(ascii: "2"), link: target)
    }

    mutating func hardlink(_ name: String, to target: String) {
        bytes += Self.header(name: name, size: 0, type: UInt8(ascii: "1"), link: target)
    }

    mutating func whiteout(_ name: String) { file(name, "") }

    /// A GNU long-name record followed by the entry it names.
    mutating func gnuLongName(_ name: String, _ contents: String) {
        let data = Array(name.utf8) + [0]
        bytes += Self.header(name: "././@LongLink", size: data.count, type: UInt8(ascii: "L")) + Self.padded(data)
        file(String(name.prefix(99)), contents)
    }

    /// A pax extended header with `path=name` followed by the entry it names.
    mutating func paxPath(_ name: String, _ contents: String) {
        let body = " path=\(name)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length = String(length).utf8.count + body.utf8.count }
        let record = Array("\(length)\(body)".utf8)
        bytes += Self.header(name: "PaxHeaders/x", size: record.count, type: UInt8(ascii: "x")) + Self.padded(record)
        file("short-name-ignored", contents)
    }

    mutating func raw(_ data: [UInt8]) { bytes += data }

    mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    var gzipped: [UInt8] { gzip(bytes) }
}

/// gzip-compresses `data` with zlib.
func gzip(_ data: [UInt8]) -> [UInt8] {
    var stream = z_stream()
    precondition(deflateInit2_(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY, ZLIB_VERSION,
                               Int32(MemoryLayout<z_stream>.size)) == Z_OK)
    defer { deflateEnd(&stream) }
    var input = data
    var out = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(data.count))) + 64)
    let produced: Int = input.withUnsafeMutableBufferPointer { inBuf in
        out.withUnsafeMutableBufferPointer { outBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = UInt32(inBuf.count)
            stream.next_out = outBuf.baseAddress
            stream.avail_out = UInt32(outBuf.count)
            precondition(deflate(&stream, Z_FINISH) == Z_STREAM_END)
            return outBuf.count - Int(stream.avail_out)
        }
    }
    return Array(out[0..<produced])
}

extension LayerWalker {
    /// Applies a layer held in memory, handed over in chunks of `chunk` bytes.
    mutating func apply(bytes: [UInt8], chunk: Int = 7) throws(LayerError) {
        var offset = 0
        try apply { () throws(LayerError) -> [UInt8]? in
            guard offset < bytes.count else { return nil }
            let end = min(offset + chunk, bytes.count)
            defer { offset = end }
            return Array(bytes[offset..<end])
        }
    }
}
