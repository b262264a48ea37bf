#!/usr/bin/env python3
"""Audit trail cost (docs/architecture.md, issue #16 §2): server CPU per request with the trail off, on
with the defaults (successful pulls not recorded), and on with `auditRegistryReads`. Not a test: it
asserts nothing about time. CPU time (utime+stime of the berth process from /proc) is reported beside
wall-clock rates because it is far less sensitive to other work on the machine.

    BERTH_BIN=path/to/berth python3 Benchmarks/audit_bench.py [N] [CONCURRENCY] [ROUNDS]

Per setting and round, a fresh `berth serve` (SQLite, filesystem): N manifest PUTs by tag (distinct
manifests over one config and layer), N small blob uploads (POST + PUT with ?digest=), and N manifest
GETs by tag, each with CONCURRENCY threads keeping their connections.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
import berth_helpers as bh  # noqa: E402
from ecr_helpers import ECRServer, ECRSession, default_env  # noqa: E402


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(srv, n: int, concurrency: int, work) -> dict:
    local = threading.local()
    session = ECRSession(srv, *srv.root_credentials, tmp=Path(tempfile.mkdtemp()))

    def client():
        if not hasattr(local, "c"):
            local.c = session.v2()
        return local.c

    cpu0, t0 = cpu_seconds(srv.proc.pid), time.time()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: work(client(), i), range(n)))
    wall, cpu = time.time() - t0, cpu_seconds(srv.proc.pid) - cpu0
    return {"per_second": round(n / wall, 1), "cpu_us_per_request": round(cpu / n * 1e6, 1)}


def run(binary: Path, n: int, concurrency: int, env_extra: dict) -> dict:
    base = Path(tempfile.mkdtemp(prefix="berth-audit-bench-"))
    srv = ECRServer(binary, base, env={**default_env(), **env_extra})
    srv.start()
    try:
        repo = "bench/app"
        setup = ECRSession(srv, *srv.root_credentials, tmp=base).v2()
        config, layer = bh.random_config(), os.urandom(2048)
        setup.push_blob(repo, config)
        setup.push_blob(repo, layer)
        manifests = [bh.make_manifest(bh.descriptor(bh.OCI_CONFIG, config), [bh.descriptor(bh.OCI_LAYER, layer)],
                                      annotations={"n": str(i)}) for i in range(n)]

        def put(c, i):
            r = c.put_manifest(repo, f"t{i}", manifests[i])
            assert r.status_code == 201, bh.describe(r)

        def upload(c, i):
            c.push_blob(repo, os.urandom(512) + i.to_bytes(4, "big"), method="post_put")

        def get(c, i):
            r = c.get_manifest(repo, f"t{i % 64}")
            assert r.status_code == 200, bh.describe(r)

        return {"manifest_put": measure(srv, n, concurrency, put), "blob_upload": measure(srv, n, concurrency, upload),
                "manifest_get": measure(srv, n, concurrency, get)}
    finally:
        srv.dispose()


def main():
    binary = Path(os.environ["BERTH_BIN"])
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    concurrency = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    settings = {"audit off": {"BERTH_AUDIT_ENABLED": "false"}, "audit on (defaults)": {},
                "audit on, registry reads too": {"BERTH_AUDIT_REGISTRY_READS": "true"}}
    results: dict = {name: [] for name in settings}
    for _ in range(rounds):  # interleaved, so a burst of other work on the machine hits every setting
        for name, env in settings.items():
            results[name].append(run(binary, n, concurrency, env))
    summary = {}
    for name, runs in results.items():
        summary[name] = {op: {"cpu_us_per_request (median)": statistics.median(r[op]["cpu_us_per_request"] for r in runs),
                              "per_second (median)": statistics.median(r[op]["per_second"] for r in runs)}
                         for op in runs[0]}
    print(json.dumps({"requests": n, "concurrency": concurrency, "rounds": rounds, "results": summary}, indent=2))


if __name__ == "__main__":
    main()
