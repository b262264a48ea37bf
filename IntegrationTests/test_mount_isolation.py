"""Knowing a digest must not leak a blob (issue #10, item 1).

`POST /v2/<name>/blobs/uploads/?mount=<digest>[&from=<source>]` may link a blob into <name> only when
the caller may pull it (the decision of a blob GET: `ecr:GetDownloadUrlForLayer`, IAM + repository +
registry policies, explicit Deny included) from a repository of the same registry that holds it.
Otherwise the answer is 202 with a normal upload session, nothing is linked, and
`GET /v2/<name>/blobs/<digest>` stays 404. The account setting `BLOB_MOUNTING=DISABLED` turns every
mount into an upload session. The ECR door (BatchCheckLayerAvailability, PutImage) only knows the
layers linked in the repository asked about.

Principals: the account root, an IAM user, an assumed-role session, another account's root and user
(`berth admin create-account`), and ECR Public repositories (a registry of their own).
"""

from __future__ import annotations

import gzip
import json
import os
import time
import urllib.parse

from berth_helpers import (OCI_CONFIG, OCI_LAYER, add_query, assert_oci_error, describe, descriptor, make_manifest,
                           random_config, sha256, unique)
from ecr_helpers import ACCOUNT_ID, create_repo, expect_error, repo_arn
from ecr_helpers import ecr, ecr_fresh, ecr_server, skopeo_ecr, skopeo_path, aws_cli  # noqa: F401 (fixtures)
from test_access_control import (CACHE, OTHER_ACCOUNT, POWER_USER, as_session, new_user, statement, trust)
from test_access_control import other_account, root  # noqa: F401 (fixtures)

OCTET = {"Content-Type": "application/octet-stream"}
# What a user needs to push to and pull from one repository (docker's actions, as ECR documents them).
PUSH_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
             "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload", "ecr:PutImage"]
PULL = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]


def push_pull_policy(*repos: str, account: str = ACCOUNT_ID) -> dict:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
        {"Effect": "Allow", "Action": PUSH_PULL, "Resource": [repo_arn(r, account) for r in repos]}]}


def secret_blob(root) -> tuple:
    """A repository `secret-…` holding one blob that exists nowhere else: (repository, digest, data)."""
    secret = create_repo(root.client, unique("secret"))["repositoryName"]
    data = os.urandom(2048)
    digest = root.v2().push_blob(secret, data)
    return secret, digest, data


def mount(v2, target: str, digest: str, frm=None, host=None):
    params = {"mount": digest}
    if frm is not None:
        params["from"] = frm
    headers = {"Content-Length": "0"}
    if host:
        headers["Host"] = host
    return v2.post(f"/v2/{target}/blobs/uploads/?" + urllib.parse.urlencode(params), headers=headers)


def assert_refused(v2, target: str, digest: str, frm=None, host=None, reader=None):
    """The mount opens an upload session (202) and links nothing: the blob stays unknown in `target`."""
    r = mount(v2, target, digest, frm, host)
    what = f"mount {digest[:19]}… into {target} from {frm!r}"
    assert r.status_code == 202, f"{what} must not link a blob the caller may not pull: {describe(r)}"
    assert r.headers.get("Location") and "/blobs/uploads/" in r.headers["Location"], describe(r)
    assert r.headers.get("Docker-Upload-UUID"), describe(r)
    headers = {"Host": host} if host else {}
    got = (reader or v2).get(f"/v2/{target}/blobs/{digest}", headers=headers)
    assert_oci_error(got, 404, "BLOB_UNKNOWN")
    return r


def assert_mounted(v2, target: str, digest: str, data: bytes, frm=None, host=None):
    r = mount(v2, target, digest, frm, host)
    assert r.status_code == 201, f"mount into {target} from {frm!r} should link the blob: {describe(r)}"
    assert r.headers.get("Docker-Content-Digest") in (None, digest)
    headers = {"Host": host} if host else {}
    got = v2.get(f"/v2/{target}/blobs/{digest}", headers=headers)
    assert got.status_code == 200 and got.content == data, describe(got)


