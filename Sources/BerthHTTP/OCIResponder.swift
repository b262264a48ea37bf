import BerthAuth
import BerthCore
import BerthECR
import BerthRegistry
import BerthReplication
import BerthSupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Serves the OCI distribution API (`/v2/...`) from the registry service.
public struct OCIHandler: Sendable {
    public let registry: Registry
    /// The registry id (account) used when the Host does not name one.
    public let defaultRegistryID: String
    let authenticator: Authenticator
    let authorizer: any Authorizer
    /// The realm of the `WWW-Authenticate` challenge, e.g. `http://127.0.0.1:5000/`.
    let realm: String
    let metrics: BerthMetrics
    /// Fills repositories under pull through cache rules from their upstream; nil: no cache.
    let pullThrough: PullThroughCache?

    public init(registry: Registry, defaultRegistryID: String, authenticator: Authenticator, authorizer: any Authorizer,
                realm: String, metrics: BerthMetrics, pullThrough: PullThroughCache? = nil) {
        self.pullThrough = pullThrough
        self.registry = registry
        self.defaultRegistryID = defaultRegistryID
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.realm = realm
        self.metrics = metrics
    }

    /// `<account>.dkr.ecr.<region>.<domain>[:port]` selects that account's registry, as with ECR.
    public static func registryID(fromHost host: String?) -> String? {
        // Twelve digits, then ".dkr.ecr." (read as bytes: this runs on every /v2/ request).
        guard let host else { return nil }
        let bytes = host.utf8
        guard bytes.count >= 21, bytes.dropFirst(12).starts(with: ".dkr.ecr.".utf8) else { return nil }
        let account = String(Substring(bytes.prefix(12)))
        return AccountID.isValid(account) ? account : nil
    }

    /// The region label of an `<account>.dkr.ecr.<region>.<domain>` host, when the host is one.
    public static func region(fromHost host: String?) -> String? {
        guard let host, registryID(fromHost: host) != nil else { return nil }
        let rest = host.utf8.dropFirst(21)
        guard let dot = rest.firstIndex(of: UInt8(ascii: ".")) else { return nil }
        return String(Substring(rest[..<dot]))
    }

    /// The region a private-registry `/v2/` request addresses: its host's, else the one bound into its
    /// token, else the default region. A region this deployment does not serve is refused.
    func requestRegion(host: String?, principal: Principal?) throws -> RequestRegion {
        let regions = authenticator.regions
        let name = Self.region(fromHost: host) ?? principal?.region ?? regions.defaultRegion
        guard regions.accepts(name) else { throw BerthError.denied("this registry does not serve the region \(name)") }
        return RequestRegion(name, in: regions)
    }

    /// The ARN of a repository of a stored registry id, in its region.
    func repositoryARN(_ registryID: String, _ name: String) -> String {
        let registry = RegistryID(storedValue: registryID)
        return ARN.ecrRepository(region: registry.region ?? RequestRegion.name(or: authenticator.region), account: registry.account,
                                 name: name).description
    }

    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let uploadUUID = HTTPField.Name("Docker-Upload-UUID")!
    static let ociSubject = HTTPField.Name("OCI-Subject")!
    static let filtersApplied = HTTPField.Name("OCI-Filters-Applied")!
    static let range = HTTPField.Name("Range")!
    static let link = HTTPField.Name("Link")!

