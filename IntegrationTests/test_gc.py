"""Online garbage collection and storage accounting (docs/gc.md) against a real `berth serve`.

- pushes of images sharing layers (skopeo) while collections run in a loop, in the server and beside
  it with `berth gc`: every pushed image pulls back intact (skopeo copy back, digests checked);
- delete images (aws CLI batch-delete-image) then `berth gc` beside the running server: the blob files
  on disk shrink by exactly the deleted images' own blobs, and `berth usage` agrees with `du`;
- `kill -9` of `berth gc` in the middle of a run, then a rerun: nothing referenced is lost;
- `--dry-run` deletes nothing; `/metrics` exports the accounting.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

import berth_helpers as bh
from berth_helpers import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, describe, sha256
from ecr_helpers import ECRSession, SkopeoECR, running_server
from ecr_helpers import aws_cli, skopeo_path  # noqa: F401 (fixtures)


def blob_files(data_dir: Path) -> dict:
    """digest -> size of every committed blob file (what `du` of blobs/ counts)."""
    out = {}
    root = Path(data_dir) / "blobs"
    for p in root.rglob("*"):
        if p.is_file():
            out[f"{p.parent.parent.name}:{p.name}"] = p.stat().st_size
    return out


def du_blobs(data_dir: Path) -> int:
    return sum(blob_files(data_dir).values())


def berth_cli(srv, *args, timeout: float = 300) -> subprocess.CompletedProcess:
    cmd = [str(srv.binary), *args, "--data-dir", str(srv.data_dir)]
    p = subprocess.run(cmd, capture_output=True, env=srv.process_env(), timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-3000:]}"
    return p


def gc(srv, *extra) -> dict:
    return json.loads(berth_cli(srv, "gc", "--json", *extra).stdout)


def usage(srv) -> dict:
    return json.loads(berth_cli(srv, "usage", "--json").stdout)


def write_layout(root: Path, tag: str, layers: list) -> dict:
    """A one-image OCI layout with the given layer bytes; returns {manifest digest: ..., blobs: {digest: bytes}}."""
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    config = bh.random_config()
    manifest = bh.make_manifest(bh.descriptor(OCI_CONFIG, config), [bh.descriptor(OCI_LAYER, x) for x in layers])
    blobs = {sha256(d): d for d in [config, *layers]}
    for data in [config, manifest, *layers]:
        (blobs_dir / hashlib.sha256(data).hexdigest()).write_bytes(data)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": sha256(manifest), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return {"digest": sha256(manifest), "manifest": manifest, "blobs": blobs, "config": sha256(config)}


def pull_back_and_check(skopeo: SkopeoECR, srv, repo: str, tag: str, image: dict, out: Path):
    skopeo.copy(f"docker://{srv.hostport}/{repo}:{tag}", f"oci:{out}:{tag}", "--preserve-digests")
    index = json.loads((out / "index.json").read_text())
    digests = [m["digest"] for m in index["manifests"]
               if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag]
    assert digests == [image["digest"]], f"{repo}:{tag} came back as {digests}"
    for d, data in image["blobs"].items():
        p = out / "blobs" / "sha256" / d.split(":", 1)[1]
        assert p.read_bytes() == data, f"{repo}:{tag}: blob {d} differs"


@pytest.fixture
def gc_server(berth_bin, tmp_path):
    """A server collecting every second with a 2-second grace period."""
    with running_server(berth_bin, tmp_path / "berth", BERTH_GC_INTERVAL_SECONDS="1",
                        BERTH_GC_GRACE_SECONDS="2") as srv:
        yield srv


@pytest.fixture
def quiet_server(berth_bin, tmp_path):
    """A server that never collects by itself (`berth gc` does it). Blobs are stored as pushed (no
    encryption), so the files' sizes on disk are the plaintext sizes the accounting reports."""
    with running_server(berth_bin, tmp_path / "berth", BERTH_GC_INTERVAL_SECONDS="0", BERTH_ENCRYPT_BLOBS="false") as srv:
        yield srv


def test_pushes_sharing_layers_survive_collections_in_a_loop(gc_server, skopeo_path, aws_cli, tmp_path):
    srv = gc_server
    session = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
    skopeo = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    skopeo.login(session)
    base = [os.urandom(200_000), os.urandom(50_000)]
    images = {}
    for i in range(12):
        layers = [base[0], base[i % 2], os.urandom(30_000 + i)]
        images[i] = write_layout(tmp_path / f"layout-{i}", f"v{i}", layers)

    stop = threading.Event()
    runs = []

    def collect_beside():  # `berth gc` beside the server's own schedule
        while not stop.is_set():
            runs.append(gc(srv, "--grace", "2"))

    collector = threading.Thread(target=collect_beside, daemon=True)
    collector.start()
    try:
        def push(i):
            repo = f"gc-race/r{i % 3}"
            skopeo.copy(f"oci:{tmp_path / f'layout-{i}'}:v{i}", f"docker://{srv.hostport}/{repo}:v{i}", "--preserve-digests")
            time.sleep(0.3)
            return i

        with cf.ThreadPoolExecutor(4) as pool:
            list(pool.map(push, images))
        # Let the collectors pass the grace period a few times over what was pushed.
        time.sleep(3)
    finally:
        stop.set()
        collector.join(timeout=120)
    assert runs, "berth gc never completed a run"
    for i, image in images.items():
        pull_back_and_check(skopeo, srv, f"gc-race/r{i % 3}", f"v{i}", image, tmp_path / f"back-{i}")
    assert srv.alive()


