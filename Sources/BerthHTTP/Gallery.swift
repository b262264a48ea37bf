import BerthCore
import BerthECR
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

extension OCIHandler {
    /// `GET /gallery/<alias>/<name>/logo`: a public repository's logo (ECR Public's `logoUrl`), anonymously.
    func galleryLogo(_ path: String, context: BerthRequestContext) async throws -> Response {
        context.record.set(door: .gallery, operation: "logo")
        // The router folds `/gallery/` into `/gallery`; only paths below `/gallery/` name a logo.
        guard path.hasPrefix("/gallery/") else { return BerthRouter.notFound(context) }
        let parts = path.dropFirst("/gallery/".count).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count >= 3, parts.last == "logo", let account = PublicRegistry.account(ofAlias: parts[0]),
              let name = try? RepositoryName(parts[1..<(parts.count - 1)].joined(separator: "/")),
              let record = try await registry.findRepository(RepositoryKey(registry: .public(account), name: name)),
              let logo = record.settings.catalog?.logoBase64, let data = Data(base64Encoded: logo) else {
            return OCIWireError.notFound("no such logo").response(head: false)
        }
        let bytes = [UInt8](data)
        let type: String
        if bytes.starts(with: [0x89, 0x50, 0x4e, 0x47]) { type = "image/png" }
        else if bytes.starts(with: [0xff, 0xd8, 0xff]) { type = "image/jpeg" }
        else if bytes.starts(with: Array("GIF8".utf8)) { type = "image/gif" }
        else { type = "application/octet-stream" }
        return Response(status: .ok, headers: [.contentType: type, .contentLength: String(bytes.count),
                                               .cacheControl: "public, max-age=300"],
                        body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