    /// The OCI door: route, authenticate once (into `context.identity`), authorize, dispatch; every
    /// error is answered through ``OCIWireError``.
    public func handle(_ request: Request, context: BerthRequestContext) async -> Response {
        let context = context
        var response: Response
        // The account and repository an error message names (as ECR's texts do).
        var scope = ErrorScope(registryID: Self.registryID(fromHost: request.head.authority) ?? defaultRegistryID)
        do {
            guard var route = try OCIRoute.parse(path: request.uri.path) else {
                throw BerthError.unsupported("unknown endpoint \(request.uri.path)")
            }
            context.record.set(door: .oci, operation: Self.operation(route, request.method))
            var registryID = scope.registryID
            scope.repository = route.repositoryName?.value
            let publicRepository = route.publicRepository
            if let (account, name) = publicRepository {
                // ECR Public: anyone may pull; pushes need a principal allowed ecr-public:<Action>.
                route = route.renamed(name)
                registryID = RegistryID.public(account).storedValue
                scope = ErrorScope(registryID: account, repository: name.value)
            }
            recordAuditFacts(route, request, registryID: registryID, publicAccount: publicRepository?.0, context)
            context.identity = try await authenticator.oci(
                route, request, context, anonymous: publicRepository != nil && OCIRoute.isPull(route, request.method))
            var region: RequestRegion? = nil
            if publicRepository == nil {
                // Each account × region is its own registry: the host or the token picks the region.
                let r = try requestRegion(host: request.head.authority, principal: context.identity.principal)
                registryID = RegistryID.private(scope.registryID, region: r.storageRegion).storedValue
                recordAuditFacts(route, request, registryID: registryID, publicAccount: nil, context)
                context.record.setAudit { $0.region = r.name }
                region = r
            }
            response = try await RequestRegion.$current.withValue(region) { [context, registryID, route] in
                try await authorizeAndDispatch(route, request, registryID: registryID, publicRepository: publicRepository, context)
            }
        } catch {
            // A path that is no API route has no operation.
            if context.record.door != .oci { context.record.set(door: .oci, operation: "unknown") }
            response = errorResponse(error, scope: scope, request: request, context: context)
        }
        response.headers[Self.apiVersion] = "registry/2.0"
        return response
    }

    func authorizeAndDispatch(_ route: OCIRoute, _ request: Request, registryID: String, publicRepository: (String, RepositoryName)?,
                              _ context: BerthRequestContext) async throws -> Response {
        if let principal = context.identity.principal {
            if let (account, name) = publicRepository {
                try await authorizePublic(route, request.method, account: account, name: name, principal: principal)
                let key = RepositoryKey(registryID: registryID, name: name)
                guard try await registry.findRepository(key) != nil else { throw BerthError.nameUnknown(name.value) }
            } else {
                try await authorize(route, request.method, registryID: registryID, principal: principal)
            }
        }
        return try await dispatch(route, registryID: registryID, request, context)
    }

    /// The operation a route and method name in the access log and the metrics.
    static func operation(_ route: OCIRoute, _ method: HTTPRequest.Method) -> String {
        switch route {
        case .base: return "base"
        case .catalog: return "catalog"
        case .tags: return "tags.list"
        case .referrers: return "referrers"
        case .manifest:
            switch method {
            case .get: return "manifest.get"
            case .head: return "manifest.head"
            case .put: return "manifest.put"
            case .delete: return "manifest.delete"
            default: return "unsupported"
            }
        case .blob:
            switch method {
            case .get: return "blob.get"
            case .head: return "blob.head"
            case .delete: return "blob.delete"
            default: return "unsupported"
            }
        case .uploads: return method == .post ? "upload.start" : "unsupported"
        case .upload:
            switch method {
            case .get: return "upload.status"
            case .patch: return "upload.patch"
            case .put: return "upload.complete"
            case .delete: return "upload.cancel"
            default: return "unsupported"
            }
        }
    }

    /// The registry (account) and repository of a request, for error messages.
    struct ErrorScope {
        var registryID: String
        var repository: String?
    }

    /// Every error of the OCI door is answered here, through ``OCIWireError``.
    func errorResponse(_ error: any Error, scope: ErrorScope, request: Request, context: BerthRequestContext) -> Response {
        let domain = OCIWireError.domainError(error)
        if case .internalError = domain {
            context.logger.error("request failed", metadata: ["error": "\(domain)"])
        }
        var headers = HTTPFields()
        if case .rangeNotSatisfiable(let offset, _) = domain {
            headers[Self.range] = "0-\(max(0, offset - 1))"
        }
        if case .unauthorized = domain {
            headers[.wwwAuthenticate] = "Basic realm=\"\(realm)\",service=\"ecr.amazonaws.com\""
        }
        let wire = OCIWireError(domain, registryID: scope.registryID, repository: scope.repository)
        context.record.setAudit { $0.errorCode = wire.code; $0.errorMessage = wire.message }
        return wire.response(head: request.method == .head, headers: headers)
    }

