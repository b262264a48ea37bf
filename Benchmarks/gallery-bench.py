#!/usr/bin/env python3
"""The public gallery's benchmark: seeds a running berth with N public repositories (catalog data through
ECR Public's CreateRepository, images pushed on /v2/ with an ecr-public token, T tags each over 10
distinct images), pulls some of them (--pulls manifest GETs, by tag and by digest, spread over the
repositories so that a few are pulled much more than the rest: the front page's "Most pulled" section and
the download counts are part of what is measured), then measures the front page, searches, a repository
page and an anonymous manifest GET (each one a counted download) with wrk (c=16): p50/p99 latency,
requests/s, and the page weight in bytes.

    berth serve &   # a throw-away data directory
    python3 Benchmarks/gallery-bench.py --url http://127.0.0.1:5000 --repos 1000 --tags 100

Needs boto3, requests and wrk (Debian's). Credentials: the root key pair in BERTH_ROOT_ACCESS_KEY_ID /
BERTH_ROOT_SECRET_ACCESS_KEY (default: the test suite's). Every loop is bounded; traffic goes only to --url.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import requests

ARCHS = ["x86-64", "ARM 64", "ARM", "x86"]
WORDS = ["web", "proxy", "database", "cache", "queue", "python", "node", "golang", "alpine", "debian", "tools", "monitor"]


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:5000")
    ap.add_argument("--repos", type=int, default=1000)
    ap.add_argument("--tags", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--skip-seed", action="store_true")
    ap.add_argument("--pulls", type=int, default=2000, help="manifest GETs to seed download counts with (0: none)")
    ap.add_argument("--flush-seconds", type=float, default=8, help="how long to wait for the pulls to show (pullTimeFlushSeconds + galleryCacheSeconds + 1)")
    a = ap.parse_args()
    key = os.environ.get("BERTH_ROOT_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    secret = os.environ.get("BERTH_ROOT_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    pub = boto3.client("ecr-public", endpoint_url=a.url, region_name="us-east-1", aws_access_key_id=key, aws_secret_access_key=secret)
    registry = pub.describe_registries()["registries"][0]
    alias = registry["aliases"][0]["name"]
    token = base64.b64decode(pub.get_authorization_token()["authorizationData"]["authorizationToken"]).decode()
    auth = "Basic " + base64.b64encode(token.encode()).decode()

    def seed(i: int):
        s = requests.Session()
        s.headers["Authorization"] = auth
        name = f"bench/{WORDS[i % len(WORDS)]}-{i:04d}"
        pub_local = boto3.client("ecr-public", endpoint_url=a.url, region_name="us-east-1", aws_access_key_id=key,
                                 aws_secret_access_key=secret) if i % 50 == 0 else pub
        pub_local.create_repository(repositoryName=name, catalogData={
            "description": f"Benchmark repository {i}: a {WORDS[(i * 7) % len(WORDS)]} image",
            "aboutText": f"# {name}\n\nAbout text for **{name}** with a [link](https://example.com/{i}).\n\n" + "Lorem ipsum. " * 40,
            "usageText": f"```\ndocker run {name}\n```",
            "architectures": ARCHS[: 1 + i % len(ARCHS)], "operatingSystems": ["Linux"],
        })
        base = f"{a.url}/v2/public/{alias}/{name}"
        layer = os.urandom(512)
        for blob in [layer]:
            r = s.post(f"{base}/blobs/uploads/?digest={sha(blob)}", data=blob, headers={"Content-Type": "application/octet-stream"}, timeout=60)
            assert r.status_code == 201, r.text
        per_image = max(1, a.tags // 10)
        n = 0
        for img in range(10):
            config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                                 "comment": f"{i}-{img}"}).encode()
            r = s.post(f"{base}/blobs/uploads/?digest={sha(config)}", data=config, timeout=60)
            assert r.status_code == 201, r.text
            manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
                                   "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}]}).encode()
            for _ in range(per_image):
                if n >= a.tags:
                    break
                r = s.put(f"{base}/manifests/v{n}", data=manifest,
                          headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, timeout=60)
                assert r.status_code == 201, r.text
                n += 1

    if not a.skip_seed:
        start = time.monotonic()
        with ThreadPoolExecutor(a.concurrency) as ex:
            for k, _ in enumerate(ex.map(seed, range(a.repos))):
                if k % 100 == 99:
                    print(f"seeded {k + 1} repositories in {time.monotonic() - start:.0f} s", file=sys.stderr)
        print(f"seed: {a.repos} repositories x {a.tags} tags in {time.monotonic() - start:.0f} s", file=sys.stderr)

    if a.pulls > 0:
        start = time.monotonic()
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"}

        def pull(k: int):
            # A Pareto spread over the repositories (a few pulled much more than the rest). Even pulls GET the
            # tag (skopeo, crane); odd ones HEAD it and GET the digest (docker, containerd): one download each.
            rng = random.Random(k)
            j = min(a.repos - 1, int(rng.paretovariate(1.2)) - 1)
            name = f"bench/{WORDS[j % len(WORDS)]}-{j:04d}"
            base = f"{a.url}/v2/public/{alias}/{name}/manifests"
            tag = f"v{rng.randrange(max(1, a.tags))}"
            if k % 2 == 0:
                assert requests.get(f"{base}/{tag}", headers=accept, timeout=60).status_code == 200
                return 1
            head = requests.head(f"{base}/{tag}", headers=accept, timeout=60)
            assert head.status_code == 200, (base, tag, head.status_code)
            assert requests.get(f"{base}/{head.headers['Docker-Content-Digest']}", headers=accept, timeout=60).status_code == 200
            return 2

        with ThreadPoolExecutor(a.concurrency) as ex:
            gets = sum(ex.map(pull, range(a.pulls)))
        time.sleep(a.flush_seconds)
        front = requests.get(f"{a.url}/gallery/", timeout=60).text
        assert 'id="pulled"' in front and " downloads" in front, "the pulls were not counted on the front page"
        print(f"pulls: {a.pulls} downloads ({gets} manifest requests) in {time.monotonic() - start - a.flush_seconds:.0f} s; front page lists the most pulled",
              file=sys.stderr)

    results = {}
    for label, path in [("front page", "/gallery/"), ("search", "/gallery/search?q=proxy"),
                        ("search (2 words, filter)", "/gallery/search?q=web+image&arch=x86-64"),
                        ("repository page", f"/gallery/{alias}/bench/web-0000"),
                        ("manifest GET (counted)", f"/v2/public/{alias}/bench/web-0000/manifests/v0")]:
        body = requests.get(a.url + path, timeout=60)
        assert body.status_code == 200, (path, body.status_code)
        out = subprocess.run(["wrk", "-t", "2", "-c", "16", "-d", f"{a.duration}s", "--latency", "--timeout", "30s", a.url + path],
                             capture_output=True, text=True, timeout=a.duration + 60).stdout
        def lat(p):
            m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
            if not m:
                return None
            v, unit = float(m.group(1)), m.group(2)
            return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        results[label] = {"path": path, "bytes": len(body.content), "p50_ms": lat(50), "p99_ms": lat(99), "rps": rps,
                          "errors": int(non2xx.group(1)) if non2xx else 0}
        print(f"{label:28} {len(body.content):>8} B  p50 {lat(50)} ms  p99 {lat(99)} ms  {rps:.0f} req/s (c=16)")
    print(json.dumps(results, indent=2), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