# =============================================================================================
# IAM user of the same account
# =============================================================================================
def test_iam_user_cannot_mount_a_blob_it_may_not_pull(root):
    secret, digest, data = secret_blob(root)
    mine = create_repo(root.client, unique("mine"))["repositoryName"]
    _, user = new_user(root, inline=[push_pull_policy(mine)])
    v2 = user.v2()
    # the premise: the user may not read `secret`
    assert_oci_error(v2.get(f"/v2/{secret}/blobs/{digest}"), 403, "DENIED")

    assert_refused(v2, mine, digest, frm=secret)
    assert_refused(v2, mine, digest)  # automatic mount (no `from`)
    # the 202 is a normal upload session: the user can upload the content itself
    r = assert_refused(v2, mine, digest, frm=secret)
    done = v2.put(add_query(v2.location(r), digest=digest), data=data, headers=OCTET)
    assert done.status_code == 201, describe(done)
    assert v2.get(f"/v2/{mine}/blobs/{digest}").content == data


def test_iam_user_mounts_what_it_may_pull(root):
    """The allowed cases still mount (pushes stay fast): explicit source, and automatic."""
    secret, digest, data = secret_blob(root)
    mine, other = (create_repo(root.client, unique(p))["repositoryName"] for p in ("mine", "other"))
    _, user = new_user(root, inline=[push_pull_policy(mine, other),
                                     statement("Allow", PULL, repo_arn(secret))])
    v2 = user.v2()
    assert_mounted(v2, mine, digest, data, frm=secret)
    assert_mounted(v2, other, digest, data)


def test_automatic_mount_takes_only_a_source_the_caller_may_pull(root):
    """`secret` and `shared` both hold the blob; a user who may pull only `shared` mounts from it."""
    secret, digest, data = secret_blob(root)
    shared, mine = (create_repo(root.client, unique(p))["repositoryName"] for p in ("shared", "mine"))
    assert_mounted(root.v2(), shared, digest, data, frm=secret)  # the root may pull anything of its account
    _, user = new_user(root, inline=[push_pull_policy(mine)])
    v2 = user.v2()
    assert_refused(v2, mine, digest, frm=secret)
    # `shared` holds it too, but the user may not pull from there either: nothing qualifies
    assert_refused(v2, mine, digest)
    _, user2 = new_user(root, inline=[push_pull_policy(mine), statement("Allow", PULL, repo_arn(shared))])
    time.sleep(CACHE)
    v2b = user2.v2()
    assert_refused(v2b, mine, digest, frm=secret)  # an explicit source is the only candidate
    assert_mounted(v2b, mine, digest, data)


def test_explicit_deny_in_the_source_repository_policy_wins(root):
    secret, digest, data = secret_blob(root)
    first, second = (create_repo(root.client, unique(p))["repositoryName"] for p in ("first", "second"))
    name, user = new_user(root, attach=[POWER_USER])  # pull and push everywhere in the account
    v2 = user.v2()
    assert_mounted(v2, first, digest, data, frm=secret)
    user_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    root.client.set_repository_policy(repositoryName=secret, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "no-reads", "Effect": "Deny", "Principal": {"AWS": user_arn},
                                                "Action": "ecr:GetDownloadUrlForLayer"}]}))
    # `first` (mounted above) also holds the blob now: deny reads there too, through the registry policy
    root.client.put_registry_policy(policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "no-reads-first", "Effect": "Deny", "Principal": {"AWS": user_arn},
                                                "Action": "ecr:GetDownloadUrlForLayer",
                                                "Resource": repo_arn(first)}]}))
    try:
        time.sleep(CACHE)
        assert_oci_error(v2.get(f"/v2/{secret}/blobs/{digest}"), 403, "DENIED")
        assert_refused(v2, second, digest, frm=secret)
        assert_refused(v2, second, digest, frm=first)
        assert_refused(v2, second, digest)
    finally:
        root.client.delete_registry_policy()
        time.sleep(CACHE)


