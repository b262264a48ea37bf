import BerthCore
import BerthRegistry
import Testing

@Suite struct UploadStateMachineTests {
    @Test func streamedChunkAppendsAtOffset() {
        #expect(UploadStateMachine.chunk(offset: 10, range: nil, contentLength: nil) == .append(at: 10, expectedLength: nil))
        #expect(UploadStateMachine.chunk(offset: 10, range: nil, contentLength: 5) == .append(at: 10, expectedLength: 5))
    }

    @Test func rangedChunkMustStartAtOffset() {
        #expect(UploadStateMachine.chunk(offset: 0, range: ByteRange(start: 0, end: 9), contentLength: 10) == .append(at: 0, expectedLength: 10))
        #expect(UploadStateMachine.chunk(offset: 10, range: ByteRange(start: 10, end: 19), contentLength: nil) == .append(at: 10, expectedLength: 10))
        guard case .reject(.rangeNotSatisfiable) = UploadStateMachine.chunk(offset: 10, range: ByteRange(start: 20, end: 29), contentLength: 10) else {
            Issue.record("gap must be refused"); return
        }
        guard case .reject(.rangeNotSatisfiable) = UploadStateMachine.chunk(offset: 10, range: ByteRange(start: 5, end: 14), contentLength: 10) else {
            Issue.record("overlap must be refused"); return
        }
    }

    @Test func lyingContentRangeIsRefused() throws {
        guard case .reject(.sizeInvalid) = UploadStateMachine.chunk(offset: 0, range: ByteRange(start: 0, end: 9), contentLength: 4) else {
            Issue.record("length mismatch must be refused"); return
        }
        #expect(throws: BerthError.self) {
            try UploadStateMachine.afterChunk(at: 0, written: 4, expectedLength: 10).get()
        }
        #expect(try UploadStateMachine.afterChunk(at: 5, written: 10, expectedLength: 10).get() == 15)
        #expect(try UploadStateMachine.afterChunk(at: 5, written: 3, expectedLength: nil).get() == 8)
    }

    @Test func completionChecksDigest() throws {
        let good = Digest.sha256(of: Array("x".utf8))
        #expect(try UploadStateMachine.complete(expected: good, computed: good).get() == good)
        let other = Digest.sha256(of: Array("y".utf8))
        #expect(throws: BerthError.digestMismatch(expected: other.description, computed: good.description)) {
            try UploadStateMachine.complete(expected: other, computed: good).get()
        }
    }
}
