import BerthCore

/// Why the directory refused a write: IAM's rules, decided in the same transaction as the write.
/// Each door maps it to its own wire error (the Query door: `IAMService`).
public enum DirectoryError: Error, Sendable, Equatable {
    /// The user, group or role does not exist.
    case noSuchEntity(IAMEntityKey)
    /// The customer managed policy does not exist.
    case noSuchPolicy(arn: String)
    /// DeleteConflict: the entity still has access keys, policies, group memberships or members.
    case entityInUse(IAMEntityKey)
    /// DeleteConflict: the managed policy is still attached.
    case policyAttached(arn: String)
    /// LimitExceeded: AccessKeysPerUser.
    case accessKeyQuota(limit: Int)
    /// LimitExceeded: managed policies attached to one user, group or role.
    case attachedPolicyQuota(IAMEntityKind, limit: Int)
    /// LimitExceeded: GroupsPerUser.
    case groupsPerUserQuota(limit: Int)
    /// LimitExceeded: the entity's inline policies together are larger than the quota.
    case inlinePolicySizeQuota(IAMEntityKey, limit: Int)
    /// The access key id is already used by another account.
    case accessKeyOfAnotherAccount(id: String, account: String)
}
