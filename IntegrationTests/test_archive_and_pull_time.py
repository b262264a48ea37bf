"""The archive storage class (UpdateImageStorageClass) and pull tracking (lastRecordedPullTime, pull time
update exclusions), driven with the aws CLI, boto3 and skopeo.

Semantics from the ECR user guide: an archived image can still be listed and described (imageStatus
ARCHIVED, shown by the imageStatus filter; the default filter shows ACTIVE images only), its pulls fail
with a 404 until it is restored, and pushing it again restores it. Pulls by principals on the registry's
pull time update exclusion list leave lastRecordedPullTime unchanged (at most 100 per registry).
"""

from __future__ import annotations

import json
import sqlite3
import time

import pytest

import berth_helpers as bh
from berth_helpers import OCI_INDEX, describe, unique
from ecr_helpers import (ACCOUNT_ID, ECRSession, assert_recent, build_image, check_after_test, create_repo, expect_error,
                         put_api_image, running_server)
from ecr_helpers import aws_cli, ecr, ecr_server, skopeo_ecr, skopeo_path  # noqa: F401 (fixtures)
from s3_helpers import ACCESS_KEY, BUCKET, SECRET_KEY
from s3_helpers import seaweed  # noqa: F401 (a fixture, started only for the S3 variant)
from test_access_control import READ_ONLY, new_user, root  # noqa: F401 (root is a fixture)


def details(client, repo, **params):
    return client.describe_images(repositoryName=repo, **params)["imageDetails"]


