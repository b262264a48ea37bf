"""ECR's image manifest conversion (Docker V2 schema 2 <-> OCI image manifest), on both doors.

AWS ("Container image manifest format support in Amazon ECR"): a pull *by tag* gets the stored format
if the client understands it, else the stored manifest converted to a format it understands (OCI ->
schema 2, schema 2 -> OCI); a pull *by digest* is never converted. Berth reports the converted
manifest's own digest (sha256 of the bytes it returns), and also answers a later request for that
digest (a client that pulled by tag may ask again by the digest it was given). Indexes / manifest
lists, artifacts and manifests with OCI-only fields (annotations, subject, artifactType, zstd layers)
are not converted: the existing "not available in any of the accepted media types" answer stays.
"""

from __future__ import annotations

import json

import pytest

import berth_helpers as bh
from berth_helpers import (DOCKER_CONFIG, DOCKER_LAYER, DOCKER_MANIFEST, OCI_CONFIG, OCI_EMPTY, OCI_INDEX, OCI_LAYER,
                           OCI_MANIFEST, sha256, unique)
from ecr_helpers import ACCEPT_ALL, create_repo, put_api_image, write_oci_layout
from ecr_helpers import aws_cli, ecr, ecr_server, skopeo_ecr, skopeo_path  # noqa: F401 (fixtures)

NOT_ACCEPTED = "Requested image is not available in any of the accepted media types"
# What Docker 17.x and other schema-2-only clients send.
DOCKER_ONLY_ACCEPT = f"{DOCKER_MANIFEST}, {bh.DOCKER_LIST}, {bh.DOCKER_SCHEMA1_SIGNED}"
OCI_ONLY_ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"


def cli_batch_get(ecr, name, image_id: str, accepted: list) -> dict:
    return ecr.cli_json("batch-get-image", "--repository-name", name, "--image-ids", image_id,
                        "--accepted-media-types", *accepted)


def assert_converted(manifest: bytes, source: bytes, to: str):
    """`manifest` is `source` with every type mapped to the other format and the same blobs."""
    m, s = json.loads(manifest), json.loads(source)
    docker = to == DOCKER_MANIFEST
    assert set(m) == {"schemaVersion", "mediaType", "config", "layers"}, m
    assert m["schemaVersion"] == 2 and m["mediaType"] == to
    assert m["config"] == {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                           "digest": s["config"]["digest"], "size": s["config"]["size"]}
    assert [(l["mediaType"], l["digest"], l["size"]) for l in m["layers"]] == [
        (DOCKER_LAYER if docker else OCI_LAYER, l["digest"], l["size"]) for l in s["layers"]]


# =============================================================================================
# ECR door: BatchGetImage acceptedMediaTypes
# =============================================================================================
def test_batch_get_image_converts_oci_to_docker_by_tag_with_cli(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", n_layers=2, media_type=OCI_MANIFEST)
    got = cli_batch_get(ecr, name, "imageTag=v1", [DOCKER_MANIFEST])
    assert got["failures"] == [], got
    [image] = got["images"]
    body = image["imageManifest"].encode()
    assert image["imageManifestMediaType"] == DOCKER_MANIFEST
    assert image["imageId"] == {"imageDigest": sha256(body), "imageTag": "v1"}
    assert sha256(body) != img.digest
    assert_converted(body, img.manifest, DOCKER_MANIFEST)
    # Deterministic: asked again, the same bytes.
    again = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                       acceptedMediaTypes=[DOCKER_MANIFEST])["images"][0]
    assert again["imageManifest"].encode() == body
    # The stored format, when accepted, is given unchanged (no behaviour change).
    for accepted in (ACCEPT_ALL, [OCI_MANIFEST]):
        same = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                          acceptedMediaTypes=accepted)["images"][0]
        assert same["imageManifest"].encode() == img.manifest
        assert same["imageId"]["imageDigest"] == img.digest and same["imageManifestMediaType"] == OCI_MANIFEST
    plain = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]
    assert plain["imageManifest"].encode() == img.manifest


