/// Why a request failed SigV4 authentication, with the AWS error each case is reported as.
///
/// The `Authorization`-header cases reproduce what AWS JSON ("coral") services such as ECR return: the
/// `__type`, the message text and HTTP 400. The presigned-URL cases (`invalidPresignedQuery`, `requestExpired`,
/// `requestNotYetValid`, `contentSHA256Mismatch`) reproduce S3, whose presigned download URLs Berth imitates.
public enum SigV4Error: Error, Sendable, Hashable {
    /// No `Authorization: AWS4-…` header and no `X-Amz-*` query authentication at all.
    case missingAuthenticationToken
    /// The signature parameters are malformed or incomplete; the associated value is AWS's message.
    case incompleteSignature(String)
    /// The access key id is unknown, or the session token does not belong to it.
    case unrecognizedClient
    /// The signature does not match the one computed from the request.
    case signatureMismatch
    /// `X-Amz-Date` is more than the allowed skew before `now` (both in ISO 8601 basic format).
    case signatureExpired(requestDate: AmzDate, now: AmzDate, skewSeconds: Int64)
    /// `X-Amz-Date` is more than the allowed skew after `now`.
    case signatureNotYetCurrent(requestDate: AmzDate, now: AmzDate, skewSeconds: Int64)
    /// The credential scope names another region, service, terminator or date; the value is AWS's message.
    case invalidCredentialScope(String)
    /// `host` is not among the signed headers.
    case hostNotSigned
    /// The presigned-URL parameters are missing or malformed (S3 `AuthorizationQueryParametersError`).
    case invalidPresignedQuery(String)
    /// The presigned URL's `X-Amz-Date + X-Amz-Expires` lies before `now`.
    case requestExpired(expiredAt: AmzDate, now: AmzDate)
    /// The presigned URL's `X-Amz-Date` lies more than the allowed skew after `now`.
    case requestNotYetValid(requestDate: AmzDate, now: AmzDate)
    /// `X-Amz-Content-Sha256` names another hash than the body's.
    case contentSHA256Mismatch

    /// The AWS error code (the JSON `__type`, or the S3 `Code` for the presigned cases).
    public var awsErrorType: String {
        switch self {
        case .missingAuthenticationToken: "MissingAuthenticationTokenException"
        case .incompleteSignature: "IncompleteSignatureException"
        case .unrecognizedClient: "UnrecognizedClientException"
        case .signatureMismatch, .signatureExpired, .signatureNotYetCurrent, .invalidCredentialScope, .hostNotSigned:
            "InvalidSignatureException"
        case .invalidPresignedQuery: "AuthorizationQueryParametersError"
        case .requestExpired, .requestNotYetValid: "AccessDenied"
        case .contentSHA256Mismatch: "XAmzContentSHA256Mismatch"
        }
    }

    /// The HTTP status AWS answers with.
    ///
    /// ECR answers every SigV4 failure with 400 (observed: `MissingAuthenticationTokenException`,
    /// `UnrecognizedClientException` and `InvalidSignatureException` from `api.ecr.*` all carry status 400);
    /// S3 answers an expired presigned URL with 403.
    public var httpStatus: Int {
        switch self {
        case .requestExpired, .requestNotYetValid: 403
        default: 400
        }
    }

    /// The message text, worded as AWS words it.
    public var message: String {
        switch self {
        case .missingAuthenticationToken:
            "Missing Authentication Token"
        case .incompleteSignature(let message), .invalidCredentialScope(let message),
             .invalidPresignedQuery(let message):
            message
        case .unrecognizedClient:
            "The security token included in the request is invalid."
        case .signatureMismatch:
            "The request signature we calculated does not match the signature you provided. "
                + "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
        case .signatureExpired(let requestDate, let now, let skew):
            "Signature expired: \(requestDate) is now earlier than \(now.adding(seconds: -skew)) "
                + "(\(now) - \(Self.describe(skew)).)"
        case .signatureNotYetCurrent(let requestDate, let now, let skew):
            "Signature not yet current: \(requestDate) is still later than \(now.adding(seconds: skew)) "
                + "(\(now) + \(Self.describe(skew)).)"
        case .hostNotSigned:
            "'Host' must be a 'SignedHeader' in the AWS Authorization."
        case .requestExpired:
            "Request has expired"
        case .requestNotYetValid:
            "Request is not valid yet"
        case .contentSHA256Mismatch:
            "The provided 'x-amz-content-sha256' header does not match what was computed."
        }
    }

    /// AWS writes the skew as `15 min.`.
    private static func describe(_ skewSeconds: Int64) -> String {
        skewSeconds % 60 == 0 ? "\(skewSeconds / 60) min" : "\(skewSeconds) sec"
    }
}