def test_archive_and_restore_with_the_cli(ecr, skopeo_ecr, tmp_path):
    repo = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, repo, tag="v1", n_layers=2)
    other = put_api_image(ecr.client, repo, tag="other")
    skopeo_ecr.login(ecr)
    src = f"docker://{ecr.server.hostport}/{repo}:v1"
    skopeo_ecr.copy(src, f"oci:{tmp_path / 'before'}:v1")

    out = ecr.cli_json("update-image-storage-class", "--repository-name", repo, "--image-id", "imageTag=v1",
                       "--target-storage-class", "ARCHIVE")
    assert out["imageStatus"] == "ARCHIVED", out
    assert out["imageId"]["imageDigest"] == img.digest and out["imageId"].get("imageTag") == "v1", out
    assert out["registryId"] == ACCOUNT_ID and out["repositoryName"] == repo

    # Listed and described only when asked for (the default filter is ACTIVE).
    assert [d["imageDigest"] for d in details(ecr.client, repo)] == [other.digest]
    archived = details(ecr.client, repo, filter={"imageStatus": "ARCHIVED"})
    assert [d["imageDigest"] for d in archived] == [img.digest]
    assert archived[0]["imageStatus"] == "ARCHIVED" and archived[0]["imageTags"] == ["v1"]
    assert_recent(archived[0]["lastArchivedAt"], "lastArchivedAt")
    assert "lastActivatedAt" not in archived[0]
    by_id = details(ecr.client, repo, imageIds=[{"imageTag": "v1"}])
    assert by_id[0]["imageStatus"] == "ARCHIVED", "DescribeImages by id shows the image whatever its status"
    cli = ecr.cli_json("describe-images", "--repository-name", repo, "--filter", "imageStatus=ANY")
    assert sorted(d["imageStatus"] for d in cli["imageDetails"]) == ["ACTIVE", "ARCHIVED"]
    ids = ecr.client.list_images(repositoryName=repo, filter={"imageStatus": "ARCHIVED"})["imageIds"]
    assert ids == [{"imageDigest": img.digest, "imageTag": "v1"}]
    assert {i["imageDigest"] for i in ecr.client.list_images(repositoryName=repo)["imageIds"]} == {other.digest}

    # Pulls fail on both doors: /v2/ answers 404 (by tag and by digest), BatchGetImage reports a failure.
    v2 = ecr.v2()
    for ref in ("v1", img.digest):
        for method in ("GET", "HEAD"):
            r = v2.get_manifest(repo, ref, method=method)
            assert r.status_code == 404, describe(r)
        r = v2.get_manifest(repo, ref)
        err = r.json()["errors"][0]
        assert err["code"] == "MANIFEST_UNKNOWN" and "archived" in err["message"], err
    p = skopeo_ecr.copy(src, f"oci:{tmp_path / 'archived'}:v1", check=False)
    assert p.returncode != 0
    assert b"archived" in p.stderr or b"manifest unknown" in p.stderr.lower(), p.stderr[-2000:]
    got = ecr.client.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}, {"imageDigest": img.digest}])
    assert got["images"] == []
    assert [f["failureCode"] for f in got["failures"]] == ["ImageNotFound", "ImageNotFound"]
    assert all("archived" in f["failureReason"] for f in got["failures"]), got["failures"]
    expect_error(ecr.client.start_image_scan, "ImageArchivedException", repositoryName=repo, imageId={"imageTag": "v1"})
    e = expect_error(ecr.client.get_download_url_for_layer, "LayerInaccessibleException", repositoryName=repo,
                     layerDigest=img.layer_digests[0])
    assert "archived" in e.response["Error"]["Message"]
    # BatchCheckLayerAvailability reports its layers ARCHIVED (LayerAvailability in the ECR model).
    layers = ecr.client.batch_check_layer_availability(
        repositoryName=repo, layerDigests=[img.layer_digests[0], other.layer_digests[0]])["layers"]
    assert {l["layerDigest"]: l["layerAvailability"] for l in layers} == {
        img.layer_digests[0]: "ARCHIVED", other.layer_digests[0]: "AVAILABLE"}, layers
    # Its layers, which only archived images use, are not pulled either: 404 BLOB_UNKNOWN on /v2/.
    for method in ("GET", "HEAD"):
        r = v2.request(method, f"/v2/{repo}/blobs/{img.layer_digests[0]}")
        assert r.status_code == 404, describe(r)
    assert v2.get(f"/v2/{repo}/blobs/{img.layer_digests[0]}").json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    v2.blob_ok(repo, other.layer_digests[0], other.layers[0])
    # The other image is untouched.
    assert ecr.client.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "other"}])["failures"] == []

    out = ecr.cli_json("update-image-storage-class", "--repository-name", repo, "--image-id",
                       f"imageDigest={img.digest}", "--target-storage-class", "STANDARD")
    # Berth's restore is immediate (the bytes never moved): ACTIVE at once, not ACTIVATING.
    assert out["imageStatus"] == "ACTIVE", out
    d = details(ecr.client, repo, imageIds=[{"imageDigest": img.digest}])[0]
    assert d["imageStatus"] == "ACTIVE"
    assert_recent(d["lastActivatedAt"], "lastActivatedAt")
    assert d["lastActivatedAt"] >= d["lastArchivedAt"]
    skopeo_ecr.copy(src, f"oci:{tmp_path / 'after'}:v1")
    v2.blob_ok(repo, img.layer_digests[0], img.layers[0])
    assert ecr.client.get_download_url_for_layer(repositoryName=repo, layerDigest=img.layer_digests[0])["downloadUrl"]
    layers = ecr.client.batch_check_layer_availability(repositoryName=repo, layerDigests=[img.layer_digests[0]])["layers"]
    assert layers[0]["layerAvailability"] == "AVAILABLE", layers
    assert v2.get_manifest(repo, "v1").status_code == 200
    # Restoring an ACTIVE image changes nothing.
    again = ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="STANDARD")
    assert again["imageStatus"] == "ACTIVE"
    assert details(ecr.client, repo, imageIds=[{"imageDigest": img.digest}])[0]["lastActivatedAt"] == d["lastActivatedAt"]


def test_pushing_an_archived_image_again_restores_it(ecr):
    repo = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, repo, tag="v1")
    ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    assert ecr.v2().get_manifest(repo, "v1").status_code == 404
    # PutImage of the same manifest: not ImageAlreadyExists, a restore.
    ecr.client.put_image(repositoryName=repo, imageManifest=img.manifest_text, imageTag="v1")
    d = details(ecr.client, repo, imageIds=[{"imageTag": "v1"}])[0]
    assert d["imageStatus"] == "ACTIVE" and "lastActivatedAt" in d
    assert ecr.v2().get_manifest(repo, "v1").status_code == 200
    # And over /v2/: archive again, PUT the manifest by digest.
    ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    r = ecr.v2().request("PUT", f"/v2/{repo}/manifests/{img.digest}", data=img.manifest,
                         headers={"Content-Type": img.media_type})
    assert r.status_code == 201, describe(r)
    assert ecr.v2().get_manifest(repo, "v1").status_code == 200
    # An archived image can be deleted like any other.
    ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    out = ecr.client.batch_delete_image(repositoryName=repo, imageIds=[{"imageDigest": img.digest}])
    assert out["failures"] == [] and out["imageIds"] == [{"imageDigest": img.digest, "imageTag": "v1"}]
    assert details(ecr.client, repo, filter={"imageStatus": "ANY"}) == []


