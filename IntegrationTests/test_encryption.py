"""Blobs encrypted at rest (issue #13, section 2) on a real `berth serve`, with skopeo, boto3 and raw
OCI requests: AES256 and KMS repositories round trip, nothing of a pushed blob is found in the clear
under the data directory, Range GETs and resumed chunked uploads work on sealed blobs, a byte changed
on disk is an error (never wrong bytes), a disabled key stops pulls until it is enabled again, bad keys
are refused at CreateRepository with KmsException, and mounts between different keys are refused.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

import berth_helpers as bh
from ecr_helpers import (ECRSession, SkopeoECR, _boto_session, check_after_test, running_server,
                         write_oci_layout)
from ecr_helpers import skopeo_path, aws_cli  # noqa: F401 (fixtures)

SEGMENT = 64 << 10


@pytest.fixture
def enc(berth_bin, tmp_path):
    """A root ECRSession on a berth of the test's own (its data directory is inspected)."""
    with running_server(berth_bin, tmp_path / "berth") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        yield s
        check_after_test(srv, [s])


def kms_client(s: ECRSession):
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=10, read_timeout=60)
    return _boto_session().client("kms", endpoint_url=s.server.url, region_name="us-east-1",
                                  aws_access_key_id=s.access_key, aws_secret_access_key=s.secret_key, config=cfg)


def blob_path(srv, digest: str) -> Path:
    hexd = digest.split(":", 1)[1]
    return Path(srv.data_dir) / "blobs" / "sha256" / hexd[:2] / hexd


def raw_get(srv, path: str, **headers) -> requests.Response:
    """A GET outside the 5xx-tracking client (damaged blobs are expected to fail)."""
    return requests.get(srv.url + path, headers={"Authorization": srv.basic_auth_header(), **headers}, timeout=60)


def plaintext_found(data_dir: Path, needles: list[bytes]) -> list[str]:
    hits = []
    for f in Path(data_dir).rglob("*"):
        if f.is_file():
            content = f.read_bytes()
            hits += [f"{f}" for n in needles if n in content]
    return hits


def test_skopeo_round_trips_through_aes256_and_kms_with_no_plaintext_at_rest(enc, skopeo_path, tmp_path):
    c = enc.client
    kms = kms_client(enc)
    key = kms.create_key(Description="blob key")["KeyMetadata"]
    kms.create_alias(AliasName="alias/blobs", TargetKeyId=key["KeyId"])
    repos = {
        "enc/aes": {},
        "enc/kms-default": {"encryptionConfiguration": {"encryptionType": "KMS"}},
        "enc/kms-alias": {"encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": "alias/blobs"}},
    }
    for name, params in repos.items():
        r = c.create_repository(repositoryName=name, **params)["repository"]
        enc_conf = r["encryptionConfiguration"]
        if name == "enc/aes":
            assert enc_conf == {"encryptionType": "AES256"}
        else:
            assert enc_conf["encryptionType"] == "KMS"
            assert enc_conf["kmsKey"].startswith("arn:aws:kms:us-east-1:123456789012:key/"), enc_conf
    assert c.describe_repositories(repositoryNames=["enc/kms-alias"])["repositories"][0]["encryptionConfiguration"][
        "kmsKey"] == key["Arn"]
    aliases = {a["AliasName"] for a in kms.list_aliases()["Aliases"]}
    assert "alias/aws/ecr" in aliases, "alias/aws/ecr is created on first use"

    skopeo = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    skopeo.login(enc)
    host = enc.server.hostport
    needles = []
    for i, name in enumerate(repos):
        img = write_oci_layout(tmp_path / f"layout{i}", "v1", n_layers=2, layer_size=3 * SEGMENT + 999)
        skopeo.copy(f"oci:{img.root}:v1", f"docker://{host}/{name}:v1", "--preserve-digests")
        out = tmp_path / f"pulled{i}"
        skopeo.copy(f"docker://{host}/{name}:v1", f"oci:{out}:v1", "--preserve-digests")
        for layer in img.layers:
            pulled = out / "blobs" / "sha256" / hashlib.sha256(layer).hexdigest()
            assert pulled.read_bytes() == layer
            needles += [layer[100:164], layer[-64:]]
            size = blob_path(enc.server, "sha256:" + hashlib.sha256(layer).hexdigest()).stat().st_size
            assert size > len(layer), "the stored blob is sealed (header and tags)"
        needles.append(img.config[:64])
    hits = plaintext_found(enc.server.data_dir, needles)
    assert not hits, f"plaintext of pushed blobs found at rest: {hits[:5]}"

    # `berth usage` accounts by key: one repository, one image and its three blobs under each key.
    from test_gc import usage
    by_key = {k["key"]: k for k in usage(enc.server)["keys"]}
    kms_arns = {c.describe_repositories(repositoryNames=[n])["repositories"][0]["encryptionConfiguration"]["kmsKey"]
                for n in ("enc/kms-default", "enc/kms-alias")}
    assert set(by_key) == {"AES256"} | kms_arns, by_key
    for k in by_key.values():
        assert (k["repositories"], k["images"], k["blobs"]) == (1, 1, 3), k
        assert k["bytes"] > 2 * (3 * SEGMENT + 999), k


