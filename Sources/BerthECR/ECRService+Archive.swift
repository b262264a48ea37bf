import BerthCore
import BerthRegistry
import BerthSupport

/// The archive storage class (UpdateImageStorageClass) and pull time update exclusions.
extension ECRService {
    func updateImageStorageClass(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        guard let id = try p.object("imageId") else { throw p.missing("imageId") }
        let targetText = try p.requiredString("targetStorageClass")
        guard let target = ImageStorageClass(rawValue: targetText) else {
            throw ECRError.validation(ValidationMessage(.text("\(targetText)"), at: "targetStorageClass", .oneOf(["STANDARD", "ARCHIVE"])))
        }
        try await authorize(principal, "UpdateImageStorageClass", key)
        try await requireRepository(key)
        switch try await resolve(id, in: key) {
        case .failed(let code, let reason):
            throw try imageLookupError(id, code: code, reason: reason, in: key)
        case .found(let digest, let tag):
            let status: ImageStatus
            do {
                status = try await registry.updateImageStorageClass(digest, in: key, to: target, at: clock.now())
            } catch ImageStorageClassRefusal.referencedByIndexes(let parents) {
                throw ECRError.storageClassUpdateNotSupported(
                    "The image with imageId \(ECRError.imageIDText(digest: digest.description, tag: tag)) is referenced by the image index "
                        + "\(parents.map(\.description).joined(separator: ", ")) in the repository with name '\(key.name)'; archive the index first")
            }
            return ["registryId": .string(wireID(key)), "repositoryName": .string(key.name),
                    "imageId": imageID(digest.description, tag), "imageStatus": .string(status.rawValue)]
        }
    }

    /// `principalArn` of the exclusion operations: at most 200 characters, an IAM role or user ARN.
    static func exclusionPrincipal(_ p: Params) throws -> String {
        let arn = try p.requiredString("principalArn")
        guard arn.utf8.count <= 200 else {
            throw ECRError.validation(ValidationMessage(.omitted, at: "principalArn", .lengthAtMost(200)))
        }
        guard isExclusionPrincipal(arn) else {
            throw ECRError.validation(ValidationMessage(.text("\(arn)"), at: "principalArn", .pattern("^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\\w+=,.@-]+(/[\\w+=,.@-]+)*$")))
        }
        return arn
    }

    /// The model's pattern `^arn:aws(-[a-z]+)*:iam::[0-9]{12}:(role|user)/[\w+=,.@-]+(/[\w+=,.@-]+)*$`.
    static func isExclusionPrincipal(_ arn: String) -> Bool {
        let fields = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
        guard fields.count == 6, fields[0] == "arn", fields[2] == "iam", fields[3].isEmpty, AccountID.isValid(String(fields[4])) else { return false }
        // The partition: `aws` followed by any number of `-<lowercase letters>`.
        let partition = fields[1].split(separator: "-", omittingEmptySubsequences: false)
        guard partition[0] == "aws",
              partition.dropFirst().allSatisfy({ !$0.isEmpty && $0.allSatisfy { ("a"..."z").contains($0) } }) else { return false }
        let path = fields[5].split(separator: "/", omittingEmptySubsequences: false)
        guard path.count >= 2, path[0] == "role" || path[0] == "user" else { return false }
        return path.dropFirst().allSatisfy { segment in
            !segment.isEmpty && segment.unicodeScalars.allSatisfy { c in
                c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || "_+=,.@-".unicodeScalars.contains(c))
            }
        }
    }

    func registerPullTimeUpdateExclusion(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let arn = try Self.exclusionPrincipal(p)
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr:RegisterPullTimeUpdateExclusion", resource: registryARN(account))
        switch try await registry.registerPullTimeExclusion(arn, of: storeID(account)) {
        case .added(let exclusion):
            return ["principalArn": .string(arn), "createdAt": .double(exclusion.createdAt)]
        case .alreadyExists:
            throw ECRError.exclusionAlreadyExists(arn, registry: account)
        case .limitExceeded:
            throw ECRError("LimitExceededException",
                           "The registry with id '\(account)' already has the maximum of \(Registry.maxPullTimeExclusions) pull time update exclusions")
        }
    }

    func deregisterPullTimeUpdateExclusion(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let arn = try Self.exclusionPrincipal(p)
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr:DeregisterPullTimeUpdateExclusion", resource: registryARN(account))
        guard try await registry.deregisterPullTimeExclusion(arn, of: storeID(account)) else {
            throw ECRError.exclusionNotFound(arn, registry: account)
        }
        return ["principalArn": .string(arn)]
    }

    func listPullTimeUpdateExclusions(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let limit = try p.maxResults(1, 1000) ?? Self.defaultPageSize
        let after = try ECRService.decodeToken(try p.string("nextToken"))
        let account = principal.accountID
        try await authorizer.authorize(principal, action: "ecr:ListPullTimeUpdateExclusions", resource: registryARN(account))
        let all = try await registry.pullTimeExclusions(of: storeID(account)).map(\.principalARN).filter { after == nil || $0 > after! }
        let page = Array(all.prefix(limit))
        var out: [String: JSONValue] = ["pullTimeUpdateExclusions": .array(page.map { .string($0) })]
        if all.count > limit, let last = page.last { out["nextToken"] = .string(ECRService.encodeToken(last)) }
        return .object(out)
    }
}
