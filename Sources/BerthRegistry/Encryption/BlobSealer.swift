import BerthCore
import BerthStorage
import BerthSupport
@preconcurrency import Crypto
import Foundation
import NIOCore
import Synchronization

/// Envelope encryption over any `BlobStore` (docs/encryption.md): the store only ever sees sealed bytes
/// (`SealedBlobHeader`'s format) for blobs of repositories whose key domain seals. Digests, sizes and
/// upload offsets stay those of the plaintext.
///
/// A stored blob is sealed when its size differs from the plaintext size the metadata records (a sealed
/// blob is always larger); one of the same size is plaintext (written before encryption, or with
/// `encryptBlobs` off) and is served as it is.
final class BlobSealer: Sendable {
    let inner: any BlobStore
    let keyring: any BlobKeyring
    /// Seal blobs of `AES256` repositories (KMS repositories' are always sealed).
    let sealsAES256: Bool
    let segmentSize: Int
    /// Opened blobs by key domain label and digest: a hot blob's data key is unwrapped once per
    /// `keyring.generation` and minute, not per request.
    let opened: BoundedCache<String, OpenedBlob>
    /// Uploads being written: their header, data key and last segment's content, by upload id.
    let staged: BoundedCache<String, StagedUpload>
    /// Resolved key domains by label.
    let domains: BoundedCache<String, String>

    init(inner: any BlobStore, keyring: any BlobKeyring, sealsAES256: Bool,
         segmentSize: Int = SealedBlobHeader.defaultSegmentSize, clock: any WallClock = SystemWallClock()) {
        self.inner = inner
        self.keyring = keyring
        self.sealsAES256 = sealsAES256
        self.segmentSize = segmentSize
        opened = BoundedCache(capacity: 100_000, timeToLive: 60, clock: clock)
        staged = BoundedCache(capacity: 4096, maximumCost: 512 << 20, timeToLive: 24 * 3600, clock: clock)
        domains = BoundedCache(capacity: 10_000, timeToLive: 60, clock: clock)
    }

    enum OpenedBlob: Sendable {
        case plain
        case sealed(header: SealedBlobHeader, headerLength: Int, key: SymmetricKey)
    }

    struct StagedUpload: Sendable {
        /// nil: a plaintext upload.
        var header: SealedBlobHeader?
        var headerLength: Int
        var key: SymmetricKey?
        /// Plaintext bytes staged.
        var offset: Int64
        /// The content of the last segment (`offset - lastSegment * segmentSize` bytes).
        var tail: [UInt8]
    }

    func domain(_ d: BlobKeyDomain) async throws -> String {
        if d.isAES256 { return "AES256" }
        let generation = keyring.generation
        if let hit = domains.value(forKey: d.label, generation: generation) { return hit }
        let resolved = try await keyring.domain(encryptionType: d.encryptionType, kmsKey: d.kmsKey, account: d.account, region: d.region)
        domains.set(resolved, forKey: d.label, generation: generation)
        return resolved
    }

    func seals(_ d: BlobKeyDomain) -> Bool { d.isAES256 ? sealsAES256 : true }

    static func context(_ header: SealedBlobHeader) -> [String: String] { ["berth:blob-id": header.blobIDHex] }

    // MARK: reading

