"""Amazon ECR Public against the real `berth serve`: boto3's `ecr-public` client and the
`aws ecr-public` CLI (target SpencerFrontendService, signing name ecr-public), skopeo pushing with an
ecr-public token to `<host>/public/<alias>/<name>` and pulling anonymously. Shapes and error names
come from botocore's ecr-public model."""
from __future__ import annotations

import base64
import json
import os
import subprocess

import boto3
import pytest
import requests
from botocore.config import Config

from berth_helpers import FIXTURES_DIR, sha256, unique
from ecr_helpers import (AWS_CLI, ECRSession, _boto_session, ecr, ecr_fresh, ecr_server, expect_error, put_api_image,  # noqa: F401
                         skopeo_ecr, skopeo_path, aws_cli)

TINY = FIXTURES_DIR / "images" / "debian-tiny-vuln"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def public_client(session: ECRSession):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=120)
    c = _boto_session().client("ecr-public", endpoint_url=session.server.url, region_name="us-east-1",
                               aws_access_key_id=session.access_key, aws_secret_access_key=session.secret_key, config=cfg)
    c.meta.events.register("after-call.ecr-public", session.audit.after_call)
    return c


def public_cli(session: ECRSession, *args) -> dict:
    cmd = [AWS_CLI, "ecr-public", *args, "--endpoint-url", session.server.url, "--region", "us-east-1", "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, env=session.cli_env(), timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)}: {p.stderr.decode(errors='replace')[-2000:]}"
    out = p.stdout.decode().strip()
    return json.loads(out) if out.startswith("{") else {"text": out}


@pytest.fixture
def pub(ecr):
    return public_client(ecr)


def alias(session) -> str:
    return "r" + session.server.account_id


def test_registry_alias_and_catalog_data(ecr, pub):
    regs = pub.describe_registries()["registries"]
    assert len(regs) == 1
    r = regs[0]
    assert r["registryId"] == ecr.server.account_id
    assert r["registryArn"] == f"arn:aws:ecr-public::{ecr.server.account_id}:registry/{ecr.server.account_id}"
    assert r["aliases"] == [{"name": alias(ecr), "status": "ACTIVE", "primaryRegistryAlias": True, "defaultRegistryAlias": True}]
    assert r["registryUri"] == f"{ecr.server.hostport}/public/{alias(ecr)}"
    pub.put_registry_catalog_data(displayName="Berth tests")
    assert pub.get_registry_catalog_data()["registryCatalogData"] == {"displayName": "Berth tests"}
    expect_error(public_client_raw(ecr).put_registry_catalog_data, "InvalidParameterException", displayName="x" * 101)


def public_client_raw(session):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False)
    return _boto_session().client("ecr-public", endpoint_url=session.server.url, region_name="us-east-1",
                                  aws_access_key_id=session.access_key, aws_secret_access_key=session.secret_key, config=cfg)


def test_repositories_with_catalog_data_and_logo(ecr, pub):
    name = unique("pub")
    created = pub.create_repository(repositoryName=name, catalogData={
        "description": "A tiny image", "aboutText": "# About", "usageText": "docker pull ...",
        "architectures": ["x86-64", "ARM 64"], "operatingSystems": ["Linux"], "logoImageBlob": PNG,
    }, tags=[{"Key": "team", "Value": "core"}])
    repo = created["repository"]
    assert repo["repositoryArn"] == f"arn:aws:ecr-public::{ecr.server.account_id}:repository/{name}"
    assert repo["repositoryUri"] == f"{ecr.server.hostport}/public/{alias(ecr)}/{name}"
    assert set(repo) == {"repositoryArn", "registryId", "repositoryName", "repositoryUri", "createdAt"}
    cat = pub.get_repository_catalog_data(repositoryName=name)["catalogData"]
    assert cat["description"] == "A tiny image" and cat["architectures"] == ["x86-64", "ARM 64"]
    logo = requests.get(cat["logoUrl"], timeout=10)
    assert logo.status_code == 200 and logo.content == PNG and logo.headers["Content-Type"] == "image/png"
    updated = pub.put_repository_catalog_data(repositoryName=name, catalogData={"description": "Updated"})["catalogData"]
    assert updated["description"] == "Updated" and updated["aboutText"] == "# About"
    assert pub.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "team", "Value": "core"}]
    pub.tag_resource(resourceArn=repo["repositoryArn"], tags=[{"Key": "env", "Value": "test"}])
    pub.untag_resource(resourceArn=repo["repositoryArn"], tagKeys=["team"])
    assert pub.list_tags_for_resource(resourceArn=repo["repositoryArn"])["tags"] == [{"Key": "env", "Value": "test"}]
    names = [r["repositoryName"] for r in pub.describe_repositories()["repositories"]]
    assert name in names
    # Public and private repositories are separate namespaces.
    assert name not in [r["repositoryName"] for r in ecr.client.describe_repositories()["repositories"]]
    expect_error(pub.create_repository, "RepositoryAlreadyExistsException", repositoryName=name)
    expect_error(pub.get_repository_catalog_data, "RepositoryNotFoundException", repositoryName=unique("none"))
    expect_error(public_client_raw(ecr).create_repository, "InvalidParameterException",
                 repositoryName=unique("long"), catalogData={"description": "d" * 1025})
    pub.delete_repository(repositoryName=name)
    expect_error(pub.describe_repositories, "RepositoryNotFoundException", repositoryNames=[name])