def test_ranges_and_resumed_chunked_uploads_on_sealed_blobs(enc, client_for):
    enc.client.create_repository(repositoryName="enc/ranges", encryptionConfiguration={"encryptionType": "KMS"})
    oci = client_for(enc.server)
    data = os.urandom(3 * SEGMENT + 12345)
    # Chunks that end inside, at and across segment boundaries.
    digest = oci.push_blob("enc/ranges", data, method="chunked", chunk=SEGMENT - 7)
    oci.blob_ok("enc/ranges", digest, data)
    head = oci.head(f"/v2/enc/ranges/blobs/{digest}")
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    for a, b in [(0, 0), (SEGMENT - 5, SEGMENT + 5), (SEGMENT, 2 * SEGMENT - 1), (100, len(data) - 1),
                 (len(data) - 10, len(data) - 1)]:
        r = oci.get(f"/v2/enc/ranges/blobs/{digest}", headers={"Range": f"bytes={a}-{b}"})
        assert r.status_code == 206, bh.describe(r)
        assert r.headers["Content-Range"] == f"bytes {a}-{b}/{len(data)}"
        assert r.content == data[a:b + 1]

    # A chunk that fails half-way is resumed from the offset the server reports, after a restart.
    data2 = os.urandom(2 * SEGMENT + 4321)
    loc = oci.start_upload("enc/ranges")
    first = SEGMENT + 100
    r = oci.patch(loc, data=data2[:first], headers={"Content-Type": "application/octet-stream",
                                                    "Content-Range": f"0-{first - 1}"})
    assert r.status_code == 202, bh.describe(r)
    loc = oci.location(r)
    enc.server.restart()
    status = oci.get(loc)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{first - 1}", bh.describe(status)
    r = oci.patch(loc, data=data2[first:], headers={"Content-Type": "application/octet-stream",
                                                    "Content-Range": f"{first}-{len(data2) - 1}"})
    assert r.status_code == 202, bh.describe(r)
    d2 = "sha256:" + hashlib.sha256(data2).hexdigest()
    r = oci.put(bh.add_query(oci.location(r), digest=d2))
    assert r.status_code == 201, bh.describe(r)
    oci.blob_ok("enc/ranges", d2, data2)


def test_a_byte_changed_on_disk_is_an_error_never_wrong_bytes(enc, client_for):
    enc.client.create_repository(repositoryName="enc/flip")
    oci = client_for(enc.server)
    data = os.urandom(4 * SEGMENT)
    digests = []
    for offset_in_file in [10, 2 * SEGMENT, -5]:
        blob = os.urandom(len(data))
        d = oci.push_blob("enc/flip", blob)
        path = blob_path(enc.server, d)
        raw = bytearray(path.read_bytes())
        raw[offset_in_file] ^= 0x01
        path.write_bytes(bytes(raw))
        try:
            r = raw_get(enc.server, f"/v2/enc/flip/blobs/{d}")
            # An error answer, or a body cut at the damaged segment: never the whole body, never wrong bytes.
            assert r.status_code != 200 or (len(r.content) < len(blob) and blob.startswith(r.content)), bh.describe(r)
        except requests.exceptions.RequestException:
            pass  # the body was cut at the damaged segment: an error for the client
        digests.append(d)
    assert enc.server.alive()


