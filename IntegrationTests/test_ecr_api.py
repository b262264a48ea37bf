"""The Amazon ECR control-plane API (AWS JSON 1.1 on POST /) driven with boto3 and the aws CLI.

Names, shapes, enums, limits and error `__type`s come from botocore's model
(`botocore/data/ecr/2015-09-21/service-2.json`); semantics the model does not carry come from the
ECR API reference. Every answer is audited (ecr_helpers.Audit): a 5xx, an error without `__type` /
`message`, a wrong content type, or a modeled error with a status other than 400 fails the test.

Cross-door tests: an image pushed with skopeo over /v2/ is seen by DescribeImages; one put with the
layer-upload operations + PutImage is pulled by skopeo; tag immutability holds on both doors.
"""

from __future__ import annotations

import base64
import os
import time

import pytest
import requests

import berth_helpers as bh
from berth_helpers import (DOCKER_CONFIG, DOCKER_MANIFEST, EMPTY_JSON, OCI_CONFIG, OCI_EMPTY, OCI_INDEX,
                           OCI_LAYER, OCI_MANIFEST, describe, sha256, unique)
from ecr_helpers import (ACCEPT_ALL, ACCOUNT_ID, MIN_PART, REGION, UPLOAD_ID_RE, assert_recent, build_image, create_repo, ensure_layer, expect_error, image_tags,
                         list_all_image_ids, now_utc, put_api_image, repo_arn, upload_layer,
                         write_oci_layout)
from ecr_helpers import _boto_session
from ecr_helpers import aws_cli, ecr, ecr_fresh, ecr_server, skopeo_ecr, skopeo_path  # noqa: F401 (fixtures)

IPE = "InvalidParameterException"
RNF = "RepositoryNotFoundException"
VALIDATION = {IPE, "ValidationException"}


def _tags_dict(tags) -> dict:
    return {t["Key"]: t["Value"] for t in tags}


# =============================================================================================
# CreateRepository
# =============================================================================================
def test_create_repository_defaults(ecr):
    name = unique("team") + "/" + unique("app")
    repo = ecr.client.create_repository(repositoryName=name)["repository"]
    assert repo["repositoryName"] == name
    assert repo["registryId"] == ACCOUNT_ID
    assert repo["repositoryArn"] == repo_arn(name)
    assert repo["repositoryUri"].endswith("/" + name), repo["repositoryUri"]
    assert "://" not in repo["repositoryUri"], "repositoryUri is host/name, without a scheme"
    assert_recent(repo["createdAt"], "createdAt")
    assert repo["imageTagMutability"] == "MUTABLE"  # "If this parameter is omitted, the default ... MUTABLE"
    assert repo.get("imageScanningConfiguration", {}).get("scanOnPush") is False
    assert repo["encryptionConfiguration"]["encryptionType"] == "AES256"
    # DescribeRepositories returns the same repository
    got = ecr.client.describe_repositories(repositoryNames=[name])["repositories"]
    assert len(got) == 1
    for k in ("repositoryName", "registryId", "repositoryArn", "repositoryUri", "imageTagMutability",
              "createdAt"):
        assert got[0][k] == repo[k], k


def test_create_repository_all_settings(ecr):
    name = unique("full")
    # The key must exist and be enabled (an unknown key is a KmsException: test_encryption.py).
    kms = _boto_session().client("kms", endpoint_url=ecr.server.url, region_name=REGION,
                                 aws_access_key_id=ecr.access_key, aws_secret_access_key=ecr.secret_key)
    kms_key = kms.create_key()["KeyMetadata"]["Arn"]
    repo = ecr.client.create_repository(
        repositoryName=name, imageTagMutability="IMMUTABLE",
        imageScanningConfiguration={"scanOnPush": True},
        encryptionConfiguration={"encryptionType": "KMS", "kmsKey": kms_key},
        tags=[{"Key": "team", "Value": "infra"}, {"Key": "cost-center", "Value": "42"}],
    )["repository"]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    assert repo["encryptionConfiguration"].get("kmsKey") == kms_key
    got = ecr.client.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert got["imageTagMutability"] == "IMMUTABLE"
    assert got["imageScanningConfiguration"]["scanOnPush"] is True
    assert got["encryptionConfiguration"] == repo["encryptionConfiguration"]
    tags = ecr.client.list_tags_for_resource(resourceArn=repo_arn(name))["tags"]
    assert _tags_dict(tags) == {"team": "infra", "cost-center": "42"}


def test_create_repository_with_cli(ecr):
    name = unique("cli")
    out = ecr.cli_json("create-repository", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE",
                       "--image-scanning-configuration", "scanOnPush=true")
    repo = out["repository"]
    assert repo["repositoryName"] == name
    assert repo["repositoryArn"] == repo_arn(name)
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    # createdAt is an epoch number on the wire; the CLI prints it as a timestamp it could parse
    assert repo["createdAt"], repo
    out = ecr.cli_json("describe-repositories", "--repository-names", name)
    assert [r["repositoryName"] for r in out["repositories"]] == [name]
    # a service error: exit code != 0 and the __type on stderr
    p = ecr.cli("create-repository", "--repository-name", name, check=False)
    assert p.returncode != 0
    assert b"RepositoryAlreadyExistsException" in p.stderr, p.stderr[-1000:]


@pytest.mark.parametrize("mutability, filters", [
    ("IMMUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "latest"},
                                  {"filterType": "WILDCARD", "filter": "dev-*"}]),
    ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "release-*"}]),
])
def test_create_repository_with_exclusion_filters(ecr, mutability, filters):
    name = unique("excl")
    repo = ecr.client.create_repository(repositoryName=name, imageTagMutability=mutability,
                                        imageTagMutabilityExclusionFilters=filters)["repository"]
    assert repo["imageTagMutability"] == mutability
    assert repo["imageTagMutabilityExclusionFilters"] == filters
    got = ecr.client.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert got["imageTagMutability"] == mutability
    assert got["imageTagMutabilityExclusionFilters"] == filters


def test_create_repository_exclusion_filters_need_an_exclusion_mode(ecr):
    # *_WITH_EXCLUSION without filters, and filters with a plain MUTABLE / IMMUTABLE, are refused
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("x"),
                 imageTagMutability="IMMUTABLE_WITH_EXCLUSION")
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("x"), imageTagMutability="MUTABLE",
                 imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"}])
    # the filter value grammar ^[0-9a-zA-Z._*-]{1,128}$ and filterType WILDCARD
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("x"),
                 imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                 imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "bad filter!"}])
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("x"),
                 imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                 imageTagMutabilityExclusionFilters=[{"filterType": "REGEX", "filter": "latest"}])
    # at most 5 filters
    six = [{"filterType": "WILDCARD", "filter": f"f{i}-*"} for i in range(6)]
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("x"),
                 imageTagMutability="IMMUTABLE_WITH_EXCLUSION", imageTagMutabilityExclusionFilters=six)


def test_create_repository_already_exists(ecr):
    name = unique("dup")
    create_repo(ecr.client, name)
    e = expect_error(ecr.client.create_repository, "RepositoryAlreadyExistsException", repositoryName=name)
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert name in e.response["Error"]["Message"]


@pytest.mark.parametrize("name", [
    "a",                      # shorter than 2
    "x" * 257,                # longer than 256
    "Upper",                  # lowercase only
    "ns/Upper",
    "-lead",
    "trail-",
    "trail.",
    "a..b",
    "a___b",                  # separators: . _ __ -+
    "a_.b",
    "/abs",
    "ends/",
    "dou//ble",
    "has space",
    "colon:tag",
    "at@sign",
    "",
])
def test_create_repository_invalid_names(ecr, name):
    expect_error(ecr.raw.create_repository, IPE, repositoryName=name)
    # and nothing was created
    expect_error(ecr.raw.describe_repositories, {RNF, IPE}, repositoryNames=[name])


@pytest.mark.parametrize("name", [
    "ab", "a-b", "a--b", "a__b", "a_b", "a.b", "1abc", "ns/sub/leaf", "x" * 256,
    "a" * 100 + "/" + "b" * 155,
])
def test_create_repository_valid_names(ecr, name):
    repo = ecr.client.create_repository(repositoryName=name)["repository"]
    assert repo["repositoryName"] == name
    assert repo["repositoryArn"] == repo_arn(name)
    ecr.client.delete_repository(repositoryName=name)


def test_create_repository_bad_enums(ecr):
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("e"), imageTagMutability="SOMETIMES")
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("e"),
                 encryptionConfiguration={"encryptionType": "ROT13"})
    # AES256 takes no KMS key
    expect_error(ecr.raw.create_repository, IPE, repositoryName=unique("e"),
                 encryptionConfiguration={"encryptionType": "AES256",
                                          "kmsKey": f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/abc"})


def test_create_repository_registry_id(ecr):
    name = unique("rid")
    repo = ecr.client.create_repository(registryId=ACCOUNT_ID, repositoryName=name)["repository"]
    assert repo["registryId"] == ACCOUNT_ID
    expect_error(ecr.raw.create_repository, IPE, registryId="12345", repositoryName=unique("rid"))


def test_create_repository_too_many_tags(ecr):
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]  # ECR's limit is 50 tags per resource
    name = unique("tmt")
    expect_error(ecr.client.create_repository, "TooManyTagsException", repositoryName=name, tags=tags)
    expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[name])


