import BerthSupport

/// Reading the repository ARNs Berth authorizes on (their names and accounts are Berth's domain rules).
extension ARN {
    /// The repository of an ECR (`ecr`, with its region) or ECR Public (`ecr-public`, no region) repository
    /// ARN in the `aws` partition, with a valid account and name; nil for any other ARN.
    public var repository: (account: String, name: String)? {
        guard partition == "aws", service == "ecr" || (service == "ecr-public" && region.isEmpty),
              let name = resource(ofType: "repository").map(String.init),
              AccountID.isValid(account), RepositoryName.isValid(name) else { return nil }
        return (account, name)
    }
}