def test_update_image_storage_class_errors(ecr):
    repo = create_repo(ecr.client)["repositoryName"]
    img = put_api_image(ecr.client, repo, tag="v1")
    expect_error(ecr.client.update_image_storage_class, "ImageNotFoundException", repositoryName=repo,
                 imageId={"imageTag": "nope"}, targetStorageClass="ARCHIVE")
    expect_error(ecr.client.update_image_storage_class, "RepositoryNotFoundException", repositoryName=unique("none"),
                 imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    expect_error(ecr.raw.update_image_storage_class, {"ValidationException", "InvalidParameterException"},
                 repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="GLACIER")
    expect_error(ecr.raw.update_image_storage_class, "InvalidParameterException", repositoryName=repo,
                 imageId={"imageTag": "v1"})
    expect_error(ecr.raw.describe_images, "InvalidParameterException", repositoryName=repo, filter={"imageStatus": "FROZEN"})
    # An image an ACTIVE index lists is not archived alone.
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [img.descriptor()]})
    ecr.client.put_image(repositoryName=repo, imageManifest=index, imageTag="list")
    e = expect_error(ecr.client.update_image_storage_class, "ImageStorageClassUpdateNotSupportedException",
                     repositoryName=repo, imageId={"imageTag": "v1"}, targetStorageClass="ARCHIVE")
    assert "index" in e.response["Error"]["Message"]
    assert ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "list"},
                                                 targetStorageClass="ARCHIVE")["imageStatus"] == "ARCHIVED"
    assert ecr.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "v1"},
                                                 targetStorageClass="ARCHIVE")["imageStatus"] == "ARCHIVED"


def pull_time(client, repo, digest):
    return details(client, repo, imageIds=[{"imageDigest": digest}])[0].get("lastRecordedPullTime")


def test_pull_time_and_exclusions(root):
    repo = create_repo(root.client)["repositoryName"]
    img = put_api_image(root.client, repo, tag="v1")
    name, scanner = new_user(root, attach=[READ_ONLY])
    scanner_arn = f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"

    out = root.cli_json("register-pull-time-update-exclusion", "--principal-arn", scanner_arn)
    assert out["principalArn"] == scanner_arn
    assert abs(out["createdAt"] - time.time()) < 120, out  # the CLI prints the epoch seconds
    listed = root.cli_json("list-pull-time-update-exclusions")
    assert scanner_arn in listed["pullTimeUpdateExclusions"], listed
    expect_error(root.client.register_pull_time_update_exclusion, "ExclusionAlreadyExistsException", principalArn=scanner_arn)

    # The excluded user pulls through both doors: nothing is recorded.
    r = scanner.v2().get_manifest(repo, "v1")
    assert r.status_code == 200, describe(r)
    got = scanner.client.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert got["failures"] == [] and len(got["images"]) == 1
    assert pull_time(root.client, repo, img.digest) is None

    # Anyone else's pull is recorded, and DescribeImages shows it at once (exact, not after 24 h).
    r = root.v2().get_manifest(repo, "v1")
    assert r.status_code == 200, describe(r)
    first = pull_time(root.client, repo, img.digest)
    assert first is not None
    assert_recent(first, "lastRecordedPullTime")
    root.client.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": img.digest}])
    second = pull_time(root.client, repo, img.digest)
    assert second >= first

    # Deregistered: the user's pulls count again.
    assert root.cli_json("deregister-pull-time-update-exclusion", "--principal-arn", scanner_arn)["principalArn"] == scanner_arn
    assert scanner_arn not in root.client.list_pull_time_update_exclusions()["pullTimeUpdateExclusions"]
    expect_error(root.client.deregister_pull_time_update_exclusion, "ExclusionNotFoundException", principalArn=scanner_arn)
    time.sleep(1.1)
    scanner.client.batch_get_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    assert pull_time(root.client, repo, img.digest) > second


