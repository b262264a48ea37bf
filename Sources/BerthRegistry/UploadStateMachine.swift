import BerthCore

/// The rules of a blob upload session, without I/O: given where the upload stands and what a
/// request claims, decide what to do. The registry performs the actions.
public enum UploadStateMachine {
    /// What to do with an incoming chunk (PATCH, or the body of the closing PUT).
    public enum ChunkDecision: Equatable, Sendable {
        /// Append the body at this offset; `expectedLength` is what the request promised, if anything.
        case append(at: Int64, expectedLength: Int64?)
        case reject(BerthError)
    }

    /// Decides whether a chunk may be appended to an upload whose committed size is `offset`.
    ///
    /// - `range`: where the chunk claims to go (`start-end`, inclusive), if the request says. It must
    ///   start exactly at `offset`: a gap, an overlap or a resent chunk is answered 416.
    /// - `contentLength`: the body's length, if the request says; it must agree with `range`.
    public static func chunk(offset: Int64, range: ByteRange?, contentLength: Int64?) -> ChunkDecision {
        if let contentLength, contentLength < 0 {
            return .reject(.sizeInvalid("negative Content-Length"))
        }
        guard let range else {
            return .append(at: offset, expectedLength: contentLength)
        }
        guard range.start == offset else {
            return .reject(.rangeNotSatisfiable(
                offset: offset, detail: "chunk starts at \(range.start) but the upload is at \(offset)"))
        }
        if let contentLength, contentLength != range.count {
            return .reject(.sizeInvalid("Content-Length \(contentLength) does not match Content-Range \(range.start)-\(range.end)"))
        }
        return .append(at: offset, expectedLength: range.count)
    }

    /// After a chunk was streamed: may the new size be committed?
    public static func afterChunk(at start: Int64, written: Int64, expectedLength: Int64?) -> Result<Int64, BerthError> {
        if let expectedLength, expectedLength != written {
            return .failure(.sizeInvalid("received \(written) bytes, the request announced \(expectedLength)"))
        }
        return .success(start + written)
    }

    /// Closing the upload: the computed digest of all bytes must equal the one the client gave.
    public static func complete(expected: Digest, computed: Digest) -> Result<Digest, BerthError> {
        guard expected == computed else {
            return .failure(.digestMismatch(expected: expected.description, computed: computed.description))
        }
        return .success(expected)
    }
}
