#!/usr/bin/env python3
"""What one event costs the push's SQLite transaction, before and after migration 15 (docs/events.md,
"Cost"): WAL bytes and pages per single-event transaction, and the insert's CPU, on an outbox that already
holds 20,000 routed events. Not a test: it asserts nothing about time.

    python3 Benchmarks/outbox_wal_cost.py

The two table definitions are the outbox as migrations 7 (v14's) and 15 leave it: migrations never change
once released, so these stay true (Sources/BerthStorage/SQLiteSchema+Events.swift,
EventOutboxIndexSchema.swift). Ids are version 7 UUIDs, as Berth makes them; WAL pages are 4 KiB, the
checkpoint is held off so the WAL's size counts what the transactions wrote.
"""
import json
import os
import sqlite3
import tempfile
import time
import uuid
OLD = """CREATE TABLE event_outbox(
 seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, created_at REAL NOT NULL,
 detail_type TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, routed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX event_outbox_unrouted ON event_outbox(seq) WHERE routed = 0;
CREATE INDEX event_outbox_created ON event_outbox(created_at);"""
NEW = """CREATE TABLE event_outbox(
 seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, created_at REAL NOT NULL,
 detail_type TEXT NOT NULL, account_id TEXT NOT NULL, body TEXT NOT NULL, routed INTEGER NOT NULL DEFAULT 0);
CREATE INDEX event_outbox_unrouted ON event_outbox(seq) WHERE routed = 0;"""
def v7():
    ms = int(time.time()*1000); r = int.from_bytes(os.urandom(10),'big')
    v = (ms << 80) | (0x7 << 76) | (r & ((1<<76)-1))
    return str(uuid.UUID(int=v))
body = json.dumps({"version":"0","id":"x"*36,"detail-type":"ECR Image Action","source":"aws.ecr","account":"123456789012","time":"2026-12-07T17:00:00Z","region":"us-east-1","resources":[],"detail":{"result":"SUCCESS","repository-name":"bench/app","image-digest":"sha256:"+"a"*64,"action-type":"PUSH","image-tag":"v1"}})
for name, schema in [("before (v14)", OLD), ("after (v15)", NEW)]:
    path = os.path.join(tempfile.mkdtemp(prefix="berth-outbox-"), "outbox.db")
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL"); c.execute("PRAGMA synchronous=NORMAL"); c.execute("PRAGMA wal_autocheckpoint=0")
    c.executescript(schema)
    # warm: 20,000 events already there (a few days of pushes)
    c.execute("BEGIN")
    for i in range(20000):
        c.execute("INSERT INTO event_outbox(event_id, created_at, detail_type, account_id, body, routed) VALUES(?,?,?,?,?,1)", (v7(), time.time(), "ECR Image Action", "123456789012", body))
    c.execute("COMMIT"); c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    n = 2000
    t0 = time.process_time()
    for i in range(n):
        c.execute("BEGIN IMMEDIATE")
        c.execute("INSERT INTO event_outbox(event_id, created_at, detail_type, account_id, body) VALUES(?,?,?,?,?)", (v7(), time.time(), "ECR Image Action", "123456789012", body))
        c.execute("COMMIT")
    cpu = time.process_time() - t0
    wal = os.path.getsize(path + "-wal")
    frames = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    print(f"{name}: WAL {wal/n/1024:.1f} KiB per event-transaction, {frames[1]/n:.2f} pages per event, CPU {cpu/n*1e6:.0f} us per insert")
