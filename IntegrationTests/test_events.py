"""Event notifications (issue #16 section 3, docs/events.md): EventBridge-shaped events of pushes (skopeo),
deletes (`aws ecr batch-delete-image`) and scans, delivered signed to a small HTTP receiver written here;
the receiver going down and coming back (nothing lost); `kill -9` of berth with events in the outbox
(delivered after the restart). At least once: a receiver may see an event twice, never zero times.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from berth_helpers import FIXTURES_DIR, free_port, unique
from ecr_helpers import ACCOUNT_ID, REGION, ECRSession, check_after_test, create_repo, running_server
from test_postgres import pg_server, psql
from ecr_helpers import skopeo_ecr, skopeo_path, aws_cli  # noqa: F401 (fixtures)
from test_postgres import pg_database  # noqa: F401 (fixture)

SECRET = "receiver-secret-0123"
TINY = FIXTURES_DIR / "images" / "debian-tiny-vuln"


class Receiver:
    """An HTTP server recording every POST (path, headers, body); `stop()` closes its port (connections
    are refused), `start()` opens it again."""

    def __init__(self, port: int):
        self.port = port
        self.requests: list = []
        self.lock = threading.Lock()
        self.httpd = None

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body,
                                              time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def events(self, path: str = "/events") -> list:
        """(event, headers, body) of every request to `path`, each signature checked."""
        with self.lock:
            got = [r for r in self.requests if r[0] == path]
        out = []
        for _, headers, body, _ in got:
            out.append((json.loads(body), headers, body))
        return out

    def wait(self, want, path: str = "/events", timeout: float = 60.0) -> list:
        deadline = time.time() + timeout
        while True:
            events = self.events(path)
            if want(events):
                return events
            assert time.time() < deadline, f"receiver: timed out; got {[e[0].get('detail') for e in events]}"
            time.sleep(0.1)


def verify_signature(headers: dict, body: bytes):
    sig = headers.get("x-berth-signature")
    assert sig, f"unsigned delivery: {headers}"
    parts = dict(p.split("=", 1) for p in sig.split(","))
    expected = hmac.new(SECRET.encode(), f"{parts['t']}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected), f"bad signature {sig}"
    assert abs(int(parts["t"]) - time.time()) < 3600


def check_envelope(event: dict, detail_type: str):
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["version"] == "0" and event["source"] == "aws.ecr" and event["detail-type"] == detail_type
    assert event["account"] == ACCOUNT_ID and event["region"] == REGION
    assert event["time"].endswith("Z") and len(event["id"]) == 36
    # A version 7 UUID (time-ordered, so the outbox's index on it grows at its end): its first 48 bits are
    # the event's time in milliseconds.
    uid = uuid.UUID(event["id"])
    assert uid.version == 7 and str(uid) == event["id"]
    made = datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    assert -1 < (uid.int >> 80) / 1000 - made < 2


def pushes(events: list, repo: str) -> dict:
    """PUSH events of `repo` by digest."""
    return {e["detail"]["image-digest"]: e for e, _, _ in events
            if e["detail"].get("action-type") == "PUSH" and e["detail"]["repository-name"] == repo}


@pytest.fixture(scope="module")
def receiver():
    r = Receiver(free_port())
    r.start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def events_server(berth_bin, tmp_path_factory, receiver):
    if not (FIXTURES_DIR / "vulndb").is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES_DIR}", pytrace=False)
    targets = [
        {"name": "hook", "url": f"http://127.0.0.1:{receiver.port}/events", "secret": SECRET},
        {"name": "scans", "url": f"http://127.0.0.1:{receiver.port}/scans", "format": "cloudevents",
         "pattern": {"source": ["aws.ecr"], "detail-type": ["ECR Image Scan"]}},
    ]
    # Short backoff so the outage test waits seconds, and enough attempts that nothing is dead-lettered.
    with running_server(berth_bin, tmp_path_factory.mktemp("berth-events"), BERTH_EVENT_TARGETS=json.dumps(targets),
                        BERTH_EVENT_RETRY_BASE_SECONDS="0.2", BERTH_EVENT_RETRY_MAX_SECONDS="1",
                        BERTH_EVENT_MAX_ATTEMPTS="1000", BERTH_SCAN_POLL_SECONDS="1") as srv:
        subprocess.run([str(srv.binary), "vulndb", "import", str(FIXTURES_DIR / "vulndb"), "--data-dir", str(srv.data_dir)],
                       check=True, capture_output=True, timeout=300, env=srv.process_env())
        yield srv


@pytest.fixture
def session(events_server, receiver, tmp_path):
    if not events_server.alive():
        events_server.start()
    if receiver.httpd is None:
        receiver.start()
    s = ECRSession(events_server, *events_server.root_credentials, tmp=tmp_path)
    yield s
    check_after_test(events_server, [s])


def admin(srv, *args) -> list:
    p = subprocess.run([str(srv.binary), "admin", "events", *args, "--data-dir", str(srv.data_dir)],
                       capture_output=True, timeout=120, env=srv.process_env())
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-3000:]
    return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]


def push_api_images(session: ECRSession, repo: str, n: int) -> list:
    v2 = session.v2()
    return [v2.push_image(repo, tag=f"t{i}").digest for i in range(n)]


def test_push_scan_and_delete_reach_the_receiver_signed(session, receiver, skopeo_ecr):
    repo = unique("events")
    session.cli("create-repository", "--repository-name", repo, "--image-scanning-configuration", "scanOnPush=true")
    skopeo_ecr.login(session)
    skopeo_ecr.copy(f"oci:{TINY}:1", f"docker://{session.server.hostport}/{repo}:v1")
    digest = session.cli_json("describe-images", "--repository-name", repo)["imageDetails"][0]["imageDigest"]

    # The push, signed, in EventBridge's envelope with ECR's detail.
    events = receiver.wait(lambda ev: digest in pushes(ev, repo))
    push = pushes(events, repo)[digest]
    check_envelope(push, "ECR Image Action")
    assert push["resources"] == []
    d = push["detail"]
    assert d["result"] == "SUCCESS" and d["image-tag"] == "v1" and d["action-type"] == "PUSH"
    assert d["manifest-media-type"] in ("application/vnd.oci.image.manifest.v1+json",
                                        "application/vnd.docker.distribution.manifest.v2+json")
    for event, headers, body in events:
        verify_signature(headers, body)
        assert headers["content-type"] == "application/json"
        assert headers["x-berth-event-id"] == event["id"]

    # The scan on push: to the signed target, and (pattern: scans only) as a CloudEvent to the other.
    def scans(ev):
        return [e for e, _, _ in ev if e.get("detail-type") == "ECR Image Scan" and e["detail"]["repository-name"] == repo]
    scan = receiver.wait(lambda ev: scans(ev), timeout=120)
    scan = scans(scan)[0]
    check_envelope(scan, "ECR Image Scan")
    assert scan["resources"] == [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repo}"]
    s = scan["detail"]
    assert s["scan-status"] == "COMPLETE" and s["image-digest"] == digest and s["image-tags"] == ["v1"]
    found = session.cli_json("describe-image-scan-findings", "--repository-name", repo, "--image-id", f"imageDigest={digest}")
    assert s["finding-severity-counts"] == found["imageScanFindings"]["findingSeverityCounts"]
    assert all(n > 0 for n in s["finding-severity-counts"].values())
    ce_events = receiver.wait(lambda ev: any(e["data"]["repository-name"] == repo for e, _, _ in ev), path="/scans")
    ce, ce_headers, _ = next(x for x in ce_events if x[0]["data"]["repository-name"] == repo)
    assert ce_headers["content-type"] == "application/cloudevents+json" and "x-berth-signature" not in ce_headers
    assert ce["specversion"] == "1.0" and ce["type"] == "ECR Image Scan" and ce["source"] == "aws.ecr"
    assert ce["subject"] == repo and ce["data"] == s and ce["id"] == scan["id"]
    assert all(e["type"] == "ECR Image Scan" for e, _, _ in receiver.events("/scans")), "the pattern lets scans only through"

    # Archive and restore, with the aws CLI: UPDATE_STORAGE_CLASS.
    for target in ("ARCHIVE", "STANDARD"):
        session.cli("update-image-storage-class", "--repository-name", repo, "--image-id", "imageTag=v1",
                    "--target-storage-class", target)

    def classes(ev):
        return [e["detail"]["target-storage-class"] for e, _, _ in ev
                if e["detail"].get("action-type") == "UPDATE_STORAGE_CLASS" and e["detail"]["repository-name"] == repo]
    stored = receiver.wait(lambda ev: sorted(classes(ev)) == ["ARCHIVE", "STANDARD"])
    restore = next(e for e, _, _ in stored if e["detail"].get("target-storage-class") == "STANDARD"
                   and e["detail"]["repository-name"] == repo)
    check_envelope(restore, "ECR Image Action")
    assert restore["detail"]["image-digest"] == digest and restore["detail"]["result"] == "SUCCESS"
    assert restore["detail"]["last-activated-at"].endswith("Z")

    # The delete, with the aws CLI.
    session.cli("batch-delete-image", "--repository-name", repo, "--image-ids", "imageTag=v1")

    def deletes(ev):
        return [e for e, _, _ in ev if e["detail"].get("action-type") == "DELETE" and e["detail"]["repository-name"] == repo]
    delete = deletes(receiver.wait(deletes))[0]
    check_envelope(delete, "ECR Image Action")
    assert delete["detail"] == {"result": "SUCCESS", "repository-name": repo, "image-digest": digest,
                                "action-type": "DELETE", "image-tag": "v1"}

    # Delivery state: in the CLI and the metrics.
    listed = [x for x in admin(session.server, "list", "--state", "delivered") if x["target"] == "hook"]
    assert {push["id"], scan["id"], delete["id"]} <= {x["eventId"] for x in listed}
    metrics = requests.get(session.server.url + "/metrics", timeout=10).text
    assert 'berth_events_delivered_total{target="hook"}' in metrics
    assert 'berth_events_delivery_latency_seconds_bucket{target="scans"' in metrics


def test_receiver_down_and_back_loses_nothing(session, receiver):
    repo = unique("outage")
    create_repo(session.client, repo)
    receiver.stop()
    digests = push_api_images(session, repo, 20)
    # Attempts fail (connection refused) and are retried: visible in the CLI while the receiver is down.
    deadline = time.time() + 30
    while True:
        failing = [x for x in admin(session.server, "list", "--state", "pending") if x.get("lastError")]
        if failing or time.time() > deadline:
            break
        time.sleep(0.3)
    assert failing, "no failed attempt recorded while the receiver was down"
    assert not pushes(receiver.events(), repo)  # nothing could arrive
    receiver.start()
    got = receiver.wait(lambda ev: set(digests) <= set(pushes(ev, repo)), timeout=60)
    assert set(pushes(got, repo)) == set(digests)
    for _, headers, body in got:
        verify_signature(headers, body)
    stats = admin(session.server, "stats")[0]
    assert stats["targets"]["hook"]["dead"] == 0


def test_kill9_with_events_in_the_outbox_delivers_them_after_the_restart(session, receiver):
    srv = session.server
    repo = unique("crash")
    create_repo(session.client, repo)
    receiver.stop()
    digests = push_api_images(session, repo, 10)
    srv.kill9()
    # The events are in the metadata store, not in memory: the CLI reads them with berth down.
    pending = [x for x in admin(srv, "list", "--state", "pending")]
    stats = admin(srv, "stats")[0]
    assert len(pending) + stats["unrouted"] >= 10
    receiver.start()
    srv.start()
    got = receiver.wait(lambda ev: set(digests) <= set(pushes(ev, repo)), timeout=60)
    assert set(pushes(got, repo)) == set(digests)


def test_two_nodes_on_postgres_deliver_every_event(berth_bin, pg_database, receiver, tmp_path):
    """Two nodes on one PostgreSQL database, pushes on both: every event reaches the receiver, and the
    outbox (shared) records each delivery once, whichever node sent it (the `event-delivery` work lease
    lets one node deliver at a time; the per-delivery claims keep them from sending one twice at once)."""
    if receiver.httpd is None:
        receiver.start()
    key = str(tmp_path / "master.key")
    targets = json.dumps([{"name": "hook", "url": f"http://127.0.0.1:{receiver.port}/events", "secret": SECRET}])
    servers = [pg_server(berth_bin, tmp_path / f"node{i}", pg_database, BERTH_SECRET_KEY_FILE=key,
                         BERTH_EVENT_TARGETS=targets) for i in range(2)]
    try:
        for srv in servers:
            srv.start()
        sessions = [ECRSession(srv, *srv.root_credentials, tmp=tmp_path) for srv in servers]
        repo = unique("pg-events")
        create_repo(sessions[0].client, repo)
        clients = [s.v2() for s in sessions]
        digests = [clients[i % 2].push_image(repo, tag=f"t{i}").digest for i in range(20)]
        got = receiver.wait(lambda ev: set(digests) <= set(pushes(ev, repo)), timeout=60)
        assert set(pushes(got, repo)) == set(digests)
        for _, headers, body in got:
            verify_signature(headers, body)
        assert psql(pg_database, "SELECT count(*) FROM event_deliveries WHERE state = 'delivered' AND target = 'hook'") == "20"
        for s, srv in zip(sessions, servers):
            check_after_test(srv, [s])
    finally:
        for s in servers:
            s.dispose()
