#!/usr/bin/env python3
"""Event notification figures (docs/events.md): push cost with events off and on, delivery latency, and
delivery throughput. Not a test: it asserts nothing about time.

    BERTH_BIN=$(swift build --show-bin-path)/berth python3 Benchmarks/events_bench.py [N] [CONCURRENCY]

Per run, a fresh `berth serve` (SQLite, filesystem) and a local HTTP receiver. One image's blobs are
pushed once; then N manifests (distinct by an annotation, so N images, N events) are PUT by tag over
`/v2/` with CONCURRENCY threads:

1. events off (no target): push wall time and berth's CPU time (utime+stime from /proc);
   and events written and routed but matching no target's pattern (the outbox's own cost);
2. events on, receiver up: the same, plus per event the latency from the manifest PUT's answer to the
   receiver getting it (p50/p95/p99/max), and the delivery rate while pushing;
3. events on, receiver down during the pushes, then up: the outbox's drain rate (events/s).
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "IntegrationTests"))
import berth_helpers as bh  # noqa: E402
from ecr_helpers import ECRServer, ECRSession, default_env  # noqa: E402


class Receiver:
    def __init__(self, port: int):
        self.port, self.arrivals, self.lock, self.httpd = port, {}, threading.Lock(), None

    def start(self):
        rec = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = json.loads(body)
                with rec.lock:
                    rec.arrivals.setdefault(event["detail"]["image-digest"], time.time())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary: Path, n: int, concurrency: int, receiver: Receiver | None, receiver_up: bool, pattern: dict | None = None) -> dict:
    base = Path(tempfile.mkdtemp(prefix="berth-events-bench-"))
    env = dict(default_env())
    if pattern:
        # Events written with each push and routed, but matching no target: the cost of the outbox alone.
        env["BERTH_EVENT_TARGETS"] = json.dumps([{"name": "none", "url": "http://127.0.0.1:9/", "pattern": pattern}])
    if receiver:
        env["BERTH_EVENT_TARGETS"] = json.dumps([{"name": "bench", "url": f"http://127.0.0.1:{receiver.port}/", "secret": "s"}])
        env["BERTH_EVENT_RETRY_BASE_SECONDS"] = "0.2"
        env["BERTH_EVENT_RETRY_MAX_SECONDS"] = "1"
        env["BERTH_EVENT_MAX_ATTEMPTS"] = "1000"
    srv = ECRServer(binary, base, env=env)
    srv.start()
    try:
        session = ECRSession(srv, *srv.root_credentials, tmp=base)
        v2 = session.v2()
        repo = "bench/app"
        config = bh.random_config()
        layer = os.urandom(2048)
        v2.push_blob(repo, config)
        v2.push_blob(repo, layer)
        manifests = [bh.make_manifest(bh.descriptor(bh.OCI_CONFIG, config), [bh.descriptor(bh.OCI_LAYER, layer)],
                                      annotations={"n": str(i)}) for i in range(n)]
        done: dict[str, float] = {}
        if receiver and not receiver_up:
            receiver.stop()

        def put(i: int):
            c = session.v2()
            r = c.put_manifest(repo, f"t{i}", manifests[i])
            assert r.status_code == 201, bh.describe(r)
            done[bh.sha256(manifests[i])] = time.time()

        cpu0 = cpu_seconds(srv.proc.pid)
        t0 = time.time()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(put, range(n)))
        push_seconds = time.time() - t0
        cpu = cpu_seconds(srv.proc.pid) - cpu0
        out = {"pushes": n, "concurrency": concurrency, "push_seconds": round(push_seconds, 3),
               "pushes_per_second": round(n / push_seconds, 1), "server_cpu_ms_per_push": round(cpu / n * 1000, 3)}
        if receiver:
            t_up = time.time()
            if not receiver_up:
                receiver.start()
            deadline = time.time() + 600
            while len([d for d in done if d in receiver.arrivals]) < n and time.time() < deadline:
                time.sleep(0.02)
            got = {d: receiver.arrivals[d] for d in done if d in receiver.arrivals}
            out["delivered"] = len(got)
            if receiver_up:
                lat = sorted(got[d] - done[d] for d in got)
                q = statistics.quantiles(lat, n=100)
                out["latency_ms"] = {"p50": round(q[49] * 1000, 1), "p95": round(q[94] * 1000, 1),
                                     "p99": round(q[98] * 1000, 1), "max": round(lat[-1] * 1000, 1)}
                out["delivered_per_second_while_pushing"] = round(len(got) / (max(got.values()) - t0), 1)
            else:
                out["drain_seconds"] = round(max(got.values()) - t_up, 3)
                out["drain_events_per_second"] = round(len(got) / (max(got.values()) - t_up), 1)
        return out
    finally:
        srv.dispose()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    c = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    binary = bh.berth_binary()
    results = {"off": run(binary, n, c, None, True),
               "written_not_sent": run(binary, n, c, None, True, pattern={"source": ["nothing"]})}
    r = Receiver(bh.free_port())
    r.start()
    results["on"] = run(binary, n, c, r, True)
    r.arrivals.clear()
    results["on_receiver_down_then_up"] = run(binary, n, c, r, False)
    r.stop()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
