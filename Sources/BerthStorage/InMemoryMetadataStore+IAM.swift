import BerthCore
import Synchronization

struct IAMState {
    var entities: [IAMEntityKey: IAMEntityRecord] = [:]
    var inline: [IAMEntityKey: [String: String]] = [:]
    var managed: [String: ManagedPolicyRecord] = [:]
    var attachments: [IAMEntityKey: Set<String>] = [:]
    /// account/group → users.
    var members: [IAMEntityKey: Set<String>] = [:]
    /// ARN → provider.
    var oidcProviders: [String: OIDCProviderRecord] = [:]
}

extension InMemoryMetadataStore {
    public func createEntity(_ entity: IAMEntityRecord) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { s in
                let key = IAMEntityKey(entity.kind, entity.accountID, entity.name)
                if s.entities[key] != nil { return false }
                s.entities[key] = entity
                return true
            }
        }
    }

    public func entity(_ key: IAMEntityKey) async throws -> IAMEntityRecord? { iam.withLock { $0.entities[key] } }

    public func entities(_ kind: IAMEntityKind, account: String) async throws -> [IAMEntityRecord] {
        iam.withLock { s in
            s.entities.values.filter { $0.kind == kind && $0.accountID == account }.sorted { $0.name < $1.name }
        }
    }

    public func deleteEntity(_ key: IAMEntityKey) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { s in
                guard s.entities.removeValue(forKey: key) != nil else { return false }
                s.inline[key] = nil
                s.attachments[key] = nil
                switch key.kind {
                case .group: s.members[key] = nil
                case .user:
                    for g in s.members.keys where g.accountID == key.accountID { s.members[g]?.remove(key.name) }
                case .role: break
                }
                return true
            }
        }
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String) async throws {
        authorizationGeneration.recording {
            iam.withLock { $0.inline[key, default: [:]][name] = document }
        }
    }

    public func inlinePolicy(_ key: IAMEntityKey, name: String) async throws -> String? {
        iam.withLock { $0.inline[key]?[name] }
    }

    public func inlinePolicies(_ key: IAMEntityKey) async throws -> [(name: String, document: String)] {
        iam.withLock { s in (s.inline[key] ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
    }

    public func deleteInlinePolicy(_ key: IAMEntityKey, name: String) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { $0.inline[key]?.removeValue(forKey: name) != nil }
        }
    }

    public func createManagedPolicy(_ policy: ManagedPolicyRecord) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { s in
                if s.managed[policy.arn] != nil { return false }
                s.managed[policy.arn] = policy
                return true
            }
        }
    }

    public func managedPolicy(arn: String) async throws -> ManagedPolicyRecord? { iam.withLock { $0.managed[arn] } }

    public func managedPolicies(account: String) async throws -> [ManagedPolicyRecord] {
        iam.withLock { s in s.managed.values.filter { $0.accountID == account }.sorted { $0.arn < $1.arn } }
    }

    public func deleteManagedPolicy(arn: String) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { s in
                guard s.managed.removeValue(forKey: arn) != nil else { return false }
                for k in s.attachments.keys { s.attachments[k]?.remove(arn) }
                return true
            }
        }
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String) async throws {
        authorizationGeneration.recording {
            iam.withLock { _ = $0.attachments[key, default: []].insert(arn) }
        }
    }

    public func detachPolicy(_ key: IAMEntityKey, arn: String) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { $0.attachments[key]?.remove(arn) != nil }
        }
    }

    public func attachedPolicies(_ key: IAMEntityKey) async throws -> [String] {
        iam.withLock { ($0.attachments[key] ?? []).sorted() }
    }

    public func attachmentCount(arn: String) async throws -> Int {
        iam.withLock { s in s.attachments.values.filter { $0.contains(arn) }.count }
    }

    public func addUser(_ user: String, toGroup group: String, account: String) async throws {
        authorizationGeneration.recording {
            iam.withLock { _ = $0.members[IAMEntityKey(.group, account, group), default: []].insert(user) }
        }
    }

    public func removeUser(_ user: String, fromGroup group: String, account: String) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { $0.members[IAMEntityKey(.group, account, group)]?.remove(user) != nil }
        }
    }

    public func groups(ofUser user: String, account: String) async throws -> [String] {
        iam.withLock { s in
            s.members.filter { $0.key.accountID == account && $0.value.contains(user) }.map(\.key.name).sorted()
        }
    }

    public func users(inGroup group: String, account: String) async throws -> [String] {
        iam.withLock { ($0.members[IAMEntityKey(.group, account, group)] ?? []).sorted() }
    }

    public func createOIDCProvider(_ provider: OIDCProviderRecord) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { s in
                if s.oidcProviders[provider.arn] != nil { return false }
                s.oidcProviders[provider.arn] = provider
                return true
            }
        }
    }

    public func oidcProvider(arn: String) async throws -> OIDCProviderRecord? { iam.withLock { $0.oidcProviders[arn] } }

    public func oidcProviders(account: String) async throws -> [OIDCProviderRecord] {
        iam.withLock { s in s.oidcProviders.values.filter { $0.accountID == account }.sorted { $0.arn < $1.arn } }
    }

    public func deleteOIDCProvider(arn: String) async throws -> Bool {
        authorizationGeneration.recording {
            iam.withLock { $0.oidcProviders.removeValue(forKey: arn) != nil }
        }
    }
}

