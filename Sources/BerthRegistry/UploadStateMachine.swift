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
    /// - `contentRange`: the request's `Content-Range` (`start-end`, inclusive), if any. It must start
    ///   exactly at `offset`: a gap, an overlap or a resent chunk is answered 416.
    /// - `contentLength`: the request's `Content-Length`, if any; it must agree with `contentRange`.
    public static func chunk(offset: Int64, contentRange: String?, contentLength: Int64?) -> ChunkDecision {
        if let contentLength, contentLength < 0 {
            return .reject(.sizeInvalid("negative Content-Length"))
        }
        guard let header = contentRange, !header.isEmpty else {
            return .append(at: offset, expectedLength: contentLength)
        }
        guard let range = ByteRange.parse(header) else {
            return .reject(.rangeNotSatisfiable(offset: offset, detail: "malformed Content-Range \(header)"))
        }
        guard range.start == offset else {
            return .reject(.rangeNotSatisfiable(
                offset: offset, detail: "chunk starts at \(range.start) but the upload is at \(offset)"))
        }
        if let contentLength, contentLength != range.count {
            return .reject(.sizeInvalid("Content-Length \(contentLength) does not match Content-Range \(header)"))
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

    /// Closing the upload: the computed digest of all bytes must equal the `digest` parameter.
    public static func complete(digestParameter: String?, computed: Digest) -> Result<Digest, BerthError> {
        guard let digestParameter else { return .failure(.digestInvalid("the digest query parameter is required")) }
        let expected: Digest
        do { expected = try Digest(parsing: digestParameter) } catch { return .failure(error) }
        guard expected == computed else {
            return .failure(.digestMismatch(expected: expected.description, computed: computed.description))
        }
        return .success(expected)
    }
}