def test_batch_get_image_converts_docker_to_oci_by_tag(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="d1", n_layers=3, media_type=DOCKER_MANIFEST)
    got = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "d1"}],
                                     acceptedMediaTypes=[OCI_MANIFEST, OCI_INDEX])
    assert got["failures"] == []
    [image] = got["images"]
    body = image["imageManifest"].encode()
    assert image["imageManifestMediaType"] == OCI_MANIFEST
    assert image["imageId"] == {"imageDigest": sha256(body), "imageTag": "d1"}
    assert_converted(body, img.manifest, OCI_MANIFEST)


def test_batch_get_image_by_digest_is_not_converted_but_the_converted_digest_resolves(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, name, tag="v1", media_type=OCI_MANIFEST)
    # ECR: "If you pull an image by digest, there is no conversion available."
    for image_id in ({"imageDigest": img.digest}, {"imageDigest": img.digest, "imageTag": "v1"}):
        r = ecr.client.batch_get_image(repositoryName=name, imageIds=[image_id], acceptedMediaTypes=[DOCKER_MANIFEST])
        assert r["images"] == []
        assert r["failures"] == [{"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": NOT_ACCEPTED}]
    converted = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                           acceptedMediaTypes=[DOCKER_MANIFEST])["images"][0]
    digest = converted["imageId"]["imageDigest"]
    again = cli_batch_get(ecr, name, f"imageDigest={digest}", [DOCKER_MANIFEST])
    assert again["failures"] == []
    assert again["images"][0]["imageManifest"] == converted["imageManifest"]
    assert again["images"][0]["imageId"] == {"imageDigest": digest}
    # The converted digest is no image of its own: the repository still holds one image.
    ids = ecr.client.list_images(repositoryName=name)["imageIds"]
    assert ids == [{"imageDigest": img.digest, "imageTag": "v1"}]
    # Deleting the image takes its conversion with it.
    ecr.client.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": img.digest}])
    gone = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageDigest": digest}],
                                      acceptedMediaTypes=[DOCKER_MANIFEST])
    assert gone["images"] == [] and gone["failures"][0]["failureCode"] == "ImageNotFound"


@pytest.mark.parametrize("extra", [
    {"annotations": {"org.opencontainers.image.created": "2025-01-01T00:00:00Z"}},
    {"artifactType": "application/vnd.example.thing"},
], ids=["annotations", "artifactType"])
def test_oci_only_fields_are_not_converted(ecr, extra):
    name = create_repo(ecr.client)["repositoryName"]
    put_api_image(ecr.client, name, tag="v1", media_type=OCI_MANIFEST, **extra)
    r = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}],
                                   acceptedMediaTypes=[DOCKER_MANIFEST])
    assert r["images"] == []
    assert r["failures"] == [{"imageId": {"imageTag": "v1"}, "failureCode": "ImageNotFound", "failureReason": NOT_ACCEPTED}]


def test_artifact_and_index_are_not_converted(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    reg = ecr.v2()
    # An artifact (empty config, a non-image layer), pushed over /v2/.
    reg.push_blob(name, bh.EMPTY_JSON)
    layer = b"sbom"
    reg.push_blob(name, layer)
    artifact = bh.make_manifest(bh.descriptor(OCI_EMPTY, bh.EMPTY_JSON),
                                [bh.descriptor("application/spdx+json", layer)],
                                artifactType="application/spdx+json")
    assert reg.put_manifest(name, "sbom", artifact).status_code == 201
    # An index over a convertible image.
    img = put_api_image(ecr.client, name, tag="img", media_type=OCI_MANIFEST)
    index = bh.make_index([{"mediaType": OCI_MANIFEST, "digest": img.digest, "size": len(img.manifest),
                            "platform": {"architecture": "amd64", "os": "linux"}}])
    assert reg.put_manifest(name, "multi", index, OCI_INDEX).status_code == 201
    for tag, accepted in (("sbom", [DOCKER_MANIFEST]), ("multi", [bh.DOCKER_LIST, DOCKER_MANIFEST])):
        r = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag}], acceptedMediaTypes=accepted)
        assert r["images"] == [], tag
        assert r["failures"][0]["failureReason"] == NOT_ACCEPTED
        # /v2/ with nothing acceptable: the stored manifest, as before.
        g = reg.get_manifest(name, tag, accept=", ".join(accepted))
        assert g.status_code == 200 and g.content == (artifact if tag == "sbom" else index)
        assert g.headers["Docker-Content-Digest"] == sha256(g.content)


