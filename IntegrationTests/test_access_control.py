"""Access control on a real `berth serve`: IAM users, groups, roles and policies (IAM Query API),
STS sessions, repository policies, on both doors, with the real aws CLI, boto3 and skopeo.

* The account root (123456789012) creates users, keys, policies and roles through `iam`; the users
  then act with their own keys: `aws ecr ...`, `aws ecr get-login-password | skopeo login`, `/v2/`.
* Denials are `AccessDeniedException` on the ECR API, 403 `DENIED` on /v2/, `AccessDenied` on IAM.
* A second account (`berth admin create-account`) pulls across accounts only once a repository
  policy grants it.
* STS: `AssumeRole` gives `ASIA…` credentials with a session token; an expired session is refused
  with ExpiredToken. (The expired token is made by sealing claims with the server's own
  `master.key`, as the server would, since a real session lasts at least 900 s.)
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time

import pytest
import requests
from botocore.config import Config
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from berth_helpers import assert_oci_error, describe, unique
from ecr_helpers import (ACCOUNT_ID, AWS_CLI, ECRSession, _boto_session, create_repo, expect_error,
                         put_api_image, write_oci_layout)
from ecr_helpers import ecr, ecr_server, skopeo_ecr, skopeo_path, aws_cli  # noqa: F401 (fixtures)

OTHER_ACCOUNT = "210987654321"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
POWER_USER = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryPowerUser"
FULL_ACCESS = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryFullAccess"
CACHE = 1.2  # keys and policies are cached for at most a second


class Session(ECRSession):
    """An ECRSession that may carry an STS session token (boto3, the CLI and skopeo login)."""

    def __init__(self, server, access_key, secret_key, token=None, **kw):
        super().__init__(server, access_key, secret_key, **kw)
        self.token = token

    def boto(self, service: str):
        cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
        c = _boto_session().client(service, endpoint_url=self.server.url, region_name=self.region,
                                   aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                                   aws_session_token=self.token, config=cfg)
        if service == "ecr":
            c.meta.events.register("after-call.ecr", self.audit.after_call)
        return c

    def boto_client(self, validate: bool = True, **config):
        return self.boto("ecr")

    def cli_env(self) -> dict:
        env = super().cli_env()
        if self.token:
            env["AWS_SESSION_TOKEN"] = self.token
        return env

    def aws(self, service: str, *args, check: bool = True) -> subprocess.CompletedProcess:
        cmd = [AWS_CLI, service, *args, "--endpoint-url", self.server.url, "--region", self.region, "--output", "json"]
        p = subprocess.run(cmd, capture_output=True, env=self.cli_env(), timeout=120, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-2000:]}")
        return p

    def aws_json(self, service: str, *args) -> dict:
        out = self.aws(service, *args).stdout.decode().strip()
        return json.loads(out) if out else {}


@pytest.fixture
def root(ecr) -> Session:
    s = Session(ecr.server, ecr.access_key, ecr.secret_key, audit=ecr.audit, tmp=ecr.tmp)
    s.v2_clients = ecr.v2_clients
    return s


def as_session(root: Session, key_id: str, secret: str, token=None) -> Session:
    s = Session(root.server, key_id, secret, token, audit=root.audit, tmp=root.tmp)
    s.v2_clients = root.v2_clients
    return s


def new_user(root: Session, attach=(), inline=None, name=None) -> tuple:
    """A user with the given managed policies / inline policy documents and one access key."""
    iam = root.boto("iam")
    name = name or unique("user")
    iam.create_user(UserName=name)
    for arn in attach:
        iam.attach_user_policy(UserName=name, PolicyArn=arn)
    for i, doc in enumerate(inline or []):
        iam.put_user_policy(UserName=name, PolicyName=f"inline{i}", PolicyDocument=json.dumps(doc))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, as_session(root, key["AccessKeyId"], key["SecretAccessKey"])


def statement(effect, actions, resource="*", **extra) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": actions, "Resource": resource, **extra}]}


def expect_query_error(fn, code, status=None, **params):
    try:
        fn(**params)
    except Exception as e:  # botocore ClientError
        err = e.response["Error"]
        assert err["Code"] == code, f"expected {code}, got {err}"
        if status is not None:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == status, e.response
        return e
    raise AssertionError(f"expected {code}, the call succeeded")


def pushed_repo(root: Session) -> tuple:
    """A repository with one tagged image, pushed by the root through the API."""
    repo = create_repo(root.client)["repositoryName"]
    img = put_api_image(root.client, repo, tag="v1")
    return repo, img


# =============================================================================================
# identity
# =============================================================================================
def test_get_caller_identity_for_root_user_and_role_session(root):
    ident = root.aws_json("sts", "get-caller-identity")
    assert ident == {"UserId": ACCOUNT_ID, "Account": ACCOUNT_ID, "Arn": f"arn:aws:iam::{ACCOUNT_ID}:root"}

    name, user = new_user(root)
    created = root.boto("iam").get_user(UserName=name)["User"]
    ident = user.aws_json("sts", "get-caller-identity")
    assert ident == {"UserId": created["UserId"], "Account": ACCOUNT_ID,
                     "Arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"}
    assert created["UserId"].startswith("AIDA") and len(created["UserId"]) == 21
    # An IAM user without policies may still ask who it is, and nothing else.
    expect_query_error(user.boto("iam").list_users, "AccessDenied", 403)


def test_iam_api_through_the_cli(root):
    name = unique("cli")
    out = root.aws_json("iam", "create-user", "--user-name", name, "--path", "/ci/")
    assert out["User"]["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/ci/{name}"
    assert name in [u["UserName"] for u in root.aws_json("iam", "list-users")["Users"]]
    for extra in (unique("cli"), unique("cli")):
        root.aws("iam", "create-user", "--user-name", extra)
    everyone = {u["UserName"] for u in root.aws_json("iam", "list-users")["Users"]}
    assert {u["UserName"] for u in root.aws_json("iam", "list-users", "--page-size", "1")["Users"]} == everyone
    doc = statement("Allow", ["ecr:BatchGetImage"])
    root.aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "pull", "--policy-document", json.dumps(doc))
    got = root.aws_json("iam", "get-user-policy", "--user-name", name, "--policy-name", "pull")
    assert got["PolicyDocument"] == doc  # URL-encoded on the wire, decoded by the CLI
    p = root.aws("iam", "get-user", "--user-name", unique("nobody"), check=False)
    assert p.returncode != 0 and b"NoSuchEntity" in p.stderr, p.stderr
    p = root.aws("iam", "create-user", "--user-name", name, check=False)
    assert p.returncode != 0 and b"EntityAlreadyExists" in p.stderr, p.stderr
    p = root.aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "bad", "--policy-document", "{not json",
                 check=False)
    assert p.returncode != 0 and b"MalformedPolicyDocument" in p.stderr, p.stderr
    root.aws("iam", "delete-user-policy", "--user-name", name, "--policy-name", "pull")
    root.aws("iam", "delete-user", "--user-name", name)


def test_iam_errors(root):
    iam = root.boto("iam")
    name = unique("err")
    iam.create_user(UserName=name)
    iam.create_access_key(UserName=name)
    iam.create_access_key(UserName=name)
    expect_query_error(iam.create_access_key, "LimitExceeded", 409, UserName=name)
    expect_query_error(iam.delete_user, "DeleteConflict", 409, UserName=name)
    expect_query_error(iam.get_user, "NoSuchEntity", 404, UserName=unique("none"))
    expect_query_error(iam.create_user, "ValidationError", 400, UserName="no spaces allowed")
    expect_query_error(iam.put_user_policy, "MalformedPolicyDocument", 400, UserName=name, PolicyName="p",
                       PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                           {"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Resource": "*"}]}))
    for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    # GroupsPerUser: 10, as IAM's quota; the eleventh membership is LimitExceeded with IAM's text.
    groups = [unique("g") for _ in range(11)]
    for g in groups:
        iam.create_group(GroupName=g)
    for g in groups[:10]:
        iam.add_user_to_group(UserName=name, GroupName=g)
    e = expect_query_error(iam.add_user_to_group, "LimitExceeded", 409, UserName=name, GroupName=groups[10])
    assert e.response["Error"]["Message"] == "Cannot exceed quota for GroupsPerUser: 10"
    iam.add_user_to_group(UserName=name, GroupName=groups[0])  # already a member: no new membership
    for g in groups[:10]:
        iam.remove_user_from_group(UserName=name, GroupName=g)
    for g in groups:
        iam.delete_group(GroupName=g)
    iam.delete_user(UserName=name)


# =============================================================================================
# users and their policies on both doors
# =============================================================================================
def test_read_only_user_describes_and_pulls_but_cannot_push(root, skopeo_ecr, tmp_path):
    repo, img = pushed_repo(root)
    _, reader = new_user(root, attach=[READ_ONLY])

    names = [r["repositoryName"] for r in reader.cli_json("describe-repositories")["repositories"]]
    assert repo in names
    # pull with skopeo, logged in with the user's own get-login-password
    skopeo_ecr.login(reader)
    skopeo_ecr.copy(f"docker://{root.server.hostport}/{repo}:v1", f"oci:{tmp_path / 'pulled'}:v1")
    pulled = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert len(pulled["manifests"]) == 1  # (skopeo may rewrite the manifest, so not its digest)

    # no push: skopeo fails, /v2/ answers 403 DENIED, the API AccessDeniedException
    layout = write_oci_layout(tmp_path / "layout", "v2")
    p = skopeo_ecr.copy(f"oci:{layout.root}:v2", f"docker://{root.server.hostport}/{repo}:v2", check=False)
    assert p.returncode != 0, p.stdout
    v2 = reader.v2()
    r = v2.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
    assert_oci_error(r, 403, "DENIED")
    r = v2.put_manifest(repo, "v3", img.manifest)
    assert_oci_error(r, 403, "DENIED")
    assert v2.get_manifest(repo, "v1").status_code == 200
    e = expect_error(reader.client.put_image, "AccessDeniedException", repositoryName=repo,
                     imageManifest=img.manifest_text, imageTag="v4")
    assert f"user/" in e.response["Error"]["Message"] and "ecr:PutImage" in e.response["Error"]["Message"]
    expect_error(reader.client.create_repository, "AccessDeniedException", repositoryName=unique("nope"))
    tags = {i.get("imageTag") for i in root.client.list_images(repositoryName=repo)["imageIds"]}
    assert tags == {"v1"}


def test_explicit_deny_beats_allow(root):
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[FULL_ACCESS],
                          inline=[statement("Deny", ["ecr:DescribeImages"], f"arn:aws:ecr:*:*:repository/{repo}")])
    assert user.client.list_images(repositoryName=repo)["imageIds"]
    e = expect_error(user.client.describe_images, "AccessDeniedException", repositoryName=repo)
    assert "explicit deny" in e.response["Error"]["Message"]
    # the deny goes, the allow works (within the one-second cache)
    root.boto("iam").delete_user_policy(UserName=name, PolicyName="inline0")
    time.sleep(CACHE)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    # a repository policy's deny binds even a fully allowed user
    root.client.set_repository_policy(repositoryName=repo, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "nolist", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"},
                                                "Action": "ecr:ListImages"}]}))
    time.sleep(CACHE)
    expect_error(user.client.list_images, "AccessDeniedException", repositoryName=repo)
    assert root.client.list_images(repositoryName=repo)["imageIds"]


def test_condition_keys_source_ip_and_request_tags(root):
    repo, _ = pushed_repo(root)
    _, local = new_user(root, inline=[statement("Allow", ["ecr:DescribeRepositories"],
                                                Condition={"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}})])
    _, remote = new_user(root, inline=[statement("Allow", ["ecr:DescribeRepositories"],
                                                 Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})])
    assert local.client.describe_repositories(repositoryNames=[repo])["repositories"]
    expect_error(remote.client.describe_repositories, "AccessDeniedException", repositoryNames=[repo])
    _, tagger = new_user(root, inline=[statement("Allow", ["ecr:CreateRepository"],
                                                 Condition={"StringEquals": {"aws:RequestTag/team": "core"}})])
    expect_error(tagger.client.create_repository, "AccessDeniedException", repositoryName=unique("untagged"))
    expect_error(tagger.client.create_repository, "AccessDeniedException", repositoryName=unique("web"),
                 tags=[{"Key": "team", "Value": "web"}])
    tagger.client.create_repository(repositoryName=unique("core"), tags=[{"Key": "team", "Value": "core"}])


def test_group_policies_apply_to_members(root):
    repo, _ = pushed_repo(root)
    iam = root.boto("iam")
    name, user = new_user(root)
    group = unique("group")
    iam.create_group(GroupName=group)
    iam.attach_group_policy(GroupName=group, PolicyArn=READ_ONLY)
    expect_error(user.client.describe_repositories, "AccessDeniedException", repositoryNames=[repo])
    iam.add_user_to_group(GroupName=group, UserName=name)
    assert [u["UserName"] for u in iam.get_group(GroupName=group)["Users"]] == [name]
    time.sleep(CACHE)
    assert user.client.describe_repositories(repositoryNames=[repo])["repositories"]


def test_deactivated_key_and_its_registry_tokens_stop_working(root):
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[READ_ONLY])
    password = user.registry_password()
    v2 = user.v2(password)
    assert v2.get_manifest(repo, "v1").status_code == 200
    root.boto("iam").update_access_key(UserName=name, AccessKeyId=user.access_key, Status="Inactive")
    time.sleep(CACHE)
    r = v2.get_manifest(repo, "v1")
    assert r.status_code == 401, describe(r)
    assert "basic" in r.headers.get("WWW-Authenticate", "").lower()
    expect_error(user.client.describe_repositories, "UnrecognizedClientException")
    p = user.cli("describe-repositories", check=False)
    assert p.returncode != 0 and b"UnrecognizedClientException" in p.stderr, p.stderr
    # active again: the same token works again (it was never the token that was revoked)
    root.boto("iam").update_access_key(UserName=name, AccessKeyId=user.access_key, Status="Active")
    time.sleep(CACHE)
    assert v2.get_manifest(repo, "v1").status_code == 200
    root.boto("iam").delete_access_key(UserName=name, AccessKeyId=user.access_key)
    time.sleep(CACHE)
    assert v2.get_manifest(repo, "v1").status_code == 401


# =============================================================================================
# repository policies and cross-account access
# =============================================================================================
@pytest.fixture(scope="module")
def other_account(ecr_server) -> dict:
    return ecr_server.admin_create_account(OTHER_ACCOUNT)


def test_cross_account_pull_needs_a_repository_policy(root, other_account):
    repo, img = pushed_repo(root)
    other = as_session(root, other_account["AccessKeyId"], other_account["SecretAccessKey"])
    assert other.aws_json("sts", "get-caller-identity")["Account"] == OTHER_ACCOUNT
    v2 = other.v2()
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")
    expect_error(other.client.batch_get_image, "AccessDeniedException", registryId=ACCOUNT_ID, repositoryName=repo,
                 imageIds=[{"imageTag": "v1"}])
    expect_error(root.client.get_repository_policy, "RepositoryPolicyNotFoundException", repositoryName=repo)

    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "pull from the other account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]}]}
    out = root.cli_json("set-repository-policy", "--repository-name", repo, "--policy-text", json.dumps(policy))
    assert out["registryId"] == ACCOUNT_ID and json.loads(out["policyText"]) == policy
    assert json.loads(root.client.get_repository_policy(repositoryName=repo)["policyText"]) == policy
    time.sleep(CACHE)
    r = v2.get_manifest(repo, "v1")
    assert r.status_code == 200, describe(r)
    for layer in img.layer_digests:
        assert v2.get(f"/v2/{repo}/blobs/{layer}").status_code == 200
    got = other.client.batch_get_image(registryId=ACCOUNT_ID, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageId"]["imageDigest"] == img.digest
    # still no push, no delete
    assert_oci_error(v2.put_manifest(repo, "other", img.manifest), 403, "DENIED")
    expect_error(other.client.batch_delete_image, "AccessDeniedException", registryId=ACCOUNT_ID, repositoryName=repo,
                 imageIds=[{"imageTag": "v1"}])

    root.client.delete_repository_policy(repositoryName=repo)
    time.sleep(CACHE)
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")


def test_repository_and_registry_policy_validation(root):
    repo = create_repo(root.client)["repositoryName"]
    for bad in ["{not json", json.dumps(statement("Allow", "ecr:*")), "x" * 10241]:
        expect_error(root.raw.set_repository_policy, "InvalidParameterException", repositoryName=repo, policyText=bad)
    expect_error(root.client.get_repository_policy, "RepositoryPolicyNotFoundException", repositoryName=repo)
    expect_error(root.client.set_repository_policy, "RepositoryNotFoundException", repositoryName=unique("none"),
                 policyText=json.dumps({"Version": "2012-10-17", "Statement": [
                     {"Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}]}))
    lockout = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:*"}]})
    expect_error(root.client.set_repository_policy, "InvalidParameterException", repositoryName=repo, policyText=lockout)
    root.client.set_repository_policy(repositoryName=repo, policyText=lockout, force=True)
    time.sleep(CACHE)
    expect_error(root.client.describe_images, "AccessDeniedException", repositoryName=repo)

    expect_error(root.client.get_registry_policy, "RegistryPolicyNotFoundException")
    registry_policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "replication", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/*"}]})
    assert root.client.put_registry_policy(policyText=registry_policy)["policyText"] == registry_policy
    assert root.client.get_registry_policy()["policyText"] == registry_policy
    expect_error(root.raw.put_registry_policy, "InvalidParameterException", policyText="[]")
    assert root.client.delete_registry_policy()["policyText"] == registry_policy
    expect_error(root.client.delete_registry_policy, "RegistryPolicyNotFoundException")


# =============================================================================================
# STS
# =============================================================================================
def trust(principal_arn: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": principal_arn}, "Action": "sts:AssumeRole"}]})


def test_assumed_role_session_works(root, skopeo_ecr, tmp_path):
    repo, img = pushed_repo(root)
    iam = root.boto("iam")
    name, user = new_user(root)
    role = unique("role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"))["Role"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=POWER_USER)

    out = user.aws_json("sts", "assume-role", "--role-arn", arn, "--role-session-name", "build-1",
                        "--duration-seconds", "900")
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    assert out["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/build-1"
    session = as_session(root, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    ident = session.aws_json("sts", "get-caller-identity")
    assert ident["Arn"] == f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/build-1"
    assert ident["UserId"].endswith(":build-1") and ident["UserId"].startswith("AROA")

    # the role's PowerUser policy: push and pull, no repository deletion
    assert repo in [r["repositoryName"] for r in session.cli_json("describe-repositories")["repositories"]]
    put_api_image(session.client, repo, tag="by-role")
    expect_error(session.client.delete_repository, "AccessDeniedException", repositoryName=repo, force=True)
    skopeo_ecr.login(session)
    skopeo_ecr.copy(f"docker://{root.server.hostport}/{repo}:v1", f"oci:{tmp_path / 'pulled'}:v1")
    # a presigned layer URL made for the session carries its token and works without other credentials
    url = session.client.get_download_url_for_layer(repositoryName=repo, layerDigest=img.layer_digests[0])["downloadUrl"]
    assert "X-Amz-Security-Token=" in url
    r = session.v2_anonymous().get(url.replace(url.split("/v2/")[0], root.server.url))
    assert r.status_code == 200 and r.content == img.layers[0], describe(r)

    # the user itself has no identity policy, so it cannot push; and nobody else may assume the role
    expect_error(user.client.describe_repositories, "AccessDeniedException")
    _, stranger = new_user(root, attach=[FULL_ACCESS])
    expect_query_error(stranger.boto("sts").assume_role, "AccessDenied", 403, RoleArn=arn, RoleSessionName="x1")
    expect_query_error(user.boto("sts").assume_role, "ValidationError", 400, RoleArn=arn, RoleSessionName="long",
                       DurationSeconds=7200)

    # a tampered session token is not one of ours
    forged = as_session(root, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"][:-8] + "AAAAAAA=")
    expect_error(forged.client.describe_repositories, "UnrecognizedClientException")
    expect_query_error(forged.boto("sts").get_caller_identity, "InvalidClientTokenId", 403)

    # deleting the role's permissions takes effect on the session's next request
    iam.detach_role_policy(RoleName=role, PolicyArn=POWER_USER)
    time.sleep(CACHE)
    expect_error(session.client.describe_repositories, "AccessDeniedException")


def seal_like_the_server(data_dir, claims: dict) -> str:
    """A session token sealed with the server's master.key (SecretBox: v1: + base64(nonce|ct|tag))."""
    key = base64.b64decode((data_dir / "master.key").read_text().strip())
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, json.dumps(claims).encode(), b"berth-sts-session-v1")
    return "v1:" + base64.b64encode(nonce + sealed).decode()