def test_a_disabled_key_stops_pulls_until_it_is_enabled(enc, client_for):
    kms = kms_client(enc)
    key = kms.create_key()["KeyMetadata"]
    enc.client.create_repository(repositoryName="enc/keyed",
                                 encryptionConfiguration={"encryptionType": "KMS", "kmsKey": key["KeyId"]})
    oci = client_for(enc.server)
    data = os.urandom(100_000)
    d = oci.push_blob("enc/keyed", data)
    oci.blob_ok("enc/keyed", d, data)
    kms.disable_key(KeyId=key["KeyId"])
    r = oci.get(f"/v2/enc/keyed/blobs/{d}")
    assert r.status_code == 403, bh.describe(r)
    assert r.json()["errors"][0]["code"] == "DENIED"
    assert "DisabledException" in r.json()["errors"][0]["message"]
    kms.enable_key(KeyId=key["KeyId"])
    oci.blob_ok("enc/keyed", d, data)


def test_create_repository_refuses_unusable_keys(enc):
    c = enc.client
    kms = kms_client(enc)

    def refused(kms_key, code="KmsException"):
        with pytest.raises(ClientError) as info:
            c.create_repository(repositoryName=bh.unique("enc/bad"),
                                encryptionConfiguration={"encryptionType": "KMS", "kmsKey": kms_key})
        assert info.value.response["Error"]["Code"] == code, info.value.response
        return info.value.response

    resp = refused("arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000")
    assert resp.get("kmsError") == "NotFoundException" or "does not exist" in resp["Error"]["Message"]
    refused("alias/no-such-alias")
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    refused(disabled)
    doomed = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7)
    refused(doomed)
    with pytest.raises(ClientError) as info:
        c.create_repository(repositoryName=bh.unique("enc/dsse"), encryptionConfiguration={"encryptionType": "KMS_DSSE"})
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"


def test_mounts_only_within_one_key(enc, client_for):
    c = enc.client
    c.create_repository(repositoryName="enc/src")
    c.create_repository(repositoryName="enc/same")
    c.create_repository(repositoryName="enc/other", encryptionConfiguration={"encryptionType": "KMS"})
    oci = client_for(enc.server)
    data = os.urandom(70_000)
    d = oci.push_blob("enc/src", data)
    r = oci.post(f"/v2/enc/other/blobs/uploads/?mount={d}&from=enc/src", headers={"Content-Length": "0"})
    assert r.status_code == 202, f"a mount across keys is an upload session: {bh.describe(r)}"
    assert oci.head(f"/v2/enc/other/blobs/{d}").status_code == 404
    r = oci.post(f"/v2/enc/same/blobs/uploads/?mount={d}&from=enc/src", headers={"Content-Length": "0"})
    assert r.status_code == 201, bh.describe(r)
    oci.blob_ok("enc/same", d, data)
    # The other key's repository uploads it; both read it through their own key.
    oci.push_blob("enc/other", data)
    oci.blob_ok("enc/other", d, data)
    oci.blob_ok("enc/src", d, data)


def test_encryption_off_stores_aes256_blobs_as_pushed(berth_bin, tmp_path, client_for):
    with running_server(berth_bin, tmp_path / "plain", BERTH_ENCRYPT_BLOBS="false") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        s.client.create_repository(repositoryName="plain/aes")
        s.client.create_repository(repositoryName="plain/kms", encryptionConfiguration={"encryptionType": "KMS"})
        oci = client_for(srv)
        data = os.urandom(90_000)
        d = oci.push_blob("plain/aes", data)
        assert blob_path(srv, d).read_bytes() == data
        oci.blob_ok("plain/aes", d, data)
        data2 = os.urandom(90_000)
        d2 = oci.push_blob("plain/kms", data2)
        assert blob_path(srv, d2).stat().st_size > len(data2), "KMS repositories are sealed either way"
        oci.blob_ok("plain/kms", d2, data2)
        check_after_test(srv, [s])


