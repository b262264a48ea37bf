#!/usr/bin/env python3
"""Push and pull one blob through `berth serve` on the filesystem and on S3 (SeaweedFS), same run.

    BERTH_BIN=.build/release/berth python3 scripts/bench-s3.py [--mib 64] [--repeats 3]

Starts SeaweedFS (`weed mini`) and two servers (blobBackend filesystem, blobBackend s3) on free loopback
ports, then for each: a monolithic push (POST + one streamed PUT), a chunked push (5 MiB PATCHes), and a
streamed pull, timed over `--repeats` runs (median). With `--two-nodes` the chunked push alternates its
chunks between two S3 servers sharing database and bucket (the completion then re-reads the upload once).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
import berth_helpers as bh  # noqa: E402
from s3_helpers import SeaweedFS  # noqa: E402
from test_s3 import s3_config  # noqa: E402


def push(client, repo, data, chunk=None, nodes=None):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    octet = {"Content-Type": "application/octet-stream"}
    loc = bh.path_of(client.start_upload(repo))
    if chunk is None:
        r = client.put(bh.add_query(loc, digest=digest), data=data, headers=octet)
    else:
        nodes = nodes or [client]
        off = i = 0
        while off < len(data):
            part = data[off:off + chunk]
            node = nodes[i % len(nodes)]
            r = node.patch(loc, data=part, headers={**octet, "Content-Range": f"{off}-{off + len(part) - 1}"})
            assert r.status_code == 202, bh.describe(r)
            loc = bh.path_of(node.location(r))
            off += len(part)
            i += 1
        r = nodes[i % len(nodes)].put(bh.add_query(loc, digest=digest))
    assert r.status_code == 201, bh.describe(r)
    return digest


def pull(client, repo, digest, size):
    r = client.get(f"/v2/{repo}/blobs/{digest}", stream=True)
    assert r.status_code == 200, bh.describe(r)
    n = 0
    for piece in r.iter_content(1 << 20):
        n += len(piece)
    assert n == size


def timed(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--two-nodes", action="store_true")
    args = ap.parse_args()
    binary = bh.berth_binary()
    base = Path(tempfile.mkdtemp(prefix="berth-bench-s3-"))
    weed = SeaweedFS(base / "weed")
    servers = {}
    try:
        servers["filesystem"] = bh.BerthServer(binary, base / "fs" / "data", base / "fs" / "logs")
        cfg = s3_config(weed, base / "s3.json")
        servers["s3"] = bh.BerthServer(binary, base / "s3" / "data", base / "s3" / "logs", extra_args=["--config", str(cfg)])
        if args.two_nodes:
            servers["s3-node2"] = bh.BerthServer(binary, base / "s3" / "data", base / "s3b" / "logs",
                                                 extra_args=["--config", str(cfg)])
        for s in servers.values():
            s.start()
        size = args.mib << 20
        mib = size / (1 << 20)
        print(f"blob {args.mib} MiB, median of {args.repeats}, binary {binary}")
        for name in ("filesystem", "s3"):
            c = bh.Client(servers[name], timeout=600)
            rows = {}
            data = os.urandom(size)
            rows["push (one PUT)"] = timed(lambda: push(c, f"bench/{bh.unique()}", data), args.repeats)
            repo = f"bench/{bh.unique()}"
            d = push(c, repo, data)
            rows["pull"] = timed(lambda: pull(c, repo, d, size), args.repeats)
            rows["push (5 MiB chunks)"] = timed(lambda: push(c, f"bench/{bh.unique()}", data, chunk=5 << 20),
                                                args.repeats)
            if name == "s3" and args.two_nodes:
                nodes = [c, bh.Client(servers["s3-node2"], timeout=600)]
                rows["push (5 MiB chunks, 2 nodes)"] = timed(
                    lambda: push(c, f"bench/{bh.unique()}", data, chunk=5 << 20, nodes=nodes), args.repeats)
            for what, t in rows.items():
                print(f"{name:10s} {what:30s} {t:7.3f} s  {mib / t:8.1f} MiB/s")
    finally:
        for s in servers.values():
            s.dispose()
        weed.stop()


if __name__ == "__main__":
    main()