    /// What the audit trail needs of a `/v2/` request; the record itself is built only if it is kept
    /// (``AuditMiddleware/ociFacts(_:)``).
    func recordAuditFacts(_ route: OCIRoute, _ request: Request, registryID: String, publicAccount: String?,
                          _ context: BerthRequestContext) {
        context.record.setAudit { $0.oci = OCIAuditRequest(route: route, method: request.method, registryID: registryID,
                                                          isPublic: publicAccount != nil) }
    }

    /// The ECR actions a `/v2/` request needs, as ECR defines them for docker clients, and whether
    /// the request may create the repository (then ecr:CreateRepository is needed too).
    static func actions(_ route: OCIRoute, _ method: HTTPRequest.Method) -> (name: RepositoryName, actions: [String], push: Bool)? {
        switch route {
        case .base, .catalog: return nil
        case .tags(let n): return (n, ["ecr:ListImages"], false)
        case .manifest(let n, _):
            switch method {
            case .put: return (n, ["ecr:PutImage"], true)
            case .delete: return (n, ["ecr:BatchDeleteImage"], false)
            default: return (n, ["ecr:BatchGetImage"], false)
            }
        case .blob(let n, _):
            switch method {
            case .head: return (n, ["ecr:BatchCheckLayerAvailability"], false)
            case .delete: return (n, ["ecr:BatchDeleteImage"], false)
            default: return (n, ["ecr:GetDownloadUrlForLayer"], false)
            }
        case .uploads(let n): return (n, ["ecr:InitiateLayerUpload"], true)
        case .upload(let n, _):
            // An upload session only exists in an existing repository: these never create one.
            switch method {
            case .put: return (n, ["ecr:CompleteLayerUpload"], false)
            default: return (n, ["ecr:UploadLayerPart"], false)
            }
        case .referrers(let n, _): return (n, ["ecr:BatchGetImage"], false)
        }
    }

    func authorize(_ route: OCIRoute, _ method: HTTPRequest.Method, registryID: String, principal: Principal) async throws {
        guard let (name, actions, push) = Self.actions(route, method) else {
            if case .catalog = route {
                try await authorizer.authorize(principal, action: "ecr:DescribeRepositories", resource: repositoryARN(registryID, "*"))
            }
            return
        }
        let arn = repositoryARN(registryID, name.value)
        for a in actions { try await authorizer.authorize(principal, action: a, resource: arn) }
        if push, try await registry.findRepository(RepositoryKey(registryID: registryID, name: name)) == nil {
            // A first push creates the repository: that needs ecr:CreateRepository as well.
            try await authorizer.authorize(principal, action: "ecr:CreateRepository", resource: arn)
        }
    }

    /// A repository as `/v2/` paths name it: `public/<alias>/<name>` for ECR Public repositories.
    static func pathName(_ key: RepositoryKey) -> String {
        let registry = key.registry
        guard registry.isPublic else { return key.name }
        return "public/\(PublicRegistry.alias(of: registry.account))/\(key.name)"
    }

    /// ECR Public pushes: the same actions as private ones, as `ecr-public:<Action>` on the public ARN.
    func authorizePublic(_ route: OCIRoute, _ method: HTTPRequest.Method, account: String, name: RepositoryName,
                         principal: Principal) async throws {
        guard let (_, actions, _) = Self.actions(route, method) else { return }
        let arn = ARN.ecrPublicRepository(account: account, name: name.value).description
        for a in actions {
            try await authorizer.authorize(principal, action: "ecr-public:" + a.dropFirst("ecr:".count), resource: arn)
        }
    }