# =============================================================================================
# DescribeRepositories
# =============================================================================================
def test_describe_repositories_by_name(ecr):
    names = sorted(unique("dr") for _ in range(3))
    for n in names:
        create_repo(ecr.client, n)
    got = ecr.client.describe_repositories(repositoryNames=names)["repositories"]
    assert sorted(r["repositoryName"] for r in got) == names
    got = ecr.client.describe_repositories(registryId=ACCOUNT_ID, repositoryNames=names[:1])["repositories"]
    assert [r["repositoryName"] for r in got] == names[:1]
    all_names = {r["repositoryName"] for p in ecr.client.get_paginator("describe_repositories").paginate()
                 for r in p["repositories"]}
    assert set(names) <= all_names


def test_describe_repositories_missing(ecr):
    present = create_repo(ecr.client)["repositoryName"]
    missing = unique("nope")
    e = expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[missing])
    assert missing in e.response["Error"]["Message"]
    # one missing name fails the whole call
    expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[present, missing])


def test_describe_repositories_pagination(ecr_fresh):
    ecr = ecr_fresh
    names = sorted(unique("pg") for _ in range(7))
    for n in names:
        create_repo(ecr.client, n)
    # by hand: maxResults / nextToken
    seen, token, pages = [], None, 0
    while True:
        params = {"maxResults": 2}
        if token:
            params["nextToken"] = token
        r = ecr.client.describe_repositories(**params)
        assert len(r["repositories"]) <= 2
        seen += [x["repositoryName"] for x in r["repositories"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
        assert pages < 20, "pagination does not end"
    assert sorted(seen) == names, "every repository exactly once"
    assert pages >= 4
    # the boto3 paginator
    pager = ecr.client.get_paginator("describe_repositories")
    got = [x["repositoryName"] for p in pager.paginate(PaginationConfig={"PageSize": 3})
           for x in p["repositories"]]
    assert sorted(got) == names
    got = pager.paginate(PaginationConfig={"MaxItems": 4, "PageSize": 3}).build_full_result()
    assert len(got["repositories"]) == 4 and got.get("NextToken")
    # without maxResults: all of them in one page (default page size is 100)
    r = ecr.client.describe_repositories()
    assert sorted(x["repositoryName"] for x in r["repositories"]) == names
    assert not r.get("nextToken")
    # the CLI paginates by itself
    out = ecr.cli_json("describe-repositories", "--page-size", "2")
    assert sorted(x["repositoryName"] for x in out["repositories"]) == names


def test_describe_repositories_default_page_is_100(ecr_fresh):
    """"If maxResults is not used, DescribeRepositories returns up to 100 results and a nextToken
    value" (ECR API reference). 105 repositories used to come back in one page."""
    ecr = ecr_fresh
    names = sorted(unique("p") for _ in range(105))
    for n in names:
        ecr.client.create_repository(repositoryName=n)
    first = ecr.client.describe_repositories()
    assert len(first["repositories"]) == 100 and first.get("nextToken"), len(first["repositories"])
    second = ecr.client.describe_repositories(nextToken=first["nextToken"])
    assert len(second["repositories"]) == 5 and not second.get("nextToken")
    got = sorted(r["repositoryName"] for r in first["repositories"] + second["repositories"])
    assert got == names


def test_error_messages_are_awss(ecr):
    """Texts quoted from real ECR answers (see ECRError's message table)."""
    name = create_repo(ecr.client)["repositoryName"]
    e = expect_error(ecr.raw.describe_repositories, RNF, repositoryNames=["nope-" + name])
    assert e.response["Error"]["Message"] == (
        f"The repository with name 'nope-{name}' does not exist in the registry with id '{ACCOUNT_ID}'")
    e = expect_error(ecr.raw.create_repository, "RepositoryAlreadyExistsException", repositoryName=name)
    assert e.response["Error"]["Message"] == f"The repository with name '{name}' already exists in the registry with id '{ACCOUNT_ID}'"
    e = expect_error(ecr.raw.get_repository_policy, "RepositoryPolicyNotFoundException", repositoryName=name)
    assert e.response["Error"]["Message"] == (
        f"Repository policy does not exist for the repository with name '{name}' in the registry with id '{ACCOUNT_ID}'")
    e = expect_error(ecr.raw.describe_images, "ImageNotFoundException", repositoryName=name, imageIds=[{"imageTag": "nope"}])
    assert e.response["Error"]["Message"] == (
        f"The image with imageId {{imageDigest:'null', imageTag:'nope'}} does not exist within the repository with name "
        f"'{name}' in the registry with id '{ACCOUNT_ID}'")
    img = put_api_image(ecr.client, name, tag="v1")
    e = expect_error(ecr.raw.delete_repository, "RepositoryNotEmptyException", repositoryName=name)
    assert e.response["Error"]["Message"] == (
        f"The repository with name '{name}' in registry with id '{ACCOUNT_ID}' cannot be deleted because it still contains images")
    imm = create_repo(ecr.client, imageTagMutability="IMMUTABLE")["repositoryName"]
    put_api_image(ecr.client, imm, tag="v1")
    other = build_image(imm)
    e = expect_error(ecr.raw.put_image, "ImageTagAlreadyExistsException", repositoryName=imm, imageTag="v1",
                     imageManifest=put_api_image(ecr.client, imm, image=other).manifest.decode())
    assert e.response["Error"]["Message"] == (
        f"The image tag 'v1' already exists in the '{imm}' repository and cannot be overwritten because the tag is immutable.")
    assert img.digest


def test_put_image_tag_over_300_characters(ecr):
    """ImageTag is 1..300 characters in the model: a longer one is InvalidParameterException."""
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name)
    e = expect_error(ecr.raw.put_image, IPE, repositoryName=name, imageTag="t" * 301, imageManifest=img.manifest.decode())
    assert "length less than or equal to 300" in e.response["Error"]["Message"]


def test_describe_repositories_bad_parameters(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    for bad in (0, 1001):
        expect_error(ecr.raw.describe_repositories, IPE, maxResults=bad)
    # maxResults "cannot be used when you specify repositories with repositoryNames"
    expect_error(ecr.raw.describe_repositories, IPE, repositoryNames=[name], maxResults=5)
    expect_error(ecr.raw.describe_repositories, IPE, nextToken="not-a-token-this-server-issued")
    expect_error(ecr.raw.describe_repositories, IPE, repositoryNames=[])
    expect_error(ecr.raw.describe_repositories, IPE, repositoryNames=[unique("n") for _ in range(101)])
    expect_error(ecr.raw.describe_repositories, IPE, registryId="not-digits")


def test_describe_repositories_wire_format(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    ans = ecr.signed("DescribeRepositories", {"repositoryNames": [name]})
    assert ans.status == 200, str(ans)
    assert ans.headers.get("content-type", "").startswith("application/x-amz-json-1.1"), str(ans)
    repo = ans.json()["repositories"][0]
    # JSON 1.1 timestamps are epoch seconds (numbers), not strings
    assert isinstance(repo["createdAt"], (int, float)) and not isinstance(repo["createdAt"], bool), repo
    assert abs(repo["createdAt"] - time.time()) < 120


# =============================================================================================
# DeleteRepository
# =============================================================================================
def test_delete_empty_repository(ecr):
    name = unique("del")
    created = create_repo(ecr.client, name)
    r = ecr.client.delete_repository(repositoryName=name)["repository"]
    assert r["repositoryName"] == name
    assert r["repositoryArn"] == created["repositoryArn"]
    assert r["registryId"] == ACCOUNT_ID
    expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[name])
    expect_error(ecr.client.delete_repository, RNF, repositoryName=name)
    # the name can be used again, for a new, empty repository
    create_repo(ecr.client, name)
    assert ecr.client.list_images(repositoryName=name)["imageIds"] == []


def test_delete_repository_not_empty_needs_force(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    expect_error(ecr.client.delete_repository, "RepositoryNotEmptyException", repositoryName=name)
    expect_error(ecr.client.delete_repository, "RepositoryNotEmptyException", repositoryName=name, force=False)
    assert image_tags(ecr.client, name, img.digest) == {"v1"}  # nothing was lost
    ecr.client.delete_repository(repositoryName=name, force=True)
    expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[name])
    v2 = ecr.v2()
    r = v2.get_manifest(name, "v1")
    assert r.status_code == 404, describe(r)


def test_delete_repository_with_cli_force(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    put_api_image(ecr.client, name, tag="v1")
    out = ecr.cli_json("delete-repository", "--repository-name", name, "--force")
    assert out["repository"]["repositoryName"] == name
    expect_error(ecr.client.describe_repositories, RNF, repositoryNames=[name])


# =============================================================================================
# operations on a repository that does not exist
# =============================================================================================
def test_operations_on_missing_repository(ecr):
    name = unique("ghost")
    digest = sha256(b"nothing")
    c = ecr.client
    expect_error(c.list_images, RNF, repositoryName=name)
    expect_error(c.describe_images, RNF, repositoryName=name)
    expect_error(c.batch_get_image, RNF, repositoryName=name, imageIds=[{"imageTag": "latest"}])
    expect_error(c.batch_delete_image, RNF, repositoryName=name, imageIds=[{"imageTag": "latest"}])
    expect_error(c.batch_check_layer_availability, RNF, repositoryName=name, layerDigests=[digest])
    expect_error(c.get_download_url_for_layer, RNF, repositoryName=name, layerDigest=digest)
    expect_error(c.put_image_tag_mutability, RNF, repositoryName=name, imageTagMutability="IMMUTABLE")
    expect_error(c.delete_repository, RNF, repositoryName=name)
    expect_error(c.list_tags_for_resource, RNF, resourceArn=repo_arn(name))
    expect_error(c.tag_resource, RNF, resourceArn=repo_arn(name), tags=[{"Key": "a", "Value": "b"}])
    expect_error(c.untag_resource, RNF, resourceArn=repo_arn(name), tagKeys=["a"])
    expect_error(c.list_image_referrers, RNF, repositoryName=name, subjectId={"imageDigest": digest})
    # reading does not create it
    expect_error(c.describe_repositories, RNF, repositoryNames=[name])


# =============================================================================================
# InitiateLayerUpload / UploadLayerPart / CompleteLayerUpload / BatchCheckLayerAvailability
# =============================================================================================
def test_layer_upload_single_part(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    data = os.urandom(4096)
    init = ecr.client.initiate_layer_upload(repositoryName=name)
    assert UPLOAD_ID_RE.match(init["uploadId"]), init
    assert isinstance(init.get("partSize"), int) and init["partSize"] > 0, init
    r = ecr.client.upload_layer_part(repositoryName=name, uploadId=init["uploadId"], partFirstByte=0,
                                     partLastByte=len(data) - 1, layerPartBlob=data)
    assert r["lastByteReceived"] == len(data) - 1
    assert r["registryId"] == ACCOUNT_ID and r["repositoryName"] == name and r["uploadId"] == init["uploadId"]
    r = ecr.client.complete_layer_upload(repositoryName=name, uploadId=init["uploadId"],
                                         layerDigests=[sha256(data)])
    assert r["layerDigest"] == sha256(data)
    assert r["registryId"] == ACCOUNT_ID and r["repositoryName"] == name and r["uploadId"] == init["uploadId"]
    avail = ecr.client.batch_check_layer_availability(repositoryName=name, layerDigests=[sha256(data)])
    assert avail.get("failures", []) == []
    assert len(avail["layers"]) == 1
    layer = avail["layers"][0]
    assert layer["layerDigest"] == sha256(data)
    assert layer["layerAvailability"] == "AVAILABLE"
    assert layer["layerSize"] == len(data)
    # the same blob through the other door
    v2 = ecr.v2()
    v2.blob_ok(name, sha256(data), data)
    # the upload is finished: it cannot take more parts
    expect_error(ecr.client.upload_layer_part, "UploadNotFoundException", repositoryName=name,
                 uploadId=init["uploadId"], partFirstByte=len(data), partLastByte=len(data),
                 layerPartBlob=b"x")


def test_layer_upload_multi_part(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    # every part but the last must be at least 5 MiB (LayerPartTooSmallException)
    data = os.urandom(2 * MIN_PART + 1234)
    digest = upload_layer(ecr.client, name, data, part_size=MIN_PART)
    v2 = ecr.v2()
    r = v2.get(f"/v2/{name}/blobs/{digest}")
    assert r.status_code == 200, describe(r)
    assert r.content == data


def test_layer_upload_parts_must_be_in_order(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    n = MIN_PART  # a non-final part must be >= 5 MiB for the upload to complete in the end
    data = os.urandom(n + 300)
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=n - 1,
                                 layerPartBlob=data[:n])
    # a gap
    e = expect_error(ecr.client.upload_layer_part, "InvalidLayerPartException", repositoryName=name,
                     uploadId=uid, partFirstByte=n + 100, partLastByte=n + 299, layerPartBlob=data[n + 100:])
    assert e.response.get("lastValidByteReceived") == n - 1, e.response
    assert e.response.get("uploadId") == uid, e.response
    # an overlap (the start of the first part again)
    expect_error(ecr.client.upload_layer_part, "InvalidLayerPartException", repositoryName=name,
                 uploadId=uid, partFirstByte=0, partLastByte=99, layerPartBlob=data[:100])
    # a range that does not match the part's length
    expect_error(ecr.client.upload_layer_part, "InvalidLayerPartException", repositoryName=name,
                 uploadId=uid, partFirstByte=n, partLastByte=n + 299, layerPartBlob=data[n:n + 100])
    # last < first
    expect_error(ecr.raw.upload_layer_part, {"InvalidLayerPartException", IPE}, repositoryName=name,
                 uploadId=uid, partFirstByte=n, partLastByte=n - 50, layerPartBlob=b"")
    # the upload survived the refusals: the right next part is taken and it completes
    r = ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=n,
                                     partLastByte=n + 299, layerPartBlob=data[n:])
    assert r["lastByteReceived"] == n + 299
    r = ecr.client.complete_layer_upload(repositoryName=name, uploadId=uid, layerDigests=[sha256(data)])
    assert r["layerDigest"] == sha256(data)
    ecr.v2().blob_ok(name, sha256(data), data)


def test_complete_layer_upload_wrong_digest(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    data = os.urandom(500)
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=499,
                                 layerPartBlob=data)
    wrong = sha256(data + b"x")
    expect_error(ecr.client.complete_layer_upload, "InvalidLayerException", repositoryName=name,
                 uploadId=uid, layerDigests=[wrong])
    for d in (wrong, sha256(data)):
        r = ecr.client.batch_check_layer_availability(repositoryName=name, layerDigests=[d])
        assert not any(l.get("layerAvailability") == "AVAILABLE" for l in r.get("layers", [])), r


def test_complete_layer_upload_malformed_digest(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=9,
                                 layerPartBlob=b"0123456789")
    expect_error(ecr.raw.complete_layer_upload, {IPE, "InvalidLayerException"}, repositoryName=name,
                 uploadId=uid, layerDigests=["not-a-digest"])


def test_complete_layer_upload_empty(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    expect_error(ecr.client.complete_layer_upload, "EmptyUploadException", repositoryName=name,
                 uploadId=uid, layerDigests=[sha256(b"")])


def test_complete_layer_upload_small_non_final_part(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    data = os.urandom(2048)
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=0, partLastByte=1023,
                                 layerPartBlob=data[:1024])
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=1024, partLastByte=2047,
                                 layerPartBlob=data[1024:])
    expect_error(ecr.client.complete_layer_upload, "LayerPartTooSmallException", repositoryName=name,
                 uploadId=uid, layerDigests=[sha256(data)])


def test_complete_layer_upload_already_exists(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    data = os.urandom(800)
    upload_layer(ecr.client, name, data)
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    ecr.client.upload_layer_part(repositoryName=name, uploadId=uid, partFirstByte=0,
                                 partLastByte=len(data) - 1, layerPartBlob=data)
    expect_error(ecr.client.complete_layer_upload, "LayerAlreadyExistsException", repositoryName=name,
                 uploadId=uid, layerDigests=[sha256(data)])
    ecr.v2().blob_ok(name, sha256(data), data)  # still there, unharmed


def test_layer_upload_unknown_upload_id(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    other = create_repo(ecr.client)["repositoryName"]
    bogus = "0b7e1e64-1111-4c2f-9a53-5a6d7c8e9f00"
    expect_error(ecr.client.upload_layer_part, "UploadNotFoundException", repositoryName=name, uploadId=bogus,
                 partFirstByte=0, partLastByte=0, layerPartBlob=b"x")
    expect_error(ecr.client.complete_layer_upload, "UploadNotFoundException", repositoryName=name,
                 uploadId=bogus, layerDigests=[sha256(b"x")])
    # an upload belongs to the repository it was started in
    uid = ecr.client.initiate_layer_upload(repositoryName=name)["uploadId"]
    expect_error(ecr.client.upload_layer_part, "UploadNotFoundException", repositoryName=other, uploadId=uid,
                 partFirstByte=0, partLastByte=0, layerPartBlob=b"x")
    # not a UUID at all
    expect_error(ecr.raw.upload_layer_part, {IPE, "UploadNotFoundException"}, repositoryName=name,
                 uploadId="../../etc/passwd", partFirstByte=0, partLastByte=0, layerPartBlob=b"x")


def test_batch_check_layer_availability(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, layer_size=1500)
    unknown = sha256(os.urandom(16))
    r = ecr.client.batch_check_layer_availability(repositoryName=name,
                                                  layerDigests=img.layer_digests + [unknown, "not-a-digest"])
    layers = {l["layerDigest"]: l for l in r.get("layers", [])}
    failures = {f["layerDigest"]: f for f in r.get("failures", [])}
    for d, data in zip(img.layer_digests, img.layers):
        assert layers[d]["layerAvailability"] == "AVAILABLE"
        assert layers[d]["layerSize"] == len(data)
        assert layers[d].get("mediaType") in (None, OCI_LAYER)
    # an unknown digest: a MissingLayerDigest failure, or an UNAVAILABLE layer
    assert (unknown in failures) != (unknown in layers), f"{unknown} must be in exactly one list: {r}"
    if unknown in failures:
        assert failures[unknown]["failureCode"] == "MissingLayerDigest", failures[unknown]
        assert failures[unknown].get("failureReason")
    else:
        assert layers[unknown]["layerAvailability"] == "UNAVAILABLE", r
    assert "not-a-digest" in failures, r
    assert failures["not-a-digest"]["failureCode"] == "InvalidLayerDigest", r
    expect_error(ecr.raw.batch_check_layer_availability, IPE, repositoryName=name, layerDigests=[])


def test_batch_check_layer_availability_digest_over_1000_characters(ecr):
    """BatchedOperationLayerDigest is at most 1000 characters in the model: a longer one is refused as a
    parameter, a malformed one up to that length is a failure of the batch."""
    name = create_repo(ecr.client)["repositoryName"]
    e = expect_error(ecr.raw.batch_check_layer_availability, IPE, repositoryName=name, layerDigests=["sha256:" + "a" * 994])
    assert "length less than or equal to 1000" in e.response["Error"]["Message"]
    r = ecr.client.batch_check_layer_availability(repositoryName=name, layerDigests=["sha256:" + "a" * 993])
    assert [f["failureCode"] for f in r["failures"]] == ["InvalidLayerDigest"], r


# =============================================================================================
# PutImage
# =============================================================================================
@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_put_image_and_batch_get_image(ecr, media_type):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, media_type=media_type)
    put = img.put_response["image"]
    assert put["registryId"] == ACCOUNT_ID
    assert put["imageManifest"] == img.manifest_text
    assert put.get("imageManifestMediaType") == media_type
    for ref in ({"imageTag": "v1"}, {"imageDigest": img.digest}, {"imageTag": "v1", "imageDigest": img.digest}):
        r = ecr.client.batch_get_image(repositoryName=name, imageIds=[ref], acceptedMediaTypes=ACCEPT_ALL)
        assert r.get("failures", []) == [], r["failures"]
        assert len(r["images"]) == 1
        got = r["images"][0]
        assert got["imageManifest"] == img.manifest_text, "BatchGetImage must return the exact manifest bytes"
        assert got["imageId"]["imageDigest"] == img.digest
        assert got["imageManifestMediaType"] == media_type
        assert got["registryId"] == ACCOUNT_ID and got["repositoryName"] == name
    # through /v2/: the same bytes, the same digest
    r = ecr.v2().get_manifest(name, "v1")
    assert r.status_code == 200, describe(r)
    assert r.content == img.manifest
    assert r.headers.get("Docker-Content-Digest") == img.digest
    assert r.headers.get("Content-Type") == media_type


def test_put_image_by_digest_param(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = build_image(name)
    ensure_layer(ecr.client, name, img.config)
    ensure_layer(ecr.client, name, img.layers[0])
    wrong = sha256(img.manifest + b" ")
    expect_error(ecr.client.put_image, "ImageDigestDoesNotMatchException", repositoryName=name,
                 imageManifest=img.manifest_text, imageDigest=wrong, imageTag="v1")
    assert ecr.client.list_images(repositoryName=name)["imageIds"] == []
    r = ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageDigest=img.digest,
                             imageTag="v1")
    assert r["image"]["imageId"] == {"imageDigest": img.digest, "imageTag": "v1"}


def test_put_image_layers_not_found(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = build_image(name, n_layers=2)
    ensure_layer(ecr.client, name, img.config)
    ensure_layer(ecr.client, name, img.layers[0])  # the second layer is never uploaded
    expect_error(ecr.client.put_image, "LayersNotFoundException", repositoryName=name,
                 imageManifest=img.manifest_text, imageTag="v1")
    assert ecr.client.list_images(repositoryName=name)["imageIds"] == []
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageTag": "v1"}])


def test_put_image_already_exists(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    expect_error(ecr.client.put_image, "ImageAlreadyExistsException", repositoryName=name,
                 imageManifest=img.manifest_text, imageTag="v1")
    # untagged, twice
    img2 = put_api_image(ecr.client, name)
    expect_error(ecr.client.put_image, "ImageAlreadyExistsException", repositoryName=name,
                 imageManifest=img2.manifest_text)


def test_put_image_adds_tags_and_moves_mutable_tags(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    one = put_api_image(ecr.client, name, tag="latest")
    ecr.client.put_image(repositoryName=name, imageManifest=one.manifest_text, imageTag="v1")
    assert image_tags(ecr.client, name, one.digest) == {"latest", "v1"}
    two = put_api_image(ecr.client, name, tag="latest")  # a mutable tag moves
    assert image_tags(ecr.client, name, two.digest) == {"latest"}
    assert image_tags(ecr.client, name, one.digest) == {"v1"}
    r = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "latest"}],
                                   acceptedMediaTypes=ACCEPT_ALL)
    assert r["images"][0]["imageId"]["imageDigest"] == two.digest


def test_put_image_untagged(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name)
    assert img.put_response["image"]["imageId"].get("imageTag") is None
    ids = ecr.client.list_images(repositoryName=name, filter={"tagStatus": "UNTAGGED"})["imageIds"]
    assert ids == [{"imageDigest": img.digest}]
    assert image_tags(ecr.client, name, img.digest) == set()


def test_put_image_immutable_tag(ecr):
    name = create_repo(ecr.client, imageTagMutability="IMMUTABLE")["repositoryName"]
    one = put_api_image(ecr.client, name, tag="v1")
    two = build_image(name)
    ensure_layer(ecr.client, name, two.config)
    ensure_layer(ecr.client, name, two.layers[0])
    e = expect_error(ecr.client.put_image, "ImageTagAlreadyExistsException", repositoryName=name,
                     imageManifest=two.manifest_text, imageTag="v1")
    assert "v1" in e.response["Error"]["Message"]
    assert image_tags(ecr.client, name, one.digest) == {"v1"}
    # new tags are fine, on a new image and on the old one
    put_api_image(ecr.client, name, tag="v2", image=two)
    ecr.client.put_image(repositoryName=name, imageManifest=one.manifest_text, imageTag="stable")
    assert image_tags(ecr.client, name, one.digest) == {"v1", "stable"}
    # the same image with the same tag again: nothing changes, and that is an error, not a move
    expect_error(ecr.client.put_image, {"ImageAlreadyExistsException", "ImageTagAlreadyExistsException"},
                 repositoryName=name, imageManifest=one.manifest_text, imageTag="v1")
    # untagging is not overwriting: allowed on an immutable repository
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "stable"}])
    assert r.get("failures", []) == []
    assert image_tags(ecr.client, name, one.digest) == {"v1"}


def test_put_image_mutability_exclusions(ecr):
    imm = create_repo(ecr.client, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                      imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "latest"},
                                                          {"filterType": "WILDCARD", "filter": "dev-*"}]
                      )["repositoryName"]
    mut = create_repo(ecr.client, imageTagMutability="MUTABLE_WITH_EXCLUSION",
                      imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "release-*"}]
                      )["repositoryName"]

    def attempt(repo, tag):
        first = put_api_image(ecr.client, repo, tag=tag)
        second = build_image(repo)
        ensure_layer(ecr.client, repo, second.config)
        ensure_layer(ecr.client, repo, second.layers[0])
        return first, second

    # IMMUTABLE_WITH_EXCLUSION: excluded tags move, the others do not
    for tag in ("latest", "dev-123"):
        first, second = attempt(imm, tag)
        ecr.client.put_image(repositoryName=imm, imageManifest=second.manifest_text, imageTag=tag)
        assert image_tags(ecr.client, imm, second.digest) == {tag}
    first, second = attempt(imm, "v1.0")
    expect_error(ecr.client.put_image, "ImageTagAlreadyExistsException", repositoryName=imm,
                 imageManifest=second.manifest_text, imageTag="v1.0")
    assert image_tags(ecr.client, imm, first.digest) == {"v1.0"}
    # MUTABLE_WITH_EXCLUSION: excluded tags are immutable, the others move
    first, second = attempt(mut, "release-1")
    expect_error(ecr.client.put_image, "ImageTagAlreadyExistsException", repositoryName=mut,
                 imageManifest=second.manifest_text, imageTag="release-1")
    first, second = attempt(mut, "nightly")
    ecr.client.put_image(repositoryName=mut, imageManifest=second.manifest_text, imageTag="nightly")
    assert image_tags(ecr.client, mut, second.digest) == {"nightly"}