    /// Opens a committed blob for reading in a key domain: its data key unwrapped (cached), its size and
    /// final segment checked the first time.
    func open(_ digest: BerthCore.Digest, size: Int64, in d: BlobKeyDomain) async throws -> OpenedBlob {
        let cacheKey = d.label + "\u{0}" + digest.description
        let generation = keyring.generation
        if let hit = opened.value(forKey: cacheKey, generation: generation) { return hit }
        guard let stored = try await inner.size(of: digest) else { throw BerthError.blobUnknown(digest.description) }
        let result: OpenedBlob
        if stored == size {
            result = .plain
        } else {
            let (header, length) = try await readHeader(digest, storedSize: stored)
            let domain = try await domain(d)
            guard let slot = header.slot(for: domain) else { throw SealedBlobError.noSlot(domain) }
            let key = SymmetricKey(data: try await keyring.unwrap(slot.wrappedKey, domain: domain, context: Self.context(header)))
            guard stored == header.sealedSize(ofPlaintext: size, headerLength: length) else {
                throw SealedBlobError.authentication("stored size \(stored) does not match a sealed blob of \(size) bytes")
            }
            // The final segment: binds the file to this digest and size (a truncated or swapped file fails here).
            let last = header.lastSegment(ofSize: size)
            let from = header.offset(ofSegment: last, headerLength: length)
            var sealed = [UInt8]()
            try await inner.read(digest, range: ByteRange(start: from, end: stored - 1)) { buf in
                sealed += buf.readableBytesView
            }
            _ = try header.open(sealed, index: last, final: digest, key: key)
            result = .sealed(header: header, headerLength: length, key: key)
        }
        opened.set(result, forKey: cacheKey, generation: generation)
        return result
    }

    func readHeader(_ digest: BerthCore.Digest, storedSize: Int64) async throws -> (SealedBlobHeader, Int) {
        var prefix = [UInt8]()
        let want = min(storedSize, Int64(SealedBlobHeader.maximumLength))
        guard want >= 34 else { throw SealedBlobError.header("\(storedSize) bytes") }
        try await inner.read(digest, range: ByteRange(start: 0, end: min(want, 4096) - 1)) { prefix += $0.readableBytesView }
        guard let length = SealedBlobHeader.length(fromPrefix: prefix), Int64(length) <= storedSize else {
            throw SealedBlobError.header("no header")
        }
        if length > prefix.count {
            prefix.removeAll()
            try await inner.read(digest, range: ByteRange(start: 0, end: Int64(length) - 1)) { prefix += $0.readableBytesView }
        }
        guard let header = SealedBlobHeader(parsing: prefix) else { throw SealedBlobError.header("malformed") }
        return (header, length)
    }

    /// Streams a committed blob's plaintext (or one range of it).
    func read(_ digest: BerthCore.Digest, size: Int64, opened: OpenedBlob, range: ByteRange?,
              into consumer: (ByteBuffer) async throws -> Void) async throws {
        guard case let .sealed(header, length, key) = opened else {
            return try await inner.read(digest, range: range, into: consumer)
        }
        guard size > 0 else { return }
        let from = range?.start ?? 0
        let to = range?.end ?? size - 1
        let last = header.lastSegment(ofSize: size)
        let decoder = DecoderBox(SegmentDecoder(header: header, key: key, first: from / Int64(header.segmentSize),
                                                last: to / Int64(header.segmentSize), final: last, size: size, digest: digest,
                                                window: from...to))
        let cipherFrom = header.offset(ofSegment: decoder.state.first, headerLength: length)
        let cipherTo = header.offset(ofSegment: decoder.state.last, headerLength: length) + decoder.state.sealedLength(decoder.state.last)
        // Decrypting chunk n+1 overlaps sending chunk n (the store already reads ahead): on two cores the
        // AES-GCM work and the socket writes run side by side instead of taking turns. Plaintext goes out
        // only after its segments opened, and in order.
        var decoding: Task<ByteBuffer, any Error>? = nil
        defer { decoding?.cancel() }
        try await inner.read(digest, range: ByteRange(start: cipherFrom, end: cipherTo - 1)) { buf in
            let ready = try await decoding?.value
            // The previous decoding is over: the next one has the decoder to itself.
            decoding = Task { try decoder.state.feed(buf) }
            if let ready, ready.readableBytes > 0 { try await consumer(ready) }
        }
        if let previous = decoding {
            let out = try await previous.value
            decoding = nil
            if out.readableBytes > 0 { try await consumer(out) }
        }
        guard decoder.state.done else { throw SealedBlobError.authentication("the blob ends early") }
    }

    /// A read's decoder, handed from one decoding task to the next (each starts after the one before it
    /// ended, so one at a time uses it). Held by reference, so that the partial segment it keeps is never
    /// copied on write, as it was when the decoder went into each task and came back as a value.
    final class DecoderBox: @unchecked Sendable {
        var state: SegmentDecoder
        init(_ state: SegmentDecoder) { self.state = state }
    }