    func dispatch(_ route: OCIRoute, registryID: String, _ request: Request, _ context: BerthRequestContext) async throws -> Response {
        let method = request.method
        func key(_ n: RepositoryName) -> RepositoryKey { RepositoryKey(registryID: registryID, name: n) }
        switch (route, method) {
        case (.base, .get), (.base, .head):
            return json(Array("{}".utf8), head: method == .head)
        case (.catalog, .get):
            return try await catalog(registryID, request)
        case (.tags(let name), .get):
            return try await tags(key(name), request)
        case (.manifest(let name, let ref), .get), (.manifest(let name, let ref), .head):
            if let cached = try await cachedManifest(key(name), ref, context) {
                var headers: HTTPFields = [:]
                headers[.contentType] = cached.mediaType
                headers[.contentLength] = String(cached.bytes.count)
                headers[Self.contentDigest] = cached.digest.description
                headers[.eTag] = "\"\(cached.digest)\""
                if method == .head { return Response(status: .ok, headers: headers) }
                return Response(status: .ok, headers: headers, body: .init(byteBuffer: makeBuffer(cached.bytes)))
            }
            return try await getManifest(key(name), ref, accept: request.headers[values: .accept], head: method == .head,
                                         principal: context.identity.principal)
        case (.manifest(let name, let ref), .put):
            return try await putManifest(key(name), ref, request)
        case (.manifest(let name, let ref), .delete):
            try await registry.deleteManifest(key(name), reference: try await readReference(key(name), ref))
            return Response(status: .accepted, headers: [.contentLength: "0"])
        case (.blob(let name, let d), .get), (.blob(let name, let d), .head):
            if let response = try await cachedBlob(key(name), try Digest(parsing: d), request, head: method == .head, context) {
                return response
            }
            return try await getBlob(key(name), try Digest(parsing: d), request, head: method == .head,
                                     sendFiles: context.canSendFiles)
        case (.blob(let name, let d), .delete):
            try await registry.deleteBlob(key(name), try Digest(parsing: d))
            return Response(status: .accepted, headers: [.contentLength: "0"])
        case (.uploads(let name), .post):
            return try await startUpload(key(name), request, principal: context.identity.principal)
        case (.upload(let name, let id), .get):
            let s = try await registry.uploadSession(key(name), id)
            return uploadAccepted(key(name), s.id, offset: s.offset, status: .noContent)
        case (.upload(let name, let id), .patch):
            let offset = try await metrics.trackingUpload {
                try await registry.appendChunk(
                    key(name), upload: id, range: try await contentRange(request, upload: id, in: key(name)),
                    contentLength: contentLength(request), body: request.body)
            }
            return uploadAccepted(key(name), id, offset: offset, status: .accepted)
        case (.upload(let name, let id), .put):
            guard let digestParameter = request.uri.queryParameters.get("digest") else {
                throw BerthError.digestInvalid("the digest query parameter is required")
            }
            let wanted = try Digest(parsing: String(digestParameter))
            let digest = try await metrics.trackingUpload {
                try await registry.completeUpload(
                    key(name), upload: id, digest: wanted, range: try await contentRange(request, upload: id, in: key(name)),
                    contentLength: contentLength(request), body: request.body)
            }
            return blobCreated(key(name), digest)
        case (.upload(let name, let id), .delete):
            try await registry.cancelUpload(key(name), upload: id)
            return Response(status: .noContent)
        case (.referrers(let name, let d), .get):
            return try await referrers(key(name), try Digest(parsing: d), request)
        default:
            throw BerthError.unsupported("\(method) is not supported on \(request.uri.path)")
        }
    }

    // MARK: pull through cache

    /// What importing from the upstream needs besides the pull: `ecr:BatchImportUpstreamImage` on the
    /// repository, and `ecr:CreateRepository` when the repository does not exist yet (as ECR asks).
    func authorizeImport(_ key: RepositoryKey, _ context: BerthRequestContext) async throws {
        guard let principal = context.identity.principal else { throw BerthError.unauthorized("authentication required") }
        let arn = repositoryARN(key.registryID, key.name)
        try await authorizer.authorize(principal, action: "ecr:BatchImportUpstreamImage", resource: arn)
        if try await registry.findRepository(key) == nil {
            try await authorizer.authorize(principal, action: "ecr:CreateRepository", resource: arn)
        }
    }

    /// A manifest of a repository under a pull through cache rule that is to be served from the upstream
    /// (or from memory until stored); nil: serve what is stored.
    func cachedManifest(_ key: RepositoryKey, _ ref: String, _ context: BerthRequestContext) async throws -> CachedManifest? {
        guard let pullThrough, let reference = try? Reference(parsing: ref), let rule = try await pullThrough.rule(for: key) else { return nil }
        return try await pullThrough.manifest(key, reference, rule: rule) { try await authorizeImport(key, context) }
    }