def test_expired_session_is_refused(root):
    iam = root.boto("iam")
    role = unique("role")
    created = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:root"))["Role"]
    iam.attach_role_policy(RoleName=role, PolicyArn=READ_ONLY)
    claims = {"accessKeyID": "ASIAEXPIREDSESSION01", "secretAccessKey": "s" * 40, "accountID": ACCOUNT_ID,
              "roleName": role, "roleID": created["RoleId"], "sessionName": "old"}
    live = as_session(root, claims["accessKeyID"], claims["secretAccessKey"],
                      seal_like_the_server(root.server.data_dir, {**claims, "expiresAt": time.time() + 600}))
    assert live.client.describe_repositories()["repositories"] is not None  # the forgery method is faithful
    expired = as_session(root, claims["accessKeyID"], claims["secretAccessKey"],
                         seal_like_the_server(root.server.data_dir, {**claims, "expiresAt": time.time() - 1}))
    e = expect_error(expired.client.describe_repositories, "ExpiredTokenException")
    assert "expired" in e.response["Error"]["Message"]
    expect_query_error(expired.boto("sts").get_caller_identity, "ExpiredTokenException")
    p = expired.cli("describe-repositories", check=False)
    assert p.returncode != 0 and b"ExpiredToken" in p.stderr, p.stderr