# =============================================================================================
# OCI door: GET/HEAD /v2/<name>/manifests/<ref> by Accept
# =============================================================================================
def test_v2_get_by_tag_converts_to_the_only_accepted_format(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    reg = ecr.v2()
    oci = put_api_image(ecr.client, name, tag="oci", n_layers=2, media_type=OCI_MANIFEST)
    docker = put_api_image(ecr.client, name, tag="docker", n_layers=2, media_type=DOCKER_MANIFEST)
    for img, accept, want in ((oci, DOCKER_ONLY_ACCEPT, DOCKER_MANIFEST), (docker, OCI_ONLY_ACCEPT, OCI_MANIFEST)):
        tag = "oci" if img is oci else "docker"
        g = reg.get_manifest(name, tag, accept=accept)
        assert g.status_code == 200, bh.describe(g)
        assert g.headers["Content-Type"] == want
        assert g.headers["Docker-Content-Digest"] == sha256(g.content) != img.digest
        assert g.headers["Content-Length"] == str(len(g.content))
        assert_converted(g.content, img.manifest, want)
        h = reg.get_manifest(name, tag, accept=accept, method="HEAD")
        assert h.status_code == 200 and h.content == b""
        for k in ("Content-Type", "Docker-Content-Digest", "Content-Length"):
            assert h.headers[k] == g.headers[k], k
        # The digest the client was given resolves (HEAD and GET), whatever it accepts.
        for a in (accept, bh.ALL_MANIFEST_TYPES):
            again = reg.get_manifest(name, g.headers["Docker-Content-Digest"], accept=a)
            assert again.status_code == 200 and again.content == g.content
            assert again.headers["Content-Type"] == want
        assert reg.get_manifest(name, g.headers["Docker-Content-Digest"], method="HEAD").status_code == 200
        # By the stored digest: no conversion, the stored bytes.
        by_digest = reg.get_manifest(name, img.digest, accept=accept)
        assert by_digest.content == img.manifest and by_digest.headers["Docker-Content-Digest"] == img.digest
        # The same image and the same ECR answer from the other door.
        e = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": tag}],
                                       acceptedMediaTypes=[want])["images"][0]
        assert e["imageManifest"].encode() == g.content


