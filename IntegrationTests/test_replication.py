"""Replication (issue 15, section 2) between two real `berth serve` processes: the source in us-east-1,
a peer in us-west-2 (its own data directory and port) reached through `BERTH_REPLICATION_PEERS`.

* aws CLI: put-replication-configuration (and its refusals), describe-registry,
  describe-image-replication-status.
* skopeo pushes a real image to the source; it appears on the peer (skopeo pulls it back: same digest).
* A multi-arch index with its children, and a referrer (a manifest with `subject`), replicate.
* A repository filter keeps another repository home.
* Same-deployment cross-account replication fails without the destination's registry policy, and
  works with it.
* The peer down then back: the job is retried and nothing is lost.
* `kill -9` of the source with jobs queued, then a restart: the jobs finish.
* `berth replication backfill` enqueues images pushed before their rule; `berth replication status`
  and `/metrics` show the queue and the lag.
* `berth replication reconcile` finds an image deleted at the peer and a tag moved there, and the
  repairs it enqueues restore them; `berth replication purge` deletes COMPLETE jobs past their retention
  and DescribeImageReplicationStatus still answers COMPLETE (from the destination).
* `ECR Replication Action` events reach a webhook receiver (the event outbox, docs/events.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

import berth_helpers as bh
from ecr_helpers import ECRServer, ECRSession, default_env
from test_events import Receiver

SKOPEO = os.environ.get("SKOPEO", "/usr/bin/skopeo")
OTHER = "222222222222"
PEER_REGION = "us-west-2"


def token(srv: ECRServer, key=None) -> str:
    key_id, secret = key or srv.root_credentials
    return bh.fetch_registry_token(srv.url, key_id, secret, region=srv.region)


def skopeo(workdir: Path, *args, check=True) -> subprocess.CompletedProcess:
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    (workdir / "auth.json").write_text("{}")
    env = {**os.environ, "REGISTRY_AUTH_FILE": str(workdir / "auth.json"), "TMPDIR": str(workdir)}
    cmd = [SKOPEO, "--policy", str(policy), *args]
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stderr.decode(errors='replace')[-3000:]}")
    return p


class Pair:
    """The source and its peer, with a client for each; the source sends its events to `receiver`."""

    def __init__(self, berth_bin, base: Path):
        self.receiver = Receiver(bh.free_port())
        self.receiver.start()
        targets = [{"name": "hook", "url": f"http://127.0.0.1:{self.receiver.port}/events",
                    "pattern": {"detail-type": ["ECR Replication Action"]}}]
        self.peer = ECRServer(berth_bin, base / "peer", env=default_env(region=PEER_REGION))
        self.peer.start()
        peers = [{"region": PEER_REGION, "endpoint": self.peer.url,
                  "accessKeyId": bh.ROOT_ACCESS_KEY_ID, "secretAccessKey": bh.ROOT_SECRET_ACCESS_KEY}]
        self.source = ECRServer(berth_bin, base / "source", env={
            **default_env(), "BERTH_REGIONS": "eu-west-1", "BERTH_REPLICATION_PEERS": json.dumps(peers),
            "BERTH_REPLICATION_RETRY_BASE_SECONDS": "0.2", "BERTH_REPLICATION_RETRY_MAX_SECONDS": "1",
            "BERTH_REPLICATION_MAX_ATTEMPTS": "1000", "BERTH_REPLICATION_POLL_SECONDS": "0.2",
            "BERTH_EVENT_TARGETS": json.dumps(targets), "BERTH_EVENT_RETRY_BASE_SECONDS": "0.2",
            "BERTH_EVENT_RETRY_MAX_SECONDS": "1"})
        self.source.start()
        self.cli = ECRSession(self.source, *self.source.root_credentials, tmp=base)
        self.peer_cli = ECRSession(self.peer, *self.peer.root_credentials, tmp=base)

    def v2(self, srv: ECRServer) -> bh.Client:
        srv._token = token(srv)
        return bh.Client(srv)

    def dispose(self):
        self.source.dispose()
        self.peer.dispose()
        self.receiver.stop()


@pytest.fixture(scope="module")
def pair(berth_bin, tmp_path_factory):
    if not (shutil.which(SKOPEO) or os.access(SKOPEO, os.X_OK)):
        pytest.fail(f"{SKOPEO} not found: apt-get install -y skopeo (never skipped)", pytrace=False)
    p = Pair(berth_bin, tmp_path_factory.mktemp("replication"))
    other = p.source.admin_create_account(OTHER)
    p.other_key = (other["AccessKeyId"], other["SecretAccessKey"])
    config = {"rules": [
        {"destinations": [{"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID}],
         "repositoryFilters": [{"filter": "prod", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [{"region": "us-east-1", "registryId": OTHER}],
         "repositoryFilters": [{"filter": "xacct", "filterType": "PREFIX_MATCH"}]},
        {"destinations": [{"region": "eu-west-1", "registryId": bh.ROOT_ACCOUNT_ID}],
         "repositoryFilters": [{"filter": "euro", "filterType": "PREFIX_MATCH"}]},
    ]}
    out = p.cli.cli_json("put-replication-configuration", "--replication-configuration", json.dumps(config))
    assert out["replicationConfiguration"] == config
    try:
        yield p
    finally:
        p.dispose()


def statuses(pair: Pair, repo: str, digest: str, cli: ECRSession | None = None) -> list:
    out = (cli or pair.cli).cli_json("describe-image-replication-status", "--repository-name", repo,
                                     "--image-id", f"imageDigest={digest}")
    assert out["repositoryName"] == repo and out["imageId"]["imageDigest"] == digest
    return out["replicationStatuses"]


def wait_status(pair: Pair, repo: str, digest: str, want: str, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    got = []
    while time.monotonic() < deadline:
        got = statuses(pair, repo, digest)
        if got and all(s["status"] == want for s in got):
            return got
        time.sleep(0.2)
    raise AssertionError(f"{repo}@{digest}: wanted {want}, got {got}\n{pair.source.log_tail(3000)}")


def peer_digest(pair: Pair, repo: str, ref: str) -> str | None:
    r = pair.v2(pair.peer).head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": bh.ALL_MANIFEST_TYPES})
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def berth_cli(srv: ECRServer, *args, env: dict | None = None) -> str:
    cmd = [str(srv.binary), *args, "--data-dir", str(srv.data_dir)]
    p = subprocess.run(cmd, capture_output=True, env={**srv.process_env(), **(env or {})}, timeout=120, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"{' '.join(cmd)}: {p.stderr.decode(errors='replace')[-2000:]}"
    return p.stdout.decode()


def error_of(p: subprocess.CompletedProcess) -> str:
    assert p.returncode != 0, p.stdout.decode()
    err = p.stderr.decode()
    return err[err.index("(") + 1:err.index(")")] if "(" in err else err


def test_configuration_operations_and_their_refusals(pair):
    described = pair.cli.cli_json("describe-registry")
    assert described["registryId"] == bh.ROOT_ACCOUNT_ID
    assert [r["repositoryFilters"][0]["filter"] for r in described["replicationConfiguration"]["rules"]] == ["prod", "xacct", "euro"]
    # Each region is a registry of its own: eu-west-1's has no configuration.
    eu = ECRSession(pair.source, *pair.source.root_credentials, region="eu-west-1", tmp=pair.cli.tmp)
    assert eu.cli_json("describe-registry")["replicationConfiguration"] == {"rules": []}
    # The peer has none of its own.
    assert pair.peer_cli.cli_json("describe-registry")["replicationConfiguration"] == {"rules": []}
    # A destination equal to the source registry is refused, and so is a bad filter.
    for bad in ({"rules": [{"destinations": [{"region": "us-east-1", "registryId": bh.ROOT_ACCOUNT_ID}]}]},
                {"rules": [{"destinations": [{"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID}],
                            "repositoryFilters": [{"filter": "Bad Filter", "filterType": "PREFIX_MATCH"}]}]}):
        p = pair.cli.cli("put-replication-configuration", "--replication-configuration", json.dumps(bad), check=False)
        assert error_of(p) == "InvalidParameterException", p.stderr.decode()
    raw = pair.cli.raw
    with pytest.raises(raw.exceptions.InvalidParameterException):
        raw.put_replication_configuration(replicationConfiguration={"rules": [
            {"destinations": [{"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID}]}] * 11})
    # The configuration is unchanged by the refusals.
    assert len(pair.cli.cli_json("describe-registry")["replicationConfiguration"]["rules"]) == 3
    p = pair.cli.cli("describe-image-replication-status", "--repository-name", "prod/none",
                     "--image-id", "imageTag=x", check=False)
    assert error_of(p) == "RepositoryNotFoundException"
    pair.v2(pair.source).push_image("prod/some", tag="v1")
    p = pair.cli.cli("describe-image-replication-status", "--repository-name", "prod/some",
                     "--image-id", "imageTag=nope", check=False)
    assert error_of(p) == "ImageNotFoundException"


def test_skopeo_push_replicates_to_the_peer(pair, fixtures_dir, tmp_path):
    src = fixtures_dir / "images" / "debian-tiny-vuln"
    skopeo(tmp_path, "copy", "--retry-times", "0", "--dest-tls-verify=false", "--dest-creds", f"AWS:{token(pair.source)}",
           f"oci:{src}:1", f"docker://{pair.source.hostport}/prod/tiny:1")
    digest = pair.v2(pair.source).head("/v2/prod/tiny/manifests/1", headers={"Accept": bh.ALL_MANIFEST_TYPES}).headers["Docker-Content-Digest"]
    got = wait_status(pair, "prod/tiny", digest, "COMPLETE")
    assert got == [{"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID, "status": "COMPLETE"}]
    assert peer_digest(pair, "prod/tiny", "1") == digest
    # skopeo pulls it back from the peer, byte for byte the same image.
    out = tmp_path / "pulled"
    skopeo(tmp_path, "copy", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{token(pair.peer)}",
           f"docker://{pair.peer.hostport}/prod/tiny:1", f"oci:{out}:1")
    pulled = json.loads((out / "index.json").read_text())["manifests"][0]["digest"]
    assert pulled == digest
    # The peer created the repository (ECR's DescribeRepositories there lists it).
    repos = pair.peer_cli.cli_json("describe-repositories", "--repository-names", "prod/tiny")["repositories"]
    assert repos[0]["repositoryName"] == "prod/tiny"


def test_multi_arch_index_children_and_referrers_replicate(pair, tmp_path):
    c = pair.v2(pair.source)
    a = c.push_image("prod/multi", tag=None, layer_size=2048)
    b = c.push_image("prod/multi", tag=None, layer_size=4096)
    index = bh.make_index([a.descriptor(platform={"architecture": "amd64", "os": "linux"}),
                           b.descriptor(platform={"architecture": "arm64", "os": "linux"})])
    r = c.put_manifest("prod/multi", "v1", index, bh.OCI_INDEX)
    assert r.status_code == 201, bh.describe(r)
    index_digest = bh.sha256(index)
    sbom = c.push_image("prod/multi", tag=None, layer_size=100, artifactType="application/spdx+json",
                        subject=a.descriptor())
    wait_status(pair, "prod/multi", index_digest, "COMPLETE")
    wait_status(pair, "prod/multi", sbom.digest, "COMPLETE")
    assert peer_digest(pair, "prod/multi", "v1") == index_digest
    for child in (a, b):
        assert peer_digest(pair, "prod/multi", child.digest) == child.digest
    # The referrer is listed at the peer, and skopeo copies the whole index back from there.
    refs = pair.v2(pair.peer).get(f"/v2/prod/multi/referrers/{a.digest}").json()["manifests"]
    assert [m["digest"] for m in refs] == [sbom.digest]
    out = tmp_path / "multi"
    skopeo(tmp_path, "copy", "--all", "--preserve-digests", "--retry-times", "0", "--src-tls-verify=false", "--src-creds", f"AWS:{token(pair.peer)}",
           f"docker://{pair.peer.hostport}/prod/multi:v1", f"oci:{out}:v1")
    assert json.loads((out / "index.json").read_text())["manifests"][0]["digest"] == index_digest


def test_another_region_of_the_same_deployment(pair):
    img = pair.v2(pair.source).push_image("euro/app", tag="v1")
    got = wait_status(pair, "euro/app", img.digest, "COMPLETE")
    assert got == [{"region": "eu-west-1", "registryId": bh.ROOT_ACCOUNT_ID, "status": "COMPLETE"}]
    eu = ECRSession(pair.source, *pair.source.root_credentials, region="eu-west-1", tmp=pair.cli.tmp)
    images = eu.cli_json("batch-get-image", "--repository-name", "euro/app", "--image-ids", "imageTag=v1")["images"]
    assert images[0]["imageManifest"].encode() == img.manifest


def test_a_filter_keeps_other_repositories_home(pair):
    img = pair.v2(pair.source).push_image("dev/app", tag="v1")
    time.sleep(1.5)
    assert statuses(pair, "dev/app", img.digest) == []
    assert peer_digest(pair, "dev/app", "v1") is None


def test_same_deployment_cross_account_needs_the_registry_policy(pair):
    c = pair.v2(pair.source)
    first = c.push_image("xacct/app", tag="v1")
    got = wait_status(pair, "xacct/app", first.digest, "FAILED")
    assert got[0]["registryId"] == OTHER and got[0]["region"] == "us-east-1"
    assert "ReplicateImage" in got[0]["failureCode"], got
    other = ECRSession(pair.source, *pair.other_key, tmp=pair.cli.tmp)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Sid": "replication", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{bh.ROOT_ACCOUNT_ID}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": f"arn:aws:ecr:us-east-1:{OTHER}:repository/*"}]}
    other.cli_json("put-registry-policy", "--policy-text", json.dumps(policy))
    second = c.push_image("xacct/app", tag="v2")
    wait_status(pair, "xacct/app", second.digest, "COMPLETE")
    # The other account sees the image in its own registry, and pulls it with its own token.
    images = other.cli_json("describe-images", "--repository-name", "xacct/app")["imageDetails"]
    assert [i["imageDigest"] for i in images] == [second.digest]
    got = other.cli_json("batch-get-image", "--repository-name", "xacct/app", "--image-ids", "imageTag=v2")["images"]
    assert got[0]["imageManifest"].encode() == second.manifest
    # A backfill now replicates the first image too.
    assert json.loads(berth_cli(pair.source, "replication", "backfill", "--repository", "xacct/app"))["enqueued"] == 2
    wait_status(pair, "xacct/app", first.digest, "COMPLETE")


def test_peer_down_then_back_loses_nothing(pair):
    pair.peer.stop()
    try:
        img = pair.v2(pair.source).push_image("prod/down", tag="v1", layer_size=10_000)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            jobs = [json.loads(line) for line in berth_cli(pair.source, "replication", "status", "--list", "--state", "IN_PROGRESS").splitlines()[1:]]
            mine = [j for j in jobs if j["repository"] == "prod/down"]
            if mine and mine[0]["attempts"] >= 2:
                break
            time.sleep(0.3)
        assert mine and mine[0]["attempts"] >= 2 and "unreachable" in mine[0]["failureReason"], mine
        assert statuses(pair, "prod/down", img.digest)[0]["status"] == "IN_PROGRESS"
        summary = json.loads(berth_cli(pair.source, "replication", "status").splitlines()[0])
        assert summary["inProgress"] >= 1 and summary["lagSeconds"] > 0
    finally:
        pair.peer.start()
    wait_status(pair, "prod/down", img.digest, "COMPLETE")
    assert peer_digest(pair, "prod/down", "v1") == img.digest
    metrics = pair.v2(pair.source).get("/metrics").text
    assert "berth_replication_lag_seconds" in metrics and "berth_replication_completed_total" in metrics


def test_kill9_with_queued_jobs_then_restart_finishes_them(pair):
    pair.peer.stop()
    c = pair.v2(pair.source)
    images = [c.push_image(f"prod/crash-{i}", tag="v1", layer_size=5000) for i in range(3)]
    for img in images:
        assert statuses(pair, img.repo, img.digest)[0]["status"] == "IN_PROGRESS"
    pair.source.kill9()
    pair.peer.start()
    pair.source.start()
    for img in images:
        wait_status(pair, img.repo, img.digest, "COMPLETE")
        assert peer_digest(pair, img.repo, "v1") == img.digest


def test_backfill_replicates_images_pushed_before_their_rule(pair):
    old = pair.v2(pair.source).push_image("late/app", tag="v1")
    assert statuses(pair, "late/app", old.digest) == []
    config = pair.cli.cli_json("describe-registry")["replicationConfiguration"]
    config["rules"].append({"destinations": [{"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID}],
                            "repositoryFilters": [{"filter": "late", "filterType": "PREFIX_MATCH"}]})
    pair.cli.cli_json("put-replication-configuration", "--replication-configuration", json.dumps(config))
    assert statuses(pair, "late/app", old.digest) == []  # ECR: only pushes after the rule
    assert json.loads(berth_cli(pair.source, "replication", "backfill"))["enqueued"] >= 1
    wait_status(pair, "late/app", old.digest, "COMPLETE")
    assert peer_digest(pair, "late/app", "v1") == old.digest


def test_replication_events_reach_the_receiver(pair):
    img = pair.v2(pair.source).push_image("prod/evented", tag="v1")
    wait_status(pair, "prod/evented", img.digest, "COMPLETE")
    got = pair.receiver.wait(lambda evs: any(e["detail"]["repository-name"] == "prod/evented" for e, _, _ in evs))
    event = next(e for e, _, _ in got if e["detail"]["repository-name"] == "prod/evented")
    # ECR's shape: the destination's account, region and repository ARN; where it came from in the detail.
    assert event["detail-type"] == "ECR Replication Action" and event["source"] == "aws.ecr"
    assert event["account"] == bh.ROOT_ACCOUNT_ID and event["region"] == PEER_REGION
    assert event["resources"] == [f"arn:aws:ecr:{PEER_REGION}:{bh.ROOT_ACCOUNT_ID}:repository/prod/evented"]
    assert event["detail"] == {"result": "SUCCESS", "repository-name": "prod/evented", "image-digest": img.digest,
                               "source-account": bh.ROOT_ACCOUNT_ID, "action-type": "REPLICATE",
                               "source-region": "us-east-1", "image-tag": "v1"}
    # A cross-account job that fails for want of the destination's registry policy sends a FAILED event.
    other = ECRSession(pair.source, *pair.other_key, tmp=pair.cli.tmp)
    saved = other.cli("get-registry-policy", check=False)
    other.cli("delete-registry-policy", check=False)
    try:
        bad = pair.v2(pair.source).push_image("xacct/evfail", tag="v1")
        wait_status(pair, "xacct/evfail", bad.digest, "FAILED")
    finally:
        if saved.returncode == 0:
            other.cli_json("put-registry-policy", "--policy-text", json.loads(saved.stdout)["policyText"])
    got = pair.receiver.wait(lambda evs: any(e["detail"]["repository-name"] == "xacct/evfail" for e, _, _ in evs))
    failed = next(e for e, _, _ in got if e["detail"]["repository-name"] == "xacct/evfail")
    assert failed["account"] == OTHER and failed["region"] == "us-east-1"
    assert failed["detail"]["result"] == "FAILED" and failed["detail"]["image-tag"] == "v1"
    assert failed["detail"]["source-account"] == bh.ROOT_ACCOUNT_ID


def test_reconcile_repairs_drift_at_the_peer(pair):
    c = pair.v2(pair.source)
    a = c.push_image("prod/recon", tag="v1", layer_size=3000)
    b = c.push_image("prod/recon", tag="v2", layer_size=3100)
    for img in (a, b):
        wait_status(pair, "prod/recon", img.digest, "COMPLETE")
    # At the peer: a deleted by hand, v2 moved to an image of the peer's own.
    pair.peer_cli.cli_json("batch-delete-image", "--repository-name", "prod/recon", "--image-ids", f"imageDigest={a.digest}")
    stray = pair.v2(pair.peer).push_image("prod/recon", tag="v2", layer_size=77)
    assert peer_digest(pair, "prod/recon", a.digest) is None and peer_digest(pair, "prod/recon", "v2") == stray.digest
    report = json.loads(berth_cli(pair.source, "replication", "reconcile", "--account", bh.ROOT_ACCOUNT_ID))
    assert report["missing"] >= 1 and report["tagsDiffering"] >= 1 and report["enqueued"] >= 2, report
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if peer_digest(pair, "prod/recon", "v1") == a.digest and peer_digest(pair, "prod/recon", "v2") == b.digest:
            break
        time.sleep(0.2)
    assert peer_digest(pair, "prod/recon", "v1") == a.digest and peer_digest(pair, "prod/recon", "v2") == b.digest
    wait_status(pair, "prod/recon", a.digest, "COMPLETE")
    again = json.loads(berth_cli(pair.source, "replication", "reconcile", "--account", bh.ROOT_ACCOUNT_ID))
    assert again["enqueued"] == again["missing"] + again["tagsDiffering"], again
    # Passes after the first are incremental (what changed since); --full checks everything.
    assert again["incremental"] == 1 and again["full"] == 0, again
    full = json.loads(berth_cli(pair.source, "replication", "reconcile", "--account", bh.ROOT_ACCOUNT_ID, "--full"))
    assert full["full"] == 1 and full["incremental"] == 0 and full["checked"] + full["alreadyQueued"] >= 2, full
    p = subprocess.run([str(pair.source.binary), "replication", "reconcile", "--account", "12", "--data-dir", str(pair.source.data_dir)],
                       capture_output=True, env=pair.source.process_env(), timeout=60)
    assert p.returncode != 0 and b"12 digits" in p.stderr


def test_purge_keeps_describe_image_replication_status_answering(pair):
    img = pair.v2(pair.source).push_image("prod/purged", tag="v1")
    wait_status(pair, "prod/purged", img.digest, "COMPLETE")
    time.sleep(1)
    short = {"BERTH_REPLICATION_COMPLETE_RETENTION_DAYS": "0.00001", "BERTH_REPLICATION_FAILED_RETENTION_DAYS": "0"}
    assert json.loads(berth_cli(pair.source, "replication", "purge", env=short))["purged"] >= 1
    listed = [json.loads(line) for line in berth_cli(pair.source, "replication", "status", "--list").splitlines()[1:]]
    assert not [j for j in listed if j["repository"] == "prod/purged"]
    # The job is gone; the peer has the image, so the status is still COMPLETE.
    assert statuses(pair, "prod/purged", img.digest) == [
        {"region": PEER_REGION, "registryId": bh.ROOT_ACCOUNT_ID, "status": "COMPLETE"}]
