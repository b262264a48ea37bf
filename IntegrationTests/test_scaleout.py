"""Scale-out (issue #14 §6): two `berth serve` nodes on one PostgreSQL database and one S3 bucket
(SeaweedFS), pushed to concurrently, one of them killed with `kill -9` in the middle of its pushes while
the other keeps serving: every push that was acknowledged pulls back intact from both nodes, nothing
is lost or corrupt, and the killed node comes back on the same data.
"""

from __future__ import annotations

import os
import threading
import time

import berth_helpers as bh
from berth_helpers import describe, unique
from ecr_helpers import ECRSession, check_after_test
from test_postgres import pg_database, pg_server  # noqa: F401 (fixture)
from test_s3 import s3_config, seaweed  # noqa: F401 (fixture)


def pusher(client, repo: str, done: list, stop: threading.Event, errors: list):
    """Pushes small images until told to stop; records (repo, tag, image) for each acknowledged push."""
    i = 0
    while not stop.is_set():
        tag = f"t{i}"
        try:
            img = client.push_image(repo, tag=tag, n_layers=2, layer_size=48 * 1024)
        except Exception as e:  # the node was killed mid-push: not acknowledged, not expected
            errors.append(repr(e))
            if stop.is_set() or len(errors) > 3:
                return
            continue
        done.append((repo, tag, img))
        i += 1


def test_a_node_killed_mid_push_loses_nothing_acknowledged(berth_bin, pg_database, seaweed, tmp_path):
    key = str(tmp_path / "master.key")
    nodes = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, BERTH_SECRET_KEY_FILE=key,
                       extra_args=["--config", str(s3_config(seaweed, tmp_path / f"node{i}.json"))]) for i in range(2)]
    try:
        for n in nodes:
            n.start()
        sessions = [ECRSession(n, *n.root_credentials, tmp=tmp_path) for n in nodes]
        clients = [s.v2() for s in sessions]
        repo_a, repo_b = f"scale/{unique()}", f"scale/{unique()}"
        done_a, done_b, errors_a, errors_b = [], [], [], []
        stop_a, stop_b = threading.Event(), threading.Event()
        threads = [threading.Thread(target=pusher, args=(clients[0], repo_a, done_a, stop_a, errors_a)),
                   threading.Thread(target=pusher, args=(clients[1], repo_b, done_b, stop_b, errors_b))]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while len(done_a) < 5 and time.time() < deadline:
            time.sleep(0.05)
        assert len(done_a) >= 5, f"node A pushed {len(done_a)} images: {errors_a[:3]}"
        nodes[0].kill9()
        killed_at = len(done_b)
        # Node B keeps serving pushes after its peer died.
        while len(done_b) < killed_at + 5 and time.time() < deadline + 60:
            time.sleep(0.05)
        stop_a.set()
        stop_b.set()
        for t in threads:
            t.join(60)
        assert len(done_b) >= killed_at + 5, f"node B stalled after node A died: {errors_b[:3]}"
        assert not errors_b, f"pushes to node B failed: {errors_b[:3]}"

        # Every acknowledged push pulls back intact from the survivor, then from the restarted node.
        for repo, tag, img in done_a + done_b:
            r = clients[1].get_manifest(repo, tag)
            assert r.status_code == 200 and r.content == img.manifest, describe(r)
            for digest, data in img.blobs.items():
                clients[1].blob_ok(repo, digest, data)
        nodes[0].start()
        restarted = ECRSession(nodes[0], *nodes[0].root_credentials, tmp=tmp_path).v2()
        for repo, tag, img in done_a[-3:] + done_b[-3:]:
            r = restarted.get_manifest(repo, tag)
            assert r.status_code == 200 and r.content == img.manifest, describe(r)
            for digest, data in img.blobs.items():
                restarted.blob_ok(repo, digest, data)
        check_after_test(nodes[1], [sessions[1]])
    finally:
        for n in nodes:
            n.dispose()
