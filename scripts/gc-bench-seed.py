#!/usr/bin/env python3
"""Builds a garbage-collection benchmark data set directly in a Berth data directory.

    gc-bench-seed.py DATA_DIR --blobs N --manifests M [--repos R] [--layers K] [--blob-size BYTES]

The data directory must already hold a migrated berth.db (run `berth usage --data-dir DATA_DIR` once).
Writes N blob files (blobs/sha256/xx/hex) and their rows, M image manifests (each a config and K-1
layers) spread over R repositories with one tag each, and the links. Half of the blobs are referenced
by the manifests; the other half are linked to a repository but referenced by none (layers of deleted
images, what a collection frees). Rows go through SQLite directly, so Berth's triggers keep the
reference counts and the storage accounting exactly as pushes would.
"""
import argparse
import hashlib
import json
import os
import sqlite3
import time

p = argparse.ArgumentParser()
p.add_argument("data_dir")
p.add_argument("--blobs", type=int, default=10_000)
p.add_argument("--manifests", type=int, default=2_000)
p.add_argument("--repos", type=int, default=50)
p.add_argument("--layers", type=int, default=None,
               help="blobs per manifest, config included (default: half the blobs spread over the manifests)")
p.add_argument("--blob-size", type=int, default=1024)
a = p.parse_args()
if a.layers is None:
    a.layers = max(2, (a.blobs // 2) // max(1, a.manifests))

t0 = time.time()
db = sqlite3.connect(os.path.join(a.data_dir, "berth.db"), isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=OFF")
db.execute("PRAGMA foreign_keys=ON")
account = os.environ.get("BERTH_ACCOUNT_ID", "123456789012")
now = time.time()
db.execute("BEGIN")
repo_ids = []
for r in range(a.repos):
    db.execute("INSERT OR IGNORE INTO repositories(registry_id, name, created_at, settings) VALUES(?, ?, ?, '{}')",
               (account, f"gcbench/r{r}", now))
    repo_ids.append(db.execute("SELECT id FROM repositories WHERE registry_id = ? AND name = ?",
                               (account, f"gcbench/r{r}")).fetchone()[0])

referenced_needed = a.manifests * a.layers
if referenced_needed > a.blobs // 2:
    raise SystemExit(f"{a.manifests} manifests x {a.layers} blobs need {referenced_needed} referenced blobs; "
                     f"--blobs {a.blobs} gives {a.blobs // 2}")
blobs = []  # (digest, size)
rows = []
for i in range(a.blobs):
    data = i.to_bytes(8, "big") + os.urandom(max(0, a.blob_size - 8))
    hx = hashlib.sha256(data).hexdigest()
    d = os.path.join(a.data_dir, "blobs", "sha256", hx[:2])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hx), "wb") as f:
        f.write(data)
    blobs.append(("sha256:" + hx, len(data)))
db.executemany("INSERT OR IGNORE INTO blobs(digest, size, created_at) VALUES(?, ?, ?)", [(d, s, now) for d, s in blobs])
# Every blob linked to one repository; the first half referenced by manifests of that repository.
links = [(repo_ids[i % a.repos], d, now) for i, (d, _) in enumerate(blobs)]
db.executemany("INSERT OR IGNORE INTO repository_blobs(repo_id, digest, linked_at) VALUES(?, ?, ?)", links)
manifests, refs, tags = [], [], []
per_repo = {}
for m in range(a.manifests):
    repo = repo_ids[m % a.repos]
    # blobs linked to `repo` are those with index = repo position mod repos; take the next unused ones.
    pos = m % a.repos
    start = per_repo.get(pos, 0)
    idxs = [pos + a.repos * (start + k) for k in range(a.layers)]
    per_repo[pos] = start + a.layers
    parts = [blobs[i] for i in idxs]
    config, layers = parts[0], parts[1:]
    body = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config[0], "size": config[1]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s} for d, s in layers],
    }, separators=(",", ":")).encode()
    md = "sha256:" + hashlib.sha256(body).hexdigest()
    manifests.append((repo, md, "application/vnd.oci.image.manifest.v1+json", body, now, sum(s for _, s in layers)))
    refs.extend((repo, md, d, 0) for d, _ in parts)
    tags.append((repo, f"t{m}", md, now))
db.executemany("INSERT INTO manifests(repo_id, digest, media_type, body, pushed_at, image_size) VALUES(?, ?, ?, ?, ?, ?)", manifests)
db.executemany("INSERT OR IGNORE INTO manifest_references(repo_id, parent, child, is_manifest) VALUES(?, ?, ?, ?)", refs)
db.executemany("INSERT INTO tags(repo_id, tag, digest, updated_at) VALUES(?, ?, ?, ?)", tags)
db.execute("COMMIT")
tot = db.execute("SELECT blobs, bytes, unreferenced_blobs, unreferenced_bytes FROM storage_totals").fetchone()
print(json.dumps({"blobs": tot[0], "bytes": tot[1], "unreferencedBlobs": tot[2], "unreferencedBytes": tot[3],
                  "manifests": a.manifests, "seconds": round(time.time() - t0, 1)}))