def test_pull_time_update_exclusion_validation_and_paging(root, ecr):
    for bad in ("arn:aws:iam::123456789012:group/devs", "arn:aws:iam::123:role/x", "not-an-arn",
                "arn:aws:iam::123456789012:role/" + "x" * 200):
        expect_error(ecr.raw.register_pull_time_update_exclusion, {"ValidationException", "InvalidParameterException"},
                     principalArn=bad)
    arns = [f"arn:aws:iam::{ACCOUNT_ID}:role/{unique('page')}" for _ in range(3)]
    for a in arns:
        root.client.register_pull_time_update_exclusion(principalArn=a)
    seen, token = [], None
    while True:
        params = {"maxResults": 1}
        if token:
            params["nextToken"] = token
        page = root.client.list_pull_time_update_exclusions(**params)
        assert len(page["pullTimeUpdateExclusions"]) <= 1
        seen += page["pullTimeUpdateExclusions"]
        token = page.get("nextToken")
        if not token:
            break
    assert set(arns) <= set(seen) and seen == sorted(seen)
    expect_error(ecr.raw.list_pull_time_update_exclusions, "InvalidParameterException", maxResults=0)
    for a in arns:
        root.client.deregister_pull_time_update_exclusion(principalArn=a)


def blob_file(root, digest: str):
    algorithm, hexdigest = digest.split(":", 1)
    return root / "blobs" / algorithm / hexdigest[:2] / hexdigest


class FileSystemTiers:
    """The filesystem store's tiers: `<data>/blobs/…` and `archiveDirectory`'s `blobs/…`."""

    def __init__(self, tmp_path):
        self.archive = tmp_path / "archive"
        self.env = {"BERTH_ARCHIVE_DIRECTORY": str(self.archive)}
        self.data = None

    def in_primary(self, d):
        return blob_file(self.data, d).exists()

    def in_archive(self, d):
        return blob_file(self.archive, d).exists()


class S3Tiers:
    """The S3 store's tiers: `blobs/…` of the bucket and `<s3ArchivePrefix>blobs/…` (STANDARD_IA objects)."""

    def __init__(self, seaweed, prefix):
        self.seaweed, self.prefix = seaweed, prefix
        self.env = {"BERTH_BLOB_BACKEND": "s3", "BERTH_S3_ENDPOINT": seaweed.endpoint, "BERTH_S3_BUCKET": BUCKET,
                    "BERTH_S3_REGION": "us-east-1", "BERTH_S3_ACCESS_KEY_ID": ACCESS_KEY,
                    "BERTH_S3_SECRET_ACCESS_KEY": SECRET_KEY, "BERTH_S3_ARCHIVE_PREFIX": prefix,
                    "BERTH_S3_ARCHIVE_STORAGE_CLASS": "STANDARD_IA"}
        self.data = None

    @staticmethod
    def key(d):
        algorithm, hexdigest = d.split(":", 1)
        return f"blobs/{algorithm}/{hexdigest[:2]}/{hexdigest}"

    def head(self, key):
        try:
            return self.seaweed.s3.head_object(Bucket=BUCKET, Key=key)
        except self.seaweed.s3.exceptions.ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def in_primary(self, d):
        return self.head(self.key(d)) is not None

    def in_archive(self, d):
        head = self.head(self.prefix + self.key(d))
        if head is not None:
            assert head.get("StorageClass") == "STANDARD_IA", head
        return head is not None


