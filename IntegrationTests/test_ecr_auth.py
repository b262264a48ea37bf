"""Authentication and isolation on both doors of a real `berth serve`.

* The ECR API (POST /, AWS JSON 1.1): SigV4 is required and checked (unsigned, unknown key, wrong
  secret, tampered request, wrong scope, clock skew), then the protocol (bad JSON, unknown operation,
  missing / mistyped parameters). Raw requests are signed with botocore's own SigV4Auth (with a
  given clock where the test needs one) and sent with `requests`, to get past boto3's validation.
* Accounts: a second account made with `berth admin create-account` sees nothing of the first and
  can change nothing of it.
* /v2/: no token, or a bad one -> 401 with a `WWW-Authenticate: Basic` challenge; the
  GetAuthorizationToken password -> 200.

Statuses of the authentication errors are not in botocore's model (they are not modeled shapes);
real ECR answers them with 400 (Coral), some AWS front ends with 403: both are accepted, nothing else.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from berth_helpers import describe, sha256, unique
from ecr_helpers import (ACCOUNT_ID, REGION, TARGET_PREFIX, ECRServer, ECRSession, assert_ecr_error,
                         check_after_test, create_repo, expect_error, image_tags, now_utc, put_api_image,
                         repo_arn)
from ecr_helpers import ecr, ecr_fresh, ecr_server  # noqa: F401 (fixtures)

OTHER_ACCOUNT = "210987654321"
AUTH_STATUSES = (400, 403)
ACCESS_DENIED = "AccessDeniedException"
PARAM_ERRORS = {"InvalidParameterException", "ValidationException"}
TYPE_ERRORS = {"SerializationException", "InvalidParameterException", "ValidationException"}
SIGNATURE_ERRORS = {"InvalidSignatureException", "IncompleteSignatureException"}


@pytest.fixture(scope="module")
def other_account(ecr_server) -> dict:
    """A second account, created with `berth admin create-account` while the server runs."""
    return ecr_server.admin_create_account(OTHER_ACCOUNT)


@pytest.fixture
def other(ecr, other_account) -> ECRSession:
    """The second account's root, on the same server (shares the test's audit)."""
    return ecr.other(other_account["AccessKeyId"], other_account["SecretAccessKey"])


# =============================================================================================
# SigV4 on the ECR API
# =============================================================================================
def test_signed_raw_request_is_accepted(ecr):
    ans = ecr.signed("DescribeRegistry", {})
    assert ans.status == 200, str(ans)
    assert ans.headers.get("content-type", "").startswith("application/x-amz-json-1.1"), str(ans)
    assert ans.json()["registryId"] == ACCOUNT_ID
    # the SDK and the CLI agree
    assert ecr.client.describe_registry()["registryId"] == ACCOUNT_ID
    assert ecr.cli_json("describe-registry")["registryId"] == ACCOUNT_ID


@pytest.mark.parametrize("operation, body", [
    ("DescribeRepositories", {}),
    ("GetAuthorizationToken", {}),
    ("CreateRepository", {"repositoryName": "unsigned-create"}),
    ("DescribeRegistry", b"{ not even json"),  # authentication comes before parsing
])
def test_unsigned_request(ecr, operation, body):
    ans = ecr.signed(operation, body, sign=False)
    assert_ecr_error(ans, "MissingAuthenticationTokenException", AUTH_STATUSES)
    expect_error(ecr.client.describe_repositories, "RepositoryNotFoundException",
                 repositoryNames=["unsigned-create"])


def test_unknown_access_key(ecr):
    stranger = ecr.other("AKIAUNKNOWNKEY000000", "x" * 40)
    e = expect_error(stranger.client.describe_repositories, "UnrecognizedClientException")
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] in AUTH_STATUSES
    assert_ecr_error(ecr.signed("DescribeRegistry", {}, access_key="AKIAUNKNOWNKEY000000"),
                     "UnrecognizedClientException", AUTH_STATUSES)
    p = stranger.cli("describe-repositories", check=False)
    assert p.returncode != 0 and b"UnrecognizedClientException" in p.stderr, p.stderr[-800:]


def test_wrong_secret(ecr):
    liar = ecr.other(ecr.access_key, ecr.secret_key[:-1] + ("A" if ecr.secret_key[-1] != "A" else "B"))
    e = expect_error(liar.client.describe_repositories, "InvalidSignatureException")
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] in AUTH_STATUSES
    p = liar.cli("describe-repositories", check=False)
    assert p.returncode != 0 and b"InvalidSignatureException" in p.stderr, p.stderr[-800:]
    # nothing happens on a bad signature
    name = unique("bad-sig")
    expect_error(liar.client.create_repository, "InvalidSignatureException", repositoryName=name)
    expect_error(ecr.client.describe_repositories, "RepositoryNotFoundException", repositoryNames=[name])


def test_tampered_request(ecr):
    name = unique("tamper")
    # the body changed after signing
    ans = ecr.signed("CreateRepository", {"repositoryName": name},
                     send_body=json.dumps({"repositoryName": name + "x"}).encode())
    assert_ecr_error(ans, "InvalidSignatureException", AUTH_STATUSES)
    # the (signed) X-Amz-Target changed after signing
    ans = ecr.signed("DescribeRepositories", {"repositoryNames": [name]},
                     after_signing={"X-Amz-Target": f"{TARGET_PREFIX}.DeleteRepository"})
    assert_ecr_error(ans, "InvalidSignatureException", AUTH_STATUSES)
    # a signed header added after signing is ignored, but a signed one changed is not: X-Amz-Date
    later = (now_utc() + dt.timedelta(seconds=30)).strftime("%Y%m%dT%H%M%SZ")
    ans = ecr.signed("DescribeRegistry", {}, after_signing={"X-Amz-Date": later})
    assert_ecr_error(ans, "InvalidSignatureException", AUTH_STATUSES)
    ans = ecr.signed("DescribeRegistry", {}, after_signing={"X-Berth-Unsigned": "1"})
    assert ans.status == 200, str(ans)
    expect_error(ecr.client.describe_repositories, "RepositoryNotFoundException",
                 repositoryNames=[name, name + "x"])


def test_signature_expired(ecr):
    when = now_utc() - dt.timedelta(minutes=20)
    ans = ecr.signed("DescribeRepositories", {}, when=when)
    body = assert_ecr_error(ans, "InvalidSignatureException", AUTH_STATUSES)
    assert "Signature expired" in body["message"], body


def test_signature_not_yet_current(ecr):
    when = now_utc() + dt.timedelta(minutes=20)
    ans = ecr.signed("DescribeRepositories", {}, when=when)
    body = assert_ecr_error(ans, "InvalidSignatureException", AUTH_STATUSES)
    assert "Signature not yet current" in body["message"], body


def test_small_clock_skew_is_accepted(ecr):
    for minutes in (-3, 3):
        ans = ecr.signed("DescribeRegistry", {}, when=now_utc() + dt.timedelta(minutes=minutes))
        assert ans.status == 200, f"skew {minutes} min: {ans}"


@pytest.mark.parametrize("scope", [{"region": "eu-west-1"}, {"service": "s3"}])
def test_wrong_credential_scope(ecr, scope):
    ans = ecr.signed("DescribeRegistry", {}, **scope)
    assert_ecr_error(ans, SIGNATURE_ERRORS, AUTH_STATUSES)


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA256 garbage",
    f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/{REGION}/ecr/aws4_request",
    f"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20250101/{REGION}/ecr/aws4_request, "
    f"SignedHeaders=host;x-amz-date",
])
def test_malformed_authorization_header(ecr, authorization):
    ans = ecr.signed("DescribeRegistry", {}, after_signing={"Authorization": authorization})
    assert_ecr_error(ans, SIGNATURE_ERRORS, AUTH_STATUSES)


def test_missing_signed_date_header(ecr):
    ans = ecr.signed("DescribeRegistry", {}, after_signing={"X-Amz-Date": None})
    assert_ecr_error(ans, SIGNATURE_ERRORS, AUTH_STATUSES)


# =============================================================================================
# the JSON 1.1 protocol, on signed requests
# =============================================================================================
@pytest.mark.parametrize("body", [b"{", b"not json", b"{\"repositoryNames\": [\"a\",]}", b"[]", b"\"str\"",
                                  b"\xff\xfe\x00garbage"])
def test_malformed_json_body(ecr, body):
    ans = ecr.signed("DescribeRepositories", body)
    assert_ecr_error(ans, "SerializationException", 400)


@pytest.mark.parametrize("target", [
    f"{TARGET_PREFIX}.NoSuchOperation",
    f"{TARGET_PREFIX}.describeRepositories",       # operation names are case-sensitive
    "DynamoDB_20120810.ListTables",                # another service's prefix
    f"{TARGET_PREFIX}.",
    None,                                          # no X-Amz-Target at all
])
def test_unknown_operation(ecr, target):
    if target is None:
        ans = ecr.signed(None, {})
    else:
        ans = ecr.signed(None, {}, target=target)
    assert_ecr_error(ans, "UnknownOperationException", 400)


@pytest.mark.parametrize("operation, body", [
    ("CreateRepository", {}),
    ("DeleteRepository", {}),
    ("PutImage", {"repositoryName": "some-repo"}),
    ("BatchGetImage", {"repositoryName": "some-repo"}),
    ("UploadLayerPart", {"repositoryName": "some-repo", "uploadId": "0b7e1e64-1111-4c2f-9a53-5a6d7c8e9f00",
                         "partFirstByte": 0, "partLastByte": 0}),
    ("TagResource", {"resourceArn": repo_arn("some-repo")}),
    ("GetAccountSetting", {}),
])
def test_missing_required_parameter(ecr, operation, body):
    ans = ecr.signed(operation, body)
    assert_ecr_error(ans, PARAM_ERRORS, 400)


@pytest.mark.parametrize("operation, body", [
    ("CreateRepository", {"repositoryName": 42}),
    ("CreateRepository", {"repositoryName": ["a", "b"]}),
    ("CreateRepository", {"repositoryName": unique("typ"), "imageScanningConfiguration": {"scanOnPush": "yes"}}),
    ("CreateRepository", {"repositoryName": unique("typ"), "tags": {"Key": "a", "Value": "b"}}),
    ("DescribeRepositories", {"maxResults": "ten"}),
    ("DescribeRepositories", {"repositoryNames": "not-a-list"}),
    ("DeleteRepository", {"repositoryName": "some-repo", "force": "yes"}),
    ("UploadLayerPart", {"repositoryName": "some-repo", "uploadId": "0b7e1e64-1111-4c2f-9a53-5a6d7c8e9f00",
                         "partFirstByte": 0, "partLastByte": 3, "layerPartBlob": "!!! not base64 !!!"}),
    ("UploadLayerPart", {"repositoryName": "some-repo", "uploadId": "0b7e1e64-1111-4c2f-9a53-5a6d7c8e9f00",
                         "partFirstByte": -1, "partLastByte": 3, "layerPartBlob": "AAAA"}),
])
def test_wrong_parameter_types(ecr, operation, body):
    ans = ecr.signed(operation, body)
    assert_ecr_error(ans, TYPE_ERRORS, 400)


# =============================================================================================
# accounts
# =============================================================================================
def test_second_account_from_admin(other, other_account):
    assert other_account["AccountId"] == OTHER_ACCOUNT
    assert other_account["AccessKeyId"] != other.server.root_credentials[0]
    assert other.client.describe_registry()["registryId"] == OTHER_ACCOUNT
    name = unique("b")
    repo = other.client.create_repository(repositoryName=name)["repository"]
    assert repo["registryId"] == OTHER_ACCOUNT
    assert repo["repositoryArn"] == repo_arn(name, account=OTHER_ACCOUNT)
    assert repo["repositoryUri"].endswith("/" + name)
    token = other.authorization()
    assert base64.b64decode(token["authorizationToken"]).decode().startswith("AWS:")


def test_other_account_cannot_see_repositories(ecr, other):
    name = create_repo(ecr.client, tags=[{"Key": "owner", "Value": "a"}])["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    c = other.client
    # its own registry: the repository is not there
    listed = {r["repositoryName"] for p in c.get_paginator("describe_repositories").paginate()
              for r in p["repositories"]}
    assert name not in listed
    expect_error(c.describe_repositories, "RepositoryNotFoundException", repositoryNames=[name])
    expect_error(c.list_images, "RepositoryNotFoundException", repositoryName=name)
    # the first account's registry: denied
    a = {"registryId": ACCOUNT_ID}
    for call, params in [
        (c.describe_repositories, {"repositoryNames": [name]}),
        (c.describe_repositories, {}),
        (c.list_images, {"repositoryName": name}),
        (c.describe_images, {"repositoryName": name}),
        (c.batch_get_image, {"repositoryName": name, "imageIds": [{"imageTag": "v1"}]}),
        (c.batch_check_layer_availability, {"repositoryName": name, "layerDigests": img.layer_digests}),
        (c.get_download_url_for_layer, {"repositoryName": name, "layerDigest": img.layer_digests[0]}),
        (c.list_image_referrers, {"repositoryName": name, "subjectId": {"imageDigest": img.digest}}),
    ]:
        e = expect_error(call, ACCESS_DENIED, **a, **params)
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] in AUTH_STATUSES
    e = expect_error(c.list_tags_for_resource, ACCESS_DENIED, resourceArn=repo_arn(name))
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] in AUTH_STATUSES
    # a name that does not exist in the first account is denied the same way (no existence oracle)
    expect_error(c.describe_images, ACCESS_DENIED, repositoryName=unique("absent"), **a)


def test_other_account_cannot_change_repositories(ecr, other):
    name = create_repo(ecr.client, tags=[{"Key": "owner", "Value": "a"}])["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    c = other.client
    a = {"registryId": ACCOUNT_ID}
    mine = put_api_image(other.client, create_repo(other.client)["repositoryName"])  # a manifest B can name
    for call, params in [
        (c.delete_repository, {"repositoryName": name, "force": True}),
        (c.batch_delete_image, {"repositoryName": name, "imageIds": [{"imageTag": "v1"}]}),
        (c.put_image, {"repositoryName": name, "imageManifest": img.manifest_text, "imageTag": "v2"}),
        (c.put_image, {"repositoryName": name, "imageManifest": mine.manifest_text, "imageTag": "v1"}),
        (c.put_image_tag_mutability, {"repositoryName": name, "imageTagMutability": "IMMUTABLE"}),
        (c.initiate_layer_upload, {"repositoryName": name}),
        (c.create_repository, {"repositoryName": unique("intruder")}),
    ]:
        e = expect_error(call, ACCESS_DENIED, **a, **params)
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] in AUTH_STATUSES
    expect_error(c.tag_resource, ACCESS_DENIED, resourceArn=repo_arn(name), tags=[{"Key": "owner", "Value": "b"}])
    expect_error(c.untag_resource, ACCESS_DENIED, resourceArn=repo_arn(name), tagKeys=["owner"])
    # nothing changed
    repo = ecr.client.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"
    assert image_tags(ecr.client, name, img.digest) == {"v1"}
    assert [i["imageDigest"] for i in ecr.client.list_images(repositoryName=name)["imageIds"]] == [img.digest]
    tags = ecr.client.list_tags_for_resource(resourceArn=repo_arn(name))["tags"]
    assert tags == [{"Key": "owner", "Value": "a"}]


def test_same_name_in_two_accounts(ecr, other):
    name = unique("both")
    a_repo = create_repo(ecr.client, name)
    b_repo = create_repo(other.client, name)
    assert a_repo["repositoryArn"] == repo_arn(name, ACCOUNT_ID)
    assert b_repo["repositoryArn"] == repo_arn(name, OTHER_ACCOUNT)
    a_img = put_api_image(ecr.client, name, tag="v1")
    b_img = put_api_image(other.client, name, tag="v1")
    assert [i["imageDigest"] for i in ecr.client.list_images(repositoryName=name)["imageIds"]] == [a_img.digest]
    assert [i["imageDigest"] for i in other.client.list_images(repositoryName=name)["imageIds"]] == [b_img.digest]
    other.client.delete_repository(repositoryName=name, force=True)
    assert image_tags(ecr.client, name, a_img.digest) == {"v1"}


def test_other_account_token_on_v2(ecr, other):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    mine = ecr.v2()
    r = mine.get_manifest(name, "v1")
    assert r.status_code == 200, describe(r)
    theirs = other.v2()
    r = theirs.get("/v2/")
    assert r.status_code == 200, f"the other account's valid token on /v2/: {describe(r)}"
    # reading the first account's repository: refused or not found, never served
    for path in (f"/v2/{name}/manifests/v1", f"/v2/{name}/manifests/{img.digest}",
                 f"/v2/{name}/blobs/{img.layer_digests[0]}", f"/v2/{name}/tags/list"):
        r = theirs.get(path)
        assert r.status_code in (401, 403, 404), f"another account read {path}: {describe(r)}"
    r = theirs.delete(f"/v2/{name}/manifests/{img.digest}")
    assert r.status_code in (401, 403, 404, 405), describe(r)
    # pushing the same name with the other token: refused, or it lands in the other account's own
    # registry; the first account's tag never moves
    r = theirs.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
    assert r.status_code in (202, 401, 403, 404), describe(r)
    if r.status_code == 202:
        pushed = theirs.push_image(name, tag="v1")
        assert image_tags(other.client, name, pushed.digest) == {"v1"}
    assert image_tags(ecr.client, name, img.digest) == {"v1"}
    r = mine.get_manifest(name, "v1")
    assert r.status_code == 200 and r.content == img.manifest, describe(r)


def test_create_account_while_stopped(berth_bin, tmp_path):
    srv = ECRServer(berth_bin, tmp_path / "berth")
    srv.start()
    root = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
    sessions = [root]
    try:
        name = create_repo(root.client)["repositoryName"]
        srv.stop()
        third = srv.admin_create_account("333333333333")
        srv.start()
        s3 = root.other(third["AccessKeyId"], third["SecretAccessKey"])
        assert s3.client.describe_registry()["registryId"] == "333333333333"
        assert s3.client.describe_repositories()["repositories"] == []
        expect_error(s3.client.describe_repositories, ACCESS_DENIED, registryId=ACCOUNT_ID)
        repos = root.client.describe_repositories(repositoryNames=[name])["repositories"]
        assert [r["repositoryName"] for r in repos] == [name]
        check_after_test(srv, sessions)
    finally:
        srv.dispose()


# =============================================================================================
# /v2/ registry tokens
# =============================================================================================
def _assert_basic_challenge(r):
    assert r.status_code == 401, describe(r)
    challenge = r.headers.get("WWW-Authenticate", "")
    assert challenge.lower().startswith("basic"), f"WWW-Authenticate {challenge!r}: {describe(r)}"
    assert "realm=" in challenge, f"WWW-Authenticate {challenge!r} has no realm"


def test_v2_requires_a_token(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    anon = ecr.v2_anonymous()
    _assert_basic_challenge(anon.get("/v2/"))
    _assert_basic_challenge(anon.get(f"/v2/{name}/manifests/v1"))       # pulls need a token too
    _assert_basic_challenge(anon.head(f"/v2/{name}/manifests/v1"))
    _assert_basic_challenge(anon.get(f"/v2/{name}/blobs/{img.layer_digests[0]}"))
    _assert_basic_challenge(anon.get(f"/v2/{name}/tags/list"))
    _assert_basic_challenge(anon.get("/v2/_catalog"))
    _assert_basic_challenge(anon.post(f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"}))
    _assert_basic_challenge(anon.put(f"/v2/{name}/manifests/v2", data=img.manifest,
                                     headers={"Content-Type": img.media_type}))
    _assert_basic_challenge(anon.delete(f"/v2/{name}/manifests/{img.digest}"))
    assert image_tags(ecr.client, name, img.digest) == {"v1"}


def test_v2_rejects_bad_tokens(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    put_api_image(ecr.client, name, tag="v1")
    good = ecr.registry_password()
    flipped = good[:-1] + ("A" if good[-1] != "A" else "B")
    for user, password in [("AWS", "garbage"), ("AWS", flipped), ("AWS", good[: len(good) // 2]),
                           ("AWS", ""), ("bob", good)]:
        c = ecr.v2(password, user=user)
        _assert_basic_challenge(c.get("/v2/"))
        _assert_basic_challenge(c.get(f"/v2/{name}/manifests/v1"))
    anon = ecr.v2_anonymous()
    for header in ("Basic !!!notbase64!!!", "Basic " + base64.b64encode(b"no-colon").decode(),
                   "Basic", "Negotiate abc"):
        r = anon.get("/v2/", headers={"Authorization": header})
        _assert_basic_challenge(r)
    # the SigV4 secret is not a registry password
    _assert_basic_challenge(ecr.v2(ecr.secret_key).get("/v2/"))


def test_v2_accepts_a_valid_token(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    c = ecr.v2()
    r = c.get("/v2/")
    assert r.status_code == 200, describe(r)
    r = c.get_manifest(name, "v1")
    assert r.status_code == 200 and r.content == img.manifest, describe(r)
    r = c.get(f"/v2/{name}/blobs/{img.layer_digests[0]}")
    assert r.status_code == 200 and sha256(r.content) == img.layer_digests[0], describe(r)
    # a token pushes as well
    pushed = c.push_image(name, tag="v2")
    assert image_tags(ecr.client, name, pushed.digest) == {"v2"}
    # two tokens of the same principal both work
    assert ecr.v2().get("/v2/").status_code == 200


def test_rotating_the_root_key_revokes_the_old_key_and_its_tokens(ecr_fresh):
    """`berth admin create-root-key --deactivate-others`, run against a live server, ends the old key's
    API access and every registry token issued with it on the next request (after the 1 s key cache)."""
    import json as _json
    import subprocess as _sp
    import time as _time

    srv = ecr_fresh.server
    name = create_repo(ecr_fresh.client)["repositoryName"]
    old_password = ecr_fresh.registry_password()
    assert ecr_fresh.v2(old_password).get(f"/v2/{name}/tags/list").status_code == 200
    cmd = [str(srv.binary), "admin", "create-root-key", srv.account_id, "--deactivate-others",
           "--data-dir", str(srv.data_dir)]
    p = _sp.run(cmd, capture_output=True, timeout=60, stdin=_sp.DEVNULL, env=srv.process_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    new = _json.loads(p.stdout.decode().strip().splitlines()[-1])
    _time.sleep(1.5)
    anon = ecr_fresh.v2(old_password)
    r = anon.get(f"/v2/{name}/tags/list")
    assert r.status_code == 401, f"a token of a deactivated key still works: {r.status_code}"
    expect_error(lambda **kw: ecr_fresh.client.describe_repositories(**kw), ["UnrecognizedClientException"])
    fresh = ecr_fresh.other(new["AccessKeyId"], new["SecretAccessKey"])
    assert [x["repositoryName"] for x in fresh.client.describe_repositories()["repositories"]] == [name]
    assert fresh.v2().get(f"/v2/{name}/tags/list").status_code == 200
