import BerthCore
import BerthStorage

/// Account-level settings: ECR's account settings, the registry policy, ECR Public's display name.
extension Registry {
    /// An ECR account setting of an account (its default when never put).
    public func accountSetting(_ setting: AccountSetting, of account: String) async throws -> String {
        try await metadata.accountSetting(account, setting.rawValue) ?? setting.defaultValue
    }

    /// Puts an ECR account setting; `value` must be one of `setting.values` (`BerthError.unsupported` otherwise).
    public func putAccountSetting(_ setting: AccountSetting, of account: String, value: String) async throws {
        guard setting.values.contains(value) else {
            throw BerthError.unsupported("\(value) is not a value of \(setting.rawValue)")
        }
        try await metadata.putAccountSetting(account, setting.rawValue, value)
    }

    /// The registry policy of an account (ECR `PutRegistryPolicy`), or nil when none is set.
    public func registryPolicy(of account: String) async throws -> String? {
        guard let text = try await metadata.accountSetting(account, RegistryPolicy.settingName), !text.isEmpty else { return nil }
        return text
    }

    /// Sets the registry policy of an account; nil deletes it.
    public func putRegistryPolicy(of account: String, _ text: String?) async throws {
        // An empty value means deleted (as the authorizer reads it).
        try await metadata.putAccountSetting(account, RegistryPolicy.settingName, text ?? "")
    }

    /// The display name of an account's ECR Public registry, if one was put.
    public func publicRegistryDisplayName(of account: String) async throws -> String? {
        try await metadata.accountSetting(account, Self.publicRegistryDisplayNameSetting)
    }

    public func putPublicRegistryDisplayName(of account: String, _ name: String) async throws {
        try await metadata.putAccountSetting(account, Self.publicRegistryDisplayNameSetting, name)
    }

    /// Where the display name is kept among the account settings.
    static let publicRegistryDisplayNameSetting = PublicRegistry.displayNameSetting

    /// Where the deployment's home region is recorded (an account id no account can have).
    static let deploymentSettings = "deployment"
    static let homeRegionSetting = "homeRegion"

    /// The home region recorded in the metadata database (the region stored under bare account ids, see
    /// `RegionSet`): recorded as `candidate` on the first start that asks, then never changed.
    public func recordedHomeRegion(default candidate: String) async throws -> String {
        try await recordedDeploymentSetting(Self.homeRegionSetting, default: candidate)
    }

    /// Where the master key's fingerprint is recorded.
    public static let masterKeyFingerprintSetting = "masterKeyFingerprint"

    /// A deployment-wide fact recorded once: the stored value, or `candidate` stored now when there is none.
    public func recordedDeploymentSetting(_ name: String, default candidate: String) async throws -> String {
        if let recorded = try await metadata.accountSetting(Self.deploymentSettings, name) { return recorded }
        try await metadata.putAccountSetting(Self.deploymentSettings, name, candidate)
        return candidate
    }
}