def test_encrypt_existing_seals_plaintext_blobs_in_place(berth_bin, tmp_path, client_for):
    import subprocess
    with running_server(berth_bin, tmp_path / "upgrade", BERTH_ENCRYPT_BLOBS="false") as srv:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        s.client.create_repository(repositoryName="old/aes")
        oci = client_for(srv)
        blobs = [os.urandom(n) for n in (10, SEGMENT, 3 * SEGMENT + 5)]
        digests = [oci.push_blob("old/aes", b) for b in blobs]
        assert all(blob_path(srv, d).read_bytes() == b for d, b in zip(digests, blobs))
        srv.stop()
        srv.env["BERTH_ENCRYPT_BLOBS"] = "true"
        cmd = [str(srv.binary), "admin", "encrypt-existing", "--data-dir", str(srv.data_dir)]
        p = subprocess.run(cmd, capture_output=True, timeout=120, env=srv.process_env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
        assert '"sealed": 3' in p.stdout.decode(), p.stdout
        assert "[3/3]" in p.stderr.decode(), "progress is reported"
        for d, b in zip(digests, blobs):
            assert blob_path(srv, d).stat().st_size > len(b)
        assert not plaintext_found(srv.data_dir, [b[:64] for b in blobs if len(b) >= 64])
        p = subprocess.run(cmd, capture_output=True, timeout=120, env=srv.process_env(), stdin=subprocess.DEVNULL)
        assert p.returncode == 0 and '"sealed": 0' in p.stdout.decode(), "a second run has nothing to do"
        srv.start()
        for d, b in zip(digests, blobs):
            oci.blob_ok("old/aes", d, b)
        check_after_test(srv, [s])


def test_a_server_with_another_master_key_is_refused(berth_bin, tmp_path):
    """The master key seals every secret and data key. A process started on the same metadata with another
    key (a second node given its own master.key, a restored backup without the key) would fail on every
    access key and sealed blob; it is refused at start instead, and the right key starts again."""
    import base64
    import subprocess
    from ecr_helpers import ECRServer, default_env
    srv = ECRServer(berth_bin, tmp_path / "berth", env=default_env())
    srv.start()
    srv.stop()
    key_file = srv.data_dir / "master.key"
    original = key_file.read_text()
    key_file.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    cmd = [str(berth_bin), "serve", "--data-dir", str(srv.data_dir), "--host", bh.HOST, "--port", str(bh.free_port())]
    p = subprocess.run(cmd, capture_output=True, env=srv.process_env(), timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    err = p.stderr.decode(errors="replace")
    assert "master key" in err and "same key" in err, err[-2000:]
    # berth admin refuses too (it would otherwise seal new secrets under the wrong key).
    p = subprocess.run([str(berth_bin), "admin", "create-account", "210987654321", "--data-dir", str(srv.data_dir)],
                       capture_output=True, env=srv.process_env(), timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode != 0 and "master key" in p.stderr.decode(errors="replace")
    key_file.write_text(original)
    srv.start()
    try:
        s = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
        assert s.client.describe_repositories()["repositories"] == []
    finally:
        srv.dispose()


def test_bench_commands_measure_and_leave_nothing_behind(berth_bin, tmp_path):
    # `berth bench crypto` and `berth bench disk` are how docs/encryption.md's bounds are measured: they must
    # run, print a figure per measure, and `disk` must remove every file it wrote.
    import re
    import subprocess
    out = subprocess.run([berth_bin, "bench", "crypto", "--megabytes", "4", "--repeats", "1"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r"^\s*\d+ MiB/s\s+\S", out, re.M), out
    disk = tmp_path / "disk"
    disk.mkdir()
    out = subprocess.run([berth_bin, "bench", "disk", "--dir", str(disk), "--megabytes", "8", "--repeats", "2"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    rows = [line for line in out.splitlines() if re.match(r"^\s*\d+ \(\s*\d+–\s*\d+\)\s+\d+\.\d\d\s+\S", line)]
    assert len(rows) == 3, out
    assert list(disk.iterdir()) == [], "bench disk left files behind"
    bad = subprocess.run([berth_bin, "bench", "disk", "--dir", str(disk), "--chunk-kib", "6"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "multiple of 4" in bad.stderr, bad.stderr