def test_push_with_a_public_token_and_pull_anonymously(ecr, pub, skopeo_ecr):
    name = unique("pub")
    public_cli(ecr, "create-repository", "--repository-name", name)
    password = public_cli(ecr, "get-login-password")["text"]
    ref = f"docker://{ecr.server.hostport}/public/{alias(ecr)}/{name}"
    skopeo_ecr.copy(f"oci:{TINY}:1", f"{ref}:1", "--dest-creds", f"AWS:{password}")
    out = skopeo_ecr.run("inspect", "--tls-verify=false", "--no-creds", f"{ref}:1").stdout
    digest = json.loads(out)["Digest"]
    skopeo_ecr.copy(f"{ref}:1", f"oci:{skopeo_ecr.workdir / 'pulled'}:1", "--src-no-creds")
    # Anonymous pushes are refused with a challenge; pushes to unknown public repositories too.
    p = skopeo_ecr.copy(f"oci:{TINY}:1", f"{ref}:2", "--dest-no-creds", check=False)
    assert p.returncode != 0 and b"unauthorized" in p.stderr.lower()
    p = skopeo_ecr.copy(f"oci:{TINY}:1", f"docker://{ecr.server.hostport}/public/{alias(ecr)}/{unique('nope')}:1",
                        "--dest-creds", f"AWS:{password}", check=False)
    assert p.returncode != 0 and b"name unknown" in p.stderr.lower()
    r = requests.get(f"{ecr.server.url}/v2/public/{alias(ecr)}/{name}/tags/list", timeout=10)
    assert r.status_code == 200 and r.json()["tags"] == ["1"]
    tags = pub.describe_image_tags(repositoryName=name)["imageTagDetails"]
    assert [(t["imageTag"], t["imageDetail"]["imageDigest"]) for t in tags] == [("1", digest)]
    images = pub.describe_images(repositoryName=name)["imageDetails"]
    assert [i["imageDigest"] for i in images] == [digest]
    assert set(images[0]) <= {"registryId", "repositoryName", "imageDigest", "imageTags", "imageSizeInBytes",
                              "imagePushedAt", "imageManifestMediaType", "artifactMediaType"}
    expect_error(pub.delete_repository, "RepositoryNotEmptyException", repositoryName=name)
    deleted = pub.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "1"}])
    assert deleted["imageIds"] == [{"imageDigest": digest, "imageTag": "1"}]
    pub.delete_repository(repositoryName=name, force=True)
    r = requests.get(f"{ecr.server.url}/v2/public/{alias(ecr)}/{name}/tags/list", timeout=10)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"


def test_layer_operations_and_put_image(ecr, pub):
    name = unique("pub")
    pub.create_repository(repositoryName=name)
    img = put_api_image(pub, name, tag="v1", layer_size=3000)
    layer = sha256(img.layers[0])
    got = pub.batch_check_layer_availability(repositoryName=name, layerDigests=[layer, "sha256:" + "0" * 64])
    assert [(l["layerDigest"], l["layerAvailability"]) for l in got["layers"]] == [(layer, "AVAILABLE"), ("sha256:" + "0" * 64, "UNAVAILABLE")]
    r = requests.get(f"{ecr.server.url}/v2/public/{alias(ecr)}/{name}/manifests/v1",
                     headers={"Accept": img.media_type}, timeout=10)
    assert r.status_code == 200 and r.content == img.manifest
    expect_error(pub.put_image, "RepositoryNotFoundException", repositoryName=unique("none"), imageManifest=img.manifest_text)


def test_private_credentials_do_not_unlock_private_repositories_anonymously(ecr):
    name = unique("priv")
    ecr.client.create_repository(repositoryName=name)
    r = requests.get(f"{ecr.server.url}/v2/{name}/tags/list", timeout=10)
    assert r.status_code == 401
    r = requests.get(f"{ecr.server.url}/v2/public/{alias(ecr)}/{name}/tags/list", timeout=10)
    assert r.status_code == 404


def test_public_limits(ecr, pub):
    """ECR Public's model: RepositoryName 2..205 on every operation, 200 tags a repository."""
    raw = public_client_raw(ecr)
    for op in (raw.describe_images, raw.get_repository_catalog_data, raw.initiate_layer_upload):
        e = expect_error(op, "InvalidParameterException", repositoryName="a" * 206)
        assert "between 2 and 205" in e.response["Error"]["Message"]
    name = unique("tags")
    arn = pub.create_repository(repositoryName=name)["repository"]["repositoryArn"]
    pub.tag_resource(resourceArn=arn, tags=[{"Key": f"k{i}", "Value": "v"} for i in range(200)])
    assert len(pub.list_tags_for_resource(resourceArn=arn)["tags"]) == 200
    e = expect_error(raw.tag_resource, "TooManyTagsException", resourceArn=arn, tags=[{"Key": "one-more", "Value": "v"}])
    assert e.response["Error"]["Message"].endswith("is 200.")
    # Arn: 1..2048 characters.
    e = expect_error(raw.list_tags_for_resource, "InvalidParameterException", resourceArn=arn + "a" * (2049 - len(arn)))
    assert "length less than or equal to 2048" in e.response["Error"]["Message"]


def test_public_describe_repositories_default_page_is_100(ecr_fresh):
    c = public_client(ecr_fresh)
    for i in range(101):
        c.create_repository(repositoryName=f"p{i:03d}")
    first = c.describe_repositories()
    assert len(first["repositories"]) == 100 and first.get("nextToken")
    assert len(c.describe_repositories(nextToken=first["nextToken"])["repositories"]) == 1