    // MARK: uploads

    /// Opens an upload for appending at plaintext offset `start`.
    func openUpload(id: String, at start: Int64, in d: BlobKeyDomain) async throws -> any BlobUploadWriter {
        if start == 0 {
            staged.removeValue(forKey: id)
            guard seals(d) else { return try await inner.openUpload(id: id, at: 0) }
            let domain = try await domain(d)
            var header = SealedBlobHeader.fresh(slots: [], segmentSize: segmentSize)
            let dataKey = try await keyring.newDataKey(domain: domain, context: Self.context(header))
            header.slots = [.init(domain: domain, wrappedKey: dataKey.wrapped)]
            let bytes = header.encoded
            let writer = try await inner.openUpload(id: id, at: 0)
            do {
                try await writer.write(ByteBuffer(bytes: bytes))
            } catch {
                try? await writer.close()
                throw error
            }
            let state = StagedUpload(header: header, headerLength: bytes.count, key: SymmetricKey(data: dataKey.plaintext),
                                     offset: 0, tail: [])
            return SealingWriter(inner: writer, sealer: self, id: id, state: state)
        }
        let state = try await stagedState(id, at: start, in: d)
        guard let header = state.header else { return try await inner.openUpload(id: id, at: start) }
        let continuing = state.tail.count < header.segmentSize
        let index = start == 0 ? 0 : header.lastSegment(ofSize: start) + (continuing ? 0 : 1)
        let writer = try await inner.openUpload(id: id, at: header.offset(ofSegment: index, headerLength: state.headerLength))
        return SealingWriter(inner: writer, sealer: self, id: id, state: state)
    }

    /// The state of an upload at plaintext offset `at`: this process's, or rebuilt from the staged bytes.
    func stagedState(_ id: String, at offset: Int64, in d: BlobKeyDomain?) async throws -> StagedUpload {
        if let s = staged.value(forKey: id), s.offset == offset { return s }
        guard let d else { throw BerthError.blobUploadInvalid("the state of upload \(id) was lost") }
        guard let stored = try await inner.uploadedSize(id: id) else {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing")
        }
        var prefix = [UInt8]()
        if stored >= 34 {
            try await inner.readUpload(id: id, length: min(stored, Int64(SealedBlobHeader.maximumLength))) { prefix += $0.readableBytesView }
        }
        guard SealedBlobHeader.hasMagic(prefix) else {
            // Plaintext staging (an upload begun with sealing off, or before encryption existed).
            guard stored >= offset else { throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing") }
            return StagedUpload(header: nil, headerLength: 0, key: nil, offset: offset, tail: [])
        }
        guard let header = SealedBlobHeader(parsing: prefix), let length = SealedBlobHeader.length(fromPrefix: prefix) else {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) has an invalid header")
        }
        let domain = try await domain(d)
        guard let slot = header.slot(for: domain) else { throw BerthError.blobUploadInvalid("upload \(id) belongs to another key") }
        let key = SymmetricKey(data: try await keyring.unwrap(slot.wrappedKey, domain: domain, context: Self.context(header)))
        var state = StagedUpload(header: header, headerLength: length, key: key, offset: offset, tail: [])
        guard offset > 0 else { return state }
        let last = header.lastSegment(ofSize: offset)
        let segStart = header.offset(ofSegment: last, headerLength: length)
        let segLength = min(Int64(header.sealedSegmentSize), stored - segStart)
        let want = Int(offset - last * Int64(header.segmentSize))
        guard segLength >= Int64(want + SealedBlobHeader.segmentOverhead) else {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing")
        }
        // The last segment alone: what comes before it is not read again (chunks alternating between nodes).
        var sealed = [UInt8]()
        try await inner.readUpload(id: id, range: ByteRange(start: segStart, end: segStart + segLength - 1)) { buf in
            sealed += buf.readableBytesView
        }
        do {
            state.tail = Array(try header.open(sealed, index: last, final: nil, key: key).prefix(want))
        } catch {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) is damaged; restart the upload")
        }
        guard state.tail.count == want else { throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing") }
        return state
    }