@pytest.mark.parametrize("store", ["filesystem", "s3"])
def test_archive_tier_moves_only_unshared_blobs(berth_bin, tmp_path, skopeo_ecr, store, request):
    """The archive tier of each blob store (`archiveDirectory`; `s3ArchivePrefix` with
    `s3ArchiveStorageClass`): archiving moves the bytes only archived images use, pulls of the archived
    image fail while those of an image sharing a layer work, a restore brings the bytes back."""
    tiers = FileSystemTiers(tmp_path) if store == "filesystem" else S3Tiers(request.getfixturevalue("seaweed"),
                                                                            f"archive-{unique()}/")
    with running_server(berth_bin, tmp_path / "srv", **tiers.env) as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        repo = create_repo(s.client)["repositoryName"]
        one = put_api_image(s.client, repo, tag="one", n_layers=2)
        # Image two shares image one's first layer.
        two = build_image(repo, n_layers=1)
        two.layers = [one.layers[0]] + two.layers
        two.manifest = bh.make_manifest(bh.descriptor(two.config_media_type, two.config),
                                        [bh.descriptor(two.layer_media_type, x) for x in two.layers])
        two.digest = bh.sha256(two.manifest)
        put_api_image(s.client, repo, tag="two", image=two)
        shared, unique_layer = one.layer_digests
        tiers.data = srv.data_dir

        s.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "one"}, targetStorageClass="ARCHIVE")
        for d in (unique_layer, one.config_digest):
            assert tiers.in_archive(d) and not tiers.in_primary(d), d
        assert tiers.in_primary(shared) and not tiers.in_archive(shared), "a layer an ACTIVE image shares stays"
        skopeo_ecr.login(s)
        p = skopeo_ecr.copy(f"docker://{srv.hostport}/{repo}:one", f"oci:{tmp_path / 'refused'}:one", check=False)
        assert p.returncode != 0, "an archived image is not pulled"
        skopeo_ecr.copy(f"docker://{srv.hostport}/{repo}:two", f"oci:{tmp_path / 'two'}:two")

        s.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "two"}, targetStorageClass="ARCHIVE")
        assert tiers.in_archive(shared) and not tiers.in_primary(shared)

        # The bytes come back in the background: ACTIVATING (not pullable yet), then ACTIVE.
        out = s.client.update_image_storage_class(repositoryName=repo, imageId={"imageTag": "one"},
                                                  targetStorageClass="STANDARD")
        assert out["imageStatus"] == "ACTIVATING", out
        deadline = time.time() + 30
        while True:
            d = details(s.client, repo, imageIds=[{"imageTag": "one"}])[0]
            if d["imageStatus"] == "ACTIVE":
                break
            assert d["imageStatus"] == "ACTIVATING" and "lastActivatedAt" not in d, d
            assert time.time() < deadline, "the restore did not complete"
            time.sleep(0.1)
        assert_recent(d["lastActivatedAt"], "lastActivatedAt")
        for d in (shared, unique_layer, one.config_digest):
            assert tiers.in_primary(d) and not tiers.in_archive(d), d
        assert tiers.in_archive(two.layer_digests[1]), "image two's own layer stays archived"
        skopeo_ecr.copy(f"docker://{srv.hostport}/{repo}:one", f"oci:{tmp_path / 'one'}:one")
        # The collector's delete looks in both tiers: image two deleted, its own (archived) layer is gone.
        own = two.layer_digests[1]
        s.client.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "two"}])
        from test_gc import gc
        assert gc(srv, "--grace", "0")["blobsDeleted"] >= 1
        assert not tiers.in_archive(own) and not tiers.in_primary(own), own
        assert tiers.in_primary(shared), "image one's layer stays"
        check_after_test(srv, [s])


def test_pull_times_are_written_in_batches_and_at_shutdown(berth_bin, tmp_path):
    """No store write per pull: with an interval of an hour, a pull is in memory only (the database has no
    pull time) until a graceful stop writes it; after the restart DescribeImages shows it."""
    with running_server(berth_bin, tmp_path / "srv", BERTH_PULL_TIME_FLUSH_SECONDS="3600") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        repo = create_repo(s.client)["repositoryName"]
        img = put_api_image(s.client, repo, tag="v1")
        v2 = s.v2()
        for _ in range(20):
            r = v2.get_manifest(repo, "v1")
            assert r.status_code == 200, describe(r)
        db = sqlite3.connect(f"file:{srv.data_dir / 'berth.db'}?mode=ro", uri=True)
        try:
            stored = db.execute("SELECT last_pulled_at FROM manifests WHERE digest = ?", (img.digest,)).fetchall()
        finally:
            db.close()
        assert stored == [(None,)], "a pull is not written by itself"
        before_stop = time.time()
        assert srv.stop() == 0
        srv.start()
        d = details(s.client, repo, imageIds=[{"imageTag": "v1"}])[0]
        assert "lastRecordedPullTime" in d, "the graceful stop wrote the pull time"
        assert d["lastRecordedPullTime"].timestamp() <= before_stop + 1
        assert_recent(d["lastRecordedPullTime"], "lastRecordedPullTime")
        check_after_test(srv, [s])