def test_v2_stored_format_accepted_is_unchanged_byte_for_byte(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    reg = ecr.v2()
    # Indented JSON in another key order, without a mediaType field: any re-encoding would show.
    config = bh.random_config()
    layer = b"layer bytes"
    reg.push_blob(name, config)
    reg.push_blob(name, layer)
    body = json.dumps({"layers": [bh.descriptor(OCI_LAYER, layer)], "config": bh.descriptor(OCI_CONFIG, config),
                       "schemaVersion": 2}, indent=3).encode()
    assert reg.put_manifest(name, "v1", body).status_code == 201
    img = bh.Image(repo=name, manifest=body, digest=sha256(body), media_type=OCI_MANIFEST)
    for accept in (None, "*/*", bh.ALL_MANIFEST_TYPES, OCI_MANIFEST, f"{DOCKER_MANIFEST}, {OCI_MANIFEST};q=0.5",
                   "application/json"):
        headers = {} if accept is None else {"Accept": accept}
        g = reg.get(f"/v2/{name}/manifests/v1", headers=headers)
        assert g.status_code == 200
        assert g.content == img.manifest, accept
        assert g.headers["Content-Type"] == OCI_MANIFEST and g.headers["Docker-Content-Digest"] == img.digest
    # q=0 excludes the stored type: converted.
    g = reg.get_manifest(name, "v1", accept=f"{OCI_MANIFEST};q=0, {DOCKER_MANIFEST}")
    assert g.headers["Content-Type"] == DOCKER_MANIFEST


def test_v2_unknown_converted_looking_digest_is_manifest_unknown(ecr):
    name = create_repo(ecr.client)["repositoryName"]
    reg = ecr.v2()
    put_api_image(ecr.client, name, tag="v1", media_type=OCI_MANIFEST)
    g = reg.get_manifest(name, "sha256:" + "a" * 64, accept=DOCKER_ONLY_ACCEPT)
    bh.assert_oci_error(g, 404, ["MANIFEST_UNKNOWN"])


# =============================================================================================
# real clients
# =============================================================================================
def test_skopeo_pulls_an_oci_image_by_its_converted_digest(ecr, skopeo_ecr, tmp_path):
    name = unique("conv") + "/app"
    layout = write_oci_layout(tmp_path / "layout", tag="v1", n_layers=2, layer_size=4000)
    skopeo_ecr.login(ecr)
    skopeo_ecr.copy(f"oci:{layout.root}:v1", f"docker://{ecr.server.hostport}/{name}:v1", "--preserve-digests")
    # skopeo accepts every format: it sees the stored bytes.
    p = skopeo_ecr.run("inspect", "--tls-verify=false", "--raw", f"docker://{ecr.server.hostport}/{name}:v1")
    assert p.stdout.rstrip(b"\n") == layout.manifest
    # A schema-2-only client pulls by tag and is given the conversion ...
    converted = ecr.v2().get_manifest(name, "v1", accept=DOCKER_ONLY_ACCEPT)
    digest = converted.headers["Docker-Content-Digest"]
    assert converted.headers["Content-Type"] == DOCKER_MANIFEST
    # ... and a real client pulls the image by that digest: skopeo checks the digest and every blob.
    out = tmp_path / "pulled"
    skopeo_ecr.copy(f"docker://{ecr.server.hostport}/{name}@{digest}", f"dir:{out}")
    assert (out / "manifest.json").read_bytes() == converted.content
    for data in [layout.config, *layout.layers]:
        assert (out / sha256(data).split(":", 1)[1]).read_bytes() == data
    info = json.loads(skopeo_ecr.run("inspect", "--tls-verify=false",
                                     f"docker://{ecr.server.hostport}/{name}@{digest}").stdout)
    assert info["Digest"] == digest and info["Layers"] == [sha256(x) for x in layout.layers]


def test_skopeo_docker_format_push_is_served_as_oci(ecr, skopeo_ecr, tmp_path):
    name = unique("conv") + "/docker"
    layout = write_oci_layout(tmp_path / "layout", tag="v1", n_layers=2, layer_size=4000)
    skopeo_ecr.login(ecr)
    skopeo_ecr.copy(f"oci:{layout.root}:v1", f"docker://{ecr.server.hostport}/{name}:v1", "--format", "v2s2")
    stored = ecr.client.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]
    assert stored["imageManifestMediaType"] == DOCKER_MANIFEST
    got = cli_batch_get(ecr, name, "imageTag=v1", [OCI_MANIFEST])["images"][0]
    body = got["imageManifest"].encode()
    assert got["imageManifestMediaType"] == OCI_MANIFEST and got["imageId"]["imageDigest"] == sha256(body)
    assert_converted(body, stored["imageManifest"].encode(), OCI_MANIFEST)
    out = tmp_path / "oci-out"
    skopeo_ecr.copy(f"docker://{ecr.server.hostport}/{name}@{sha256(body)}", f"oci:{out}:v1", "--preserve-digests")
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == sha256(body)
    assert (out / "blobs" / "sha256" / sha256(body).split(":", 1)[1]).read_bytes() == body