    /// A blob of a repository under a pull through cache rule that is missing: streamed from the upstream
    /// while it is stored. A HEAD or a range request waits until it is stored, then is served from storage.
    func cachedBlob(_ key: RepositoryKey, _ digest: Digest, _ request: Request, head: Bool,
                    _ context: BerthRequestContext) async throws -> Response? {
        guard let pullThrough, let rule = try await pullThrough.rule(for: key),
              let upstream = try await pullThrough.blob(key, digest, rule: rule, authorizeImport: { try await authorizeImport(key, context) })
        else { return nil }
        if head || request.headers[Self.range] != nil {
            try await upstream.run { _ in }
            return nil
        }
        var headers: HTTPFields = [:]
        headers[Self.contentDigest] = digest.description
        headers[.eTag] = "\"\(digest)\""
        headers[.contentType] = "application/octet-stream"
        if let size = upstream.size { headers[.contentLength] = String(size) }
        let body = ResponseBody(contentLength: upstream.size.map { Int($0) }) { writer in
            try await upstream.run { buf in try await writer.write(buf) }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: headers, body: body)
    }

    /// A chunk's `Content-Range` (`start-end`, optionally `bytes ` or `bytes=`), nil when absent or empty.
    /// A malformed one is 416 `BLOB_UPLOAD_INVALID` with the upload's `Range`, as a misplaced chunk is
    /// (an unknown upload is still `BLOB_UPLOAD_UNKNOWN` first).
    func contentRange(_ request: Request, upload id: String, in name: RepositoryKey) async throws -> ByteRange? {
        guard let header = request.headers[.contentRange], !header.isEmpty else { return nil }
        if let range = ByteRange.parse(header) { return range }
        let session = try await registry.uploadSession(name, id)
        throw BerthError.rangeNotSatisfiable(offset: session.offset, detail: "malformed Content-Range \(header)")
    }

    func contentLength(_ request: Request) -> Int64? {
        request.headers[.contentLength].flatMap { Int64($0) }
    }

