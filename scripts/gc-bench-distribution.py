#!/usr/bin/env python3
"""The Distribution side of scripts/gc-bench: an equivalent data set pushed through Distribution 2.8.2
(filesystem storage, its own layout), then `docker-registry garbage-collect` with the registry stopped
(it cannot run beside a serving registry), timed with /usr/bin/time -v.

Same shape as gc-bench-seed.py: N blobs of BYTES, M manifests of K blobs each (half the blobs
referenced), spread over R repositories with one tag each; the other half is pushed but referenced by
no manifest.
"""
import argparse
import concurrent.futures as cf
import hashlib
import json
import os
import re
import subprocess
import time

import requests

p = argparse.ArgumentParser()
p.add_argument("--registry", default="/usr/bin/docker-registry")
p.add_argument("--port", type=int, default=5011)
p.add_argument("--work", required=True)
p.add_argument("--blobs", type=int, default=10_000)
p.add_argument("--manifests", type=int, default=2_000)
p.add_argument("--repos", type=int, default=50)
p.add_argument("--blob-size", type=int, default=1024)
a = p.parse_args()
layers = max(2, (a.blobs // 2) // max(1, a.manifests))
os.makedirs(a.work, exist_ok=True)
storage = os.path.join(a.work, "storage")
config = os.path.join(a.work, "config.yml")
with open(config, "w") as f:
    f.write(f"""version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{a.port}
""")
base = f"http://127.0.0.1:{a.port}"
proc = subprocess.Popen([a.registry, "serve", config], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            if requests.get(base + "/v2/", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.1)
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16)
    session.mount("http://", adapter)
    t0 = time.time()
    blobs = []
    for i in range(a.blobs):
        data = i.to_bytes(8, "big") + os.urandom(max(0, a.blob_size - 8))
        blobs.append(("sha256:" + hashlib.sha256(data).hexdigest(), data))

    def push_blob(i):
        d, data = blobs[i]
        repo = f"gcbench/r{i % a.repos}"
        r = session.post(f"{base}/v2/{repo}/blobs/uploads/?digest={d}", data=data,
                         headers={"Content-Type": "application/octet-stream"})
        if r.status_code != 201:  # monolithic POST not taken: POST then PUT
            loc = r.headers["Location"]
            loc = loc if loc.startswith("http") else base + loc
            sep = "&" if "?" in loc else "?"
            r = session.put(f"{loc}{sep}digest={d}", data=data, headers={"Content-Type": "application/octet-stream"})
            assert r.status_code == 201, r.text

    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(push_blob, range(a.blobs)))

    per_repo = {}

    def push_manifest(m):
        pos = m % a.repos
        start = m // a.repos * layers
        parts = [blobs[pos + a.repos * (start + k)] for k in range(layers)]
        body = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": parts[0][0], "size": len(parts[0][1])},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": len(x)} for d, x in parts[1:]],
        }, separators=(",", ":")).encode()
        r = session.put(f"{base}/v2/gcbench/r{pos}/manifests/t{m}", data=body,
                        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        assert r.status_code == 201, r.text

    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(push_manifest, range(a.manifests)))
    pushed = time.time() - t0
finally:
    proc.terminate()
    proc.wait(timeout=30)


def du(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)


blob_dir = os.path.join(storage, "docker", "registry", "v2", "blobs")
before = du(blob_dir)
timing = os.path.join(a.work, "time.txt")
t = time.time()
gc = subprocess.run(["/usr/bin/time", "-v", "-o", timing, a.registry, "garbage-collect", config],
                    capture_output=True)
wall = time.time() - t
after = du(blob_dir)
text = open(timing).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
deleted = len(re.findall(rb"blob eligible for deletion|Deleting blob", gc.stdout + gc.stderr))
print(f"distribution 2.8.2: pushed {a.blobs} blobs + {a.manifests} manifests in {pushed:.1f} s; "
      f"garbage-collect (registry stopped): exit {gc.returncode}, wall {wall:.2f} s, peak RSS {rss / 1024:.1f} MiB, "
      f"blobs/ {before} -> {after} (-{before - after} B), {deleted} deletion lines")