def test_put_image_media_type_parameter(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    # a manifest without a mediaType field needs imageManifestMediaType
    img = build_image(name, include_media_type=False)
    ensure_layer(ecr.client, name, img.config)
    ensure_layer(ecr.client, name, img.layers[0])
    expect_error(ecr.raw.put_image, IPE, repositoryName=name, imageManifest=img.manifest_text, imageTag="v1")
    r = ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageTag="v1",
                             imageManifestMediaType=OCI_MANIFEST)
    assert r["image"]["imageManifestMediaType"] == OCI_MANIFEST
    got = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                     acceptedMediaTypes=ACCEPT_ALL)["images"][0]
    assert got["imageManifestMediaType"] == OCI_MANIFEST
    assert got["imageManifest"] == img.manifest_text
    # a parameter that contradicts the manifest's own mediaType field
    third = build_image(name)
    ensure_layer(ecr.client, name, third.config)
    ensure_layer(ecr.client, name, third.layers[0])
    expect_error(ecr.raw.put_image, IPE, repositoryName=name, imageManifest=third.manifest_text,
                 imageTag="v3", imageManifestMediaType=DOCKER_MANIFEST)
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageTag": "v3"}])


@pytest.mark.parametrize("manifest", [
    "not json at all",
    "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\"",  # truncated
    "[]",
    "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.oci.image.manifest.v1+json\", \"config\": 7}",
])
def test_put_image_invalid_manifest(ecr, manifest):
    name = create_repo(ecr.client)["repositoryName"]
    expect_error(ecr.raw.put_image, IPE, repositoryName=name, imageManifest=manifest, imageTag="v1")
    assert ecr.client.list_images(repositoryName=name)["imageIds"] == []


