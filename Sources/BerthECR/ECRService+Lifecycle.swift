import BerthCore
import BerthLifecycle
import BerthRegistry
import BerthSupport
import Foundation

/// Lifecycle policies: Put/Get/DeleteLifecyclePolicy, Start/GetLifecyclePolicyPreview.
extension ECRService {
    /// Reads and validates `lifecyclePolicyText` (length from botocore's model, grammar from `LifecyclePolicy`).
    func lifecyclePolicyText(_ p: Params, required: Bool) throws -> (String, LifecyclePolicy)? {
        let given: String?
        if required { given = try p.requiredString("lifecyclePolicyText") } else { given = try p.string("lifecyclePolicyText") }
        guard let text = given else { return nil }
        let length = text.count
        if length < LifecyclePolicy.minimumLength {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "lifecyclePolicyText", .lengthAtLeast(LifecyclePolicy.minimumLength)))
        }
        if length > LifecyclePolicy.maximumLength {
            throw ECRError.invalidParameter(ValidationMessage(.omitted, at: "lifecyclePolicyText", .lengthAtMost(LifecyclePolicy.maximumLength)))
        }
        return (text, try checkLifecyclePolicy(text))
    }

    /// A lifecycle policy's grammar and rules, as PutLifecyclePolicy checks them (`InvalidParameterException`).
    func checkLifecyclePolicy(_ text: String) throws -> LifecyclePolicy {
        do {
            return try LifecyclePolicy(parsing: text)
        } catch {
            throw ECRError.invalidParameter(error.ecrMessage)
        }
    }

    func lifecycleAnswer(_ key: RepositoryKey, _ text: String, lastEvaluatedAt: Double?, includeTime: Bool) -> JSONValue {
        var out: [String: JSONValue] = ["registryId": .string(wireID(key)), "repositoryName": .string(key.name),
                                        "lifecyclePolicyText": .string(text)]
        if includeTime, let t = lastEvaluatedAt { out["lastEvaluatedAt"] = .double(t) }
        return .object(out)
    }

    func putLifecyclePolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let (text, _) = try lifecyclePolicyText(p, required: true)!
        try await authorize(principal, "PutLifecyclePolicy", key)
        try await registry.putLifecyclePolicy(key, text)
        return lifecycleAnswer(key, text, lastEvaluatedAt: nil, includeTime: false)
    }

    func getLifecyclePolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await storedLifecyclePolicy(p, principal, &ctx, action: "GetLifecyclePolicy") { try await $0.lifecyclePolicy($1) }
    }

    func deleteLifecyclePolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        try await storedLifecyclePolicy(p, principal, &ctx, action: "DeleteLifecyclePolicy") { try await $0.deleteLifecyclePolicy($1) }
    }

    /// Get and Delete: authorize `action`, read (or remove) the stored policy, answer with it.
    func storedLifecyclePolicy(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext, action: String,
                               _ read: (Registry, RepositoryKey) async throws -> StoredLifecyclePolicy?) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        try await authorize(principal, action, key)
        guard let stored = try await read(registry, key) else {
            throw ECRError.lifecyclePolicyNotFound(key.name, registry: wireID(key))
        }
        return lifecycleAnswer(key, stored.text, lastEvaluatedAt: stored.lastEvaluatedAt, includeTime: true)
    }

    func startLifecyclePolicyPreview(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let given = try lifecyclePolicyText(p, required: false)
        try await authorize(principal, "StartLifecyclePolicyPreview", key)
        let text: String
        let policy: LifecyclePolicy
        if let given {
            text = given.0
            policy = given.1
            _ = try await registry.repository(key)
        } else {
            guard let stored = try await registry.lifecyclePolicy(key) else {
                throw ECRError.lifecyclePolicyNotFound(key.name, registry: wireID(key))
            }
            text = stored.text
            policy = try checkLifecyclePolicy(text)
        }
        let evaluation = try await registry.evaluateLifecycle(key, policy: policy)
        // ECR computes a preview asynchronously and keeps it for a while; Berth evaluates now (the
        // evaluator is fast) and keeps the results in their wire form in the metadata store.
        try await registry.saveLifecyclePreview(key, policyText: text,
                                                results: JSONValue.array(evaluation.decisions.map { previewResult($0) }).encoded())
        var out = lifecycleAnswer(key, text, lastEvaluatedAt: nil, includeTime: false)
        if case .object(var o) = out {
            o["status"] = "IN_PROGRESS"
            out = .object(o)
        }
        return out
    }

    func getLifecyclePolicyPreview(_ p: Params, _ principal: Principal, _ ctx: inout OperationContext) async throws -> JSONValue {
        let key = try repositoryKey(p, principal, &ctx)
        let ids = try p.objectList("imageIds")
        if let ids {
            try p.checkCount("imageIds", ids.count, 1...100)
            if try p.int("maxResults") != nil || p.string("nextToken") != nil {
                throw ECRError.invalidParameter("Invalid parameter: maxResults and nextToken cannot be specified together with imageIds")
            }
        }
        let limit = try p.maxResults(1, 100) ?? 100
        var offset = 0
        if let token = try ECRService.decodeToken(try p.string("nextToken")) {
            guard let n = Int(token), n >= 0 else {
                throw ECRError.invalidParameter("Invalid parameter at 'nextToken' failed to satisfy constraint: 'Invalid pagination token'")
            }
            offset = n
        }
        let status = try imageFilter(p).tagStatus
        try await authorize(principal, "GetLifecyclePolicyPreview", key)
        _ = try await registry.repository(key)
        guard let preview = try await registry.lifecyclePreview(key),
              case .array(var results)? = try? JSONValue.parse(preview.results) else {
            throw ECRError.lifecyclePolicyPreviewNotFound(key.name, registry: wireID(key))
        }
        switch status {
        case "TAGGED": results = results.filter { !Self.previewTags($0).isEmpty }
        case "UNTAGGED": results = results.filter { Self.previewTags($0).isEmpty }
        default: break
        }
        if let ids {
            var digests = Set<Digest>()
            var tags = Set<String>()
            for id in ids {
                if let d = try id.string("imageDigest") {
                    guard let digest = Digest.parse(d) else {
                        throw ECRError.invalidParameter("Invalid parameter at 'imageDigest' failed to satisfy constraint: 'Invalid image digest'")
                    }
                    digests.insert(digest)
                }
                if let t = try id.string("imageTag") { tags.insert(t) }
            }
            results = results.filter { r in
                Self.previewString(r, "imageDigest").flatMap(Digest.parse).map(digests.contains) == true
                    || Self.previewTags(r).contains(where: tags.contains)
            }
        }
        let expiring = results.filter { r in
            if case .object(let o) = r, case .object(let action)? = o["action"], action["type"] == .string("EXPIRE") { return true }
            return false
        }.count
        let transitioning = results.count - expiring
        let page = results.dropFirst(offset).prefix(limit)
        var transitions: [JSONValue] = []
        if transitioning > 0 {
            transitions.append(["targetStorageClass": "ARCHIVE", "imageTotalCount": .int(Int64(transitioning))])
        }
        let summary: JSONValue = ["expiringImageTotalCount": .int(Int64(expiring)), "transitioningImageTotalCounts": .array(transitions)]
        var out: [String: JSONValue] = [
            "registryId": .string(wireID(key)), "repositoryName": .string(key.name),
            "lifecyclePolicyText": .string(preview.policyText), "status": "COMPLETE",
            "previewResults": .array(Array(page)),
            "summary": summary,
        ]
        if offset + page.count < results.count { out["nextToken"] = .string(ECRService.encodeToken(String(offset + page.count))) }
        return .object(out)
    }

    /// A stored preview result's `imageTags`.
    static func previewTags(_ r: JSONValue) -> [String] {
        guard case .object(let o) = r, case .array(let tags)? = o["imageTags"] else { return [] }
        return tags.compactMap { if case .string(let t) = $0 { t } else { nil } }
    }

    static func previewString(_ r: JSONValue, _ member: String) -> String? {
        guard case .object(let o) = r, case .string(let v)? = o[member] else { return nil }
        return v
    }

    func previewResult(_ d: LifecycleDecision) -> JSONValue {
        var action: [String: JSONValue]
        switch d.action {
        case .expire: action = ["type": "EXPIRE"]
        case .transition(let target): action = ["type": "TRANSITION", "targetStorageClass": .string(target.rawValue.uppercased())]
        }
        var out: [String: JSONValue] = [
            "imageDigest": .string(d.image.digest.description),
            "imageTags": .array(d.image.tags.map { .string($0) }),
            "imagePushedAt": .double(d.image.pushedAt),
            "action": .object(action),
            "appliedRulePriority": .int(Int64(d.appliedRulePriority)),
            "storageClass": .string(d.image.storageClass.rawValue.uppercased()),
        ]
        if d.image.tags.isEmpty { out["imageTags"] = nil }
        return .object(out)
    }
}
