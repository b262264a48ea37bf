"""Another process holding SQLite's write lock on `berth.db` does not stall unrelated GETs.

`berth admin …` (or any tool) may write `<dataDir>/berth.db` while the server runs. While it holds the
write lock, the server's own writes wait for it (up to SQLite's 10 s busy timeout); they must wait on
the store's writer thread, not on a thread that serves requests. Here a child process holds
`BEGIN IMMEDIATE` for a few seconds, more pushes than the machine has cores start meanwhile (each upload
start is a write, so each waits), and GETs that read the database (tag list, catalog, manifest by tag
and by digest, blob HEAD) must all be answered promptly during the hold. When the lock is released,
the waiting pushes go through.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from berth_helpers import describe, unique

HOLD_SECONDS = 6.0
# The server's writes start 0.5 s into the hold; the GETs run from then until 3.5 s into it.
GET_PHASE = 3.0
GET_LIMIT = 2.0  # seconds; a stalled server answers after the lock is released, 3 s or more later

HOLDER = r"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
"""


def test_write_lock_held_by_another_process_does_not_stall_gets(fresh_server, client_for):
    c = client_for(fresh_server)
    repo = unique("lock")
    img = c.push_image(repo, tag="v1")
    other = c.push_image(repo, tag="v2")
    layer = next(d for d in img.blobs if d != img.config_digest)

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(fresh_server.data_dir / "berth.db"),
                               str(HOLD_SECONDS)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        locked_at = time.monotonic()

        # Writes that must wait for the lock: upload starts, more than there are cores.
        n_writers = max(4, 2 * (os.cpu_count() or 2))
        results: list = [None] * n_writers

        def start_upload(i):
            w = client_for(fresh_server)
            t0 = time.monotonic()
            r = w.post(f"/v2/{repo}/blobs/uploads/", headers={"Content-Length": "0"})
            results[i] = (r.status_code, time.monotonic() - t0, describe(r))

        writers = [threading.Thread(target=start_upload, args=(i,), daemon=True) for i in range(n_writers)]
        for t in writers:
            t.start()
        time.sleep(0.5)

        gets = [
            ("tag list", lambda: c.get(f"/v2/{repo}/tags/list"), 200),
            ("catalog", lambda: c.get("/v2/_catalog"), 200),
            ("manifest by tag", lambda: c.get_manifest(repo, "v1"), 200),
            ("manifest by digest", lambda: c.get_manifest(repo, other.digest), 200),
            ("blob HEAD", lambda: c.head(f"/v2/{repo}/blobs/{layer}"), 200),
            ("unknown tag", lambda: c.get_manifest(repo, "nope"), 404),
        ]
        slowest = (0.0, "")
        rounds = 0
        while time.monotonic() - locked_at < 0.5 + GET_PHASE:
            for name, get, status in gets:
                t0 = time.monotonic()
                r = get()
                took = time.monotonic() - t0
                assert r.status_code == status, f"{name}: {describe(r)}"
                slowest = max(slowest, (took, name))
            rounds += 1
        held_for = time.monotonic() - locked_at
        assert slowest[0] < GET_LIMIT, \
            f"{slowest[1]} took {slowest[0]:.2f} s while another process held the write lock ({rounds} rounds)"
        assert holder.poll() is None and held_for < HOLD_SECONDS, "the lock must still be held during the GETs"
        assert all(r is None for r in results), \
            f"a write went through while another process held the write lock: {results}"
        assert rounds >= 3, f"only {rounds} rounds of GETs in {GET_PHASE} s"
    finally:
        holder.wait(timeout=HOLD_SECONDS + 10)

    for t in writers:
        t.join(timeout=20)
    for i, r in enumerate(results):
        assert r is not None, f"upload start {i} did not finish after the lock was released"
        assert r[0] == 202, f"upload start {i}: {r[2]}"
        assert r[1] >= HOLD_SECONDS - 1.5, f"upload start {i} took {r[1]:.2f} s: it did not wait for the lock"