def test_put_image_invalid_tag(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = build_image(name)
    ensure_layer(ecr.client, name, img.config)
    ensure_layer(ecr.client, name, img.layers[0])
    for bad in ("bad tag", "x" * 301, "tag/with/slash"):
        expect_error(ecr.raw.put_image, IPE, repositoryName=name, imageManifest=img.manifest_text, imageTag=bad)
    assert ecr.client.list_images(repositoryName=name)["imageIds"] == []


def test_put_image_index(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    amd = put_api_image(ecr.client, name)
    arm = put_api_image(ecr.client, name)
    index = bh.make_index([amd.descriptor(platform={"architecture": "amd64", "os": "linux"}),
                           arm.descriptor(platform={"architecture": "arm64", "os": "linux"})])
    r = ecr.client.put_image(repositoryName=name, imageManifest=index.decode(), imageTag="multi")
    assert r["image"]["imageId"]["imageDigest"] == sha256(index)
    assert r["image"]["imageManifestMediaType"] == OCI_INDEX
    d = ecr.client.describe_images(repositoryName=name, imageIds=[{"imageTag": "multi"}])["imageDetails"][0]
    assert d["imageDigest"] == sha256(index)
    assert d["imageManifestMediaType"] == OCI_INDEX
    got = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "multi"}],
                                     acceptedMediaTypes=ACCEPT_ALL)["images"][0]
    assert got["imageManifest"] == index.decode()


