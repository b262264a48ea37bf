/// The key policies KMS writes itself, in the text AWS returns from `GetKeyPolicy` (its JSON printer:
/// two-space indent, `" : "` separators, `[ {` for statement lists).
public enum KeyPolicies {
    /// The default key policy of `CreateKey` without `Policy`: one statement, "Enable IAM User
    /// Permissions", giving the account (its root user) `kms:*`, which lets IAM policies in the
    /// account grant the key.
    public static func defaultPolicy(account: String) -> String {
        """
        {
          "Version" : "2012-10-17",
          "Id" : "key-default-1",
          "Statement" : [ {
            "Sid" : "Enable IAM User Permissions",
            "Effect" : "Allow",
            "Principal" : {
              "AWS" : "arn:aws:iam::\(account):root"
            },
            "Action" : "kms:*",
            "Resource" : "*"
          } ]
        }
        """
    }

    /// The policy of an AWS-managed-style key (`alias/aws/<service>`): every principal of the account
    /// may use it through the service (`kms:ViaService`), and the account may read its metadata.
    public static func awsManagedPolicy(account: String, service: String, region: String) -> String {
        """
        {
          "Version" : "2012-10-17",
          "Id" : "auto-\(service)-1",
          "Statement" : [ {
            "Sid" : "Allow access through \(service) for all principals in the account that are authorized to use \(service)",
            "Effect" : "Allow",
            "Principal" : {
              "AWS" : "*"
            },
            "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
            "Resource" : "*",
            "Condition" : {
              "StringEquals" : {
                "kms:CallerAccount" : "\(account)",
                "kms:ViaService" : "\(service).\(region).amazonaws.com"
              }
            }
          }, {
            "Sid" : "Allow direct access to key metadata to the account",
            "Effect" : "Allow",
            "Principal" : {
              "AWS" : "arn:aws:iam::\(account):root"
            },
            "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
            "Resource" : "*"
          } ]
        }
        """
    }
}