# =============================================================================================
# assumed-role session
# =============================================================================================
def test_assumed_role_session_mounts_only_what_its_role_may_pull(root):
    secret, digest, data = secret_blob(root)
    mine = create_repo(root.client, unique("mine"))["repositoryName"]
    iam = root.boto("iam")
    role = unique("role")
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:root"))["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="mine", PolicyDocument=json.dumps(push_pull_policy(mine)))
    creds = root.boto("sts").assume_role(RoleArn=arn, RoleSessionName="ci-1")["Credentials"]
    session = as_session(root, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    v2 = session.v2()
    assert_refused(v2, mine, digest, frm=secret)
    assert_refused(v2, mine, digest)
    iam.put_role_policy(RoleName=role, PolicyName="secret", PolicyDocument=json.dumps(statement("Allow", PULL, repo_arn(secret))))
    time.sleep(CACHE)
    assert_mounted(v2, mine, digest, data)


# =============================================================================================
# another account
# =============================================================================================
def test_another_accounts_root_cannot_mount_into_its_own_registry(root, other_account):
    """Account B's root pushing to B's registry: A's blob is in another registry, never a source."""
    secret, digest, data = secret_blob(root)
    other = as_session(root, other_account["AccessKeyId"], other_account["SecretAccessKey"])
    theirs = create_repo(other.client, unique("theirs"))["repositoryName"]
    v2 = other.v2()
    host = f"{OTHER_ACCOUNT}.dkr.ecr.us-east-1.localhost"
    assert v2.get(f"/v2/{theirs}/tags/list", headers={"Host": host}).status_code == 200  # B's registry
    assert_refused(v2, theirs, digest, host=host)
    assert_refused(v2, theirs, digest, frm=secret, host=host)


def test_another_accounts_principals_mount_only_what_a_policy_lets_them_pull(root, other_account):
    """A repository policy on A's `mine` lets account B push there; mounting A's `secret` blob also
    needs a grant to pull `secret`."""
    secret, digest, data = secret_blob(root)
    mine = create_repo(root.client, unique("mine"))["repositoryName"]
    root.client.set_repository_policy(repositoryName=mine, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "b-pushes", "Effect": "Allow",
                                                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                                                "Action": PUSH_PULL}]}))
    other = as_session(root, other_account["AccessKeyId"], other_account["SecretAccessKey"])
    iam_b = other.boto("iam")
    name = unique("buser")
    iam_b.create_user(UserName=name)
    iam_b.put_user_policy(UserName=name, PolicyName="ecr", PolicyDocument=json.dumps(
        statement("Allow", ["ecr:*"], "*")))
    key = iam_b.create_access_key(UserName=name)["AccessKey"]
    b_user = as_session(root, key["AccessKeyId"], key["SecretAccessKey"])
    time.sleep(CACHE)
    for who in (other, b_user):
        v2 = who.v2()
        assert_oci_error(v2.get(f"/v2/{secret}/blobs/{digest}"), 403, "DENIED")
        assert_refused(v2, mine, digest, frm=secret)
        assert_refused(v2, mine, digest)
    # once `secret`'s policy lets account B pull, its principals may mount from it
    root.client.set_repository_policy(repositoryName=secret, policyText=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Sid": "b-pulls", "Effect": "Allow",
                                                "Principal": {"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"},
                                                "Action": PULL}]}))
    time.sleep(CACHE)
    assert_mounted(b_user.v2(), mine, digest, data, frm=secret)


# =============================================================================================
# ECR Public: a registry of its own
# =============================================================================================
def test_public_and_private_repositories_never_mount_from_each_other(root):
    pub = root.boto("ecr-public")
    alias = f"public/r{ACCOUNT_ID}"
    p1, p2, p3 = (pub.create_repository(repositoryName=unique(p))["repository"]["repositoryName"]
                  for p in ("pa", "pb", "pc"))
    v2 = root.v2()
    # private -> public: a blob only in a private repository
    secret, digest, data = secret_blob(root)
    assert_refused(v2, f"{alias}/{p1}", digest)
    assert_refused(v2, f"{alias}/{p1}", digest, frm=secret)
    got = pub.batch_check_layer_availability(repositoryName=p1, layerDigests=[digest])
    assert [l["layerAvailability"] for l in got["layers"]] == ["UNAVAILABLE"], got
    # public -> private: a blob only in a public repository
    pdata = os.urandom(1500)
    pdigest = v2.push_blob(f"{alias}/{p2}", pdata)
    mine = create_repo(root.client, unique("mine"))["repositoryName"]
    assert_refused(v2, mine, pdigest)
    assert_refused(v2, mine, pdigest, frm=f"{alias}/{p2}")
    # within the public registry anyone may pull, so its repositories mount from each other
    assert_mounted(v2, f"{alias}/{p3}", pdigest, pdata, frm=f"{alias}/{p2}")
    assert_mounted(v2, f"{alias}/{p1}", pdigest, pdata)