def test_put_image_referenced_images_not_found(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    present = put_api_image(ecr.client, name)
    absent = build_image(name)  # never pushed
    index = bh.make_index([present.descriptor(), absent.descriptor()])
    expect_error(ecr.client.put_image, "ReferencedImagesNotFoundException", repositoryName=name,
                 imageManifest=index.decode(), imageTag="multi")
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageTag": "multi"}])


# =============================================================================================
# BatchGetImage
# =============================================================================================
def test_batch_get_image_failures(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    one = put_api_image(ecr.client, name, tag="one")
    two = put_api_image(ecr.client, name, tag="two")
    missing_digest = sha256(b"no such manifest")
    r = ecr.client.batch_get_image(repositoryName=name, acceptedMediaTypes=ACCEPT_ALL, imageIds=[
        {"imageTag": "one"},
        {"imageTag": "nope"},
        {"imageDigest": missing_digest},
        {"imageTag": "two", "imageDigest": one.digest},
    ])
    assert [i["imageId"]["imageDigest"] for i in r["images"]] == [one.digest]
    fails = r["failures"]
    assert len(fails) == 3, fails

    def failure_for(pred):
        hits = [f for f in fails if pred(f.get("imageId", {}))]
        assert len(hits) == 1, fails
        assert hits[0].get("failureReason"), hits[0]
        return hits[0]["failureCode"]

    assert failure_for(lambda i: i.get("imageTag") == "nope") == "ImageNotFound"
    assert failure_for(lambda i: i.get("imageDigest") == missing_digest) == "ImageNotFound"
    assert failure_for(lambda i: i.get("imageTag") == "two") == "ImageTagDoesNotMatchDigest"
    assert two.digest  # two exists; only the pair was wrong
    # malformed identifiers are per-id failures too
    r = ecr.raw.batch_get_image(repositoryName=name, acceptedMediaTypes=ACCEPT_ALL,
                                imageIds=[{}, {"imageDigest": "sha256:zz"}])
    codes = sorted(f["failureCode"] for f in r["failures"])
    assert codes == ["InvalidImageDigest", "MissingDigestAndTag"], r
    assert r.get("images", []) == []


def test_batch_get_image_accepted_media_types(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    docker = put_api_image(ecr.client, name, tag="docker", media_type=DOCKER_MANIFEST)
    oci = put_api_image(ecr.client, name, tag="oci", media_type=OCI_MANIFEST)
    r = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "docker"}, {"imageTag": "oci"}],
                                   acceptedMediaTypes=[DOCKER_MANIFEST, OCI_MANIFEST])
    by_digest = {i["imageId"]["imageDigest"]: i for i in r["images"]}
    assert by_digest[docker.digest]["imageManifestMediaType"] == DOCKER_MANIFEST
    assert by_digest[oci.digest]["imageManifestMediaType"] == OCI_MANIFEST
    assert by_digest[docker.digest]["imageManifest"] == docker.manifest_text
    # an OCI manifest is not handed to a client that only accepts Docker's: a failure for that id
    # (or a converted manifest, if the server converts; never the OCI manifest)
    r = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "oci"}],
                                   acceptedMediaTypes=[DOCKER_MANIFEST])
    for i in r.get("images", []):
        assert i.get("imageManifestMediaType") == DOCKER_MANIFEST, i
        assert i["imageManifest"] != oci.manifest_text
    assert r.get("images") or r.get("failures"), r
    expect_error(ecr.raw.batch_get_image, IPE, repositoryName=name, imageIds=[{"imageTag": "oci"}],
                 acceptedMediaTypes=[])
    expect_error(ecr.raw.batch_get_image, IPE, repositoryName=name, imageIds=[])


# =============================================================================================
# BatchDeleteImage
# =============================================================================================
def test_batch_delete_image_by_tag_untags(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="a")
    ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageTag="b")
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "a"}])
    assert r.get("failures", []) == []
    assert r["imageIds"] == [{"imageDigest": img.digest, "imageTag": "a"}]
    assert image_tags(ecr.client, name, img.digest) == {"b"}
    v2 = ecr.v2()
    assert v2.get_manifest(name, "a").status_code == 404
    assert v2.get_manifest(name, "b").status_code == 200
    # "When you remove the last tag from an image, the image is deleted from your repository."
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "b"}])
    assert r["imageIds"] == [{"imageDigest": img.digest, "imageTag": "b"}]
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageDigest": img.digest}])
    assert v2.get_manifest(name, img.digest).status_code == 404


def test_batch_delete_image_by_digest_removes_all_tags(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="x")
    ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageTag="y")
    keep = put_api_image(ecr.client, name, tag="keep")
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": img.digest}])
    assert r.get("failures", []) == []
    assert r["imageIds"], r
    assert all(i["imageDigest"] == img.digest for i in r["imageIds"]), r
    assert {i.get("imageTag") for i in r["imageIds"]} - {None} <= {"x", "y"}
    ids = list_all_image_ids(ecr.client, name)
    assert ids == [{"imageDigest": keep.digest, "imageTag": "keep"}], ids
    v2 = ecr.v2()
    for ref in ("x", "y", img.digest):
        assert v2.get_manifest(name, ref).status_code == 404, ref
    assert v2.get_manifest(name, "keep").status_code == 200


def test_batch_delete_image_failures(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="t1")
    missing = sha256(b"never pushed")
    r = ecr.raw.batch_delete_image(repositoryName=name, imageIds=[
        {"imageTag": "nope"}, {"imageDigest": missing}, {"imageDigest": "sha256:xyz"}, {},
    ])
    assert r.get("imageIds", []) == []
    codes = {}
    for f in r["failures"]:
        assert f.get("failureReason"), f
        key = f.get("imageId", {}).get("imageTag") or f.get("imageId", {}).get("imageDigest") or "{}"
        codes[key] = f["failureCode"]
    assert codes == {"nope": "ImageNotFound", missing: "ImageNotFound", "sha256:xyz": "InvalidImageDigest",
                     "{}": "MissingDigestAndTag"}, r["failures"]
    # a good id and a bad one in the same call: the good one is deleted
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "t1"}, {"imageTag": "nope"}])
    assert r["imageIds"] == [{"imageDigest": img.digest, "imageTag": "t1"}]
    assert [f["failureCode"] for f in r["failures"]] == ["ImageNotFound"]
    # a tag with the wrong digest
    two = put_api_image(ecr.client, name, tag="t2")
    other = put_api_image(ecr.client, name, tag="t3")
    r = ecr.client.batch_delete_image(repositoryName=name,
                                      imageIds=[{"imageTag": "t2", "imageDigest": other.digest}])
    assert [f["failureCode"] for f in r["failures"]] == ["ImageTagDoesNotMatchDigest"], r
    assert image_tags(ecr.client, name, two.digest) == {"t2"}


