"""Reference SigV4 signatures computed with botocore, for cross-checking BerthAuth.

Run: python3 scripts/botocore_reference.py
"""
import datetime
from unittest import mock

import botocore.auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2015, 8, 30, 12, 36, 0)


def sign(method, url, headers, body=b"", token=None, region="us-east-1", service="service", presign=None):
    creds = Credentials(AKID, SECRET, token)
    req = AWSRequest(method=method, url=url, headers=headers, data=body)
    with mock.patch.object(botocore.auth.datetime, "datetime", wraps=datetime.datetime) as dt:
        dt.utcnow.return_value = WHEN
        dt.now.return_value = WHEN.replace(tzinfo=datetime.timezone.utc)
        if presign:
            botocore.auth.SigV4QueryAuth(creds, service, region, expires=presign).add_auth(req)
            return req.url
        botocore.auth.SigV4Auth(creds, service, region).add_auth(req)
    return req.headers["Authorization"]


cases = {
    "get-vanilla": ("GET", "https://example.amazonaws.com/", {}),
    "get-vanilla-query-order-key-case": ("GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}),
    "get-unreserved": ("GET", "https://example.amazonaws.com/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", {}),
    "get-header-value-trim": ("GET", "https://example.amazonaws.com/", {"My-Header1": " value1", "My-Header2": ' "a   b   c"'}),
    "post-header-key-sort": ("POST", "https://example.amazonaws.com/", {"My-Header1": "value1"}),
    "post-vanilla-query": ("POST", "https://example.amazonaws.com/?Param1=value1", {}),
    "get-slashes-normalized": ("GET", "https://example.amazonaws.com//example//", {}),
}
for name, (m, u, h) in cases.items():
    h = dict(h)
    print(name, sign(m, u, h))

# Extra cases for BerthAuth (not in the official suite).
print("ecr-post-json", sign("POST", "https://api.ecr.us-east-1.amazonaws.com/",
      {"Content-Type": "application/x-amz-json-1.1",
       "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"},
      body=b"{}", region="us-east-1", service="ecr"))
print("ecr-post-json-token", sign("POST", "https://api.ecr.us-east-1.amazonaws.com/",
      {"Content-Type": "application/x-amz-json-1.1",
       "X-Amz-Target": "AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"},
      body=b'{"maxResults": 10}', token="FQoGZXIvYXdzEXAMPLETOKEN", region="us-east-1", service="ecr"))
print("presign-token", sign("GET", "https://example.amazonaws.com/blob?digest=sha256%3Aabc", {},
      token="FQoGZXIvYXdzEXAMPLETOKEN", presign=600))


def s3_presign(url, expires):
    creds = Credentials(AKID, SECRET)
    req = AWSRequest(method="GET", url=url, headers={})
    with mock.patch.object(botocore.auth.datetime, "datetime", wraps=datetime.datetime) as dt:
        dt.utcnow.return_value = WHEN
        dt.now.return_value = WHEN.replace(tzinfo=datetime.timezone.utc)
        botocore.auth.S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=expires).add_auth(req)
    return req.url


# UNSIGNED-PAYLOAD presign (what BerthAuth's presign emits by default). The path is unreserved-only:
# S3 signs the path encoded once, non-S3 services (and BerthAuth) encode it twice.
print("s3-presign", s3_presign("https://berth.example.com/v2/library/alpine/blobs/abc123?part=1", 900))