    /// Streams the first `length` plaintext bytes of an upload (rebuilding a hash after a restart).
    func readUpload(id: String, length: Int64, in d: BlobKeyDomain, into consumer: (ByteBuffer) async throws -> Void) async throws {
        let state = try await stagedState(id, at: length, in: d)
        guard let header = state.header, let key = state.key else {
            return try await inner.readUpload(id: id, length: length, into: consumer)
        }
        guard length > 0 else { return }
        let last = header.lastSegment(ofSize: length)
        // Every segment before the last is full; the last holds at least what is wanted of it.
        let end = header.offset(ofSegment: last, headerLength: state.headerLength)
        var decoder = SegmentDecoder(header: header, key: key, first: 0, last: last - 1, final: nil, size: length, digest: nil,
                                     window: 0...(length - 1))
        var seen: Int64 = 0
        try await inner.readUpload(id: id, length: end) { buf in
            var b = buf
            let skip = Int(max(0, Int64(state.headerLength) - seen))
            seen += Int64(b.readableBytes)
            b.moveReaderIndex(forwardBy: min(skip, b.readableBytes))
            let out = try decoder.feed(b)
            if out.readableBytes > 0 { try await consumer(out) }
        }
        guard decoder.done, decoder.emitted == last * Int64(header.segmentSize) else {
            throw BerthError.blobUploadInvalid("staged data of upload \(id) is missing")
        }
        // The last segment's content is the state's tail (authenticated when it was read).
        if !state.tail.isEmpty { try await consumer(ByteBuffer(bytes: state.tail)) }
    }

    /// Seals the final segment and commits the upload as `digest`, or keeps the copy already stored:
    /// one in this key domain, or a plaintext one (served as before); a copy sealed only for other key
    /// domains gets this domain's key slot added (docs/encryption.md, "One digest, several keys").
    /// With `replacing`, the sealed upload replaces whatever is stored (`sealExisting`).
    func commitUpload(id: String, as digest: BerthCore.Digest, size: Int64, in d: BlobKeyDomain?, replacing: Bool = false) async throws {
        let state = try await stagedState(id, at: size, in: d)
        defer { staged.removeValue(forKey: id) }
        guard let header = state.header, let key = state.key else {
            return try await inner.commitUpload(id: id, as: digest)
        }
        let last = header.lastSegment(ofSize: size)
        let writer = try await inner.openUpload(id: id, at: header.offset(ofSegment: last, headerLength: state.headerLength))
        do {
            var sealed = ByteBuffer()
            try header.seal(state.tail, index: last, final: digest, key: key, into: &sealed)
            try await writer.write(sealed)
            try await writer.close()
        } catch {
            try? await writer.close()
            throw error
        }
        guard !replacing, let existing = try await inner.size(of: digest),
              try await keepsStoredCopy(of: digest, size: size, stored: existing, for: header.slots[0].domain) else {
            return try await inner.commitUpload(id: id, as: digest)
        }
        try await inner.deleteUpload(id: id)
    }

