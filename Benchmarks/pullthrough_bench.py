#!/usr/bin/env python3
"""Pull-through cache figures (docs/pull-through.md): the first pull through the cache against a direct
pull from the upstream (time to first byte and total), cached pulls against Berth's normal pulls, and
Berth's CPU time and resident memory during each. Not a test: it asserts only that bytes are right.

    BERTH_BIN=.build/release/berth python3 Benchmarks/pullthrough_bench.py [SIZES_MIB] [ROUNDS]

SIZES_MIB: comma-separated layer sizes (default 64,512); ROUNDS: fresh images per size (default 3;
the median is printed). The upstream is Distribution 2.8.2 (`docker-registry`, htpasswd) on loopback,
with one single-layer image per round pushed to it; Berth (SQLite, filesystem, blob encryption on, as
by default) has a pull-through rule `up` → the upstream with a Secrets Manager credential. Per round:

1. direct:  manifest GET + layer GET from the upstream (basic auth);
2. first:   the same through Berth (`/v2/up/...`): Berth fetches, stores and streams at once;
3. cached:  the same again: served from Berth's storage;
4. normal:  the layer pushed to an ordinary Berth repository, then pulled the same way.

Time to first byte is the layer GET's (request sent → first body byte). CPU is Berth's user + system
time during the pull (/proc/PID/stat), per GiB pulled; memory is the peak VmRSS sampled every 10 ms.
Each pull starts once Berth is idle, so work the previous one left running is not charged to it.
"""
from __future__ import annotations

import base64
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import berth_helpers as bh  # noqa: E402
from ecr_helpers import ECRServer, ECRSession, default_env  # noqa: E402
from test_pull_through import USER, PASSWORD, Upstream, push_random_image  # noqa: E402
from proc_sample import Sampler, settle  # noqa: E402

def pull(session: requests.Session, base: str, repository: str, reference: str, layer: str) -> tuple[float, float]:
    """Manifest GET then layer GET, streamed; returns (time to the layer's first byte, total seconds)."""
    t0 = time.monotonic()
    r = session.get(f"{base}/v2/{repository}/manifests/{reference}",
                    headers={"Accept": bh.OCI_MANIFEST}, timeout=300)
    r.raise_for_status()
    sent = time.monotonic()
    h = hashlib.sha256()
    first = None
    with session.get(f"{base}/v2/{repository}/blobs/{layer}", stream=True, timeout=300) as r:
        r.raise_for_status()
        for chunk in r.iter_content(1 << 20):
            if first is None:
                first = time.monotonic()
            h.update(chunk)
    total = time.monotonic() - t0
    assert "sha256:" + h.hexdigest() == layer, f"{repository}: wrong bytes"
    return (first or time.monotonic()) - sent, total


def main():
    sizes = [int(s) for s in (sys.argv[1] if len(sys.argv) > 1 else "64,512").split(",")]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    binary = Path(bh.berth_binary())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        upstream = Upstream(base / "upstream")
        upstream.start()
        srv = ECRServer(binary, base / "berth", env={**default_env(), "BERTH_LOG_LEVEL": "warning",
                                                     "BERTH_PULL_THROUGH_ALLOW_INSECURE_UPSTREAMS": "true"})
        srv.start()
        try:
            ecr = ECRSession(srv, *srv.root_credentials, tmp=base)
            import boto3
            sm = boto3.client("secretsmanager", endpoint_url=srv.url, region_name=srv.region,
                              aws_access_key_id=srv.root_credentials[0], aws_secret_access_key=srv.root_credentials[1])
            arn = sm.create_secret(Name="ecr-pullthroughcache/bench",
                                   SecretString=json.dumps({"username": USER, "accessToken": PASSWORD}))["ARN"]
            ecr.client.create_pull_through_cache_rule(ecrRepositoryPrefix="up", upstreamRegistryUrl=upstream.url,
                                                      credentialArn=arn)
            token = bh.fetch_registry_token(srv.url, *srv.root_credentials)
            berth = requests.Session()
            berth.headers["Authorization"] = "Basic " + base64.b64encode(f"AWS:{token}".encode()).decode()
            direct = upstream.session()
            pid = srv.proc.pid
            print(f"upstream: Distribution 2.8.2 (docker-registry); berth: {binary}")
            print(f"{'size':>8}  {'pull':<8} {'TTFB ms':>9} {'total s':>8} {'MiB/s':>8} {'CPU s/GiB':>10} {'peak RSS MiB':>13}")
            for size in sizes:
                rows: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in ("direct", "first", "cached", "normal")}
                for i in range(rounds):
                    repo = f"bench/s{size}-{i}"
                    _, layer = push_random_image(upstream, repo, "v1", size << 20)
                    gib = size / 1024
                    for kind, sess, url, name in (("direct", direct, upstream.url, repo),
                                                  ("first", berth, srv.url, f"up/{repo}"),
                                                  ("cached", berth, srv.url, f"up/{repo}")):
                        settle(pid)
                        with Sampler(pid) as s:
                            ttfb, total = pull(sess, url, name, "v1", layer)
                        rows[kind].append((ttfb, total, s.cpu / gib, s.peak))
                    # The same bytes pushed to an ordinary repository, then pulled.
                    data = b"".join(direct.get(f"{upstream.url}/v2/{repo}/blobs/{layer}", timeout=300).iter_content(1 << 20))
                    config = json.dumps({"architecture": "amd64", "os": "linux",
                                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
                    for blob in (data, config):
                        r = berth.post(f"{srv.url}/v2/normal/s{size}-{i}/blobs/uploads/?digest={bh.sha256(blob)}", data=blob,
                                       headers={"Content-Type": "application/octet-stream"}, timeout=300)
                        if r.status_code == 202:
                            loc = r.headers["Location"]
                            loc = loc if loc.startswith("http") else srv.url + loc
                            r = berth.put(bh.add_query(loc, digest=bh.sha256(blob)), data=blob, timeout=300)
                        assert r.status_code == 201, r.text
                    manifest = json.dumps({"schemaVersion": 2, "mediaType": bh.OCI_MANIFEST,
                                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                                      "digest": bh.sha256(config), "size": len(config)},
                                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                                                       "digest": layer, "size": len(data)}]}).encode()
                    r = berth.put(f"{srv.url}/v2/normal/s{size}-{i}/manifests/v1", data=manifest,
                                  headers={"Content-Type": bh.OCI_MANIFEST}, timeout=60)
                    assert r.status_code == 201, r.text
                    del data
                    settle(pid)
                    with Sampler(pid) as s:
                        ttfb, total = pull(berth, srv.url, f"normal/s{size}-{i}", "v1", layer)
                    rows["normal"].append((ttfb, total, s.cpu / gib, s.peak))
                for kind, values in rows.items():
                    ttfb, total, cpu, peak = (statistics.median(v[k] for v in values) for k in range(4))
                    print(f"{size:>5} MiB  {kind:<8} {ttfb * 1000:>9.1f} {total:>8.2f} {size / total:>8.1f} "
                          f"{cpu if kind != 'direct' else float('nan'):>10.2f} {peak if kind != 'direct' else float('nan'):>13.1f}")
            print(f"(median of {rounds} fresh images per size; 'direct' is the upstream itself, so Berth's CPU "
                  f"and RSS do not apply; client: Python requests, hashing every byte)")
        finally:
            srv.dispose()
            upstream.stop()


if __name__ == "__main__":
    main()
