"""CI pushes without long-lived keys, on a real `berth serve`: STS AssumeRoleWithWebIdentity.

* The test plays a GitHub Actions-like OIDC issuer: an RSA key made with `cryptography`, its JWKS
  written where the server reads it (`<dataDir>/oidc-jwks/token.actions.githubusercontent.com.json`,
  the default `oidcJwksDirectory`), ID tokens signed as RS256.
* The account root registers the issuer with `aws iam create-open-id-connect-provider` and creates a
  role whose trust policy is the GitHub one (`:sub` StringLike `repo:my-org/my-repo:*`, `:aud`
  `sts.amazonaws.com`) with the ECR PowerUser policy.
* The pipeline, with no credentials at all, calls `aws sts assume-role-with-web-identity`
  (unsigned), then pushes with skopeo after `aws ecr get-login-password` under the session.
* Tokens of another repository, forged, expired or signed with a retired key are refused with STS's
  error codes.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from berth_helpers import unique
from ecr_helpers import ACCOUNT_ID, AWS_CLI, ECRSession, _boto_session, aws_service, create_repo, write_oci_layout
from ecr_helpers import ecr, ecr_server, skopeo_ecr, skopeo_path, aws_cli  # noqa: F401 (fixtures)

ISSUER_HOST = "token.actions.githubusercontent.com"
ISSUER = f"https://{ISSUER_HOST}"
PROVIDER_ARN = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER_HOST}"
POWER_USER = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser"
RELOAD = 2.5  # the server looks at a JWKS file at most every two seconds


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def int_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


class Issuer:
    """An OIDC issuer: RSA signing keys by kid, its JWKS file, and tokens."""

    def __init__(self, jwks_dir):
        self.path = jwks_dir / f"{ISSUER_HOST}.json"
        self.keys = {}

    def add_key(self, kid: str):
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def publish(self, kids=None):
        entries = []
        for kid, key in self.keys.items():
            if kids is not None and kid not in kids:
                continue
            pub = key.public_key().public_numbers()
            entries.append({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                            "n": b64url(int_bytes(pub.n)), "e": b64url(int_bytes(pub.e))})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"keys": entries}))
        os.replace(tmp, self.path)

    def token(self, kid: str = "k1", sub: str = "repo:my-org/my-repo:ref:refs/heads/main",
              aud: str = "sts.amazonaws.com", lifetime: int = 300, signer: str = None) -> str:
        now = int(time.time())
        header = {"alg": "RS256", "kid": kid, "typ": "JWT"}
        claims = {"iss": ISSUER, "sub": sub, "aud": aud, "iat": now, "nbf": now - 5, "exp": now + lifetime,
                  "repository": sub.split(":")[1] if ":" in sub else sub, "ref": "refs/heads/main",
                  "jti": unique("jti")}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        key = self.keys[signer or kid]
        sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(sig)}"


class SessionCredentials(ECRSession):
    """An ECRSession for temporary credentials (the aws CLI and skopeo login get the session token)."""

    def __init__(self, server, creds: dict, **kw):
        super().__init__(server, creds["AccessKeyId"], creds["SecretAccessKey"], **kw)
        self.token = creds["SessionToken"]

    def boto_client(self, validate: bool = True, **config):
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=validate, **config)
        return _boto_session().client("ecr", endpoint_url=self.server.url, region_name=self.region,
                                      aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                      aws_session_token=self.token, config=cfg)

    def cli_env(self) -> dict:
        env = super().cli_env()
        env["AWS_SESSION_TOKEN"] = self.token
        return env


def no_credentials_env(tmp) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    none = str(tmp / "no-such-aws-config")
    env.update({"AWS_CONFIG_FILE": none, "AWS_SHARED_CREDENTIALS_FILE": none, "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_MAX_ATTEMPTS": "1", "AWS_PAGER": ""})
    return env


def assume_with_cli(server, tmp, role_arn: str, token: str, session: str = "gha-1") -> subprocess.CompletedProcess:
    """`aws sts assume-role-with-web-identity` with no credentials anywhere, as a CI job runs it."""
    cmd = [AWS_CLI, "sts", "assume-role-with-web-identity", "--role-arn", role_arn, "--role-session-name", session,
           "--web-identity-token", token, "--duration-seconds", "900", "--no-sign-request",
           "--endpoint-url", server.url, "--region", server.region, "--output", "json"]
    return subprocess.run(cmd, capture_output=True, env=no_credentials_env(tmp), timeout=120, stdin=subprocess.DEVNULL)


def unsigned_sts(server):
    return _boto_session().client("sts", endpoint_url=server.url, region_name=server.region,
                                  config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}))


root_aws = aws_service


def expect_sts_error(server, code: str, status: int, **params):
    with pytest.raises(ClientError) as e:
        unsigned_sts(server).assume_role_with_web_identity(**params)
    err = e.value.response["Error"]
    assert err["Code"] == code, f"expected {code}, got {err}"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.value.response


def github_trust(repo_pattern: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Federated": PROVIDER_ARN}, "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringLike": {f"{ISSUER_HOST}:sub": repo_pattern},
                      "StringEquals": {f"{ISSUER_HOST}:aud": "sts.amazonaws.com"}}}]})


@pytest.fixture(scope="module")
def issuer(ecr_server) -> Issuer:
    i = Issuer(ecr_server.data_dir / "oidc-jwks")
    i.add_key("k1")
    i.add_key("k2")
    i.add_key("stranger")
    i.publish(kids=["k1", "k2"])
    return i


@pytest.fixture
def provider(ecr):
    """The GitHub issuer registered in the account (once per server)."""
    listed = root_aws(ecr, "iam", "list-open-id-connect-providers")["OpenIDConnectProviderList"]
    if PROVIDER_ARN not in [p["Arn"] for p in listed]:
        out = root_aws(ecr, "iam", "create-open-id-connect-provider", "--url", ISSUER,
                       "--client-id-list", "sts.amazonaws.com",
                       "--thumbprint-list", "6938fd4d98bab03faadb97b34396831e3780aea1")
        assert out["OpenIDConnectProviderArn"] == PROVIDER_ARN
    return PROVIDER_ARN


def test_pipeline_pushes_with_a_web_identity_and_no_keys(ecr, issuer, provider, skopeo_ecr, tmp_path):
    role = unique("ci-push")
    role_arn = root_aws(ecr, "iam", "create-role", "--role-name", role,
                        "--assume-role-policy-document", github_trust("repo:my-org/my-repo:*"))["Role"]["Arn"]
    root_aws(ecr, "iam", "attach-role-policy", "--role-name", role, "--policy-arn", POWER_USER)
    repo = create_repo(ecr.client)["repositoryName"]

    p = assume_with_cli(ecr.server, tmp_path, role_arn, issuer.token())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = json.loads(p.stdout)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SecretAccessKey"] and creds["SessionToken"]
    assert out["SubjectFromWebIdentityToken"] == "repo:my-org/my-repo:ref:refs/heads/main"
    assert out["Audience"] == "sts.amazonaws.com"
    assert out["Provider"] == ISSUER
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/gha-1"
    assert out["AssumedRoleUser"]["AssumedRoleId"].startswith("AROA")

    session = SessionCredentials(ecr.server, creds, tmp=tmp_path)
    skopeo_ecr.login(session)
    layout = write_oci_layout(tmp_path / "layout", "v1")
    skopeo_ecr.copy(f"oci:{layout.root}:v1", f"docker://{ecr.server.hostport}/{repo}:v1")
    tags = [t for d in ecr.client.describe_images(repositoryName=repo)["imageDetails"] for t in d.get("imageTags", [])]
    assert tags == ["v1"]
    # PowerUser: no repository deletion.
    with pytest.raises(ClientError) as denied:
        session.client.delete_repository(repositoryName=repo, force=True)
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"

    # Another repository's job is not trusted.
    p = assume_with_cli(ecr.server, tmp_path, role_arn, issuer.token(sub="repo:other-org/app:ref:refs/heads/main"))
    assert p.returncode != 0 and b"AccessDenied" in p.stderr, p.stderr
    expect_sts_error(ecr.server, "AccessDenied", 403, RoleArn=role_arn, RoleSessionName="gha-2",
                     WebIdentityToken=issuer.token(sub="repo:other-org/app:ref:refs/heads/main"))


def test_bad_tokens_are_refused_with_sts_errors(ecr, issuer, provider):
    role = unique("ci-push")
    role_arn = root_aws(ecr, "iam", "create-role", "--role-name", role,
                        "--assume-role-policy-document", github_trust("repo:my-org/*"))["Role"]["Arn"]
    params = {"RoleArn": role_arn, "RoleSessionName": "gha-3"}
    unsigned_sts(ecr.server).assume_role_with_web_identity(WebIdentityToken=issuer.token(kid="k2"), **params)
    expect_sts_error(ecr.server, "InvalidIdentityToken", 400, WebIdentityToken=issuer.token(signer="stranger"), **params)
    expect_sts_error(ecr.server, "InvalidIdentityToken", 400, WebIdentityToken=issuer.token(kid="stranger"), **params)
    expect_sts_error(ecr.server, "InvalidIdentityToken", 400, WebIdentityToken=issuer.token(aud="someone-else"), **params)
    expect_sts_error(ecr.server, "InvalidIdentityToken", 400, WebIdentityToken="eyJhbGciOiJub25lIn0.e30.", **params)
    expect_sts_error(ecr.server, "ExpiredTokenException", 400, WebIdentityToken=issuer.token(lifetime=-600), **params)
    # A retired key stops working once its JWKS file no longer lists it.
    issuer.publish(kids=["k2"])
    time.sleep(RELOAD)
    expect_sts_error(ecr.server, "InvalidIdentityToken", 400, WebIdentityToken=issuer.token(kid="k1"), **params)
    unsigned_sts(ecr.server).assume_role_with_web_identity(WebIdentityToken=issuer.token(kid="k2"), **params)
    issuer.publish(kids=["k1", "k2"])
    time.sleep(RELOAD)


def test_oidc_providers_through_the_cli(ecr):
    url = f"https://{unique('idp')}.example.com/ci"
    arn = root_aws(ecr, "iam", "create-open-id-connect-provider", "--url", url,
                   "--client-id-list", "a", "b")["OpenIDConnectProviderArn"]
    assert arn == f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{url[len('https://'):]}"
    got = root_aws(ecr, "iam", "get-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert got["Url"] == url[len("https://"):] and got["ClientIDList"] == ["a", "b"] and got.get("ThumbprintList", []) == []
    assert arn in [p["Arn"] for p in root_aws(ecr, "iam", "list-open-id-connect-providers")["OpenIDConnectProviderList"]]
    iam = _boto_session().client("iam", endpoint_url=ecr.server.url, region_name=ecr.region,
                                 aws_access_key_id=ecr.access_key, aws_secret_access_key=ecr.secret_key,
                                 config=Config(retries={"total_max_attempts": 1}))
    for fn, code, kw in [
        (iam.create_open_id_connect_provider, "EntityAlreadyExists", {"Url": url}),
        (iam.create_open_id_connect_provider, "InvalidInput", {"Url": "http://plain.example.com"}),
        (iam.get_open_id_connect_provider, "NoSuchEntity",
         {"OpenIDConnectProviderArn": f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/none.example.com"}),
    ]:
        with pytest.raises(ClientError) as e:
            fn(**kw)
        assert e.value.response["Error"]["Code"] == code, e.value.response
    root_aws(ecr, "iam", "delete-open-id-connect-provider", "--open-id-connect-provider-arn", arn)
    assert arn not in [p["Arn"] for p in root_aws(ecr, "iam", "list-open-id-connect-providers")["OpenIDConnectProviderList"]]