    /// A copy of `digest` (`size` plaintext bytes) sealed for `domain` is ready, and `stored` bytes are under the
    /// digest already. Keeps the stored copy when it is plaintext of the same bytes (`berth admin
    /// encrypt-existing` seals it) or has a key slot for `domain`; when it is sealed only for other key domains,
    /// adds `domain`'s slot to it (its data key, wrapped by ours; the copy is rewritten through a staged upload)
    /// and keeps it. Returns false, and keeps nothing, when no key of the stored copy can open it because none
    /// exists any more: the ready copy then replaces it. Runs under the blob's commit lease.
    func keepsStoredCopy(of digest: BerthCore.Digest, size: Int64, stored existing: Int64, for domain: String) async throws -> Bool {
        // A plaintext copy of the same bytes.
        if existing == size { return true }
        let (stored, storedLength) = try await readHeader(digest, storedSize: existing)
        if stored.slot(for: domain) != nil { return true }
        var dataKey: [UInt8]? = nil
        var lastError: (any Error)? = nil
        for slot in stored.slots {
            do {
                dataKey = try await keyring.unwrap(slot.wrappedKey, domain: slot.domain, context: Self.context(stored))
                break
            } catch { lastError = error }
        }
        guard let dataKey else {
            // No key of the stored copy can open it. A key that no longer exists never will: ours replaces it.
            if let e = lastError as? BerthError, case .kms(let type, _) = e, type != "NotFoundException" && type != "InvalidCiphertextException" {
                throw e
            }
            return false
        }
        var merged = stored
        merged.slots.append(.init(domain: domain, wrappedKey: try await keyring.wrap(dataKey, domain: domain, context: Self.context(stored))))
        let id = "slot-" + UUID().uuidString.lowercased()
        let copy = try await inner.openUpload(id: id, at: 0)
        do {
            try await copy.write(ByteBuffer(bytes: merged.encoded))
            try await inner.read(digest, range: ByteRange(start: Int64(storedLength), end: existing - 1)) { buf in
                try await copy.write(buf)
            }
            try await copy.close()
            try await inner.commitUpload(id: id, as: digest)
        } catch {
            try? await copy.close()
            try? await inner.deleteUpload(id: id)
            throw error
        }
        forgetOpened(digest)
        return true
    }

    /// Opens a blob written straight under its digest (`DirectBlobWriting`) for a monolithic push into `d`,
    /// sealed as a committed blob is: the final segment sealed with `digest` at `close`, which the caller
    /// reaches only once the bytes hashed to it.
    func openDirect(_ digest: BerthCore.Digest, in d: BlobKeyDomain, target: any DirectBlobWriter) async throws -> any DirectBlobWriter {
        let domain = try await domain(d)
        var header = SealedBlobHeader.fresh(slots: [], segmentSize: segmentSize)
        let dataKey = try await keyring.newDataKey(domain: domain, context: Self.context(header))
        header.slots = [.init(domain: domain, wrappedKey: dataKey.wrapped)]
        try await target.write(ByteBuffer(bytes: header.encoded))
        return DirectSealingWriter(target: target, header: header, key: SymmetricKey(data: dataKey.plaintext), digest: digest)
    }

    /// Publishes a sealed blob written by `openDirect` (`size` plaintext bytes for `d`), unless a copy is stored
    /// already: then that copy is kept (with `d`'s key slot added when it lacks one) and ours discarded, as a
    /// staged commit does. Runs under the blob's commit lease.
    func publishDirect(_ writer: any DirectBlobWriter, as digest: BerthCore.Digest, size: Int64, in d: BlobKeyDomain) async throws {
        if let existing = try await inner.size(of: digest),
           try await keepsStoredCopy(of: digest, size: size, stored: existing, for: try await domain(d)) {
            await writer.discard()
            return
        }
        try await writer.publish()
        forgetOpened(digest)
    }

    func forget(upload id: String) { staged.removeValue(forKey: id) }

    /// Drops what `open` cached about a blob in every key domain (its file was replaced).
    func forgetOpened(_ digest: BerthCore.Digest) { opened.removeAll { $0.hasSuffix("\u{0}" + digest.description) } }