// MARK: guarded writes (check and write under one lock)

extension InMemoryMetadataStore {
    public func insertAccessKey(_ key: AccessKeyRecord, limit: AccessKeyLimit) async throws -> Bool {
        try authorizationGeneration.recording {
            try state.withLock { s in
                guard s.accounts[key.accountID] != nil else { throw StorageError("unknown account \(key.accountID)") }
                guard s.keys[key.accessKeyID] == nil else { throw StorageError("access key \(key.accessKeyID) exists") }
                let inAccount = s.keys.values.filter { $0.accountID == key.accountID }
                switch limit {
                case .unlimited: break
                case .perPrincipal(let n): if inAccount.filter({ $0.principalARN == key.principalARN }).count >= n { return false }
                case .perAccount(let n): if inAccount.count >= n { return false }
                }
                s.keys[key.accessKeyID] = key
                return true
            }
        }
    }

    public func deleteEntityIfUnreferenced(_ key: IAMEntityKey) async throws -> IdentityWriteResult {
        authorizationGeneration.recording {
            // Access keys live in `state`: take it first, then `iam` (the only order both are ever taken in).
            state.withLock { st in
                iam.withLock { s in
                    guard let entity = s.entities[key] else { return .notFound }
                    var referenced = !(s.inline[key] ?? [:]).isEmpty || !(s.attachments[key] ?? []).isEmpty
                    switch key.kind {
                    case .user:
                        referenced = referenced || st.keys.values.contains { $0.accountID == key.accountID && $0.principalARN == entity.arn }
                            || s.members.contains { $0.key.accountID == key.accountID && $0.value.contains(key.name) }
                    case .group:
                        referenced = referenced || !(s.members[key] ?? []).isEmpty
                    case .role: break
                    }
                    if referenced { return .inUse }
                    s.entities[key] = nil
                    return .done
                }
            }
        }
    }

    public func putInlinePolicy(_ key: IAMEntityKey, name: String, document: String, totalSizeLimit: Int?) async throws -> IdentityWriteResult {
        authorizationGeneration.recording {
            iam.withLock { s in
                guard s.entities[key] != nil else { return .notFound }
                if let totalSizeLimit {
                    let others = (s.inline[key] ?? [:]).filter { $0.key != name }.values
                    let total = (others + [document]).reduce(0) { $0 + InlinePolicyQuota.chargedSize($1) }
                    if total > totalSizeLimit { return .limitReached }
                }
                s.inline[key, default: [:]][name] = document
                return .done
            }
        }
    }

    public func deleteManagedPolicyIfUnattached(arn: String) async throws -> IdentityWriteResult {
        authorizationGeneration.recording {
            iam.withLock { s in
                guard s.managed[arn] != nil else { return .notFound }
                if s.attachments.values.contains(where: { $0.contains(arn) }) { return .inUse }
                s.managed[arn] = nil
                return .done
            }
        }
    }

    public func attachPolicy(_ key: IAMEntityKey, arn: String, policyMustExist: Bool, limit: Int?) async throws -> IdentityWriteResult {
        authorizationGeneration.recording {
            iam.withLock { s in
                guard s.entities[key] != nil, !policyMustExist || s.managed[arn] != nil else { return .notFound }
                let attached = s.attachments[key] ?? []
                if let limit, !attached.contains(arn), attached.count >= limit { return .limitReached }
                s.attachments[key, default: []].insert(arn)
                return .done
            }
        }
    }

    public func addMember(_ user: String, toGroup group: String, account: String, limit: Int?) async throws -> IdentityWriteResult {
        authorizationGeneration.recording {
            iam.withLock { s in
                let groupKey = IAMEntityKey(.group, account, group)
                guard s.entities[IAMEntityKey(.user, account, user)] != nil, s.entities[groupKey] != nil else { return .notFound }
                if let limit, s.members[groupKey]?.contains(user) != true {
                    let groups = s.members.filter { $0.key.accountID == account && $0.value.contains(user) }.count
                    if groups >= limit { return .limitReached }
                }
                s.members[groupKey, default: []].insert(user)
                return .done
            }
        }
    }
}