def test_batch_delete_image_referenced_by_index(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    child = put_api_image(ecr.client, name, tag="child")
    index = bh.make_index([child.descriptor()])
    ecr.client.put_image(repositoryName=name, imageManifest=index.decode(), imageTag="list")
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": child.digest}])
    assert [f["failureCode"] for f in r["failures"]] == ["ImageReferencedByManifestList"], r
    ecr.client.describe_images(repositoryName=name, imageIds=[{"imageDigest": child.digest}])
    # delete the index first, then the child goes
    ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": sha256(index)}])
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": child.digest}])
    assert r.get("failures", []) == [], r


def test_untagging_an_image_an_index_lists_keeps_it(ecr):
    # Removing an image's last tag deletes the image, except when an index of the repository lists it:
    # the image then stays, untagged, so the index never lists a deleted manifest (one transaction).
    name = create_repo(ecr.client)["repositoryName"]
    child = put_api_image(ecr.client, name, tag="child")
    index = bh.make_index([child.descriptor()])
    ecr.client.put_image(repositoryName=name, imageManifest=index.decode(), imageTag="list")
    r = ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "child"}])
    assert r["imageIds"] == [{"imageDigest": child.digest, "imageTag": "child"}] and r["failures"] == [], r
    d = ecr.client.describe_images(repositoryName=name, imageIds=[{"imageDigest": child.digest}])["imageDetails"]
    assert len(d) == 1 and "imageTags" not in d[0], d
    got = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "list"}])
    assert got["failures"] == [] and got["images"][0]["imageManifest"] == index.decode()
    # without the index, the last tag takes the image with it
    ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "list"}])
    other = put_api_image(ecr.client, name, tag="solo")
    ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "solo"}])
    r = ecr.client.describe_images(repositoryName=name)["imageDetails"]
    assert {i["imageDigest"] for i in r} == {child.digest}, r
    assert other.digest != child.digest


# =============================================================================================
# ListImages
# =============================================================================================
def test_list_images_tag_status(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    tagged = put_api_image(ecr.client, name, tag="t1")
    ecr.client.put_image(repositoryName=name, imageManifest=tagged.manifest_text, imageTag="t2")
    untagged = put_api_image(ecr.client, name)

    def ids(**params):
        got = ecr.client.list_images(repositoryName=name, **params)["imageIds"]
        return sorted((i["imageDigest"], i.get("imageTag")) for i in got)

    t = sorted([(tagged.digest, "t1"), (tagged.digest, "t2")])
    u = [(untagged.digest, None)]
    assert ids(filter={"tagStatus": "TAGGED"}) == t
    assert ids(filter={"tagStatus": "UNTAGGED"}) == u
    assert ids(filter={"tagStatus": "ANY"}) == sorted(t + u)
    assert ids() == sorted(t + u)
    expect_error(ecr.raw.list_images, IPE, repositoryName=name, filter={"tagStatus": "SOMETIMES"})


def test_list_images_pagination(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="tag-0")
    tags = {f"tag-{i}" for i in range(9)}
    for t in sorted(tags - {"tag-0"}):
        ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageTag=t)
    seen, token, pages = [], None, 0
    while True:
        params = {"repositoryName": name, "maxResults": 4}
        if token:
            params["nextToken"] = token
        r = ecr.client.list_images(**params)
        assert len(r["imageIds"]) <= 4
        seen += [i["imageTag"] for i in r["imageIds"]]
        pages += 1
        token = r.get("nextToken")
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == sorted(tags) and len(seen) == len(tags)
    assert pages >= 3
    got = list_all_image_ids(ecr.client, name, PaginationConfig={"PageSize": 2})
    assert sorted(i["imageTag"] for i in got) == sorted(tags)
    for bad in (0, 1001):
        expect_error(ecr.raw.list_images, IPE, repositoryName=name, maxResults=bad)
    expect_error(ecr.raw.list_images, IPE, repositoryName=name, nextToken="forged-token")


# =============================================================================================
# DescribeImages
# =============================================================================================
@pytest.mark.parametrize("media_type, config_type", [(OCI_MANIFEST, OCI_CONFIG), (DOCKER_MANIFEST, DOCKER_CONFIG)])
def test_describe_images_details(ecr, media_type, config_type):
    name = create_repo(ecr.client)["repositoryName"]
    before = now_utc()
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, layer_size=2000, media_type=media_type)
    ecr.client.put_image(repositoryName=name, imageManifest=img.manifest_text, imageTag="v1.0")
    for ids in ([{"imageTag": "v1"}], [{"imageDigest": img.digest}], None):
        params = {"repositoryName": name}
        if ids:
            params["imageIds"] = ids
        details = ecr.client.describe_images(**params)["imageDetails"]
        assert len(details) == 1, details
        d = details[0]
        assert d["registryId"] == ACCOUNT_ID
        assert d["repositoryName"] == name
        assert d["imageDigest"] == img.digest
        assert sorted(d["imageTags"]) == ["v1", "v1.0"]
        # the compressed size of the image: its layers (some count the config and manifest too)
        size = d["imageSizeInBytes"]
        assert img.layers_size <= size <= img.layers_size + len(img.config) + len(img.manifest), size
        assert_recent(d["imagePushedAt"], "imagePushedAt")
        assert d["imagePushedAt"].timestamp() >= before.timestamp() - 2
        assert d["imageManifestMediaType"] == media_type
        assert d["artifactMediaType"] == config_type
        assert "lastRecordedPullTime" not in d, "never pulled yet"