    /// Seals a blob stored in plaintext, in place: a fresh data key with a slot for each of `domains`
    /// (the key domains of the repositories linking it), then an atomic replacement (`berth admin
    /// encrypt-existing`). Nothing changes when it fails half-way.
    func sealExisting(_ digest: BerthCore.Digest, size: Int64, domains: [String]) async throws {
        precondition(!domains.isEmpty)
        var header = SealedBlobHeader.fresh(slots: [], segmentSize: segmentSize)
        let context = Self.context(header)
        let dataKey = try await keyring.newDataKey(domain: domains[0], context: context)
        header.slots = [.init(domain: domains[0], wrappedKey: dataKey.wrapped)]
        for d in domains.dropFirst() {
            header.slots.append(.init(domain: d, wrappedKey: try await keyring.wrap(dataKey.plaintext, domain: d, context: context)))
        }
        let id = "seal-" + UUID().uuidString.lowercased()
        let bytes = header.encoded
        let writer = try await inner.openUpload(id: id, at: 0)
        let sealing = SealingWriter(inner: writer, sealer: self, id: id,
                                    state: StagedUpload(header: header, headerLength: bytes.count,
                                                        key: SymmetricKey(data: dataKey.plaintext), offset: 0, tail: []))
        do {
            do {
                try await writer.write(ByteBuffer(bytes: bytes))
                try await inner.read(digest, range: nil) { try await sealing.write($0) }
            } catch {
                try? await sealing.close()
                throw error
            }
            try await sealing.close()
            try await commitUpload(id: id, as: digest, size: size, in: nil, replacing: true)
        } catch {
            forget(upload: id)
            try? await inner.deleteUpload(id: id)
            throw error
        }
        forgetOpened(digest)
    }

    /// Records where an upload stands after a write (`SealingWriter.close`).
    func remember(_ state: StagedUpload, upload id: String) {
        staged.set(state, forKey: id, cost: state.tail.count)
    }
}

/// Seals what an upload appends in segments: full segments as they fill, the last partial one at close
/// (rewritten by the next append, resealed as final at commit).
final class SealingWriter: BlobUploadWriter {
    let inner: any BlobUploadWriter
    let sealer: BlobSealer
    let id: String
    let header: SealedBlobHeader
    let key: SymmetricKey
    let headerLength: Int
    struct Progress {
        var offset: Int64
        var index: Int64
        /// The content of the segment being filled (less than a segment).
        var pending: [UInt8]
        /// The content of the last full segment sealed: the tail a resumed upload continues from.
        var lastFull: [UInt8]
        /// The buffer the last write sealed into, written out and free again: reused, so that every write
        /// does not fault in megabytes of fresh pages (a new buffer each time cost ~9 % of a push's CPU).
        var spare = ByteBuffer()
    }
    let progress: Mutex<Progress>

    init(inner: any BlobUploadWriter, sealer: BlobSealer, id: String, state: BlobSealer.StagedUpload) {
        self.inner = inner
        self.sealer = sealer
        self.id = id
        header = state.header!
        key = state.key!
        headerLength = state.headerLength
        let s = header.segmentSize
        let continuing = state.tail.count < s
        let index = state.offset == 0 ? 0 : header.lastSegment(ofSize: state.offset) + (continuing ? 0 : 1)
        progress = Mutex(Progress(offset: state.offset, index: index, pending: continuing ? state.tail : [],
                                  lastFull: continuing ? [] : state.tail))
    }

    /// Seals every whole segment `buffer` completes, straight from its bytes (only a partial segment, and
    /// the last whole one, are copied aside), into one buffer for the store.
    func write(_ buffer: ByteBuffer) async throws {
        let header = self.header
        let key = self.key
        let out: ByteBuffer = try progress.withLock { p in
            let s = header.segmentSize
            p.offset += Int64(buffer.readableBytes)
            var input = buffer
            let whole = (p.pending.count + input.readableBytes) / s
            guard whole > 0 else {
                p.pending.append(contentsOf: input.readableBytesView)
                return ByteBuffer()
            }
            var out = ByteBuffer()
            swap(&out, &p.spare)
            out.clear()
            out.reserveCapacity(whole * header.sealedSegmentSize)
            if !p.pending.isEmpty {
                p.pending.append(contentsOf: input.readSlice(length: s - p.pending.count)!.readableBytesView)
                try header.seal(p.pending, index: p.index, final: nil, key: key, into: &out)
                p.index += 1
                swap(&p.lastFull, &p.pending)
                p.pending.removeAll(keepingCapacity: true)
            }
            let last = try header.sealSegments(of: &input, count: input.readableBytes / s, from: &p.index, key: key, into: &out)
            // Copied, not kept as a slice: the caller reuses its buffer once this write returns.
            if let last { p.lastFull = Array(last.readableBytesView) }
            p.pending.append(contentsOf: input.readableBytesView)
            return out
        }
        guard out.readableBytes > 0 else { return }
        try await inner.write(out)
        // Written: the store took its bytes (a store that kept a reference makes the next write copy on write).
        progress.withLock { $0.spare = out }
    }