# =============================================================================================
# BLOB_MOUNTING
# =============================================================================================
def test_blob_mounting_setting_turns_mounting_off_and_on(ecr_fresh):
    root = ecr_fresh
    got = root.client.get_account_setting(name="BLOB_MOUNTING")
    assert (got["name"], got["value"]) == ("BLOB_MOUNTING", "ENABLED"), "mounting is on unless the account turns it off"
    src, dst = (create_repo(root.client, unique(p))["repositoryName"] for p in ("src", "dst"))
    v2 = root.v2()
    data = os.urandom(1024)
    digest = v2.push_blob(src, data)
    out = root.cli_json("put-account-setting", "--name", "BLOB_MOUNTING", "--value", "DISABLED")
    assert out == {"name": "BLOB_MOUNTING", "value": "DISABLED"}
    assert root.cli_json("get-account-setting", "--name", "BLOB_MOUNTING")["value"] == "DISABLED"
    assert_refused(v2, dst, digest, frm=src)
    assert_refused(v2, dst, digest)
    expect_error(root.raw.put_account_setting, "ValidationException", name="BLOB_MOUNTING", value="enabled")
    root.client.put_account_setting(name="BLOB_MOUNTING", value="ENABLED")
    assert_mounted(v2, dst, digest, data, frm=src)


def test_allowed_mount_with_skopeo_copy(ecr_fresh, skopeo_ecr, tmp_path):
    """A real client copying between repositories of the registry still works (and mounts)."""
    root = ecr_fresh
    src, dst = (create_repo(root.client, unique(p))["repositoryName"] for p in ("src", "dst"))
    v2 = root.v2()
    config = random_config()
    layer = gzip.compress(os.urandom(4096))  # really gzip, so skopeo keeps it as it is
    v2.push_blob(src, config)
    v2.push_blob(src, layer)
    manifest = make_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
    assert v2.put_manifest(src, "v1", manifest).status_code == 201
    skopeo_ecr.login(root)
    host = root.server.hostport
    skopeo_ecr.copy(f"docker://{host}/{src}:v1", f"docker://{host}/{dst}:v1")
    got = v2.get(f"/v2/{dst}/blobs/{sha256(layer)}")
    assert got.status_code == 200 and got.content == layer, describe(got)


# =============================================================================================
# the ECR door
# =============================================================================================
def test_ecr_door_does_not_reveal_or_link_layers_of_other_repositories(root):
    secret = create_repo(root.client, unique("secret"))["repositoryName"]
    mine = create_repo(root.client, unique("mine"))["repositoryName"]
    v2 = root.v2()
    config, layer = random_config(), os.urandom(900)
    v2.push_blob(secret, config)
    digest = v2.push_blob(secret, layer)
    _, user = new_user(root, inline=[push_pull_policy(mine)])
    for who in (root, user):  # even the root, who may read `secret`, asks about `mine`
        got = who.client.batch_check_layer_availability(repositoryName=mine, layerDigests=[digest, sha256(config)])
        assert {l["layerDigest"]: l["layerAvailability"] for l in got["layers"]} == {
            digest: "UNAVAILABLE", sha256(config): "UNAVAILABLE"}, got
        assert got["failures"] == []
        manifest = make_manifest(descriptor(OCI_CONFIG, config), [descriptor(OCI_LAYER, layer)])
        expect_error(who.client.put_image, "LayersNotFoundException", repositoryName=mine,
                     imageManifest=manifest.decode(), imageTag="foreign")
        up = who.client.initiate_layer_upload(repositoryName=mine)
        assert up["uploadId"]
    # nothing was linked into `mine`
    assert_oci_error(v2.get(f"/v2/{mine}/blobs/{digest}"), 404, "BLOB_UNKNOWN")
    got = root.client.batch_check_layer_availability(repositoryName=secret, layerDigests=[digest])
    assert got["layers"][0]["layerAvailability"] == "AVAILABLE"
    assert got["layers"][0]["layerSize"] == len(layer)