def test_deleting_images_then_gc_frees_their_own_blobs(quiet_server, skopeo_path, aws_cli, tmp_path):
    srv = quiet_server
    session = ECRSession(srv, *srv.root_credentials, tmp=tmp_path)
    skopeo = SkopeoECR(skopeo_path, tmp_path / "skopeo")
    skopeo.login(session)
    shared = os.urandom(100_000)
    keep = write_layout(tmp_path / "keep", "keep", [shared, os.urandom(40_000)])
    drop = write_layout(tmp_path / "drop", "drop", [shared, os.urandom(70_000), os.urandom(5_000)])
    session.cli("create-repository", "--repository-name", "gc/app")
    for img, tag in ((keep, "keep"), (drop, "drop")):
        skopeo.copy(f"oci:{tmp_path / tag}:{tag}", f"docker://{srv.hostport}/gc/app:{tag}", "--preserve-digests")

    before = du_blobs(srv.data_dir)
    u0 = usage(srv)
    assert u0["bytes"] == before, f"usage {u0['bytes']} != du {before}"
    account = u0["accounts"][srv.account_id]
    app = account["repositories"]["gc/app"]
    own = sum(len(d) for dg, d in drop["blobs"].items() if dg != sha256(shared))
    assert app["images"] == 2
    assert app["uniqueBytes"] == before and app["sharedBytes"] == 0 and app["reclaimableBytes"] == 0

    out = session.cli_json("batch-delete-image", "--repository-name", "gc/app", "--image-ids", "imageTag=drop")
    assert out.get("failures") == [], out
    u1 = usage(srv)
    assert u1["unreferencedBytes"] == own
    assert u1["accounts"][srv.account_id]["repositories"]["gc/app"]["reclaimableBytes"] == own

    dry = gc(srv, "--grace", "0", "--dry-run")
    assert dry["dryRun"] and dry["bytesFreed"] == own and dry["blobsDeleted"] == 3
    assert du_blobs(srv.data_dir) == before, "a dry run deletes nothing"

    report = gc(srv, "--grace", "0")  # beside the running server
    assert report["blobsDeleted"] == 3 and report["bytesFreed"] == own, report
    after = du_blobs(srv.data_dir)
    assert before - after == own, f"du went from {before} to {after}, expected -{own}"
    u2 = usage(srv)
    assert u2["bytes"] == after and u2["unreferencedBytes"] == 0
    left = u2["accounts"][srv.account_id]["repositories"]["gc/app"]
    assert left["images"] == 1 and 0 < left["storedBytes"] < app["storedBytes"]
    assert left["uniqueBytes"] == after
    # The kept image pulls back intact, through the still running server.
    pull_back_and_check(skopeo, srv, "gc/app", "keep", keep, tmp_path / "back")
    # Idempotent.
    assert gc(srv, "--grace", "0")["blobsDeleted"] == 0
    assert du_blobs(srv.data_dir) == after

    metrics = bh.Client(srv).get("/metrics").text
    assert f'berth_storage_bytes {after}' in metrics or f'berth_storage_bytes {float(after)}' in metrics, metrics[-2000:]
    assert f'berth_storage_account_bytes{{account="{srv.account_id}",kind="unique"}}' in metrics


def test_kill9_during_gc_then_rerun_loses_nothing_referenced(quiet_server, tmp_path):
    srv = quiet_server
    c = bh.Client(srv)
    kept = [c.push_image(f"gc/kill{i % 2}", tag=f"t{i}", n_layers=2, layer_size=2048) for i in range(6)]
    garbage = 0
    for i in range(1500):
        data = os.urandom(256) + i.to_bytes(4, "big")
        c.push_blob("gc/junk", data)
        garbage += len(data)
    before = du_blobs(srv.data_dir)
    assert usage(srv)["unreferencedBytes"] == garbage

    killed = False
    for delay in (0.15, 0.3, 0.6):
        proc = subprocess.Popen([str(srv.binary), "gc", "--grace", "0", "--data-dir", str(srv.data_dir)],
                                env=srv.process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            killed = True
            break
        proc.wait()
    assert killed or du_blobs(srv.data_dir) < before

    report = gc(srv, "--grace", "0")
    assert report["blobsDeleted"] >= 0
    after = du_blobs(srv.data_dir)
    assert before - after == garbage, f"freed {before - after}, expected {garbage}"
    u = usage(srv)
    assert u["bytes"] == after and u["unreferencedBytes"] == 0
    # Every referenced blob is still there and readable through the server.
    for img in kept:
        r = c.get_manifest(img.repo, img.tag)
        assert r.status_code == 200 and r.content == img.manifest, describe(r)
        for digest, data in img.blobs.items():
            c.blob_ok(img.repo, digest, data)
    assert srv.alive()