    func close() async throws {
        try await close(fence: {})
    }

    func close(fence: () async throws -> Void) async throws {
        let header = self.header
        let key = self.key
        let (out, state): (ByteBuffer?, BlobSealer.StagedUpload) = try progress.withLock { p in
            var out: ByteBuffer? = nil
            if !p.pending.isEmpty {
                var sealed = ByteBuffer()
                try header.seal(p.pending, index: p.index, final: nil, key: key, into: &sealed)
                out = sealed
            }
            let tail = p.pending.isEmpty ? p.lastFull : p.pending
            return (out, .init(header: header, headerLength: headerLength, key: key, offset: p.offset, tail: tail))
        }
        do {
            if let out { try await inner.write(out) }
            try await inner.close(fence: fence)
        } catch {
            try? await inner.close()
            sealer.forget(upload: id)
            throw error
        }
        sealer.remember(state, upload: id)
    }
}

extension SealedBlobHeader {
    /// Seals `count` whole (non-final) segments read from `input`, numbered from `index` on, straight from its
    /// bytes into `out`; returns the last one's content (a slice of `input`), or nil when `count` is 0.
    func sealSegments(of input: inout ByteBuffer, count: Int, from index: inout Int64, key: SymmetricKey,
                      into out: inout ByteBuffer) throws -> ByteBuffer? {
        var last: ByteBuffer? = nil
        for _ in 0..<max(0, count) {
            let segment = input.readSlice(length: segmentSize)!
            try segment.withUnsafeReadableBytes { try seal($0, index: index, final: nil, key: key, into: &out) }
            index += 1
            last = segment
        }
        return last
    }
}

/// Seals a blob written straight under its digest (`BlobSealer.openDirect`): every segment once a byte after
/// it has arrived, so that the last one, whatever the length, is sealed at `close` as the final segment.
final class DirectSealingWriter: DirectBlobWriter {
    let target: any DirectBlobWriter
    let header: SealedBlobHeader
    let key: SymmetricKey
    let digest: BerthCore.Digest
    struct Progress {
        var index: Int64 = 0
        /// The content of the segment not sealed yet (1 to `segmentSize` bytes once any arrived).
        var pending: [UInt8] = []
        /// The buffer the last write sealed into, free again once written (`SealingWriter.Progress.spare`).
        var spare = ByteBuffer()
    }
    let progress = Mutex(Progress())

    init(target: any DirectBlobWriter, header: SealedBlobHeader, key: SymmetricKey, digest: BerthCore.Digest) {
        self.target = target
        self.header = header
        self.key = key
        self.digest = digest
    }

    func makeBuffer(capacity: Int) -> ByteBuffer { target.makeBuffer(capacity: capacity) }

    func write(_ buffer: ByteBuffer) async throws {
        let (header, key) = (self.header, self.key)
        let out: ByteBuffer = try progress.withLock { p in
            let s = header.segmentSize
            let available = p.pending.count + buffer.readableBytes
            guard available > s else {
                p.pending.append(contentsOf: buffer.readableBytesView)
                return ByteBuffer()
            }
            // Every segment but the last of what has arrived (which keeps 1 to `s` bytes).
            let count = (available - 1) / s
            var input = buffer
            var out = ByteBuffer()
            swap(&out, &p.spare)
            out.clear()
            out.reserveCapacity(count * header.sealedSegmentSize)
            var sealed = 0
            if !p.pending.isEmpty {
                p.pending.append(contentsOf: input.readSlice(length: s - p.pending.count)!.readableBytesView)
                try header.seal(p.pending, index: p.index, final: nil, key: key, into: &out)
                p.index += 1
                p.pending.removeAll(keepingCapacity: true)
                sealed = 1
            }
            _ = try header.sealSegments(of: &input, count: count - sealed, from: &p.index, key: key, into: &out)
            p.pending.append(contentsOf: input.readableBytesView)
            return out
        }
        guard out.readableBytes > 0 else { return }
        try await target.write(out)
        progress.withLock { $0.spare = out }
    }