    func json(_ bytes: [UInt8], head: Bool = false, contentType: String = "application/json",
              status: HTTPResponse.Status = .ok, extra: HTTPFields = [:]) -> Response {
        var headers = extra
        headers[.contentType] = contentType
        headers[.contentLength] = String(bytes.count)
        if head { return Response(status: status, headers: headers) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: makeBuffer(bytes)))
    }

    // MARK: listing

    func page(_ request: Request) throws -> PageRequest {
        let q = request.uri.queryParameters
        return try PageRequest(n: q.get("n").map { String($0) }, last: q.get("last").map { String($0) })
    }

    func link(_ path: String, _ page: Page<String>, limit: Int) -> HTTPFields {
        guard let next = page.next else { return [:] }
        let last = PercentEncoding.encoded(next)
        return [Self.link: "<\(path)?n=\(limit)&last=\(last)>; rel=\"next\""]
    }

    struct CatalogBody: Encodable { let repositories: [String] }
    struct TagsBody: Encodable { let name: String; let tags: [String] }

    func catalog(_ registryID: String, _ request: Request) async throws -> Response {
        let p = try page(request)
        let result = try await registry.catalog(registryID, p)
        let bytes = Array(try OCIJSON.encoder.encode(CatalogBody(repositories: result.items)))
        return json(bytes, extra: link("/v2/_catalog", result, limit: p.limit))
    }

    func tags(_ name: RepositoryKey, _ request: Request) async throws -> Response {
        let p = try page(request)
        let result = try await registry.tags(name, p)
        let bytes = Array(try OCIJSON.encoder.encode(TagsBody(name: name.name, tags: result.items)))
        return json(bytes, extra: link("/v2/\(Self.pathName(name))/tags/list", result, limit: p.limit))
    }

    // MARK: manifests

    /// The reference of a manifest GET, HEAD or DELETE. A string that is no legal tag (and no digest)
    /// names no manifest: that is 404 MANIFEST_UNKNOWN, as the distribution-spec conformance suite
    /// expects of `.INVALID_MANIFEST_NAME` (NAME_UNKNOWN first if the repository does not exist).
    /// A PUT still refuses such a tag with TAG_INVALID: it asks for the name to be assigned.
    func readReference(_ name: RepositoryKey, _ ref: String) async throws -> Reference {
        do {
            return try Reference(parsing: ref)
        } catch BerthError.tagInvalid(let t) {
            _ = try await registry.repository(name)
            throw BerthError.manifestUnknown(t)
        }
    }

    /// Serves the stored manifest, or its Docker schema 2 ⇄ OCI conversion when `Accept` lists only the
    /// other format (see `Registry.manifest(_:reference:accepting:)`); with nothing acceptable, the stored one.
    func getManifest(_ name: RepositoryKey, _ ref: String, accept: [String], head: Bool, principal: Principal?) async throws -> Response {
        let reference = try await readReference(name, ref)
        let m = try await registry.manifest(name, reference: reference, accepting: AcceptedMediaTypes(acceptHeaders: accept))
        if !head {
            let byTag: Bool
            if case .tag = reference { byTag = true } else { byTag = false }
            await registry.notePull(name, m.stored.digest, byTag: byTag, by: principal)
        }
        var headers: HTTPFields = [:]
        headers[.contentType] = m.mediaType
        headers[.contentLength] = String(m.bytes.count)
        headers[Self.contentDigest] = m.digest.description
        headers[.eTag] = "\"\(m.digest)\""
        if head { return Response(status: .ok, headers: headers) }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: makeBuffer(m.bytes)))
    }

    func putManifest(_ name: RepositoryKey, _ ref: String, _ request: Request) async throws -> Response {
        let reference = try Reference(parsing: ref)
        let limit = ManifestParser.maxSize
        if let cl = contentLength(request), cl > Int64(limit) { throw BerthError.manifestTooLarge(limit: limit) }
        var bytes: [UInt8] = []
        for try await chunk in request.body {
            if bytes.count + chunk.readableBytes > limit { throw BerthError.manifestTooLarge(limit: limit) }
            bytes.append(contentsOf: chunk.readableBytesView)
        }
        let pushed = try await registry.putManifest(
            name, reference: reference, contentType: request.headers[.contentType], bytes: bytes)
        var headers: HTTPFields = [:]
        headers[.location] = "/v2/\(Self.pathName(name))/manifests/\(pushed.digest)"
        headers[Self.contentDigest] = pushed.digest.description
        headers[.contentLength] = "0"
        if let s = pushed.subject { headers[Self.ociSubject] = s.description }
        return Response(status: .created, headers: headers)
    }

    struct IndexBody: Encodable {
        let schemaVersion = 2
        let mediaType = MediaType.ociIndex
        let manifests: [Descriptor]
    }

    func referrers(_ name: RepositoryKey, _ digest: Digest, _ request: Request) async throws -> Response {
        let artifactType = request.uri.queryParameters.get("artifactType").map { String($0) }.flatMap { $0.isEmpty ? nil : $0 }
        let descriptors = try await registry.referrers(name, of: digest, artifactType: artifactType)
        let bytes = Array(try OCIJSON.encoder.encode(IndexBody(manifests: descriptors)))
        var extra: HTTPFields = [:]
        if artifactType != nil { extra[Self.filtersApplied] = "artifactType" }
        return json(bytes, contentType: MediaType.ociIndex, extra: extra)
    }

    // MARK: blobs

    func getBlob(_ name: RepositoryKey, _ digest: Digest, _ request: Request, head: Bool, sendFiles: Bool = false) async throws -> Response {
        let size = try await registry.blobSize(name, digest)
        var headers: HTTPFields = [:]
        headers[Self.contentDigest] = digest.description
        headers[.acceptRanges] = "bytes"
        headers[.eTag] = "\"\(digest)\""
        headers[.contentType] = "application/octet-stream"
        var range: ByteRange? = nil
        var status = HTTPResponse.Status.ok
        switch ByteRange.resolveRequest(request.headers[.range], size: size) {
        case .whole:
            break
        case .partial(let r):
            range = r
            status = .partialContent
            headers[.contentRange] = "bytes \(r.start)-\(r.end)/\(size)"
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(size)"
            headers[.contentLength] = "0"
            return Response(status: .rangeNotSatisfiable, headers: headers)
        }
        let length = range?.count ?? size
        headers[.contentLength] = String(length)
        if head || length == 0 { return Response(status: status, headers: headers) }
        let registry = self.registry
        let readRange = range
        // Opened before the response starts: a key that is not usable is an error response, not a cut body.
        let source = try await registry.openBlob(name, digest, size: size)
        if let url = source.redirectURL {
            // The object store serves the bytes (a Range, if any, the client sends there), as Distribution's
            // `redirect` does.
            var redirect = HTTPFields()
            redirect[.location] = url
            redirect[Self.contentDigest] = digest.description
            redirect[.contentLength] = "0"
            return Response(status: .temporaryRedirect, headers: redirect)
        }
        if sendFiles, let path = source.localFilePath,
           let ticket = ZeroCopyDownloads.shared.ticket(path: path, offset: range?.start ?? 0, length: length, fileSize: size) {
            return Response(status: status, headers: headers, body: ResponseBody(contentLength: Int(length)) { writer in
                try await writer.write(ticket)
                try await writer.finish(nil)
            })
        }
        let body = ResponseBody(contentLength: Int(length)) { writer in
            try await registry.readBlob(source, range: readRange) { buf in try await writer.write(buf) }
            try await writer.finish(nil)
        }
        return Response(status: status, headers: headers, body: body)
    }

    func startUpload(_ name: RepositoryKey, _ request: Request, principal: Principal?) async throws -> Response {
        let q = request.uri.queryParameters
        if let d = q.get("digest") {
            let digest = try Digest(parsing: d)
            try await metrics.trackingUpload {
                try await registry.monolithicUpload(name, digest: digest, contentLength: contentLength(request), body: request.body)
            }
            return blobCreated(name, digest)
        }
        var mount: Digest? = nil
        var from: RepositoryKey? = nil
        if let m = q.get("mount") {
            mount = try Digest(parsing: m)
            if let f = q.get("from"), !f.isEmpty { from = try Self.mountSource(String(f), registryID: name.registryID) }
        }
        guard let digest = mount, let principal else {
            return uploadAccepted(name, try await registry.startUpload(name).id, offset: 0, status: .accepted)
        }
        let mayPull: Registry.PullPermission = { source in try await self.mayPullBlob(digest, from: source, principal: principal) }
        switch try await registry.startUpload(name, mount: digest, from: from, mayPull: mayPull) {
        case .mounted(let d):
            return blobCreated(name, d)
        case .session(let s):
            return uploadAccepted(name, s.id, offset: 0, status: .accepted)
        }
    }

    /// The repository a `from` parameter names, as `/v2/` paths name them: `public/<alias>/<name>` is
    /// an ECR Public repository, anything else a repository of the registry the request addresses.
    static func mountSource(_ from: String, registryID: String) throws -> RepositoryKey {
        let route = OCIRoute.uploads(try RepositoryName(from))
        if let (account, name) = route.publicRepository {
            return RepositoryKey(registry: .public(account), name: name)
        }
        // A plain name pushed next to a public repository names a private one (of the same account).
        let registry = RegistryID(storedValue: registryID)
        return RepositoryKey(registry: .private(registry.account, region: registry.region), name: try RepositoryName(from))
    }

    /// Whether `principal` may read `digest` from `source`: exactly the decision a blob GET there makes
    /// (ECR Public repositories: anyone may pull). Decides which repositories a mount may take a blob from.
    func mayPullBlob(_ digest: Digest, from source: RepositoryKey, principal: Principal) async throws -> Bool {
        if source.registry.isPublic { return true }
        do {
            try await authorize(.blob(try RepositoryName(source.name), digest.description), .get,
                                registryID: source.registryID, principal: principal)
            return true
        } catch let e as BerthError {
            if case .denied = e { return false }
            throw e
        }
    }

    func blobCreated(_ name: RepositoryKey, _ digest: Digest) -> Response {
        var headers: HTTPFields = [:]
        headers[.location] = "/v2/\(Self.pathName(name))/blobs/\(digest)"
        headers[Self.contentDigest] = digest.description
        headers[.contentLength] = "0"
        return Response(status: .created, headers: headers)
    }

    func uploadAccepted(_ name: RepositoryKey, _ id: String, offset: Int64, status: HTTPResponse.Status) -> Response {
        var headers: HTTPFields = [:]
        headers[.location] = "/v2/\(Self.pathName(name))/blobs/uploads/\(id)"
        headers[Self.uploadUUID] = id
        headers[Self.range] = "0-\(max(0, offset - 1))"
        headers[.contentLength] = "0"
        return Response(status: status, headers: headers)
    }
}
