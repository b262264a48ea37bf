"""A change takes effect on the very next request, and access fails closed.

Every test acts the moment the change returned, with NO pause: the key and policy caches must be
invalidated by the write itself (a cache that only expires after a second answers with the old state).
Each test first makes the request that fills the caches with the old state, then changes it (aws CLI
or boto3), then checks the very next request with the aws CLI, boto3 or /v2/ (registry tokens).

The last test damages a repository's stored settings behind the server's back (python's sqlite3 on
`<dataDir>/berth.db`) and checks that the repository's requests are denied, where falling back to
default settings would drop its policy's Deny.
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

from berth_helpers import assert_oci_error, describe, unique
from ecr_helpers import ACCOUNT_ID, ECRSession, create_repo, expect_error, put_api_image
from ecr_helpers import ecr, ecr_fresh, ecr_server, aws_cli  # noqa: F401 (fixtures)
from test_access_control import (FULL_ACCESS, OTHER_ACCOUNT, READ_ONLY, Session, as_session, expect_query_error,
                                  new_user, pushed_repo, statement)
from test_access_control import other_account, root  # noqa: F401 (fixtures)

PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
TOKEN_ONLY = statement("Allow", ["ecr:GetAuthorizationToken"])


def repository_policy(principal: str, actions) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "grant", "Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}]})


def denied(session: Session, repo: str):
    return expect_error(session.client.describe_images, "AccessDeniedException", repositoryName=repo)


# =============================================================================================
# resource policies
# =============================================================================================
def test_repository_policy_granting_a_same_account_user_works_at_once(root):
    repo, img = pushed_repo(root)
    name, user = new_user(root, inline=[TOKEN_ONLY])
    v2 = user.v2()
    denied(user, repo)
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")

    root.cli_json("set-repository-policy", "--repository-name", repo, "--policy-text",
                  repository_policy(f"arn:aws:iam::{ACCOUNT_ID}:user/{name}", PULL + ["ecr:DescribeImages"]))
    r = v2.get_manifest(repo, "v1")
    assert r.status_code == 200, describe(r)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"][0]["imageDigest"] == img.digest
    out = user.cli_json("describe-images", "--repository-name", repo)
    assert out["imageDetails"][0]["imageDigest"] == img.digest

    root.cli_json("delete-repository-policy", "--repository-name", repo)
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")
    denied(user, repo)


def test_repository_policy_granting_another_accounts_root_works_at_once(root, other_account):
    repo, img = pushed_repo(root)
    other = as_session(root, other_account["AccessKeyId"], other_account["SecretAccessKey"])
    v2 = other.v2()
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")
    expect_error(other.client.batch_get_image, "AccessDeniedException", registryId=ACCOUNT_ID, repositoryName=repo,
                 imageIds=[{"imageTag": "v1"}])

    root.cli_json("set-repository-policy", "--repository-name", repo, "--policy-text",
                  repository_policy(f"arn:aws:iam::{OTHER_ACCOUNT}:root", PULL))
    r = v2.get_manifest(repo, "v1")
    assert r.status_code == 200, describe(r)
    got = other.client.batch_get_image(registryId=ACCOUNT_ID, repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert got["images"][0]["imageId"]["imageDigest"] == img.digest

    root.client.delete_repository_policy(repositoryName=repo)
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")


def test_registry_policy_deny_applies_at_once(root):
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[FULL_ACCESS])
    v2 = user.v2()
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    assert v2.get_manifest(repo, "v1").status_code == 200
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Sid": "nopull", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"},
        "Action": ["ecr:DescribeImages", "ecr:BatchGetImage"], "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT_ID}:repository/*"}]})
    # (boto3 for the change: the CLI's own start-up takes about as long as the old one-second caches)
    root.client.put_registry_policy(policyText=policy)
    try:
        e = denied(user, repo)
        assert "explicit deny" in e.response["Error"]["Message"]
        assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")
    finally:
        root.cli_json("delete-registry-policy")
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    assert v2.get_manifest(repo, "v1").status_code == 200


def test_repository_tags_used_by_resource_tag_conditions_apply_at_once(root):
    repo, _ = pushed_repo(root)
    arn = root.client.describe_repositories(repositoryNames=[repo])["repositories"][0]["repositoryArn"]
    _, user = new_user(root, inline=[statement("Allow", ["ecr:DescribeImages"],
                                               Condition={"StringEquals": {"aws:ResourceTag/team": "web"}})])
    denied(user, repo)
    root.client.tag_resource(resourceArn=arn, tags=[{"Key": "team", "Value": "web"}])
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    root.client.untag_resource(resourceArn=arn, tagKeys=["team"])
    denied(user, repo)


def test_a_recreated_repository_does_not_keep_the_old_policy(root):
    repo, _ = pushed_repo(root)
    name, user = new_user(root)
    root.client.set_repository_policy(repositoryName=repo, policyText=repository_policy(
        f"arn:aws:iam::{ACCOUNT_ID}:user/{name}", ["ecr:DescribeImages"]))
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    root.client.delete_repository(repositoryName=repo, force=True)
    create_repo(root.client, repo)
    put_api_image(root.client, repo, tag="v1")
    denied(user, repo)


# =============================================================================================
# access keys
# =============================================================================================
def reader_in_use(root: Session) -> tuple:
    """A read-only user whose key and registry token have just been used (so they are cached)."""
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[READ_ONLY])
    v2 = user.v2()
    assert v2.get_manifest(repo, "v1").status_code == 200
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    return repo, name, user, v2


def assert_key_refused(user: Session, v2, repo: str):
    """boto3, the aws CLI and /v2/ with a token made from the key all fail."""
    expect_error(user.client.describe_images, "UnrecognizedClientException", repositoryName=repo)
    p = user.cli("describe-images", "--repository-name", repo, check=False)
    assert p.returncode != 0 and b"UnrecognizedClientException" in p.stderr, p.stderr
    r = v2.get_manifest(repo, "v1")
    assert r.status_code == 401, describe(r)


def test_deactivated_key_stops_at_once_and_works_again_at_once(root):
    repo, name, user, v2 = reader_in_use(root)
    root.boto("iam").update_access_key(UserName=name, AccessKeyId=user.access_key, Status="Inactive")
    assert_key_refused(user, v2, repo)

    root.boto("iam").update_access_key(UserName=name, AccessKeyId=user.access_key, Status="Active")
    assert v2.get_manifest(repo, "v1").status_code == 200
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]


def test_deleted_key_stops_at_once(root):
    repo, name, user, v2 = reader_in_use(root)
    root.boto("iam").delete_access_key(UserName=name, AccessKeyId=user.access_key)
    assert_key_refused(user, v2, repo)


# =============================================================================================
# identity policies
# =============================================================================================
def test_detached_and_deleted_policies_stop_at_once(root):
    repo, _ = pushed_repo(root)
    iam = root.boto("iam")
    name, user = new_user(root, inline=[TOKEN_ONLY])
    v2 = user.v2()
    arn = iam.create_policy(PolicyName=unique("pull"), PolicyDocument=json.dumps(
        statement("Allow", PULL + ["ecr:DescribeImages"])))["Policy"]["Arn"]
    denied(user, repo)

    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    assert v2.get_manifest(repo, "v1").status_code == 200
    iam.detach_user_policy(UserName=name, PolicyArn=arn)
    denied(user, repo)
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")

    # an inline policy, deleted
    iam.put_user_policy(UserName=name, PolicyName="describe", PolicyDocument=json.dumps(
        statement("Allow", ["ecr:DescribeImages"])))
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    iam.delete_user_policy(UserName=name, PolicyName="describe")
    denied(user, repo)

    # an AWS managed policy, detached
    iam.attach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    iam.detach_user_policy(UserName=name, PolicyArn=READ_ONLY)
    denied(user, repo)
    iam.delete_policy(PolicyArn=arn)


def test_a_deny_added_to_a_user_applies_at_once(root):
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[FULL_ACCESS])
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    root.boto("iam").put_user_policy(UserName=name, PolicyName="deny", PolicyDocument=json.dumps(
        statement("Deny", ["ecr:DescribeImages"])))
    e = denied(user, repo)
    assert "explicit deny" in e.response["Error"]["Message"]


def test_group_membership_changes_apply_at_once(root):
    repo, _ = pushed_repo(root)
    iam = root.boto("iam")
    name, user = new_user(root)
    group = unique("group")
    iam.create_group(GroupName=group)
    iam.attach_group_policy(GroupName=group, PolicyArn=READ_ONLY)
    denied(user, repo)
    iam.add_user_to_group(GroupName=group, UserName=name)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    iam.remove_user_from_group(GroupName=group, UserName=name)
    denied(user, repo)
    # the group's policy, detached while the user is a member
    iam.add_user_to_group(GroupName=group, UserName=name)
    assert user.client.describe_images(repositoryName=repo)["imageDetails"]
    iam.detach_group_policy(GroupName=group, PolicyArn=READ_ONLY)
    denied(user, repo)


def test_iam_permissions_apply_at_once(root):
    # The IAM API goes through the same authorizer: granting iam:ListUsers works on the next call.
    name, user = new_user(root)
    expect_query_error(user.boto("iam").list_users, "AccessDenied", 403)
    root.boto("iam").put_user_policy(UserName=name, PolicyName="list", PolicyDocument=json.dumps(
        statement("Allow", ["iam:ListUsers"])))
    assert any(u["UserName"] == name for u in user.boto("iam").list_users()["Users"])


# =============================================================================================
# fail closed
# =============================================================================================
def test_unreadable_repository_settings_deny_instead_of_dropping_the_policy(ecr_fresh):
    root = Session(ecr_fresh.server, ecr_fresh.access_key, ecr_fresh.secret_key, audit=ecr_fresh.audit, tmp=ecr_fresh.tmp)
    root.v2_clients = ecr_fresh.v2_clients
    repo, _ = pushed_repo(root)
    name, user = new_user(root, attach=[FULL_ACCESS])
    root.client.set_repository_policy(repositoryName=repo, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "nodescribe", "Effect": "Deny",
                                               "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"},
                                               "Action": "ecr:DescribeImages"}]}))
    denied(user, repo)
    assert user.client.list_images(repositoryName=repo)["imageIds"]
    v2 = user.v2()
    assert v2.get_manifest(repo, "v1").status_code == 200

    db = sqlite3.connect(str(ecr_fresh.server.data_dir / "berth.db"), timeout=30)
    with db:
        n = db.execute("UPDATE repositories SET settings = ? WHERE name = ?", ('{"policy": 42', repo)).rowcount
    db.close()
    assert n == 1
    # Written behind the server's back (another process): seen once the caches' age limit passed.
    time.sleep(1.2)

    # The Deny must not vanish, and nothing else is allowed on a repository whose policy cannot be read.
    e = denied(user, repo)
    assert "could not be read" in e.response["Error"]["Message"], e.response
    expect_error(user.client.list_images, "AccessDeniedException", repositoryName=repo)
    expect_error(root.client.describe_images, "AccessDeniedException", repositoryName=repo)
    p = user.cli("describe-images", "--repository-name", repo, check=False)
    assert p.returncode != 0 and b"AccessDeniedException" in p.stderr, p.stderr
    assert_oci_error(v2.get_manifest(repo, "v1"), 403, "DENIED")
    assert_oci_error(root.v2().get_manifest(repo, "v1"), 403, "DENIED")
    # Other repositories are unaffected.
    other, _ = pushed_repo(root)
    assert user.client.describe_images(repositoryName=other)["imageDetails"]
    # The error is logged with the repository.
    log = (ecr_fresh.server.stdout_path.read_text(errors="replace") + ecr_fresh.server.stderr_path.read_text(errors="replace"))
    lines = [l for l in log.splitlines() if "authorization data cannot be read" in l]
    assert lines and any(repo in l for l in lines), ecr_fresh.server.log_tail()