    /// Seals and writes the final segment (bound to the digest), then sends what the target buffered.
    func close() async throws {
        let (header, key, digest) = (self.header, self.key, self.digest)
        let last: ByteBuffer = try progress.withLock { p in
            var out = ByteBuffer()
            try header.seal(p.pending, index: p.index, final: digest, key: key, into: &out)
            p.pending = []
            return out
        }
        try await target.write(last)
        try await target.close()
    }

    func publish() async throws { try await target.publish() }
    func discard() async { await target.discard() }
}

/// Opens a stream of sealed segments `first...last` and keeps the plaintext inside `window`.
struct SegmentDecoder: Sendable {
    let header: SealedBlobHeader
    let key: SymmetricKey
    let first: Int64
    let last: Int64
    /// The index of the blob's final segment (sealed with the digest), or nil for a staged upload.
    let final: Int64?
    /// Plaintext size of the blob (or of the staged bytes read).
    let size: Int64
    let digest: BerthCore.Digest?
    let window: ClosedRange<Int64>
    var next: Int64
    var buffer: [UInt8] = []
    var emitted: Int64 = 0

    init(header: SealedBlobHeader, key: SymmetricKey, first: Int64, last: Int64, final: Int64?, size: Int64, digest: BerthCore.Digest?,
         window: ClosedRange<Int64>) {
        self.header = header
        self.key = key
        self.first = first
        self.last = last
        self.final = final
        self.size = size
        self.digest = digest
        self.window = window
        next = first
    }

    var done: Bool { next > last }

    /// The stored length of segment `index` (the final one holds the rest of the content; for a staged
    /// upload every segment read is full).
    func sealedLength(_ index: Int64) -> Int64 {
        if let final, index == final { return size - final * Int64(header.segmentSize) + Int64(SealedBlobHeader.segmentOverhead) }
        return Int64(header.sealedSegmentSize)
    }

    mutating func feed(_ chunk: ByteBuffer) throws -> ByteBuffer {
        // Plaintext is never longer than the ciphertext it comes from: one allocation, no regrowth.
        var out = ByteBufferAllocator().buffer(capacity: chunk.readableBytes + buffer.count)
        var b = chunk
        while b.readableBytes > 0 && !done {
            let need = Int(sealedLength(next))
            let plain: Data
            if buffer.isEmpty && b.readableBytes >= need {
                plain = try b.withUnsafeReadableBytes { try openNext(UnsafeRawBufferPointer(rebasing: $0[0..<need])) }
                b.moveReaderIndex(forwardBy: need)
            } else {
                let take = min(need - buffer.count, b.readableBytes)
                buffer.append(contentsOf: b.readableBytesView.prefix(take))
                b.moveReaderIndex(forwardBy: take)
                guard buffer.count == need else { continue }
                plain = try openNext(buffer)
                buffer.removeAll(keepingCapacity: true)
            }
            append(plain, into: &out)
        }
        return out
    }

    func openNext<D: DataProtocol>(_ sealed: D) throws -> Data {
        try header.open(sealed, index: next, final: next == final ? digest : nil, key: key)
    }

    /// Keeps the part of segment `next`'s content inside the window.
    mutating func append(_ plain: Data, into out: inout ByteBuffer) {
        let base = next * Int64(header.segmentSize)
        next += 1
        let lo = Int(max(window.lowerBound - base, 0))
        let hi = Int(min(window.upperBound - base + 1, Int64(plain.count)))
        guard lo < hi else { return }
        plain.withUnsafeBytes { out.writeBytes(UnsafeRawBufferPointer(rebasing: $0[lo..<hi])) }
        emitted += Int64(hi - lo)
    }
}
