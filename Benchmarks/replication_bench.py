#!/usr/bin/env python3
"""Replication figures (docs/replication.md): throughput to a peer and to another account of the same
deployment, and the lag at a steady push rate. Not a test: it asserts nothing about time.

    BERTH_BIN=$(swift build --show-bin-path)/berth python3 Benchmarks/replication_bench.py [N] [LAYER_KB] [RATE]

Two `berth serve` (SQLite, filesystem): a source in us-east-1 and a peer in us-west-2. Per run:

1. to the peer: N images (a config and one random layer of LAYER_KB KiB each) pushed to the source
   with the peer down, then the peer started: images/s and MB/s of the queue's drain;
2. same deployment, another account (its registry policy allows the source): the same;
3. lag: images pushed at RATE per second with the peer up; per image, the time from the push's answer
   to COMPLETE as DescribeImageReplicationStatus reports it (p50/p95/max).

With the source's CPU time and peak VmRSS during 1 and 2 (Benchmarks/proc_sample.py).
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import berth_helpers as bh  # noqa: E402
from ecr_helpers import ECRServer, ECRSession, default_env  # noqa: E402
from proc_sample import Sampler  # noqa: E402

OTHER = "222222222222"


def client(srv: ECRServer, key=None) -> bh.Client:
    kid, secret = key or srv.root_credentials
    srv._token = bh.fetch_registry_token(srv.url, kid, secret, region=srv.region)
    return bh.Client(srv)


def status(boto, repo: str, digest: str) -> list:
    return boto.describe_image_replication_status(repositoryName=repo, imageId={"imageDigest": digest})["replicationStatuses"]


def drain(boto, images, timeout=600) -> float:
    deadline = time.monotonic() + timeout
    pending = list(images)
    while pending and time.monotonic() < deadline:
        pending = [i for i in pending if [s["status"] for s in status(boto, i.repo, i.digest)] != ["COMPLETE"]]
        if pending:
            time.sleep(0.05)
    if pending:
        raise SystemExit(f"{len(pending)} images not replicated in {timeout}s")
    return time.monotonic()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    layer_kb = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rate = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    binary = Path(bh.berth_binary())
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        peer = ECRServer(binary, base / "peer", env=default_env(region="us-west-2"))
        peer.start()
        peers = [{"region": "us-west-2", "endpoint": peer.url, "accessKeyId": bh.ROOT_ACCESS_KEY_ID,
                  "secretAccessKey": bh.ROOT_SECRET_ACCESS_KEY}]
        source = ECRServer(binary, base / "source", env={**default_env(), "BERTH_REPLICATION_PEERS": json.dumps(peers),
                                                         "BERTH_REPLICATION_RETRY_BASE_SECONDS": "0.1",
                                                         "BERTH_REPLICATION_RETRY_MAX_SECONDS": "0.5",
                                                         "BERTH_REPLICATION_MAX_ATTEMPTS": "1000",
                                                         "BERTH_LOG_LEVEL": "warning"})
        source.start()
        try:
            other = source.admin_create_account(OTHER)
            boto = ECRSession(source, *source.root_credentials, tmp=base).client
            boto.put_replication_configuration(replicationConfiguration={"rules": [
                {"destinations": [{"region": "us-west-2", "registryId": bh.ROOT_ACCOUNT_ID}],
                 "repositoryFilters": [{"filter": "peer", "filterType": "PREFIX_MATCH"}]},
                {"destinations": [{"region": "us-east-1", "registryId": OTHER}],
                 "repositoryFilters": [{"filter": "local", "filterType": "PREFIX_MATCH"}]}]})
            ECRSession(source, other["AccessKeyId"], other["SecretAccessKey"], tmp=base).client.put_registry_policy(policyText=json.dumps({
                "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{bh.ROOT_ACCOUNT_ID}:root"},
                                                        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"], "Resource": "*"}]}))
            c = client(source)
            mb = n * layer_kb / 1024

            peer.stop()
            images = [c.push_image(f"peer/bench-{i % 5}", tag=f"t{i}", layer_size=layer_kb * 1024) for i in range(n)]
            peer.start()
            start = time.monotonic()
            with Sampler(source.proc.pid) as s:
                end = drain(boto, images)
            print(f"to the peer:          {n} images ({mb:.1f} MB of layers) in {end - start:.2f}s: "
                  f"{n / (end - start):.1f} images/s, {mb / (end - start):.1f} MB/s (includes the first retry's wait, ≤0.5s); "
                  f"source CPU {s.cpu:.2f}s, peak RSS {s.peak:.0f} MiB")

            start = time.monotonic()
            with Sampler(source.proc.pid) as s:
                images = [c.push_image(f"local/bench-{i % 5}", tag=f"t{i}", layer_size=layer_kb * 1024) for i in range(n)]
                pushed = time.monotonic()
                end = drain(boto, images)
            print(f"same deployment:      {n} images ({mb:.1f} MB) pushed in {pushed - start:.2f}s, all replicated "
                  f"{end - pushed:.2f}s after the last push; overall {n / (end - start):.1f} images/s, {mb / (end - start):.1f} MB/s; "
                  f"CPU {s.cpu:.2f}s (pushes and copies), peak RSS {s.peak:.0f} MiB")

            lags = []
            for i in range(min(n, 40)):
                t0 = time.monotonic()
                img = c.push_image("peer/steady", tag=f"s{i}", layer_size=layer_kb * 1024)
                answered = time.monotonic()
                while [s["status"] for s in status(boto, img.repo, img.digest)] != ["COMPLETE"]:
                    time.sleep(0.01)
                lags.append(time.monotonic() - answered)
                time.sleep(max(0.0, 1 / rate - (time.monotonic() - t0)))
            q = statistics.quantiles(lags, n=20)
            print(f"lag at ≤{rate}/s:        p50 {statistics.median(lags) * 1000:.0f} ms, p95 {q[18] * 1000:.0f} ms, "
                  f"max {max(lags) * 1000:.0f} ms ({len(lags)} images, {layer_kb} KiB layer each)")
        finally:
            source.dispose()
            peer.dispose()


if __name__ == "__main__":
    main()