def test_describe_images_last_recorded_pull_time(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1")
    pushed = ecr.client.describe_images(repositoryName=name)["imageDetails"][0]["imagePushedAt"]
    r = ecr.v2().get_manifest(name, "v1")
    assert r.status_code == 200, describe(r)
    deadline = time.monotonic() + 5
    while True:
        d = ecr.client.describe_images(repositoryName=name,
                                       imageIds=[{"imageDigest": img.digest}])["imageDetails"][0]
        if d.get("lastRecordedPullTime") or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert "lastRecordedPullTime" in d, "a pull through /v2/ must set lastRecordedPullTime"
    assert_recent(d["lastRecordedPullTime"], "lastRecordedPullTime")
    assert d["lastRecordedPullTime"].timestamp() >= pushed.timestamp() - 1


def test_describe_images_filters_and_errors(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    tagged = put_api_image(ecr.client, name, tag="v1")
    untagged = put_api_image(ecr.client, name)

    def digests(**params):
        details = ecr.client.describe_images(repositoryName=name, **params)["imageDetails"]
        return sorted(d["imageDigest"] for d in details)

    assert digests(filter={"tagStatus": "TAGGED"}) == [tagged.digest]
    assert digests(filter={"tagStatus": "UNTAGGED"}) == [untagged.digest]
    assert digests(filter={"tagStatus": "ANY"}) == sorted([tagged.digest, untagged.digest])
    assert digests() == sorted([tagged.digest, untagged.digest])
    e = expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                     imageIds=[{"imageTag": "missing"}])
    assert "missing" in e.response["Error"]["Message"]
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageDigest": sha256(b"nope")}])
    # maxResults / nextToken "cannot be used when you specify images with imageIds"
    expect_error(ecr.raw.describe_images, IPE, repositoryName=name, imageIds=[{"imageTag": "v1"}], maxResults=5)
    expect_error(ecr.raw.describe_images, IPE, repositoryName=name, filter={"tagStatus": "SOMETIMES"})
    expect_error(ecr.raw.describe_images, IPE, repositoryName=name, maxResults=0)


def test_describe_images_pagination(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    digests = {put_api_image(ecr.client, name, tag=f"t{i}").digest for i in range(5)}
    pages = list(ecr.client.get_paginator("describe_images").paginate(repositoryName=name,
                                                                       PaginationConfig={"PageSize": 2}))
    got = [d["imageDigest"] for p in pages for d in p["imageDetails"]]
    assert sorted(got) == sorted(digests) and len(got) == 5
    assert len(pages) >= 3 and all(len(p["imageDetails"]) <= 2 for p in pages)
    out = ecr.cli_json("describe-images", "--repository-name", name, "--page-size", "2")
    assert sorted(d["imageDigest"] for d in out["imageDetails"]) == sorted(digests)


# =============================================================================================
# GetDownloadUrlForLayer
# =============================================================================================
def test_get_download_url_for_layer(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, layer_size=5000)
    for digest, data in zip(img.layer_digests, img.layers):
        r = ecr.client.get_download_url_for_layer(repositoryName=name, layerDigest=digest)
        assert r["layerDigest"] == digest
        url = r["downloadUrl"]
        assert url.startswith("http://") or url.startswith("https://"), url
        # a presigned URL: plain GET, no credentials at all
        got = requests.get(url, timeout=30, allow_redirects=True)
        assert got.status_code == 200, f"GET {url} -> {got.status_code} {got.text[:300]!r}"
        assert got.content == data
        assert sha256(got.content) == digest
    # the config blob is part of the image too
    r = ecr.client.get_download_url_for_layer(repositoryName=name, layerDigest=img.config_digest)
    assert requests.get(r["downloadUrl"], timeout=30).content == img.config


def test_get_download_url_for_layer_errors(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    put_api_image(ecr.client, name, tag="v1")
    expect_error(ecr.client.get_download_url_for_layer, "LayersNotFoundException", repositoryName=name,
                 layerDigest=sha256(b"unknown layer"))
    # uploaded, but no image references it
    orphan = os.urandom(321)
    upload_layer(ecr.client, name, orphan)
    expect_error(ecr.client.get_download_url_for_layer, "LayerInaccessibleException", repositoryName=name,
                 layerDigest=sha256(orphan))
    expect_error(ecr.raw.get_download_url_for_layer, IPE, repositoryName=name, layerDigest="sha256:not-hex!")


# =============================================================================================
# PutImageTagMutability
# =============================================================================================
def test_put_image_tag_mutability(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    one = put_api_image(ecr.client, name, tag="v1")
    r = ecr.client.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE")
    assert r["imageTagMutability"] == "IMMUTABLE"
    assert r["repositoryName"] == name and r["registryId"] == ACCOUNT_ID
    repo = ecr.client.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    two = build_image(name)
    ensure_layer(ecr.client, name, two.config)
    ensure_layer(ecr.client, name, two.layers[0])
    expect_error(ecr.client.put_image, "ImageTagAlreadyExistsException", repositoryName=name,
                 imageManifest=two.manifest_text, imageTag="v1")
    # with exclusions
    filters = [{"filterType": "WILDCARD", "filter": "v*"}]
    r = ecr.client.put_image_tag_mutability(repositoryName=name, imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
                                            imageTagMutabilityExclusionFilters=filters)
    assert r["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert r["imageTagMutabilityExclusionFilters"] == filters
    ecr.client.put_image(repositoryName=name, imageManifest=two.manifest_text, imageTag="v1")
    assert image_tags(ecr.client, name, two.digest) == {"v1"}
    # back to MUTABLE (no filters any more)
    r = ecr.client.put_image_tag_mutability(repositoryName=name, imageTagMutability="MUTABLE")
    assert r["imageTagMutability"] == "MUTABLE"
    assert not r.get("imageTagMutabilityExclusionFilters")
    ecr.client.put_image(repositoryName=name, imageManifest=one.manifest_text, imageTag="v1")
    assert image_tags(ecr.client, name, one.digest) == {"v1"}
    expect_error(ecr.raw.put_image_tag_mutability, IPE, repositoryName=name, imageTagMutability="NEVER")
    expect_error(ecr.raw.put_image_tag_mutability, IPE, repositoryName=name,
                 imageTagMutability="MUTABLE_WITH_EXCLUSION")


# =============================================================================================
# TagResource / UntagResource / ListTagsForResource
# =============================================================================================
def test_tag_untag_list(ecr):
    name = create_repo(ecr.client, tags=[{"Key": "a", "Value": "1"}])["repositoryName"]
    arn = repo_arn(name)
    assert _tags_dict(ecr.client.list_tags_for_resource(resourceArn=arn)["tags"]) == {"a": "1"}
    ecr.client.tag_resource(resourceArn=arn, tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "one"}])
    assert _tags_dict(ecr.client.list_tags_for_resource(resourceArn=arn)["tags"]) == {"a": "one", "b": "2"}
    ecr.client.tag_resource(resourceArn=arn, tags=[{"Key": "empty", "Value": ""}])
    ecr.client.untag_resource(resourceArn=arn, tagKeys=["a", "not-there"])
    assert _tags_dict(ecr.client.list_tags_for_resource(resourceArn=arn)["tags"]) == {"b": "2", "empty": ""}
    # tags live with the repository: a deleted and re-created repository has none
    ecr.client.delete_repository(repositoryName=name)
    create_repo(ecr.client, name)
    assert ecr.client.list_tags_for_resource(resourceArn=arn)["tags"] == []


def test_tag_resource_errors(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    arn = repo_arn(name)
    for bad in ("not-an-arn", f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:nope/{name}",
                f"arn:aws:s3:::{name}", f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/Bad Name"):
        expect_error(ecr.raw.list_tags_for_resource, IPE, resourceArn=bad)
        expect_error(ecr.raw.tag_resource, IPE, resourceArn=bad, tags=[{"Key": "k", "Value": "v"}])
    tag_errors = {"InvalidTagParameterException", IPE}
    expect_error(ecr.raw.tag_resource, tag_errors, resourceArn=arn, tags=[{"Key": "k" * 129, "Value": "v"}])
    expect_error(ecr.raw.tag_resource, tag_errors, resourceArn=arn, tags=[{"Key": "k", "Value": "v" * 257}])
    expect_error(ecr.raw.tag_resource, tag_errors, resourceArn=arn, tags=[{"Key": "aws:reserved", "Value": "v"}])
    expect_error(ecr.raw.tag_resource, tag_errors, resourceArn=arn, tags=[{"Key": "", "Value": "v"}])
    ecr.client.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    expect_error(ecr.client.tag_resource, "TooManyTagsException", resourceArn=arn,
                 tags=[{"Key": "one-too-many", "Value": "v"}])
    assert len(ecr.client.list_tags_for_resource(resourceArn=arn)["tags"]) == 50


# =============================================================================================
# DescribeRegistry, GetAccountSetting / PutAccountSetting
# =============================================================================================
def test_describe_registry(ecr):
    r = ecr.client.describe_registry()
    assert r["registryId"] == ACCOUNT_ID
    rc = r.get("replicationConfiguration")
    if rc is not None:
        assert rc["rules"] == []


def test_account_settings(ecr):
    known = {"BASIC_SCAN_TYPE_VERSION": {"AWS_NATIVE", "CLAIR"}, "REGISTRY_POLICY_SCOPE": {"V1", "V2"},
             "BLOB_MOUNTING": {"ENABLED", "DISABLED"}}
    for name, values in known.items():
        r = ecr.client.get_account_setting(name=name)
        assert r["name"] == name
        assert r["value"] in values, r
    original = ecr.client.get_account_setting(name="BLOB_MOUNTING")["value"]
    try:
        for value in ("ENABLED", "DISABLED"):
            r = ecr.client.put_account_setting(name="BLOB_MOUNTING", value=value)
            assert r == {**r, "name": "BLOB_MOUNTING", "value": value}
            assert ecr.client.get_account_setting(name="BLOB_MOUNTING")["value"] == value
    finally:
        ecr.client.put_account_setting(name="BLOB_MOUNTING", value=original)
    r = ecr.client.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
    assert r["value"] == "V2"
    assert ecr.client.get_account_setting(name="REGISTRY_POLICY_SCOPE")["value"] == "V2"
    expect_error(ecr.raw.get_account_setting, VALIDATION, name="NO_SUCH_SETTING")
    expect_error(ecr.raw.put_account_setting, VALIDATION, name="NO_SUCH_SETTING", value="X")
    expect_error(ecr.raw.put_account_setting, VALIDATION, name="BLOB_MOUNTING", value="MAYBE")
    expect_error(ecr.raw.put_account_setting, VALIDATION, name="BASIC_SCAN_TYPE_VERSION", value="NOPE")


def test_registry_policy_scope_v1_allows_only_its_three_actions(ecr):
    """ECR's V1 registry policy scope: only ecr:ReplicateImage, ecr:BatchImportUpstreamImage and
    ecr:CreateRepository (or ecr:*) in a registry policy, anything else InvalidParameterException; V2 (the
    default) takes every ECR action."""
    import json
    c = ecr.client
    def policy(actions):
        return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
                                                                    "Action": actions, "Resource": "*"}]})
    wide = policy(["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:DescribeRepositories"])
    try:
        c.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V1")
        err = expect_error(ecr.raw.put_registry_policy, "InvalidParameterException", policyText=wide)
        assert "Invalid registry policy provided" in err.response["Error"]["Message"], err.response
        for ok in (["ecr:CreateRepository", "ecr:ReplicateImage", "ecr:BatchImportUpstreamImage"], "ecr:*"):
            assert c.put_registry_policy(policyText=policy(ok))["policyText"] == policy(ok)
        c.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
        assert c.put_registry_policy(policyText=wide)["policyText"] == wide
    finally:
        c.put_account_setting(name="REGISTRY_POLICY_SCOPE", value="V2")
        try:
            c.delete_registry_policy()
        except Exception:
            pass


# =============================================================================================
# ListImageReferrers (in botocore's model: ecr 2015-09-21)
# =============================================================================================
def test_list_image_referrers(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    subject = put_api_image(ecr.client, name, tag="v1")
    ensure_layer(ecr.client, name, EMPTY_JSON)
    sbom = b'{"spdxVersion":"SPDX-2.3","name":"berth-it"}'
    ensure_layer(ecr.client, name, sbom)
    artifact_type = "application/spdx+json"
    referrer = bh.make_manifest(bh.descriptor(OCI_EMPTY, EMPTY_JSON),
                                [bh.descriptor("application/spdx+json", sbom)],
                                artifactType=artifact_type, subject=subject.descriptor(),
                                annotations={"org.opencontainers.image.created": "2025-01-01T00:00:00Z"})
    r = ecr.client.put_image(repositoryName=name, imageManifest=referrer.decode())
    assert r["image"]["imageId"]["imageDigest"] == sha256(referrer)
    r = ecr.client.list_image_referrers(repositoryName=name, subjectId={"imageDigest": subject.digest})
    refs = r["referrers"]
    assert len(refs) == 1, refs
    ref = refs[0]
    assert ref["digest"] == sha256(referrer)
    assert ref["mediaType"] == OCI_MANIFEST
    assert ref["artifactType"] == artifact_type
    assert ref["size"] == len(referrer)
    assert ref.get("annotations") == {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"}
    assert ref.get("artifactStatus", "ACTIVE") == "ACTIVE"
    # filters
    r = ecr.client.list_image_referrers(repositoryName=name, subjectId={"imageDigest": subject.digest},
                                        filter={"artifactTypes": ["application/vnd.example.other"]})
    assert r["referrers"] == []
    r = ecr.client.list_image_referrers(repositoryName=name, subjectId={"imageDigest": subject.digest},
                                        filter={"artifactTypes": [artifact_type]})
    assert [x["digest"] for x in r["referrers"]] == [sha256(referrer)]
    # the referrer shows in DescribeImages with its subject
    d = ecr.client.describe_images(repositoryName=name,
                                   imageIds=[{"imageDigest": sha256(referrer)}])["imageDetails"][0]
    assert d.get("subjectManifestDigest") == subject.digest
    # a subject without referrers; the parameter limits
    other = put_api_image(ecr.client, name, tag="v2")
    assert ecr.client.list_image_referrers(repositoryName=name,
                                           subjectId={"imageDigest": other.digest})["referrers"] == []
    expect_error(ecr.raw.list_image_referrers, VALIDATION, repositoryName=name,
                 subjectId={"imageDigest": subject.digest}, maxResults=51)
    expect_error(ecr.raw.list_image_referrers, VALIDATION, repositoryName=name,
                 subjectId={"imageDigest": "not-a-digest"})


# =============================================================================================
# GetAuthorizationToken
# =============================================================================================
def test_get_authorization_token(ecr):
    data = ecr.client.get_authorization_token()["authorizationData"]
    assert len(data) == 1, data
    a = data[0]
    user, _, password = base64.b64decode(a["authorizationToken"], validate=True).decode().partition(":")
    assert user == "AWS" and password
    assert a["proxyEndpoint"] == ecr.server.url
    remaining = (a["expiresAt"] - now_utc()).total_seconds()
    assert abs(remaining - 12 * 3600) < 300, f"expiresAt is {remaining / 3600:.2f} h from now, expected 12 h"
    # the (deprecated) registryIds parameter
    data = ecr.client.get_authorization_token(registryIds=[ACCOUNT_ID])["authorizationData"]
    assert len(data) == 1 and data[0]["authorizationToken"]
    expect_error(ecr.raw.get_authorization_token, IPE, registryIds=["not-an-account"])
    # the token works on /v2/
    r = ecr.v2(password).get("/v2/")
    assert r.status_code == 200, describe(r)
    # and the CLI's get-login-password prints a password that works too
    pw = ecr.cli("get-login-password").stdout.decode().strip()
    r = ecr.v2(pw).get("/v2/")
    assert r.status_code == 200, describe(r)


# =============================================================================================
# two doors, one house
# =============================================================================================
def test_skopeo_push_shows_in_describe_images(ecr, skopeo_ecr, tmp_path):
    name = unique("sk") + "/app"  # not created: createOnPush makes it on the first /v2/ push
    layout = write_oci_layout(tmp_path / "layout", tag="v1", n_layers=2, layer_size=4000)
    skopeo_ecr.login(ecr)
    dst = f"docker://{ecr.server.hostport}/{name}:v1"
    skopeo_ecr.copy(f"oci:{layout.root}:v1", dst, "--preserve-digests")
    repo = ecr.client.describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["registryId"] == ACCOUNT_ID
    assert repo["repositoryArn"] == repo_arn(name)
    assert repo["imageTagMutability"] == "MUTABLE"
    d = ecr.client.describe_images(repositoryName=name)["imageDetails"]
    assert len(d) == 1, d
    d = d[0]
    assert d["imageDigest"] == layout.digest
    assert d["imageTags"] == ["v1"]
    assert d["imageManifestMediaType"] == OCI_MANIFEST
    assert d["artifactMediaType"] == OCI_CONFIG
    most = layout.layers_size + len(layout.config) + len(layout.manifest)
    assert layout.layers_size <= d["imageSizeInBytes"] <= most, d["imageSizeInBytes"]
    assert_recent(d["imagePushedAt"], "imagePushedAt")
    got = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                     acceptedMediaTypes=ACCEPT_ALL)["images"][0]
    assert got["imageManifest"].encode() == layout.manifest
    ids = ecr.client.list_images(repositoryName=name)["imageIds"]
    assert ids == [{"imageDigest": layout.digest, "imageTag": "v1"}]
    avail = ecr.client.batch_check_layer_availability(repositoryName=name,
                                                      layerDigests=[sha256(x) for x in layout.layers])
    assert all(l["layerAvailability"] == "AVAILABLE" for l in avail["layers"]) and len(avail["layers"]) == 2


def test_put_image_is_pullable_with_skopeo(ecr, skopeo_ecr, tmp_path):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, layer_size=3000)
    skopeo_ecr.login(ecr)
    src = f"docker://{ecr.server.hostport}/{name}:v1"
    p = skopeo_ecr.run("inspect", "--tls-verify=false", "--raw", src)
    assert p.stdout.rstrip(b"\n") == img.manifest
    out = tmp_path / "pulled"
    skopeo_ecr.copy(src, f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == img.manifest
    for data in [img.config, *img.layers]:
        assert (out / sha256(data).split(":", 1)[1]).read_bytes() == data


def test_tag_immutability_holds_on_both_doors(ecr, skopeo_ecr, tmp_path):
    name = create_repo(ecr.client, imageTagMutability="IMMUTABLE")["repositoryName"]
    first = put_api_image(ecr.client, name, tag="v1")
    skopeo_ecr.login(ecr)
    layout = write_oci_layout(tmp_path / "layout", tag="x", n_layers=1)
    # skopeo push over an existing immutable tag fails, and the tag does not move
    p = skopeo_ecr.copy(f"oci:{layout.root}:x", f"docker://{ecr.server.hostport}/{name}:v1",
                        "--preserve-digests", check=False)
    assert p.returncode != 0, "skopeo overwrote an immutable tag"
    assert image_tags(ecr.client, name, first.digest) == {"v1"}
    # the raw /v2/ manifest PUT is refused with a 4xx (never 201, never 5xx)
    v2 = ecr.v2()
    r = v2.put_manifest(name, "v1", layout.manifest)
    assert 400 <= r.status_code < 500, describe(r)
    r = v2.get_manifest(name, "v1")
    assert r.headers.get("Docker-Content-Digest") == first.digest
    # a new tag is fine through skopeo
    skopeo_ecr.copy(f"oci:{layout.root}:x", f"docker://{ecr.server.hostport}/{name}:v2", "--preserve-digests")
    assert image_tags(ecr.client, name, layout.digest) == {"v2"}
    # and PutImage refuses to move the tag skopeo pushed
    expect_error(ecr.client.put_image, "ImageTagAlreadyExistsException", repositoryName=name,
                 imageManifest=first.manifest_text, imageTag="v2")


def test_v2_push_and_api_delete_agree(ecr):
    """Deleting through the API is seen by /v2/ and the other way round."""
    name = create_repo(ecr.client)["repositoryName"]
    v2 = ecr.v2()
    img = v2.push_image(name, tag="pushed")
    d = ecr.client.describe_images(repositoryName=name, imageIds=[{"imageTag": "pushed"}])["imageDetails"][0]
    assert d["imageDigest"] == img.digest
    r = v2.delete(f"/v2/{name}/manifests/{img.digest}")
    assert r.status_code == 202, describe(r)
    expect_error(ecr.client.describe_images, "ImageNotFoundException", repositoryName=name,
                 imageIds=[{"imageDigest": img.digest}])
    api = put_api_image(ecr.client, name, tag="api")
    ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": api.digest}])
    assert v2.get_manifest(name, "api").status_code == 404
    assert "api" not in v2.tags(name)