# =============================================================================================
# ECR Public under the same policies
# =============================================================================================
def test_ecr_public_pushes_follow_iam_and_repository_policies(root):
    pub_root = root.boto("ecr-public")
    name = unique("pubac")
    repo_arn = pub_root.create_repository(repositoryName=name)["repository"]["repositoryArn"]
    # A user allowed only ecr-public:Describe* may read the control plane but not push.
    _, reader = new_user(root, inline=[statement("Allow", ["ecr-public:Describe*", "ecr-public:GetAuthorizationToken"])])
    pub_reader = reader.boto("ecr-public")
    assert [r["repositoryName"] for r in pub_reader.describe_repositories(repositoryNames=[name])["repositories"]] == [name]
    expect_query_error(pub_reader.initiate_layer_upload, "AccessDeniedException", repositoryName=name)
    expect_query_error(pub_reader.put_repository_catalog_data, "AccessDeniedException",
                       repositoryName=name, catalogData={"description": "x"})
    # The repository policy grants pushes to that user; an explicit Deny in it would win over IAM.
    user_arn = reader.boto("sts").get_caller_identity()["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "push", "Effect": "Allow", "Principal": {"AWS": user_arn},
        "Action": ["ecr-public:InitiateLayerUpload", "ecr-public:UploadLayerPart", "ecr-public:CompleteLayerUpload",
                   "ecr-public:BatchCheckLayerAvailability", "ecr-public:PutImage"]}]}
    pub_root.set_repository_policy(repositoryName=name, policyText=json.dumps(policy))
    assert json.loads(pub_root.get_repository_policy(repositoryName=name)["policyText"]) == policy
    time.sleep(1.1)  # policies are re-read within a second
    img = put_api_image(pub_reader, name, tag="v1")
    r = requests.get(f"{root.server.url}/v2/public/r{root.server.account_id}/{name}/manifests/v1",
                     headers={"Accept": img.media_type}, timeout=10)
    assert r.status_code == 200 and r.content == img.manifest, "anyone pulls public images"
    policy["Statement"].append({"Sid": "deny", "Effect": "Deny", "Principal": {"AWS": user_arn},
                                "Action": "ecr-public:PutImage"})
    pub_root.set_repository_policy(repositoryName=name, policyText=json.dumps(policy))
    time.sleep(1.1)
    expect_query_error(pub_reader.put_image, "AccessDeniedException", repositoryName=name,
                       imageManifest=img.manifest_text, imageTag="v2")
    pub_root.delete_repository_policy(repositoryName=name)
    expect_query_error(pub_root.get_repository_policy, "RepositoryPolicyNotFoundException", repositoryName=name)
    assert repo_arn.startswith("arn:aws:ecr-public::")
